"""Applicability is evidence: which world a host is in, decided from the case.

A check declares the world it applies to (:class:`World`: the Exchange
generations, and a sentence naming what does not apply elsewhere). Per host
the toolkit reads the generation from the case (:func:`exchange_generation`:
``analyzer.builds.host_build`` when that module is present, else the version
keys, ``Exchange\\Setup`` build and setup logs listed in
``knowledge/applicability.yaml``) and answers ``in``, ``out`` (the finding is
``not_applicable`` with the reason) or ``unknown`` (the check may say at most
``inconclusive``: no confirmed cause, no problem).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ... import knowledge
from ...findings import Evidence
from .causes import as_evidence

State = Literal["in", "out", "unknown"]


@dataclass(frozen=True)
class World:
    """The products a check applies to.

    ``exchange``: Exchange generations (``"2000/2003"``, ``"2007+"``);
    ``elsewhere``: what does not apply on another generation, completing
    "Exchange 2007 server: ..." (e.g. "the EMPKP helper does not apply").
    """

    exchange: tuple[str, ...]
    elsewhere: str


@dataclass
class Generation:
    """The Exchange generation of a host and the rows that show it."""

    generation: str | None          # "2000/2003" | "2007+" | None (unknown or conflicting)
    product: str | None = None      # "Exchange 2007", ...
    reasons: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Applicability:
    state: State
    reason: str
    evidence: list[Evidence] = field(default_factory=list)


def _from_builds(host: Any) -> Generation | None:
    """The host's build (:attr:`Host.build`, ``analyzer.builds.host_build``):
    its ``family`` is ``2000/2003`` or ``2007+``."""
    info = host.build
    family = getattr(info, "family", None)
    if family not in ("2000/2003", "2007+"):
        return None
    release = getattr(info, "release", None)
    product = getattr(release, "product", None) or getattr(info, "product", None)
    ev = [e for e in (as_evidence(r) for r in getattr(info, "evidence", [])[:2]) if e]
    return Generation(family, product, [f"build {getattr(info, 'build', None) or '?'}"]
                      + list(getattr(info, "notes", []))[:1], ev)


def exchange_generation(host: Any) -> Generation:
    """The generation of the host's Exchange, from its registry and setup
    logs (or the build function); ``generation`` is None when nothing says
    or the evidence disagrees."""
    found = _from_builds(host)
    if found is not None:
        return found
    kb = knowledge.load("applicability")
    seen: dict[str, Generation] = {}

    def note(gen: str, product: str, reason: str, row: Any) -> None:
        g = seen.setdefault(gen, Generation(gen, product))
        g.reasons.append(reason)
        e = as_evidence(row)
        if e is not None:
            g.evidence.append(e)

    reg = host.registry
    for spec in kb["generation_keys"]:
        under = reg.under(spec["key"])
        if under:
            note(spec["generation"], spec["product"], f"{spec['key']} exists", under[0])
    legacy = kb["legacy_setup"]
    for name in legacy["values"]:
        v = reg.get(legacy["key"], name)
        if v is not None and v.as_int is not None and 0 < v.as_int < legacy["below"]:
            note("2000/2003", "Exchange 2000/2003", f"Exchange\\Setup {name} {v.as_int}", v.row)
            break
    setup = host.kind("setup_line", "setup_process")
    for src, spec in kb["setup_sources"].items():
        hit = setup[setup["source"].astype("string").fillna("") == src]
        if len(hit):
            note(spec["generation"], spec["product"], f"{hit['path'].iloc[0]}", hit.iloc[0])
    if len(seen) != 1:
        both = [r for g in seen.values() for r in g.reasons]
        return Generation(None, None, both, [e for g in seen.values() for e in g.evidence])
    return next(iter(seen.values()))


def decide(world: World, host: Any, in_world_evidence: bool = False) -> Applicability:
    """``in``/``out``/``unknown`` for one host. ``in_world_evidence`` is the
    check's own proof that the host is in its world (e.g. Exchange MOM
    events exist only where the Exchange 2000/2003 Management Pack runs)."""
    gen = host.generation
    if gen.generation in world.exchange or (gen.generation is None and in_world_evidence):
        return Applicability("in", "; ".join(gen.reasons), gen.evidence)
    if gen.generation is not None:
        who = gen.product or f"Exchange {gen.generation}"
        return Applicability("out", f"{who} server ({'; '.join(gen.reasons)}): {world.elsewhere}.",
                             gen.evidence)
    why = ("; ".join(gen.reasons) + ": conflicting") if gen.reasons else "no Exchange version evidence"
    return Applicability("unknown", why, gen.evidence)
