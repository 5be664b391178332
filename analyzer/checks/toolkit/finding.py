"""The finding builder every check shares.

Status, severity, ranking, evidence cited once, remediation merged once and
``collect`` de-duplicated are decided here, the same way for every check, so
a check only says what it found.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ...findings import VERDICT_RANK, Cause, Evidence, Finding
from .causes import as_evidence, dedupe

#: Severity of a status when the check does not say otherwise.
DEFAULT_SEVERITY = {"problem": "error", "inconclusive": "warning"}


def default_status(causes: list[Cause], decided: bool) -> str:
    """``problem`` when a cause is confirmed or likely; ``ok`` only when the
    check says its evidence decided (``decided``) and every cause is ruled
    out; else ``inconclusive`` (never ``ok`` for lack of evidence)."""
    if any(c.verdict in ("confirmed", "likely") for c in causes):
        return "problem"
    if decided and all(c.verdict == "ruled_out" for c in causes):
        return "ok"
    return "inconclusive"


def supported(causes: Iterable[Cause]) -> list[Cause]:
    """Confirmed and likely causes, confirmed first (stable)."""
    return sorted((c for c in causes if c.verdict in ("confirmed", "likely")),
                  key=lambda c: VERDICT_RANK[c.verdict])


def merged_remediation(causes: Iterable[Cause], best_only: bool = False) -> list[str]:
    """The remediation of the supported causes, each step once; with
    ``best_only`` only the causes of the best verdict (a stopped service
    does not get the static-port advice)."""
    live = supported(causes)
    if best_only and live:
        live = [c for c in live if c.verdict == live[0].verdict]
    return unique(r for c in live for r in c.remediation)


def unique(items: Iterable[str]) -> list[str]:
    out: list[str] = []
    for i in items:
        if i and i not in out:
            out.append(i)
    return out


@dataclass
class FindingParts:
    """What a check hands to :func:`build_finding` for one host."""

    summary: str
    causes: list[Cause]
    status: str | None = None
    severity: str | None = None
    evidence: list[Any] = field(default_factory=list)
    remediation: list[str] | None = None
    collect: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    attachments: dict[str, str] = field(default_factory=dict)
    #: The evidence decided (``ok`` allowed when every cause is ruled out).
    decided: bool = False
    max_evidence: int | None = None


def build_finding(check: Any, host: str | None, parts: FindingParts) -> Finding:
    """A finding of ``check`` for ``host``: status and severity from the
    verdicts unless the check decided them, causes ranked (the stable sort
    in :class:`~analyzer.findings.Finding` keeps the check's order among
    equal verdicts), every evidence list cited once, remediation and collect
    each step once."""
    causes = parts.causes
    status = parts.status or default_status(causes, parts.decided)
    severity = parts.severity or DEFAULT_SEVERITY.get(status, "info")
    evidence = dedupe(e for e in (as_evidence(x) for x in parts.evidence) if e is not None)
    if parts.max_evidence is not None:
        evidence = evidence[:parts.max_evidence]
    remediation = (parts.remediation if parts.remediation is not None
                   else merged_remediation(causes) if status == "problem" else [])
    return Finding(check=check.id, title=check.title, status=status, severity=severity,
                   summary=parts.summary, host=host, causes=causes, evidence=evidence,
                   remediation=unique(remediation), references=list(check.reference_list()),
                   collect=unique(parts.collect), facts=parts.facts,
                   attachments=parts.attachments)


def not_applicable(check: Any, host: str | None, why: str,
                   evidence: Iterable[Evidence] = ()) -> Finding:
    """The finding of a check whose world is not this host's (or the case's)."""
    return Finding(check=check.id, title=check.title, status="not_applicable", severity="info",
                   summary=why, host=host, evidence=dedupe(evidence),
                   references=list(check.reference_list()))
