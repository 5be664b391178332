"""Check store-crash: the Information Store (store.exe) crashing on a
mailbox server ("Information Store Crashing, Exchange 2007").

store.exe crashes show as "Application Error" 1000 naming the faulting
module, and as Service Control Manager 7031/7034 for the Information Store
service. The causes, one function each in :mod:`.causes`: the EXCDO.DLL
calendar bug of Exchange 2007 before SP1 Update Rollup 6, and any other
faulting module (named with its version, count, first and last crash).
Severity grows with the number of crashes; crashes of other processes
(w3wp.exe on a Client Access role) are not the store's.
"""
from __future__ import annotations

from typing import Any

from ...findings import Cause, Finding
from ..toolkit import FindingParts, KeySpec, ToolkitCheck, World, build_finding, supported
from ..toolkit.host import Host
from ..toolkit.roles import exchange_roles
from ..toolkit.world import Applicability
from .. import register
from .causes import causes
from .facts import Facts, gather

__all__ = ["StoreCrashCheck"]


@register
class StoreCrashCheck(ToolkitCheck):
    """store.exe crashes on a mailbox server, grouped by faulting module."""

    id = "store-crash"
    title = "Information Store crashing: store.exe faults"
    description = (
        "Groups the Application Error 1000 (and WER 1001) events of store.exe by faulting module "
        "and version, with the Service Control Manager 7031/7034 terminations of the Information "
        "Store service, and weighs the EXCDO.DLL calendar bug of Exchange 2007 before SP1 Update "
        "Rollup 6 against any other faulting module; severity grows with the crash count.")
    needs = ("event", "registry_key", "registry_value", "process")
    knowledge = "store_crash"
    world = World(exchange=("2000/2003", "2007+"), elsewhere="no Information Store")
    registry_keys = (
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS",
                "the Information Store service: a mailbox server", subtree=False),
    )

    def in_world(self, host: Host) -> bool:
        return bool(exchange_roles(host).has("mailbox")) or bool(_store_crash_rows(host))

    def applies(self, host: Host) -> Applicability:
        base = super().applies(host)
        if base.state == "out":
            return base
        roles = exchange_roles(host)
        if roles.has("mailbox") or _store_crash_rows(host):
            return Applicability("in", roles.why("mailbox") or "store.exe crash events",
                                 roles.evidence.get("mailbox", [])[:2])
        if roles.has("mailbox") is False:
            return Applicability("out", f"not a Mailbox server: no Information Store (installed roles: "
                                        f"{roles.listed_names()}).",
                                 [e for v in roles.evidence.values() for e in v][:2])
        return Applicability("out", "no Information Store evidence (no Mailbox role key, MSExchangeIS service, "
                                    "store.exe process or store event).")

    def judge(self, host: Host, applies: Applicability) -> Finding:
        f = gather(host, self.kb)
        weighed = causes.weigh(f)
        status, severity = _status(f)
        return build_finding(self, host.name, FindingParts(
            summary=_summary(f, status, weighed), causes=weighed, status=status, severity=severity,
            evidence=_evidence(f, status, weighed), collect=_collect(f, status, weighed),
            facts=_facts(f), decided=f.app_log))


def _store_crash_rows(host: Host) -> bool:
    hit = host.events(provider="Application Error", event_id=1000, contains="store.exe")
    return bool(len(hit))


def _status(f: Facts) -> tuple[str, str]:
    if f.crashes:
        n = f.crashes
        sev = next(s["severity"] for s in f.kb["severity"] if n >= s["min"])
        return "problem", sev
    if not f.app_log or f.unread:
        return "inconclusive", "warning"
    return "ok", "info"


def _summary(f: Facts, status: str, weighed: list[Cause]) -> str:
    who = f.host
    others = ""
    if f.other_crashes:
        apps: dict[str, int] = {}
        for r in f.other_crashes:
            apps[str(r["_data"].get("app"))] = apps.get(str(r["_data"].get("app")), 0) + 1
        others = (" Crashes of other processes are not the store's: "
                  + ", ".join(f"{a} ({n})" for a, n in sorted(apps.items())) + ".")
    if status == "problem":
        mods = "; ".join(f"{m.label()}: {m.span()}" for m in f.modules) or "faulting module not logged"
        live = supported(weighed)
        top = f" Most likely: {live[0].title} ({live[0].id}, {live[0].verdict})." if live else ""
        scm = f" The Information Store service terminated {len(f.scm)} time(s)." if f.scm else ""
        return f"{who}: store.exe crashed {f.crashes} time(s) ({mods}).{scm}{top}{others}"
    if status == "inconclusive":
        if not f.app_log:
            return f"{who}: no Application log in the case to see whether store.exe crashes."
        return (f"{who}: {len(f.unread)} Application Error event(s) whose faulting application could not "
                f"be read; no store.exe crash among the others.{others}")
    span = (f" ({f.app_bounds[0]['ts']:%Y-%m-%d %H:%M} to {f.app_bounds[-1]['ts']:%Y-%m-%d %H:%M} UTC)"
            if f.app_bounds and f.app_bounds[0].get("ts") is not None else "")
    return f"{who}: the Application log{span} has no crash of store.exe.{others}"


def _evidence(f: Facts, status: str, weighed: list[Cause]) -> list[Any]:
    rows: list[Any] = [e for c in supported(weighed) for e in c.evidence] + f.scm[:3]
    if status != "problem":
        rows += f.app_bounds + f.other_crashes[:3] + f.unread[:3]
    return rows


def _collect(f: Facts, status: str, weighed: list[Cause]) -> list[str]:
    c = f.kb["collect"]
    out = []
    if not f.app_log:
        out.append(c["app_log"])
    if not f.system_log and status != "ok":
        out.append(c["system_log"])
    if f.unread:
        out.append(c["fields"])
    if status == "problem":
        rest = [x for x in weighed if x.id == "faulting-module" and x.verdict in ("confirmed", "likely")]
        if rest or not f.modules:
            out.append(c["dumps"])
        if f.build is None or getattr(f.build, "certainty", "unknown") == "unknown":
            out.append(c["build"])
    module = f.modules[0].name if f.modules else "the faulting module"
    return [x.format(host=f.host, module=module) for x in out]


def _facts(f: Facts) -> dict[str, Any]:
    b = f.build
    return {
        "store_crashes": f.crashes,
        "modules": [{"module": m.name, "version": m.version, "count": m.count, "span": m.span()}
                    for m in f.modules],
        "service_terminations": len(f.scm),
        "other_process_crashes": len(f.other_crashes),
        "exchange_build": getattr(b, "build", None), "build_certainty": getattr(b, "certainty", None),
    }
