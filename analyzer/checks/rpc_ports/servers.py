"""Which servers the case shows, and each one's rows.

A server is a host with Exchange evidence: an Exchange interface in the
endpoint map (not the NSPI interface a Global Catalog registers itself), an
Exchange service key in its SYSTEM registry, an Exchange process. Evidence
named only by an IP address (``rpcdump /s 10.0.0.5``) or by no host at all
(a hive) belongs to the one named server; with none named, the server is
the computer the KB's 529 logon failures were logged on.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ...hosts import host_key, is_ip
from ...query import host_codes, provider_aliases, select, select_mask, text_in
from ...registry import RegistryView
from ...table import filter_rows
from ..toolkit import records
from .model import Server, is_symptom, kb, may_be_symptom, uuid_of


def _security(ev: dict[str, Any]) -> bool:
    """The provider decides what 529/681/4625/4776 mean: only the Security
    audit provider's events are the symptom (another source may reuse the
    number). A row without a provider (a bare text export) is taken from
    its channel."""
    prov = (ev.get("provider") or "").strip().lower()
    if prov:
        return prov in provider_aliases(kb()["symptom_provider"])
    return (ev.get("channel") or "").strip().lower() == "security"


def _exchange_hosts(endpoints: list[dict], processes: list[dict], reg: RegistryView,
                    names: dict[str | None, str]) -> set[str | None]:
    k = kb()
    expected_all = {u for p in k["profiles"] for u in p["expected"]}
    weak = set(k["not_exchange_evidence"])
    images = {i for s in k["services"].values() for i in s["images"]}
    svc_names = {s.lower() for s in k["services"]}
    out: set[str | None] = set()
    for e in endpoints:
        u = uuid_of(e["_data"].get("uuid"))
        if u in expected_all and u not in weak:
            out.add(host_key(e.get("host")))
            names.setdefault(host_key(e.get("host")), e.get("host"))
    for h in {host_key(x) for x in reg.frame()["host"].astype(object).tolist()}:
        view = reg.for_host(h, hostless=False) if h is not None else reg.for_host(None, hostless=True)
        if any(view.key_exists(x) for x in k["exchange_keys"]):
            out.add(h)
    for p in processes:
        d = p["_data"]
        if str(d.get("image") or "").lower() in images or any(
                str(s).lower() in svc_names for s in d.get("services") or []):
            out.add(host_key(p.get("host")))
    return out


def _logon_computer(symptoms: list[dict]) -> str | None:
    """The 529's Computer, if unique: the server the client tried (a DC's
    681/4776 does not name the Exchange server)."""
    hs = {host_key(e.get("host")) for e in symptoms if e.get("event_id") in (529, 4625)}
    hs.discard(None)
    return next(iter(hs)) if len(hs) == 1 else None


def find_servers(df: pd.DataFrame) -> list[Server]:
    """The servers to judge, each with its endpoints, sockets, processes,
    symptoms and registry rows."""
    ids = [s["event_id"] for s in kb()["symptom_events"]]
    failed = filter_rows(df, may_be_symptom(df, select_mask(df, kind="event", event_id=ids)))
    symptoms = [e for e in records(failed) if _security(e) and is_symptom(e)]
    endpoints = records(select(df, kind="endpoint"))
    sockets = records(select(df, kind=["listener", "connection"]))
    processes = records(select(df, kind="process"))
    reg = RegistryView(df)
    names: dict[str | None, str] = {}
    ex_hosts = _exchange_hosts(endpoints, processes, reg, names)
    for r in endpoints + symptoms:  # a dump taken from a client names the server
        if host_key(r.get("host")) is not None:
            names.setdefault(host_key(r.get("host")), r.get("host"))
    named = {h for h in ex_hosts if h is not None and not is_ip(h)}
    if not ex_hosts:
        if not symptoms:
            return []
        key = _logon_computer(symptoms)
        return [Server(key, names.get(key) if key else None, symptoms=list(symptoms))]
    if len(named) == 1:
        target = next(iter(named))
        groups = {target: {target} | {h for h in ex_hosts if h is None or is_ip(h)} | {None}}
    elif not named:
        target = _logon_computer(symptoms)
        groups = {target: set(ex_hosts) | {None, target}}
    else:
        groups = {h: {h} for h in sorted(named)}
    single = len(groups) == 1
    out = []
    for key, members in groups.items():
        srv = Server(key, names.get(key) or key)
        srv.endpoints = [e for e in endpoints if host_key(e.get("host")) in members]
        srv.sockets = [s for s in sockets if host_key(s.get("host")) in members]
        srv.processes = [p for p in processes if host_key(p.get("host")) in members]
        srv.symptoms = [e for e in symptoms if single or host_key(e.get("host")) in members]
        mine = reg.frame()["host"].astype(object).map(host_key).isin(members)
        if None in members:
            mine |= reg.frame()["host"].isna()
        srv.registry_df = reg.frame()[mine.to_numpy()] if mine.any() else None
        out.append(srv)
    return out


def attach_logs(df: pd.DataFrame, servers: list[Server]) -> None:
    """Give each server its Service Control Manager events and note which
    of its logs the case holds: endpoints-missing cites the SCM event that
    says the service stopped, and asks only for the logs that are absent."""
    spec = kb()["service_events"]
    events = select_mask(df, kind="event")
    if not events.any():
        return
    # Masks over the whole table: a copy of its event rows would be all of
    # a large Security log's text.
    codes, keys = host_codes(df)
    system = events & text_in(df["channel"], ["system"])
    application = events & text_in(df["channel"], ["application"])
    scm_rows = records(select(df, within=events, provider=spec["provider"], event_id=spec["event_ids"]))
    scm_hosts = [host_key(r.get("host")) for r in scm_rows]
    single = len(servers) == 1
    code_of = {k: i for i, k in enumerate(keys)}
    for srv in servers:
        # One server owns every row; of several, each its own and the
        # host-less ones.
        mine = None if single else (codes == code_of.get(srv.key, -2)) | (codes < 0)
        srv.has_system_log = bool(system.any() if mine is None else (mine & system).any())
        srv.has_app_log = bool(application.any() if mine is None else (mine & application).any())
        srv.service_events = [r for r, h in zip(scm_rows, scm_hosts) if single or h == srv.key or h is None]
        # A .evt whose log name could not be read still is the System log
        # when Service Control Manager wrote in it.
        srv.has_system_log = srv.has_system_log or bool(srv.service_events)
