"""Check transport-back-pressure: why an Exchange 2007/2010 Hub or Edge
Transport server stopped accepting mail ("Troubleshooting Back Pressure
Issues").

The transport's resource monitor watches the queue database disk, its log
disk, version buckets (uncommitted queue transactions), EdgeTransport.exe
private bytes and the physical memory load; past a threshold it logs
MSExchangeTransport 15004 and disables submission. The causes, one function
each in :mod:`.causes`: the queue disk full, memory, antivirus scanning the
queue, a very large message (the blog's most likely cause), version buckets
high with nothing to explain them.

Status: ``problem`` while the last pressure state in the logs is Medium or
High; pressure that returned to Normal is reported as episodes (when, how
long, which resource) with status ``ok``; no Application log: inconclusive.
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
from .facts import Facts, changed_thresholds, gather

__all__ = ["BackPressureCheck"]


@register
class BackPressureCheck(TransportRole, ToolkitCheck):
    """Back pressure on a Hub/Edge Transport server: ranked causes."""

    id = "transport-back-pressure"
    title = "Transport back pressure: the Hub/Edge Transport server stopped accepting mail"
    description = (
        "Reads MSExchangeTransport 15004-15007 (resource pressure, the resources over their "
        "thresholds, the components disabled), the queue volumes' free space, tasklist and "
        "message tracking, and weighs the causes of back pressure on an Exchange 2007/2010 "
        "Hub or Edge Transport server: queue disk full, memory, a very large message, "
        "antivirus scanning the queue, version buckets high.")
    needs = ("event", "registry_key", "registry_value", "process", "volume_space", "tracking_entry", "config")
    knowledge = "back_pressure"
    world = World(exchange=("2007+",), elsewhere="back pressure is the resource monitor of the Exchange "
                                                 "2007/2010 Hub and Edge Transport service")
    registry_keys = (
        KeySpec("HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeTransport",
                "the transport service: a Hub or Edge Transport server", subtree=False),
    )

    def judge(self, host: Host, applies: Applicability) -> Finding:
        f = gather(host, self.kb)
        weighed = causes.weigh(f)
        status, severity = _status(f, weighed)
        return build_finding(self, host.name, FindingParts(
            summary=_summary(f, status, weighed), causes=weighed, status=status, severity=severity,
            evidence=_evidence(f, weighed), collect=_collect(f, status, weighed),
            facts=_facts(f), decided=f.app_log))


def _status(f: Facts, weighed: list[Cause]) -> tuple[str, str | None]:
    if not f.app_log or f.last_level_unread:
        return "inconclusive", "warning"
    if f.current is not None:
        return "problem", "critical" if f.current.peak == "High" else "error"
    return "ok", "info"


def _summary(f: Facts, status: str, weighed: list[Cause]) -> str:
    who = f.host
    if status == "inconclusive" and f.app_log:
        return (f"{who}: {len(f.events)} back pressure event(s), the last at {f.events[-1]['ts']:%Y-%m-%d %H:%M} "
                "UTC, whose pressure level could not be read: whether pressure is on now cannot be told.")
    if status == "inconclusive":
        return (f"{who}: no Application log in the case, so the back pressure events (MSExchangeTransport "
                "15004-15007) cannot be read.")
    past = [ep for ep in f.episodes if ep.end is not None]
    history = (f" Earlier episode(s): {'; '.join(ep.describe() for ep in past)}." if past else "")
    if status == "problem":
        live = supported(weighed)
        top = (f" Most likely: {live[0].title} ({live[0].id}, {live[0].verdict})." if live
               else " No cause in the case explains it.")
        off = f.current.rows[-1]["_data"].get("disabled_components") or []
        comps = f" Disabled: {', '.join(off)}." if off else ""
        return f"{who}: back pressure {f.current.describe()}.{comps}{top}{history}{_changed(f)}"
    span = (f" ({f.app_span[0]:%Y-%m-%d %H:%M} to {f.app_span[1]:%Y-%m-%d %H:%M} UTC)"
            if f.app_span and f.app_span[0] is not None else "")
    if past:
        return (f"{who}: back pressure returned to Normal; not under pressure at the end of the "
                f"Application log{span}. Episode(s): {'; '.join(ep.describe() for ep in past)}.")
    traffic = (f"; {f.tracking['message_id'].nunique()} messages in its tracking logs"
               if f.tracking is not None and len(f.tracking) else "")
    off = (" Resource monitoring is turned off in EdgeTransport.exe.config (EnableResourceMonitoring "
           "false): back pressure never engages, so the resources are not watched." if f.monitoring_off else "")
    return (f"{who}: the Application log{span} has no back pressure event (MSExchangeTransport 15004-15007)"
            f"{traffic}.{off}{_changed(f)}")


def _changed(f: Facts) -> str:
    changed = changed_thresholds(f.settings)
    if not changed:
        return ""
    return (" Thresholds changed from the defaults in EdgeTransport.exe.config: "
            + ", ".join(f"{s.name}={s.raw} (default {s.default})" for s in changed) + ".")


def _evidence(f: Facts, weighed: list[Cause]) -> list[Any]:
    rows: list[Any] = [e for c in supported(weighed) for e in c.evidence]
    for ep in f.episodes:
        rows += [ep.start] + ([ep.end] if ep.end is not None else [])
    if not f.episodes:
        rows += f.app_bounds + f.volumes[:2]
    if f.monitoring_off is not None:
        rows.append(f.monitoring_off.row)
    rows += [s.row for s in changed_thresholds(f.settings)]
    return rows


def _collect(f: Facts, status: str, weighed: list[Cause]) -> list[str]:
    c, host = f.kb["collect"], f.host
    out = []
    if not f.app_log:
        out.append(c["app_log"])
    window = "the pressure window"
    if status == "problem":
        ep = f.current
        if f.tracking is None or not len(f.tracking):
            out.append(c["tracking"])
        if not f.volumes:
            out.append(c["diskfree"])
        if not f.processes:
            out.append(c["tasklist"])
        if any(x.id == "version-buckets" and x.verdict == "likely" for x in weighed):
            out.append(c["disk_counters"])
        if ep.unread:
            out.append(c["fields"])
        window = f"{ep.start['ts']:%Y-%m-%d %H:%M} UTC and the hour before"
    if f.last_level_unread:
        out.append(c["fields"])
    paths = {r.get("path") for ep in f.episodes for r in ep.pressured.values() if r.get("path")}
    vols = ", ".join(sorted({p[:2] for p in paths if len(p) > 1 and p[1] == ":"})) or "(the queue volume)"
    return [x.format(host=host, window=window, volumes=vols) for x in out]


def _facts(f: Facts) -> dict[str, Any]:
    return {
        "application_log": f.app_log,
        "pressure_events": len(f.events),
        "episodes": [{"start": str(ep.start["ts"]), "end": str(ep.end["ts"]) if ep.end else None,
                      "minutes": ep.minutes, "peak": ep.peak,
                      "resources": sorted(ep.pressured)} for ep in f.episodes],
        "under_pressure_now": f.current is not None,
        "large_messages": [{"sender": m.get("sender"), "bytes": m.get("bytes"), "ts": str(m.get("ts")),
                            "subject": m.get("subject")} for m in f.large],
        "antivirus": sorted({a["_data"].get("image") for a in f.antivirus}),
        "config": f.settings.path if f.settings is not None else None,
        "resource_monitoring": (None if f.settings is None else f.monitoring_off is None),
        "changed_thresholds": {s.name: s.raw for s in changed_thresholds(f.settings)},
    }
