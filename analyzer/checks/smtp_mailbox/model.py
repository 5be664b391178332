"""The vocabulary of KB 828938: event 326's SMTP connection DN, MSExchangeIS
1194 for the SMTP interface, and the message tracking trail of a message
that loops between "Delivered Locally" and "Scheduled to Retry Local
Delivery"."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import pandas as pd

from ... import knowledge, messages
from ...findings import Evidence
from ...table import row_data

K = knowledge.load("smtp_mailbox")  # the check's knowledge (SmtpMailboxStuck.knowledge), cached
DN_RE = re.compile(K["smtp_connection_dn_regex"], re.I)
CODE_RE = re.compile(r"0x[0-9a-f]{8}", re.I)
KB_CODES = {c.lower() for c in K["kb_error_codes"]}


def ev(row: Any, excerpt: str | None = None) -> Evidence:
    """Evidence for a row; an event without a rendered message (the .evtx
    fast path keeps only the insertion strings) is shown as the catalog's
    message text filled with them, not as raw JSON."""
    if excerpt is None and row.get("kind") == "event":
        msg = row.get("message")
        if not (isinstance(msg, str) and msg.strip()):
            provider, eid = row.get("provider"), row.get("event_id")
            text = messages.render(str(provider), int(eid), row_data(row.get("data"))) \
                if present(provider) and present(eid) else None
            if text:
                head = " ".join(str(x) for x in (provider, eid, row.get("level")) if present(x))
                excerpt = f"{head}: {text}"
    return Evidence.from_row(row, excerpt)


def fmt_ts(t: pd.Timestamp | str | None) -> str:
    """A time as an engineer reads it in a report: ``2007-03-12 22:53:18 UTC``."""
    if t is None:
        return "?"
    t = pd.Timestamp(t)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC")
    return t.strftime("%Y-%m-%d %H:%M:%S") + " UTC"

def text_of(row: Any) -> str:
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


def present(v: Any) -> bool:
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
    m = DN_RE.search(text)
    if not m:
        return None
    return ConnDN(dn=m.group(0).rstrip(". "), org=m.group("org").strip(), ag=m.group("ag").strip(),
                  server=m.group("server").strip(), guid=m.group("guid").upper())


IFACE = K["events"]["accept_clients_failed"]["interface"]
IFACE_RE = re.compile(r"\binterface\s+" + re.escape(IFACE) + r"\b", re.I)


def is_smtp_1194(row: Any) -> bool:
    """MSExchangeIS 1194 names the interface the store could not open: only
    the SMTP one is this problem. Rendered text says "external interface
    SMTP"; unrendered, %1 (the first insertion string) is the interface."""
    msg = row.get("message")
    if isinstance(msg, str) and msg.strip():
        return IFACE_RE.search(msg) is not None
    strings = [str(x).strip().upper() for x in row_data(row.get("data")).get("strings", [])]
    text = text_of(row)
    if strings or text.strip():
        return IFACE.upper() in strings or IFACE_RE.search(text) is not None
    return True  # nothing readable: (provider, id) is all we have


def tracking_kind(row: Any) -> set[str]:
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


MSGTRK_EVENTS = frozenset(K["tracking_2007_events"])


def is_2007_tracking(value: Any) -> bool:
    """An Exchange 2007+ MSGTRK entry (textual event id such as DELIVER)."""
    data = row_data(value)
    ev = data.get("event")
    return data.get("event_id") is None and isinstance(ev, str) and ev.strip().upper() in MSGTRK_EVENTS


def recipients(data: dict[str, Any]) -> list[str]:
    r = data.get("recipients")
    if r is None:
        r = data.get("recipient")
    if r is None:
        return []
    if isinstance(r, str):
        return [x.strip() for x in re.split(r"[;,]", r) if x.strip()]
    return [str(x) for x in r if str(x).strip()]


def ts_of(row: Any) -> pd.Timestamp | None:
    v = row.get("ts")
    return pd.Timestamp(v) if present(v) else None



def tracked_messages(rows: list[Any]) -> dict[str, TrackedMessage]:
    """Tracking rows per message, oldest first: its retries, local
    deliveries and deliveries to the store, and its recipients."""
    msgs: dict[str, TrackedMessage] = {}
    for row in sorted(rows, key=lambda r: (ts_of(r) or pd.Timestamp(0, tz="UTC"))):
        data = row_data(row.get("data"))
        mid = data.get("message_id") or data.get("msgid")
        if not mid:
            # A Message Tracking Center history pasted as text (the KB's
            # own excerpt) has no message id: it is one message's trail.
            mid = f"(tracking history in {row.get('path')})"
        kinds = tracking_kind(row)
        m = msgs.setdefault(str(mid), TrackedMessage(str(mid)))
        m.rows.append(row)
        for r in recipients(data):
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
            last_ok = ts_of(m.store_delivered[-1])
            if last_ok is not None and all((ts_of(r) or last_ok) <= last_ok for r in m.retries):
                m.retries = []
    return msgs


def loop_facts(m: TrackedMessage) -> dict[str, Any]:
    times = [t for t in (ts_of(r) for r in m.retries) if t is not None]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
    return {"message_id": m.message_id, "retries": len(m.retries),
            "delivered_locally": len(m.delivered),
            "interval_seconds": median(gaps) if gaps else None,
            "first": times[0].isoformat() if times else None,
            "last": times[-1].isoformat() if times else None,
            "recipients": m.recipients}



def loop_excerpt(m: TrackedMessage) -> list[Any]:
    """The first delivery, the first and the last retry of a loop."""
    rows = m.delivered[:1] + m.retries[:1] + m.retries[-1:]
    seen, out = set(), []
    for r in rows:
        if id(r) not in seen:
            seen.add(id(r))
            out.append(r)
    return out


def loop_text(lf: dict[str, Any]) -> str:
    """One retry loop as the article's tracking excerpt reads: how many
    retries, how often, from when to when, to whom."""
    s = f"{lf['message_id']}: {lf['retries']} retries"
    if lf["interval_seconds"]:
        s += f" every {int(lf['interval_seconds']) // 60} min" if lf["interval_seconds"] % 60 == 0 \
            else f" every {int(lf['interval_seconds'])} s"
    if lf["first"]:
        s += f", {fmt_ts(lf['first'])} to {fmt_ts(lf['last'])}"
    return s + f", recipients {', '.join(lf['recipients']) or 'unknown'}"
