"""The causes of store.exe crashing, one function each.

"Information Store Crashing, Exchange 2007": store.exe faults in EXCDO.DLL
when an Entourage client opens a badly formed ICS calendar item; Microsoft
support identified the bug and the fix was to ship in Exchange 2007 SP1
Update Rollup 6. Any other faulting module is reported as what it is, with
its version, how often and what to collect.
"""
from __future__ import annotations

from typing import Any

from ...findings import Evidence
from ..toolkit import CauseTable, Verdict, confirmed, likely, possible, ruled_out
from .facts import Facts, Module

causes = CauseTable()


def crash_ev(r: dict[str, Any]) -> Evidence:
    d = r["_data"]
    return Evidence.from_row(r, f"{r.get('provider')} {r.get('event_id')}: {d.get('app')} {d.get('app_version') or ''} "
                                f"faulting module {d.get('module')} {d.get('module_version') or ''}, exception "
                                f"{d.get('exception_code') or '?'}, offset {d.get('offset') or '?'}")


def _cite(m: Module) -> list[Evidence]:
    """The first and the last crash of a module (the count is in the text)."""
    rows = m.rows if m.count <= 2 else [m.rows[0], m.rows[-1]]
    return [crash_ev(r) for r in rows]


def _fixed(f: Facts) -> tuple[bool | None, str, list[Any]]:
    """Is the host at the build the blog names for the EXCDO fix? (answer,
    how the build is known, its evidence)."""
    spec = f.kb["excdo"]
    b = f.build
    if b is None or getattr(b, "certainty", "unknown") == "unknown":
        return None, "the Exchange build is not in the case", []
    have = f"{b.product or 'Exchange'} build {b.build} ({b.certainty.replace('_', ' ')})"
    return b.at_least(spec["fixed_in"]), have, list(b.evidence[:2])


def _excdo_fix(f: Facts) -> list[str]:
    return list(f.kb["excdo"]["remediation"])


@causes("excdo-calendar-bug", "store.exe crashes in EXCDO.DLL: the Entourage/ICS calendar bug of Exchange 2007 "
        "before SP1 Update Rollup 6", remediation=_excdo_fix)
def excdo_calendar_bug(f: Facts) -> Verdict:
    """The blog's case: "store.exe is crashing due to EXCDO.DLL" on an
    Exchange 2007 mailbox server; "MS will provide a fix to this issue in
    Update Rollup 6" (Exchange 2007 SP1 UR6 = 8.1.340.1)."""
    spec = f.kb["excdo"]
    mods = f.excdo()
    if not f.app_log:
        return possible("No Application log in the case to see in which module store.exe faults.")
    if not mods and f.unread:
        return possible(f"{len(f.unread)} Application Error event(s) could not be read (faulting application "
                        "and module unknown).", *f.unread[:2])
    if not mods:
        where = (", ".join(f"{m.name} ({m.count})" for m in f.modules) if f.modules else None)
        return ruled_out("store.exe never faulted in EXCDO.DLL" + (f"; its crashes are in {where}." if where else
                         " in the Application log."), *([crash_ev(m.rows[0]) for m in f.modules[:2]] or f.app_bounds))
    n = sum(m.count for m in mods)
    ev = [e for m in mods for e in _cite(m)]
    text = f"store.exe faulted in EXCDO.DLL {n} time(s) ({'; '.join(m.label() + ', ' + m.span() for m in mods)})"
    b = f.build
    if b is not None and b.major is not None and b.major != spec["product_major"]:
        return ruled_out(f"{text}, but this is Exchange {b.version} (build {b.build}): the calendar crash the "
                         "blog reports is of Exchange 2007.", *ev, *[x for x in b.evidence[:1]])
    fixed, have, bev = _fixed(f)
    if fixed:
        return possible(f"{text}, but {have} already has {spec['fixed_in_label']}, where the reporting blog "
                        "says the calendar crash is fixed (no KB fix entry confirms it): a crash in EXCDO.DLL "
                        "on this build is another bug or a fix that does not cover it.", *ev, *bev,
                        fix=[])
    offsets = {str(r["_data"].get("offset") or "").lower() for m in mods for r in m.rows}
    same = bool(offsets & {o.lower() for o in spec["offsets"]})
    if fixed is False:
        sure = confirmed if same else likely
        v = sure(f"{text}, on {have}, before {spec['fixed_in_label']}.", *ev, *bev)
        if same:
            v.also(f"The fault offset {spec['offsets'][0]} is the one the reporting blog quotes.")
        return v
    return likely(f"{text}; {have}, so whether {spec['fixed_in_label']} is installed cannot be told.", *ev, *bev)


@causes("faulting-module", lambda f: f"store.exe crashes in {module_title(f)}")
def faulting_module(f: Facts) -> Verdict:
    """Any crash of store.exe the EXCDO bug does not explain: name the
    module and version, how many crashes, first and last."""
    explained = _excdo_explains(f)
    rest = [m for m in f.modules if not (explained and m in f.excdo())]
    if rest:
        top = rest[0]
        fix = [s.format(module=top.name, version=f" {top.version}" if top.version else "")
               for s in f.kb["remediation"]["module"]]
        text = "; ".join(f"{m.label()}: {m.span()}" for m in rest)
        return confirmed(f"store.exe faulted in {text}.", *[e for m in rest for e in _cite(m)], fix=fix)
    if f.scm and not f.modules:
        fix = [s.format(module="the faulting module", version="") for s in f.kb["remediation"]["module"]]
        return likely(f"The Information Store service terminated unexpectedly {len(f.scm)} time(s) "
                      "(Service Control Manager), but no Application Error 1000 names the faulting module.",
                      *f.scm[:1], *f.scm[-1:], fix=fix)
    if not f.app_log:
        return possible("No Application log in the case to see whether store.exe crashes.")
    if f.unread:
        return possible(f"{len(f.unread)} Application Error event(s) could not be read (faulting application "
                        "and module unknown).", *f.unread[:2])
    if f.modules:
        return ruled_out("Every store.exe crash is in EXCDO.DLL, explained by the calendar bug.")
    return ruled_out("The Application log has no Application Error 1000 for store.exe"
                     + (" and the System log no termination of the Information Store service." if f.system_log else "."),
                     *f.app_bounds)


def _excdo_explains(f: Facts) -> bool:
    """The EXCDO crashes are the blog's bug (likely or confirmed): Exchange
    2007 (or a build not known) before the rollup."""
    b = f.build
    if b is not None and b.major is not None and b.major != f.kb["excdo"]["product_major"]:
        return False
    fixed, _, _ = _fixed(f)
    return bool(f.excdo()) and not fixed


def module_title(f: Facts) -> str:
    rest = [m for m in f.modules if not (_excdo_explains(f) and m in f.excdo())]
    return rest[0].label() if rest else "another module"
