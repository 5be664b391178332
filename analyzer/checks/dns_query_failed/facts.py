"""What one transport server's case says about "451 4.4.0 DNS query failed".

The failure shows as the LastError of a delivery queue (``Get-Queue | fl``:
NextHopDomain, MessageCount, LastRetryTime), as the recipient status of a
tracking DEFER/FAIL row, or in a protocol log line. Beside it: the server's
Windows version and Exchange build, whether IPv6 is bound (``ipconfig
/all``) or turned off (``Tcpip6\\Parameters DisabledComponents``), what
``nslookup`` got for the affected domains, hosts file entries and the
transport server's DNS settings (``Get-TransportServer``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ...findings import Evidence
from ..toolkit import Host, records


@dataclass
class Domain:
    """One next-hop domain failing with 451 4.4.0."""

    name: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0
    #: times of the failures in tracking and protocol logs (UTC)
    times: list[Any] = field(default_factory=list)
    #: the queues' LastRetryTime, as printed (the server's local time)
    retries: list[str] = field(default_factory=list)

    def span(self) -> tuple[Any, Any] | None:
        ts = sorted(pd.Timestamp(t) for t in self.times if t is not None)
        return (ts[0], ts[-1]) if ts else None

    def describe(self) -> str:
        span = self.span()
        when = ""
        if span:
            when = (f", first {span[0]:%Y-%m-%d %H:%M} UTC, last {span[1]:%Y-%m-%d %H:%M} UTC"
                    if span[0] != span[1] else f", at {span[0]:%Y-%m-%d %H:%M} UTC")
        if self.retries:
            when += f", queue last retry {self.retries[-1]} (server time)"
        return f"{self.name} ({self.messages} message(s), {len(self.rows)} record(s){when})"


@dataclass
class Facts:
    host: str
    kb: dict[str, Any]
    domains: dict[str, Domain] = field(default_factory=dict)
    queues: list[dict[str, Any]] = field(default_factory=list)        # every queue object
    other_errors: list[dict[str, Any]] = field(default_factory=list)  # queues/rows failing otherwise
    send_logs: bool = False
    tracked: bool = False                # tracking logs in the case (they show DEFER/FAIL rows)
    windows: Any = None                  # RegValue of CurrentVersion
    exchange_major: int | None = None
    exchange_rows: list[Any] = field(default_factory=list)
    adapters: list[dict[str, Any]] = field(default_factory=list)
    disabled_components: Any = None      # RegValue
    tcpip6_absent: Any = None            # Absence evidence: the value is not set (IPv6 on)
    lookups: list[dict[str, Any]] = field(default_factory=list)
    hosts_entries: list[dict[str, Any]] = field(default_factory=list)
    transport_server: dict[str, Any] | None = None
    fault_tolerance: Any = None          # DnsFaultTolerance of EdgeTransport.exe.config (a Setting)

    def words(self) -> dict[str, Any]:
        return {"host": self.host, "domains": ", ".join(self.domains) or "the affected domains"}

    @property
    def decided(self) -> bool:
        """The case holds a source that would show the failure."""
        return bool(self.queues) or self.send_logs

    def lookups_for(self, domain: str) -> list[dict[str, Any]]:
        d = domain.lower().rstrip(".")
        return [r for r in self.lookups if str(r["_data"].get("query") or "").lower().rstrip(".") == d]

    def hosts_for(self, domain: str) -> list[dict[str, Any]]:
        """Hosts file entries for the domain or its MX hosts (the blog's
        workaround: the MX host hardcoded in the hosts file)."""
        names = {domain.lower()} | {str(m.get("exchange") or "").lower().rstrip(".")
                                    for r in self.lookups_for(domain) for m in (r["_data"].get("mx") or [])}
        return [h for h in self.hosts_entries
                if {str(n).lower() for n in (h["_data"].get("names") or [])} & names]

    @property
    def ipv6_bound(self) -> bool | None:
        if not self.adapters:
            return None
        return any(a["_data"].get("ipv6_bound") for a in self.adapters)

    @property
    def ipv6_off(self) -> bool | None:
        """DisabledComponents prefers IPv4 or disables IPv6 (KB 929852)."""
        dc = self.disabled_components
        if dc is not None and dc.as_int is not None:
            return bool(dc.as_int & self.kb["ipv6_off_mask"]) or dc.as_int == 0xFF
        return False if self.tcpip6_absent is not None else None


def _is_dns_451(kb: dict[str, Any], text: Any) -> bool:
    s = str(text or "")
    return kb["enhanced_status"] in s and kb["marker"].lower() in s.lower()


def _add(f: Facts, domain: str, row: dict[str, Any], messages: int, ts: Any) -> Domain:
    d = f.domains.setdefault(domain.lower(), Domain(domain.lower()))
    d.rows.append(row)
    d.messages += messages
    if ts is not None:
        d.times.append(ts)
    return d


def _queues(f: Facts, host: Host) -> None:
    for r in records(host.kind("ps_object")):
        d = r["_data"]
        if d.get("object") != "queue":
            continue
        f.queues.append(r)
        err = d.get("LastError")
        if _is_dns_451(f.kb, err):
            count = d.get("MessageCount")
            dom = _add(f, str(d.get("NextHopDomain") or "(unknown domain)"), r,
                       count if isinstance(count, int) else 0, None)
            if d.get("LastRetryTime"):
                dom.retries.append(str(d["LastRetryTime"]))
        elif err and str(err).strip():
            f.other_errors.append(r)


def _logs(f: Facts, host: Host) -> None:
    proto = host.kind("smtp_protocol")
    f.send_logs = bool(len(proto))
    for r in records(proto):
        if _is_dns_451(f.kb, r["_data"].get("data") or r.get("message")):
            dom = str(r["_data"].get("remote_endpoint") or r["_data"].get("connector_id") or "(send log)")
            _add(f, dom, r, 0, r.get("ts"))
    tracking = host.kind("tracking_entry")
    f.tracked = bool(len(tracking))
    for r in records(tracking):
        d = r["_data"]
        status = " ".join(map(str, d.get("recipient_status") or []))
        if str(d.get("event") or "").upper() in ("DEFER", "FAIL") and _is_dns_451(f.kb, status):
            for rcpt in d.get("recipients") or []:
                _add(f, str(rcpt).rsplit("@", 1)[-1], r, 1, r.get("ts"))


def _exchange(f: Facts, host: Host) -> None:
    info = host.build
    if info is not None and info.major is not None:
        f.exchange_major = info.major
        f.exchange_rows = list(info.evidence[:1])
        return
    gen = host.generation
    if gen.product and "2007" in gen.product:
        f.exchange_major, f.exchange_rows = 8, gen.evidence[:1]
    elif gen.product and "2010" in gen.product:
        f.exchange_major, f.exchange_rows = 14, gen.evidence[:1]


def gather(host: Host, kb: dict[str, Any]) -> Facts:
    f = Facts(host=host.name or "this server", kb=kb)
    _queues(f, host)
    _logs(f, host)
    f.windows = host.registry.get(kb["windows_key"], "CurrentVersion")
    _exchange(f, host)
    f.adapters = [a for a in records(host.kind("network_adapter"))
                  if not a["_data"].get("media_disconnected")]
    f.disabled_components = host.registry.get(kb["tcpip6_key"], "DisabledComponents")
    if f.disabled_components is None and host.registry.key_exists(kb["tcpip6_key"]):
        # the key was read with its values and DisabledComponents is not among them
        row = host.registry.key_row(kb["tcpip6_key"]) or host.registry.any_row(kb["tcpip6_key"])
        f.tcpip6_absent = Evidence.from_row(row, f"{kb['tcpip6_key']}: no DisabledComponents value "
                                                 "(IPv6 enabled and preferred)") if row else None
    settings = host.transport_settings
    if settings is not None:
        f.fault_tolerance = settings.settings.get("DnsFaultTolerance")
    f.lookups = records(host.kind("dns_query"))
    f.hosts_entries = records(host.kind("hosts_entry"))
    ts = [r for r in records(host.kind("ps_object")) if r["_data"].get("object") == "transport_server"]
    f.transport_server = ts[-1] if ts else None
    return f
