"""HTML renderings: a self-contained case page (``--format html``) and the
fragments Jupyter displays for a finding or a report.

The page works offline and prints: no script, no external resource (a
Content-Security-Policy of ``default-src 'none'`` makes the browser refuse
any), styles inline, the timeline an inline SVG drawn here. Status is shown
by colour *and* a text label, so it survives black-and-white printing and
colour blindness. Every string that comes from the case (file names,
excerpts, host names, the case name) goes through :func:`html.escape`.
"""
from __future__ import annotations

from html import escape
from typing import Any

from . import (further_evidence, further_steps, inventory_counts, live_causes, ruled_out,
               status_counts, utc_text)

#: Status -> (text label, colour). The label is always printed beside the colour.
STATUS = {"problem": ("PROBLEM", "#c62828"), "inconclusive": ("INCONCLUSIVE", "#ef6c00"),
          "ok": ("OK", "#2e7d32"), "not_applicable": ("N/A", "#757575")}
VERDICT = {"confirmed": "#c62828", "likely": "#ef6c00", "possible": "#546e7a",
           "ruled_out": "#9e9e9e"}
INVENTORY = {"parsed": "#2e7d32", "partial": "#ef6c00", "skipped": "#757575",
             "failed": "#c62828", "rejected": "#c62828"}

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
.exa{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212121;
 font-size:14px;line-height:1.4;max-width:1200px;margin:0 auto;padding:0 12px}
.exa h1{font-size:22px;margin:12px 0 4px}.exa h2{font-size:18px;margin:20px 0 6px;
 border-bottom:1px solid #ddd}.exa h3{font-size:15px;margin:12px 0 4px}
.exa h4{font-size:13px;margin:8px 0 2px}
.exa table{border-collapse:collapse;margin:4px 0 8px;width:100%}
.exa th,.exa td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
.exa th{background:#f0f0f0}.exa td.num{text-align:right}.exa td.ts{white-space:nowrap}
.exa td.file{min-width:10em}.exa td.loc{max-width:20em}
.exa code,.exa pre{font-family:ui-monospace,Consolas,monospace;font-size:12px;word-break:break-all}
.exa pre.copy{background:#f6f8fa;border:1px solid #ddd;padding:6px;white-space:pre-wrap;
 user-select:all;margin:4px 0}
.exa .label{display:inline-block;padding:1px 6px;border-radius:3px;color:#fff;font-weight:600;
 font-size:12px;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.exa .badge{display:inline-block;padding:0 5px;border-radius:3px;border:1px solid;font-size:12px}
.exa td.status{font-weight:600;color:#fff;-webkit-print-color-adjust:exact;print-color-adjust:exact}
.exa td.status a{color:#fff}.exa td.none{color:#999}
.exa .finding{border-left:5px solid;padding:2px 0 4px 10px;margin:14px 0}
.exa .cause{margin:8px 0 8px 6px}.exa dl.meta{display:grid;grid-template-columns:max-content auto;
 gap:2px 12px;margin:4px 0}.exa dl.meta dt{font-weight:600}.exa dl.meta dd{margin:0}
.exa svg text{font-family:system-ui,sans-serif;font-size:11px}
@media print{.exa{max-width:none}.exa .finding,.exa tr{break-inside:avoid}
 .exa details::details-content{content-visibility:visible;display:block}
 .exa details>summary{list-style:none}.exa a{color:inherit;text-decoration:none}}
"""


def _label(status: str) -> str:
    text, color = STATUS[status]
    return f"<span class='label status-{status}' style='background:{color}'>{text}</span>"


def _badge(verdict: str) -> str:
    color = VERDICT.get(verdict, "#546e7a")
    return (f"<span class='badge verdict-{escape(verdict)}' style='color:{color};"
            f"border-color:{color}'>{escape(verdict.replace('_', ' '))}</span>")


def _unique(evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidence without repeats of the same record (same file and locator)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for ev in evidence:
        key = (ev["path"], ev["locator"])
        if key not in seen:
            seen.add(key)
            out.append(ev)
    return out


def _evidence_table(evidence: list[dict[str, Any]], host: str | None) -> str:
    """Evidence as a table: time, host, file, locator, excerpt."""
    rows = "".join(
        f"<tr class='evidence'><td class='ts'>{escape(utc_text(ev.get('ts')))}</td>"
        f"<td>{escape(host or '')}</td><td class='file'><code>{escape(ev['path'])}</code></td>"
        f"<td class='loc'><code>{escape(ev['locator'])}</code></td>"
        f"<td>{escape(ev['excerpt'])}</td></tr>"
        for ev in _unique(evidence))
    return ("<table class='evidence'><thead><tr><th>time (UTC)</th><th>host</th><th>file</th>"
            f"<th>locator</th><th>excerpt</th></tr></thead><tbody>{rows}</tbody></table>")


def _steps(items: list[str]) -> str:
    """Numbered fix steps: a step's first line is prose, further lines
    (commands, an LDIF) a block selected whole by one click."""
    out = []
    for item in items:
        first, _, rest = str(item).partition("\n")
        block = f"<pre class='copy'>{escape(rest.strip(chr(10)))}</pre>" if rest.strip() else ""
        out.append(f"<li>{escape(first)}{block}</li>")
    return f"<ol class='steps'>{''.join(out)}</ol>"


def _cause_html(c: dict[str, Any], host: str | None, rank: int) -> str:
    parts = [f"<section class='cause'><h3>{rank}. {escape(c['title'])} {_badge(c['verdict'])} "
             f"<code>{escape(c['id'])}</code></h3><p>{escape(c['explanation'])}</p>"]
    if c["evidence"]:
        parts.append("<h4>Evidence</h4>" + _evidence_table(c["evidence"], host))
    if c["remediation"]:
        parts.append("<h4>Fix</h4>" + _steps(c["remediation"]))
    parts.append("</section>")
    return "".join(parts)


def finding_dict_html(f: dict[str, Any], anchor: str | None = None) -> str:
    """One finding: summary, ranked causes with verdict badges, evidence
    tables, numbered fixes, ruled-out causes folded."""
    color = STATUS[f["status"]][1]
    ident = f" id='{escape(anchor)}'" if anchor else ""
    on = f" on {escape(f['host'])}" if f["host"] else ""
    parts = [f"<article class='finding status-{f['status']}'{ident} style='border-color:{color}'>",
             f"<h2>{_label(f['status'])} <code>{escape(f['check'])}</code>{on}</h2>",
             # an ok finding is not titled by the fault its check looks for
             "" if f["status"] in ("ok", "not_applicable") else f"<p><b>{escape(f['title'])}</b></p>",
             f"<p class='summary'>{escape(f['summary'])}</p>"]
    for i, c in enumerate(live_causes(f), 1):
        parts.append(_cause_html(c, f["host"], i))
    outs = ruled_out(f)
    if outs:
        items = "".join(f"<li><b>{escape(c['title'])}</b> <code>{escape(c['id'])}</code>: "
                        f"{escape(c['explanation'])}</li>" for c in outs)
        parts.append(f"<details class='ruled-out'><summary>Ruled out ({len(outs)})</summary>"
                     f"<ul>{items}</ul></details>")
    further, shown = further_evidence(f)
    if further:
        title = "Further evidence" if shown else "Evidence"
        parts.append(f"<h3>{title}</h3>" + _evidence_table(further, f["host"]))
    todo = further_steps(f, live_causes(f))
    if todo:
        parts.append("<h3>What to do</h3>" + _steps(todo))
    if f["collect"]:
        parts.append("<h3>Collect</h3><ul class='collect'>"
                     + "".join(f"<li>{escape(x)}</li>" for x in f["collect"]) + "</ul>")
    if f["references"]:
        parts.append("<p class='refs'>References: " + "; ".join(escape(r) for r in f["references"]) + "</p>")
    parts.append("</article>")
    return "".join(parts)


def finding_html(finding: Any) -> str:
    return f"<div class='exa'><style>{STYLE}</style>{finding_dict_html(finding.to_dict())}</div>"


def _header(report: dict[str, Any]) -> str:
    case = report["case"]
    tool = report.get("tool") or {}
    ic = inventory_counts(report)
    files = f"{len(report['inventory'])}" + (" (" + ", ".join(
        f"{n} {s}" for s, n in sorted(ic.items())) + ")" if ic else "")
    sc = status_counts(report)
    found = ", ".join(f"{sc[s]} {STATUS[s][0].lower()}" for s in STATUS if s in sc) or "none"
    meta = [("Source", f"<code>{escape(case['source'])}</code>"),
            ("Analyzed at", escape(case["analyzed_at"])),
            ("Tool", escape(f"{tool.get('name', 'exchange-analyzer')} {tool.get('version', '')}".strip())),
            ("Hosts", escape(", ".join(case["hosts"]) or "(none found)")),
            ("Files", escape(files)), ("Findings", escape(found))]
    opts = (report.get("run") or {}).get("options")
    if opts:
        meta.append(("Options", escape(", ".join(f"{k}={v}" for k, v in opts.items()))))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    return (f"<header><h1>exchange-analyzer: {escape(case['name'])}</h1>"
            f"<dl class='meta'>{dl}</dl></header>")


def _status_table(report: dict[str, Any]) -> str:
    """Hosts down, checks across; each cell the finding's status label
    (linking to it) and its top cause, in the manner of HealthChecker."""
    findings = report["findings"]
    checks = sorted({f["check"] for f in findings})
    hosts = sorted({f["host"] or "" for f in findings}, key=lambda h: (h == "", h.lower()))
    cells: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}
    for i, f in enumerate(findings):
        cells.setdefault((f["host"] or "", f["check"]), []).append((i, f))
    head = "".join(f"<th>{escape(c)}</th>" for c in checks)
    rows = []
    for h in hosts:
        tds = []
        for c in checks:
            here = cells.get((h, c))
            if not here:
                tds.append("<td class='none'>—</td>")
                continue
            i, f = here[0]  # findings are ordered worst first
            live = live_causes(f)
            top = f"<br><small>{escape(live[0]['id'])} ({escape(live[0]['verdict'])})</small>" if (
                live and f["status"] in ("problem", "inconclusive")) else ""
            label, color = STATUS[f["status"]]
            tds.append(f"<td class='status status-{f['status']}' data-status='{f['status']}' "
                       f"style='background:{color}'><a href='#finding-{i}'>{label}</a>{top}</td>")
        rows.append(f"<tr><th>{escape(h or '(case)')}</th>{''.join(tds)}</tr>")
    return (f"<section id='status'><h2>Status</h2><table class='status'><thead><tr><th>host</th>"
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>")


def _inventory(report: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr class='file'><td><code>{escape(e['path'])}</code></td><td>{escape(e['kind'] or '')}</td>"
        f"<td><span class='label' style='background:{INVENTORY.get(e['status'], '#757575')}'>"
        f"{escape(e['status'])}</span></td><td class='num'>{int(e['rows'])}</td>"
        f"<td>{escape(e['detail'] or '')}</td></tr>"
        for e in report["inventory"])
    return ("<section id='inventory'><h2>Inventory</h2><table class='inventory'><thead><tr>"
            "<th>file</th><th>kind</th><th>status</th><th>rows</th><th>reason / detail</th></tr>"
            f"</thead><tbody>{rows}</tbody></table></section>")


#: Verdict status -> the color of the finding status it stands for.
VERDICT_COLOR = {"problem": STATUS["problem"][1], "ok": STATUS["ok"][1],
                 "no_verdict": STATUS["inconclusive"][1], "unreadable": STATUS["inconclusive"][1]}


def report_html(report: dict[str, Any], standalone: bool = False) -> str:
    """The case page: header, status table, timeline, findings, inventory
    (and message-tracking statistics when the report carries them)."""
    from ..report import report_verdict
    from .timeline_svg import statistics_html, timeline_html

    verdict = report_verdict(report)
    body = [f"<p class='verdict verdict-{escape(verdict.status)}' style='font-weight:bold;"
            f"color:{VERDICT_COLOR.get(verdict.status, '#000')}'>{escape(verdict.summary)}</p>",
            _header(report), _status_table(report), timeline_html(report)]
    if report.get("statistics"):
        body.append(statistics_html(report["statistics"]))
    body.append("<section id='findings'>")
    body += [finding_dict_html(f, f"finding-{i}") for i, f in enumerate(report["findings"])]
    body.append("</section>")
    body.append(_inventory(report))
    html = f"<div class='exa'>{''.join(body)}</div>"
    if not standalone:
        return f"<style>{STYLE}</style>{html}"
    sc = status_counts(report)
    state = f"{sc['problem']} problem(s)" if sc.get("problem") else "no problem found"
    title = f"exchange-analyzer: {report['case']['name']} — {state}"
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{html}</body></html>\n")
