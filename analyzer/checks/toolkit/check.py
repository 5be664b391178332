"""The base class of a check built on the toolkit.

A check declares what it is and what it reads, and writes one method,
:meth:`ToolkitCheck.judge`, that turns one host's facts into a finding::

    @register
    class MyCheck(ToolkitCheck):
        id = "my-check"
        title = "..."
        description = "..."
        needs = ("event",)                      # row kinds; none in the case -> not_applicable
        knowledge = "my_check"                  # analyzer/knowledge/my_check.yaml, loaded once
        registry_keys = (KeySpec("HKLM\\\\SOFTWARE\\\\...", why="..."),)   # loaded by targeted hive loads
        world = World(exchange=("2000/2003",), elsewhere="KB ... does not apply")

        def judge(self, host, applies):          # -> Finding
            ...

``run`` does the rest: ``not_applicable`` when the case has no row of a kind
in ``needs`` or nothing of the check's world (:meth:`subjects`), one host at
a time (:meth:`analyzer.case.Case.per_host`), ``not_applicable`` with the
reason for a host of another world, and for a host whose world is unknown
no ``confirmed`` cause and no ``problem`` (:func:`at_most_inconclusive`).
"""
from __future__ import annotations

from typing import Any, ClassVar

from ... import knowledge as _knowledge
from ...findings import Finding
from ...registry import KeySpec
from .. import Check
from .finding import not_applicable
from .host import Host
from .world import Applicability, World, decide


class ToolkitCheck(Check):
    #: Name of the check's knowledge YAML (analyzer/knowledge/<name>.yaml).
    knowledge: ClassVar[str | None] = None
    #: Registry subtrees the check reads; a targeted hive load reads them.
    registry_keys: ClassVar[tuple[KeySpec, ...]] = ()
    #: The world the check applies to (None: every host).
    world: ClassVar[World | None] = None

    @property
    def kb(self) -> Any:
        """The check's knowledge, parsed once per process (cached)."""
        return _knowledge.load(self.knowledge) if self.knowledge else {}

    def reference_list(self) -> list[str]:
        refs = self.kb.get("references") if isinstance(self.kb, dict) else None
        return list(refs or self.references)

    # ---- the steps a check may refine -----------------------------------------
    def subjects(self, case: Any) -> set[str] | None:
        """Host keys to judge; None = every host; an empty set = nothing of
        the check's world in the case (one ``not_applicable``)."""
        return None

    def nothing_here(self) -> str:
        """Why the check does not apply when :meth:`subjects` finds nothing."""
        return f"Nothing in this case is in the world of {self.id}."

    def in_world(self, host: Host) -> bool:
        """The check's own proof that ``host`` is in its world (when the
        Exchange generation is not known from the case)."""
        return False

    def applies(self, host: Host) -> Applicability:
        if self.world is None:
            return Applicability("in", "")
        return decide(self.world, host, self.in_world(host))

    def judge(self, host: Host, applies: Applicability) -> Finding:
        raise NotImplementedError

    # ---- the driver --------------------------------------------------------------
    def lacks_needs(self, case: Any) -> Finding | None:
        """``not_applicable`` when the case holds no row of a kind in
        :attr:`needs` (nothing this check reads), else None."""
        kinds = {str(k) for k in case.table["kind"].dropna().unique()} if len(case.table) else set()
        if self.needs and not kinds & set(self.needs):
            return not_applicable(self, only_host(case), "The case holds no rows of the kinds this check reads "
                                  f"({', '.join(self.needs)}).")
        return None

    def run(self, case: Any) -> list[Finding]:
        lacking = self.lacks_needs(case)
        if lacking is not None:
            return [lacking]
        subjects = self.subjects(case)
        if subjects is not None and not subjects:
            return [not_applicable(self, only_host(case), self.nothing_here())]
        findings = []
        for part in case.per_host(subjects):
            host = Host.of(case, part)
            applies = self.applies(host)
            if applies.state == "out":
                findings.append(not_applicable(self, host.name, applies.reason, applies.evidence))
                continue
            finding = self.judge(host, applies)
            if applies.state == "unknown":
                at_most_inconclusive(finding, applies)
            findings.append(finding)
        return findings

    def within_world(self, case: Any, findings: list[Finding]) -> list[Finding]:
        """For a check that groups hosts its own way: every host whose
        Exchange generation the case shows to be outside :attr:`world` gets
        ``not_applicable`` with the reason instead of a verdict."""
        from ...hosts import host_key
        if self.world is None:
            return findings
        outs = {}
        for part in case.per_host():
            host = Host.of(case, part)
            applies = decide(self.world, host)
            if applies.state == "out" and part.key is not None:
                outs[part.key] = not_applicable(self, part.name, applies.reason, applies.evidence)
        if not outs:
            return findings
        kept = [f for f in findings if host_key(f.host) not in outs
                and not (f.host is None and f.status == "not_applicable")]
        return kept + list(outs.values())


def at_most_inconclusive(finding: Finding, applies: Applicability) -> None:
    """World unknown: no cause stays ``confirmed`` and the finding is neither
    a ``problem`` nor ``ok`` -- the case does not show the check's subject is
    there."""
    changed = False
    for c in finding.causes:
        if c.verdict == "confirmed":
            c.verdict = "likely"
            changed = True
    if finding.status in ("problem", "ok"):
        finding.status, finding.severity = "inconclusive", "warning"
        changed = True
    if changed:
        finding.summary += (f" (The case does not show which Exchange this server runs "
                            f"({applies.reason}); the verdict stays open.)")


def only_host(case: Any) -> str | None:
    """The case's machine when it holds exactly one: a case-level finding is
    then about that host; with several (or none) it stays case-wide."""
    hosts = list(getattr(case, "hosts", []) or [])
    return hosts[0] if len(hosts) == 1 else None
