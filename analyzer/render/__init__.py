"""Renderings of a report dictionary: text (terminal), Markdown, HTML, JSON.

All renderers take the contract dictionary (Report.to_dict()), never the
internal objects, so what a user reads is exactly what the JSON says.
"""
from __future__ import annotations

from typing import Any

FORMATS = ("text", "markdown", "json", "html")
#: Finding statuses, worst first (the order reports list them in).
STATUS_ORDER = ("problem", "inconclusive", "ok", "not_applicable")


def safe(report: Any) -> Any:
    """The report with every string's control characters escaped, for
    renderings a terminal or a viewer displays (file names and excerpts come
    from the customer)."""
    from ..textio import escape_controls

    if isinstance(report, str):
        return escape_controls(report)
    if isinstance(report, dict):
        return {k: safe(v) for k, v in report.items()}
    if isinstance(report, list):
        return [safe(v) for v in report]
    return report


def render(report: dict[str, Any], fmt: str, width: int = 80, verbose: bool = False) -> str:
    """``report`` in ``fmt``; ``verbose`` makes the text report print every
    cause, evidence record and fix (the other formats always hold them)."""
    if fmt == "text":
        from .text import render_text
        return render_text(safe(report), width=width, verbose=verbose)
    if fmt == "markdown":
        from .markdown import render_markdown
        return render_markdown(safe(report))
    if fmt == "html":
        from .html import report_html
        return report_html(safe(report), standalone=True)
    if fmt == "json":
        import json
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def status_counts(report: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in report["findings"]:
        counts[f["status"]] = counts.get(f["status"], 0) + 1
    return counts


def inventory_counts(report: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in report["inventory"]:
        counts[e["status"]] = counts.get(e["status"], 0) + 1
    return counts


def live_causes(finding: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in finding["causes"] if c["verdict"] != "ruled_out"]


def ruled_out(finding: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in finding["causes"] if c["verdict"] == "ruled_out"]


def further_steps(finding: dict[str, Any], causes: list[dict[str, Any]]) -> list[str]:
    """The finding's own remediation less what ``causes`` already say: a
    step equal to one of theirs, or one that restates a step's first line
    (e.g. "New object (LDIF ...): see the LDIF under the cause above")."""
    given = [str(r) for c in causes for r in c["remediation"]]
    heads = [r.splitlines()[0].rstrip(":") for r in given if r.strip()]
    return [r for r in finding["remediation"]
            if str(r) not in given and not any(str(r).startswith(h) for h in heads)]


def further_evidence(finding: dict[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The finding's own evidence less the records its live causes show
    (same file and locator), and whether the causes showed any."""
    shown = {(e["path"], e["locator"]) for c in live_causes(finding) for e in c["evidence"]}
    return [e for e in finding["evidence"] if (e["path"], e["locator"]) not in shown], bool(shown)


def where(ev: dict[str, Any]) -> str:
    """``path (locator)`` of an evidence item."""
    return f"{ev['path']} ({ev['locator']})"


def utc_text(ts: str | None) -> str:
    """An evidence time as ``YYYY-MM-DD HH:MM:SS`` in UTC (the reports say
    UTC once in a heading); the text as given when it is not ISO 8601."""
    if not ts:
        return ""
    from datetime import datetime, timezone

    try:
        t = datetime.fromisoformat(ts)
    except ValueError:
        return ts
    if t.tzinfo is not None:
        t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S")
