"""Exchange 2007/2010 server roles of a host, decided from the case.

A transport diagnosis (back pressure, 451 DNS failures) applies to a Hub or
Edge Transport server, a store diagnosis to a Mailbox server; on a
multi-role Exchange 2007 server both apply. The roles come from the setup
role keys (``Exchange\\v8.0\\HubTransportRole``...: when the parent key was
read, its subkeys are the complete list, so a missing role is proof), the
role's services and processes, and the events only a role logs — all listed
in ``knowledge/exchange_roles.yaml``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import knowledge
from ...findings import Evidence
from ...query import select_mask
from ...table import search_text
from .causes import as_evidence
from .host import records


@dataclass
class Roles:
    """The roles a host shows (``transport``, ``mailbox``, ``client_access``,
    ``unified_messaging``), why, and whether the role list is complete."""

    roles: set[str] = field(default_factory=set)
    #: The setup role keys were read: a role not among them is not installed.
    listed: bool = False
    reasons: dict[str, list[str]] = field(default_factory=dict)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)

    def note(self, role: str, reason: str, row: Any = None) -> None:
        self.roles.add(role)
        self.reasons.setdefault(role, []).append(reason)
        e = as_evidence(row)
        if e is not None:
            self.evidence.setdefault(role, []).append(e)

    def has(self, role: str) -> bool | None:
        """True/False when the case decides, None when it cannot tell."""
        if role in self.roles:
            return True
        return False if self.listed else None

    def why(self, role: str) -> str:
        return "; ".join(dict.fromkeys(self.reasons.get(role, [])))

    def listed_names(self) -> str:
        return ", ".join(sorted(self.roles)) or "none"


def _registry(host: Any, kb: dict[str, Any], out: Roles) -> None:
    reg = host.registry
    for parent in kb["role_parents"]:
        subs = reg.subkeys(parent) if reg.key_exists(parent) else []
        known = {k.lower(): v for k, v in kb["role_keys"].items()}
        found = [s for s in subs if s.lower() in known]
        if found:
            out.listed = True
        for s in found:
            out.note(known[s.lower()], f"{parent}\\{s} exists", reg.any_row(f"{parent}\\{s}"))
    for svc, role in kb["services"].items():
        key = f"HKLM\\SYSTEM\\CurrentControlSet\\Services\\{svc}"
        if reg.key_exists(key):
            out.note(role, f"service {svc} is installed", reg.any_row(key))


def _activity(host: Any, kb: dict[str, Any], out: Roles) -> None:
    procs = {k.lower(): v for k, v in kb["processes"].items()}
    for r in records(host.kind("process")):
        image = str(r["_data"].get("image") or "").lower()
        if image in procs:
            out.note(procs[image], f"{r['_data'].get('image')} runs (tasklist)", r)
    for role, by_provider in kb["event_ids"].items():
        for provider, ids in by_provider.items():
            hit = host.events(provider=provider, event_id=ids)
            if len(hit):
                out.note(role, f"{provider} events {sorted(set(hit['event_id'].astype(int)))}", hit.iloc[0])
    for role, providers in kb["event_providers"].items():
        hit = host.events(provider=providers)
        if len(hit):
            out.note(role, f"{hit['provider'].iloc[0]} events", hit.iloc[0])
    for role, names in kb["service_names"].items():
        r = _service_logged(host, names, kb["service_message"])
        if r is not None:
            out.note(role, f"Service Control Manager logs the {_service_of(r, names)}", r)


def _names_service(r: dict[str, Any], names: list[str], wording: str) -> bool:
    """Whether a Service Control Manager row is about one of ``names``: a
    service name among its fields (an .evt row's insertion strings are a
    list), or the message's wording of it (``{name} service``,
    ``knowledge/exchange_roles.yaml``), so "Microsoft Exchange Transport
    Log Search" (a Mailbox server's service) is not "Microsoft Exchange
    Transport". Whitespace is collapsed: exported messages wrap lines."""
    wanted = {n.lower() for n in names}
    message = " ".join(str(r.get("message") or "").split()).lower()
    return bool(_field_texts(r) & wanted) or any(wording.format(name=n) in message for n in wanted)


def _field_texts(r: dict[str, Any]) -> set[str]:
    values: set[str] = set()
    for v in r["_data"].values():
        for item in v if isinstance(v, list) else [v]:
            if isinstance(item, str):
                values.add(" ".join(item.split()).lower())
    return values


def _service_of(r: dict[str, Any], names: list[str]) -> str:
    found = [n for n in names if n.lower() in _field_texts(r)]
    return (found or names)[0]


def _service_logged(host: Any, names: list[str], wording: str) -> dict[str, Any] | None:
    """The first Service Control Manager row of ``host`` about one of
    ``names`` (:func:`_names_service`), or None.

    The names are searched as text over the host's SCM rows first; only the
    rows holding one become records, a slice at a time: a busy server's
    System log holds hundreds of thousands of SCM 7036 events.
    """
    part = host.part
    scm = select_mask(part.table, kind="event", provider="Service Control Manager", within=part.mask)
    if not scm.any():
        return None
    # The names as RE2 patterns whose words may be apart by any blanks
    # (exported messages wrap lines), in the fields or the message.
    pattern = "|".join(r"\s+".join(re.escape(w) for w in n.split()) for n in names)
    found = search_text(part.table, "data", pattern, scm)
    found |= search_text(part.table, "message", pattern, scm & ~found)
    rows = np.flatnonzero(found)
    for start in range(0, len(rows), 256):
        mask = np.zeros(len(part.table), dtype=bool)
        mask[rows[start:start + 256]] = True
        for r in records(part.where(mask)):
            if _names_service(r, names, wording):
                return r
    return None


def exchange_roles(host: Any) -> Roles:
    """The Exchange roles of ``host`` (a toolkit :class:`Host`), cached on it."""
    cached = getattr(host, "_exchange_roles", None)
    if cached is not None:
        return cached
    kb = knowledge.load("exchange_roles")
    out = Roles()
    _registry(host, kb, out)
    _activity(host, kb, out)
    host._exchange_roles = out
    return out


def transport_applies(check: Any, host: Any, base: Any) -> Any:
    """Applicability of a Hub/Edge Transport diagnosis of Exchange 2007 or
    2010 (back pressure, 451 DNS failures), decided per host from the
    generation (``base``, the toolkit's answer) and the roles."""
    from .world import Applicability
    if base.state == "out":
        return base
    build = host.build
    if build.major is not None and build.major >= 15:
        return Applicability("out", f"Exchange {build.version} server (2013 or later): {check.world.elsewhere}.",
                             [e for e in (as_evidence(r) for r in build.evidence[:1]) if e is not None])
    roles = exchange_roles(host)
    has = roles.has("transport")
    if has:
        return Applicability("in", roles.why("transport"), roles.evidence.get("transport", [])[:2])
    if has is False:
        return Applicability("out", f"not a Hub or Edge Transport server (installed roles: "
                                    f"{roles.listed_names()}).",
                             [e for v in roles.evidence.values() for e in v][:2])
    return Applicability("out", "no Exchange 2007/2010 Hub or Edge Transport evidence (no transport role "
                                "key, MSExchangeTransport service, EdgeTransport.exe process or "
                                "15001-15007 event).")


class TransportRole:
    """Mixin for a :class:`~analyzer.checks.toolkit.ToolkitCheck` of the
    Exchange 2007/2010 Hub/Edge transport: the host is in the check's world
    when it shows the transport role (:func:`transport_applies`)."""

    def in_world(self, host: Any) -> bool:
        return bool(exchange_roles(host).has("transport"))

    def applies(self, host: Any) -> Any:
        return transport_applies(self, host, super().applies(host))  # type: ignore[misc]
