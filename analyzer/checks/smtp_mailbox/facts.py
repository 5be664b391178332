"""One server's evidence for KB 828938: the 326 events and the SMTP
connection mailbox they name, 1194, the tracking loops, and -- when a 326
names the mailbox -- the names, the Active Directory state and the LDIF."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ...findings import attachment_file_name
from ..toolkit import Host, records
from .ldif import ad_state, ldif_add, ldif_modify, names_for
from .model import (CODE_RE, KB_CODES, K, ConnDN, Logon326, TrackedMessage, ev, is_2007_tracking,
                    is_smtp_1194, loop_excerpt, loop_facts, parse_connection_dn, text_of, tracked_messages,
                    ts_of)


def select_rows(host: Host, label: str) -> list[dict]:
    """This host's rows of one kind of evidence: ``326``, ``1194`` (only the
    SMTP interface's: 1194 for another interface is another store problem),
    ``transport`` (any MSExchangeTransport event), ``tracking`` (Exchange
    2000/2003 tracking; 2007+ MSGTRK is not this world)."""
    ev_spec = K["events"]
    if label in ("326", "1194"):
        spec = ev_spec["store_logon_failed" if label == "326" else "accept_clients_failed"]
        rows = records(host.events(provider=spec["provider"], event_id=spec["event_id"]))
        return [r for r in rows if label == "326" or is_smtp_1194(r)]
    if label == "transport":
        return records(host.events(provider=K["transport_providers"]))
    return [r for r in records(host.kind("tracking_entry")) if not is_2007_tracking(r.get("data"))]


@dataclass
class Facts:
    host: str | None
    ldap: pd.DataFrame
    smtp_logons: list[Logon326] = field(default_factory=list)
    other_logons: list[Logon326] = field(default_factory=list)
    blind_logons: list[Logon326] = field(default_factory=list)
    accept: list[dict] = field(default_factory=list)
    loops: list[TrackedMessage] = field(default_factory=list)
    healthy: list[TrackedMessage] = field(default_factory=list)
    conn: ConnDN | None = None
    other_conns: list[ConnDN] = field(default_factory=list)
    delivered_after: list[tuple[TrackedMessage, dict]] = field(default_factory=list)
    last_fail: pd.Timestamp | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    # the 326 path: names, AD state, attachments
    names: dict[str, Any] = field(default_factory=dict)
    ad: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, str] = field(default_factory=dict)
    miss_rem: list[str] = field(default_factory=list)
    ldif: str = ""
    modify: str = ""

    @property
    def server(self) -> str | None:
        return self.conn.server if self.conn else (self.host.split(".")[0] if self.host else None)

    @property
    def codes(self) -> list[str]:
        return self.facts.get("error_codes", [])

    @property
    def kb_code(self) -> bool:
        return any(c in KB_CODES for c in self.codes)

    @property
    def corroborated(self) -> bool:
        return bool(self.accept or self.loops)

    def ev_326(self, n: int = 3) -> list:
        return [ev(lg.row) for lg in self.smtp_logons[:n]]

    def ev_loop(self) -> list:
        return [ev(r) for r in (loop_excerpt(self.loops[0]) if self.loops else [])]

    def status(self) -> str:
        """A 326 naming the SMTP connection mailbox is a problem when 1194 or
        a retry loop shows the store still refuses it; a 326 alone, or one
        local delivery has since got past, leaves the current state open."""
        if self.conn and self.corroborated and not self.delivered_after:
            return "problem"
        if self.conn or self.loops or self.accept or self.blind_logons:
            return "inconclusive"
        return "ok" if self.healthy else "inconclusive"


def _logons(f: Facts, rows: list[dict]) -> None:
    for row in rows:
        text = text_of(row)
        lg = Logon326(row, parse_connection_dn(text), [c.lower() for c in CODE_RE.findall(text)],
                      bool(text.strip()))
        (f.smtp_logons if lg.dn is not None else f.other_logons if lg.has_text else f.blind_logons).append(lg)
    # Several stores can each lose their SMTP mailbox; the article's fix is
    # per store. The store of the most recent 326 leads.
    f.smtp_logons.sort(key=lambda lg: (ts_of(lg.row) or pd.Timestamp(0, tz="UTC")))
    f.conn = f.smtp_logons[-1].dn if f.smtp_logons else None
    for lg in f.smtp_logons:
        if f.conn and lg.dn.guid != f.conn.guid and all(o.guid != lg.dn.guid for o in f.other_conns):
            f.other_conns.append(lg.dn)


def _delivered_after(f: Facts) -> None:
    """Local delivery that completed after the store refused the SMTP
    mailbox shows the mailbox has worked since: a past problem, not the
    article's "messages remain in the local delivery queue"."""
    f.last_fail = max((t for t in (ts_of(r) for r in [lg.row for lg in f.smtp_logons] + f.accept)
                       if t is not None), default=None)
    if f.conn and f.last_fail is not None and not f.loops:
        for m in f.healthy:
            done = [r for r in (m.store_delivered or m.delivered) if ts_of(r) is not None and ts_of(r) > f.last_fail]
            if done:
                f.delivered_after.append((m, done[-1]))


def _machine_facts(f: Facts) -> None:
    d = f.facts
    if f.conn:
        c = f.conn
        d.update({"organization": c.org, "administrative_group": c.ag, "server": c.server,
                  "store_guid": "{" + c.guid + "}", "smtp_connection_dn": c.dn})
        if f.other_conns:
            d["other_store_guids"] = ["{" + o.guid + "}" for o in f.other_conns]
        d["error_codes"] = sorted({code for lg in f.smtp_logons for code in lg.codes})
        d["event_326_count"] = len(f.smtp_logons)
    if f.accept:
        d["event_1194_count"] = len(f.accept)
    if f.loops:
        d["retry_loops"] = [loop_facts(m) for m in f.loops[:20]]
    if f.healthy and not f.loops:
        d["delivered_messages"] = len(f.healthy)
    if f.delivered_after:
        d["delivered_after_last_failure"] = len(f.delivered_after)
        d["last_failure"] = f.last_fail.isoformat() if f.last_fail is not None else None


def _active_directory(f: Facts, check_id: str) -> None:
    """The 326 path: every name the remediation needs, the AD export's view
    of the mailGateway object, and the replacement object as LDIF."""
    assert f.conn is not None
    f.names = names_for(f.conn, f.server, f.host, f.ldap)
    f.ad = ad_state(f.conn, f.ldap, f.names)
    f.facts["ad_export"] = f.ad["summary"]
    f.ldif = ldif_add([f.conn, *f.other_conns], f.server, f.host, f.ldap)
    f.attachments[K["attachments"]["add"]] = f.ldif
    f.facts["mailgateway"] = f.names["attrs"]
    f.miss_rem = [s.format(**f.names["fmt"]) for s in K["remediation"]["missing"]]
    # The LDIF goes right after the article's "create a new object" step.
    f.miss_rem.insert(K["remediation"]["missing_ldif_after"] + 1,
                      "New mailGateway object (LDIF for review; analyze --attachments DIR writes it as "
                      f"{attachment_file_name(check_id, f.host, K['attachments']['add'])}):\n" + f.ldif)
    if f.ad["object"] is not None and f.ad["wrong"]:
        # The object exists: hand over the change, not a new object.
        f.attachments.pop(K["attachments"]["add"], None)
        f.modify = ldif_modify(f.ad["object_dn"], f.ad["wrong"])
        f.attachments[K["attachments"]["modify"]] = f.modify


def gather(host: Host, ldap: pd.DataFrame, check_id: str) -> Facts:
    f = Facts(host.name, ldap)
    _logons(f, select_rows(host, "326"))
    f.accept = select_rows(host, "1194")
    tracked = tracked_messages(select_rows(host, "tracking"))
    f.loops = [m for m in tracked.values() if len(m.retries) >= K["tracking"]["loop_min_retries"]]
    f.healthy = [m for m in tracked.values() if (m.store_delivered or m.delivered) and not m.retries]
    _delivered_after(f)
    _machine_facts(f)
    if f.conn:
        _active_directory(f, check_id)
    return f
