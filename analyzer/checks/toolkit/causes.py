"""Causes: one function per cause, declared with its id, returning a verdict.

A check's causes read like the paragraphs of the article they encode::

    causes = CauseTable()

    @causes("publish-failed", "The {name} DCOM application ran but failed to publish")
    def publish_failed(f: Facts) -> Verdict:
        if f.latest == "publish_failed":
            return confirmed("MOM logged 10000 ...", *f.rows("publish_failed"))
        ...

Each function gets the facts of one host and returns a :class:`Verdict`;
:meth:`CauseTable.weigh` turns them into ranked :class:`~analyzer.findings.Cause`
objects, with the title formatted from the facts, evidence cited once, and
the rule of :class:`Absence` applied: a verdict that rests only on what is
missing is at most ``likely``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ...findings import Cause, Evidence, Verdict as VerdictName


@dataclass
class Absence(Evidence):
    """Evidence that something is *not* in a complete source: the file that
    would hold it, located at the missing key (or event, or line).

    Only :func:`analyzer.checks.toolkit.host.Host.absent` makes one, after
    checking that the source is complete and the thing is expected in the
    host's world.
    """


@dataclass
class Verdict:
    """What one cause function concluded."""

    verdict: VerdictName
    explanation: str
    evidence: list[Evidence] = field(default_factory=list)
    #: Remediation for this outcome; None takes the cause's declared remediation.
    remediation: list[str] | None = None

    def cite(self, *items: Any) -> "Verdict":
        """Add evidence (table rows, RegValues or Evidence); returns self."""
        self.evidence += [e for e in (as_evidence(i) for i in items) if e is not None]
        return self

    def also(self, text: str) -> "Verdict":
        """Append a sentence to the explanation; returns self."""
        self.explanation = f"{self.explanation} {text}".strip()
        return self


def as_evidence(item: Any) -> Evidence | None:
    """Evidence from a table row (dict or Series), a RegValue or an Evidence."""
    if item is None:
        return None
    if isinstance(item, Evidence):
        return item
    row = getattr(item, "row", None)
    if isinstance(row, dict) and row:
        return Evidence.from_row(row)
    return Evidence.from_row(item)


def _make(name: VerdictName) -> Callable[..., Verdict]:
    def make(explanation: str, *evidence: Any, fix: Iterable[str] | None = None) -> Verdict:
        return Verdict(name, explanation, remediation=list(fix) if fix is not None else None).cite(*evidence)
    make.__name__ = name
    make.__doc__ = f"A ``{name}`` verdict with its explanation and evidence (rows or Evidence)."
    return make


confirmed = _make("confirmed")
likely = _make("likely")
possible = _make("possible")
ruled_out = _make("ruled_out")


def dedupe(items: Iterable[Evidence]) -> list[Evidence]:
    """Evidence cited once per list (by file and locator), first citation kept."""
    seen: set[tuple[str, str]] = set()
    out = []
    for e in items:
        k = (e.path, e.locator)
        if k not in seen:
            seen.add(k)
            out.append(e)
    return out


def cap_absence(v: Verdict) -> Verdict:
    """Absence as proof, one rule: a verdict whose only evidence is what is
    missing is at most ``likely`` (something present must corroborate a
    ``confirmed``)."""
    if v.verdict == "confirmed" and v.evidence and all(isinstance(e, Absence) for e in v.evidence):
        v.verdict = "likely"
        v.also("(Only the absence shows it: likely, not confirmed.)")
    return v


@dataclass
class _Declared:
    id: str
    title: str | Callable[[Any], str]
    fn: Callable[[Any], Verdict]
    remediation: Callable[[Any], list[str]] | None


class CauseTable:
    """The causes of one check, in declaration order (the article's order)."""

    def __init__(self) -> None:
        self.declared: list[_Declared] = []

    def __call__(self, cause_id: str, title: str | Callable[[Any], str],
                 remediation: Callable[[Any], list[str]] | None = None
                 ) -> Callable[[Callable[[Any], Verdict]], Callable[[Any], Verdict]]:
        """Decorator: register a cause function under its id. ``title`` may
        hold ``{fields}`` filled from ``facts.words()`` (when the facts have it); ``remediation``
        (facts -> list of steps) is used when the verdict brings none."""
        if any(d.id == cause_id for d in self.declared):
            raise ValueError(f"cause {cause_id!r} declared twice")

        def deco(fn: Callable[[Any], Verdict]) -> Callable[[Any], Verdict]:
            self.declared.append(_Declared(cause_id, title, fn, remediation))
            return fn
        return deco

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.declared]

    def weigh(self, facts: Any, only: Iterable[str] | None = None) -> list[Cause]:
        """Every declared cause (or the ``only`` ones, in that order) judged on
        ``facts``; causes come back in declaration order (ranking is the
        finding's job)."""
        words = facts.words() if hasattr(facts, "words") else {}
        table = {d.id: d for d in self.declared}
        out = []
        for cid in (only if only is not None else self.ids):
            d = table[cid]
            v = cap_absence(d.fn(facts))
            title = d.title(facts) if callable(d.title) else d.title.format(**words) if words else d.title
            fix = v.remediation if v.remediation is not None else (
                d.remediation(facts) if d.remediation else [])
            out.append(Cause(d.id, title, v.verdict, v.explanation, dedupe(v.evidence), list(fix)))
        return out
