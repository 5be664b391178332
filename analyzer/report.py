"""Running the checks over a case and the report they produce.

The report is the fixed JSON contract (``exchange-analyzer/report/v1``,
shipped as analyzer/schemas/report-v1.json): case, inventory, findings. Text,
Markdown and HTML are renderings of the same dictionary, so every output
format says the same thing.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from . import checks
from .case import Case, load_case
from .findings import SEVERITY_RANK, STATUSES, Finding, attachment_file_name

SCHEMA_ID = "exchange-analyzer/report/v1"


@dataclass
class Report:
    case: Case
    findings: list[Finding]
    analyzed_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).replace(microsecond=0).isoformat())
    #: The options the analysis ran with (checks, loader options, renderer
    #: options such as redaction), recorded in the report's ``run`` block.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "problem"]

    @property
    def exit_code(self) -> int:
        """0 when no finding is a problem, 1 when at least one is."""
        return 1 if self.problems else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_ID,
            "case": {"name": self.case.name, "source": self.case.source,
                     "analyzed_at": self.analyzed_at, "hosts": self.case.hosts},
            "inventory": [e.to_dict() for e in self.case.inventory],
            "findings": [f.to_dict() for f in ordered(self.findings)],
            **run_metadata(self),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_text(self, width: int = 80, verbose: bool = False) -> str:
        from .render import render
        return render(self.to_dict(), "text", width=width, verbose=verbose)

    def to_markdown(self) -> str:
        from .render import render
        return render(self.to_dict(), "markdown")

    def write_attachments(self, folder: Path) -> list[Path]:
        """Write every finding's attachments as ``<check>[-<host>]-<name>``."""
        return write_report_attachments(self.to_dict(), folder)

    def findings_frame(self) -> pd.DataFrame:
        """One row per finding (status, severity, top cause) for notebooks."""
        return findings_frame(self.to_dict())

    def _repr_html_(self) -> str:
        from .render.html import report_html
        return report_html(self.to_dict())


def write_report_attachments(report: dict[str, Any], folder: Path) -> list[Path]:
    """Write the attachments of a report dictionary as files (from the
    report as rendered, so a redacted report hands over redacted files)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for f in report["findings"]:
        for name, text in (f.get("attachments") or {}).items():
            target = folder / attachment_file_name(f["check"], f["host"], name)
            target.write_text(text, encoding="utf-8", newline="")
            written.append(target)
    return written


def run_metadata(report: Report) -> dict[str, Any]:
    """Extra report fields (the contract allows them): which tool version
    produced the report, with which options, and the case's file counts, so
    a report handed on says how it was made (nothing that varies between
    runs but ``analyzed_at``)."""
    from . import __version__

    opts = report.case.options
    loaded = {k: getattr(opts, k) for k in ("evtx_backend", "registry") if hasattr(opts, k)}
    counts: dict[str, int] = {}
    for e in report.case.inventory:
        counts[e.status] = counts.get(e.status, 0) + 1
    return {"tool": {"name": "exchange-analyzer", "version": __version__},
            "run": {"options": {**loaded, **report.options},
                    "files": dict(sorted(counts.items())),
                    "rows": int(len(report.case.table))}}


def ordered(findings: list[Finding]) -> list[Finding]:
    """Problems first, then inconclusive, ok, not applicable; by severity."""
    return sorted(findings, key=lambda f: (STATUSES.index(f.status),
                                           SEVERITY_RANK[f.severity], f.check, f.host or ""))


def findings_frame(report: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for f in report["findings"]:
        live = [c for c in f["causes"] if c["verdict"] != "ruled_out"]
        rows.append({"check": f["check"], "host": f["host"], "status": f["status"],
                     "severity": f["severity"],
                     "top_cause": live[0]["id"] if live else None,
                     "top_verdict": live[0]["verdict"] if live else None,
                     "summary": f["summary"], "evidence": len(f["evidence"]) + sum(
                         len(c["evidence"]) for c in f["causes"]),
                     "collect": len(f["collect"])})
    return pd.DataFrame(rows, columns=["check", "host", "status", "severity", "top_cause",
                                       "top_verdict", "summary", "evidence", "collect"])


def run_checks(case: Case, check_ids: list[str] | None = None) -> list[Finding]:
    """Run the registered checks (or the named ones) over a case.

    A check that crashes does not stop the others: it is reported as an
    ``inconclusive`` finding naming the error, so the engineer knows that
    diagnosis was not made.
    """
    selected = checks.registered()
    if check_ids:
        known = {c.id for c in selected}
        unknown = [c for c in check_ids if c not in known]
        if unknown:
            raise KeyError(f"unknown check id(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        selected = [c for c in selected if c.id in check_ids]
    out: list[Finding] = []
    for check in selected:
        try:
            found = check.run(case)
            if not found:
                # A check that says nothing would vanish from the report.
                found = [Finding(check.id, check.title, "not_applicable", "info",
                                 "The check found nothing of its subject in this case.",
                                 references=list(check.references))]
            out.extend(_no_silent_ok(f) for f in found)
        except MemoryError as exc:
            raise MemoryError(f"while running check {check.id}") from exc
        except Exception as exc:  # noqa: BLE001 - one check must not stop the report
            out.append(Finding(
                check=check.id, title=check.title, status="inconclusive", severity="warning",
                summary=f"The check could not run: {type(exc).__name__}: {exc}",
                references=list(check.references),
                collect=["Report this error to the exchange-analyzer maintainers with the case inventory."]))
    return out


def _no_silent_ok(f: Finding) -> Finding:
    """``ok`` must be shown by evidence: an ``ok`` finding that cites none
    (at finding or cause level) is reported as ``inconclusive``."""
    if f.status == "ok" and not f.evidence and not any(c.evidence for c in f.causes):
        f.status = "inconclusive"
        f.severity = "warning"
        f.summary = f"{f.summary} (reported as inconclusive: the check cited no evidence for ok)"
    return f


def analyze(case_or_path: Case | str | os.PathLike[str], checks: list[str] | None = None,
            **load_kw: Any) -> Report:
    case = case_or_path if isinstance(case_or_path, Case) else load_case(case_or_path, **load_kw)
    return Report(case, run_checks(case, checks),
                  options={"checks": list(checks) if checks else "all"})


@cache
def report_schema() -> dict[str, Any]:
    """The JSON Schema of the report contract."""
    text = resources.files("analyzer").joinpath("schemas/report-v1.json").read_text("utf-8")
    return json.loads(text)


def validate_report(report: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when a report breaks the contract."""
    import jsonschema
    jsonschema.validate(report, report_schema())
