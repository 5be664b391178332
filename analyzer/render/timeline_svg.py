"""Inline-SVG charts of the case page: the evidence timeline across
artifacts and hosts, and bar charts of a report's ``statistics`` block.

Drawn here as text (no script, no library, no network), so the page shows
them offline, in print and in any browser.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape
from typing import Any

from . import STATUS_ORDER

WIDTH, LEFT, RIGHT, TOP, LANE = 1000, 300, 70, 16, 24
COLORS = {"problem": "#c62828", "inconclusive": "#ef6c00", "ok": "#2e7d32",
          "not_applicable": "#757575"}
#: Shapes differ by status too, so the chart reads without colour.
SHAPES = {"problem": "circle", "inconclusive": "diamond", "ok": "square", "not_applicable": "square"}
#: At most this many points are drawn (a report cites few records; the bound
#: keeps the page small whatever a check cites).
MAX_POINTS = 500


def _ts(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def timeline_points(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every timestamped evidence record of the report once (same file and
    locator = same record), with the worst status of the findings citing it,
    in time order."""
    points: dict[tuple[str, str], dict[str, Any]] = {}
    for f in report["findings"]:
        cited = list(f["evidence"]) + [ev for c in f["causes"] for ev in c["evidence"]]
        for ev in cited:
            ts = _ts(ev.get("ts"))
            if ts is None:
                continue
            key = (ev["path"], ev["locator"])
            p = points.setdefault(key, {"ts": ts, "host": f["host"] or "", "path": ev["path"],
                                        "locator": ev["locator"], "excerpt": ev["excerpt"],
                                        "status": f["status"], "checks": []})
            if f["check"] not in p["checks"]:
                p["checks"].append(f["check"])
            if STATUS_ORDER.index(f["status"]) < STATUS_ORDER.index(p["status"]):
                p["status"] = f["status"]
    return sorted(points.values(), key=lambda p: (p["ts"], p["path"], p["locator"]))


def _short(path: str, room: int = 44) -> str:
    """The file part of an evidence path (after the last archive ``!`` or
    folder), clipped to the lane label's room."""
    name = path.replace("\\", "/").rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    return name if len(name) <= room else name[: room - 1] + "…"


def _mark(status: str, x: float, y: float, attrs: str, title: str) -> str:
    """One point: a circle, diamond or square by status, with a tooltip."""
    color = COLORS[status]
    shape = SHAPES[status]
    if shape == "circle":
        tag, geo = "circle", f"cx='{x:.1f}' cy='{y:.1f}' r='5'"
    elif shape == "diamond":
        tag, geo = "polygon", (f"points='{x:.1f},{y - 6:.1f} {x + 6:.1f},{y:.1f} {x:.1f},{y + 6:.1f} "
                               f"{x - 6:.1f},{y:.1f}'")
    else:
        tag, geo = "rect", f"x='{x - 4.5:.1f}' y='{y - 4.5:.1f}' width='9' height='9'"
    return f"<{tag} {geo} fill='{color}' {attrs}><title>{escape(title)}</title></{tag}>"


def _svg(points: list[dict[str, Any]]) -> str:
    lanes = sorted({(p["host"], p["path"]) for p in points}, key=lambda k: (k[0].lower(), k[1]))
    lane_of = {k: i for i, k in enumerate(lanes)}
    t0, t1 = points[0]["ts"], points[-1]["ts"]
    span = (t1 - t0).total_seconds()
    inner = WIDTH - LEFT - RIGHT
    height = TOP + LANE * len(lanes) + 40

    def x_of(ts: datetime) -> float:
        return LEFT + (inner / 2 if span == 0 else inner * (ts - t0).total_seconds() / span)

    out = [f"<svg class='timeline' xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {height}' "
           f"width='100%' role='img' aria-label='timeline of {len(points)} evidence records'>"]
    for (host, path), i in lane_of.items():
        y = TOP + LANE * i
        fill = "#f7f7f7" if i % 2 == 0 else "#ffffff"
        out.append(f"<rect x='0' y='{y}' width='{WIDTH}' height='{LANE}' fill='{fill}'/>"
                   f"<text class='lane' x='4' y='{y + 16}'><title>{escape(path)}</title>"
                   f"{escape((host + ' · ' if host else '') + _short(path))}</text>")
    axis_y = TOP + LANE * len(lanes) + 4
    out.append(f"<line x1='{LEFT}' y1='{axis_y}' x2='{WIDTH - RIGHT}' y2='{axis_y}' stroke='#999'/>")
    ticks = 1 if span == 0 else 4
    for k in range(ticks + 1):
        ts = t0 if span == 0 else datetime.fromtimestamp(t0.timestamp() + span * k / ticks, timezone.utc)
        x = x_of(ts)
        out.append(f"<line x1='{x:.1f}' y1='{TOP}' x2='{x:.1f}' y2='{axis_y + 4}' stroke='#ddd'/>"
                   f"<text class='tick' x='{x:.1f}' y='{axis_y + 18}' text-anchor='middle'>"
                   f"{ts:%Y-%m-%d %H:%M:%S}</text>")
    for n, p in enumerate(points, 1):
        y = TOP + LANE * lane_of[(p["host"], p["path"])] + LANE / 2
        tip = (f"#{n} {p['ts'].isoformat()} {p['status']} [{', '.join(p['checks'])}] "
               f"{p['path']} ({p['locator']}): {p['excerpt']}")
        attrs = f"class='tl-point status-{p['status']}' data-ts='{escape(p['ts'].isoformat())}'"
        out.append(_mark(p["status"], x_of(p["ts"]), y, attrs, tip))
    out.append("</svg>")
    return "".join(out)


def _sequence(points: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr class='tl-row'><td class='num'>{n}</td><td class='ts'>{p['ts']:%Y-%m-%d %H:%M:%S}</td>"
        f"<td>{escape(p['host'])}</td><td><code>{escape(p['path'])}</code></td>"
        f"<td><code>{escape(p['locator'])}</code></td><td>{escape(p['status'])}</td>"
        f"<td>{escape(p['excerpt'])}</td></tr>" for n, p in enumerate(points, 1))
    return (f"<details class='sequence'><summary>The {len(points)} records in order</summary>"
            "<table><thead><tr><th>#</th><th>time (UTC)</th><th>host</th><th>file</th>"
            f"<th>locator</th><th>status</th><th>excerpt</th></tr></thead><tbody>{rows}</tbody>"
            "</table></details>")


def timeline_html(report: dict[str, Any]) -> str:
    """The timeline section: one lane per host and file, one mark per
    timestamped evidence record, shaped and coloured by status."""
    points = timeline_points(report)
    head = "<section id='timeline'><h2>Timeline of the evidence</h2>"
    if not points:
        return head + "<p>No evidence in this report carries a timestamp.</p></section>"
    note = ""
    if len(points) > MAX_POINTS:
        note = f"<p>The first {MAX_POINTS} of {len(points)} timestamped records are drawn.</p>"
        points = points[:MAX_POINTS]
    legend = " ".join(f"<span style='color:{COLORS[s]}'>{'●◆■■'[i]}</span> {s.replace('_', ' ')}"
                      for i, s in enumerate(STATUS_ORDER))
    return (f"{head}<p class='legend'>{len(points)} records from "
            f"{len({p['path'] for p in points})} file(s), cited by findings that are: {legend}. "
            f"Hover a mark for the record.</p>{note}{_svg(points)}{_sequence(points)}</section>")


def _bars(title: str, values: dict[str, float]) -> str:
    items = [(str(k), float(v)) for k, v in values.items()][:40]
    top = max((v for _, v in items), default=0) or 1
    h = 20 * len(items) + 10
    out = [f"<h3>{escape(title)}</h3><svg class='chart' xmlns='http://www.w3.org/2000/svg' "
           f"viewBox='0 0 {WIDTH} {h}' width='100%'>"]
    for i, (label, v) in enumerate(items):
        y = 5 + 20 * i
        w = (WIDTH - LEFT - 120) * v / top
        out.append(f"<text x='4' y='{y + 13}'>{escape(label[:48])}</text>"
                   f"<rect class='bar' x='{LEFT}' y='{y + 2}' width='{w:.1f}' height='14' fill='#1565c0'/>"
                   f"<text x='{LEFT + w + 6:.1f}' y='{y + 13}'>{v:g}</text>")
    out.append("</svg>")
    return "".join(out)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _records_html(name: str, rows: list[dict[str, Any]], counted: list[str]) -> str:
    """A list of records (e.g. messages per server): a bar chart of each
    record's total (``messages``, else the sum of the counted columns, else
    its first number) by its text fields, and the records as a table."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    values: dict[str, float] = {}
    for r in rows:
        label = " · ".join(str(v) for v in r.values() if isinstance(v, str)) or str(len(values) + 1)
        if _number(r.get("messages")):
            total = float(r["messages"])
        elif counted and any(_number(r.get(c)) for c in counted):
            total = float(sum(r[c] for c in counted if _number(r.get(c))))
        else:
            total = float(next((v for v in r.values() if _number(v)), 0))
        values[label] = values.get(label, 0) + total
    head = "".join(f"<th>{escape(str(c))}</th>" for c in cols)
    def cell(v: Any) -> str:
        text = escape("" if v is None else str(v))
        return f"<td class='num'>{text}</td>" if _number(v) else f"<td>{text}</td>"

    body = "".join("<tr>" + "".join(cell(r.get(c)) for c in cols) + "</tr>" for r in rows[:200])
    return (_bars(name, values) + f"<table class='stats'><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def statistics_html(stats: dict[str, Any]) -> str:
    """A report's ``statistics`` block (message-tracking counts): mappings of
    labels to numbers and lists of records as bar charts (records also as a
    table), plain values as a line of text."""
    counted = [c for c in stats.get("statistics", []) if isinstance(c, str)] \
        if isinstance(stats.get("statistics"), list) else []
    facts, parts = [], []
    for name, value in stats.items():
        if isinstance(value, dict) and value and all(_number(v) for v in value.values()):
            parts.append(_bars(str(name), value))
        elif isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            parts.append(_records_html(str(name).replace("_", " "), value, counted))
        elif isinstance(value, (str, int, float)) or value is None or (
                isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value)):
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            facts.append(f"<dt>{escape(str(name))}</dt><dd>{escape(text)}</dd>")
        else:
            parts.append(f"<h3>{escape(str(name))}</h3><pre>"
                         f"{escape(json.dumps(value, indent=1, ensure_ascii=False, default=str))}</pre>")
    dl = f"<dl class='meta'>{''.join(facts)}</dl>" if facts else ""
    return f"<section id='statistics'><h2>Statistics</h2>{dl}{''.join(parts)}</section>"
