"""Check dns-query-failed: mail to some domains stuck in the queues of an
Exchange 2007/2010 Hub or Edge Transport server with "451 4.4.0 DNS query
failed".

The affected domains come from the queues' LastError (``Get-Queue | fl``),
tracking DEFER/FAIL rows and protocol logs, each with its message count and
first/last failure. The causes, one function each in :mod:`.causes`: the
Exchange 2007 / Windows Server 2008 IPv6 DNS issue (KB 972744), domains that
really do not resolve, and wrong or unreachable external DNS servers of the
transport server. A 451 with another enhanced status (4.7.0 greylisting) is
not this failure.
"""
from __future__ import annotations

from typing import Any

from ...findings import Cause, Finding
from ..toolkit import FindingParts, KeySpec, ToolkitCheck, World, build_finding, supported
from ..toolkit.host import Host
from ..toolkit.roles import TransportRole
from ..toolkit.world import Applicability
from .. import register
from .causes import causes
from .facts import Facts, gather

__all__ = ["DnsQueryFailedCheck"]


@register
class DnsQueryFailedCheck(TransportRole, ToolkitCheck):
    """451 4.4.0 DNS query failed on a Hub/Edge Transport server."""

    id = "dns-query-failed"
    title = "451 4.4.0 DNS query failed: mail to some domains stuck in the transport queues"
    description = (
        "Lists the domains whose queues fail with 451 4.4.0 DNS query failed (message counts, first "
        "and last failure) from Get-Queue exports, tracking and protocol logs, and weighs the "
        "Exchange 2007 / Windows Server 2008 IPv6 DNS issue (KB 972744) against domains that do "
        "not resolve (nslookup) and wrong external DNS servers (Get-TransportServer).")
    needs = ("ps_object", "smtp_protocol", "tracking_entry", "event", "registry_key")
    knowledge = "dns_query_failed"
    world = World(exchange=("2007+",), elsewhere="the 451 4.4.0 queue error is of the Exchange 2007/2010 "
                                                 "Hub and Edge Transport service")
    registry_keys = (
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip6\\Parameters",
                "DisabledComponents: IPv6 preferred or disabled (KB 929852)", subtree=False),
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeTransport",
                "the transport service: a Hub or Edge Transport server", subtree=False),
    )

    def judge(self, host: Host, applies: Applicability) -> Finding:
        f = gather(host, self.kb)
        weighed = causes.weigh(f)
        status = _status(f, weighed)
        return build_finding(self, host.name, FindingParts(
            summary=_summary(f, status, weighed), causes=weighed, status=status,
            evidence=_evidence(f, status, weighed), collect=_collect(f, status),
            facts=_facts(f), decided=f.decided))


def _status(f: Facts, weighed: list[Cause]) -> str:
    if f.domains:
        return "problem" if supported(weighed) else "inconclusive"
    return "ok" if f.decided else "inconclusive"


def _summary(f: Facts, status: str, weighed: list[Cause]) -> str:
    who = f.host
    if f.domains:
        listed = "; ".join(d.describe() for d in f.domains.values())
        live = supported(weighed)
        top = (f" Most likely: {live[0].title} ({live[0].id}, {live[0].verdict})." if live
               else " The case does not show why.")
        return f"{who}: 451 4.4.0 DNS query failed for {listed}.{top}"
    if not f.decided:
        return (f"{who}: no queue export or protocol log in the case to show whether queues fail with 451 "
                "4.4.0 DNS query failed" + (" (the tracking logs have no DEFER/FAIL with it)." if f.tracked else "."))
    others = ""
    if f.other_errors:
        errs = "; ".join(f"{r['_data'].get('NextHopDomain')}: {r['_data'].get('LastError')}" for r in f.other_errors[:3])
        others = f" Other queue errors, not DNS failures: {errs}."
    return f"{who}: no queue fails with 451 4.4.0 DNS query failed ({len(f.queues)} queue(s) exported).{others}"


def _evidence(f: Facts, status: str, weighed: list[Cause]) -> list[Any]:
    rows: list[Any] = [r for d in f.domains.values() for r in d.rows[:2]]
    rows += [e for c in supported(weighed) for e in c.evidence]
    if status != "problem":
        rows += f.other_errors[:3] + f.queues[:3]
    return rows


def _collect(f: Facts, status: str) -> list[str]:
    c = f.kb["collect"]
    out = []
    if not f.queues:
        out.append(c["queues"])
    if f.domains:
        if any(not f.lookups_for(d) for d in f.domains):
            out.append(c["nslookup"])
        if not f.adapters:
            out.append(c["ipconfig"])
        if f.disabled_components is None and f.tcpip6_absent is None:
            out.append(c["registry"])
        if f.transport_server is None:
            out.append(c["transport_server"])
        if f.windows is None:
            out.append(c["windows"])
    if status == "ok":
        out = []
    return [x.format(host=f.host, domains=" ".join(f.domains) or "<domain>") for x in out]


def _facts(f: Facts) -> dict[str, Any]:
    return {
        "affected_domains": [{"domain": d.name, "messages": d.messages, "records": len(d.rows),
                              "first": str(d.span()[0]) if d.span() else None,
                              "last": str(d.span()[1]) if d.span() else None,
                              "queue_last_retry": d.retries[-1] if d.retries else None}
                             for d in f.domains.values()],
        "queues_exported": len(f.queues),
        "windows_version": f.windows.value if f.windows is not None else None,
        "exchange_major": f.exchange_major,
        "ipv6_bound": f.ipv6_bound,
        "disabled_components": f.disabled_components.as_int if f.disabled_components is not None else None,
    }
