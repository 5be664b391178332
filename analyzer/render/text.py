"""Plain-text report for an 80-column terminal, problems first."""
from __future__ import annotations

import textwrap
import unicodedata
from typing import Any

from . import inventory_counts, live_causes, ruled_out, status_counts, where

MARK = {"problem": "PROBLEM", "inconclusive": "INCONCLUSIVE", "ok": "OK",
        "not_applicable": "N/A"}
MAX_EVIDENCE = 6
MAX_PATHS = 8


#: Where a word too long for a line (a registry key, a path, a DN) may be
#: cut so that its pieces stay readable, best first.
_SOFT_BREAKS = ("\\/,", "-")


def _cut(word: str, room: int) -> int:
    """How much of ``word`` fits in ``room``: up to a separator in the second
    half of the room when there is one, else exactly ``room``."""
    for group in _SOFT_BREAKS:
        cut = max(word.rfind(ch, room // 2, room) for ch in group)
        if cut > 0:
            return cut + 1
    return room


def _cols(text: str) -> int:
    """Terminal columns of ``text``: East Asian wide and full-width
    characters take two (an event description in Japanese is not 80
    characters wide at 80 characters)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _fit(text: str, cols: int) -> int:
    """How many characters of ``text`` fit in ``cols`` columns (at least 1)."""
    if text.isascii():
        return max(1, min(len(text), cols))
    used = 0
    for i, c in enumerate(text):
        used += 2 if unicodedata.east_asian_width(c) in "WF" else 1
        if used > cols:
            return max(1, i)
    return len(text)


def _wrap(text: str, width: int, indent: str, first: str | None = None) -> list[str]:
    """Greedy word wrap by terminal columns; words longer than a line are cut
    at separators."""
    cur = indent if first is None else first
    lines: list[str] = []
    empty = True
    for word in str(text).split():
        sep = "" if empty else " "
        if _cols(cur) + len(sep) + _cols(word) <= width:
            cur, empty = cur + sep + word, False
            continue
        if not empty and _cols(indent) + _cols(word) <= width:
            lines.append(cur)
            cur, empty = indent + word, False
            continue
        rest = word
        if not empty:
            if width - _cols(cur) - 1 < 12:  # too little room left: start afresh
                lines.append(cur)
                cur, sep = indent, ""
            cur += sep
        while rest:
            room = max(1, width - _cols(cur))
            if _cols(rest) <= room:
                cur += rest
                break
            n = _cut(rest, _fit(rest, room))
            lines.append(cur + rest[:n])
            cur, rest = indent, rest[n:]
        empty = False
    lines.append(cur)
    return lines


def _remediation(lines: list[str], items: list[str], width: int, indent: str) -> None:
    """Bulleted steps; a step's first line is wrapped as prose, its further
    lines are a preformatted block (e.g. an LDIF) kept line by line, long
    ones folded (``--attachments`` writes the exact text)."""
    for r in items:
        first, *rest = str(r).splitlines() or [""]
        lines += _wrap(first, width, indent + "    ", indent + "  * ")
        for extra in rest:
            lines += textwrap.wrap(extra, width=width, initial_indent=indent + "    ",
                                   subsequent_indent=indent + "      ",
                                   break_long_words=True, break_on_hyphens=False,
                                   drop_whitespace=False) or [""]


def _evidence(lines: list[str], evidence: list[dict[str, Any]], width: int, indent: str) -> None:
    for ev in evidence[:MAX_EVIDENCE]:
        lines += _wrap(where(ev), width, indent + "  ", indent + "- ")
        lines += _wrap(ev["excerpt"], width, indent + "    ")
    if len(evidence) > MAX_EVIDENCE:
        lines.append(f"{indent}  ... and {len(evidence) - MAX_EVIDENCE} more (see --format json)")


def _unread(lines: list[str], report: dict[str, Any], width: int) -> None:
    """Files not (fully) read, grouped by reason (analyzer.report.unread_files)."""
    from ..report import unread_files

    groups = unread_files(report["inventory"])
    if groups:
        lines.append("Files not fully read:")
    for g in groups:
        paths = g["paths"]
        shown = ", ".join(paths[:MAX_PATHS]) + (
            f", ... and {len(paths) - MAX_PATHS} more" if len(paths) > MAX_PATHS else "")
        lines += _wrap(f"{g['status']}, {len(paths)} file{'s' * (len(paths) != 1)}: {g['reason']}",
                       width, "      ", "  - ")
        lines += _wrap(shown, width, "      ")


def render_text(report: dict[str, Any], width: int = 80) -> str:
    from ..report import report_verdict

    case = report["case"]
    lines: list[str] = []
    lines += _wrap(report_verdict(report).summary, width, "  ", "")
    lines += _wrap(f"exchange-analyzer report: {case['name']}", width, "")
    hosts = ", ".join(case["hosts"]) or "(none found)"
    lines += _wrap(f"Hosts: {hosts}", width, "  ", "")
    sc = status_counts(report)
    lines.append("Findings: " + ", ".join(f"{sc.get(s, 0)} {MARK[s].lower()}" for s in MARK))
    ic = inventory_counts(report)
    lines.append(f"Files: {len(report['inventory'])}" + (" (" + ", ".join(
        f"{n} {s}" for s, n in sorted(ic.items())) + ")" if ic else ""))
    _unread(lines, report, width)
    lines.append("=" * min(width, 80))
    for f in report["findings"]:
        head = f"[{MARK[f['status']]}] {f['check']}"
        if f["host"]:
            head += f" on {f['host']}"
        lines.append("")
        lines += _wrap(head, width, "  ", "")
        lines += _wrap(f["title"], width, "  ")
        lines += _wrap(f["summary"], width, "  ")
        if f["status"] in ("not_applicable",):
            continue
        for i, c in enumerate(live_causes(f), 1):
            lines.append("")
            lines += _wrap(f"Cause {i}: {c['title']} [{c['id']}, {c['verdict']}]", width, "    ", "  ")
            lines += _wrap(c["explanation"], width, "    ")
            if c["evidence"]:
                lines.append("    Evidence:")
                _evidence(lines, c["evidence"], width, "    ")
            if c["remediation"]:
                lines.append("    Fix:")
                _remediation(lines, c["remediation"], width, "    ")
        outs = ruled_out(f)
        if outs:
            lines.append("")
            lines.append("  Ruled out:")
            for c in outs:
                lines += _wrap(f"{c['id']}: {c['explanation']}", width, "      ", "    - ")
        if f["evidence"]:
            lines.append("  Evidence:")
            _evidence(lines, f["evidence"], width, "  ")
        if f["remediation"]:
            lines.append("  What to do:")
            _remediation(lines, f["remediation"], width, "  ")
        if f["collect"]:
            lines.append("  Collect:")
            for r in f["collect"]:
                lines += _wrap(r, width, "      ", "    * ")
        if f["references"]:
            lines += _wrap("References: " + "; ".join(f["references"]), width, "    ", "  ")
    return "\n".join(line.rstrip() for line in lines) + "\n"
