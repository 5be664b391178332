"""Event text/CSV/XML exports and the message catalog (analyzer/sources/eventtext.py,
analyzer/messages.py)."""
from __future__ import annotations

import codecs
import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from analyzer import messages
from analyzer.case import load_case
from analyzer.sources import Options, ParseContext, get
from analyzer.table import rows_to_frame, validate

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "eventtext"
REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
SOURCES = ("eventtext", "eventxml", "eventcsv")


def parse(path: Path, name: str) -> tuple[list[dict], ParseContext]:
    ctx = ParseContext(path=path.name, fs_path=path, options=Options())
    rows = [dict(r, source=name, path=path.name) for r in get(name).parse(ctx)]
    validate(rows_to_frame(rows))
    return rows, ctx


def sniffs(path: Path) -> dict[str, int]:
    head = path.read_bytes()[:65536]
    return {n: get(n).sniff(head, path.name) for n in SOURCES}


def by_id(rows: list[dict], eid: int) -> list[dict]:
    return [r for r in rows if r["event_id"] == eid]


# ---------------------------------------------------------------- sniffing

EXPECTED_OWNER = {
    "kb_blocks.txt": "eventtext", "mom2005_console_seed000.txt": "eventtext",
    "kb828938_seed004.txt": "eventtext", "vista_copy_details.txt": "eventtext",
    "wevtutil_text.txt": "eventtext", "wevtutil_qe.xml": "eventxml",
    "eventviewer_export.xml": "eventxml", "saveas2003.csv": "eventcsv",
    "saveas2003.txt": "eventcsv", "getwinevent_exportcsv.csv": "eventcsv",
    "getwinevent_select.csv": "eventcsv", "vista_saveas.csv": "eventcsv",
}


@pytest.mark.parametrize("fname,owner", sorted(EXPECTED_OWNER.items()))
def test_each_variant_claimed_by_exactly_its_parser(fname: str, owner: str) -> None:
    scores = sniffs(FIX / fname)
    assert scores[owner] >= 50, scores
    assert all(v == 0 for k, v in scores.items() if k != owner), scores


@pytest.mark.parametrize("fname", ["not_netstat.txt", "not_rpcdump.txt", "not_setup_progress.log",
                                   "not_export.reg", "not_msgtrk.log"])
def test_other_formats_not_claimed(fname: str) -> None:
    assert sniffs(FIX / fname) == {n: 0 for n in SOURCES}


def test_seed_articles_are_claimed_when_present() -> None:
    seeds = REPO.parent / "shared" / "seeds"
    if not seeds.is_dir():
        pytest.skip("shared/seeds not present")
    assert sniffs(seeds / "000_f5c114eeaf07cdcd.txt")["eventtext"] >= 50
    assert sniffs(seeds / "004_7963f6dc3f51e8fa.txt")["eventtext"] >= 50


# ---------------------------------------------------------------- KB blocks

def test_kb_blocks_all_shapes() -> None:
    rows, ctx = parse(FIX / "kb_blocks.txt", "eventtext")
    assert [r["event_id"] for r in rows] == [5389, 3080, 2155, 10000, 1020, 10000, 529, 681, 1194]
    assert ctx.warnings == []
    kms = rows[0]
    assert (kms["provider"], kms["level"], kms["host"], kms["category"]) == \
        ("MSExchangeKMS", "information", "THE", "None")
    assert kms["ts"] == datetime(2000, 9, 13, 17, 56, 6) and kms["ts_source"] == "local"
    assert kms["user"] is None  # N/A
    assert kms["message"].startswith("Microsoft Exchange Key Management service is exiting")
    assert rows[2]["provider"] == "MSExchangeMTA" and rows[2]["level"] == "warning"
    imc = rows[3]
    assert (imc["provider"], imc["level"], imc["category"]) == ("MSExchangeIMC", "error", "Addressing")
    assert rows[4]["category"] == "(1)" and rows[4]["ts"] == datetime(2010, 5, 11, 10, 0, 43)
    dcom = rows[5]
    assert dcom["provider"] == "DCOM"
    assert json.loads(json.dumps(dcom["data"]))["strings"] == [
        "C:\\FCWSCO~1\\TSCOMP~1\\TSNAVB~1.EXE -Embedding", "231", "{8381FDF0-36C7-11D2-8EBD-00C04FD054E0}"]
    is1194 = rows[8]
    assert is1194["level"] == "error" and is1194["data"]["binary"] == "05400080010000002d000000"
    assert "Help and Support Center" in is1194["message"]
    assert "Data:" not in is1194["message"]


def test_security_529_681_fields_extracted() -> None:
    rows, _ = parse(FIX / "kb_blocks.txt", "eventtext")
    e529 = by_id(rows, 529)[0]
    assert e529["channel"] == "Security"
    d = e529["data"]
    assert d["TargetUserName"] == "username"
    assert d["LogonType"] == "3"
    assert d["LogonProcessName"] == "NtLmSsp"
    assert d["AuthenticationPackageName"] == "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0"
    assert d["WorkstationName"] == "Workstation computer name"
    e681 = by_id(rows, 681)[0]
    assert e681["data"]["Status"] == "0xC0000064"
    assert e681["data"]["Status_text"] == "3221225572"
    assert e681["data"]["Workstation"] == "WORKSTATION COMPUTER NAME"


def test_mom_console_blocks_from_seed_000() -> None:
    rows, ctx = parse(FIX / "mom2005_console_seed000.txt", "eventtext")
    assert [(r["provider"], r["event_id"]) for r in rows] == [
        ("Exchange MOM", 9986), ("Exchange MOM", 9970), ("Exchange MOM", 10000),
        ("Exchange MOM", 9972), ("Exchange MOM", 10001), ("DCOM", 10000)]
    mom = rows[:5]
    assert {r["channel"] for r in mom} == {"MOM"}
    ok = rows[0]
    assert ok["host"] == "Exchange_Server_Name"  # glued "Exchange_Server_NameTime:"
    assert ok["level"] == "information"
    assert ok["data"]["Provider Name"] == "Script-generated Data"  # wrapped value
    assert ok["data"]["Provider Type"] == "Generic Provider"
    assert ok["data"]["Domain"] == "Domain_Name"
    assert ok["message"].startswith("Successfully published Exchange Management Pack data")
    assert "Domain:" not in ok["message"]
    assert rows[3]["provider"] == "Exchange MOM"  # "Source: Exchange" / "MOM" wrapped
    assert rows[4]["message"].startswith("Failed to create the object 'EMPKP.PubKeyPublisher'")
    dcom = rows[5]
    assert dcom["channel"] is None and dcom["level"] == "error"
    assert dcom["user"] == "NT AUTHORITY\\LOCAL SERVICE"  # glued "TimeUser:"
    assert dcom["host"] == "Exchange_Server_Name"
    assert "{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}" in dcom["message"]
    assert dcom["ts"] is None and dcom["data"]["date_text"] == "Date Time"  # placeholders


def test_kb_blocks_inside_article_prose_seed_004() -> None:
    rows, _ = parse(FIX / "kb828938_seed004.txt", "eventtext")
    assert [(r["provider"], r["event_id"], r["level"]) for r in rows] == [
        ("MSExchangeTransport", 326, "error"), ("MSExchangeTransport", 326, "error"),
        ("MSExchangeIS", 1194, "error")]
    assert "0x80040148" in rows[0]["message"] and "0x80040158" in rows[1]["message"]
    assert rows[0]["category"] == "Exchange Store Driver"
    assert rows[0]["locator"] == "line=1" and rows[1]["locator"] == "line=13"


# ---------------------------------------------------------------- Vista+ / wevtutil

def test_vista_copy_details_with_escaped_and_broken_xml() -> None:
    rows, ctx = parse(FIX / "vista_copy_details.txt", "eventtext")
    assert len(rows) == 3 and ctx.warnings == []
    t = rows[0]
    assert (t["provider"], t["event_id"], t["qualifiers"], t["record_id"]) == \
        ("MSExchangeTransport", 16023, 49156, 788099)
    # XML SystemTime (UTC) wins over the local Date: line (6 h earlier).
    assert t["ts"] == datetime(2013, 1, 17, 22, 19, 11, tzinfo=timezone.utc) and t["ts_source"] == "utc"
    assert t["data"]["local_time"] == "1/17/2013 4:19:11 PM"
    assert t["category"] == "Configuration" and t["level"] == "error"
    assert "Event Xml" not in t["message"] and "--- End of inner exception" in t["message"]
    om = rows[1]
    assert (om["channel"], om["provider"], om["event_id"], om["qualifiers"]) == \
        ("Operations Manager", "HealthService", 2010, 49152)
    dcom = rows[2]
    assert dcom["provider"] == "Microsoft-Windows-DistributedCOM"
    assert dcom["data"]["EventSourceName"] == "DCOM"
    assert dcom["data"]["param4"] == "{C08AFD90-F2A1-11D1-8455-00A0C91F3880}"
    assert dcom["user"] == "S-1-5-21-3461203602-4096304019-2269080069-1000"


def test_wevtutil_text() -> None:
    rows, ctx = parse(FIX / "wevtutil_text.txt", "eventtext")
    assert len(rows) == 5
    assert [r["locator"] for r in rows] == ["line=1", "line=16", "line=31", "line=68", "line=86"]
    scm = rows[0]
    assert scm["ts"] == datetime(2016, 5, 15, 17, 0, 51, 526000) and scm["ts_source"] == "local"
    assert scm["message"] == "The Multimedia Class Scheduler service entered the stopped state."
    assert scm["channel"] == "System" and scm["host"] == "Kot"
    assert rows[1]["message"].startswith("The Us") and "Google Update" in rows[1]["message"]
    f4625 = rows[2]
    assert f4625["level"] == "audit_failure"
    d = f4625["data"]
    assert d["TargetUserName"] == "torrentbox" and d["SubjectUserName"] == "-"
    assert d["Status"] == "0xC000006D" and d["SubStatus"] == "0xC0000064"
    assert d["LogonType"] == "3" and d["AuthenticationPackageName"] == "NTLM"
    assert "Logon Type:" in f4625["message"]  # description labels are not block labels
    f4776 = rows[3]["data"]
    assert (f4776["TargetUserName"], f4776["Workstation"], f4776["Status"]) == \
        ("Administrator", "TEMPORAL", "0xC000006A")
    bad = rows[4]
    assert bad["event_id"] is None and bad["data"]["event_id_text"] == "abc"
    assert [(w.locator, "unreadable event id" in w.message) for w in ctx.warnings] == [("line=86", True)]
    assert ctx.partial


def test_wevtutil_xml_without_root_with_junk_and_truncation() -> None:
    rows, ctx = parse(FIX / "wevtutil_qe.xml", "eventxml")
    assert [r["event_id"] for r in rows] == [4625, 4776, 1, 10000]
    assert [r["locator"] for r in rows] == ["event=1", "event=2", "event=3", "event=4"]
    e = rows[0]
    assert e["ts"] == pd.Timestamp("2016-08-19T13:56:33.532446Z").to_pydatetime()
    assert e["ts_source"] == "utc" and e["level"] == "audit_failure"
    assert e["data"]["LogonProcessName"] == "User32 "  # padding is data
    assert e["data"]["provider_guid"] == "{54849625-5478-4994-A5BA-3E3B0328C30D}"
    assert "Account Name:\t\tAdministrator" in e["message"]  # rendered from the catalog
    cmd = rows[2]
    assert cmd["data"]["strings"][0] == "Set-Mailbox" and cmd["data"]["binary"] == "0a0b0c"
    assert cmd["qualifiers"] == 16384
    assert rows[3]["parse_status"] == "recovered" and rows[3]["record_id"] == 88
    locs = [w.locator for w in ctx.warnings]
    assert locs == ["line=2", "event=4;line=4"]


def test_eventviewer_xml_export_with_rendering_info() -> None:
    rows, ctx = parse(FIX / "eventviewer_export.xml", "eventxml")
    assert ctx.warnings == []
    crash, bp = rows
    assert crash["provider"] == "Application Error" and crash["event_id"] == 1000
    assert crash["message"].startswith("Faulting application store.exe, version 8.1.375.2")
    assert "faulting module EXCDO.DLL" in crash["message"]
    assert bp["message"] == "Resource pressure increased from Normal to Medium."
    assert bp["category"] == "ResourceManager" and bp["level"] == "warning"


def test_xml_entities_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    p = tmp_path / "evil.xml"
    p.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE Events [<!ENTITY x SYSTEM "file://{secret}">]>\n'
                 '<Events><Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">'
                 '<System><Provider Name="X"/><EventID>5</EventID></System>'
                 '<EventData><Data Name="a">&x;</Data></EventData></Event></Events>')
    rows, _ = parse(p, "eventxml")
    assert len(rows) == 1 and rows[0]["event_id"] == 5
    assert "TOPSECRET" not in json.dumps(rows[0]["data"])


# ---------------------------------------------------------------- CSV / TAB

@pytest.mark.parametrize("fname", ["saveas2003.csv", "saveas2003.txt"])
def test_2003_save_as(fname: str) -> None:
    rows, ctx = parse(FIX / fname, "eventcsv")
    assert ctx.warnings == []
    assert [r["event_id"] for r in rows][:2] == [10000, 7036]
    dcom = rows[0]
    assert (dcom["provider"], dcom["level"], dcom["user"], dcom["host"]) == \
        ("DCOM", "error", "NT AUTHORITY\\LOCAL SERVICE", "EXCH01")
    assert dcom["ts"] == datetime(2006, 8, 14, 2, 0, 5) and dcom["ts_source"] == "local"
    assert "Happened while starting this command" in dcom["message"]  # multi-line description
    assert rows[1]["locator"] == "line=4"


def test_2003_csv_security_fields() -> None:
    rows, _ = parse(FIX / "saveas2003.csv", "eventcsv")
    e = by_id(rows, 529)[0]
    assert e["level"] == "audit_failure" and e["channel"] == "Security"
    assert e["data"]["TargetUserName"] == "jdoe" and e["data"]["WorkstationName"] == "WS01"


def test_getwinevent_export_csv() -> None:
    rows, ctx = parse(FIX / "getwinevent_exportcsv.csv", "eventcsv")
    assert len(rows) == 2 and ctx.warnings == []
    assert any("EventLogRecord" in n for n in ctx.notes)
    bp, f = rows
    assert (bp["provider"], bp["event_id"], bp["qualifiers"], bp["record_id"]) == \
        ("MSExchangeTransport", 15004, 32772, 5502)
    assert "Version buckets = 130" in bp["message"] and "\n" in bp["message"]
    assert bp["locator"] == "line=3"
    assert "Properties" not in bp["data"]
    assert f["level"] == "audit_failure"  # Keywords bit, printed as signed Int64
    assert f["data"]["TargetUserName"] == "jdoe" and f["data"]["SubStatus"] == "0xC0000064"
    assert f["locator"] == "line=8"


def test_select_subset_csv_and_localized_level() -> None:
    rows, _ = parse(FIX / "getwinevent_select.csv", "eventcsv")
    assert [(r["channel"], r["provider"], r["event_id"], r["level"]) for r in rows] == [
        ("System", "Microsoft-Windows-DistributedCOM", 10016, "error"),
        ("Application", "MSExchangeTransport", 326, "error")]


def test_vista_save_as_csv() -> None:
    rows, _ = parse(FIX / "vista_saveas.csv", "eventcsv")
    assert [r["event_id"] for r in rows] == [10016, 7036]
    assert "{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}" in rows[0]["message"]
    assert rows[1]["message"] == "The Windows Update service entered the running state."


# ---------------------------------------------------------------- encodings

def _variants(text: str) -> dict[str, bytes]:
    crlf = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return {
        "utf8": text.encode("utf-8"),
        "utf8-bom": codecs.BOM_UTF8 + crlf.encode("utf-8"),
        "utf16le-bom": codecs.BOM_UTF16_LE + crlf.encode("utf-16-le"),
        "cp1252-crlf": crlf.encode("cp1252"),
    }


KB_TEXT = ("Event Type:\tError\nEvent Source:\tMSExchangeTransport\nEvent Category:\tExchange Store Driver\n"
           "Event ID:\t326\nDate:\t\t13.09.2003\nTime:\t\t22:53:18\nUser:\t\tN/A\nComputer:\tSERVEUR\n"
           "Description:\nService Account failed to logon to the store as /o=Société/cn=SMTP. "
           "Error code : 0x80040148.\n")


@pytest.mark.parametrize("enc", ["utf8", "utf8-bom", "utf16le-bom", "cp1252-crlf"])
def test_kb_block_encodings(tmp_path: Path, enc: str) -> None:
    p = tmp_path / f"ev-{enc}.txt"
    p.write_bytes(_variants(KB_TEXT)[enc])
    assert sniffs(p)["eventtext"] >= 50
    rows, ctx = parse(p, "eventtext")
    assert ctx.warnings == [] and len(rows) == 1
    r = rows[0]
    assert r["event_id"] == 326 and r["host"] == "SERVEUR"
    assert r["ts"] == datetime(2003, 9, 13, 22, 53, 18)  # dotted date = D.M.Y
    assert "/o=Société/cn=SMTP" in r["message"]
    assert not r["message"].endswith("\r")


@pytest.mark.parametrize("enc", ["utf8-bom", "utf16le-bom"])
def test_csv_and_xml_utf16(tmp_path: Path, enc: str) -> None:
    for fname, src in (("getwinevent_exportcsv.csv", "eventcsv"), ("wevtutil_qe.xml", "eventxml")):
        p = tmp_path / f"{enc}-{fname}"
        p.write_bytes(_variants((FIX / fname).read_text(encoding="utf-8"))[enc])
        assert sniffs(p)[src] >= 50
        rows, _ = parse(p, src)
        assert len(rows) in (2, 4)
        assert rows[0]["event_id"] in (15004, 4625)


def test_german_vista_labels(tmp_path: Path) -> None:
    text = ("Protokollname: System\nQuelle:        DCOM\nDatum:         02.03.2006 02:00:05\n"
            "Ereignis-ID:   10000\nAufgabenkategorie:Keine\nEbene:         Fehler\nBenutzer:      SYSTEM\n"
            "Computer:      EXCH01\nBeschreibung:\nDCOM konnte den Server nicht starten.\n")
    p = tmp_path / "de.txt"
    p.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    rows, _ = parse(p, "eventtext")
    assert [(r["provider"], r["event_id"], r["level"], r["channel"]) for r in rows] == [
        ("DCOM", 10000, "error", "System")]
    assert rows[0]["ts"] == datetime(2006, 3, 2, 2, 0, 5)


def test_unparseable_block_warns_and_continues(tmp_path: Path) -> None:
    p = tmp_path / "bad.txt"
    p.write_text("Event ID: 10000\nEvent Source: DCOM\nEvent Type: Error\n\nNoise\n"
                 "Event[7]:\n  User: N/A\n\nEvent[8]:\n  Log Name: System\n  Source: DCOM\n  Event ID: 10016\n"
                 "  Description:\nx\n")
    rows, ctx = parse(p, "eventtext")
    assert [r["event_id"] for r in rows] == [10000, 10016]
    assert [w.locator for w in ctx.warnings] == ["line=6"]


# ---------------------------------------------------------------- messages

def test_catalog_covers_every_cited_event() -> None:
    cited = [("DCOM", 10000), ("DCOM", 10016)] + [("Exchange MOM", i) for i in
             (9970, 9972, 9986, 9987, 10000, 10001)] + [("MSExchangeTransport", i) for i in
             (326, 15004, 15005, 15006, 15007)] + [("MSExchangeIS", 1194)] + [
             ("Security", i) for i in (529, 681, 4625, 4776)] + [("Application Error", 1000)]
    for prov, eid in cited:
        e = messages.lookup(prov, eid)
        assert e is not None, (prov, eid)
        assert e["meaning"] and e["level"] and e["refs"]


def test_render_keys_on_provider_and_id() -> None:
    dcom = messages.render("Microsoft-Windows-DistributedCOM", 10000,
                           {"param1": "C:\\x\\empkp.exe -Embedding", "param2": "193",
                            "param3": "{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}"})
    assert dcom.startswith("Unable to start a DCOM Server: {94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}.")
    assert "empkp.exe -Embedding" in dcom
    mom = messages.render("exchange mom", 10000, {"strings": ["EXCH01"]})
    assert mom.startswith("Failed to publish Exchange Management Pack data") and "EXCH01" in mom
    t = messages.render("MSExchangeTransport", 326, ["/o=org/cn=SMTP", "0x80040148"])
    assert t == "Service Account failed to logon to the store as /o=org/cn=SMTP. Error code : 0x80040148."
    # classic .evt ids carry qualifiers in the top bits
    assert messages.lookup("MSExchangeIS", (0xC000 << 16) | 1194)["id"] == 1194


def test_render_fallback() -> None:
    assert messages.render("Foo", 7, {"strings": ["a", "b"]}) == "Foo event 7: a; b"
    assert messages.render("Foo", 7, {"Name": "x", "provider_guid": "{1}"}) == "Foo event 7: Name=x"
    assert messages.render("Foo", 7, None) is None
    fb = messages.render("Exchange MOM", 9987, {"strings": ["EXCH01"]})
    assert "ExMPLS" in fb and fb.endswith("EXCH01")


@pytest.mark.parametrize("text", ["0xC0000064", "0xc0000064", "C0000064", "3221225572", "-1073741724",
                                  "3221225572."])
def test_status_code_forms(text: str) -> None:
    assert messages.status_code(text) == "0xC0000064"


# ---------------------------------------------------------------- integration

def test_load_case_on_fixture_folder(tmp_path: Path) -> None:
    case = load_case(FIX)
    validate(case.table)
    inv = {e.path: e for e in case.inventory}
    for fname, owner in EXPECTED_OWNER.items():
        assert inv[fname].source == owner, (fname, inv[fname])
    for fname in ("not_netstat.txt", "not_rpcdump.txt", "not_setup_progress.log", "not_export.reg",
                  "not_msgtrk.log"):
        assert inv[fname].source not in SOURCES
    assert inv["kb_blocks.txt"].status == "parsed" and inv["kb_blocks.txt"].rows == 9
    assert inv["wevtutil_qe.xml"].status == "partial"
    mom = case.events(provider="Exchange MOM", event_id=9986)
    assert len(mom) == 1 and mom.iloc[0]["channel"] == "MOM"
    dcom = case.events(provider="DCOM", event_id=10000)
    assert len(dcom) >= 4  # KB, seed 000, 2003 .csv/.txt, wevtutil xml
    assert set(case.events(provider="DCOM", event_id=10016)["path"].astype(str)) >= {
        "vista_copy_details.txt", "getwinevent_select.csv", "vista_saveas.csv"}


def test_corpus_evtx_rendered_as_wevtutil_xml(tmp_path: Path) -> None:
    """Real Windows XML (rendered from a corpus .evtx by the Rust reader)
    written out as a root-less wevtutil /f:xml file parses record for record."""
    src = CORPUS / "evtx" / "Security_short_selected.evtx"
    if not src.is_file():
        pytest.skip("shared corpus not present")
    evtx = pytest.importorskip("evtx")
    recs = list(evtx.PyEvtxParser(str(src)).records())
    body = "".join(r["data"].split("?>", 1)[-1].strip() for r in recs)
    p = tmp_path / "qe.xml"
    p.write_text(body, encoding="utf-8")
    assert sniffs(p)["eventxml"] >= 50
    rows, ctx = parse(p, "eventxml")
    assert ctx.warnings == []
    want = [int(re.search(r"<EventRecordID>(\d+)</EventRecordID>", r["data"]).group(1)) for r in recs]
    assert [r["record_id"] for r in rows] == want
    assert 4625 in {r["event_id"] for r in rows}
    f = by_id(rows, 4625)[0]
    assert f["data"]["FailureReason"] == "%%2313" and f["level"] == "audit_failure"


def test_dcom_10016_template_follows_the_number_of_insertion_strings():
    """Windows 2003 writes 7 strings, 2008 writes 9, Windows 8+ 11: each has its text."""
    from analyzer.messages import render

    w2003 = render("DCOM", 10016, {"strings": ["application-specific", "Local", "Launch",
                                                "{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}",
                                                "NT AUTHORITY", "SYSTEM", "S-1-5-18"]})
    assert "CLSID {94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380} to the user NT AUTHORITY\\SYSTEM SID (S-1-5-18)" in w2003
    assert "%" not in w2003
    w8 = render("Microsoft-Windows-DistributedCOM", 10016,
                {f"param{i}": v for i, v in enumerate(
                    ["machine-default", "Local", "Activation", "{C}", "{A}", "NT AUTHORITY",
                     "LOCAL SERVICE", "S-1-5-19", "LocalHost (Using LRPC)", "Unavailable",
                     "Unavailable"], 1)})
    assert "APPID\n{A}" in w8 and "application container Unavailable" in w8
