"""The finding's words for one server: status and severity, the evidence,
what to collect, the remediation and a summary to paste into the case."""
from __future__ import annotations

from typing import Any

from ...findings import VERDICT_RANK, Cause, Evidence
from .model import TCP, Judged, ev, ev_reg, iface_group, iface_name, kb

MAX_EVIDENCE = 12


def groups(j: Judged, state: str) -> list[str]:
    return [g for g, st in j.groups.items() if st == state]


def status_severity(j: Judged, causes: list[Cause]) -> tuple[str, str]:
    """``critical`` when every Information Store interface is missing (no MAPI
    client can open a mailbox: the KB's outage), ``error`` for any other
    missing group or a conflict without a dump to show its effect,
    ``warning`` for a latent conflict on a server whose dump is complete and
    for an inconclusive finding with the Security-log symptoms."""
    live = any(c.verdict in ("confirmed", "likely") for c in causes)
    if (j.has_dump and j.missing) or live:
        if set(kb()["critical_groups"]) & set(groups(j, "missing")):
            return "problem", "critical"
        return "problem", "warning" if j.has_dump and not j.missing else "error"
    if j.has_dump:
        return "ok", "info"
    return "inconclusive", "warning" if j.srv.symptoms else "info"


def evidence(j: Judged) -> list[Evidence]:
    """The endpoint map's verdict per group, the interfaces present, the
    static ports, who holds a conflicting port, the symptoms."""
    out: list[Evidence] = []
    if j.has_dump:
        excerpt = (f"Exchange interface groups ({j.profile['title']}) present: "
                   f"{', '.join(groups(j, 'present')) or 'none'}; missing: "
                   f"{', '.join(groups(j, 'missing')) or 'none'}"
                   + (f"; incomplete: {', '.join(groups(j, 'partial'))}" if groups(j, "partial") else ""))
        if j.missing:
            excerpt += "; no ncacn_ip_tcp line for " + ", ".join(sorted({iface_name(u) for u in j.missing}))
        out.append(Evidence(path=str(j.tcp_rows[0].get("path")), locator=f"protseq={TCP}", ts=None, excerpt=excerpt))
        out += [ev(j.present_rows[u]) for u in j.profile["expected"] if u in j.present_rows]
    out += [ev_reg(sp.reg) for sp in j.reg.statics + j.reg.others]
    for _, hs, _ in j.conflicts:
        for h in hs:
            out += [ev(h.row)] + ([ev(h.proc_row)] if h.proc_row else [])
    return out + [ev(e) for e in j.srv.symptoms[:5]]


def collect(j: Judged, status: str) -> list[str]:
    """KB 926210's whole evidence chain for what is missing: dump, static
    ports, holders (the causes added their own)."""
    out = list(j.collect)
    if not j.has_dump and status != "ok":
        out.insert(0, j.fmt("dump"))
    if status == "inconclusive":
        if not j.reg.reg_known:
            out.append(j.fmt("services_export" if j.reg.system_paths else "hive"))
        if not j.has_netstat:
            out.append(j.fmt("netstat"))
        if not j.has_tasklist:
            out.append(j.fmt("tasklist"))
    return out


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def remediation(j: Judged, causes: list[Cause], status: str) -> list[str]:
    """The fix of the most probable cause(s) -- never the static-port advice
    for a stopped service -- then the KB's check that it worked."""
    if status != "problem":
        return []
    ranked = sorted((c for c in causes if c.verdict != "ruled_out"), key=lambda c: VERDICT_RANK[c.verdict])
    best = [c for c in ranked if ranked and c.verdict == ranked[0].verdict]
    broken = groups(j, "missing") + groups(j, "partial")
    what = (f"the {_and(broken)} interfaces are back" if broken
            else "every Exchange interface is still registered after the restart")
    return [r for c in best for r in c.remediation] + [
        kb()["remediation_templates"]["verify"].format(server=j.server_name, what=what)]


def summary(j: Judged, status: str, causes: list[Cause]) -> str:
    """What the endpoint map lacks, who holds which port, the verdict."""
    who = j.srv.display or "The Exchange server"
    present, gone = groups(j, "present"), groups(j, "missing")
    bits: list[str] = []
    if j.has_dump:
        lacking = gone + [f"part of {g}" for g in groups(j, "partial")]
        bits.append(f"{who}: the endpoint map lacks {', '.join(lacking)} (present: "
                    f"{', '.join(present) or 'no Exchange group'})." if lacking else
                    f"{who}: the endpoint map has every Exchange interface group ({', '.join(present)}).")
    else:
        bits.append(f"{who}: no endpoint-mapper dump in the case.")
    for sp, hs, lost in j.conflicts:
        lost_groups = list(dict.fromkeys(iface_group(u) for u in lost))
        bits.append(f"Static port {sp.port} ({sp.service} \"{sp.value_name}\") is held by "
                    + " and ".join(h.short() for h in hs)
                    + (f"; lost: {', '.join(lost_groups)}" if lost_groups else "") + ".")
    live = sorted((c for c in causes if c.verdict != "ruled_out"), key=lambda c: VERDICT_RANK[c.verdict])
    if status == "ok":
        bits.append("No static port conflicts." if j.reg.statics else "No static ports are set."
                    if j.reg.reg_known else "")
    elif live and live[0].verdict in ("confirmed", "likely"):
        bits.append(f"Cause: {live[0].id} (confirmed)." if live[0].verdict == "confirmed"
                    else f"Most likely: {live[0].id}.")
    elif status == "inconclusive" and not j.srv.symptoms and not j.conflicts:
        bits.append("It is an Exchange server, but nothing in the case shows whether its RPC "
                    "interfaces are registered: see what to collect.")
    elif live:
        bits.append("Not decided between " + ", ".join(c.id for c in live) + ": see what to collect.")
    if j.srv.symptoms:
        bits.append(f"{len(j.srv.symptoms)} Security-log logon failure(s) match KB 926210's symptom.")
    return " ".join(b for b in bits if b)


def machine_facts(j: Judged) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if j.max_user_port:
        facts["max_user_port"] = j.max_user_port
    facts.update({"profile": j.profile["id"], "dump": j.has_dump, "registry": j.reg.reg_known,
                  "netstat": j.has_netstat, "tasklist": j.has_tasklist, "groups": j.groups,
                  "groups_present": groups(j, "present"), "groups_missing": groups(j, "missing"),
                  "groups_partial": groups(j, "partial")})
    facts["interfaces_missing"] = [{"uuid": u, "name": iface_name(u), "group": iface_group(u)} for u in j.missing]
    facts["static_ports"] = [{"service": s.service, "value": s.value_name, "port": s.port, "key": s.key,
                              "protocol": s.protocol, "source": s.reg.path, "locator": s.reg.locator}
                             for s in j.reg.statics + j.reg.others]
    if j.reg.control_set is not None:
        facts["current_control_set"] = j.reg.control_set
    facts["conflicts"] = [{"port": sp.port, "static_value": sp.label, "pid": h.pid, "image": h.image,
                           "services": h.services, "state": h.row["_data"].get("state"),
                           "missing_interfaces": [iface_name(u) for u in lost]}
                          for sp, hs, lost in j.conflicts for h in hs]
    facts["symptom_events"] = len(j.srv.symptoms)
    return facts
