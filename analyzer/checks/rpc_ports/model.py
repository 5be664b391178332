"""The vocabulary of KB 926210 / KB 270836: interfaces, static ports, the
process holding a port, one server's evidence, and the Security-log symptom."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ... import knowledge
from ...findings import Evidence
from ...table import map_values, search_any

TCP = "ncacn_ip_tcp"

# --------------------------------------------------------------------------
# knowledge

#: The check's knowledge YAML (RpcPortConflict.knowledge).
KNOWLEDGE = "rpc_ports"


def kb() -> dict[str, Any]:
    """knowledge/rpc_ports.yaml (parsed once: knowledge.load caches)."""
    return knowledge.load(KNOWLEDGE)


def iface(uuid: str) -> dict[str, Any]:
    """Name and group of an interface from rpc_interfaces.yaml (the parser
    engineer's catalogue; we do not duplicate it)."""
    return knowledge.load("rpc_interfaces")["interfaces"].get(uuid, {}) or {}


def iface_name(uuid: str) -> str:
    return iface(uuid).get("name") or uuid


def iface_group(uuid: str) -> str:
    return iface(uuid).get("group") or "Other"


def uuid_of(text: Any) -> str:
    return str(text or "").strip("{} ").lower()


# --------------------------------------------------------------------------
# small value helpers

def port_of(value: Any) -> int | None:
    """A port from a registry value's text (DWORD decimal, REG_SZ decimal or
    ``0x``-hex as hand-edited .reg files have it); 0 means "no static port"."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        n = int(text, 16) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None
    return n if 0 < n < 65536 else None


def to_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def ev(row: dict[str, Any], excerpt: str | None = None) -> Evidence:
    return Evidence.from_row({k: v for k, v in row.items() if not k.startswith("_")}, excerpt)


def ev_reg(v: Any, excerpt: str | None = None) -> Evidence:
    return Evidence.from_row(v.row, excerpt)


# --------------------------------------------------------------------------
# the facts of one server

@dataclass
class StaticPort:
    """One static-port registry value that is set (port > 0)."""

    service: str
    display: str
    value_name: str
    key: str
    port: int
    protocol: str
    interfaces: list[str]
    images: list[str]
    reg: Any  # analyzer.registry.RegValue
    exchange: bool = True

    @property
    def label(self) -> str:
        return f"{self.service} \"{self.value_name}\" = {self.port}"


@dataclass
class Holder:
    """A socket on a static port, with the process that owns it."""

    row: dict[str, Any]
    pid: int | None
    image: str | None
    services: list[str]
    proc_row: dict[str, Any] | None
    listening: bool

    def short(self) -> str:
        """``inetinfo.exe (PID 1312)`` for the summary; the cause has the rest."""
        if self.image:
            return f"{self.image} (PID {self.pid})" if self.pid is not None else self.image
        return f"PID {self.pid}" if self.pid is not None else "an unknown process"

    def describe(self) -> str:
        who = f"PID {self.pid}" if self.pid is not None else "an unknown process (netstat without -o)"
        if self.image:
            who += f" ({self.image}"
            who += f"; services: {', '.join(self.services)})" if self.services else ")"
        elif self.pid is not None:
            who += " (image unknown: no tasklist /svc for this PID)"
        return who


@dataclass
class Server:
    key: str | None
    display: str | None
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    sockets: list[dict[str, Any]] = field(default_factory=list)
    processes: list[dict[str, Any]] = field(default_factory=list)
    symptoms: list[dict[str, Any]] = field(default_factory=list)
    #: Service Control Manager stop/start-failure events (System log).
    service_events: list[dict[str, Any]] = field(default_factory=list)
    #: Which logs of this server the case holds (decides what to collect).
    has_system_log: bool = False
    has_app_log: bool = False
    registry_df: pd.DataFrame | None = None


@dataclass
class RegFacts:
    """What the registry of one server says about static ports.

    ``reg_known`` is True when the Exchange service keys were read (a value's
    absence then means "no static port", not "not collected");
    ``system_paths`` are the files that hold SYSTEM data for the server at
    all, so a hive *without* Exchange service keys is told apart from no hive.
    """

    statics: list[StaticPort] = field(default_factory=list)
    others: list[StaticPort] = field(default_factory=list)
    reg_known: bool = False
    system_paths: list[str] = field(default_factory=list)
    control_set: int | None = None


@dataclass
class Judged:
    """Everything established about one server while the check walks the
    KB's steps; the cause builders read it and add to ``collect``,
    ``explained`` (missing interfaces a confirmed/likely cause accounts for)
    and ``conflicts``."""

    srv: Server
    server_name: str
    profile: dict[str, Any] = field(default_factory=dict)
    #: First ncacn_ip_tcp row per interface UUID, and every port it was seen on.
    present_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    present_ports: dict[str, set[int]] = field(default_factory=dict)
    has_dump: bool = False
    missing: list[str] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)
    reg: RegFacts = field(default_factory=RegFacts)
    procs: dict[int, dict[str, Any]] = field(default_factory=dict)
    has_netstat: bool = False
    has_tasklist: bool = False
    client_range: tuple[int, int] = (1025, 5000)
    conflicts: list[tuple[StaticPort, list[Holder], list[str]]] = field(default_factory=list)
    explained: set[str] = field(default_factory=set)
    collect: list[str] = field(default_factory=list)
    own_ok: list[tuple[StaticPort, list[Holder], bool]] = field(default_factory=list)
    shared: list[tuple[StaticPort, list[Holder]]] = field(default_factory=list)
    tcp_rows: list[dict[str, Any]] = field(default_factory=list)
    max_user_port: int | None = None
    view: Any = None  # the server's RegistryView, when it has registry rows

    def fmt(self, kind: str, **extra: str) -> str:
        """A collect entry from the knowledge file, naming this server."""
        return kb()["collect"][kind].format(server=self.server_name, **extra)

    def holders_on(self, port: int) -> list[Holder]:
        """TCP sockets whose *local* port is ``port`` (a listener, or an
        outgoing connection that took it as its source port), each with the
        process tasklist /svc names for its PID."""
        out = []
        for s in self.srv.sockets:
            d = s["_data"]
            if to_int(d.get("local_port")) != port:
                continue
            if not str(d.get("protocol") or "TCP").upper().startswith("TCP"):
                continue
            pid = to_int(d.get("pid"))
            prow = self.procs.get(pid) if pid is not None else None
            pdata = prow["_data"] if prow else {}
            image = pdata.get("image") or d.get("image")
            out.append(Holder(s, pid, image, list(pdata.get("services") or []), prow,
                              s.get("kind") == "listener"))
        return out


def names_service(ev: dict[str, Any], service: str, display: str) -> bool:
    """True when a Service Control Manager event is about ``service``: its
    first insertion string (param1 in .evtx) is the display name (or, for
    some events, the service name); exports without data carry it in the
    message only."""
    data = ev["_data"]
    first: list[str] = []
    strings = data.get("strings")
    if isinstance(strings, list) and strings:
        first.append(str(strings[0]))
    for k in ("param1", "ServiceName", "name"):
        if data.get(k):
            first.append(str(data[k]))
    want = {service.lower(), display.lower()}
    if any(f.strip().lower() in want for f in first):
        return True
    if not first:
        return display.lower() in str(ev.get("message") or "").lower()
    return False


def describe_events(events: list[dict[str, Any]]) -> str:
    """``Service Control Manager 7031 (2007-03-12 12:00 UTC)``, the latest
    ones first, at most three."""
    out = []
    for e in sorted(events, key=lambda e: str(e.get("ts") or ""), reverse=True)[:3]:
        ts = e.get("ts")
        when = f" ({pd.Timestamp(ts).strftime('%Y-%m-%d %H:%M')} UTC)" if ts is not None else ""
        out.append(f"{e.get('provider')} {e.get('event_id')}{when}")
    more = len(events) - len(out)
    return ", ".join(out) + (f" and {more} more" if more > 0 else "")


def owned_by(h: Holder, images: list[str], service: str) -> bool:
    """True when the socket belongs to the service itself: its process hosts
    the service (tasklist /svc) or runs the service's image. tasklist cuts
    image names at 25 characters, so a truncated name matches by prefix."""
    if any(s.lower() == service.lower() for s in h.services):
        return True
    if h.image:
        img = h.image.lower()
        for want in images:
            if img == want or (len(img) >= 20 and want.startswith(img)):
                return True
    return False


# --------------------------------------------------------------------------
# symptoms (Security log)

def candidates(ev: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """Every value an exporter may have put a field in: the named EventData
    item (Vista+), the positional insertion string (classic .evt), or the
    rendered message text (KB-style text exports carry only that)."""
    data = ev["_data"]
    out: list[str] = []
    names = [n.lower() for n in (spec.get("names") or [spec.get("name")]) if n]
    for k, v in data.items():
        if k.lower() in names and v not in (None, ""):
            out.append(str(v).strip())
    strings = data.get("strings")
    idx = spec.get("index")
    if isinstance(strings, list) and idx is not None and idx < len(strings):
        out.append(str(strings[idx]).strip())
    msg = ev.get("message") or ""
    if spec.get("text") and msg:
        for line in str(msg).splitlines():
            m = re.search(spec["text"], line, re.I)
            if m:
                out.append(m.group(1).strip())
    return out


def may_be_symptom(df: pd.DataFrame, within: np.ndarray) -> np.ndarray:
    """A necessary condition of :func:`is_symptom` for the rows ``within``,
    all at once: a failed-logon event that can be the symptom carries the
    failure status (or NtLmSsp, for 529) in its data or message text. A busy
    Security log holds hundreds of thousands of 4625s, nearly all of them
    bad passwords (0xC000006A); only these few rows are worth turning into
    records. The message of an .evtx row is rendered from its data, so only
    other rows' messages are searched."""
    k = kb()
    out = np.zeros(len(df), dtype=bool)
    if not len(df) or not within.any():
        return out
    eids = df["event_id"].to_numpy(dtype="float64", na_value=np.nan)
    rendered = map_values(df["source"], lambda s: s == "evtx", bool)
    status = _needles(k["symptom_status"])
    for spec in k["symptom_events"]:
        ok = within & (eids == spec["event_id"])
        need = ([status] if "status" in spec else []) + \
            ([[spec["logon_process"]["want"]]] if "logon_process" in spec else [])
        for needles in need:
            if not ok.any():
                break
            hit = search_any(df, needles, ok, ("data",))
            hit |= search_any(df, needles, ok & ~rendered & ~hit, ("message",))
            ok &= hit
        out |= ok
    return out


def _needles(values: list[str]) -> list[str]:
    """The substrings to look for: a value holding another one is found
    through it (``0xc0000064`` through ``c0000064``)."""
    low = sorted({v.lower() for v in values}, key=len)
    return [v for i, v in enumerate(low) if not any(w in v for w in low[:i])]


def is_symptom(ev: dict[str, Any]) -> bool:
    """529 / 681 / 680 / 4625 / 4776 as KB 926210 describes them: a network
    (type 3) NTLM logon failing, or credential validation failing with
    0xC0000064 (printed 3221225572 by 681). A 529 of another logon type (a
    console typo) is not the symptom."""
    k = kb()
    wanted = {s.lower() for s in k["symptom_status"]}
    eid = ev.get("event_id")
    for spec in k["symptom_events"]:
        if spec["event_id"] != eid:
            continue
        if "logon_type" in spec:
            want = spec["logon_type"]["want"]
            if not any(v == want for v in candidates(ev, spec["logon_type"])):
                return False
        if "logon_process" in spec:
            want = spec["logon_process"]["want"]
            if not any(v.lower().startswith(want) for v in candidates(ev, spec["logon_process"])):
                return False
        if "status" in spec:
            vals = [v.rstrip(".").lower() for v in candidates(ev, spec["status"])]
            if not any(v in wanted for v in vals):
                return False
        return True
    return False
