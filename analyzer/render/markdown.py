"""Markdown report (for tickets and wikis)."""
from __future__ import annotations

import re
from typing import Any

from . import further_evidence, further_steps, live_causes, ruled_out, status_counts, where

ICON = {"problem": "❌ problem", "inconclusive": "❔ inconclusive", "ok": "✅ ok",
        "not_applicable": "➖ not applicable"}


def _cell(text: Any) -> str:
    """Text for a table cell or a line: ``|`` escaped, one line, and ``<``
    and ``&`` as entities (a file name or an excerpt must never become live
    HTML where the Markdown is rendered)."""
    text = str(text if text is not None else "")
    return (text.replace("&", "&amp;").replace("<", "&lt;")
            .replace("|", "\\|").replace("\n", " "))


def _para(text: Any) -> str:
    """Free text (summaries, explanations): line breaks kept, ``<`` and
    ``&`` as entities so that quoted customer data stays text."""
    return str(text if text is not None else "").replace("&", "&amp;").replace("<", "&lt;")


def _block(text: str) -> list[str]:
    """A fenced code block whose fence no line inside can close."""
    fence = "`" * max(3, max((len(m) for m in _BACKTICKS.findall(text)), default=0) + 1)
    return [fence, text, fence]


_BACKTICKS = re.compile("`+")


def code(text: Any) -> str:
    """A Markdown code span holding ``text`` literally, whatever it holds:
    the fence is one backtick longer than the longest backtick run inside
    (CommonMark 6.1), padded with a space when the text starts or ends with
    a backtick; ``|`` escaped and newlines made spaces for tables."""
    body = str(text if text is not None else "").replace("\n", " ").replace("|", "\\|")
    fence = "`" * (max((len(m) for m in _BACKTICKS.findall(body)), default=0) + 1)
    if body.startswith("`") or body.endswith("`") or (body.startswith(" ") and body.endswith(" ")):
        body = f" {body} "
    return f"{fence}{body}{fence}"


def _evidence(out: list[str], evidence: list[dict[str, Any]], indent: str = "") -> None:
    for ev in evidence:
        ts = f" {ev['ts']}" if ev.get("ts") else ""
        out.append(f"{indent}- {code(where(ev))}{ts}: {_cell(ev['excerpt'])}")


def render_markdown(report: dict[str, Any]) -> str:
    from ..report import report_verdict

    case = report["case"]
    out = [f"**{_cell(report_verdict(report).summary)}**", "",
           f"# exchange-analyzer report: {_cell(case['name'])}", "",
           f"- Source: {code(case['source'])}",
           f"- Analyzed at: {case['analyzed_at']}"
           + (f" by exchange-analyzer {report['tool']['version']}" if report.get("tool") else ""),
           f"- Hosts: {_cell(', '.join(case['hosts'])) or '(none found)'}",
           "- Findings: " + ", ".join(f"{n} {s}" for s, n in status_counts(report).items()),
           "", "## Findings", "",
           "| check | host | status | severity | top cause |", "|---|---|---|---|---|"]
    for f in report["findings"]:
        live = live_causes(f)
        top = f"{live[0]['id']} ({live[0]['verdict']})" if live else ""
        out.append(f"| {f['check']} | {_cell(f['host'])} | {ICON[f['status']]} | {f['severity']} | {top} |")
    for f in report["findings"]:
        out += ["", f"### {f['check']}{' on ' + f['host'] if f['host'] else ''}: {ICON[f['status']]}",
                "", f"**{_cell(f['title'])}**", "", _para(f["summary"])]
        for c in live_causes(f):
            out += ["", f"#### {_cell(c['title'])} — `{c['id']}`, {c['verdict']}", "", _para(c["explanation"])]
            if c["evidence"]:
                out += ["", "Evidence:", ""]
                _evidence(out, c["evidence"])
            if c["remediation"]:
                out += ["", "Remediation:", ""]
                for r in c["remediation"]:
                    if "\n" in str(r):
                        out += ["", *_block(str(r).rstrip()), ""]
                    else:
                        out.append(f"1. {_para(r)}")
        outs = ruled_out(f)
        if outs:
            out += ["", "Ruled out:", ""]
            out += [f"- `{c['id']}`: {_para(c['explanation'])}" for c in outs]
        further, shown = further_evidence(f)
        if further:
            out += ["", "Further evidence:" if shown else "Evidence:", ""]
            _evidence(out, further)
        todo = further_steps(f, live_causes(f))
        if todo:
            out += ["", "What to do:", ""] + [f"1. {r}" for r in todo]
        if f["collect"]:
            out += ["", "Collect:", ""] + [f"- {r}" for r in f["collect"]]
        if f["references"]:
            out += ["", "References: " + "; ".join(f["references"])]
    out += ["", "## Inventory", "", "| path | kind | status | rows | detail |", "|---|---|---|---|---|"]
    for e in report["inventory"]:
        out.append(f"| {code(e['path'])} | {_cell(e['kind'])} | {e['status']} | {e['rows']} | {_cell(e['detail'])} |")
    return "\n".join(out) + "\n"
