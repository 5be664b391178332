"""KB 926210's causes, one function each, weighed in the article's order:
a static port taken by another process, two services configured to one
port, and interfaces missing with no port to blame. A cause that accounts
for missing interfaces adds them to ``explained``; the later causes only
weigh what is left."""
from __future__ import annotations

from collections import defaultdict

from ...findings import VERDICT_RANK
from ..toolkit import CauseTable, Verdict, confirmed, likely, possible, ruled_out
from .facts import service_key_evidence, unread_registry
from .model import TCP, Judged, StaticPort, describe_events, ev, ev_reg, iface_name, kb, names_service, owned_by

causes = CauseTable()


def _names(uuids) -> str:
    return ", ".join(sorted({iface_name(u) for u in uuids}))


def _conflict_text(j: Judged, sp: StaticPort, hs: list, lost: list[str]) -> tuple[str, str]:
    """One conflict in words, and how sure it is."""
    lo, hi = j.client_range
    held = "; ".join(f"{h.describe()} {'listens on' if h.listening else 'has a connection from local port'} "
                     f"{sp.port}" for h in hs)
    text = f"{sp.label} ({sp.display}) is configured, and {held}."
    if lost:
        text += f" Missing from the endpoint map: {_names(lost)}."
        j.explained.update(lost)
    elif j.has_dump and sp.interfaces:
        text += " Its interfaces are registered anyway (bound to another address?)."
    if any(not h.listening for h in hs) and lo <= sp.port <= hi:
        text += (f" Port {sp.port} lies in the client port range {lo}-{hi}: any outgoing "
                 "connection can take it before the service starts.")
    identified = all(h.image for h in hs)
    if lost and identified:
        return text, "confirmed"
    if lost or (not j.has_dump and identified):
        return text, "likely"
    if not j.has_dump or not sp.interfaces:
        return text, "likely" if identified else "possible"
    return text, "possible"


def _conflicts(j: Judged) -> Verdict:
    tpl, (lo, hi) = kb()["remediation_templates"], j.client_range
    verdict, parts, evidence, fixes = "possible", [], [], []
    for sp, hs, lost in j.conflicts:
        text, v = _conflict_text(j, sp, hs, lost)
        parts.append(text)
        verdict = min(verdict, v, key=lambda x: VERDICT_RANK[x])
        evidence += [ev_reg(sp.reg)] + [e for h in hs for e in [ev(h.row)] + ([ev(h.proc_row)] if h.proc_row else [])]
        fixes.append(tpl["in_use"].format(
            server=j.server_name, value=sp.value_name, key=sp.key, port=sp.port,
            holder=" and ".join(h.describe() for h in hs), display=sp.display, service=sp.service,
            range=tpl["in_use_range"].format(lo=lo, hi=hi) if lo <= sp.port <= hi else ""))
    if not j.has_tasklist:
        j.collect.append(j.fmt("tasklist"))
    return Verdict(verdict, " ".join(parts), remediation=fixes).cite(*evidence)


def _labels(sps: list[StaticPort]) -> str:
    return "; ".join(sp.label for sp in sps)


def _unknown_holder(j: Judged, sps: list[StaticPort]) -> list[str]:
    return [kb()["remediation_templates"]["in_use_unknown"].format(
        server=j.server_name, labels="; ".join(f"port {sp.port} ({sp.label})" for sp in sps))]


def _held_by_own(j: Judged) -> Verdict:
    """netstat shows no stranger: each static port is the service's own, the
    duplicate twin's, or not bound."""
    mine = "; ".join(
        f"{sp.label} is used by " + (
            "the service itself (the endpoint map shows its interfaces on that port)"
            if by_dump and not any(h.image for h in hs) else ", ".join(h.describe() for h in hs))
        for sp, hs, by_dump in j.own_ok)
    twin = "; ".join(f"{sp.label} is held by {', '.join(h.describe() for h in hs)}, which is "
                     "configured for the same port (see static-port-duplicate)" for sp, hs in j.shared)
    free = [sp.label for sp in j.reg.statics
            if not any(sp is o[0] for o in j.own_ok) and not any(sp is o[0] for o in j.shared)]
    text = "netstat shows no process outside the configured services on the static ports."
    text += f" {mine}." if mine else ""
    text += f" {twin}." if twin else ""
    text += f" Not bound when netstat ran, with nothing of theirs missing: {'; '.join(free)}." if free else ""
    return ruled_out(text, *[ev_reg(sp.reg) for sp in j.reg.statics],
                     *[ev(h.row) for _, hs, _ in j.own_ok for h in hs])


@causes("static-port-in-use", "A static Exchange RPC port is held by another process")
def static_port_in_use(j: Judged) -> Verdict:
    """KB 926210's cause: a static port is held by a process that is not the
    service configured for it, and the interfaces the port carries are
    missing from the endpoint map (the service does not try another port)."""
    if j.conflicts:
        return _conflicts(j)
    statics = j.reg.statics
    lost = [sp for sp in statics if sp.protocol == TCP and any(u in j.missing for u in sp.interfaces)]
    carried = sorted({u for sp in lost for u in sp.interfaces if u in j.missing})
    if lost and not j.has_netstat:
        j.collect.extend([j.fmt("netstat"), j.fmt("tasklist")])
        j.explained.update(carried)
        return likely(f"Static ports are configured ({_labels(lost)}) and the interfaces they carry are "
                      f"missing: {_names(carried)}. KB 926210: the service does not try another port when "
                      "its static port is taken. No netstat -ano was collected to name the process "
                      "holding it.", *[ev_reg(sp.reg) for sp in lost], fix=_unknown_holder(j, lost))
    free_lost = [sp for sp in lost if not j.holders_on(sp.port)]
    if free_lost:
        names = _names(u for sp in free_lost for u in sp.interfaces if u in j.missing)
        return possible(f"Static ports are configured ({_labels(free_lost)}) and the interfaces they carry "
                        f"are missing ({names}), but no process holds the port when netstat ran. A process "
                        "that held it when the service started may have exited since: KB 926210's service "
                        "does not retry.", *[ev_reg(sp.reg) for sp in free_lost],
                        fix=[kb()["remediation_templates"]["in_use_free_now"].format(
                            server=j.server_name, labels=_labels(free_lost),
                            services=", ".join(dict.fromkeys(sp.service for sp in free_lost)))])
    if statics and j.has_netstat:
        return _held_by_own(j)
    if statics and j.has_dump:
        return ruled_out(f"Static ports are configured ({_labels(statics)}) and every interface they "
                         "carry is registered in the endpoint map.", *[ev_reg(sp.reg) for sp in statics])
    if statics:
        j.collect.extend([j.fmt("netstat"), j.fmt("tasklist")])
        return possible(f"Static ports are configured ({_labels(statics)}), but neither an endpoint dump "
                        "nor netstat shows whether they were bound.", *[ev_reg(sp.reg) for sp in statics],
                        fix=_unknown_holder(j, statics))
    return _no_statics(j, kb()["remediation"])


def _no_statics(j: Judged, fix: list[str]) -> Verdict:
    """No static port found: a fact when the service keys were read, a gap
    (collect the registry) when the interfaces are missing or unknown."""
    if j.reg.reg_known:
        return ruled_out("No static RPC port (KB 270836 values) is set for the Exchange services in "
                         "the current control set: the endpoint mapper assigns dynamic ports.",
                         *service_key_evidence(j))
    if j.missing or not j.has_dump:
        j.collect.append(j.fmt("services_export" if j.reg.system_paths else "hive"))
        return possible(unread_registry(j), fix=list(fix))
    return ruled_out("Every expected Exchange interface is registered in the endpoint map.")


def _clash_groups(j: Judged) -> tuple[list[list[StaticPort]], list[list[StaticPort]]]:
    """Ports set for two values: real clashes (different services and
    images) and values one process serves (mad.exe's NSPI and RFR ports)."""
    by_port: dict[int, list[StaticPort]] = defaultdict(list)
    for sp in j.reg.statics + j.reg.others:
        by_port[sp.port].append(sp)
    clashes, same_proc = [], []
    for _, sps in sorted(by_port.items()):
        if len(sps) < 2 or not any(s.exchange for s in sps):
            continue
        if len({s.service for s in sps}) > 1 and len({tuple(s.images) for s in sps}) > 1:
            clashes.append(sps)
        else:
            same_proc.append(sps)
    return clashes, same_proc


def _latent(j: Judged, clashes: list[list[StaticPort]], parts: list[str]) -> None:
    """A complete endpoint map despite a clash: who holds the port now."""
    weak = set(kb()["not_exchange_evidence"])
    for sps in clashes:
        holders = j.holders_on(sps[0].port)
        owner = next((s for s in sps for h in holders if owned_by(h, s.images, s.service)), None)
        if owner is not None:
            h = next(h for h in holders if owned_by(h, owner.images, owner.service))
            parts.append(f"{h.short()} ({owner.service}) holds port {sps[0].port} now.")
        masked = sorted({iface_name(u) for s in sps if s.exchange for u in s.interfaces
                         if u in weak and u in j.present_rows})
        if masked and any(not s.exchange for s in sps):
            parts.append(f"The dump's {', '.join(masked)} entry does not tell which service bound the "
                         "port: the other service registers the same interface UUID itself.")
    parts.append("The endpoint map is complete now, but only one of the services can bind the port: "
                 "the clash bites whenever the other starts first.")


def _clashes(j: Judged, clashes: list[list[StaticPort]]) -> Verdict:
    tpl = kb()["remediation_templates"]
    verdict, parts, evidence, fixes = "likely", [], [], []
    for sps in clashes:
        lost = sorted({u for s in sps for u in s.interfaces if u in j.missing and s.protocol == TCP})
        parts.append(f"Port {sps[0].port} is configured for " + " and ".join(
            f"{s.label} ({s.display}, {'/'.join(s.images)})" for s in sps)
            + ": only the service that starts first can bind it.")
        if lost:
            verdict = "confirmed"
            j.explained.update(lost)
            parts.append(f"Missing from the endpoint map: {_names(lost)}.")
        evidence += [ev_reg(s.reg) for s in sps]
        fixes.append(tpl["duplicate"].format(
            port=sps[0].port, server=j.server_name,
            labels=" and ".join(f"{s.service} \"{s.value_name}\" ({s.key})" for s in sps),
            services=", ".join(dict.fromkeys(s.service for s in sps if s.exchange))))
    if j.has_dump and not any(u in j.missing for sps in clashes for s in sps for u in s.interfaces):
        verdict = "likely"
        _latent(j, clashes, parts)
    return Verdict(verdict, " ".join(parts), remediation=fixes).cite(*evidence)


@causes("static-port-duplicate", "Two services are configured to the same static port")
def static_port_duplicate(j: Judged) -> Verdict:
    """KB 270836: each value needs its own port. Two services configured to
    one port: only the one that starts first binds it."""
    clashes, same_proc = _clash_groups(j)
    if clashes:
        return _clashes(j, clashes)
    every = j.reg.statics + j.reg.others
    if same_proc:
        return ruled_out(" ".join(
            f"Port {sps[0].port} is set for " + " and ".join(s.label for s in sps)
            + f", all served by one process ({'/'.join(sps[0].images)}), which listens once "
            "for all of them; KB 270836 still recommends a separate port per value."
            for sps in same_proc), *[ev_reg(s.reg) for sps in same_proc for s in sps])
    if j.reg.reg_known or every:
        return ruled_out("No two configured static ports are equal." if len(every) > 1
                         else "At most one static port is configured, so none can be duplicated.",
                         *[ev_reg(s.reg) for s in every])
    if not j.has_dump or j.missing:
        j.collect.append(j.fmt("services_export" if j.reg.system_paths else "hive"))
        return possible(unread_registry(j), fix=[])
    return ruled_out("Every expected Exchange interface is registered in the endpoint map.")


def _owners(j: Judged, rest: list[str]) -> tuple[dict, list[str], dict, dict, list, list]:
    """The services that own the unexplained interfaces: running (tasklist
    /svc), stopped, and what Service Control Manager said about them."""
    owners = {svc: info for svc, info in kb()["services"].items()
              if any(u in sp["interfaces"] for sp in info["static_ports"] for u in rest)
              and svc in j.profile["services"]}
    evidence, notes, stopped, running, scm = [], [], [], {}, {}
    if j.has_tasklist:
        for svc, info in owners.items():
            procs = [p for p in j.srv.processes
                     if any(str(s).lower() == svc.lower() for s in p["_data"].get("services") or [])
                     or str(p["_data"].get("image") or "").lower() in info["images"]]
            if procs:
                running[svc] = procs[0]
                notes.append(f"{svc} runs as {procs[0]['_data'].get('image')} (PID {procs[0]['_data'].get('pid')})")
                evidence.append(ev(procs[0]))
            else:
                stopped.append(svc)
        if stopped:
            notes.append("tasklist /svc shows no process for " + ", ".join(stopped))
    for svc, info in owners.items():
        hits = sorted((e for e in j.srv.service_events if names_service(e, svc, info["display"])),
                      key=lambda e: str(e.get("ts") or ""))
        if hits:
            scm[svc] = hits
            evidence += [ev(e) for e in hits[-3:]]
            notes.append(f"the System log has {describe_events(hits)} for {info['display']}")
    return owners, stopped, running, scm, evidence, notes


def _missing_fixes(j: Judged, owners: dict, running: dict, scm: dict) -> list[str]:
    tpl = kb()["remediation_templates"]
    fixes = []
    for svc, info in owners.items():
        why = (tpl["missing_why_events"].format(events=describe_events(scm[svc]), service=svc)
               if svc in scm else tpl["missing_why_none"].format(service=svc))
        fixes.append(tpl["missing_restart" if svc in running else "missing_start"].format(
            display=info["display"], service=svc, server=j.server_name, why=why))
    if not j.has_tasklist:
        j.collect.append(j.fmt("services", services=" ".join(owners) or "MSExchangeIS"))
    if not j.srv.has_system_log:
        j.collect.append(j.fmt("system_log"))
    if not j.srv.has_app_log:
        j.collect.append(j.fmt("application_log", services=" / ".join(owners) or "MSExchangeIS"))
    return fixes


@causes("endpoints-missing", "Exchange endpoints missing without a static-port conflict (service stopped "
        "or failing to register)")
def endpoints_missing(j: Judged) -> Verdict:
    """Interfaces missing with no static port to blame: the service that
    registers them is stopped (tasklist /svc, Service Control Manager
    events) or running but failing to register."""
    if not j.has_dump:
        return possible("No endpoint-mapper dump of this server is in the case, so registered "
                        "interfaces cannot be compared with KB 926210's list.")
    rest = [u for u in j.missing if u not in j.explained]
    if not j.missing:
        return ruled_out("Every interface KB 926210 lists is in the ncacn_ip_tcp section.")
    if not rest:
        return ruled_out("The missing interfaces are explained by the static-port conflict above.")
    owners, stopped, running, scm, evidence, notes = _owners(j, rest)
    static_for = [sp.label for sp in j.reg.statics if set(sp.interfaces) & set(rest)]
    text = f"Missing from the endpoint map: {_names(rest)}."
    if owners and stopped and len(stopped) == len(owners):
        v = confirmed(text + " The services that register them are not running.")
    elif owners and not j.has_tasklist and len(scm) == len(owners) and not static_for:
        v = likely(text + " The services that register them stopped or failed to start (System log).")
    elif j.reg.reg_known and not static_for:
        v = likely(text + " No static port is configured for them, so no port conflict can keep them "
                   "out: the service is stopped, still starting, or failing to register.")
    else:
        v = possible(text + ("" if j.reg.reg_known else " " + unread_registry(j)))
    if notes:
        v.also("; ".join(notes) + ".")
    v.remediation = _missing_fixes(j, owners, running, scm)
    return v.cite(*evidence)
