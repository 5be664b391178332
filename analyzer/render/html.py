"""HTML renderings: a finding and a report, for Jupyter and for files."""
from __future__ import annotations

from html import escape
from typing import Any

from . import live_causes, ruled_out, where

COLOR = {"problem": "#c62828", "inconclusive": "#ef6c00", "ok": "#2e7d32",
         "not_applicable": "#757575"}


def _ev(evidence: list[dict[str, Any]]) -> str:
    if not evidence:
        return ""
    items = "".join(f"<li><code>{escape(where(e))}</code> {escape(e['excerpt'])}</li>" for e in evidence)
    return f"<ul>{items}</ul>"


def finding_dict_html(f: dict[str, Any]) -> str:
    color = COLOR[f["status"]]
    parts = [f"<div style='border-left:4px solid {color};padding-left:8px;margin:6px 0'>",
             f"<b style='color:{color}'>{escape(f['status'].upper())}</b> "
             f"<b>{escape(f['check'])}</b>{' on ' + escape(f['host']) if f['host'] else ''}: "
             f"{escape(f['title'])}<br>{escape(f['summary'])}"]
    for c in live_causes(f):
        parts.append(f"<details open><summary><b>{escape(c['title'])}</b> "
                     f"(<code>{escape(c['id'])}</code>, {escape(c['verdict'])})</summary>"
                     f"<p>{escape(c['explanation'])}</p>{_ev(c['evidence'])}")
        if c["remediation"]:
            parts.append("<ol>" + "".join(f"<li><pre style='white-space:pre-wrap;margin:0'>{escape(r)}</pre></li>"
                                          for r in c["remediation"]) + "</ol>")
        parts.append("</details>")
    outs = ruled_out(f)
    if outs:
        parts.append("<p>Ruled out: " + "; ".join(
            f"<code>{escape(c['id'])}</code> — {escape(c['explanation'])}" for c in outs) + "</p>")
    parts.append(_ev(f["evidence"]))
    if f["collect"]:
        parts.append("<p>Collect:</p><ul>" + "".join(f"<li>{escape(x)}</li>" for x in f["collect"]) + "</ul>")
    parts.append("</div>")
    return "".join(parts)


def finding_html(finding: Any) -> str:
    return finding_dict_html(finding.to_dict())


#: Verdict status -> the color of the finding status it stands for.
VERDICT_COLOR = {"problem": COLOR["problem"], "ok": COLOR["ok"],
                 "no_verdict": COLOR["inconclusive"], "unreadable": COLOR["inconclusive"]}


def report_html(report: dict[str, Any], standalone: bool = False) -> str:
    from ..report import report_verdict

    case = report["case"]
    verdict = report_verdict(report)
    body = [f"<p style='font-weight:bold;color:{VERDICT_COLOR.get(verdict.status, '#000')}'>"
            f"{escape(verdict.summary)}</p>",
            f"<h3>exchange-analyzer: {escape(case['name'])}</h3>",
            f"<p>Hosts: {escape(', '.join(case['hosts']) or '(none)')} · "
            f"{len(report['inventory'])} files</p>"]
    body += [finding_dict_html(f) for f in report["findings"]]
    rows = "".join(
        f"<tr><td><code>{escape(e['path'])}</code></td><td>{escape(e['kind'] or '')}</td>"
        f"<td>{escape(e['status'])}</td><td>{e['rows']}</td><td>{escape(e['detail'] or '')}</td></tr>"
        for e in report["inventory"])
    body.append("<details><summary>Inventory</summary><table><tr><th>path</th><th>kind</th>"
                f"<th>status</th><th>rows</th><th>detail</th></tr>{rows}</table></details>")
    html = "".join(body)
    if standalone:
        return ("<!doctype html><html><head><meta charset='utf-8'><title>exchange-analyzer</title>"
                f"</head><body style='font-family:sans-serif'>{html}</body></html>\n")
    return html
