"""What one mailbox server's case says about store.exe crashing.

Windows logs a crash of store.exe as "Application Error" 1000 (the faulting
module, its version, exception code and offset; Windows Error Reporting 1001
repeats it as an APPCRASH signature) and the Service Control Manager logs
7031/7034 when the Information Store service terminates. The event reader
gives those as fields (``app``, ``module``, ``module_version``, ``offset``;
``service``, ``crash_count``); this module groups the crashes by faulting
module and reads the Exchange build (:func:`analyzer.builds.host_build`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..toolkit import Host, records


@dataclass
class Module:
    """The store.exe crashes in one faulting module (and version)."""

    name: str
    version: str | None
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.rows)

    def span(self) -> str:
        ts = [pd.Timestamp(r["ts"]) for r in self.rows if r.get("ts") is not None]
        if not ts:
            return f"{self.count} time(s)"
        first, last = min(ts), max(ts)
        if first == last:
            return f"once, {first:%Y-%m-%d %H:%M} UTC"
        return f"{self.count} times, {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC"

    def label(self) -> str:
        return f"{self.name} {self.version or '(version not logged)'}"


@dataclass
class Facts:
    host: str
    kb: dict[str, Any]
    app_log: bool = False
    system_log: bool = False
    app_bounds: list[dict[str, Any]] = field(default_factory=list)
    modules: list[Module] = field(default_factory=list)
    other_crashes: list[dict[str, Any]] = field(default_factory=list)    # 1000 of other processes
    scm: list[dict[str, Any]] = field(default_factory=list)              # 7031/7034 of the store service
    unread: list[dict[str, Any]] = field(default_factory=list)           # 1000 whose fields were not read
    build: Any = None

    @property
    def crashes(self) -> int:
        """store.exe crashes: the 1000 events, or the service terminations
        when those say more (a log without the 1000s)."""
        by_event = sum(m.count for m in self.modules)
        return max(by_event, len(self.scm))

    def words(self) -> dict[str, Any]:
        return {"host": self.host}

    def excdo(self) -> list[Module]:
        name = self.kb["excdo"]["module"]
        return [m for m in self.modules if m.name.lower() == name]


def _crash_rows(host: Host, kb: dict[str, Any]) -> list[dict[str, Any]]:
    ev = kb["events"]
    rows = records(host.events(provider=ev["app_error"]["provider"], event_id=ev["app_error"]["id"]))
    wer = records(host.events(provider=ev["wer"]["provider"], event_id=ev["wer"]["id"]))
    # A WER 1001 APPCRASH repeats a 1000; it counts only when no 1000 names that process and time.
    seen = {(str(r["_data"].get("app") or "").lower(), str(r.get("ts"))[:16]) for r in rows}
    rows += [r for r in wer if r["_data"].get("app") and
             (str(r["_data"]["app"]).lower(), str(r.get("ts"))[:16]) not in seen]
    return sorted(rows, key=lambda r: str(r.get("ts")))


def gather(host: Host, kb: dict[str, Any]) -> Facts:
    f = Facts(host=host.name or "this server", kb=kb)
    app = host.events(channel="Application")
    f.app_log = bool(len(app))
    if f.app_log:
        ordered = app.sort_values("ts")
        f.app_bounds = records(ordered.iloc[[0, -1]]) if len(ordered) > 1 else records(ordered)
    f.system_log = host.has_channel("System")
    store = kb["store_process"]
    groups: dict[tuple[str, str | None], Module] = {}
    for r in _crash_rows(host, kb):
        d = r["_data"]
        app_name = d.get("app")
        if not app_name:
            f.unread.append(r)
            continue
        if str(app_name).lower() != store:
            f.other_crashes.append(r)
            continue
        key = (str(d.get("module") or "unknown module"), d.get("module_version"))
        groups.setdefault((key[0].lower(), key[1]), Module(key[0], key[1])).rows.append(r)
    f.modules = sorted(groups.values(), key=lambda m: -m.count)
    names = [n.lower() for n in kb["store_service_names"]]
    for r in records(host.events(provider=kb["events"]["scm"]["provider"], event_id=kb["events"]["scm"]["ids"])):
        if str(r["_data"].get("service") or "").lower() in names:
            f.scm.append(r)
    f.build = host.build
    return f
