"""The finding's words for one server: summary, evidence, what to collect
and the remediation of the leading cause."""
from __future__ import annotations

from ...findings import Cause, Evidence
from .facts import Facts
from .model import K, ev, fmt_ts


def summary(f: Facts, status: str) -> str:
    c = f.conn
    stores = f"store {{{c.guid}}}" if c else ""
    if c and f.other_conns:
        stores += f" and {len(f.other_conns)} other store(s)"
    if status == "problem":
        s = (f"Local delivery on {c.server} is blocked: the store refuses the SMTP connection "
             f"mailbox of {stores} (MSExchangeTransport 326" + (", MSExchangeIS 1194" if f.accept else "") + ")")
        if f.loops:
            lf = f.facts["retry_loops"][0]
            s += (f"; {len(f.loops)} message(s) retry local delivery ({lf['retries']} retries of "
                  f"{lf['message_id']})")
        return s + "."
    if status == "inconclusive" and c:
        if f.delivered_after:
            return (f"MSExchangeTransport 326 named the SMTP connection mailbox of {stores} on "
                    f"{c.server} (last failure {fmt_ts(f.last_fail)}), but {len(f.delivered_after)} "
                    "message(s) were delivered to the store after it without retries: the problem may be "
                    "resolved; check the Local Delivery queue.")
        return (f"MSExchangeTransport 326 names the SMTP connection mailbox of {stores} on {c.server}, but "
                "nothing shows messages stuck in local delivery (no MSExchangeIS 1194, no tracking retry "
                "loop): collect the message tracking logs.")
    if status == "ok":
        return (f"Local delivery completes: {len(f.healthy)} message(s) delivered locally without "
                "retries, and no event 326 names the SMTP connection mailbox.")
    if f.loops:
        return (f"{len(f.loops)} message(s) keep retrying local delivery, but no MSExchangeTransport "
                "326 naming the SMTP connection mailbox is in the case: collect the Application log.")
    if f.accept:
        return ("MSExchangeIS 1194: the store did not accept SMTP clients, but no 326 names the SMTP "
                "connection mailbox and no tracking shows the delivery loop.")
    if f.other_logons:
        return ("MSExchangeTransport 326 is present but names another DN than the SMTP connection "
                "mailbox: not this problem; no tracking log shows whether local delivery completes.")
    return ("Exchange transport evidence is present but nothing shows whether local delivery "
            "completes: collect message tracking logs.")


def evidence(f: Facts, status: str) -> list[Evidence]:
    out = f.ev_326(5) + [ev(r) for r in f.accept[:3]] + f.ev_loop() + list(f.ad.get("evidence", []))
    out += [ev(r) for _, r in f.delivered_after[:3]]
    if status == "ok":
        out += [ev(m.store_delivered[-1] if m.store_delivered else m.delivered[-1]) for m in f.healthy[:3]]
    if status in ("ok", "inconclusive"):
        out += [ev(lg.row) for lg in f.other_logons[:2]]
    return out


def collect(f: Facts, status: str) -> list[str]:
    """The Application log around a mount, tracking logs, the LDIF exports
    that would tell a missing object from wrong attributes."""
    if status == "ok":
        return []
    host, c = f.host, f.conn
    if not c:
        out = [f"The Application event log of {host or 'the Exchange server'} (.evt/.evtx, or an export with "
               "descriptions) covering a dismount and mount of the information stores: MSExchangeTransport "
               "326 and MSExchangeIS 1194 are logged at mount time."]
        if not f.loops:
            out.append(f"Message tracking logs of {host or 'the server'} (Exchsrvr\\<SERVER>.log\\yyyymmdd.log) "
                       "for the days messages were stuck, to see whether local delivery is retried.")
        return out
    out = []
    if not f.ad["covered"] and f.ad["object"] is None:
        mg = K["mailgateway"]
        out.append("An LDIF export of the SMTP connection objects, run on a domain controller: "
                   + mg["ldifde_command"].format(**f.names["fmt"]))
        out.append("An LDIF export of the server's stores (to fill in homeMDB and tell a public from a "
                   "private store): " + mg["ldifde_stores_command"].format(**f.names["fmt"]))
    if f.delivered_after:
        out.append(f"The current Local Delivery queue of {c.server} (Exchange System Manager, Queues) and its "
                   "Application log since the last mount of the stores: is a 326 still logged, do messages "
                   "still wait?")
    elif not f.corroborated:
        out.append(f"Message tracking logs of {c.server} (Exchsrvr\\{c.server}.log\\yyyymmdd.log) for the days "
                   "messages were stuck, to count the local delivery retries, and the whole Application log "
                   "around the 326 (MSExchangeIS 1194).")
    return out


def remediation(f: Facts, causes: list[Cause]) -> list[str]:
    """The leading cause's steps (the missing object's when none leads). The
    text report prints remediation as wrapped paragraphs, so a multi-line
    LDIF is shown under its cause and pointed to here."""
    if not f.conn:
        return []
    top = [c for c in causes if c.verdict in ("confirmed", "likely")]
    chosen = list(top[0].remediation) if top else list(f.miss_rem)
    out = [r.split("\n", 1)[0].rstrip(":").rstrip() + ": see the LDIF under the cause above." if "\n" in r else r
           for r in chosen]
    if f.ad.get("public"):
        out.insert(0, "The store named in event 326 is a public store: it has no system mailbox, so the "
                   "disconnected SMTP mailbox cannot be seen with the Cleanup Agent; recreate the object directly.")
    return out
