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

import ipaddress
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import knowledge
from ..findings import Cause, Evidence, Finding
from ..table import row_data
from . import Check, register

CHECK_ID = "rpc-port-conflict"
TCP = "ncacn_ip_tcp"
MAX_EVIDENCE = 12


# --------------------------------------------------------------------------
# knowledge

def _kb() -> dict[str, Any]:
    return knowledge.load("rpc_ports")


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

def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return False


def host_key(host: Any) -> str | None:
    """One spelling per machine: ``EXCH01``, ``exch01.contoso.local`` and
    ``\\\\EXCH01`` are the same server (rpcdump's ``/S`` argument, the event's
    Computer field and a hive's ComputerName disagree on case and domain)."""
    if host is None or host is pd.NA or (isinstance(host, float) and host != host):
        return None
    text = str(host).strip().lstrip("\\").strip()
    if not text:
        return None
    if _is_ip(text):
        return text.strip("[]")
    return text.split(".")[0].upper()


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


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for rec in df.to_dict("records"):
        clean = {k: (None if (v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v)) else v)
                 for k, v in rec.items()}
        clean["_data"] = row_data(clean.get("data"))
        out.append(clean)
    return out


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
    registry_df: pd.DataFrame | None = None


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
class RpcPortConflict(Check):
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
            return [self._not_applicable()]
        return [self._judge(s) for s in servers]

    @staticmethod
    def _security(ev: dict[str, Any]) -> bool:
        ch = (ev.get("channel") or "").lower()
        prov = (ev.get("provider") or "").lower()
        return ch == "security" or prov in ("security", "microsoft-windows-security-auditing")

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

        named = {h for h in ex_hosts if h is not None and not _is_ip(h)}
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
            groups = {target: {target} | {h for h in ex_hosts if h is None or _is_ip(h)} | {None}}
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
        kb = _kb()
        from ..registry import RegistryView
        view = RegistryView(srv.registry_df) if srv.registry_df is not None else None
        host = srv.display if srv.display else None
        server_name = host or "<server>"

        # Step 1: the endpoint map.
        tcp = [e for e in srv.endpoints if (e["_data"].get("protocol") or "").lower() == TCP]
        present_rows: dict[str, dict[str, Any]] = {}
        for e in tcp:
            present_rows.setdefault(_uuid(e["_data"].get("uuid")), e)
        profile = self._profile(set(present_rows), view)
        expected = list(profile["expected"])
        has_dump = bool(tcp)
        missing = [u for u in expected if u not in present_rows] if has_dump else []
        groups: dict[str, str] = {}
        for u in expected:
            g = _iface_group(u)
            groups.setdefault(g, "")
        for g in groups:
            members = [u for u in expected if _iface_group(u) == g]
            have = [u for u in members if u in present_rows]
            groups[g] = ("present" if len(have) == len(members) else "partial" if have else "missing") \
                if has_dump else "unknown"
        groups_present = [g for g, s in groups.items() if s == "present"]
        groups_missing = [g for g, s in groups.items() if s == "missing"]
        groups_partial = [g for g, s in groups.items() if s == "partial"]

        # Step 2: static ports (KB 270836) through CurrentControlSet.
        statics, other_statics, reg_known = self._statics(view)

        # netstat -ano + tasklist /svc.
        procs: dict[int, dict[str, Any]] = {}
        for p in srv.processes:
            pid = _int(p["_data"].get("pid"))
            if pid is not None:
                procs.setdefault(pid, p)
        has_netstat = bool(srv.sockets)
        has_tasklist = bool(srv.processes)

        def holders_on(port: int) -> list[Holder]:
            out = []
            for s in srv.sockets:
                d = s["_data"]
                if _int(d.get("local_port")) != port:
                    continue
                if not str(d.get("protocol") or "TCP").upper().startswith("TCP"):
                    continue
                pid = _int(d.get("pid"))
                prow = procs.get(pid) if pid is not None else None
                pdata = prow["_data"] if prow else {}
                image = pdata.get("image") or d.get("image")
                out.append(Holder(s, pid, image, list(pdata.get("services") or []), prow,
                                  s.get("kind") == "listener"))
            return out

        causes: list[Cause] = []
        evidence: list[Evidence] = []
        collect: list[str] = []
        facts: dict[str, Any] = {"profile": profile["id"], "dump": has_dump,
                                 "registry": reg_known, "netstat": has_netstat,
                                 "tasklist": has_tasklist, "groups": groups,
                                 "groups_present": groups_present, "groups_missing": groups_missing,
                                 "groups_partial": groups_partial}
        facts["interfaces_missing"] = [{"uuid": u, "name": _iface_name(u), "group": _iface_group(u)}
                                       for u in missing]
        facts["static_ports"] = [{"service": s.service, "value": s.value_name, "port": s.port,
                                  "key": s.key, "protocol": s.protocol,
                                  "source": s.reg.path, "locator": s.reg.locator}
                                 for s in statics + other_statics]
        cs = view.control_set() if view is not None else None
        if cs is not None:
            facts["current_control_set"] = cs

        def fmt(kind: str) -> str:
            return kb["collect"][kind].format(server=server_name)

        # ---- cause: static-port-in-use --------------------------------------
        conflicts: list[tuple[StaticPort, list[Holder], list[str]]] = []
        own_ok: list[tuple[StaticPort, list[Holder]]] = []
        shared: list[tuple[StaticPort, list[Holder]]] = []
        for sp in statics:
            hs = holders_on(sp.port)
            foreign = [h for h in hs if not _owned_by(h, sp.images, sp.service)]
            mine = [h for h in hs if h not in foreign]
            # A holder that is itself configured for this port is the other
            # half of a duplicate (static-port-duplicate), not a stranger.
            twins = [o for o in statics + other_statics if o is not sp and o.port == sp.port]
            twin_held = [h for h in foreign if any(_owned_by(h, o.images, o.service) for o in twins)]
            foreign = [h for h in foreign if h not in twin_held]
            if twin_held:
                shared.append((sp, twin_held))
            lost = [u for u in sp.interfaces if u in missing] if sp.protocol == TCP else []
            if foreign:
                conflicts.append((sp, foreign, lost))
            elif mine:
                own_ok.append((sp, mine))
        facts["conflicts"] = [{"port": sp.port, "static_value": sp.label, "pid": h.pid,
                               "image": h.image, "services": h.services,
                               "state": h.row["_data"].get("state"),
                               "missing_interfaces": [_iface_name(u) for u in lost]}
                              for sp, hs, lost in conflicts for h in hs]
        explained: set[str] = set()
        lo, hi = kb["ephemeral_range"]
        mup = kb.get("max_user_port")
        if view is not None and mup:
            v = view.get(mup["key"], mup["value"])
            top = _port(v.value) if v is not None else None
            if top and top > lo:
                hi = top
                facts["max_user_port"] = top
        in_use = self._cause_in_use(statics, conflicts, own_ok, shared, missing, has_dump, has_netstat,
                                    has_tasklist, reg_known, explained, fmt, collect, (lo, hi))
        causes.append(in_use)

        # ---- cause: static-port-duplicate -----------------------------------
        dup = self._cause_duplicate(statics, other_statics, missing, has_dump, reg_known,
                                    explained, fmt, collect)
        causes.append(dup)

        # ---- cause: endpoints-missing ------------------------------------------
        causes.append(self._cause_missing(profile, statics, missing, explained, has_dump, reg_known,
                                          has_tasklist, srv, fmt, collect))

        # ---- evidence of the finding ------------------------------------------
        dump_path = tcp[0].get("path") if tcp else None
        if has_dump:
            excerpt = (f"Exchange interface groups ({profile['title']}) present: "
                       f"{', '.join(groups_present) or 'none'}; missing: {', '.join(groups_missing) or 'none'}"
                       + (f"; incomplete: {', '.join(groups_partial)}" if groups_partial else ""))
            if missing:
                excerpt += "; no ncacn_ip_tcp line for " + ", ".join(
                    sorted({_iface_name(u) for u in missing}))
            evidence.append(Evidence(path=str(dump_path), locator=f"protseq={TCP}", ts=None,
                                     excerpt=excerpt))
            for u in expected:
                if u in present_rows:
                    evidence.append(_ev(present_rows[u]))
        for sp in statics + other_statics:
            evidence.append(_ev_reg(sp.reg))
        for sp, hs, _ in conflicts:
            for h in hs:
                evidence.append(_ev(h.row))
                if h.proc_row:
                    evidence.append(_ev(h.proc_row))
        for e in srv.symptoms[:5]:
            evidence.append(_ev(e))
        evidence = _dedupe(evidence)

        # ---- status ----------------------------------------------------------
        live = [c for c in causes if c.verdict in ("confirmed", "likely")]
        is_missing_all = "Information Store" in groups_missing
        if has_dump and (groups_missing or groups_partial or missing):
            status = "problem"
        elif live:
            status = "problem"
        elif has_dump:
            status = "ok"
        else:
            status = "inconclusive"
            if not has_dump:
                collect.insert(0, fmt("dump"))
        if status == "problem":
            if is_missing_all:
                severity = "critical"
            elif has_dump and not missing:
                severity = "warning"  # latent: a conflict that has not bitten yet
            else:
                severity = "error"
        elif status == "inconclusive":
            severity = "warning" if srv.symptoms else "info"
        else:
            severity = "info"
        if status == "problem" and not has_dump:
            collect.insert(0, fmt("dump"))
        if status == "inconclusive":
            # KB 926210's whole evidence chain: dump, static ports, holders.
            if not reg_known:
                collect.append(fmt("hive"))
            if not has_netstat:
                collect.append(fmt("netstat"))
            if not has_tasklist:
                collect.append(fmt("tasklist"))

        facts["symptom_events"] = len(srv.symptoms)
        summary = self._summary(srv, status, has_dump, groups_present, groups_missing,
                                groups_partial, missing, conflicts, causes, statics)
        return Finding(check=CHECK_ID, title=self.title, status=status, severity=severity,
                       summary=summary, host=host, causes=causes,
                       evidence=evidence[:MAX_EVIDENCE * 3],
                       remediation=list(kb["remediation"]) if status == "problem" else [],
                       references=list(kb["references"]), collect=_unique(collect), facts=facts)

    # ---- profile and registry --------------------------------------------
    @staticmethod
    def _profile(present: set[str], view: Any) -> dict[str, Any]:
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
    def _statics(view: Any) -> tuple[list[StaticPort], list[StaticPort], bool]:
        """Static-port values that are set, Exchange's and other services'.
        ``reg_known`` is True when the registry of this server holds the
        Exchange service keys at all (a value's absence then means "no static
        port", not "not collected")."""
        kb = _kb()
        statics: list[StaticPort] = []
        others: list[StaticPort] = []
        if view is None or len(view) == 0:
            return statics, others, False
        reg_known = False
        for svc, info in kb["services"].items():
            if view.key_exists(f"HKLM\\SYSTEM\\CurrentControlSet\\Services\\{svc}"):
                reg_known = True
            for sp in info["static_ports"]:
                v = view.get(sp["key"], sp["value"])
                port = _port(v.value) if v is not None else None
                if v is None or port is None:
                    continue
                statics.append(StaticPort(svc, info["display"], v.name or sp["value"], sp["key"],
                                          port, sp["protocol"], list(sp["interfaces"]),
                                          [i.lower() for i in info["images"]], v))
        for o in kb["other_static_ports"]:
            v = view.get(o["key"], o["value"])
            port = _port(v.value) if v is not None else None
            if v is None or port is None:
                continue
            others.append(StaticPort(o["service"], o["display"], v.name or o["value"], o["key"],
                                     port, TCP, [], [i.lower() for i in o["images"]], v,
                                     exchange=False))
        return statics, others, reg_known

    # ---- causes ------------------------------------------------------------
    @staticmethod
    def _cause_in_use(statics: list[StaticPort], conflicts: list, own_ok: list, shared: list,
                      missing: list[str],
                      has_dump: bool, has_netstat: bool, has_tasklist: bool, reg_known: bool,
                      explained: set[str], fmt: Any, collect: list[str],
                      client_range: tuple[int, int]) -> Cause:
        cid, title = "static-port-in-use", "A static Exchange RPC port is held by another process"
        kb = _kb()
        lo, hi = client_range
        if conflicts:
            verdict = "possible"
            parts: list[str] = []
            ev: list[Evidence] = []
            for sp, hs, lost in conflicts:
                names = sorted({_iface_name(u) for u in lost})
                held = "; ".join(
                    f"{h.describe()} {'listens on' if h.listening else 'has a connection from local port'} "
                    f"{sp.port}" for h in hs)
                text = f"{sp.label} ({sp.display}) is configured, and {held}."
                if lost:
                    text += f" Missing from the endpoint map: {', '.join(names)}."
                    explained.update(lost)
                elif has_dump and sp.interfaces:
                    text += " Its interfaces are registered anyway (bound to another address?)."
                if any(not h.listening for h in hs) and lo <= sp.port <= hi:
                    text += (f" Port {sp.port} lies in the client port range {lo}-{hi}: any outgoing "
                             "connection can take it before the service starts.")
                parts.append(text)
                identified = all(h.image for h in hs)
                if lost and identified:
                    v = "confirmed"
                elif lost or (not has_dump and identified):
                    v = "likely"
                elif not has_dump or not sp.interfaces:
                    v = "likely" if identified else "possible"
                else:
                    v = "possible"
                verdict = min(verdict, v, key=lambda x: ["confirmed", "likely", "possible"].index(x))
                ev.append(_ev_reg(sp.reg))
                for h in hs:
                    ev.append(_ev(h.row))
                    if h.proc_row:
                        ev.append(_ev(h.proc_row))
            if not has_tasklist:
                collect.append(fmt("tasklist"))
            return Cause(cid, title, verdict, " ".join(parts), _dedupe(ev),
                         list(kb["remediation"][:2]))
        # No holder seen.
        carried_missing = sorted({u for sp in statics for u in sp.interfaces
                                  if u in missing and sp.protocol == TCP})
        if statics and carried_missing and not has_netstat:
            collect.extend([fmt("netstat"), fmt("tasklist")])
            explained.update(carried_missing)
            names = ", ".join(sorted({_iface_name(u) for u in carried_missing}))
            sps = [sp for sp in statics if set(sp.interfaces) & set(carried_missing)]
            return Cause(cid, title, "likely",
                         "Static ports are configured (" + "; ".join(sp.label for sp in sps)
                         + f") and the interfaces they carry are missing: {names}. KB 926210: "
                         "the service does not try another port when its static port is taken. "
                         "No netstat -ano was collected to name the process holding it.",
                         [_ev_reg(sp.reg) for sp in sps], list(kb["remediation"][:2]))
        if statics and has_netstat:
            mine = "; ".join(f"{sp.label} is used by {', '.join(h.describe() for h in hs)}"
                             for sp, hs in own_ok)
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
                text += (f" Free when netstat ran: {'; '.join(free)} (a process that held them at "
                         "service start may have exited since).")
            return Cause(cid, title, "ruled_out", text,
                         [_ev_reg(sp.reg) for sp in statics] + [_ev(h.row) for _, hs in own_ok for h in hs])
        if statics and has_dump and not carried_missing:
            return Cause(cid, title, "ruled_out",
                         "Static ports are configured (" + "; ".join(sp.label for sp in statics)
                         + ") and every interface they carry is registered in the endpoint map.",
                         [_ev_reg(sp.reg) for sp in statics])
        if statics:
            collect.extend([fmt("netstat"), fmt("tasklist")])
            return Cause(cid, title, "possible",
                         "Static ports are configured (" + "; ".join(sp.label for sp in statics)
                         + "), but neither an endpoint dump nor netstat shows whether they were bound.",
                         [_ev_reg(sp.reg) for sp in statics])
        if reg_known:
            return Cause(cid, title, "ruled_out",
                         "No static RPC port (KB 270836 values) is set for the Exchange services in "
                         "the current control set: the endpoint mapper assigns dynamic ports.")
        if missing or not has_dump:
            collect.append(fmt("hive"))
            return Cause(cid, title, "possible",
                         "The static port values of KB 270836 could not be read: no SYSTEM hive or "
                         "export of the Exchange service keys is in the case.")
        return Cause(cid, title, "ruled_out",
                     "Every expected Exchange interface is registered in the endpoint map.")

    @staticmethod
    def _cause_duplicate(statics: list[StaticPort], others: list[StaticPort], missing: list[str],
                         has_dump: bool, reg_known: bool, explained: set[str], fmt: Any,
                         collect: list[str]) -> Cause:
        cid, title = ("static-port-duplicate",
                      "Two services are configured to the same static port")
        kb = _kb()
        by_port: dict[int, list[StaticPort]] = defaultdict(list)
        for sp in statics + others:
            by_port[sp.port].append(sp)
        clashes: list[list[StaticPort]] = []
        same_proc: list[list[StaticPort]] = []
        for port, sps in sorted(by_port.items()):
            if len(sps) < 2 or not any(s.exchange for s in sps):
                continue
            if len({s.service for s in sps}) > 1 and not (
                    len({tuple(s.images) for s in sps}) == 1):
                clashes.append(sps)
            else:
                same_proc.append(sps)
        if clashes:
            verdict = "likely"
            parts = []
            ev: list[Evidence] = []
            for sps in clashes:
                lost = sorted({u for s in sps for u in s.interfaces if u in missing and s.protocol == TCP})
                parts.append(f"Port {sps[0].port} is configured for " + " and ".join(
                    f"{s.label} ({s.display}, {'/'.join(s.images)})" for s in sps)
                    + ": only the service that starts first can bind it.")
                if lost:
                    verdict = "confirmed"
                    explained.update(lost)
                    parts.append("Missing from the endpoint map: "
                                 + ", ".join(sorted({_iface_name(u) for u in lost})) + ".")
                ev.extend(_ev_reg(s.reg) for s in sps)
            if has_dump and not any(u in missing for sps in clashes for s in sps for u in s.interfaces):
                verdict = "likely"
                parts.append("The endpoint map is complete now (the other service may not be "
                             "running), but the clash returns when both start.")
            return Cause(cid, title, verdict, " ".join(parts), _dedupe(ev),
                         [kb["remediation"][1]])
        if same_proc:
            text = " ".join(
                f"Port {sps[0].port} is set for " + " and ".join(s.label for s in sps)
                + f", all served by one process ({'/'.join(sps[0].images)}), which listens once "
                "for all of them; KB 270836 still recommends a separate port per value."
                for sps in same_proc)
            return Cause(cid, title, "ruled_out", text,
                         _dedupe([_ev_reg(s.reg) for sps in same_proc for s in sps]))
        if reg_known or statics or others:
            return Cause(cid, title, "ruled_out",
                         "No two configured static ports are equal" if len(statics + others) > 1
                         else "At most one static port is configured, so none can be duplicated.",
                         [_ev_reg(s.reg) for s in statics + others])
        if not has_dump or missing:
            if fmt("hive") not in collect:
                collect.append(fmt("hive"))
            return Cause(cid, title, "possible",
                         "The static port values could not be read (no SYSTEM hive or .reg export).")
        return Cause(cid, title, "ruled_out",
                     "Every expected Exchange interface is registered in the endpoint map.")

    @staticmethod
    def _cause_missing(profile: dict[str, Any], statics: list[StaticPort], missing: list[str],
                       explained: set[str], has_dump: bool, reg_known: bool, has_tasklist: bool, srv: Server,
                       fmt: Any, collect: list[str]) -> Cause:
        cid, title = ("endpoints-missing",
                      "Exchange endpoints missing without a static-port conflict (service stopped "
                      "or failing to register)")
        kb = _kb()
        if not has_dump:
            return Cause(cid, title, "possible",
                         "No endpoint-mapper dump of this server is in the case, so registered "
                         "interfaces cannot be compared with KB 926210's list.")
        rest = [u for u in missing if u not in explained]
        if not missing:
            return Cause(cid, title, "ruled_out",
                         "Every interface KB 926210 lists is in the ncacn_ip_tcp section.")
        if not rest:
            return Cause(cid, title, "ruled_out",
                         "The missing interfaces are explained by the static-port conflict above.")
        names = ", ".join(sorted({_iface_name(u) for u in rest}))
        # Which services own the unexplained interfaces, and are they running?
        owners = {svc: info for svc, info in kb["services"].items()
                  if any(u in sp["interfaces"] for sp in info["static_ports"] for u in rest)
                  and svc in profile["services"]}
        ev: list[Evidence] = []
        notes: list[str] = []
        stopped = []
        if has_tasklist:
            for svc, info in owners.items():
                running = [p for p in srv.processes
                           if any(str(s).lower() == svc.lower() for s in p["_data"].get("services") or [])
                           or str(p["_data"].get("image") or "").lower() in info["images"]]
                if running:
                    notes.append(f"{svc} runs as {running[0]['_data'].get('image')} "
                                 f"(PID {running[0]['_data'].get('pid')})")
                    ev.append(_ev(running[0]))
                else:
                    stopped.append(svc)
            if stopped:
                notes.append("not running according to tasklist /svc: " + ", ".join(stopped))
        collect.append(fmt("services"))
        static_for = [sp.label for sp in statics if set(sp.interfaces) & set(rest)]
        text = f"Missing from the endpoint map: {names}."
        if stopped and len(stopped) == len(owners):
            verdict = "confirmed"
            text += " The services that register them are not running."
        elif reg_known and not static_for:
            verdict = "likely"
            text += (" No static port is configured for them, so no port conflict can keep them "
                     "out: the service is stopped, still starting, or failing to register.")
        else:
            verdict = "possible"
            if not reg_known:
                text += " The static port values could not be checked (no SYSTEM hive)."
        if notes:
            text += " " + "; ".join(notes) + "."
        return Cause(cid, title, verdict, text, _dedupe(ev),
                     ["Start the stopped Exchange services and check the System and Application "
                      "logs for why they stopped or failed to register their RPC interfaces."])

    # ---- wording ---------------------------------------------------------
    @staticmethod
    def _summary(srv: Server, status: str, has_dump: bool, present: list[str], gone: list[str],
                 partial: list[str], missing: list[str], conflicts: list, causes: list[Cause],
                 statics: list[StaticPort]) -> str:
        who = srv.display or "the Exchange server"
        bits: list[str] = []
        if has_dump:
            bits.append(f"{who}: endpoint map has {', '.join(present) or 'no Exchange group'}"
                        + (f"; missing {', '.join(gone)}" if gone else "")
                        + (f"; incomplete {', '.join(partial)}" if partial else "") + ".")
        else:
            bits.append(f"{who}: no endpoint-mapper dump in the case.")
        for sp, hs, lost in conflicts:
            h = hs[0]
            bits.append(f"Static port {sp.port} ({sp.label}) is held by {h.describe()}"
                        + (f"; lost: {', '.join(sorted({_iface_name(u) for u in lost}))}" if lost else "")
                        + ".")
        live = sorted((c for c in causes if c.verdict != "ruled_out"),
                      key=lambda c: ["confirmed", "likely", "possible"].index(c.verdict))
        if status == "ok":
            bits.append("All Exchange interfaces are registered"
                        + (" and no static port conflicts." if statics else "."))
        elif live:
            bits.append(f"Most likely: {live[0].id} ({live[0].verdict}).")
        if srv.symptoms:
            bits.append(f"{len(srv.symptoms)} Security-log logon failure(s) match KB 926210's symptom.")
        return " ".join(bits)

    @staticmethod
    def _not_applicable() -> Finding:
        return Finding(check=CHECK_ID, title=RpcPortConflict.title, status="not_applicable",
                       severity="info",
                       summary="No Exchange RPC endpoints, no Exchange service registry keys, no "
                               "Exchange processes and no KB 926210 logon-failure symptoms in the case.",
                       references=list(_kb()["references"]))


def _dedupe(items: list[Evidence]) -> list[Evidence]:
    seen: set[tuple[str, str]] = set()
    out = []
    for e in items:
        k = (e.path, e.locator)
        if k not in seen:
            seen.add(k)
            out.append(e)
    return out


def _unique(items: list[str]) -> list[str]:
    out: list[str] = []
    for i in items:
        if i not in out:
            out.append(i)
    return out
