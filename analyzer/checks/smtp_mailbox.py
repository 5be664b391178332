"""Check ``smtp-mailbox-stuck``: local delivery stuck because the SMTP
connection mailbox is missing, disconnected or mis-attributed (KB 828938).

How the article diagnoses it, and how this check follows it:

1. **Symptom** — messages stay in the Local Delivery queue. Message tracking
   shows the same message "Delivered Locally" and then "Scheduled to Retry
   Local Delivery" over and over (a 1023 without the store really taking it,
   then a 1037, every few minutes). We count the retries per message, the
   interval, first and last time and the recipients.
2. **The store refuses the SMTP mailbox** — when the store is (re)mounted,
   MSExchangeTransport 326 (category Exchange Store Driver) says "Service
   Account failed to logon to the store as <legacyExchangeDN>. Error code :
   0x80040148" (or 0x80040158), and MSExchangeIS 1194 says "Accept clients on
   external interface SMTP failed". The legacyExchangeDN is the SMTP
   connection's: ``/o=<org>/ou=<AG>/cn=Configuration/cn=Connections/cn=SMTP
   (<server>)/cn={<store GUID>}`` — it names the organization, the
   administrative group, the server and, crucially, the mailbox store. A 326
   that names another DN (a user mailbox) is a different problem and is not
   read as this one, whatever its error code.
3. **Cause** — either the mailGateway object ``SMTP (<server>-{<GUID>})`` in
   ``CN=Connections`` is missing or the SMTP mailbox is disconnected
   (``smtp-mailbox-missing``), or its homeMTA / homeMDB / legacyExchangeDN are
   wrong (``smtp-mailbox-attributes``). Only an Active Directory export can
   tell these apart: with an LDIF export (ldifde) of CN=Connections we look
   the object up and compare each attribute with what the evidence says it
   must be; without one the attribute cause stays ``possible`` and we ask for
   the export.
4. **Resolution** — the article's steps, and the new mailGateway object
   written out as LDIF for review (a finding attachment, one record per store
   event 326 names), filled in from the evidence, with ``<FILL IN: ...>``
   only where the case does not tell the value; for wrong attributes, an LDIF
   ``changetype: modify`` of just those. The LDIF is folded (RFC 2849) so it
   stays importable and fits an 80-column report.

Status: ``problem`` when a 326 naming the SMTP connection mailbox
comes with a 1194 or a retry loop; ``inconclusive`` for a retry loop alone
(collect the Application log), for a 326 alone (collect tracking), and for a
326 that local delivery has since got past (tracking shows messages delivered
to the store after it: the mailbox has worked since); ``ok`` when tracking
shows local delivery completing and no 326 names the SMTP mailbox;
``not_applicable`` without any Exchange 2000/2003 transport evidence.

Lower-ranked alternatives named by the article: its workaround (a new
store, move the mailboxes) and a missing SystemMailbox{GUID} (KB 316622).

The text of an event may come from a rendered message (exports, or a
binary log rendered from the catalog) or only from its insertion strings
(a binary log whose message could not be rendered): both are searched.
"""
from __future__ import annotations

import re
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import pandas as pd

from .. import knowledge, messages
from ..findings import Cause, Evidence, Finding, attachment_file_name
from ..query import select
from ..table import row_data
from . import register
from .toolkit import ToolkitCheck, World

K = knowledge.load("smtp_mailbox")  # the check's knowledge (SmtpMailboxStuck.knowledge), cached
_DN_RE = re.compile(K["smtp_connection_dn_regex"], re.I)
_CODE_RE = re.compile(r"0x[0-9a-f]{8}", re.I)
_KB_CODES = {c.lower() for c in K["kb_error_codes"]}
FILL = "<FILL IN: {}>"
#: Width of the LDIF the check writes. RFC 2849 folds a long line into
#: continuation lines that start with one space (ldifde reads and writes
#: them), so the file stays valid and fits an 80-column report even with the
#: report's indentation.
LDIF_WIDTH = 72


def _ev(row: Any, excerpt: str | None = None) -> Evidence:
    """Evidence for a row; an event without a rendered message (the .evtx
    fast path keeps only the insertion strings) is shown as the catalog's
    message text filled with them, not as raw JSON."""
    if excerpt is None and row.get("kind") == "event":
        msg = row.get("message")
        if not (isinstance(msg, str) and msg.strip()):
            provider, eid = row.get("provider"), row.get("event_id")
            text = messages.render(str(provider), int(eid), row_data(row.get("data"))) \
                if _present(provider) and _present(eid) else None
            if text:
                head = " ".join(str(x) for x in (provider, eid, row.get("level")) if _present(x))
                excerpt = f"{head}: {text}"
    return Evidence.from_row(row, excerpt)


def _fmt_ts(t: pd.Timestamp | str | None) -> str:
    """A time as an engineer reads it in a report: ``2007-03-12 22:53:18 UTC``."""
    if t is None:
        return "?"
    t = pd.Timestamp(t)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC")
    return t.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def _fold(line: str, width: int = LDIF_WIDTH) -> list[str]:
    """One LDIF line folded per RFC 2849 (continuations start with a space)."""
    out, rest = [line[:width]], line[width:]
    while rest:
        out.append(" " + rest[:width - 1])
        rest = rest[width - 1:]
    return out


def _comment(text: str, width: int = LDIF_WIDTH) -> list[str]:
    """An LDIF comment wrapped into ``#`` lines (a folded comment would also
    be valid, but wrapped words read better)."""
    return textwrap.wrap(text, width=width, initial_indent="# ", subsequent_indent="# ",
                         break_long_words=True, break_on_hyphens=False)


def _text_of(row: Any) -> str:
    """Everything readable in an event: the message and every data value."""
    parts: list[str] = []
    msg = row.get("message")
    if isinstance(msg, str):
        parts.append(msg)
    data = row_data(row.get("data"))

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif v is not None:
            parts.append(str(v))
    walk({k: v for k, v in data.items() if k not in ("binary", "provider_guid")})
    return "\n".join(parts)


def _present(v: Any) -> bool:
    return v is not None and v is not pd.NA and not (isinstance(v, float) and v != v) and str(v) != ""


@dataclass
class ConnDN:
    """The SMTP connection legacyExchangeDN parsed out of event 326."""

    dn: str
    org: str
    ag: str
    server: str
    guid: str  # upper-case, no braces


@dataclass
class Logon326:
    row: Any
    dn: ConnDN | None
    codes: list[str]
    has_text: bool


@dataclass
class TrackedMessage:
    message_id: str
    rows: list[Any] = field(default_factory=list)
    retries: list[Any] = field(default_factory=list)
    delivered: list[Any] = field(default_factory=list)
    store_delivered: list[Any] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)


def parse_connection_dn(text: str) -> ConnDN | None:
    """``/o=../ou=../cn=Configuration/cn=Connections/cn=SMTP (S)/cn={G}`` -> parts."""
    m = _DN_RE.search(text)
    if not m:
        return None
    return ConnDN(dn=m.group(0).rstrip(". "), org=m.group("org").strip(), ag=m.group("ag").strip(),
                  server=m.group("server").strip(), guid=m.group("guid").upper())


_IFACE = K["events"]["accept_clients_failed"]["interface"]
_IFACE_RE = re.compile(r"\binterface\s+" + re.escape(_IFACE) + r"\b", re.I)


def _is_smtp_1194(row: Any) -> bool:
    """MSExchangeIS 1194 names the interface the store could not open: only
    the SMTP one is this problem. Rendered text says "external interface
    SMTP"; unrendered, %1 (the first insertion string) is the interface."""
    msg = row.get("message")
    if isinstance(msg, str) and msg.strip():
        return _IFACE_RE.search(msg) is not None
    strings = [str(x).strip().upper() for x in row_data(row.get("data")).get("strings", [])]
    text = _text_of(row)
    if strings or text.strip():
        return _IFACE.upper() in strings or _IFACE_RE.search(text) is not None
    return True  # nothing readable: (provider, id) is all we have


def _tracking_kind(row: Any) -> set[str]:
    """Which of the tracking event classes (knowledge/smtp_mailbox.yaml) a row is."""
    data = row_data(row.get("data"))
    eid = data.get("event_id")
    try:
        eid = int(eid) if eid is not None and str(eid).strip() != "" else None
    except (TypeError, ValueError):
        eid = None
    text = " ".join(str(x) for x in (data.get("event"), data.get("event_name"), row.get("message"))
                    if x is not None and x is not pd.NA).lower()
    out = set()
    for name, spec in K["tracking"].items():
        if not isinstance(spec, dict):
            continue
        if eid is not None and eid in spec["event_ids"]:
            out.add(name)
        elif eid is None and any(t in text for t in spec["text"]):
            out.add(name)
    # A retry line also contains "local delivery"; it is not a delivery.
    if "retry_local" in out:
        out -= {"delivered_locally", "queued_local"}
    return out


_MSGTRK_EVENTS = frozenset(K["tracking_2007_events"])


def _is_2007_tracking(value: Any) -> bool:
    """An Exchange 2007+ MSGTRK entry (textual event id such as DELIVER)."""
    data = row_data(value)
    ev = data.get("event")
    return data.get("event_id") is None and isinstance(ev, str) and ev.strip().upper() in _MSGTRK_EVENTS


def _recipients(data: dict[str, Any]) -> list[str]:
    r = data.get("recipients")
    if r is None:
        r = data.get("recipient")
    if r is None:
        return []
    if isinstance(r, str):
        return [x.strip() for x in re.split(r"[;,]", r) if x.strip()]
    return [str(x) for x in r if str(x).strip()]


def _ts(row: Any) -> pd.Timestamp | None:
    v = row.get("ts")
    return pd.Timestamp(v) if _present(v) else None


def _domain_from_ldif(entries: pd.DataFrame) -> str | None:
    for key in entries["key"].dropna().astype(str):
        m = re.search(r"(DC=[^,]+(?:,DC=[^,]+)*)\s*$", key, re.I)
        if m:
            return m.group(1)
    return None


def _domain_from_host(host: str | None) -> str | None:
    if host and "." in host:
        return ",".join(f"DC={p}" for p in host.split(".")[1:] if p)
    return None


def _norm_dn(dn: str) -> str:
    return ",".join(p.strip().lower() for p in dn.split(","))


@register
class SmtpMailboxStuck(ToolkitCheck):
    id = "smtp-mailbox-stuck"
    title = "Local delivery stuck: SMTP connection mailbox missing, disconnected or mis-attributed"
    description = ("KB 828938: messages stay in the Local Delivery queue because the store cannot log "
                   "on the SMTP connection mailbox (MSExchangeTransport 326 with the SMTP connection's "
                   "legacyExchangeDN, MSExchangeIS 1194, a Delivered Locally / Retry Local Delivery "
                   "loop in message tracking). Weighs a missing/disconnected mailGateway object against "
                   "wrong homeMTA/homeMDB/legacyExchangeDN, using an LDIF export of Active Directory "
                   "when the case has one, and writes the replacement object as LDIF.")
    needs = ("event", "tracking_entry", "ldap_entry")
    references = tuple(K["references"])
    knowledge = "smtp_mailbox"
    world = World(exchange=("2000/2003",),
                  elsewhere="the SMTP connection mailbox of KB 828938 (Exchange 2000/2003 SMTP "
                            "local delivery through the store) does not apply")

    # --- gathering -------------------------------------------------------
    def _events(self, df: pd.DataFrame, name: str) -> pd.DataFrame:
        spec = K["events"][name]
        return select(df, kind="event", provider=spec["provider"], event_id=spec["event_id"])

    def run(self, case: Any) -> list[Finding]:
        df = case.table
        e326 = self._events(df, "store_logon_failed")
        e1194 = self._events(df, "accept_clients_failed")
        if not e1194.empty:
            # 1194 for another interface is another store problem, not part
            # of this check's world (and must not make it applicable).
            e1194 = e1194[[_is_smtp_1194(r) for _, r in e1194.iterrows()]]
        transport = select(df, kind="event", provider=K["transport_providers"])
        tracking = select(df, kind="tracking_entry")
        if not tracking.empty:
            tracking = tracking[[not _is_2007_tracking(v) for v in tracking["data"]]]
        ldap = select(df, kind="ldap_entry")
        if e326.empty and e1194.empty and transport.empty and tracking.empty:
            return self.within_world(case, [Finding(
                check=self.id, title=self.title, status="not_applicable", severity="info",
                summary=("No Exchange transport evidence in the case (no MSExchangeTransport or "
                         "MSExchangeIS 1194 events, no message tracking logs)."),
                references=list(self.references))])
        hosts: dict[str | None, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
        for label, frame in (("326", e326), ("1194", e1194), ("transport", transport),
                             ("tracking", tracking)):
            for _, row in frame.iterrows():
                h = row.get("host")
                hosts[str(h) if _present(h) else None][label].append(row)
        # A 2003 tracking log names the server by its NetBIOS name (EXCH01)
        # where the event log has the FQDN (EXCH01.contoso.local): one host.
        all_hosts = {str(h) for h in df["host"].dropna().unique()}
        fqdns = sorted({h for h in (*hosts, *all_hosts) if h and "." in h})
        for h in [h for h in hosts if h and "." not in h]:
            full = [f for f in fqdns if f.split(".")[0].lower() == h.lower()]
            if len(full) == 1:
                for label, rows in hosts.pop(h).items():
                    hosts[full[0]][label].extend(rows)
        # Rows without a host (a tracking log without a server column, a
        # pasted excerpt) belong to the only host when there is one.
        named = [h for h in hosts if h is not None]
        if None in hosts and len(named) == 1:
            for label, rows in hosts.pop(None).items():
                hosts[named[0]][label].extend(rows)
        findings = []
        for host in sorted(hosts, key=lambda h: (h is None, h or "")):
            findings.append(self._host_finding(host, hosts[host], ldap))
        return self.within_world(case, findings)

    # --- one host ----------------------------------------------------------
    def _host_finding(self, host: str | None, rows: dict[str, list[Any]],
                      ldap: pd.DataFrame) -> Finding:
        logons = []
        for row in rows["326"]:
            text = _text_of(row)
            logons.append(Logon326(row, parse_connection_dn(text),
                                   [c.lower() for c in _CODE_RE.findall(text)], bool(text.strip())))
        smtp_logons = [lg for lg in logons if lg.dn is not None]
        other_logons = [lg for lg in logons if lg.dn is None and lg.has_text]
        blind_logons = [lg for lg in logons if not lg.has_text]
        accept = list(rows["1194"])  # already only the SMTP interface's (run)
        tracked = self._messages(rows["tracking"])
        loops = [m for m in tracked.values() if len(m.retries) >= K["tracking"]["loop_min_retries"]]
        healthy = [m for m in tracked.values()
                   if (m.store_delivered or m.delivered) and not m.retries]

        # Several stores can each lose their SMTP mailbox; the article's fix
        # is per store. The store of the most recent 326 leads, the others
        # are named and get their own LDIF record.
        smtp_logons.sort(key=lambda lg: (_ts(lg.row) or pd.Timestamp(0, tz="UTC")))
        conn = smtp_logons[-1].dn if smtp_logons else None
        other_conns: list[ConnDN] = []
        for lg in smtp_logons:
            assert lg.dn is not None
            if conn and lg.dn.guid != conn.guid and all(o.guid != lg.dn.guid for o in other_conns):
                other_conns.append(lg.dn)
        # Local delivery that completed after the store refused the SMTP
        # mailbox shows the mailbox has worked since: a past problem, not
        # the article's "messages remain in the local delivery queue".
        last_fail = max((t for t in (_ts(r) for r in [lg.row for lg in smtp_logons] + accept)
                         if t is not None), default=None)
        delivered_after: list[tuple[TrackedMessage, Any]] = []
        if conn and last_fail is not None and not loops:
            for m in healthy:
                done = [r for r in (m.store_delivered or m.delivered)
                        if (_ts(r) is not None and _ts(r) > last_fail)]
                if done:
                    delivered_after.append((m, done[-1]))

        facts: dict[str, Any] = {}
        evidence: list[Evidence] = []
        if conn:
            facts.update({"organization": conn.org, "administrative_group": conn.ag,
                          "server": conn.server, "store_guid": "{" + conn.guid + "}",
                          "smtp_connection_dn": conn.dn})
            if other_conns:
                facts["other_store_guids"] = ["{" + o.guid + "}" for o in other_conns]
            codes = sorted({c for lg in smtp_logons for c in lg.codes})
            facts["error_codes"] = codes
            facts["event_326_count"] = len(smtp_logons)
            evidence += [_ev(lg.row) for lg in smtp_logons[:5]]
        if accept:
            facts["event_1194_count"] = len(accept)
            evidence += [_ev(r) for r in accept[:3]]
        if loops:
            facts["retry_loops"] = [self._loop_facts(m) for m in loops[:20]]
            evidence += [_ev(r) for r in self._loop_excerpt(loops[0])]
        if healthy and not loops:
            facts["delivered_messages"] = len(healthy)
        if delivered_after:
            facts["delivered_after_last_failure"] = len(delivered_after)
            facts["last_failure"] = last_fail.isoformat() if last_fail is not None else None

        ctx = {"host": host, "conn": conn, "other_conns": other_conns, "smtp_logons": smtp_logons,
               "other_logons": other_logons, "blind_logons": blind_logons, "accept": accept,
               "loops": loops, "healthy": healthy, "delivered_after": delivered_after,
               "last_fail": last_fail, "ldap": ldap, "facts": facts, "extra_evidence": [],
               "attachments": {}}
        # Status: a 326 naming the SMTP connection mailbox
        # is a problem when 1194 or a retry loop shows the store still refuses
        # it; a 326 alone (or one that local delivery has since got past)
        # leaves the current state open.
        if conn and (accept or loops) and not delivered_after:
            status = "problem"
        elif conn or loops or accept or blind_logons:
            status = "inconclusive"
        elif healthy:
            status = "ok"
        else:
            status = "inconclusive"
        causes, collect, remediation = self._causes(ctx, status)
        summary = self._summary(ctx, status)
        severity = {"problem": "error", "inconclusive": "warning"}.get(status, "info")
        evidence += ctx["extra_evidence"]
        if delivered_after:
            evidence += [_ev(r) for _, r in delivered_after[:3]]
        if status == "ok":
            evidence += [_ev(m.store_delivered[-1] if m.store_delivered else m.delivered[-1])
                         for m in healthy[:3]]
            evidence += [_ev(lg.row) for lg in other_logons[:2]]
        if status == "inconclusive" and other_logons:
            evidence += [_ev(lg.row) for lg in other_logons[:2]]
        return Finding(check=self.id, title=self.title, status=status, severity=severity,
                       summary=summary, host=host, causes=causes, evidence=evidence,
                       remediation=remediation, references=list(self.references),
                       collect=collect, facts=facts, attachments=ctx["attachments"])

    def _messages(self, rows: list[Any]) -> dict[str, TrackedMessage]:
        msgs: dict[str, TrackedMessage] = {}
        for row in sorted(rows, key=lambda r: (_ts(r) or pd.Timestamp(0, tz="UTC"))):
            data = row_data(row.get("data"))
            mid = data.get("message_id") or data.get("msgid")
            if not mid:
                # A Message Tracking Center history pasted as text (the KB's
                # own excerpt) has no message id: it is one message's trail.
                mid = f"(tracking history in {row.get('path')})"
            kinds = _tracking_kind(row)
            m = msgs.setdefault(str(mid), TrackedMessage(str(mid)))
            m.rows.append(row)
            for r in _recipients(data):
                if r not in m.recipients:
                    m.recipients.append(r)
            if "retry_local" in kinds:
                m.retries.append(row)
            if "delivered_locally" in kinds:
                m.delivered.append(row)
            if "store_delivered" in kinds:
                m.store_delivered.append(row)
        for m in msgs.values():
            # Delivered, then retried again: only retries *after* the last
            # store delivery keep the message in the queue.
            if m.store_delivered and m.retries:
                last_ok = _ts(m.store_delivered[-1])
                if last_ok is not None and all((_ts(r) or last_ok) <= last_ok for r in m.retries):
                    m.retries = []
        return msgs

    @staticmethod
    def _loop_facts(m: TrackedMessage) -> dict[str, Any]:
        times = [t for t in (_ts(r) for r in m.retries) if t is not None]
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
        return {"message_id": m.message_id, "retries": len(m.retries),
                "delivered_locally": len(m.delivered),
                "interval_seconds": median(gaps) if gaps else None,
                "first": times[0].isoformat() if times else None,
                "last": times[-1].isoformat() if times else None,
                "recipients": m.recipients}

    @staticmethod
    def _loop_excerpt(m: TrackedMessage) -> list[Any]:
        rows = m.delivered[:1] + m.retries[:1] + m.retries[-1:]
        seen, out = set(), []
        for r in rows:
            if id(r) not in seen:
                seen.add(id(r))
                out.append(r)
        return out

    # --- causes --------------------------------------------------------------
    @staticmethod
    def _loop_text(lf: dict[str, Any]) -> str:
        """One retry loop as the article's tracking excerpt reads: how many
        retries, how often, from when to when, to whom."""
        s = f"{lf['message_id']}: {lf['retries']} retries"
        if lf["interval_seconds"]:
            s += f" every {int(lf['interval_seconds']) // 60} min" if lf["interval_seconds"] % 60 == 0 \
                else f" every {int(lf['interval_seconds'])} s"
        if lf["first"]:
            s += f", {_fmt_ts(lf['first'])} to {_fmt_ts(lf['last'])}"
        return s + f", recipients {', '.join(lf['recipients']) or 'unknown'}"

    def _causes(self, c: dict[str, Any], status: str) -> tuple[list[Cause], list[str], list[str]]:
        conn: ConnDN | None = c["conn"]
        host = c["host"]
        facts = c["facts"]
        collect: list[str] = []
        remediation: list[str] = []
        causes: list[Cause] = []
        loops, accept = c["loops"], c["accept"]
        ev_326 = [_ev(lg.row) for lg in c["smtp_logons"][:3]]
        ev_1194 = [_ev(r) for r in accept[:2]]
        ev_loop = [_ev(r) for r in (self._loop_excerpt(loops[0]) if loops else [])]
        server = conn.server if conn else (host.split(".")[0] if host else None)

        if status == "ok":
            expl = (f"Message tracking shows {len(c['healthy'])} message(s) delivered locally with no "
                    "'Scheduled to Retry Local Delivery' entries, and no MSExchangeTransport 326 names "
                    "the SMTP connection mailbox.")
            if c["other_logons"]:
                expl += (" The 326 event(s) present name another legacyExchangeDN (not "
                         "cn=Connections/cn=SMTP (...)): a different logon failure, not this problem.")
            ev_ok = [_ev(m.store_delivered[-1] if m.store_delivered else m.delivered[-1])
                     for m in c["healthy"][:2]]
            for cid, title in (("smtp-mailbox-missing", "SMTP mailbox object missing or disconnected"),
                               ("smtp-mailbox-attributes", "SMTP mailbox object has wrong attributes")):
                causes.append(Cause(cid, title, "ruled_out", expl, ev_ok))
            return causes, collect, remediation

        if status == "inconclusive" and not conn:
            why = []
            if loops:
                why.append(f"Message tracking shows {len(loops)} message(s) retrying local delivery "
                           f"(e.g. {self._loop_text(facts['retry_loops'][0])})")
            if accept:
                why.append(f"MSExchangeIS 1194 ({len(accept)}x) says the store did not accept SMTP clients")
            if c["blind_logons"]:
                why.append("MSExchangeTransport 326 is present but its text (message and insertion "
                           "strings) could not be read, so the DN it names is unknown")
            if c["other_logons"]:
                why.append("the 326 event(s) present name another DN, not the SMTP connection mailbox, "
                           "so they are not this problem")
            common = ("; ".join(why) or "Exchange transport events are present but nothing about local "
                      "delivery")
            common = common[0].upper() + common[1:] + "."
            tail = (" Without MSExchangeTransport 326 naming the SMTP connection's legacyExchangeDN "
                    "(cn=Connections/cn=SMTP (<server>)/cn={GUID}) the SMTP mailbox cannot be told "
                    "from other local delivery failures.")
            ev = ev_loop + ev_1194 + [_ev(lg.row) for lg in c["blind_logons"][:2]]
            causes.append(Cause("smtp-mailbox-missing", "SMTP mailbox object missing or disconnected",
                                "possible", common + tail + " A missing or disconnected SMTP mailbox is "
                                "the article's first cause.", ev))
            causes.append(Cause("smtp-mailbox-attributes", "SMTP mailbox object has wrong attributes",
                                "possible", common + tail + " Wrong homeMTA, homeMDB or "
                                "legacyExchangeDN on the SMTP mailbox object give the same symptoms; "
                                "only an Active Directory export can tell.", ev))
            collect.append(f"The Application event log of {host or 'the Exchange server'} (.evt/.evtx, or "
                           "an export with descriptions) covering a dismount and mount of the information "
                           "stores: MSExchangeTransport 326 and MSExchangeIS 1194 are logged at mount time.")
            if not loops:
                collect.append(f"Message tracking logs of {host or 'the server'} "
                               "(Exchsrvr\\<SERVER>.log\\yyyymmdd.log) for the days messages were stuck, "
                               "to see whether local delivery is retried.")
            return causes, collect, remediation

        # Event 326 names the SMTP connection mailbox.
        assert conn is not None
        names = self._names(conn, server, host, c["ldap"])
        codes = facts.get("error_codes", [])
        kb_code = any(code in _KB_CODES for code in codes)
        corroborated = bool(accept or loops)
        after = c["delivered_after"]
        base = (f"MSExchangeTransport 326: the service account failed to log on to the store as the SMTP "
                f"connection mailbox {conn.dn} (organization '{conn.org}', administrative group "
                f"'{conn.ag}', server {conn.server}, mailbox store {{{conn.guid}}}), error "
                f"{', '.join(codes) or 'code not given'}"
                + ("" if kb_code else " (not one of the codes KB 828938 shows)") + ".")
        if c["other_conns"]:
            base += (" Event 326 also names the SMTP mailbox of store(s) "
                     + ", ".join("{" + o.guid + "}" for o in c["other_conns"])
                     + ": apply the same steps to each (the LDIF has one object per store).")
        if accept:
            base += f" MSExchangeIS 1194 ({len(accept)}x): the store did not accept clients on its SMTP interface."
        if loops:
            base += (f" Message tracking: {len(loops)} message(s) loop between 'Delivered Locally' and "
                     f"'Scheduled to Retry Local Delivery' (e.g. {self._loop_text(facts['retry_loops'][0])}).")
        if after:
            base += (f" But message tracking shows {len(after)} message(s) delivered to the store "
                     f"without retries after the last failure ({_fmt_ts(c['last_fail'])}): the SMTP "
                     "mailbox has worked since, so the problem may already be resolved.")
        evidence = ev_326 + ev_1194 + ev_loop + [_ev(r) for _, r in after[:2]]
        ad = self._ad_state(conn, c["ldap"], names)
        c["extra_evidence"] += ad["evidence"]
        facts["ad_export"] = ad["summary"]
        ldif = self._ldif([conn, *c["other_conns"]], server, host, c["ldap"])
        c["attachments"][K["attachments"]["add"]] = ldif
        facts["mailgateway"] = names["attrs"]

        miss_rem = [s.format(**names["fmt"]) for s in K["remediation"]["missing"]]
        # The LDIF goes right after the article's "create a new object" step.
        miss_rem.insert(K["remediation"]["missing_ldif_after"] + 1,
                        f"New mailGateway object (LDIF for review; analyze --attachments DIR writes it as "
                        f"{attachment_file_name(self.id, host, K['attachments']['add'])}):\n" + ldif)
        attr = K["remediation"]["attributes"]
        attr_open = [s.format(**names["fmt"]) for s in attr["open"]]
        attr_after = [s.format(**names["fmt"]) for s in attr["after"]]
        if after:
            strength = "possible"
        elif corroborated and kb_code:
            strength = "confirmed"
        else:
            strength = "likely"
        with_ad = "possible" if after else ("confirmed" if corroborated else "likely")

        if ad["covered"] and ad["object"] is None:
            causes.append(Cause("smtp-mailbox-missing", "SMTP mailbox object missing or disconnected",
                                with_ad,
                                base + f" The Active Directory export covers CN=Connections but has no "
                                f"mailGateway object for SMTP ({conn.server}-{{{conn.guid}}}) / "
                                f"{conn.dn}: the object is missing.",
                                ad["evidence"] + evidence, miss_rem))
            causes.append(Cause("smtp-mailbox-attributes", "SMTP mailbox object has wrong attributes",
                                "ruled_out", "There is no such object in the exported CN=Connections, "
                                "so there are no attributes to be wrong.", ad["evidence"]))
        elif ad["object"] is not None:
            wrong = ad["wrong"]
            if wrong:
                lines = "; ".join(f"{a}: expected {e!r}, found {f!r}" for a, e, f in wrong)
                # The object exists: hand over the change, not a new object.
                c["attachments"].pop(K["attachments"]["add"], None)
                modify = self._ldif_modify(ad["object_dn"], wrong)
                c["attachments"][K["attachments"]["modify"]] = modify
                fix = attr_open + [attr["set"].format(attr=a, value=e, **names["fmt"]) for a, e, _ in wrong]
                fix.append("Or import the change after review (ldifde -i -f <file>; analyze --attachments "
                           f"DIR writes it as {attachment_file_name(self.id, host, K['attachments']['modify'])}):\n"
                           + modify)
                causes.append(Cause("smtp-mailbox-attributes", "SMTP mailbox object has wrong attributes",
                                    with_ad,
                                    base + f" The mailGateway object exists ({ad['object_dn']}) but: {lines}.",
                                    ad["evidence"] + evidence, fix + attr_after))
                causes.append(Cause("smtp-mailbox-missing", "SMTP mailbox object missing or disconnected",
                                    "ruled_out", f"The mailGateway object exists in the export "
                                    f"({ad['object_dn']}); its attributes are what is wrong.", ad["evidence"]))
            else:
                causes.append(Cause("smtp-mailbox-missing", "SMTP mailbox object missing or disconnected",
                                    "possible" if after else "likely",
                                    base + " The mailGateway object exists in the export with "
                                    "the expected homeMTA, homeMDB and legacyExchangeDN, so the SMTP "
                                    "mailbox itself is most likely disconnected in the store (not visible "
                                    "in Active Directory): recreate the object as the article says.",
                                    ad["evidence"] + evidence, miss_rem))
                causes.append(Cause("smtp-mailbox-attributes", "SMTP mailbox object has wrong attributes",
                                    "ruled_out", "homeMTA, homeMDB and legacyExchangeDN of "
                                    f"{ad['object_dn']} match the expected values "
                                    "(checked against the export, not necessarily the global catalog "
                                    "the server uses).", ad["evidence"]))
        else:
            causes.append(Cause("smtp-mailbox-missing", "SMTP mailbox object missing or disconnected",
                                strength, base + " This is the article's first and most common cause; "
                                "no Active Directory export tells whether the object exists.",
                                evidence, miss_rem))
            causes.append(Cause("smtp-mailbox-attributes", "SMTP mailbox object has wrong attributes",
                                "possible", "The same events follow from a mailGateway object whose "
                                "homeMTA, homeMDB or legacyExchangeDN is wrong; only an Active Directory "
                                "export can tell. Expected values: "
                                + "; ".join(f"{k}: {v}" for k, v in names["attrs"].items()
                                            if k in ("homeMTA", "homeMDB", "legacyExchangeDN")),
                                evidence[:2],
                                attr_open + [attr["check_all"].format(**names["fmt"])] + attr_after))
            collect.append("An LDIF export of the SMTP connection objects, run on a domain controller: "
                           + K["mailgateway"]["ldifde_command"].format(**names["fmt"]))
            collect.append("An LDIF export of the server's stores (to fill in homeMDB and tell a public "
                           "from a private store): "
                           + K["mailgateway"]["ldifde_stores_command"].format(**names["fmt"]))
        if after:
            collect.append(f"The current Local Delivery queue of {conn.server} (Exchange System Manager, "
                           "Queues) and its Application log since the last mount of the stores: is a "
                           "326 still logged, do messages still wait?")
        elif not corroborated:
            collect.append(f"Message tracking logs of {conn.server} (Exchsrvr\\{conn.server}.log\\"
                           "yyyymmdd.log) for the days messages were stuck, to count the local delivery "
                           "retries, and the whole Application log around the 326 (MSExchangeIS 1194).")
        is_public = ad.get("public")
        causes.append(Cause("store-workaround", "Workaround: new store, move the mailboxes",
                            "possible",
                            "The article's workaround when recreating the SMTP mailbox is not possible: "
                            + ("the store is a public store, where this does not apply; "
                               if is_public else "")
                            + "create a new store, move all users to it and delete the old store.",
                            ev_326[:1], [s.format(**names["fmt"]) for s in K["remediation"]["workaround"]]))
        causes.append(Cause("system-mailbox-missing", "SystemMailbox{GUID} of the store missing (KB 316622)",
                            "ruled_out" if is_public else "possible",
                            "The store named in event 326 is a public store, and a public store has no "
                            "system mailbox."
                            if is_public else
                            f"The article notes that the store's SystemMailbox{{{conn.guid}}} may also "
                            "need to be repaired or recreated before mail flows (KB 316622); nothing in the "
                            "case shows whether it exists.",
                            ad["evidence"][:1] if is_public else ev_326[:1],
                            [s.format(**names["fmt"]) for s in K["remediation"]["system_mailbox"]]))
        top = [cs for cs in causes if cs.verdict in ("confirmed", "likely")]
        chosen = list(top[0].remediation) if top else list(miss_rem)
        # The text report prints a finding's remediation as wrapped
        # paragraphs: a multi-line LDIF there would be run together into an
        # unusable blob, so it is shown under its cause and pointed to here.
        for r in chosen:
            if "\n" in r:
                first = r.split("\n", 1)[0].rstrip(":").rstrip()
                remediation.append(f"{first}: see the LDIF under the cause above.")
            else:
                remediation.append(r)
        if is_public:
            remediation.insert(0, "The store named in event 326 is a public store: it has no system "
                               "mailbox, so the disconnected SMTP mailbox cannot be seen with the Cleanup "
                               "Agent; recreate the object directly.")
        return causes, collect, remediation

    # --- names, AD export, LDIF ---------------------------------------------
    def _names(self, conn: ConnDN | None, server: str | None, host: str | None,
               ldap: pd.DataFrame) -> dict[str, Any]:
        """Every name the remediation needs, from the evidence or a marked placeholder."""
        domain = _domain_from_ldif(ldap) if not ldap.empty else None
        domain_note = None
        if not domain:
            domain = _domain_from_host(host)
            if domain:
                domain_note = (f"DC= part derived from the server's DNS domain ({host}); "
                               "use the forest root domain if it differs")
        store = sg = None
        if conn is not None and not ldap.empty:
            st = self._store_entry(conn, ldap)
            if st is not None:
                parts = [p.strip() for p in str(st["key"]).split(",")]
                if len(parts) > 2 and parts[0][:3].upper() == "CN=" and parts[1][:3].upper() == "CN=":
                    store, sg = parts[0][3:], parts[1][3:]
        fmt = {
            "org": conn.org if conn else FILL.format("organization name"),
            "ag": conn.ag if conn else FILL.format("administrative group name"),
            "server": server or FILL.format("server name"),
            "guid": conn.guid if conn else FILL.format("mailbox store GUID"),
            "domain": domain or FILL.format("forest root domain, e.g. DC=contoso,DC=com"),
            "store": store or FILL.format("mailbox store name (the store whose objectGUID is {%s})"
                                          % (conn.guid if conn else "GUID")),
            "storage_group": sg or FILL.format("storage group name"),
        }
        mg = K["mailgateway"]
        attrs = {
            "objectClass": mg["object_class"],
            "cn": mg["cn"].format(**fmt),
            "homeMTA": mg["home_mta"].format(**fmt),
            "deliveryMechanism": mg["delivery_mechanism"],
            "homeMDB": mg["home_mdb"].format(**fmt),
            "legacyExchangeDN": conn.dn if conn else mg["legacy_dn"].format(**fmt),
        }
        return {"fmt": fmt, "attrs": attrs, "domain_note": domain_note,
                "dn": f"CN={attrs['cn']},{mg['connections_dn'].format(**fmt)}",
                "store_known": store is not None}

    @staticmethod
    def _store_entry(conn: ConnDN, ldap: pd.DataFrame) -> Any | None:
        guid = "{" + conn.guid + "}"
        for _, row in ldap.iterrows():
            data = row_data(row.get("data"))
            if any(str(g).upper() == guid for g in data.get("objectguid", [])):
                return row
        return None

    def _ad_state(self, conn: ConnDN, ldap: pd.DataFrame, names: dict[str, Any]) -> dict[str, Any]:
        """What the LDIF export says about the mailGateway object."""
        out: dict[str, Any] = {"covered": False, "object": None, "wrong": [], "evidence": [],
                               "summary": "no Active Directory export in the case", "public": None}
        if ldap.empty:
            return out
        keys = ldap["key"].astype("string").fillna("")
        in_conn = ldap[keys.str.contains(r"(?:^|,)\s*CN=Connections\s*,", case=False, regex=True)
                       .fillna(False).astype(bool)]
        store = self._store_entry(conn, ldap)
        if store is not None:
            classes = [str(x).lower() for x in row_data(store.get("data")).get("objectclass", [])]
            out["public"] = "msexchpublicmdb" in classes
            out["evidence"].append(Evidence.from_row(store, f"store {store['key']} objectGUID {{{conn.guid}}}"))
        if in_conn.empty:
            out["summary"] = "the Active Directory export does not cover CN=Connections"
            return out
        out["covered"] = True
        want_cn = names["attrs"]["cn"].lower()
        for _, row in in_conn.iterrows():
            data = row_data(row.get("data"))
            cn = " ".join(data.get("cn", [])).lower()
            ldn = " ".join(data.get("legacyexchangedn", [])).lower()
            first_rdn = str(row["key"]).split(",")[0].lower()
            if (cn == want_cn or first_rdn == f"cn={want_cn}" or conn.dn.lower() == ldn
                    or (conn.guid.lower() in (cn + first_rdn) and conn.server.lower() in (cn + first_rdn))):
                out["object"] = row
                break
        if out["object"] is None:
            out["summary"] = f"CN=Connections exported ({len(in_conn)} entries): no SMTP ({conn.server}-{{{conn.guid}}})"
            out["evidence"] += [Evidence.from_row(r, f"exported: {r['key']}") for _, r in in_conn.head(3).iterrows()]
            return out
        row = out["object"]
        out["object_dn"] = str(row["key"])
        data = row_data(row.get("data"))
        found = {k: (data.get(k.lower()) or [None])[0] for k in ("homeMTA", "homeMDB", "legacyExchangeDN")}
        expected = names["attrs"]
        wrong = []
        if not found["legacyExchangeDN"] or found["legacyExchangeDN"].lower() != conn.dn.lower():
            wrong.append(("legacyExchangeDN", conn.dn, found["legacyExchangeDN"]))
        if not found["homeMTA"] or (
                "<FILL IN" not in expected["homeMTA"]
                and _norm_dn(found["homeMTA"]) != _norm_dn(expected["homeMTA"])) or (
                f"cn={conn.server.lower()},cn=servers" not in _norm_dn(found["homeMTA"] or "")):
            wrong.append(("homeMTA", expected["homeMTA"], found["homeMTA"]))
        if store is not None:
            if not found["homeMDB"] or _norm_dn(found["homeMDB"]) != _norm_dn(str(store["key"])):
                wrong.append(("homeMDB", str(store["key"]), found["homeMDB"]))
        else:
            # Without the store object we can still tell a homeMDB that points
            # at another server or at nothing.
            if not found["homeMDB"] or f"cn={conn.server.lower()},cn=servers" not in _norm_dn(found["homeMDB"]):
                wrong.append(("homeMDB", expected["homeMDB"], found["homeMDB"]))
        out["wrong"] = wrong
        # The excerpt is clipped at 400 characters and DNs are long: name the
        # object by its first RDN and put the wrong attributes first.
        bad = [a for a, _, _ in wrong]
        order = bad + [k for k in found if k not in bad]
        rdn = str(row["key"]).split(",")[0]
        out["evidence"].insert(0, Evidence.from_row(row, f"{rdn} (CN=Connections): " + "; ".join(
            f"{k}={found[k]}" for k in order)))
        out["summary"] = (f"mailGateway {row['key']} found; "
                          + ("wrong: " + ", ".join(a for a, _, _ in wrong) if wrong else "attributes as expected"))
        return out

    def _ldif(self, conns: list[ConnDN], server: str | None, host: str | None,
              ldap: pd.DataFrame) -> str:
        """The article's new mailGateway object(s) as an LDIF file to review
        and import: one ``changetype: add`` record per store whose SMTP
        mailbox event 326 names, folded to :data:`LDIF_WIDTH` columns."""
        head = [
            "KB 828938: replacement SMTP connection mailbox object(s). REVIEW BEFORE IMPORTING.",
            ("Delete an existing object of the same name first; import with: "
             "ldifde -i -f <the .ldf file>"),
        ]
        records: list[list[str]] = []
        notes: list[str] = []
        for conn in conns:
            names = self._names(conn, conn.server or server, host, ldap)
            a = names["attrs"]
            if any("<FILL IN" in str(v) for v in a.values()) and len(head) == 2:
                head.insert(1, "Values marked FILL IN were not in the evidence: take them from "
                               "Active Directory.")
            if names["domain_note"] and names["domain_note"] + "." not in notes:
                notes.append(names["domain_note"] + ".")
            rec = []
            if not names["store_known"]:
                rec += _comment(f"homeMDB: the DN of the mailbox store whose objectGUID is {{{conn.guid}}}.")
            for line in (f"dn: {names['dn']}", "changetype: add", f"objectClass: {a['objectClass']}",
                         f"cn: {a['cn']}", f"homeMTA: {a['homeMTA']}",
                         f"deliveryMechanism: {a['deliveryMechanism']}", f"homeMDB: {a['homeMDB']}",
                         f"legacyExchangeDN: {a['legacyExchangeDN']}"):
                rec += _fold(line)
            records.append(rec)
        lines = [x for t in head + notes for x in _comment(t)] + ["version: 1"]
        for rec in records:
            lines += [""] + rec
        return "\n".join(lines) + "\n"

    @staticmethod
    def _ldif_modify(dn: str, wrong: list[tuple[str, str, Any]]) -> str:
        """The attribute fix as an LDIF ``changetype: modify`` record (one
        ``replace:`` group per wrong attribute), folded like :meth:`_ldif`."""
        lines = _comment("KB 828938: correct the SMTP connection mailbox object. REVIEW BEFORE "
                         "IMPORTING, against the global catalog the Exchange server uses.")
        if any("<FILL IN" in str(e) for _, e, _ in wrong):
            lines += _comment("Values marked FILL IN were not in the evidence: take them from "
                              "Active Directory.")
        lines += ["version: 1", ""] + _fold(f"dn: {dn}") + ["changetype: modify"]
        for attr, expected, _ in wrong:
            lines += [f"replace: {attr}"] + _fold(f"{attr}: {expected}") + ["-"]
        return "\n".join(lines) + "\n"

    def _summary(self, c: dict[str, Any], status: str) -> str:
        conn = c["conn"]
        stores = f"store {{{conn.guid}}}" if conn else ""
        if conn and c["other_conns"]:
            stores += f" and {len(c['other_conns'])} other store(s)"
        if status == "problem":
            s = (f"Local delivery on {conn.server} is blocked: the store refuses the SMTP connection "
                 f"mailbox of {stores} (MSExchangeTransport 326")
            if c["accept"]:
                s += ", MSExchangeIS 1194"
            s += ")"
            if c["loops"]:
                lf = c["facts"]["retry_loops"][0]
                s += (f"; {len(c['loops'])} message(s) retry local delivery ({lf['retries']} retries of "
                      f"{lf['message_id']})")
            return s + "."
        if status == "inconclusive" and conn:
            if c["delivered_after"]:
                return (f"MSExchangeTransport 326 named the SMTP connection mailbox of {stores} on "
                        f"{conn.server} (last failure {_fmt_ts(c['last_fail'])}), but "
                        f"{len(c['delivered_after'])} message(s) were delivered to the store after it "
                        "without retries: the problem may be resolved; check the Local Delivery queue.")
            return (f"MSExchangeTransport 326 names the SMTP connection mailbox of {stores} on "
                    f"{conn.server}, but nothing shows messages stuck in local delivery (no "
                    "MSExchangeIS 1194, no tracking retry loop): collect the message tracking logs.")
        if status == "ok":
            return (f"Local delivery completes: {len(c['healthy'])} message(s) delivered locally without "
                    "retries, and no event 326 names the SMTP connection mailbox.")
        if c["loops"]:
            return (f"{len(c['loops'])} message(s) keep retrying local delivery, but no MSExchangeTransport "
                    "326 naming the SMTP connection mailbox is in the case: collect the Application log.")
        if c["accept"]:
            return ("MSExchangeIS 1194: the store did not accept SMTP clients, but no 326 names the SMTP "
                    "connection mailbox and no tracking shows the delivery loop.")
        if c["other_logons"]:
            return ("MSExchangeTransport 326 is present but names another DN than the SMTP connection "
                    "mailbox: not this problem; no tracking log shows whether local delivery completes.")
        return ("Exchange transport evidence is present but nothing shows whether local delivery "
                "completes: collect message tracking logs.")
