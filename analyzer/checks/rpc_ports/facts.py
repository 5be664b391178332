"""KB 926210 steps 1 and 2 for one server: the endpoint map against the
KB's list of interfaces, and the static ports of KB 270836 read through
``CurrentControlSet`` (``Select\\Current`` of an offline SYSTEM hive), plus
the processes netstat -ano / tasklist /svc show."""
from __future__ import annotations

from typing import Any

from ...findings import Evidence
from ...registry import RegistryView
from ..toolkit import dedupe
from .model import TCP, Judged, RegFacts, Server, StaticPort, iface_group, kb, port_of, to_int, uuid_of


def profile(present: set[str], view: RegistryView | None) -> dict[str, Any]:
    """The Exchange generation whose interface list the dump is judged
    against: Exchange 2010 registers RPC Client Access and the Address
    Book service instead of the 2000/2003 MTA and System Attendant."""
    profiles = kb()["profiles"]
    for p in profiles:
        det = p.get("detect") or {}
        if not det or any(u in present for u in det.get("uuids", [])):
            return p
        if view is not None and any(view.key_exists(f"HKLM\\SYSTEM\\CurrentControlSet\\Services\\{s}")
                                    for s in det.get("service_keys", [])):
            return p
    return profiles[-1]


def _static(view: RegistryView, spec: dict, service: str, display: str, ifaces: list[str],
            images: list[str], protocol: str, exchange: bool) -> StaticPort | None:
    v = view.get(spec["key"], spec["value"])
    port = port_of(v.value) if v is not None else None
    if v is None or port is None:
        return None
    return StaticPort(service, display, v.name or spec["value"], spec["key"], port, protocol,
                      list(ifaces), [i.lower() for i in images], v, exchange=exchange)


def statics(view: RegistryView | None) -> RegFacts:
    """Static-port values that are set, Exchange's and other services'."""
    k, out = kb(), RegFacts()
    if view is None or len(view) == 0:
        return out
    out.control_set = view.control_set()
    frame = view.frame()
    keys = frame["key"].astype("string").fillna("").str.lower()
    out.system_paths = sorted({str(p) for p, key in zip(frame["path"].astype("object"), keys)
                               if key.startswith("hklm\\system\\")})
    for svc, info in k["services"].items():
        if view.key_exists(f"HKLM\\SYSTEM\\CurrentControlSet\\Services\\{svc}"):
            out.reg_known = True
        for sp in info["static_ports"]:
            s = _static(view, sp, svc, info["display"], sp["interfaces"], info["images"], sp["protocol"], True)
            if s:
                out.statics.append(s)
    for o in k["other_static_ports"]:
        s = _static(view, o, o["service"], o["display"], [], o["images"], TCP, False)
        if s:
            out.others.append(s)
    return out


def judge_facts(srv: Server) -> Judged:
    """Everything the causes read about one server."""
    k = kb()
    view = RegistryView(srv.registry_df) if srv.registry_df is not None else None
    j = Judged(srv=srv, server_name=srv.display or "<server>")
    tcp = [e for e in srv.endpoints if (e["_data"].get("protocol") or "").lower() == TCP]
    for e in tcp:
        u = uuid_of(e["_data"].get("uuid"))
        j.present_rows.setdefault(u, e)
        port = to_int(e["_data"].get("port"))
        if port is not None:
            j.present_ports.setdefault(u, set()).add(port)
    j.tcp_rows = tcp
    j.profile = profile(set(j.present_rows), view)
    expected = list(j.profile["expected"])
    j.has_dump = bool(tcp)
    j.missing = [u for u in expected if u not in j.present_rows] if j.has_dump else []
    for g in dict.fromkeys(iface_group(u) for u in expected):
        members = [u for u in expected if iface_group(u) == g]
        have = [u for u in members if u in j.present_rows]
        j.groups[g] = ("present" if len(have) == len(members) else "partial" if have else "missing") \
            if j.has_dump else "unknown"
    j.reg = statics(view)
    for p in srv.processes:
        pid = to_int(p["_data"].get("pid"))
        if pid is not None:
            j.procs.setdefault(pid, p)
    j.has_netstat, j.has_tasklist = bool(srv.sockets), bool(srv.processes)
    lo, hi = k["ephemeral_range"]
    mup = k.get("max_user_port")
    if view is not None and mup:
        v = view.get(mup["key"], mup["value"])
        top = port_of(v.value) if v is not None else None
        if top and top > lo:
            hi, j.max_user_port = top, top
    j.client_range = (lo, hi)
    j.view = view
    classify_holders(j)
    return j


def unread_registry(j: Judged) -> str:
    """Why the KB 270836 values could not be read: no SYSTEM data at all,
    or SYSTEM data that lacks the Exchange service keys (a hive of another
    machine, an export of other keys) -- the two ask for different files."""
    if j.reg.system_paths:
        cs = (f" (current control set ControlSet{j.reg.control_set:03d})"
              if j.reg.control_set is not None else "")
        return (f"The SYSTEM registry data in the case ({', '.join(j.reg.system_paths)}){cs} "
                "has no Exchange service keys (Services\\MSExchangeIS, MSExchangeSA), so "
                "the static port values of KB 270836 cannot be read from it.")
    return ("The static port values of KB 270836 could not be read: no SYSTEM hive or "
            "export of the Exchange service keys is in the case.")


def service_key_evidence(j: Judged) -> list[Evidence]:
    """The Exchange service keys that were read without a static-port value:
    the evidence that "no static port" is a fact, not a gap."""
    if j.view is None:
        return []
    wanted: dict[str, list[str]] = {}
    for info in kb()["services"].values():
        for sp in info["static_ports"]:
            if sp["protocol"] == TCP:
                wanted.setdefault(sp["key"], []).append(sp["value"])
    out: list[Evidence] = []
    for key, names in wanted.items():
        row = j.view.any_row(key)
        if row is not None:
            absent = " / ".join(f'"{n}"' for n in names)
            out.append(Evidence.from_row(row, f"{row['key']}: no {absent} value (no static port)"))
    return dedupe(out)


def classify_holders(j: Judged) -> None:
    """Who holds each Exchange static port: a stranger (a conflict, with the
    interfaces the port carries that are missing), the service itself, or
    the other service configured for the same port (a duplicate)."""
    from .model import owned_by
    everyone = j.reg.statics + j.reg.others
    for sp in j.reg.statics:
        hs = j.holders_on(sp.port)
        # The dump shows the service's own interfaces on this very port: the
        # service bound it, so an unidentified socket there is its own.
        by_dump = sp.protocol == TCP and any(sp.port in j.present_ports.get(u, ()) for u in sp.interfaces)
        foreign = [h for h in hs if not owned_by(h, sp.images, sp.service)
                   and not (by_dump and not h.image and not h.services)]
        mine = [h for h in hs if h not in foreign]
        # A holder configured for this port itself is the other half of a
        # duplicate (static-port-duplicate), not a stranger.
        twins = [o for o in everyone if o is not sp and o.port == sp.port]
        twin_held = [h for h in foreign if any(owned_by(h, o.images, o.service) for o in twins)]
        foreign = [h for h in foreign if h not in twin_held]
        if twin_held:
            j.shared.append((sp, twin_held))
        lost = [u for u in sp.interfaces if u in j.missing] if sp.protocol == TCP else []
        if foreign:
            j.conflicts.append((sp, foreign, lost))
        elif mine:
            j.own_ok.append((sp, mine, by_dump))
