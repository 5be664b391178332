"""Markdown report (for tickets and wikis)."""
from __future__ import annotations

from typing import Any

from . import further_evidence, further_steps, live_causes, ruled_out, status_counts, where

ICON = {"problem": "❌ problem", "inconclusive": "❔ inconclusive", "ok": "✅ ok",
        "not_applicable": "➖ not applicable"}


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _evidence(out: list[str], evidence: list[dict[str, Any]], indent: str = "") -> None:
    for ev in evidence:
        ts = f" {ev['ts']}" if ev.get("ts") else ""
        out.append(f"{indent}- `{where(ev)}`{ts}: {_cell(ev['excerpt'])}")


def render_markdown(report: dict[str, Any]) -> str:
    from ..report import report_verdict

    case = report["case"]
    out = [f"**{_cell(report_verdict(report).summary)}**", "",
           f"# exchange-analyzer report: {case['name']}", "",
           f"- Source: `{case['source']}`",
           f"- Analyzed at: {case['analyzed_at']}"
           + (f" by exchange-analyzer {report['tool']['version']}" if report.get("tool") else ""),
           f"- Hosts: {', '.join(case['hosts']) or '(none found)'}",
           "- Findings: " + ", ".join(f"{n} {s}" for s, n in status_counts(report).items()),
           "", "## Findings", "",
           "| check | host | status | severity | top cause |", "|---|---|---|---|---|"]
    for f in report["findings"]:
        live = live_causes(f)
        top = f"{live[0]['id']} ({live[0]['verdict']})" if live else ""
        out.append(f"| {f['check']} | {_cell(f['host'])} | {ICON[f['status']]} | {f['severity']} | {top} |")
    for f in report["findings"]:
        out += ["", f"### {f['check']}{' on ' + f['host'] if f['host'] else ''}: {ICON[f['status']]}",
                "", f"**{_cell(f['title'])}**", "", f["summary"]]
        for c in live_causes(f):
            out += ["", f"#### {c['title']} — `{c['id']}`, {c['verdict']}", "", c["explanation"]]
            if c["evidence"]:
                out += ["", "Evidence:", ""]
                _evidence(out, c["evidence"])
            if c["remediation"]:
                out += ["", "Remediation:", ""]
                for r in c["remediation"]:
                    if "\n" in str(r):
                        out += ["", "```", str(r).rstrip(), "```", ""]
                    else:
                        out.append(f"1. {r}")
        outs = ruled_out(f)
        if outs:
            out += ["", "Ruled out:", ""]
            out += [f"- `{c['id']}`: {c['explanation']}" for c in outs]
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
        out.append(f"| `{_cell(e['path'])}` | {_cell(e['kind'])} | {e['status']} | {e['rows']} | {_cell(e['detail'])} |")
    return "\n".join(out) + "\n"
