"""Event log exports as delimited text: Event Viewer Save-As .csv/.txt and
PowerShell ``Export-Csv``.

Variants (examples: tests/fixtures/eventtext/*.csv, tests/fixtures/eventdata/*.csv):

- **Windows 2003 Event Viewer "Save Log File As"** ``.csv`` (comma) and
  ``.txt`` (TAB): one event per line, no header, documented column order
  Date, Time, Source, Type, Category, Event, User, Computer, Description. No
  raw export is public, so the order is *verified from content* (date-like,
  time-like, a type keyword, a numeric id) and the columns are located by
  content when they are elsewhere. A TAB export's description may continue on
  following lines without quoting: a line that does not start a record is
  appended to the previous description.
- **Vista+ Event Viewer "Save All Events As" CSV/TXT**: header ``Level,Date and
  Time,Source,Event ID,Task Category`` and the description as an extra,
  unnamed last column (layout as we know it from Event Viewer; inferred, no
  public sample).
- **PowerShell** ``Get-WinEvent | Export-Csv`` (EventLogRecord columns
  ``Message, Id, ..., ProviderName, LogName, MachineName, TimeCreated,
  LevelDisplayName ...``) and ``Get-EventLog | Export-Csv`` (``EventID,
  MachineName, EntryType, Message, Source, InstanceId, TimeGenerated ...``),
  with the ``#TYPE ...`` first line of Windows PowerShell 5.1 or without it
  (PowerShell 6+, ``-NoTypeInformation``), quoted fields with embedded
  newlines in Message, and any subset of columns (``Select-Object``).
  Windows PowerShell 5.1 writes ASCII: non-ASCII letters arrive as ``?`` and
  cannot be restored.

All times in these exports are local wall-clock times without zone (the
exporting machine's culture formats them): ``ts_source = "local"``, stored as
if UTC (see eventtext.py).
"""
from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from typing import Any

from .. import textio
from ..messages import extract_fields
from . import ParseContext, Source, register
from .eventtext import level_of, parse_local_datetime
from .eventxml import AUDIT_FAILURE, AUDIT_SUCCESS, LEVEL_BY_NUMBER

csv.field_size_limit(16 * 1024 * 1024)

#: Header name (lower-case, spaces removed) -> row field.
HEADER_MAP: dict[str, str] = {
    "message": "message", "description": "message", "beschreibung": "message",
    "id": "event_id", "eventid": "event_id", "event": "event_id", "ereignis-id": "event_id",
    "instanceid": "instance_id",
    "providername": "provider", "source": "provider", "quelle": "provider",
    "logname": "channel", "containerlog": "channel",
    "machinename": "host", "computer": "host",
    "timecreated": "ts", "timegenerated": "ts", "dateandtime": "ts", "datumunduhrzeit": "ts",
    "date": "date", "time": "time",
    "leveldisplayname": "level", "entrytype": "level", "type": "level", "ebene": "level",
    "level": "level_num_or_text",
    "taskdisplayname": "category", "category": "category", "taskcategory": "category",
    "task": "task", "aufgabenkategorie": "category",
    "userid": "user", "username": "user", "user": "user",
    "recordid": "record_id", "index": "record_id",
    "qualifiers": "qualifiers", "providerid": "provider_guid",
}
#: PowerShell columns whose text is a .NET type name, not data.
_USELESS = {"properties", "bookmark", "keywordsdisplaynames", "matchedqueryids", "replacementstrings", "data",
            "site", "container", "timewritten", "categorynumber"}
_TYPES = re.compile(r"^(error|warning|information|success audit|failure audit|audit success|"
                    r"audit failure|critical|verbose|success|failure)$", re.I)
_DATE = re.compile(r"^\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}$")
_TIME = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?(\s*[AaPp]\.?[Mm]\.?)?$")
_INT = re.compile(r"^\d{1,10}$")


def _key(h: str) -> str:
    return re.sub(r"\s+", "", h.strip().strip('"').lower())


def _split(line: str, delim: str) -> list[str]:
    return next(csv.reader([line], delimiter=delim))


def _delimiter(lines: list[str]) -> str:
    tabs = sum(ln.count("\t") for ln in lines)
    commas = sum(ln.count(",") for ln in lines)
    return "\t" if tabs >= max(1, commas // 3) and tabs >= len(lines) else ","


def _header_fields(row: list[str]) -> dict[int, str]:
    return {i: HEADER_MAP[_key(h)] for i, h in enumerate(row) if _key(h) in HEADER_MAP}


def _is_header(row: list[str]) -> bool:
    m = set(_header_fields(row).values())
    return len(m) >= 3 and bool(m & {"event_id", "instance_id"}) and bool(
        m & {"provider", "message", "ts", "level", "channel"})


def _legacy_layout(rows: list[list[str]]) -> dict[str, int] | None:
    """Column positions of a header-less 2003 export, found from content."""
    good = [r for r in rows if len(r) >= 6]
    if not good:
        return None
    ncol = min(len(r) for r in good)

    def col(pred: Any, start: int = 0, avoid: set[int] = frozenset()) -> int | None:
        for i in range(start, ncol):
            if i not in avoid and all(pred(r[i].strip()) for r in good):
                return i
        return None
    d = col(_DATE.match)
    t = col(_TIME.match)
    ty = col(_TYPES.match)
    if d is None or t is None or ty is None:
        return None
    eid = col(_INT.match, ty + 1)
    if eid is None:
        return None
    used = {d, t, ty, eid}
    lay = {"date": d, "time": t, "level": ty, "event_id": eid}
    if ty - 1 >= 0 and ty - 1 not in used:
        lay["provider"] = ty - 1
    if ty + 1 < eid:
        lay["category"] = ty + 1
    if eid + 1 < ncol:
        lay["user"] = eid + 1
    if eid + 2 < ncol:
        lay["host"] = eid + 2
    lay["message"] = eid + 3
    return lay


def _legacy_record(row: list[str]) -> bool:
    return len(row) >= 8 and bool(_DATE.match(row[0].strip()))


def _delim_of(text: str) -> str:
    return "\t" if text.count("\t") >= 3 else ","


def _legacy_records(lines: Iterable[str], ctx: ParseContext) -> Iterator[tuple[int, list[str]]]:
    """Group physical lines into (first line number, fields): a quoted field
    may hold newlines; an unquoted line that does not start a record (no
    leading date, too few fields) continues the previous description."""
    cur_no: int | None = None
    cur_parts: list[str] = []  # the record's physical lines (joined once)
    open_quote = False  # an odd number of quotes so far: inside a quoted field
    cont: list[str] = []

    def done() -> tuple[int, list[str]]:
        cur_raw = "\n".join(cur_parts)
        rows = list(csv.reader(io.StringIO(cur_raw), delimiter=_delim_of(cur_raw)))
        row = rows[0] if rows else []
        for extra in rows[1:]:
            row[-1:] = [row[-1] + "\n" + ",".join(extra)] if row else extra
        if cont and row:
            row[-1] = row[-1] + "\n" + "\n".join(cont)
        return cur_no, row  # type: ignore[return-value]

    for no, raw in enumerate(lines, 1):
        text = raw.rstrip("\r\n")
        if cur_no is not None and not cont and open_quote:
            cur_parts.append(text)  # inside an open quoted field
            open_quote ^= text.count('"') % 2 == 1
            continue
        try:
            row = _split(text, _delim_of(text))
        except csv.Error:
            row = [text]
        if _legacy_record(row):
            if cur_no is not None:
                yield done()
            cur_no, cur_parts, cont = no, [text], []
            open_quote = text.count('"') % 2 == 1
        elif cur_no is not None and text.strip():
            cont.append(text.strip())
        elif text.strip():
            ctx.warn("line outside any record ignored", f"line={no}")
    if cur_no is not None:
        yield done()


def sniff_text(text: str) -> int:
    lines = [ln for ln in text.splitlines() if ln.strip()][:20]
    if not lines:
        return 0
    first = lines[0].lstrip("\ufeff")
    if re.match(r"#TYPE\s+System\.Diagnostics\.(Eventing\.Reader\.EventLogRecord|EventLogEntry)", first):
        return 95
    if first.startswith("#") or first.startswith("<"):
        return 0
    delim = _delimiter(lines[:5])
    try:
        head = _split(first, delim)
    except csv.Error:
        return 0
    if _is_header(head):
        return 80
    rows = []
    for ln in lines[:10]:
        if delim not in ln:
            continue  # a continuation line of a multi-line description
        try:
            rows.append(_split(ln, delim))
        except csv.Error:
            continue
    recs = [r for r in rows if _legacy_record(r)]
    if recs and len(recs) >= max(1, len(rows) // 2) and _legacy_layout(recs[:5]):
        return 75
    return 0


@register
class EventCsvSource(Source):
    name = "eventcsv"
    kind = "event-csv"
    description = ("Event exports as CSV/TAB text: Windows 2003 Save-As .csv/.txt, Vista+ Save-As, "
                   "PowerShell Get-WinEvent/Get-EventLog | Export-Csv")

    def sniff(self, head: bytes, name: str) -> int:
        if not head or textio.looks_binary(head):
            return 0
        return sniff_text(textio.decode_head(head))

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        fh, _enc = textio.open_text(ctx.fs_path)
        with fh:
            # Lines are capped (Limits.max_line_chars): csv.reader would
            # otherwise hold a 1 GB one-line file as one string.
            lines = textio.capped_text(fh)
            first = next(lines, "")
            line_no = 1
            if first.lstrip("\ufeff").startswith("#TYPE"):
                ctx.note(f"PowerShell export ({first.strip()[6:]})")
                first = next(lines, "")
                line_no = 2
            while first and not first.strip():
                first = next(lines, "")
                line_no += 1
            if not first:
                ctx.warn("no rows", None)
                return
            delim = _delimiter([first])
            head = _split(first.rstrip("\r\n"), delim)
            if _is_header(head):
                yield from self._with_header(ctx, lines, head, delim, line_no)
            else:
                yield from self._legacy(ctx, lines, first, delim)

    def _with_header(self, ctx: ParseContext, fh: Any, head: list[str], delim: str,
                     header_line: int) -> Iterator[dict[str, Any]]:
        cols = _header_fields(head)
        names = [h.strip() for h in head]
        reader = csv.reader(fh, delimiter=delim)
        prev = header_line
        for rec in reader:
            start = prev + 1
            prev = header_line + reader.line_num
            if not rec or all(not c.strip() for c in rec):
                continue
            loc = f"line={start}"
            if len(rec) < len(head) - 1 and len(head) > 2:
                ctx.warn(f"row has {len(rec)} of {len(head)} columns", loc)
            f: dict[str, str] = {}
            data: dict[str, Any] = {}
            for i, val in enumerate(rec):
                if i in cols:
                    f.setdefault(cols[i], val)
                elif i < len(names):
                    if val.strip() and _key(names[i]) not in _USELESS:
                        data[names[i]] = val
                else:  # Vista Save-As: the description is an unnamed extra column
                    f["message"] = (f.get("message", "") + ("," if "message" in f else "") + val)
            yield self._row(ctx, f, data, loc)

    def _legacy(self, ctx: ParseContext, fh: Any, first: str, delim: str) -> Iterator[dict[str, Any]]:
        """Header-less 2003 export: the layout is found from the first records."""
        layout: dict[str, int] | None = None
        buffered: list[tuple[int, list[str]]] = []
        for no, rec in _legacy_records(itertools.chain([first], fh), ctx):
            if layout is None:
                buffered.append((no, rec))
                if len(buffered) < 5:
                    continue
                layout = _legacy_layout([r for _n, r in buffered])
                if layout is None:
                    ctx.warn("columns not recognised (no date/time/type/id columns)", f"line={buffered[0][0]}")
                    return
                for n2, r2 in buffered:
                    yield self._legacy_row(ctx, layout, r2, n2)
                buffered = []
                continue
            yield self._legacy_row(ctx, layout, rec, no)
        if buffered:
            layout = _legacy_layout([r for _n, r in buffered])
            if layout is None:
                ctx.warn("columns not recognised (no date/time/type/id columns)", f"line={buffered[0][0]}")
                return
            for n2, r2 in buffered:
                yield self._legacy_row(ctx, layout, r2, n2)

    def _legacy_row(self, ctx: ParseContext, lay: dict[str, int], rec: list[str], no: int) -> dict[str, Any]:
        f: dict[str, str] = {}
        for name, i in lay.items():
            if name == "message":
                f["message"] = ",".join(rec[i:]) if len(rec) > i else ""
            elif i < len(rec):
                f[name] = rec[i]
        return self._row(ctx, f, {}, f"line={no}")

    def _row(self, ctx: ParseContext, f: dict[str, str], data: dict[str, Any], loc: str) -> dict[str, Any]:
        g = {k: v.strip() for k, v in f.items() if v is not None}
        event_id = qual = None
        if g.get("event_id"):
            if _INT.match(g["event_id"]):
                event_id = int(g["event_id"]) & 0xFFFF
            else:
                ctx.warn(f"unreadable event id {g['event_id'][:30]!r}", loc)
        if g.get("instance_id") and _INT.match(g["instance_id"]):
            inst = int(g["instance_id"])
            if event_id is None:
                event_id = inst & 0xFFFF
            qual = inst >> 16 or None
        if g.get("qualifiers") and _INT.match(g["qualifiers"]):
            qual = int(g["qualifiers"])
        when = g.get("ts") or " ".join(x for x in (g.get("date"), g.get("time")) if x)
        ts = parse_local_datetime(when)
        if when and ts is None:
            data["date_text"] = when
        level = None
        lv = g.get("level") or g.get("level_num_or_text")
        if lv:
            if _INT.match(lv):
                level = LEVEL_BY_NUMBER.get(int(lv), "unknown")
            else:
                level = level_of(re.sub(r"(?<=[a-z])(?=[A-Z])", " ", lv))
        kw = data.get("Keywords")
        if kw and re.fullmatch(r"-?\d+", kw.strip()):
            bits = int(kw) & 0xFFFFFFFFFFFFFFFF  # Export-Csv prints the Int64 signed
            if bits & AUDIT_FAILURE:
                level = "audit_failure"
            elif bits & AUDIT_SUCCESS:
                level = "audit_success"
        category = g.get("category") or g.get("task") or None
        user = g.get("user") or None
        if user and user.upper() == "N/A":
            user = None
        if g.get("provider_guid"):
            data["provider_guid"] = g["provider_guid"]
        message = f.get("message").strip() if f.get("message") else None
        provider = g.get("provider") or None
        channel = g.get("channel") or None
        if channel is None and provider and provider.lower() in ("security", "microsoft-windows-security-auditing"):
            channel = "Security"
        for k, v in extract_fields(provider, event_id, message).items():
            data.setdefault(k, v)
        rid = g.get("record_id")
        return {
            "ts": ts, "ts_source": "local" if ts else None, "host": g.get("host") or None,
            "kind": "event", "channel": channel, "provider": provider, "event_id": event_id,
            "qualifiers": qual, "level": level, "category": category, "user": user,
            "record_id": int(rid) if rid and _INT.match(rid) else None,
            "message": message, "data": data or None, "locator": loc, "parse_status": "ok",
        }
