"""Check ``rpc-port-conflict``: Exchange RPC endpoints missing because their
static TCP ports are taken (KB 926210, with the registry values of KB 270836).

The article's story, which this check follows step by step:

* Symptom: MAPI clients (Outlook) are asked for credentials and fail, while
  OWA works with the same account. The Security log shows 529 (Logon Type 3,
  NtLmSsp, "Unknown user name or bad password") and 681 with error code
  3221225572 (0xC0000064) — 4625 / 4776 on Vista and later.
* Cause: one or more Exchange services are configured with a *static* TCP
  port, and another process bound that port first. The Exchange service does
  not try another port, so its interfaces never reach the endpoint mapper.
* Step 1: ``rpcdump /S server`` — the ncacn_ip_tcp section must list the
  Information Store, MTA, directory (NSPI proxy, RFR) and System Attendant
  interfaces. The KB shows a complete listing and one where the Information
  Store and System Attendant entries are missing.
* Step 2: look for static port mappings in the registry (KB 270836); remove
  the ones not needed, or move them to free ports found with ``netstat -an``,
  then restart the Exchange services.

Evidence is matched by interface UUID (never by annotation: the KB itself
prints "MS ExchangeDirectory NSPI Proxy"), static ports are read through
``CurrentControlSet`` (resolved from ``Select\\Current`` in an offline SYSTEM
hive, or as written in a .reg export), and the holder of a port comes from
``netstat -ano`` joined to ``tasklist /svc`` on the PID.

Severity: ``critical`` when every Information Store interface is missing
(no MAPI client can open a mailbox — the KB's outage), ``error`` for any
other missing group or a conflict without a dump to show its effect,
``warning`` for a latent conflict on a server whose dump is still complete,
and for an inconclusive finding that has the Security-log symptoms;
``info`` otherwise.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import knowledge
from ..findings import VERDICT_RANK, Cause, Evidence, Finding
from ..hosts import host_key, is_ip
from ..query import provider_aliases
from . import register
from .toolkit import KeySpec, ToolkitCheck, World, dedupe as _dedupe, records as _records
from .toolkit import unique as _unique

CHECK_ID = "rpc-port-conflict"
TCP = "ncacn_ip_tcp"
MAX_EVIDENCE = 12


# --------------------------------------------------------------------------
# knowledge

def _kb() -> dict[str, Any]:
    return knowledge.load(RpcPortConflict.knowledge)  # parsed once (knowledge.load caches)


def _iface(uuid: str) -> dict[str, Any]:
    """Name and group of an interface from rpc_interfaces.yaml (the parser
    engineer's catalogue; we do not duplicate it)."""
    return knowledge.load("rpc_interfaces")["interfaces"].get(uuid, {}) or {}


def _iface_name(uuid: str) -> str:
    return _iface(uuid).get("name") or uuid


def _iface_group(uuid: str) -> str:
    return _iface(uuid).get("group") or "Other"


def _uuid(text: Any) -> str:
    return str(text or "").strip("{} ").lower()


# --------------------------------------------------------------------------
# host attribution

# --------------------------------------------------------------------------
# small value helpers

def _port(value: Any) -> int | None:
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


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None




def _ev(row: dict[str, Any], excerpt: str | None = None) -> Evidence:
    return Evidence.from_row({k: v for k, v in row.items() if not k.startswith("_")}, excerpt)


def _ev_reg(v: Any, excerpt: str | None = None) -> Evidence:
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

    def fmt(self, kind: str, **extra: str) -> str:
        """A collect entry from the knowledge file, naming this server."""
        return _kb()["collect"][kind].format(server=self.server_name, **extra)

    def holders_on(self, port: int) -> list[Holder]:
        """TCP sockets whose *local* port is ``port`` (a listener, or an
        outgoing connection that took it as its source port), each with the
        process tasklist /svc names for its PID."""
        out = []
        for s in self.srv.sockets:
            d = s["_data"]
            if _int(d.get("local_port")) != port:
                continue
            if not str(d.get("protocol") or "TCP").upper().startswith("TCP"):
                continue
            pid = _int(d.get("pid"))
            prow = self.procs.get(pid) if pid is not None else None
            pdata = prow["_data"] if prow else {}
            image = pdata.get("image") or d.get("image")
            out.append(Holder(s, pid, image, list(pdata.get("services") or []), prow,
                              s.get("kind") == "listener"))
        return out


def _names_service(ev: dict[str, Any], service: str, display: str) -> bool:
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


def _describe_events(events: list[dict[str, Any]]) -> str:
    """``Service Control Manager 7031 (2007-03-12 12:00 UTC)``, the latest
    ones first, at most three."""
    out = []
    for e in sorted(events, key=lambda e: str(e.get("ts") or ""), reverse=True)[:3]:
        ts = e.get("ts")
        when = f" ({pd.Timestamp(ts).strftime('%Y-%m-%d %H:%M')} UTC)" if ts is not None else ""
        out.append(f"{e.get('provider')} {e.get('event_id')}{when}")
    more = len(events) - len(out)
    return ", ".join(out) + (f" and {more} more" if more > 0 else "")


def _owned_by(h: Holder, images: list[str], service: str) -> bool:
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

def _candidates(ev: dict[str, Any], spec: dict[str, Any]) -> list[str]:
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


def is_symptom(ev: dict[str, Any]) -> bool:
    """529 / 681 / 680 / 4625 / 4776 as KB 926210 describes them: a network
    (type 3) NTLM logon failing, or credential validation failing with
    0xC0000064 (printed 3221225572 by 681). A 529 of another logon type (a
    console typo) is not the symptom."""
    kb = _kb()
    wanted = {s.lower() for s in kb["symptom_status"]}
    eid = ev.get("event_id")
    for spec in kb["symptom_events"]:
        if spec["event_id"] != eid:
            continue
        if "logon_type" in spec:
            want = spec["logon_type"]["want"]
            if not any(v == want for v in _candidates(ev, spec["logon_type"])):
                return False
        if "logon_process" in spec:
            want = spec["logon_process"]["want"]
            if not any(v.lower().startswith(want) for v in _candidates(ev, spec["logon_process"])):
                return False
        if "status" in spec:
            vals = [v.rstrip(".").lower() for v in _candidates(ev, spec["status"])]
            if not any(v in wanted for v in vals):
                return False
        return True
    return False


# --------------------------------------------------------------------------
# the check

@register
class RpcPortConflict(ToolkitCheck):
    id = CHECK_ID
    title = "Exchange RPC endpoints missing because static ports are taken (KB 926210)"
    description = (
        "Compares the endpoint-mapper dump (rpcdump, impacket rpcdump.py, PortQry -e 135) with the "
        "Exchange interfaces KB 926210 lists, reads the static RPC ports of KB 270836 from the "
        "SYSTEM hive or a .reg export, and names the process holding a static port (netstat -ano + "
        "tasklist /svc). Security 529/681 (4625/4776) with 0xC0000064 are the client-side symptom.")
    needs = ("endpoint", "registry_value", "registry_key", "listener", "connection", "process",
             "event")
    references = ("KB 926210", "KB 270836")
    knowledge = "rpc_ports"
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

    # ---- entry point -------------------------------------------------------
    def run(self, case: Any) -> list[Finding]:
        df: pd.DataFrame = case.table
        kinds = df["kind"].astype("string")
        ep_df = df[(kinds == "endpoint").fillna(False).to_numpy()]
        sock_df = df[kinds.isin(["listener", "connection"]).fillna(False).to_numpy()]
        proc_df = df[(kinds == "process").fillna(False).to_numpy()]
        reg_mask = kinds.isin(["registry_key", "registry_value"]).fillna(False).to_numpy()
        reg_df = df[reg_mask]
        ids = [s["event_id"] for s in _kb()["symptom_events"]]
        ev_mask = ((kinds == "event").fillna(False) & df["event_id"].isin(ids).fillna(False)).to_numpy()
        ev_df = df[ev_mask]
        symptoms = [e for e in _records(ev_df) if self._security(e) and is_symptom(e)]
        endpoints = _records(ep_df)
        sockets = _records(sock_df)
        processes = _records(proc_df)

        servers = self._servers(endpoints, sockets, processes, reg_df, symptoms)
        if not servers:
            return self.within_world(case, [self._not_applicable()])
        self._attach_logs(df, kinds, servers)
        return self.within_world(case, [self._judge(s) for s in servers])

    @staticmethod
    def _attach_logs(df: pd.DataFrame, kinds: pd.Series, servers: list[Server]) -> None:
        """Give each server its Service Control Manager events and note which
        of its logs the case holds: endpoints-missing cites the SCM event that
        says the service stopped, and asks only for the logs that are absent."""
        spec = _kb()["service_events"]
        is_event = (kinds == "event").fillna(False).to_numpy()
        events = df[is_event]
        if events.empty:
            return
        hosts = [host_key(h) for h in events["host"].astype("object").tolist()]
        channels = [str(c or "").lower() if c is not pd.NA else ""
                    for c in events["channel"].astype("object").tolist()]
        scm = (events["provider"].astype("string").str.lower().isin(
            provider_aliases(spec["provider"])).fillna(False)
            & events["event_id"].isin(spec["event_ids"]).fillna(False)).to_numpy()
        scm_rows = _records(events[scm])
        scm_hosts = [host_key(r.get("host")) for r in scm_rows]
        single = len(servers) == 1
        for srv in servers:
            mine = [single or h == srv.key or h is None for h in hosts]
            srv.has_system_log = any(m and c == "system" for m, c in zip(mine, channels))
            srv.has_app_log = any(m and c == "application" for m, c in zip(mine, channels))
            srv.service_events = [r for r, h in zip(scm_rows, scm_hosts)
                                  if single or h == srv.key or h is None]
            # A .evt whose log name could not be read still is the System log
            # when Service Control Manager wrote in it.
            srv.has_system_log = srv.has_system_log or bool(srv.service_events)

    @staticmethod
    def _security(ev: dict[str, Any]) -> bool:
        """The provider decides what 529/681/4625/4776 mean: only the Security
        audit provider's events are the symptom (another source may reuse the
        number). A row without a provider (a bare text export) is taken from
        its channel."""
        prov = (ev.get("provider") or "").strip().lower()
        if prov:
            return prov in provider_aliases(_kb()["symptom_provider"])
        return (ev.get("channel") or "").strip().lower() == "security"

    # ---- which servers -------------------------------------------------------
    def _exchange_reg_hosts(self, reg_df: pd.DataFrame) -> tuple[set[str | None], bool]:
        """Hosts whose registry shows an Exchange service or setup key."""
        if reg_df.empty:
            return set(), False
        from ..registry import RegistryView
        hosts: set[str | None] = set()
        found = False
        for h, sub in self._by_host(reg_df).items():
            view = RegistryView(sub)
            if any(view.key_exists(k) for k in _kb()["exchange_keys"]):
                hosts.add(h)
                found = True
        return hosts, found

    @staticmethod
    def _by_host(df: pd.DataFrame) -> dict[str | None, pd.DataFrame]:
        keys = [host_key(h) for h in df["host"].astype("object").tolist()]
        out: dict[str | None, list[int]] = defaultdict(list)
        for i, k in enumerate(keys):
            out[k].append(i)
        return {k: df.iloc[v] for k, v in out.items()}

    def _servers(self, endpoints: list[dict], sockets: list[dict], processes: list[dict],
                 reg_df: pd.DataFrame, symptoms: list[dict]) -> list[Server]:
        kb = _kb()
        expected_all = {u for p in kb["profiles"] for u in p["expected"]}
        weak = set(kb["not_exchange_evidence"])
        images = {i for s in kb["services"].values() for i in s["images"]}
        svc_names = {s.lower() for s in kb["services"]}

        ex_hosts: set[str | None] = set()
        names: dict[str | None, str] = {}
        for e in endpoints:
            u = _uuid(e["_data"].get("uuid"))
            if u in expected_all and u not in weak:
                k = host_key(e.get("host"))
                ex_hosts.add(k)
                names.setdefault(k, e.get("host"))
        reg_hosts, _ = self._exchange_reg_hosts(reg_df)
        ex_hosts |= reg_hosts
        for p in processes:
            d = p["_data"]
            img = str(d.get("image") or "").lower()
            if img in images or any(str(s).lower() in svc_names for s in d.get("services") or []):
                ex_hosts.add(host_key(p.get("host")))
        # A dump taken from a client names the server; events name it as Computer.
        for rows in (endpoints, symptoms):
            for r in rows:
                k = host_key(r.get("host"))
                if k is not None:
                    names.setdefault(k, r.get("host"))

        named = {h for h in ex_hosts if h is not None and not is_ip(h)}
        if not ex_hosts:
            if not symptoms:
                return []
            # Symptoms alone: the 529 is logged on the server the client tried
            # (its Computer); a DC's 681/4776 does not name the Exchange server.
            hs = {host_key(e.get("host")) for e in symptoms if e.get("event_id") in (529, 4625)}
            hs.discard(None)
            key = next(iter(hs)) if len(hs) == 1 else None
            srv = Server(key, names.get(key) if key else None, symptoms=list(symptoms))
            return [srv]

        # Merge IP-named and unattributed evidence into the only named server.
        if len(named) == 1:
            target = next(iter(named))
            groups = {target: {target} | {h for h in ex_hosts if h is None or is_ip(h)} | {None}}
        elif not named:
            # No name on any Exchange evidence: use the 529's Computer if unique.
            hs = {host_key(e.get("host")) for e in symptoms if e.get("event_id") in (529, 4625)}
            hs.discard(None)
            target = next(iter(hs)) if len(hs) == 1 else None
            groups = {target: set(ex_hosts) | {None, target}}
        else:
            groups = {h: {h} for h in sorted(named)}

        out: list[Server] = []
        single = len(groups) == 1
        reg_parts = self._by_host(reg_df) if not reg_df.empty else {}
        for key, members in groups.items():
            srv = Server(key, names.get(key) or key)
            srv.endpoints = [e for e in endpoints if host_key(e.get("host")) in members]
            srv.sockets = [s for s in sockets if host_key(s.get("host")) in members]
            srv.processes = [p for p in processes if host_key(p.get("host")) in members]
            # Client-side symptoms (a DC's 681) belong to the only server there is.
            srv.symptoms = [e for e in symptoms if single or host_key(e.get("host")) in members]
            parts = [v for h, v in reg_parts.items() if h in members]
            srv.registry_df = pd.concat(parts) if parts else None
            out.append(srv)
        return out

    # ---- judging one server ----------------------------------------------
    def _judge(self, srv: Server) -> Finding:
        """KB 926210 for one server: step 1 (the ncacn_ip_tcp section of the
        endpoint map against the KB's list), step 2 (the static ports of KB
        270836 in the current control set), then who holds each port
        (netstat -ano + tasklist /svc), and every cause weighed against it."""
        kb = _kb()
        from ..registry import RegistryView
        view = RegistryView(srv.registry_df) if srv.registry_df is not None else None
        host = srv.display if srv.display else None
        j = Judged(srv=srv, server_name=host or "<server>")

        # Step 1: the endpoint map.
        tcp = [e for e in srv.endpoints if (e["_data"].get("protocol") or "").lower() == TCP]
        for e in tcp:
            u = _uuid(e["_data"].get("uuid"))
            j.present_rows.setdefault(u, e)
            port = _int(e["_data"].get("port"))
            if port is not None:
                j.present_ports.setdefault(u, set()).add(port)
        j.profile = self._profile(set(j.present_rows), view)
        expected = list(j.profile["expected"])
        j.has_dump = bool(tcp)
        j.missing = [u for u in expected if u not in j.present_rows] if j.has_dump else []
        groups: dict[str, str] = {}
        for g in dict.fromkeys(_iface_group(u) for u in expected):
            members = [u for u in expected if _iface_group(u) == g]
            have = [u for u in members if u in j.present_rows]
            groups[g] = ("present" if len(have) == len(members) else "partial" if have else "missing") \
                if j.has_dump else "unknown"
        j.groups = groups
        groups_present = [g for g, st in groups.items() if st == "present"]
        groups_missing = [g for g, st in groups.items() if st == "missing"]
        groups_partial = [g for g, st in groups.items() if st == "partial"]

        # Step 2: static ports (KB 270836) through CurrentControlSet.
        j.reg = self._statics(view)

        # netstat -ano + tasklist /svc.
        for p in srv.processes:
            pid = _int(p["_data"].get("pid"))
            if pid is not None:
                j.procs.setdefault(pid, p)
        j.has_netstat = bool(srv.sockets)
        j.has_tasklist = bool(srv.processes)
        lo, hi = kb["ephemeral_range"]
        facts: dict[str, Any] = {}
        mup = kb.get("max_user_port")
        if view is not None and mup:
            v = view.get(mup["key"], mup["value"])
            top = _port(v.value) if v is not None else None
            if top and top > lo:
                hi = top
                facts["max_user_port"] = top
        j.client_range = (lo, hi)

        # ---- causes ----------------------------------------------------------
        causes = [self._cause_in_use(j), self._cause_duplicate(j), self._cause_missing(j)]

        facts.update({"profile": j.profile["id"], "dump": j.has_dump,
                      "registry": j.reg.reg_known, "netstat": j.has_netstat,
                      "tasklist": j.has_tasklist, "groups": groups,
                      "groups_present": groups_present, "groups_missing": groups_missing,
                      "groups_partial": groups_partial})
        facts["interfaces_missing"] = [{"uuid": u, "name": _iface_name(u), "group": _iface_group(u)}
                                       for u in j.missing]
        facts["static_ports"] = [{"service": s.service, "value": s.value_name, "port": s.port,
                                  "key": s.key, "protocol": s.protocol,
                                  "source": s.reg.path, "locator": s.reg.locator}
                                 for s in j.reg.statics + j.reg.others]
        if j.reg.control_set is not None:
            facts["current_control_set"] = j.reg.control_set
        facts["conflicts"] = [{"port": sp.port, "static_value": sp.label, "pid": h.pid,
                               "image": h.image, "services": h.services,
                               "state": h.row["_data"].get("state"),
                               "missing_interfaces": [_iface_name(u) for u in lost]}
                              for sp, hs, lost in j.conflicts for h in hs]

        # ---- evidence of the finding ------------------------------------------
        evidence: list[Evidence] = []
        if j.has_dump:
            excerpt = (f"Exchange interface groups ({j.profile['title']}) present: "
                       f"{', '.join(groups_present) or 'none'}; missing: "
                       f"{', '.join(groups_missing) or 'none'}"
                       + (f"; incomplete: {', '.join(groups_partial)}" if groups_partial else ""))
            if j.missing:
                excerpt += "; no ncacn_ip_tcp line for " + ", ".join(
                    sorted({_iface_name(u) for u in j.missing}))
            evidence.append(Evidence(path=str(tcp[0].get("path")), locator=f"protseq={TCP}",
                                     ts=None, excerpt=excerpt))
            for u in expected:
                if u in j.present_rows:
                    evidence.append(_ev(j.present_rows[u]))
        for sp in j.reg.statics + j.reg.others:
            evidence.append(_ev_reg(sp.reg))
        for sp, hs, _ in j.conflicts:
            for h in hs:
                evidence.append(_ev(h.row))
                if h.proc_row:
                    evidence.append(_ev(h.proc_row))
        for e in srv.symptoms[:5]:
            evidence.append(_ev(e))
        evidence = _dedupe(evidence)

        # ---- status ----------------------------------------------------------
        live = [c for c in causes if c.verdict in ("confirmed", "likely")]
        collect = j.collect
        if j.has_dump and j.missing:
            status = "problem"
        elif live:
            status = "problem"
        elif j.has_dump:
            status = "ok"
        else:
            status = "inconclusive"
        if status == "problem":
            if set(kb["critical_groups"]) & set(groups_missing):
                severity = "critical"
            elif j.has_dump and not j.missing:
                severity = "warning"  # latent: a conflict that has not bitten yet
            else:
                severity = "error"
        elif status == "inconclusive":
            severity = "warning" if srv.symptoms else "info"
        else:
            severity = "info"
        if not j.has_dump and status != "ok":
            collect.insert(0, j.fmt("dump"))
        if status == "inconclusive":
            # KB 926210's whole evidence chain: dump, static ports, holders.
            if not j.reg.reg_known:
                collect.append(j.fmt("services_export" if j.reg.system_paths else "hive"))
            if not j.has_netstat:
                collect.append(j.fmt("netstat"))
            if not j.has_tasklist:
                collect.append(j.fmt("tasklist"))

        facts["symptom_events"] = len(srv.symptoms)
        remediation: list[str] = []
        if status == "problem":
            remediation = self._remediation(j, causes, groups_missing + groups_partial)
        summary = self._summary(j, status, groups_present, groups_missing, groups_partial, causes)
        return Finding(check=CHECK_ID, title=self.title, status=status, severity=severity,
                       summary=summary, host=host, causes=causes,
                       evidence=evidence[:MAX_EVIDENCE * 3], remediation=remediation,
                       references=list(kb["references"]), collect=_unique(collect), facts=facts)

    @staticmethod
    def _remediation(j: Judged, causes: list[Cause], broken_groups: list[str]) -> list[str]:
        """The fix of the most probable cause(s) — never the static-port advice
        for a stopped service — then the KB's check that it worked."""
        ranked = [c for c in causes if c.verdict != "ruled_out"]
        ranked.sort(key=lambda c: VERDICT_RANK[c.verdict])
        out: list[str] = []
        if ranked:
            best = VERDICT_RANK[ranked[0].verdict]
            for c in ranked:
                if VERDICT_RANK[c.verdict] == best:
                    out.extend(c.remediation)
        what = (f"the {_and(broken_groups)} interfaces are back" if broken_groups
                else "every Exchange interface is still registered after the restart")
        out.append(_kb()["remediation_templates"]["verify"].format(server=j.server_name, what=what))
        return _unique(out)

    # ---- profile and registry --------------------------------------------
    @staticmethod
    def _profile(present: set[str], view: Any) -> dict[str, Any]:
        """The Exchange generation whose interface list the dump is judged
        against: Exchange 2010 registers RPC Client Access and the Address
        Book service instead of the 2000/2003 MTA and System Attendant."""
        profiles = _kb()["profiles"]
        for p in profiles:
            det = p.get("detect") or {}
            if not det:
                return p
            if any(u in present for u in det.get("uuids", [])):
                return p
            if view is not None and any(
                    view.key_exists(f"HKLM\\SYSTEM\\CurrentControlSet\\Services\\{s}")
                    for s in det.get("service_keys", [])):
                return p
        return profiles[-1]

    @staticmethod
    def _statics(view: Any) -> RegFacts:
        """Static-port values that are set, Exchange's and other services',
        read through CurrentControlSet (Select\\Current of an offline hive)."""
        kb = _kb()
        out = RegFacts()
        if view is None or len(view) == 0:
            return out
        out.control_set = view.control_set()
        frame = view.frame()
        keys = frame["key"].astype("string").fillna("").str.lower()
        out.system_paths = sorted({str(p) for p, k in zip(frame["path"].astype("object"), keys)
                                   if k.startswith("hklm\\system\\")})
        for svc, info in kb["services"].items():
            if view.key_exists(f"HKLM\\SYSTEM\\CurrentControlSet\\Services\\{svc}"):
                out.reg_known = True
            for sp in info["static_ports"]:
                v = view.get(sp["key"], sp["value"])
                port = _port(v.value) if v is not None else None
                if v is None or port is None:
                    continue
                out.statics.append(StaticPort(svc, info["display"], v.name or sp["value"], sp["key"],
                                              port, sp["protocol"], list(sp["interfaces"]),
                                              [i.lower() for i in info["images"]], v))
        for o in kb["other_static_ports"]:
            v = view.get(o["key"], o["value"])
            port = _port(v.value) if v is not None else None
            if v is None or port is None:
                continue
            out.others.append(StaticPort(o["service"], o["display"], v.name or o["value"], o["key"],
                                         port, TCP, [], [i.lower() for i in o["images"]], v,
                                         exchange=False))
        return out

    @staticmethod
    def _unread_registry(j: Judged) -> str:
        """Why the KB 270836 values could not be read: no SYSTEM data at all,
        or SYSTEM data that lacks the Exchange service keys (a hive of another
        machine, an export of other keys) — the two ask for different files."""
        if j.reg.system_paths:
            cs = (f" (current control set ControlSet{j.reg.control_set:03d})"
                  if j.reg.control_set is not None else "")
            return (f"The SYSTEM registry data in the case ({', '.join(j.reg.system_paths)}){cs} "
                    "has no Exchange service keys (Services\\MSExchangeIS, MSExchangeSA), so "
                    "the static port values of KB 270836 cannot be read from it.")
        return ("The static port values of KB 270836 could not be read: no SYSTEM hive or "
                "export of the Exchange service keys is in the case.")

    # ---- causes ------------------------------------------------------------
    def _cause_in_use(self, j: Judged) -> Cause:
        """static-port-in-use: the KB's cause. A static port is held by a
        process that is not the service configured for it, and the interfaces
        the port carries are missing from the endpoint map."""
        cid, title = "static-port-in-use", "A static Exchange RPC port is held by another process"
        kb = _kb()
        tpl = kb["remediation_templates"]
        lo, hi = j.client_range
        statics, others = j.reg.statics, j.reg.others
        own_ok: list[tuple[StaticPort, list[Holder], bool]] = []
        shared: list[tuple[StaticPort, list[Holder]]] = []
        for sp in statics:
            hs = j.holders_on(sp.port)
            # The dump shows the service's own interfaces on this very port:
            # the service bound it, so an unidentified socket there is its own.
            by_dump = sp.protocol == TCP and any(
                sp.port in j.present_ports.get(u, ()) for u in sp.interfaces)
            foreign = [h for h in hs if not _owned_by(h, sp.images, sp.service)
                       and not (by_dump and not h.image and not h.services)]
            mine = [h for h in hs if h not in foreign]
            # A holder that is itself configured for this port is the other
            # half of a duplicate (static-port-duplicate), not a stranger.
            twins = [o for o in statics + others if o is not sp and o.port == sp.port]
            twin_held = [h for h in foreign if any(_owned_by(h, o.images, o.service) for o in twins)]
            foreign = [h for h in foreign if h not in twin_held]
            if twin_held:
                shared.append((sp, twin_held))
            lost = [u for u in sp.interfaces if u in j.missing] if sp.protocol == TCP else []
            if foreign:
                j.conflicts.append((sp, foreign, lost))
            elif mine:
                own_ok.append((sp, mine, by_dump))

        if j.conflicts:
            verdict = "possible"
            parts: list[str] = []
            ev: list[Evidence] = []
            fixes: list[str] = []
            for sp, hs, lost in j.conflicts:
                names = sorted({_iface_name(u) for u in lost})
                held = "; ".join(
                    f"{h.describe()} {'listens on' if h.listening else 'has a connection from local port'} "
                    f"{sp.port}" for h in hs)
                text = f"{sp.label} ({sp.display}) is configured, and {held}."
                if lost:
                    text += f" Missing from the endpoint map: {', '.join(names)}."
                    j.explained.update(lost)
                elif j.has_dump and sp.interfaces:
                    text += " Its interfaces are registered anyway (bound to another address?)."
                in_range = any(not h.listening for h in hs) and lo <= sp.port <= hi
                if in_range:
                    text += (f" Port {sp.port} lies in the client port range {lo}-{hi}: any outgoing "
                             "connection can take it before the service starts.")
                parts.append(text)
                identified = all(h.image for h in hs)
                if lost and identified:
                    v = "confirmed"
                elif lost or (not j.has_dump and identified):
                    v = "likely"
                elif not j.has_dump or not sp.interfaces:
                    v = "likely" if identified else "possible"
                else:
                    v = "possible"
                verdict = min(verdict, v, key=lambda x: VERDICT_RANK[x])
                ev.append(_ev_reg(sp.reg))
                for h in hs:
                    ev.append(_ev(h.row))
                    if h.proc_row:
                        ev.append(_ev(h.proc_row))
                fixes.append(tpl["in_use"].format(
                    server=j.server_name, value=sp.value_name, key=sp.key, port=sp.port,
                    holder=" and ".join(h.describe() for h in hs), display=sp.display,
                    service=sp.service,
                    range=tpl["in_use_range"].format(lo=lo, hi=hi) if lo <= sp.port <= hi else ""))
            if not j.has_tasklist:
                j.collect.append(j.fmt("tasklist"))
            return Cause(cid, title, verdict, " ".join(parts), _dedupe(ev), fixes)

        # No stranger on any static port.
        lost_statics = [sp for sp in statics if sp.protocol == TCP
                        and any(u in j.missing for u in sp.interfaces)]
        carried_missing = sorted({u for sp in lost_statics for u in sp.interfaces if u in j.missing})
        if lost_statics and not j.has_netstat:
            j.collect.extend([j.fmt("netstat"), j.fmt("tasklist")])
            j.explained.update(carried_missing)
            names = ", ".join(sorted({_iface_name(u) for u in carried_missing}))
            return Cause(cid, title, "likely",
                         "Static ports are configured (" + "; ".join(sp.label for sp in lost_statics)
                         + f") and the interfaces they carry are missing: {names}. KB 926210: "
                         "the service does not try another port when its static port is taken. "
                         "No netstat -ano was collected to name the process holding it.",
                         [_ev_reg(sp.reg) for sp in lost_statics],
                         [tpl["in_use_unknown"].format(
                             server=j.server_name,
                             labels="; ".join(f"port {sp.port} ({sp.label})" for sp in lost_statics))])
        free_lost = [sp for sp in lost_statics if not j.holders_on(sp.port)]
        if free_lost:
            names = ", ".join(sorted({_iface_name(u) for sp in free_lost for u in sp.interfaces
                                      if u in j.missing}))
            return Cause(cid, title, "possible",
                         "Static ports are configured (" + "; ".join(sp.label for sp in free_lost)
                         + f") and the interfaces they carry are missing ({names}), but no process "
                         "holds the port when netstat ran. A process that held it when the service "
                         "started may have exited since: KB 926210's service does not retry.",
                         [_ev_reg(sp.reg) for sp in free_lost],
                         [tpl["in_use_free_now"].format(
                             server=j.server_name,
                             labels="; ".join(sp.label for sp in free_lost),
                             services=", ".join(dict.fromkeys(sp.service for sp in free_lost)))])
        if statics and j.has_netstat:
            mine = "; ".join(
                f"{sp.label} is used by " + (
                    "the service itself (the endpoint map shows its interfaces on that port)"
                    if by_dump and not any(h.image for h in hs)
                    else ", ".join(h.describe() for h in hs))
                for sp, hs, by_dump in own_ok)
            twin = "; ".join(f"{sp.label} is held by {', '.join(h.describe() for h in hs)}, which is "
                             "configured for the same port (see static-port-duplicate)"
                             for sp, hs in shared)
            free = [sp.label for sp in statics
                    if not any(sp is o[0] for o in own_ok) and not any(sp is o[0] for o in shared)]
            text = "netstat shows no process outside the configured services on the static ports."
            if mine:
                text += f" {mine}."
            if twin:
                text += f" {twin}."
            if free:
                text += f" Not bound when netstat ran, with nothing of theirs missing: {'; '.join(free)}."
            return Cause(cid, title, "ruled_out", text,
                         [_ev_reg(sp.reg) for sp in statics]
                         + [_ev(h.row) for _, hs, _ in own_ok for h in hs])
        if statics and j.has_dump:
            return Cause(cid, title, "ruled_out",
                         "Static ports are configured (" + "; ".join(sp.label for sp in statics)
                         + ") and every interface they carry is registered in the endpoint map.",
                         [_ev_reg(sp.reg) for sp in statics])
        if statics:
            j.collect.extend([j.fmt("netstat"), j.fmt("tasklist")])
            return Cause(cid, title, "possible",
                         "Static ports are configured (" + "; ".join(sp.label for sp in statics)
                         + "), but neither an endpoint dump nor netstat shows whether they were bound.",
                         [_ev_reg(sp.reg) for sp in statics],
                         [tpl["in_use_unknown"].format(
                             server=j.server_name,
                             labels="; ".join(f"port {sp.port} ({sp.label})" for sp in statics))])
        if j.reg.reg_known:
            return Cause(cid, title, "ruled_out",
                         "No static RPC port (KB 270836 values) is set for the Exchange services in "
                         "the current control set: the endpoint mapper assigns dynamic ports.",
                         self._service_key_evidence(j))
        if j.missing or not j.has_dump:
            j.collect.append(j.fmt("services_export" if j.reg.system_paths else "hive"))
            return Cause(cid, title, "possible", self._unread_registry(j), [],
                         list(kb["remediation"]))
        return Cause(cid, title, "ruled_out",
                     "Every expected Exchange interface is registered in the endpoint map.")

    @staticmethod
    def _service_key_evidence(j: Judged) -> list[Evidence]:
        """The Exchange service keys that were read without a static-port
        value: the evidence that "no static port" is a fact, not a gap."""
        if j.srv.registry_df is None:
            return []
        from ..registry import RegistryView
        view = RegistryView(j.srv.registry_df)
        wanted: dict[str, list[str]] = {}
        for info in _kb()["services"].values():
            for sp in info["static_ports"]:
                if sp["protocol"] == TCP:
                    wanted.setdefault(sp["key"], []).append(sp["value"])
        out: list[Evidence] = []
        for key, names in wanted.items():
            row = view.key_row(key)
            if row is None:  # an export or a filtered load: cite a value of the key
                vals = view.values(key)
                row = vals[0].row if vals else None
            if row is not None:
                absent = " / ".join(f'"{n}"' for n in names)
                out.append(Evidence.from_row(row, f"{row['key']}: no {absent} value (no static port)"))
        return _dedupe(out)

    def _cause_duplicate(self, j: Judged) -> Cause:
        """static-port-duplicate: two services configured to one port. Only
        the one that starts first binds it; values served by one process
        (mad.exe's NSPI and RFR ports) are not a clash."""
        cid, title = ("static-port-duplicate",
                      "Two services are configured to the same static port")
        kb = _kb()
        tpl = kb["remediation_templates"]
        statics, others = j.reg.statics, j.reg.others
        by_port: dict[int, list[StaticPort]] = defaultdict(list)
        for sp in statics + others:
            by_port[sp.port].append(sp)
        clashes: list[list[StaticPort]] = []
        same_proc: list[list[StaticPort]] = []
        for port, sps in sorted(by_port.items()):
            if len(sps) < 2 or not any(s.exchange for s in sps):
                continue
            if len({s.service for s in sps}) > 1 and len({tuple(s.images) for s in sps}) > 1:
                clashes.append(sps)
            else:
                same_proc.append(sps)
        if clashes:
            verdict = "likely"
            parts = []
            ev: list[Evidence] = []
            fixes: list[str] = []
            for sps in clashes:
                lost = sorted({u for s in sps for u in s.interfaces if u in j.missing and s.protocol == TCP})
                parts.append(f"Port {sps[0].port} is configured for " + " and ".join(
                    f"{s.label} ({s.display}, {'/'.join(s.images)})" for s in sps)
                    + ": only the service that starts first can bind it.")
                if lost:
                    verdict = "confirmed"
                    j.explained.update(lost)
                    parts.append("Missing from the endpoint map: "
                                 + ", ".join(sorted({_iface_name(u) for u in lost})) + ".")
                ev.extend(_ev_reg(s.reg) for s in sps)
                fixes.append(tpl["duplicate"].format(
                    port=sps[0].port, server=j.server_name,
                    labels=" and ".join(f"{s.service} \"{s.value_name}\" ({s.key})" for s in sps),
                    services=", ".join(dict.fromkeys(s.service for s in sps if s.exchange))))
            if j.has_dump and not any(u in j.missing for sps in clashes for s in sps for u in s.interfaces):
                verdict = "likely"
                weak = set(kb["not_exchange_evidence"])
                for sps in clashes:
                    holders = j.holders_on(sps[0].port)
                    owner = next((s for s in sps for h in holders
                                  if _owned_by(h, s.images, s.service)), None)
                    if owner is not None:
                        h = next(h for h in holders if _owned_by(h, owner.images, owner.service))
                        parts.append(f"{h.short()} ({owner.service}) holds port {sps[0].port} now.")
                    masked = sorted({_iface_name(u) for s in sps if s.exchange for u in s.interfaces
                                     if u in weak and u in j.present_rows})
                    if masked and any(not s.exchange for s in sps):
                        parts.append(f"The dump's {', '.join(masked)} entry does not tell which "
                                     "service bound the port: the other service registers the same "
                                     "interface UUID itself.")
                parts.append("The endpoint map is complete now, but only one of the services can "
                             "bind the port: the clash bites whenever the other starts first.")
            return Cause(cid, title, verdict, " ".join(parts), _dedupe(ev), fixes)
        if same_proc:
            text = " ".join(
                f"Port {sps[0].port} is set for " + " and ".join(s.label for s in sps)
                + f", all served by one process ({'/'.join(sps[0].images)}), which listens once "
                "for all of them; KB 270836 still recommends a separate port per value."
                for sps in same_proc)
            return Cause(cid, title, "ruled_out", text,
                         _dedupe([_ev_reg(s.reg) for sps in same_proc for s in sps]))
        if j.reg.reg_known or statics or others:
            return Cause(cid, title, "ruled_out",
                         "No two configured static ports are equal." if len(statics + others) > 1
                         else "At most one static port is configured, so none can be duplicated.",
                         [_ev_reg(s.reg) for s in statics + others])
        if not j.has_dump or j.missing:
            j.collect.append(j.fmt("services_export" if j.reg.system_paths else "hive"))
            return Cause(cid, title, "possible", self._unread_registry(j))
        return Cause(cid, title, "ruled_out",
                     "Every expected Exchange interface is registered in the endpoint map.")

    def _cause_missing(self, j: Judged) -> Cause:
        """endpoints-missing: interfaces missing with no static port to blame.
        The service that registers them is stopped (tasklist /svc, Service
        Control Manager events) or running but failing to register."""
        cid, title = ("endpoints-missing",
                      "Exchange endpoints missing without a static-port conflict (service stopped "
                      "or failing to register)")
        kb = _kb()
        tpl = kb["remediation_templates"]
        srv = j.srv
        if not j.has_dump:
            return Cause(cid, title, "possible",
                         "No endpoint-mapper dump of this server is in the case, so registered "
                         "interfaces cannot be compared with KB 926210's list.")
        rest = [u for u in j.missing if u not in j.explained]
        if not j.missing:
            return Cause(cid, title, "ruled_out",
                         "Every interface KB 926210 lists is in the ncacn_ip_tcp section.")
        if not rest:
            return Cause(cid, title, "ruled_out",
                         "The missing interfaces are explained by the static-port conflict above.")
        names = ", ".join(sorted({_iface_name(u) for u in rest}))
        # Which services own the unexplained interfaces, and are they running?
        owners = {svc: info for svc, info in kb["services"].items()
                  if any(u in sp["interfaces"] for sp in info["static_ports"] for u in rest)
                  and svc in j.profile["services"]}
        ev: list[Evidence] = []
        notes: list[str] = []
        stopped: list[str] = []
        running: dict[str, dict[str, Any]] = {}
        if j.has_tasklist:
            for svc, info in owners.items():
                procs = [p for p in srv.processes
                         if any(str(s).lower() == svc.lower() for s in p["_data"].get("services") or [])
                         or str(p["_data"].get("image") or "").lower() in info["images"]]
                if procs:
                    running[svc] = procs[0]
                    notes.append(f"{svc} runs as {procs[0]['_data'].get('image')} "
                                 f"(PID {procs[0]['_data'].get('pid')})")
                    ev.append(_ev(procs[0]))
                else:
                    stopped.append(svc)
            if stopped:
                notes.append("tasklist /svc shows no process for " + ", ".join(stopped))
        scm: dict[str, list[dict[str, Any]]] = {}
        for svc, info in owners.items():
            hits = [e for e in srv.service_events if _names_service(e, svc, info["display"])]
            if hits:
                hits.sort(key=lambda e: str(e.get("ts") or ""))
                scm[svc] = hits
                ev.extend(_ev(e) for e in hits[-3:])
                notes.append(f"the System log has {_describe_events(hits)} for {info['display']}")
        static_for = [sp.label for sp in j.reg.statics if set(sp.interfaces) & set(rest)]
        text = f"Missing from the endpoint map: {names}."
        if owners and stopped and len(stopped) == len(owners):
            verdict = "confirmed"
            text += " The services that register them are not running."
        elif owners and not j.has_tasklist and len(scm) == len(owners) and not static_for:
            verdict = "likely"
            text += " The services that register them stopped or failed to start (System log)."
        elif j.reg.reg_known and not static_for:
            verdict = "likely"
            text += (" No static port is configured for them, so no port conflict can keep them "
                     "out: the service is stopped, still starting, or failing to register.")
        else:
            verdict = "possible"
            if not j.reg.reg_known:
                text += " " + self._unread_registry(j)
        if notes:
            text += " " + "; ".join(notes) + "."
        fixes: list[str] = []
        for svc, info in owners.items():
            why = (tpl["missing_why_events"].format(events=_describe_events(scm[svc]), service=svc)
                   if svc in scm else tpl["missing_why_none"].format(service=svc))
            key = "missing_restart" if svc in running else "missing_start"
            fixes.append(tpl[key].format(display=info["display"], service=svc,
                                         server=j.server_name, why=why))
        if not j.has_tasklist:
            j.collect.append(j.fmt("services", services=" ".join(owners) or "MSExchangeIS"))
        if not srv.has_system_log:
            j.collect.append(j.fmt("system_log"))
        if not srv.has_app_log:
            j.collect.append(j.fmt("application_log", services=" / ".join(owners) or "MSExchangeIS"))
        return Cause(cid, title, verdict, text, _dedupe(ev), fixes)

    # ---- wording ---------------------------------------------------------
    @staticmethod
    def _summary(j: Judged, status: str, present: list[str], gone: list[str],
                 partial: list[str], causes: list[Cause]) -> str:
        """Two or three sentences a support engineer can paste into the case:
        what the endpoint map lacks, who holds which port, the verdict."""
        srv = j.srv
        who = srv.display or "The Exchange server"
        bits: list[str] = []
        if j.has_dump:
            lacking = gone + [f"part of {g}" for g in partial]
            if lacking:
                bits.append(f"{who}: the endpoint map lacks {', '.join(lacking)} "
                            f"(present: {', '.join(present) or 'no Exchange group'}).")
            else:
                bits.append(f"{who}: the endpoint map has every Exchange interface group "
                            f"({', '.join(present)}).")
        else:
            bits.append(f"{who}: no endpoint-mapper dump in the case.")
        for sp, hs, lost in j.conflicts:
            lost_groups = list(dict.fromkeys(_iface_group(u) for u in lost))
            bits.append(f"Static port {sp.port} ({sp.service} \"{sp.value_name}\") is held by "
                        + " and ".join(h.short() for h in hs)
                        + (f"; lost: {', '.join(lost_groups)}" if lost_groups else "") + ".")
        live = sorted((c for c in causes if c.verdict != "ruled_out"),
                      key=lambda c: VERDICT_RANK[c.verdict])
        if status == "ok":
            bits.append("No static port conflicts." if j.reg.statics else "No static ports are set."
                        if j.reg.reg_known else "")
        elif live and live[0].verdict == "confirmed":
            bits.append(f"Cause: {live[0].id} (confirmed).")
        elif live and live[0].verdict == "likely":
            bits.append(f"Most likely: {live[0].id}.")
        elif status == "inconclusive" and not srv.symptoms and not j.conflicts:
            bits.append("It is an Exchange server, but nothing in the case shows whether its RPC "
                        "interfaces are registered: see what to collect.")
        elif live:
            bits.append("Not decided between " + ", ".join(c.id for c in live)
                        + ": see what to collect.")
        if srv.symptoms:
            bits.append(f"{len(srv.symptoms)} Security-log logon failure(s) match KB 926210's symptom.")
        return " ".join(b for b in bits if b)

    @staticmethod
    def _not_applicable() -> Finding:
        return Finding(check=CHECK_ID, title=RpcPortConflict.title, status="not_applicable",
                       severity="info",
                       summary="No Exchange RPC endpoints, no Exchange service registry keys, no "
                               "Exchange processes and no KB 926210 logon-failure symptoms in the case.",
                       references=list(_kb()["references"]))




def _and(items: list[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


