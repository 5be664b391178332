"""Plain-text report for an 80-column terminal, problems first."""
from __future__ import annotations

import textwrap
import unicodedata
from typing import Any

from . import (further_steps, inventory_counts, live_causes, ruled_out, status_counts, utc_text,
               where)

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
        ts = f"{utc_text(ev['ts'])} " if ev.get("ts") else ""
        lines += _wrap(ts + where(ev), width, indent + "  ", indent + "- ")
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


def render_text_full(report: dict[str, Any], width: int = 80) -> str:
    """Everything: every cause with its evidence and fixes, ruled-out causes,
    every finding in full (``analyze --verbose``)."""
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


def _clip_cols(text: str, cols: int) -> str:
    """``text`` cut to ``cols`` terminal columns, an ellipsis marking the cut."""
    if _cols(text) <= cols:
        return text
    return text[: _fit(text, cols - 1)] + "…"


def _top(f: dict[str, Any]) -> str:
    live = live_causes(f)
    if not live or f["status"] not in ("problem", "inconclusive"):
        return "-"
    return f"{live[0]['id']} ({live[0]['verdict']})"


def summary_table(report: dict[str, Any], width: int = 80) -> list[str]:
    """One line per finding: host, check, status, top cause (the top cause
    wraps under its column when it does not fit)."""
    rows = [(f["host"] or "(case)", f["check"], MARK[f["status"]], _top(f)) for f in report["findings"]]
    head = ("HOST", "CHECK", "STATUS", "TOP CAUSE")
    w0 = min(max([_cols(r[0]) for r in rows] + [4]), 20)
    w1 = min(max([_cols(r[1]) for r in rows] + [5]), 24)  # the longest check id
    w2 = max([len(r[2]) for r in rows] + [6])
    lead = w0 + w1 + w2 + 6
    lines = []
    for r in [head, *rows]:
        cells = (f"{_clip_cols(r[0], w0):<{w0}}  {_clip_cols(r[1], w1):<{w1}}  {r[2]:<{w2}}  ")
        cells = cells.ljust(lead - (_cols(cells) - len(cells)))
        lines += _wrap(r[3], max(width, lead + 18), " " * lead, cells)
    return lines


def _evidence_short(lines: list[str], evidence: list[dict[str, Any]], width: int) -> None:
    """Distinct records (same file and locator once), grouped by file; the
    records of one file that say the same thing share one line with their
    locators and times: ``record=23 21:50:04, record=26 22:21:04: excerpt``."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    seen: set[tuple[str, str]] = set()
    for e in evidence:
        if (e["path"], e["locator"]) not in seen:
            seen.add((e["path"], e["locator"]))
            groups.setdefault((e["path"], e["excerpt"]), []).append(e)
    shown = list(groups.items())[:MAX_EVIDENCE]
    for path in dict.fromkeys(p for (p, _), _ in shown):
        lines += _wrap(path, width, "      ", "    ")
        for (_, excerpt), evs in ((k, v) for k, v in shown if k[0] == path):
            where_ = ", ".join(f"{e['locator']}" + (f" {utc_text(e['ts'])}" if e.get("ts") else "")
                               for e in evs)
            wrapped = _wrap(f"{where_}: {excerpt}", width, "        ", "    - ")
            if len(wrapped) > 4:  # long excerpts: --verbose and the HTML page hold them whole
                wrapped = wrapped[:3] + [_clip_cols(wrapped[3], width - 2) + " …"]
            lines += wrapped
    if len(groups) > len(shown):
        lines.append(f"    ... and {len(groups) - len(shown)} more (--verbose or --format html)")


def _steps_short(lines: list[str], items: list[str], width: int) -> None:
    """Numbered steps; a multi-line block (an LDIF for review) is named, not
    printed: --verbose prints it, --attachments DIR writes it."""
    for i, r in enumerate(items, 1):
        first, *rest = str(r).splitlines() or [""]
        more = f" [{len(rest)} more lines: --verbose shows them]" if rest else ""
        lines += _wrap(first + more, width, "       ", f"    {i}. ")


#: Lines of a top cause's explanation in the short report (whole sentences).
EXPLANATION_LINES = 6


def _sentences(text: str, width: int, indent: str, most: int) -> list[str]:
    """The leading whole sentences of ``text`` that fit in ``most`` wrapped
    lines (at least one), marked when the rest is left to --verbose."""
    import re

    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z(])", str(text).strip())
    taken: list[str] = []
    for i in range(1, len(parts) + 1):
        lines = _wrap(" ".join(parts[:i]), width, indent)
        if taken and len(lines) > most:
            break
        taken = lines
        if len(lines) > most:
            break
    full = _wrap(str(text), width, indent)
    if len(taken) < len(full):
        taken += _wrap("(more with --verbose)", width, indent)
    return taken


def _problem(lines: list[str], f: dict[str, Any], width: int) -> None:
    """A problem: its top cause, that cause's and the finding's evidence
    once, the fixes once; the other causes named."""
    live = live_causes(f)
    top = live[0] if live else None
    if top:
        lines += _wrap(f"Top cause: {top['title']} [{top['id']}, {top['verdict']}]", width, "    ", "  ")
        lines += _sentences(top["explanation"], width, "    ", EXPLANATION_LINES)
    evidence = (top["evidence"] if top else []) + f["evidence"]
    if evidence:
        lines.append("  Evidence:")
        _evidence_short(lines, evidence, width)
    steps = (list(top["remediation"]) if top else []) + further_steps(f, [top] if top else [])
    if steps:
        lines.append("  Fix:")
        _steps_short(lines, steps, width)
    if len(live) > 1:
        lines += _wrap("Other possible causes: " + ", ".join(
            f"{c['id']} ({c['verdict']})" for c in live[1:]), width, "    ", "  ")
    if ruled_out(f):
        lines += _wrap("Ruled out: " + ", ".join(c["id"] for c in ruled_out(f)), width, "    ", "  ")


def render_text(report: dict[str, Any], width: int = 80, verbose: bool = False) -> str:
    """The terminal report: a one-screen summary table, then each problem
    with its top cause, evidence and fixes; inconclusive findings with what
    to collect; ok and n/a findings one line each. ``verbose`` prints
    everything (:func:`render_text_full`)."""
    from ..report import report_verdict

    if verbose:
        return render_text_full(report, width)
    case = report["case"]
    tool = report.get("tool") or {}
    lines = _wrap(report_verdict(report).summary, width, "  ", "")
    lines += _wrap(f"exchange-analyzer report: {case['name']}", width, "")
    lines += _wrap(f"Source: {case['source']}", width, "  ", "")  # file figures: the verdict line
    lines += _wrap(f"Hosts: {', '.join(case['hosts']) or '(none found)'}", width, "  ", "")
    lines += _wrap(f"Analyzed: {case['analyzed_at']} by exchange-analyzer {tool.get('version', '')}",
                   width, "  ", "")
    _unread(lines, report, width)
    lines.append("")
    lines += summary_table(report, width)
    lines.append("=" * min(width, 80))
    for f in report["findings"]:
        on = f" on {f['host']}" if f["host"] else ""
        if f["status"] in ("ok", "not_applicable"):
            lines.append(_clip_cols(f"[{MARK[f['status']]}] {f['check']}{on}: {f['summary']}", width))
            continue
        lines.append("")
        lines += _wrap(f"[{MARK[f['status']]}] {f['check']}{on}: {f['title']}", width, "  ", "")
        lines += _wrap(f["summary"], width, "  ")
        if f["status"] == "problem":
            _problem(lines, f, width)
        elif f["collect"]:
            lines.append("  Collect:")
            for r in f["collect"]:
                lines += _wrap(r, width, "      ", "    * ")
    lines.append("")
    lines.append("More: --verbose (every cause, evidence, fix), --format html (case page).")
    return "\n".join(line.rstrip() for line in lines) + "\n"


COLORS = {"PROBLEM": "bold red", "INCONCLUSIVE": "bold yellow", "OK": "bold green", "N/A": "dim"}
VERDICT_COLORS = {"Problem found:": "bold red", "No problem found:": "bold green",
                  "No verdict:": "bold yellow", "Nothing readable:": "bold yellow"}


def colorize(text: str):  # -> rich.text.Text
    """The plain report with status labels coloured, for a terminal (the
    CLI prints plain text when standard output is not a TTY)."""
    import re

    from rich.text import Text

    out = Text(text)
    for word, style in COLORS.items():
        out.highlight_regex(rf"(?<![\w/]){re.escape(word)}(?![\w/])", style)
    # the verdict's opening words on the first line
    for lead, style in VERDICT_COLORS.items():
        if text.startswith(lead):
            out.stylize(style, 0, len(lead))
    return out
