"""What one transport server's case says about back pressure.

The resource monitor logs MSExchangeTransport 15004 when pressure rises
(the resource lines ``Version buckets = 200 [High] [Normal=80 Medium=120
High=200]`` and the components it disabled), 15005 when it falls, and on
Exchange 2010 15006/15007 when it rejects mail for disk space or memory.
The event reader gives those as structured fields (``pressure_to``,
``resources``, ``disabled_components``); this module orders them into
episodes (rise to return to Normal) and gathers what explains the open one:
the queue volumes' free space, the processes running, the large messages of
the tracking logs just before pressure rose.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ...stats import tracking_events
from ..toolkit import Host, records


@dataclass
class Episode:
    """One stretch of pressure: from the event that left Normal to the one
    that returned to it (``end`` None: still under pressure)."""

    start: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    peak: str = "Medium"
    #: resource kind (``version_buckets``, ``queue_disk``...) -> the worst line seen
    pressured: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: resource lines of the episode's events that stayed Normal, by kind
    normal: dict[str, dict[str, Any]] = field(default_factory=dict)
    rejecting: set[str] = field(default_factory=set)     # "disk" (15006), "memory" (15007)
    unread: bool = False                                  # an event whose resource lines were not read

    @property
    def minutes(self) -> float | None:
        if self.end is None:
            return None
        return (pd.Timestamp(self.end["ts"]) - pd.Timestamp(self.start["ts"])).total_seconds() / 60

    def describe(self) -> str:
        what = ", ".join(_line(r) for r in self.pressured.values()) or "resources not named"
        when = pd.Timestamp(self.start["ts"]).strftime("%Y-%m-%d %H:%M")
        if self.end is None:
            return f"since {when} UTC, {self.peak} ({what}), not back to Normal"
        return f"{when} UTC for {self.minutes:.0f} min, up to {self.peak} ({what})"


def _line(r: dict[str, Any]) -> str:
    value = r.get("value", r.get("value_text"))
    unit = r.get("unit") or ""
    path = f" (\"{r['path']}\")" if r.get("path") else ""
    return f"{r.get('resource')}{path} = {value}{unit} [{r.get('level') or '?'}]"


@dataclass
class Facts:
    host: str
    kb: dict[str, Any]
    app_log: bool = False
    app_span: tuple[Any, Any] | None = None
    #: the first and last Application log rows: the coverage an ``ok`` cites
    app_bounds: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    processes: list[dict[str, Any]] = field(default_factory=list)
    antivirus: list[dict[str, Any]] = field(default_factory=list)
    edgetransport: dict[str, Any] | None = None
    tracking: pd.DataFrame | None = None
    large: list[dict[str, Any]] = field(default_factory=list)
    median_bytes: float | None = None
    settings: Any = None

    @property
    def last_level_unread(self) -> bool:
        """The last pressure event's level could not be read (a localized or
        truncated text): whether pressure is on now cannot be told."""
        if not self.events:
            return False
        d = self.events[-1]["_data"]
        eid = int(self.events[-1]["event_id"])
        return not (d.get("pressure_to") or d.get("pressure")) and eid not in (
            self.kb["events"]["disk"], self.kb["events"]["memory"])

    @property
    def current(self) -> Episode | None:
        """The episode still open at the end of the logs."""
        return self.episodes[-1] if self.episodes and self.episodes[-1].end is None else None

    def words(self) -> dict[str, Any]:
        return {"host": self.host}

    @property
    def monitoring_off(self) -> Any:
        """The EnableResourceMonitoring setting when the config turns back
        pressure off, else None."""
        s = self.settings.settings.get("EnableResourceMonitoring") if self.settings is not None else None
        return s if s is not None and s.explicit and s.value is False else None

    def queue_path(self) -> str | None:
        """The queue database folder: from the config, else the default."""
        s = self.settings.settings.get("QueueDatabasePath") if self.settings is not None else None
        return str(s.value) if s is not None and s.value else None

    def volume_of(self, path: str | None) -> dict[str, Any] | None:
        """The disk-free row of the volume holding ``path`` (``D:\\Queue``)."""
        if not path or len(path) < 2 or path[1] != ":":
            return None
        drive = path[:2].upper()
        hits = [v for v in self.volumes if str(v["_data"].get("volume") or "").upper().rstrip("\\") == drive]
        return hits[-1] if hits else None

    def tracking_window(self) -> tuple[Any, Any] | None:
        if self.tracking is None or not len(self.tracking):
            return None
        ts = self.tracking["ts"].dropna()
        return (ts.min(), ts.max()) if len(ts) else None


def _kind_of(kb: dict[str, Any], name: str) -> str | None:
    low = (name or "").lower()
    for kind, names in kb["resources"].items():
        if any(low.startswith(n.lower()) for n in names):
            return kind
    return None


def _level(kb: dict[str, Any], level: Any) -> int | None:
    return kb["levels"].get(str(level)) if level is not None else None


def _episodes(kb: dict[str, Any], events: list[dict[str, Any]]) -> list[Episode]:
    """Walk the events in time order: leaving Normal opens an episode,
    returning to it closes it; 15006/15007 mean rejecting (High)."""
    out: list[Episode] = []
    open_: Episode | None = None
    ev = kb["events"]
    for r in events:
        d, eid = r["_data"], int(r["event_id"])
        to = d.get("pressure_to") or d.get("pressure")
        if eid in (ev["disk"], ev["memory"]) and not to:
            to = "High"
        lvl = _level(kb, to)
        if lvl is None:
            if open_ is None:
                open_ = Episode(start=r)
            open_.rows.append(r)
            open_.unread = True
            continue
        if lvl == 0:
            if open_ is not None:
                open_.end = r
                open_.rows.append(r)
                out.append(open_)
                open_ = None
            continue
        if open_ is None:
            open_ = Episode(start=r)
        open_.rows.append(r)
        if lvl >= _level(kb, open_.peak):
            open_.peak = "High" if lvl == 2 else "Medium"
        if eid == ev["disk"]:
            open_.rejecting.add("disk")
        if eid == ev["memory"]:
            open_.rejecting.add("memory")
        resources = d.get("resources")
        if not isinstance(resources, list):
            open_.unread = True
            continue
        for res in resources:
            kind = _kind_of(kb, str(res.get("resource") or ""))
            if kind is None:
                kind = str(res.get("resource"))
            rl = _level(kb, res.get("level"))
            if rl:
                res = {**res, "_row": r}
                old = open_.pressured.get(kind)
                if old is None or rl >= (_level(kb, old.get("level")) or 0):
                    open_.pressured[kind] = res
            elif kind not in open_.pressured:
                open_.normal[kind] = {**res, "_row": r}
    if open_ is not None:
        out.append(open_)
    return out


def _large_messages(f: Facts, kb: dict[str, Any]) -> None:
    """Messages far bigger than the server's usual ones, received or
    submitted within the window before each episode began."""
    t = f.tracking
    if t is None or not len(t) or t["bytes"].dropna().empty:
        return
    sizes = t.drop_duplicates("message_id")["bytes"].dropna()
    f.median_bytes = float(sizes.median())
    spec = kb["large_message"]
    floor = max(spec["min_bytes"], spec["median_factor"] * f.median_bytes)
    window = pd.Timedelta(minutes=spec["window_minutes"])
    for ep in f.episodes:
        start = pd.Timestamp(ep.start["ts"])
        near = t[(t["bytes"] >= floor) & (t["ts"] >= start - window) & (t["ts"] <= start)]
        for rec in near.sort_values("ts").drop_duplicates("message_id").to_dict("records"):
            f.large.append({**rec, "_episode": ep})


def changed_thresholds(settings: Any) -> list[Any]:
    """Settings the config sets explicitly to a value other than the default."""
    if settings is None:
        return []
    return [s for s in settings.settings.values()
            if s.explicit and "Threshold" in s.name and s.value != s.default]


def gather(host: Host, kb: dict[str, Any]) -> Facts:
    f = Facts(host=host.name or "this server", kb=kb, settings=host.transport_settings)
    app = host.events(channel="Application")
    f.app_log = bool(len(app))
    if f.app_log:
        f.app_span = (app["ts"].min(), app["ts"].max())
        ordered = app.sort_values("ts")
        f.app_bounds = records(ordered.iloc[[0, -1]]) if len(ordered) > 1 else records(ordered)
    ev = kb["events"]
    ids = list(ev["pressure"]) + [ev["disk"], ev["memory"]]
    pressure = host.events(provider=kb["provider"], event_id=ids)
    f.events = sorted(records(pressure), key=lambda r: (pd.Timestamp(r["ts"]) if r["ts"] is not None
                                                       else pd.Timestamp.min.tz_localize("UTC")))
    f.episodes = _episodes(kb, f.events)
    f.volumes = records(host.kind("volume_space"))
    f.processes = records(host.kind("process"))
    av = {k.lower(): v for k, v in kb["antivirus"].items()}
    for p in f.processes:
        image = str(p["_data"].get("image") or "").lower()
        if image in av:
            f.antivirus.append({**p, "_product": av[image]})
        if image == "edgetransport.exe":
            f.edgetransport = p
    f.tracking = tracking_events(host.kind("tracking_entry"))
    _large_messages(f, kb)
    return f
