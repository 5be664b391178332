"""Running the checks over a case and the report they produce.

The report is the fixed JSON contract (``exchange-analyzer/report/v1``,
shipped as analyzer/schemas/report-v1.json): case, inventory, findings, and
the verdict every rendering leads with. Text, Markdown and HTML are
renderings of the same dictionary, so every output format says the same
thing.

The verdict is the policy behind the command's exit code, decided here and
only here (the CLI maps it): a problem (1); no problem and at least one check
could decide (0); nothing in the case could be read (2, like a usage error:
an empty upload must never read as healthy); files read but no check found
evidence to decide on (3).
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

EXIT_OK, EXIT_PROBLEM, EXIT_UNREADABLE, EXIT_NO_VERDICT = 0, 1, 2, 3
#: Inventory statuses of files whose content was read (fully or in part).
READ_STATUSES = ("parsed", "partial")


class UnknownCheckError(KeyError):
    """A check id that no registered check has (a usage error)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown check"


@dataclass(frozen=True)
class Verdict:
    """What the whole report says, in one line, and the exit code for it."""

    status: str      # problem | ok | unreadable | no_verdict
    exit_code: int
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "exit_code": self.exit_code, "summary": self.summary}


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
    def verdict(self) -> Verdict:
        """The report's verdict (see :func:`decide`)."""
        return decide([e.to_dict() for e in self.case.inventory],
                      [f.to_dict() for f in self.findings])

    @property
    def exit_code(self) -> int:
        """0 no problem and a check decided, 1 a problem, 2 nothing
        readable, 3 no verdict (see :func:`decide`)."""
        return self.verdict.exit_code

    def to_dict(self) -> dict[str, Any]:
        inventory = [e.to_dict() for e in self.case.inventory]
        findings = [f.to_dict() for f in ordered(self.findings)]
        return {
            "schema": SCHEMA_ID,
            "verdict": decide(inventory, findings).to_dict(),
            "case": {"name": self.case.name, "source": self.case.source,
                     "analyzed_at": self.analyzed_at, "hosts": self.case.hosts},
            "inventory": inventory,
            "findings": findings,
            **run_metadata(self),
            **self._statistics(),
        }

    def _statistics(self) -> dict[str, Any]:
        """The message tracking statistics (analyzer/stats.py) when the case
        holds tracking logs: the HTML page charts them."""
        from .stats import summary

        if not hasattr(self, "_stats_cache"):
            self._stats_cache = summary(self.case.table)
        return {"statistics": self._stats_cache} if self._stats_cache else {}

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


def decide(inventory: list[dict[str, Any]], findings: list[dict[str, Any]]) -> Verdict:
    """The verdict of a report from its inventory and findings (contract
    dictionaries, so a stored report is judged the same way).

    In order: a problem finding is a problem (a check only says so on
    evidence); a case where no file could be read is ``unreadable`` whatever
    the checks said; a check that said ``ok`` decided; anything else
    (inconclusive, not applicable, no finding) is no verdict. The summary
    gives the file figures, so damage and skipped files are never silent.
    """
    files = f"{_n(len(inventory), 'file')} ({file_figures(inventory)})" if inventory else "0 files"
    problems = [f for f in findings if f["status"] == "problem"]
    if problems:
        return Verdict("problem", EXIT_PROBLEM,
                       f"Problem found: {_finding_list(problems, True)}; {files}")
    if not any(e["status"] in READ_STATUSES and e.get("source") != "archive" for e in inventory):
        text = (f"none of the {files} could be read by a parser" if inventory
                else "the case holds no files")
        return Verdict("unreadable", EXIT_UNREADABLE, f"Nothing readable: {text}")
    decided = [f for f in findings if f["status"] == "ok"]
    undecided = [f for f in findings if f["status"] == "inconclusive"]
    if decided:
        text = f"No problem found: {_n(len(decided), 'check')} decided ({_finding_list(decided)})"
        if undecided:
            text += f", {len(undecided)} inconclusive ({_finding_list(undecided)})"
        return Verdict("ok", EXIT_OK, f"{text}; {files}")
    if undecided:
        return Verdict("no_verdict", EXIT_NO_VERDICT,
                       f"No verdict: no check could decide ({len(undecided)} inconclusive: "
                       f"{_finding_list(undecided)}); {files}")
    return Verdict("no_verdict", EXIT_NO_VERDICT,
                   f"No verdict: none of the {files} holds evidence a check can use")


def report_verdict(report: dict[str, Any]) -> Verdict:
    """The verdict a report dictionary carries, or the one its inventory and
    findings give (a report written before the field existed)."""
    v = report.get("verdict")
    if isinstance(v, dict) and {"status", "exit_code", "summary"} <= set(v):
        return Verdict(v["status"], v["exit_code"], v["summary"])
    return decide(report["inventory"], report["findings"])


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _finding_list(findings: list[dict[str, Any]], with_cause: bool = False) -> str:
    """``check on HOST`` items, the top cause with its verdict when asked."""
    items = []
    for f in findings:
        item = f["check"] + (f" on {f['host']}" if f.get("host") else "")
        live = [c for c in f.get("causes", []) if c["verdict"] != "ruled_out"]
        if with_cause and live:
            item += f" ({live[0]['id']}, {live[0]['verdict']})"
        items.append(item)
    return "; ".join(items)


def file_figures(inventory: list[dict[str, Any]]) -> str:
    """Inventory statuses with counts: ``80 parsed, 1 partial, 3 skipped``;
    archives that were opened count apart (their members are the files
    read), as ``archive``."""
    counts: dict[str, int] = {}
    for e in inventory:
        status = e["status"]
        if status in READ_STATUSES and e.get("source") == "archive":
            status = "archive"
        counts[status] = counts.get(status, 0) + 1
    order = ("parsed", "partial", "archive", "skipped", "failed", "rejected")
    parts = [_n(counts[s], s) if s == "archive" else f"{counts[s]} {s}" for s in order if counts.get(s)]
    parts += [f"{n} {s}" for s, n in sorted(counts.items()) if s not in order]
    return ", ".join(parts)


def unread_files(inventory: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Files not (fully) read, grouped by status and reason, worst first:
    ``{"status", "reason", "paths"}``. Silence is never health: a report
    states these near its top."""
    groups: dict[tuple[str, str], list[str]] = {}
    for e in inventory:
        if e["status"] in ("parsed",):
            continue
        reason = _reason(e)
        groups.setdefault((e["status"], reason), []).append(e["path"])
    rank = {"failed": 0, "partial": 1, "rejected": 2, "skipped": 3}
    return [{"status": st, "reason": reason, "paths": paths}
            for (st, reason), paths in sorted(groups.items(),
                                              key=lambda kv: (rank.get(kv[0][0], 9), -len(kv[1]),
                                                              kv[0][1]))]


def _reason(entry: dict[str, Any]) -> str:
    """The reason a file was not fully read: for a skipped file what it is,
    without the per-file particulars in parentheses (so that 40 PDFs are one
    line; the inventory keeps the full detail); for damage, the whole detail
    with its figures."""
    detail = (entry.get("detail") or "").strip()
    if not detail:
        return entry.get("kind") or "no detail"
    if entry["status"] != "skipped":
        return detail
    return detail.split(" (", 1)[0].strip() or detail


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
    selected = select_checks(check_ids)
    out: list[Finding] = []
    try:
        _run_each(case, selected, out)
    finally:
        # What the checks shared (hosts that refer back to the case) goes
        # with them: the case's table is freed as soon as the case is.
        case.memo.clear()
    return out


def _run_each(case: Case, selected: list[checks.Check], out: list[Finding]) -> None:
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


def select_checks(check_ids: list[str] | tuple[str, ...] | None = None) -> list[checks.Check]:
    """The registered checks, or the named ones; :class:`UnknownCheckError`
    names the ids no check has (callers may validate before a long load)."""
    selected = checks.registered()
    if not check_ids:
        return selected
    known = {c.id for c in selected}
    unknown = [c for c in check_ids if c not in known]
    if unknown:
        raise UnknownCheckError(f"unknown check id(s): {', '.join(unknown)}; "
                                f"known: {', '.join(sorted(known))}")
    return [c for c in selected if c.id in check_ids]


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
