"""smtp-mailbox-stuck (KB 828938): decision logic on hand-built rows, and the
scenarios end to end through load_case."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from analyzer import checks
from analyzer.case import Case, load_case
from analyzer.checks.smtp_mailbox import parse_connection_dn
from analyzer.sources import Options
from analyzer.table import row_data, rows_to_frame, validate

CHECK = checks.get("smtp-mailbox-stuck")
UTC = timezone.utc
HOST = "EXCH01.contoso.local"
GUID = "CCCF3BE6-219C-4379-985D-851B766EDDC7"
DN = (f"/o=Contoso/ou=First Administrative Group/cn=Configuration/cn=Connections/"
      f"cn=SMTP (EXCH01)/cn={{{GUID}}}")
CONFIG = "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=local"
AGDN = f"CN=First Administrative Group,CN=Administrative Groups,CN=Contoso,{CONFIG}"
T0 = datetime(2007, 3, 12, 22, 53, 18, tzinfo=UTC)


def _case(rows):
    df = rows_to_frame(rows)
    validate(df)
    return Case("t", "t", inventory=[], table_=df, warnings=[], options=Options())


def ev326(code="0x80040148", dn=DN, as_message=True, host=HOST, n=1):
    text = f"Service Account failed to logon to the store as {dn}. Error code : {code}."
    row = {"ts": T0 - timedelta(hours=1), "ts_source": "utc", "host": host, "source": "evt",
           "kind": "event", "channel": "Application", "provider": "MSExchangeTransport",
           "event_id": 326, "level": "error", "category": "Exchange Store Driver",
           "path": "Application.evt", "locator": f"record={n}"}
    if as_message:
        row["message"] = text
    else:
        row["data"] = {"strings": [dn, code]}
    return row


def ev1194(host=HOST, iface="SMTP"):
    return {"ts": T0 - timedelta(minutes=59), "ts_source": "utc", "host": host, "source": "evt",
            "kind": "event", "channel": "Application", "provider": "MSExchangeIS", "event_id": 1194,
            "level": "error", "path": "Application.evt", "locator": "record=9",
            "message": f"Accept clients on external interface {iface} failed with error 0x80004005."}


def tracking(mid="<A1@contoso.local>", retries=3, healthy=False, host=HOST, start=T0):
    rows = []
    t = start
    line = 5

    def add(eid: int, ev: str) -> None:
        nonlocal line
        rows.append({"ts": t, "ts_source": "utc", "host": host, "source": "tracking",
                     "kind": "tracking_entry", "path": "EXCH01.log/20070312.log",
                     "locator": f"line={line}",
                     "data": {"message_id": mid, "recipients": ["recipient@contoso.com"],
                              "event_id": eid, "event": ev, "server": "EXCH01"}})
        line += 1

    for _ in range(retries):
        add(1023, "SMTP: Message Delivered Locally")
        add(1037, "SMTP: Message Scheduled to Retry Local Delivery")
        t += timedelta(minutes=5)
    if healthy:
        add(1036, "SMTP: Message Queued for Local Delivery")
        add(1028, "SMTP Store Driver: Message Delivered Locally to Store")
        add(1023, "SMTP: Message Delivered Locally")
    return rows


def ldap(dn, attrs, line=1):
    return {"source": "ldif", "kind": "ldap_entry", "key": dn, "path": "smtp.ldf",
            "locator": f"line={line}", "data": {k.lower(): v for k, v in attrs.items()},
            "category": attrs.get("objectClass", [None])[-1]}


def store_entry(guid=GUID, name="Mailbox Store (EXCH01)", public=False):
    dn = f"CN={name},CN=First Storage Group,CN=InformationStore,CN=EXCH01,CN=Servers,{AGDN}"
    cls = "msExchPublicMDB" if public else "msExchPrivateMDB"
    return ldap(dn, {"objectClass": ["top", "msExchMDB", cls], "objectGUID": [f"{{{guid}}}"]}, 40)


def gateway_entry(home_mdb=None, home_mta=None, legacy=DN):
    mdb = home_mdb or f"CN=Mailbox Store (EXCH01),CN=First Storage Group,CN=InformationStore,CN=EXCH01,CN=Servers,{AGDN}"
    mta = home_mta or f"CN=Microsoft MTA,CN=EXCH01,CN=Servers,{AGDN}"
    return ldap(f"CN=SMTP (EXCH01-{{{GUID}}}),CN=Connections,CN=Contoso,{CONFIG}",
                {"objectClass": ["top", "mailGateway"], "cn": [f"SMTP (EXCH01-{{{GUID}}})"],
                 "homeMDB": [mdb], "homeMTA": [mta], "legacyExchangeDN": [legacy],
                 "deliveryMechanism": ["2"]}, 10)


def other_connection():
    return ldap(f"CN=SMTP (EXCH02-{{11111111-2222-3333-4444-555555555555}}),CN=Connections,CN=Contoso,{CONFIG}",
                {"objectClass": ["top", "mailGateway"], "cn": ["SMTP (EXCH02-{11111111-2222-3333-4444-555555555555})"]}, 2)


def run(rows):
    findings = CHECK.run(_case(rows))
    return findings


def causes(f):
    return {c.id: c.verdict for c in f.causes}


def unfold(ldif: str) -> str:
    """RFC 2849: a line starting with one space continues the previous one."""
    return ldif.replace("\n ", "")


# --- DN parsing ------------------------------------------------------------

def test_parse_connection_dn_kb_text():
    c = parse_connection_dn("Service Account failed to logon to the store as /o=organization/ou=First "
                            "Administrative Group/cn=Configuration/cn=Connections/cn=SMTP (ServerName)/"
                            "cn={CCCF3BE6-219C-4379-985D-851B766EDDC7}. Error code : 0x80040148.")
    assert (c.org, c.ag, c.server, c.guid) == ("organization", "First Administrative Group",
                                               "ServerName", GUID)
    assert c.dn.endswith("{CCCF3BE6-219C-4379-985D-851B766EDDC7}")
    assert parse_connection_dn("/o=Contoso/ou=AG/cn=Recipients/cn=jsmith") is None


# --- statuses ----------------------------------------------------------------

def test_not_applicable_without_transport_evidence():
    rows = [{"ts": T0, "ts_source": "utc", "host": HOST, "source": "evt", "kind": "event",
             "channel": "Application", "provider": "MSExchangeIS", "event_id": 9523,
             "level": "information", "path": "a.evt", "locator": "record=1"}]
    (f,) = run(rows)
    assert f.status == "not_applicable"


def test_exchange_2007_tracking_is_not_this_world():
    rows = [{"ts": T0, "ts_source": "utc", "host": HOST, "source": "tracking", "kind": "tracking_entry",
             "path": "MSGTRK20070312-1.LOG", "locator": "line=6",
             "data": {"message_id": "<x@contoso.com>", "event": "DELIVER", "event_id": None,
                      "recipients": ["a@contoso.com"]}}]
    (f,) = run(rows)
    assert f.status == "not_applicable"


def test_326_1194_and_loop_confirm_missing_without_ad_export():
    (f,) = run([ev326(), ev1194(), *tracking(retries=4)])
    assert f.status == "problem" and f.host == HOST
    assert f.top_cause.id == "smtp-mailbox-missing"
    v = causes(f)
    assert v["smtp-mailbox-missing"] == "confirmed"
    assert v["smtp-mailbox-attributes"] == "possible"
    assert v["store-workaround"] == "possible" and v["system-mailbox-missing"] == "possible"
    assert f.facts["organization"] == "Contoso"
    assert f.facts["administrative_group"] == "First Administrative Group"
    assert f.facts["server"] == "EXCH01" and f.facts["store_guid"] == f"{{{GUID}}}"
    loop = f.facts["retry_loops"][0]
    assert loop["retries"] == 4 and loop["interval_seconds"] == 300
    assert loop["recipients"] == ["recipient@contoso.com"]
    assert loop["first"].startswith("2007-03-12T22:53:18")
    assert loop["last"].startswith("2007-03-12T23:08:18")
    # Without an AD export: the ldifde command is requested.
    assert any("ldifde -f smtp.ldf" in c and "CN=Connections,CN=Contoso" in c for c in f.collect)
    ldif = unfold(f.attachments["smtp-mailgateway.ldf"])
    assert f"cn: SMTP (EXCH01-{{{GUID}}})" in ldif
    assert "deliveryMechanism: 2" in ldif
    assert f"legacyExchangeDN: {DN}" in ldif
    assert f"homeMTA: CN=Microsoft MTA,CN=EXCH01,CN=Servers,{AGDN}" in ldif
    # Store name and storage group are unknown without the export: marked.
    assert "homeMDB: CN=<FILL IN: mailbox store name" in ldif
    assert "DC=contoso,DC=local" in ldif  # derived from the host's DNS domain, and said so
    assert "derived from the server's DNS domain" in ldif
    # The LDIF is under the cause; the finding's own steps point to it
    # (the text report wraps those into paragraphs: no multi-line blob).
    assert any("ldif" in r.lower() and "dn: CN=SMTP (EXCH01-" in unfold(r) for r in f.top_cause.remediation)
    assert all("\n" not in r for r in f.remediation)
    assert any("see the LDIF under the cause" in r for r in f.remediation)
    assert any("public store" in r for r in f.remediation)
    locs = {e.locator for e in f.evidence}
    assert "record=1" in locs and "record=9" in locs


def test_326_from_insertion_strings_only_kb_0x80040158():
    (f,) = run([ev326(code="0x80040158", as_message=False), ev1194()])
    assert f.status == "problem"
    assert f.facts["error_codes"] == ["0x80040158"]
    assert causes(f)["smtp-mailbox-missing"] == "confirmed"


def test_326_alone_is_inconclusive_likely_and_asks_for_tracking():
    """KB 828938 status rule: problem needs 326 plus 1194 or a retry loop; a
    326 alone names the cause but not that mail is stuck now."""
    (f,) = run([ev326()])
    assert f.status == "inconclusive" and f.severity == "warning"
    assert causes(f)["smtp-mailbox-missing"] == "likely"
    assert f.top_cause.id == "smtp-mailbox-missing"
    assert any("tracking" in c.lower() and "EXCH01.log" in c for c in f.collect)
    assert "nothing shows messages stuck" in f.summary and f"{{{GUID}}}" in f.summary
    # The DN is still parsed and the LDIF still written for the engineer.
    assert f.facts["store_guid"] == f"{{{GUID}}}" and "dn: CN=SMTP (EXCH01-" in unfold(f.attachments["smtp-mailgateway.ldf"])
    # With a retry loop, or a 1194, the same 326 is a problem.
    assert run([ev326(), *tracking()])[0].status == "problem"
    assert run([ev326(), ev1194()])[0].status == "problem"


def test_retry_loop_alone_is_inconclusive_and_collects_application_log():
    (f,) = run(tracking(retries=3))
    assert f.status == "inconclusive"
    assert any("Application event log" in c for c in f.collect)
    assert f.facts["retry_loops"][0]["retries"] == 3
    assert f.top_cause is not None and f.top_cause.verdict == "possible"


def test_healthy_delivery_is_ok():
    (f,) = run(tracking(mid="<B@contoso.local>", retries=0, healthy=True)
               + tracking(mid="<C@contoso.local>", retries=1, healthy=True))
    assert f.status == "ok"
    assert f.top_cause is None
    assert all(c.verdict == "ruled_out" for c in f.causes)


def test_unrelated_326_is_not_this_problem():
    user_dn = "/o=Contoso/ou=First Administrative Group/cn=Recipients/cn=jsmith"
    (f,) = run([ev326(code="0x8004011d", dn=user_dn)])
    assert f.status == "inconclusive"
    assert "store_guid" not in f.facts
    (g,) = run([ev326(code="0x80040148", dn=user_dn),
                *tracking(mid="<B@contoso.local>", retries=0, healthy=True)])
    assert g.status == "ok"


def test_1194_for_another_interface_is_ignored():
    (f,) = run([ev1194(iface="MAPI"), *tracking(retries=0, healthy=True)])
    assert f.status == "ok"
    # Alone, it does not even make the check applicable; the SMTP one does.
    assert run([ev1194(iface="MAPI")])[0].status == "not_applicable"
    assert run([ev1194()])[0].status == "inconclusive"


def test_1194_unrendered_insertion_strings():
    rendered_smtp = ev1194()
    raw_smtp = {**ev1194(), "message": None, "data": {"strings": ["SMTP", "0x80004005"]}}
    raw_mapi = {**ev1194(), "message": None, "data": {"strings": ["MAPI", "0x80004005"]}}
    assert run([raw_smtp])[0].status == "inconclusive"
    assert run([raw_smtp])[0].facts["event_1194_count"] == 1
    assert "event_1194_count" not in run([raw_mapi])[0].facts
    assert run([rendered_smtp, raw_mapi])[0].facts["event_1194_count"] == 1


def test_netbios_tracking_server_joins_the_fqdn_host():
    noise_row = {"ts": T0, "ts_source": "utc", "host": HOST, "source": "evtx", "kind": "event",
                 "channel": "System", "provider": "EventLog", "event_id": 6013,
                 "level": "information", "path": "System.evtx", "locator": "record=1"}
    (f,) = run([ev326(), *tracking(host="EXCH01")])
    assert f.host == HOST and f.status == "problem" and f.facts["retry_loops"]
    (g,) = run([noise_row, *tracking(host="EXCH01", retries=0, healthy=True)])
    assert g.host == HOST and g.status == "ok"


def test_326_with_smtp_dn_but_other_code_is_likely():
    (f,) = run([ev326(code="0x8004010f"), ev1194(), *tracking()])
    assert f.status == "problem"
    assert causes(f)["smtp-mailbox-missing"] == "likely"


# --- with an AD export ---------------------------------------------------------

def test_ldif_wrong_home_mdb_confirms_attributes():
    wrong = f"CN=Old Store,CN=Second Storage Group,CN=InformationStore,CN=EXCH02,CN=Servers,{AGDN}"
    (f,) = run([ev326(), ev1194(), *tracking(), gateway_entry(home_mdb=wrong), store_entry(),
                other_connection()])
    assert f.status == "problem"
    assert f.top_cause.id == "smtp-mailbox-attributes"
    v = causes(f)
    assert v["smtp-mailbox-attributes"] == "confirmed" and v["smtp-mailbox-missing"] == "ruled_out"
    expl = next(c for c in f.causes if c.id == "smtp-mailbox-attributes").explanation
    assert "homeMDB: expected" in expl and "CN=Old Store" in expl and "Mailbox Store (EXCH01)" in expl
    assert "homeMTA" not in expl.split("but:")[1]
    # The store from the export fills homeMDB in the fix LDIF: no placeholder.
    assert "homeMDB: CN=Mailbox Store (EXCH01),CN=First Storage Group" in unfold(f.attachments["smtp-mailgateway-fix.ldf"])
    assert "<FILL IN" not in unfold(f.attachments["smtp-mailgateway-fix.ldf"])
    assert not any("ldifde -f smtp.ldf" in c for c in f.collect)


def test_ldif_wrong_legacy_dn_and_mta():
    bad_mta = f"CN=Microsoft MTA,CN=EXCH02,CN=Servers,{AGDN}"
    (f,) = run([ev326(), ev1194(), gateway_entry(home_mta=bad_mta, legacy=DN.replace("EXCH01", "EXCH9"))])
    expl = next(c for c in f.causes if c.id == "smtp-mailbox-attributes").explanation
    assert "legacyExchangeDN: expected" in expl and "homeMTA: expected" in expl
    assert causes(f)["smtp-mailbox-attributes"] == "confirmed"


def test_ldif_connections_without_object_confirms_missing():
    (f,) = run([ev326(), *tracking(), other_connection(), store_entry()])
    v = causes(f)
    assert v["smtp-mailbox-missing"] == "confirmed" and v["smtp-mailbox-attributes"] == "ruled_out"
    assert not any("ldifde -f smtp.ldf" in c for c in f.collect)


def test_ldif_correct_object_means_disconnected_mailbox():
    (f,) = run([ev326(), ev1194(), gateway_entry(), store_entry()])
    v = causes(f)
    assert v["smtp-mailbox-attributes"] == "ruled_out"
    assert v["smtp-mailbox-missing"] == "likely"


def test_public_store_rules_out_system_mailbox():
    (f,) = run([ev326(), ev1194(), store_entry(name="Public Folder Store (EXCH01)", public=True),
                other_connection()])
    assert causes(f)["system-mailbox-missing"] == "ruled_out"
    assert "public store" in f.remediation[0]


def test_ldif_without_connections_still_asks_for_export():
    (f,) = run([ev326(), ev1194(), store_entry()])
    assert causes(f)["smtp-mailbox-attributes"] == "possible"
    assert any("ldifde -f smtp.ldf" in c for c in f.collect)
    assert "Mailbox Store (EXCH01)" in unfold(f.attachments["smtp-mailgateway.ldf"])


def test_one_finding_per_host():
    other = "EXCH02.contoso.local"
    rows = [ev326(), ev1194(), *tracking(mid="<X@contoso.local>", retries=0, healthy=True, host=other)]
    fs = {f.host: f for f in run(rows)}
    assert set(fs) == {HOST, other}
    assert fs[HOST].status == "problem" and fs[other].status == "ok"


# --- review fixes ------------------------------------------------------------

def test_unrendered_326_evidence_reads_as_the_event_message():
    """.evtx rows carry only insertion strings: the evidence shows the
    catalog text filled with them, not the raw JSON of the data column."""
    (f,) = run([ev326(as_message=False), ev1194()])
    ex = next(e.excerpt for e in f.evidence if e.locator == "record=1")
    assert ex.startswith("MSExchangeTransport 326 error: Service Account failed to logon to the store as /o=")
    assert "Error code : 0x80040148" in ex and '"strings"' not in ex
    # A rendered message is kept as it is.
    (g,) = run([ev326(dn=DN.replace("EXCH01", "EXCH01 "), as_message=True), ev1194()])
    ex = next(e.excerpt for e in g.evidence if e.locator == "record=1")
    assert "cn=SMTP (EXCH01 )" in ex


def _ldif_rows(text, tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "out.ldf").write_text(text, encoding="utf-8")
    case = load_case(tmp_path)
    (inv,) = case.inventory
    assert inv.source == "ldif" and inv.status == "parsed", inv
    return case.table[case.table["kind"] == "ldap_entry"]


def test_ldif_attachment_is_folded_valid_ldif(tmp_path):
    """The LDIF fits an 80-column report (72 columns + indentation) by RFC
    2849 folding, so it is still importable: the LDIF parser reads back the
    exact attribute values."""
    (f,) = run([ev326(), ev1194(), *tracking()])
    text = f.attachments["smtp-mailgateway.ldf"]
    assert max(len(x) for x in text.splitlines()) <= 72
    assert any(x.startswith(" ") for x in text.splitlines())  # long DNs were folded
    rows = _ldif_rows(text, tmp_path)
    (row,) = rows.to_dict("records")
    data = row_data(row["data"])
    assert row["key"] == (f"CN=SMTP (EXCH01-{{{GUID}}}),CN=Connections,CN=Contoso,{CONFIG}")
    assert data["legacyexchangedn"] == [DN]
    assert data["homemta"] == [f"CN=Microsoft MTA,CN=EXCH01,CN=Servers,{AGDN}"]
    assert data["deliverymechanism"] == ["2"] and data["objectclass"] == ["mailGateway"]
    assert data["changetype"] == "add"
    # The cause shows the same text; the finding's own steps point to it.
    assert any(text in r for r in f.top_cause.remediation)
    i_create = next(i for i, r in enumerate(f.top_cause.remediation) if "Create a new mailGateway" in r)
    assert "LDIF for review" in f.top_cause.remediation[i_create + 1]
    assert "smtp-mailbox-stuck-EXCH01.contoso.local-smtp-mailgateway.ldf" in f.top_cause.remediation[i_create + 1]


def test_delivery_after_the_last_326_is_not_a_current_problem():
    """326 and 1194 at a mount, then messages delivered to the store without
    retries: the SMTP mailbox has worked since; not 'problem'."""
    later = T0 + timedelta(hours=2)
    (f,) = run([ev326(), ev1194(), *tracking(mid="<D@contoso.local>", retries=0, healthy=True, start=later)])
    assert f.status == "inconclusive"
    assert causes(f)["smtp-mailbox-missing"] == "possible"
    assert f.facts["delivered_after_last_failure"] == 1
    assert "may be resolved" in f.summary
    assert any("Local Delivery queue" in c for c in f.collect)
    assert any(e.path == "EXCH01.log/20070312.log" for e in f.evidence)
    # Deliveries *before* the failure do not count: still a problem.
    earlier = T0 - timedelta(hours=3)
    (g,) = run([ev326(), ev1194(), *tracking(mid="<D@contoso.local>", retries=0, healthy=True, start=earlier)])
    assert g.status == "problem" and causes(g)["smtp-mailbox-missing"] == "confirmed"
    assert "delivered_after_last_failure" not in g.facts
    # A retry loop still running keeps it a problem whatever else was delivered.
    (h,) = run([ev326(), *tracking(retries=3),
                *tracking(mid="<E@contoso.local>", retries=0, healthy=True, start=later)])
    assert h.status == "problem"


def test_326_for_several_stores_names_each_and_writes_one_object_each(tmp_path):
    g2 = "0B7E5A3C-1F2D-4C55-9A8B-2E6F1D0C9B47"
    dn2 = DN.replace(GUID, g2)
    (f,) = run([ev326(dn=dn2, n=1), ev326(n=2), ev1194(), *tracking()])
    assert f.facts["store_guid"] == f"{{{GUID}}}"
    assert f.facts["other_store_guids"] == [f"{{{g2}}}"]
    assert "1 other store(s)" in f.summary
    assert f"{{{g2}}}" in f.top_cause.explanation
    rows = _ldif_rows(f.attachments["smtp-mailgateway.ldf"], tmp_path)
    assert sorted(rows["key"]) == sorted(f"CN=SMTP (EXCH01-{{{g}}}),CN=Connections,CN=Contoso,{CONFIG}"
                                         for g in (GUID, g2))
    # The same store twice is one store.
    (g,) = run([ev326(n=1), ev326(n=2), ev1194()])
    assert "other_store_guids" not in g.facts and "other store" not in g.summary
    assert len(_ldif_rows(g.attachments["smtp-mailgateway.ldf"], tmp_path / "2")) == 1


def test_wrong_attribute_cause_leads_with_ad_evidence_and_fix_order(tmp_path):
    wrong = f"CN=Old Store,CN=Second Storage Group,CN=InformationStore,CN=EXCH02,CN=Servers,{AGDN}"
    (f,) = run([ev326(), ev1194(), *tracking(), gateway_entry(home_mdb=wrong), store_entry()])
    top = f.top_cause
    assert top.id == "smtp-mailbox-attributes"
    # The deciding evidence (the exported object) is cited first, and in the
    # finding's evidence too.
    assert top.evidence[0].path == "smtp.ldf" and top.evidence[0].locator == "line=10"
    # ... with the wrong value in its excerpt (not clipped away behind the DN).
    assert top.evidence[0].excerpt.startswith(f"CN=SMTP (EXCH01-{{{GUID}}}) (CN=Connections): homeMDB=CN=Old Store")
    assert any(e.path == "smtp.ldf" for e in f.evidence)
    rem = top.remediation
    i_set = next(i for i, r in enumerate(rem) if r.startswith("Set homeMDB to: CN=Mailbox Store (EXCH01)"))
    i_mount = next(i for i, r in enumerate(rem) if r.startswith("Dismount all information stores"))
    assert i_set < i_mount
    assert not any("homeMTA" in r and r.startswith("Set ") for r in rem)
    # The change as an LDIF modify, valid for the parser.
    mod = f.attachments["smtp-mailgateway-fix.ldf"]
    # The object exists: no "create a new object" file beside the fix.
    assert set(f.attachments) == {"smtp-mailgateway-fix.ldf"}
    assert max(len(x) for x in mod.splitlines()) <= 72
    (row,) = _ldif_rows(mod, tmp_path).to_dict("records")
    data = row_data(row["data"])
    assert data["changetype"] == "modify"
    assert data["homemdb"] == [(f"CN=Mailbox Store (EXCH01),CN=First Storage Group,CN=InformationStore,"
                                f"CN=EXCH01,CN=Servers,{AGDN}")]
    assert "homemta" not in data
    # A correct object: no modify file, and the attributes are ruled out.
    (g,) = run([ev326(), ev1194(), gateway_entry(), store_entry()])
    assert set(g.attachments) == {"smtp-mailgateway.ldf"}
    assert causes(g)["smtp-mailbox-attributes"] == "ruled_out"


def test_inconclusive_causes_explain_themselves():
    (f,) = run(tracking(retries=3))
    by_id = {c.id: c.explanation for c in f.causes}
    assert by_id["smtp-mailbox-missing"][0].isupper() and by_id["smtp-mailbox-attributes"][0].isupper()
    assert by_id["smtp-mailbox-missing"] != by_id["smtp-mailbox-attributes"]
    assert "every 5 min" in by_id["smtp-mailbox-missing"]
    assert "2007-03-12 22:53:18 UTC" in by_id["smtp-mailbox-missing"]
    assert "Active Directory export" in by_id["smtp-mailbox-attributes"]


def test_text_report_fits_80_columns(tmp_path):
    """What an engineer reads: every line of this check's text report,
    the LDIF included, fits an 80-column terminal."""
    from analyzer.render.text import render_text
    from analyzer.report import analyze
    wrong = f"CN=Old Store,CN=Second Storage Group,CN=InformationStore,CN=EXCH02,CN=Servers,{AGDN}"
    for rows in ([ev326(), ev1194(), *tracking()],
                 [ev326(), ev1194(), *tracking(), gateway_entry(home_mdb=wrong), store_entry()]):
        report = analyze(_case(rows), checks=[CHECK.id]).to_dict()
        text = render_text(report, verbose=True)
        assert "version: 1" in text  # the LDIF is shown
        text += render_text(report)
        long = [x for x in text.splitlines() if len(x) > 80]
        assert not long, long


# --- end to end: scenarios -------------------------------------------------------

def _scenarios():
    from scenarios import smtp_mailbox
    return smtp_mailbox.SCENARIOS


def _load_scenario(scenario, tmp_path):
    from scenarios import build
    target = build(scenario, tmp_path)
    case = load_case(target / "case")
    validate(case.table)
    # Every event log of the scenario must have been read by its source.
    unread = [e.path for e in case.inventory
              if e.path.lower().endswith((".evt", ".evtx")) and e.status != "parsed"]
    assert not unread, unread
    return case


@pytest.mark.parametrize("scenario", _scenarios(), ids=lambda s: s.name)
def test_scenarios_end_to_end(scenario, tmp_path):
    case = _load_scenario(scenario, tmp_path)
    findings = CHECK.run(case)
    for exp in scenario.expected:
        if exp.check != CHECK.id:
            continue
        match = [f for f in findings if f.status == exp.status
                 and (f.top_cause.id if f.top_cause else None) == exp.top_cause]
        assert match, [(f.host, f.status, f.top_cause and f.top_cause.id, f.summary) for f in findings]
        assert len(findings) == 1, "one host in every smtp scenario"


def _scenario(name):
    return next(s for s in _scenarios() if s.name == name)


def test_text_export_only_end_to_end(tmp_path):
    case = _load_scenario(_scenario("smtp-mailbox-stuck-text-export"), tmp_path)
    (f,) = CHECK.run(case)
    assert f.status == "problem" and f.facts["error_codes"] == ["0x80040158"]
    assert f.facts["event_326_count"] == 2 and f.facts["event_1194_count"] == 1
    assert all(e.path == "EXCH01 application events.txt" and e.locator.startswith("line=")
               for e in f.evidence)
    # No FQDN and no AD export: the domain is a marked placeholder.
    assert "<FILL IN: forest root domain" in unfold(f.attachments["smtp-mailgateway.ldf"])


def test_tracking_only_end_to_end(tmp_path):
    case = _load_scenario(_scenario("smtp-mailbox-tracking-only"), tmp_path)
    (f,) = CHECK.run(case)
    assert f.status == "inconclusive"
    loops = {lp["message_id"]: lp for lp in f.facts["retry_loops"]}
    lp = loops["<20070312225215.3F1A@mail.fabrikam.com>"]
    assert lp["retries"] == 12 and lp["interval_seconds"] == 300
    assert lp["recipients"] == ["alice@contoso.com"]
    assert lp["first"].startswith("2007-03-12T22:53:18") and lp["last"].startswith("2007-03-12T23:48:18")
    assert loops["<20070312225540.77C2@mail.adatum.com>"]["retries"] == 9
    assert len(loops) == 2  # the outbound messages are not local delivery
    assert any("Application event log" in c for c in f.collect)


def test_ldif_wrong_homemdb_end_to_end(tmp_path):
    case = _load_scenario(_scenario("smtp-mailbox-ldif-wrong-homemdb"), tmp_path)
    (f,) = CHECK.run(case)
    assert f.status == "problem" and f.top_cause.id == "smtp-mailbox-attributes"
    expl = f.top_cause.explanation
    assert "homeMDB: expected 'CN=Mailbox Store (EXCH01),CN=First Storage Group" in expl
    assert "found 'CN=Mailbox Store 2 (EXCH01),CN=Second Storage Group" in expl
    assert "legacyExchangeDN" not in expl.split("but:")[1] and "homeMTA" not in expl.split("but:")[1]
    assert any(e.path == "ad/smtp.ldf" for e in f.top_cause.evidence)
    assert "DC=contoso,DC=local" in unfold(f.attachments["smtp-mailgateway-fix.ldf"]) and "<FILL IN" not in unfold(f.attachments["smtp-mailgateway-fix.ldf"])


def test_ldif_wrong_homemdb_with_text_export(tmp_path):
    """The same AD export next to a text export: does not depend on the
    binary event log sources."""
    from scenarios import build, smtp_mailbox as sm
    from scenarios import write_text
    target = build(_scenario("smtp-mailbox-stuck-text-export"), tmp_path)
    wrong = f"CN=Mailbox Store 2 (EXCH01),CN=Second Storage Group,CN=InformationStore,{sm.SERVER_DN}"
    write_text(target / "case" / "ad" / "smtp.ldf", sm._ldif_export(home_mdb=wrong))
    case = load_case(target / "case")
    (f,) = CHECK.run(case)
    assert f.status == "problem" and f.top_cause.id == "smtp-mailbox-attributes"
    assert causes(f)["smtp-mailbox-missing"] == "ruled_out"
    assert "found 'CN=Mailbox Store 2 (EXCH01)" in f.top_cause.explanation
    assert "homeMDB: CN=Mailbox Store (EXCH01),CN=First Storage Group" in unfold(f.attachments["smtp-mailgateway-fix.ldf"])
    # With a correct homeMDB the attributes are ruled out instead.
    write_text(target / "case" / "ad" / "smtp.ldf", sm._ldif_export(home_mdb=sm.STORE_DN))
    (g,) = CHECK.run(load_case(target / "case"))
    assert causes(g)["smtp-mailbox-attributes"] == "ruled_out"
    assert g.top_cause.id == "smtp-mailbox-missing"


KB_EVENTS = """Event Type: Error
Event Source: MSExchangeTransport
Event Category: Exchange Store Driver
Event ID: 326
Date: 9/12/2003
Time: 10:41:02 PM
User: N/A
Computer: EXCH01
Description:
Service Account failed to logon to the store as /o=organization/ou=First Administrative Group/cn=Configuration/cn=Connections/cn=SMTP (EXCH01)/cn={CCCF3BE6-219C-4379-985D-851B766EDDC7}. Error code : 0x80040158. For more information, click http://search.support.microsoft.com/search/?adv=1.

Event Type: Error
Event Source: MSExchangeIS
Event Category: General
Event ID: 1194
Date: 9/12/2003
Time: 10:41:04 PM
User: N/A
Computer: EXCH01
Description:
Accept clients on external interface SMTP failed with error 0x80004005. For more information, click http://search.support.microsoft.com/search/?adv=1.
"""

KB_TRAIL = """2003-9-12 22:53:18 SMTP: Message Delivered Locally to recipient@contoso.com
2003-9-12 22:53:18 SMTP: Message Scheduled to Retry Local Delivery 2003-9-12 22:58:18 SMTP: Message Delivered Locally to recipient@contoso.com
2003-9-12 22:58:18 SMTP: Message Scheduled to Retry Local Delivery 2003-9-12 23:03:18 SMTP: Message Delivered Locally to recipient@contoso.com
2003-9-12 23:03:18 SMTP: Message Scheduled to Retry Local Delivery
"""


def test_kb_text_exports_and_pasted_tracking_history(tmp_path):
    """The article's own event blocks (0x80040158) and its Message Tracking
    Center history (no message id), as two pasted text files."""
    from scenarios import write_text
    write_text(tmp_path / "events.txt", KB_EVENTS)
    write_text(tmp_path / "tracking history.txt", KB_TRAIL)
    case = load_case(tmp_path)
    assert {e.path: e.source for e in case.inventory} == {"events.txt": "eventtext",
                                                          "tracking history.txt": "tracking"}
    (f,) = CHECK.run(case)
    assert f.host == "EXCH01" and f.status == "problem"
    assert causes(f)["smtp-mailbox-missing"] == "confirmed"
    assert f.facts["organization"] == "organization" and f.facts["error_codes"] == ["0x80040158"]
    (loop,) = f.facts["retry_loops"]
    assert loop["retries"] == 3 and loop["interval_seconds"] == 300
    assert loop["recipients"] == ["recipient@contoso.com"]
    # Only the trail alone: inconclusive.
    (tmp_path / "events.txt").unlink()
    (g,) = CHECK.run(load_case(tmp_path))
    assert g.status == "inconclusive" and g.facts["retry_loops"][0]["retries"] == 3


def test_to_evtx_reads_back_with_rust_evtx(tmp_path):
    """noise.to_evtx output as a second reader sees it: provider, qualifiers,
    EventSourceName, level, unnamed insertion strings."""
    evtx = pytest.importorskip("evtx")
    import json

    from scenarios import noise
    from analyzer.synth.evtx import write_evtx
    specs = [noise.EventSpec("MSExchangeTransport", 326, "error", T0, "Application", HOST, [DN, "0x80040148"]),
             noise.EventSpec("DCOM", 10016, "error", T0, "System", HOST, ["a", "b"],
                             evtx_provider="Microsoft-Windows-DistributedCOM"),
             noise.EventSpec("Microsoft-Windows-Security-Auditing", 4625, "audit_failure", T0, "Security",
                             HOST, named={"TargetUserName": "bob"})]
    write_evtx(tmp_path / "x.evtx", noise.to_evtx(specs))
    recs = [json.loads(r["data"])["Event"] for r in evtx.PyEvtxParser(str(tmp_path / "x.evtx")).records_json()]
    s0, s1, s2 = (r["System"] for r in recs)
    assert s0["Provider"]["#attributes"]["Name"] == "MSExchangeTransport"
    assert s0["EventID"] == {"#attributes": {"Qualifiers": 49152}, "#text": 326}
    assert s0["Level"] == 2 and s0["Computer"] == HOST
    assert recs[0]["EventData"]["Data"]["#text"] == [DN, "0x80040148"]
    assert s1["Provider"]["#attributes"] == {"Name": "Microsoft-Windows-DistributedCOM", "EventSourceName": "DCOM"}
    assert s2["EventID"] == 4625  # manifest provider: no Qualifiers
    assert recs[2]["EventData"] == {"TargetUserName": "bob"}
