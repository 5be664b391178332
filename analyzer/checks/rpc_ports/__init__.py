"""Check ``rpc-port-conflict``: Exchange RPC endpoints missing because their
static TCP ports are taken (KB 926210, with the registry values of KB 270836).

The article's story, which this check follows step by step:

* Symptom: MAPI clients (Outlook) are asked for credentials and fail, while
  OWA works with the same account. The Security log shows 529 (Logon Type 3,
  NtLmSsp, "Unknown user name or bad password") and 681 with error code
  3221225572 (0xC0000064) -- 4625 / 4776 on Vista and later
  (:func:`.model.is_symptom`).
* Cause: one or more Exchange services are configured with a *static* TCP
  port, and another process bound that port first. The Exchange service does
  not try another port, so its interfaces never reach the endpoint mapper
  (:mod:`.causes`).
* Step 1: ``rpcdump /S server`` -- the ncacn_ip_tcp section must list the
  Information Store, MTA, directory (NSPI proxy, RFR) and System Attendant
  interfaces; step 2: the static port mappings in the registry (KB 270836);
  who holds a port comes from ``netstat -ano`` joined to ``tasklist /svc``
  on the PID (:mod:`.facts`).

Evidence is matched by interface UUID (never by annotation: the KB itself
prints "MS ExchangeDirectory NSPI Proxy"); static ports are read through
``CurrentControlSet``. The world: Exchange 2000/2003 servers; a host the case
shows to run Exchange 2007 or later is not_applicable.
"""
from __future__ import annotations

from typing import Any

from ...findings import Finding
from .. import register
from ..toolkit import FindingParts, KeySpec, ToolkitCheck, World, build_finding
from . import report
from .causes import causes
from .facts import judge_facts
from .model import KNOWLEDGE, is_symptom
from .servers import attach_logs, find_servers

CHECK_ID = "rpc-port-conflict"
__all__ = ["RpcPortConflict", "is_symptom"]


@register
class RpcPortConflict(ToolkitCheck):
    id = CHECK_ID
    title = "Exchange RPC endpoints missing because static ports are taken (KB 926210)"
    description = (
        "Compares the endpoint-mapper dump (rpcdump, impacket rpcdump.py, PortQry -e 135) with the "
        "Exchange interfaces KB 926210 lists, reads the static RPC ports of KB 270836 from the "
        "SYSTEM hive or a .reg export, and names the process holding a static port (netstat -ano + "
        "tasklist /svc). Security 529/681 (4625/4776) with 0xC0000064 are the client-side symptom.")
    needs = ("endpoint", "registry_value", "registry_key", "listener", "connection", "process", "event")
    references = ("KB 926210", "KB 270836")
    knowledge = KNOWLEDGE
    world = World(exchange=("2000/2003",),
                  elsewhere="the static RPC ports of KB 270836 / KB 926210 (MTA, System Attendant, "
                            "store, directory) do not apply")
    registry_keys = (
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchange*",
                "static RPC ports of the Exchange services (KB 270836), start types"),
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\NTDS\\Parameters",
                "GC NSPI static port 'TCP/IP Port' (KB 298369)"),
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\Netlogon\\Parameters",
                "Netlogon static port 'DCTcpipPort' (KB 224196)", subtree=False),
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\NtFrs\\Parameters",
                "FRS static port 'RPC TCP/IP Port Assignment' (KB 319553)", subtree=False),
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip",
                "MaxUserPort: the client port range a static port may fall in"),
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\RpcSs", "RPC service start type"),
        KeySpec("HKLM\\SOFTWARE\\Microsoft\\Rpc", "RPC dynamic port range (Rpc\\Internet Ports)"),
    )

    def run(self, case: Any) -> list[Finding]:
        lacking = self.lacks_needs(case)
        if lacking is not None:
            return [lacking]
        servers = find_servers(case.table)
        if not servers:
            from ..toolkit import not_applicable, only_host
            return self.within_world(case, [not_applicable(
                self, only_host(case), "No Exchange RPC endpoints, no Exchange service registry keys, no Exchange "
                "processes and no KB 926210 logon-failure symptoms in the case.")])
        attach_logs(case.table, servers)
        return self.within_world(case, [self.judge_server(s) for s in servers])

    def judge_server(self, srv: Any) -> Finding:
        """KB 926210 for one server: the endpoint map, the static ports, who
        holds each port, and every cause weighed against them."""
        j = judge_facts(srv)
        weighed = causes.weigh(j)
        status, severity = report.status_severity(j, weighed)
        return build_finding(self, srv.display or None, FindingParts(
            summary=report.summary(j, status, weighed), causes=weighed, status=status, severity=severity,
            evidence=report.evidence(j), remediation=report.remediation(j, weighed, status),
            collect=report.collect(j, status), facts=report.machine_facts(j),
            max_evidence=report.MAX_EVIDENCE * 3))
