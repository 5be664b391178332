"""Check mom-9986: why MOM never logged event 9986 for an Exchange server.

Encodes Microsoft KB 911143 (MOM 2005 + Exchange Management Pack) and
"Missing 9986 Events in Operations Manager 2007". The Management Pack's
"Exchange - Publish ExMP Data" script calls a DCOM helper on the Exchange
server that writes ``HKLM\\SOFTWARE\\Microsoft\\ExMPLS`` (REG_BINARY DATA0 =
the public key BLOB); MOM then logs 9986, and only after that can the
Configuration Wizard store the mailbox access account (DATA1..DATA3).

The article's decision tree, and where each step lives:

1. Which helper? ExchKP (Exchange 2000 + MOM 2000 SP1) or EMPKP (Exchange
   2003, or Exchange 2000 with MOM 2005) -- :mod:`.versions`.
2. What did the script log? 9986 published; 9970 / 10000 the helper ran and
   failed; 9972 / 10001 the object could not be created; 9987 the MAPI
   logon rule found no ExMPLS key; nothing = the script or its rules are not
   running. Source "Exchange MOM" (MOM 2005), or under Operations Manager
   2007 "Health Service Script" with the script's name among its parameters
   -- :mod:`.facts`.
3. Is the helper registered (``Classes\\CLSID\\{clsid}\\LocalServer32``,
   ``empkp.exe /regserver`` in the setup log)? 4. Does DCOM start it (DCOM
   10000)? 5. Permissions (KB 274696, DCOM 10016)? 6. DATA1..DATA3 stored?
   -- one function per cause in :mod:`.causes`.

The world: Exchange 2000/2003 monitored by MOM 2000/2005 or Operations
Manager 2007 with the Exchange 2003 pack. An Exchange 2007 or later server
is out of it (not_applicable); a server with nothing showing MOM is at most
inconclusive.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...findings import Finding
from ..toolkit import FindingParts, KeySpec, ToolkitCheck, World, build_finding
from ..toolkit.host import Host
from ..toolkit.world import Applicability
from .. import register
from . import report
from .causes import causes
from .facts import exchange_rows, gather, survey
from .paths import exe_path, same_path

__all__ = ["Mom9986Check", "exe_path", "same_path"]


@register
class Mom9986Check(ToolkitCheck):
    """MOM event 9986 missing: ranked causes from KB 911143 / OpsMgr 2007."""

    id = "mom-9986"
    title = "MOM event 9986 missing: Exchange Management Pack data not published"
    description = (
        "Explains why MOM 2005 / Operations Manager 2007 never logged event 9986 "
        "(\"Successfully published Exchange Management Pack data required for "
        "performing MAPI logon\") for an Exchange server, weighing the DCOM helper "
        "(ExchKP or EMPKP) registration and path, DCOM permissions, publish "
        "failures, the publishing rules and the stored mailbox access account "
        "(KB 911143).")
    needs = ("event", "registry_key", "registry_value", "setup_line", "setup_process")
    references = ("KB 911143", "Missing 9986 Events in Operations Manager 2007", "KB 274696")
    knowledge = "mom9986"
    world = World(exchange=("2000/2003",),
                  elsewhere="the EMPKP/ExchKP helper and event 9986 of the Exchange 2000/2003 "
                            "Management Pack do not apply")
    registry_keys = (
        KeySpec("HKLM\\SOFTWARE\\Microsoft\\ExMPLS", "ExMPLS DATA0..DATA3 (event 9987 = key missing)"),
        KeySpec("HKCR\\CLSID\\{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}", "EMPKP DCOM helper: LocalServer32"),
        KeySpec("HKCR\\CLSID\\{E3D2F927-69FA-4EFD-8D05-8726EF540A06}", "ExchKP DCOM helper: LocalServer32"),
        KeySpec("HKCR\\AppID\\EMPKP.exe", "AppID of the EMPKP DCOM server (KB 274696)"),
        KeySpec("HKCR\\AppID\\ExchKP.exe", "AppID of the ExchKP DCOM server"),
        KeySpec("HKLM\\SOFTWARE\\Microsoft\\Ole", "machine-wide DCOM launch/access settings (KB 274696)"),
        KeySpec("HKLM\\SOFTWARE\\Microsoft\\Microsoft Operations Manager", "MOM 2005 / OpsMgr 2007 agent"),
        KeySpec("HKLM\\SOFTWARE\\Mission Critical Software\\OnePoint", "MOM 2000/2005 agent"),
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\HealthService", "OpsMgr 2007 agent service"),
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\OnePoint", "MOM 2000/2005 agent service"),
    )

    # ---- which servers ---------------------------------------------------------
    def subjects(self, case: Any) -> set[str] | None:
        """Servers with Exchange evidence (a MOM export also lists agents that
        are not); with only host-less evidence, the case's one machine."""
        from ...query import host_codes
        df = case.table
        self._survey = survey(df, self.kb)
        world, exch = exchange_rows(df, self.kb, self._survey.mom_rows)
        if not world.any():
            return set()
        codes, keys = host_codes(df)
        named = codes >= 0
        hosts = {keys[c] for c in np.unique(codes[named & exch.to_numpy(dtype=bool)])}
        every = {keys[c] for c in np.unique(codes[named])}
        return hosts or (every if len(every) == 1 else None if not every else set())

    def nothing_here(self) -> str:
        return ("Nothing in this case concerns Exchange or MOM (no Exchange MOM events, "
                "no Exchange registry keys, no Exchange setup log).")

    def in_world(self, host: Host) -> bool:
        """Exchange MOM script events exist only where the Exchange 2000/2003
        Management Pack runs."""
        return host.part.count(self._survey.mom_rows.to_numpy(dtype=bool)) > 0

    def applies(self, host: Host) -> Applicability:
        """Exchange 2000/2003 (or its MOM script events) and a MOM agent. With
        no trace of MOM, complete SOFTWARE and SYSTEM hives that hold neither
        agent's keys nor its service prove there is none: not applicable;
        otherwise the world stays unknown (at most inconclusive)."""
        a = super().applies(host)
        host.facts = gather(host, self._survey, self.kb)
        if a.state != "in" or host.facts.mom_trace:
            return a
        agent = self.kb["registry"]["mom_agent_keys"] + self.kb["registry"]["mom_agent_services"]
        gone = [host.absent(k, "absent: no MOM / Operations Manager agent") for k in agent]
        if all(gone):
            return Applicability("out", "No MOM or Operations Manager agent on this server (its SOFTWARE "
                                 "and SYSTEM hives hold neither agent's keys nor service, and no MOM "
                                 "event names it): event 9986 is not expected.", gone)
        return Applicability("unknown", "nothing shows MOM or Operations Manager monitors it", a.evidence)

    # ---- one server ---------------------------------------------------------------
    def judge(self, host: Host, applies: Applicability) -> Finding:
        f = host.facts
        weighed = causes.weigh(f)
        for c in weighed:
            ref = self.kb["cause_refs"].get(c.id)
            if ref:
                c.explanation = f"{c.explanation} [{ref}]"
        # With the helper registered where it belongs and no failure anywhere,
        # the script not running explains a missing 9986 before any DCOM-level
        # failure would (those leave DCOM or MOM error events behind).
        quiet = (not f.outcomes and not f.dcom("start_failed") and not f.dcom("access_denied")
                 and f.registered and not f.path_mismatch and not f.path_bad)
        weighed.sort(key=lambda c: -(quiet and c.id == "publish-not-running"))
        status = report.status_of(f, weighed)
        return build_finding(self, host.name, FindingParts(
            summary=report.summary(f, status, weighed), causes=weighed, status=status,
            evidence=report.evidence(f, status, weighed), collect=report.collect(f, status, weighed),
            facts=report.machine_facts(f)))
