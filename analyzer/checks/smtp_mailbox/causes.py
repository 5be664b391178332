"""KB 828938's causes, one function each. With no 326 naming the SMTP
connection mailbox only the first two are weighed (and stay open); with
one, the Active Directory export decides between a missing object and
wrong attributes, and the article's alternatives follow."""
from __future__ import annotations

from ...findings import attachment_file_name
from ..toolkit import CauseTable, Verdict, confirmed, likely, possible, ruled_out
from .facts import Facts
from .model import K, ev, fmt_ts, loop_text

causes = CauseTable()
#: The causes weighed when no 326 names the SMTP connection mailbox.
WITHOUT_326 = ["smtp-mailbox-missing", "smtp-mailbox-attributes"]


def _ok(f: Facts) -> Verdict:
    expl = (f"Message tracking shows {len(f.healthy)} message(s) delivered locally with no "
            "'Scheduled to Retry Local Delivery' entries, and no MSExchangeTransport 326 names "
            "the SMTP connection mailbox.")
    if f.other_logons:
        expl += (" The 326 event(s) present name another legacyExchangeDN (not "
                 "cn=Connections/cn=SMTP (...)): a different logon failure, not this problem.")
    return ruled_out(expl, *[ev(m.store_delivered[-1] if m.store_delivered else m.delivered[-1])
                             for m in f.healthy[:2]], fix=[])


def _open(f: Facts, ending: str) -> Verdict:
    """No 326 names the SMTP mailbox: what the case shows, and why that
    cannot tell the SMTP mailbox from other local delivery failures."""
    why = []
    if f.loops:
        why.append(f"Message tracking shows {len(f.loops)} message(s) retrying local delivery "
                   f"(e.g. {loop_text(f.facts['retry_loops'][0])})")
    if f.accept:
        why.append(f"MSExchangeIS 1194 ({len(f.accept)}x) says the store did not accept SMTP clients")
    if f.blind_logons:
        why.append("MSExchangeTransport 326 is present but its text (message and insertion "
                   "strings) could not be read, so the DN it names is unknown")
    if f.other_logons:
        why.append("the 326 event(s) present name another DN, not the SMTP connection mailbox, "
                   "so they are not this problem")
    common = "; ".join(why) or "Exchange transport events are present but nothing about local delivery"
    common = common[0].upper() + common[1:] + "."
    tail = (" Without MSExchangeTransport 326 naming the SMTP connection's legacyExchangeDN "
            "(cn=Connections/cn=SMTP (<server>)/cn={GUID}) the SMTP mailbox cannot be told "
            "from other local delivery failures.")
    return possible(common + tail + ending, *f.ev_loop(), *[ev(r) for r in f.accept[:2]],
                    *[ev(lg.row) for lg in f.blind_logons[:2]], fix=[])


def base_text(f: Facts) -> str:
    """What event 326 (and 1194, tracking) say, in the article's terms."""
    c = f.conn
    text = (f"MSExchangeTransport 326: the service account failed to log on to the store as the SMTP "
            f"connection mailbox {c.dn} (organization '{c.org}', administrative group '{c.ag}', server "
            f"{c.server}, mailbox store {{{c.guid}}}), error {', '.join(f.codes) or 'code not given'}"
            + ("" if f.kb_code else " (not one of the codes KB 828938 shows)") + ".")
    if f.other_conns:
        text += (" Event 326 also names the SMTP mailbox of store(s) "
                 + ", ".join("{" + o.guid + "}" for o in f.other_conns)
                 + ": apply the same steps to each (the LDIF has one object per store).")
    if f.accept:
        text += f" MSExchangeIS 1194 ({len(f.accept)}x): the store did not accept clients on its SMTP interface."
    if f.loops:
        text += (f" Message tracking: {len(f.loops)} message(s) loop between 'Delivered Locally' and "
                 f"'Scheduled to Retry Local Delivery' (e.g. {loop_text(f.facts['retry_loops'][0])}).")
    if f.delivered_after:
        text += (f" But message tracking shows {len(f.delivered_after)} message(s) delivered to the store "
                 f"without retries after the last failure ({fmt_ts(f.last_fail)}): the SMTP "
                 "mailbox has worked since, so the problem may already be resolved.")
    return text


def _events(f: Facts) -> list:
    return (f.ev_326() + [ev(r) for r in f.accept[:2]] + f.ev_loop()
            + [ev(r) for _, r in f.delivered_after[:2]])


def _with_ad(f: Facts) -> str:
    """How sure a cause the AD export points to is."""
    return "possible" if f.delivered_after else ("confirmed" if f.corroborated else "likely")


@causes("smtp-mailbox-missing", "SMTP mailbox object missing or disconnected", remediation=lambda f: f.miss_rem)
def smtp_mailbox_missing(f: Facts) -> Verdict:
    """KB 828938, Cause: the mailGateway object "SMTP (<server>-{GUID})" in
    CN=Connections is missing, or the SMTP mailbox is disconnected."""
    if f.status() == "ok":
        return _ok(f)
    if not f.conn:
        return _open(f, " A missing or disconnected SMTP mailbox is the article's first cause.")
    ad, c = f.ad, f.conn
    if ad["covered"] and ad["object"] is None:
        return Verdict(_with_ad(f), base_text(f) + f" The Active Directory export covers CN=Connections but "
                       f"has no mailGateway object for SMTP ({c.server}-{{{c.guid}}}) / {c.dn}: the object "
                       "is missing.").cite(*ad["evidence"], *_events(f))
    if ad["object"] is not None and ad["wrong"]:
        return ruled_out(f"The mailGateway object exists in the export ({ad['object_dn']}); its attributes "
                         "are what is wrong.", *ad["evidence"], fix=[])
    if ad["object"] is not None:
        return Verdict("possible" if f.delivered_after else "likely", base_text(f) + " The mailGateway "
                       "object exists in the export with the expected homeMTA, homeMDB and legacyExchangeDN, "
                       "so the SMTP mailbox itself is most likely disconnected in the store (not visible in "
                       "Active Directory): recreate the object as the article says.").cite(*ad["evidence"], *_events(f))
    strength = "possible" if f.delivered_after else "confirmed" if f.corroborated and f.kb_code else "likely"
    return Verdict(strength, base_text(f) + " This is the article's first and most common cause; no Active "
                   "Directory export tells whether the object exists.").cite(*_events(f))


def _attr_fix(f: Facts) -> list[str]:
    attr, fmt = K["remediation"]["attributes"], f.names["fmt"]
    fix = [s.format(**fmt) for s in attr["open"]]
    if f.ad["object"] is not None and f.ad["wrong"]:
        fix += [attr["set"].format(attr=a, value=e, **fmt) for a, e, _ in f.ad["wrong"]]
        fix.append("Or import the change after review (ldifde -i -f <file>; analyze --attachments DIR "
                   f"writes it as {attachment_file_name('smtp-mailbox-stuck', f.host, K['attachments']['modify'])}):\n"
                   + f.modify)
    else:
        fix.append(attr["check_all"].format(**fmt))
    return fix + [s.format(**fmt) for s in attr["after"]]


@causes("smtp-mailbox-attributes", "SMTP mailbox object has wrong attributes", remediation=_attr_fix)
def smtp_mailbox_attributes(f: Facts) -> Verdict:
    """KB 828938: homeMTA, homeMDB or legacyExchangeDN of the mailGateway
    object are wrong; only an Active Directory export can tell."""
    if f.status() == "ok":
        return _ok(f)
    if not f.conn:
        return _open(f, " Wrong homeMTA, homeMDB or legacyExchangeDN on the SMTP mailbox object give the "
                        "same symptoms; only an Active Directory export can tell.")
    ad = f.ad
    if ad["covered"] and ad["object"] is None:
        return ruled_out("There is no such object in the exported CN=Connections, so there are no "
                         "attributes to be wrong.", *ad["evidence"], fix=[])
    if ad["object"] is not None and ad["wrong"]:
        lines = "; ".join(f"{a}: expected {e!r}, found {v!r}" for a, e, v in ad["wrong"])
        return Verdict(_with_ad(f), base_text(f) + f" The mailGateway object exists ({ad['object_dn']}) but: "
                       f"{lines}.").cite(*ad["evidence"], *_events(f))
    if ad["object"] is not None:
        return ruled_out(f"homeMTA, homeMDB and legacyExchangeDN of {ad['object_dn']} match the expected "
                         "values (checked against the export, not necessarily the global catalog the "
                         "server uses).", *ad["evidence"], fix=[])
    expected = "; ".join(f"{k}: {v}" for k, v in f.names["attrs"].items()
                         if k in ("homeMTA", "homeMDB", "legacyExchangeDN"))
    return possible("The same events follow from a mailGateway object whose homeMTA, homeMDB or "
                    f"legacyExchangeDN is wrong; only an Active Directory export can tell. Expected values: "
                    f"{expected}", *_events(f)[:2])


@causes("store-workaround", "Workaround: new store, move the mailboxes",
        remediation=lambda f: [s.format(**f.names["fmt"]) for s in K["remediation"]["workaround"]])
def store_workaround(f: Facts) -> Verdict:
    """The article's workaround when recreating the SMTP mailbox is not possible."""
    public = "the store is a public store, where this does not apply; " if f.ad.get("public") else ""
    return possible("The article's workaround when recreating the SMTP mailbox is not possible: "
                    f"{public}create a new store, move all users to it and delete the old store.", *f.ev_326(1))


@causes("system-mailbox-missing", "SystemMailbox{GUID} of the store missing (KB 316622)",
        remediation=lambda f: [s.format(**f.names["fmt"]) for s in K["remediation"]["system_mailbox"]])
def system_mailbox_missing(f: Facts) -> Verdict:
    """KB 828938 notes the store's SystemMailbox{GUID} (KB 316622)."""
    if f.ad.get("public"):
        return ruled_out("The store named in event 326 is a public store, and a public store has no "
                         "system mailbox.", *f.ad["evidence"][:1])
    return possible(f"The article notes that the store's SystemMailbox{{{f.conn.guid}}} may also need to be "
                    "repaired or recreated before mail flows (KB 316622); nothing in the case shows "
                    "whether it exists.", *f.ev_326(1))
