"""Message tracking logs -> ``tracking_entry`` rows (examples:
tests/fixtures/text/tracking_*.log, msgtrk_*.log).

Three variants:

- **Exchange 2000/2003** daily ``yyyymmdd.log`` (System Attendant): header
  ``# Message Tracking Log File`` / ``# Exchange System Attendant Version
  6.x`` / ``# Date<TAB>Time<TAB>Client-IP...`` (a ``#``-comment column line,
  *not* a W3C ``#Fields:``), TAB-separated rows, numeric Event-IDs, times in
  GMT (``22:53:18 GMT``; dates ``2003-9-12`` without zero padding). The
  subject column is empty unless subject logging is on; trailing empty
  columns may be missing. Without a header line the documented 20-column
  order (KB 246965) is used.
- **Exchange 5.5** (same ``.log`` name, no header): TAB-separated, one
  record = a header line (message id, event number, GMT date/time, ...,
  originator DN, recipient count) followed by one line per recipient. No raw
  sample is public; the reader is tolerant and marks such rows "partial"
  when the recipient lines do not add up.
- **Exchange 2007+** ``MSGTRK*.LOG``: ``#Software``/``#Version``/
  ``#Log-type``/``#Date``/``#Fields:`` header, UTF-8 with BOM, RFC-4180 CSV
  (quoted fields with commas, ``""`` escapes), ``;``-separated multi-values,
  a new header block mid-file (service restart) resets the schema. The field
  list differs between 14.x and 15.x, so columns are always taken from the
  ``#Fields:`` line. Timestamps are ISO-8601 UTC.
- **Message Tracking Center text pasted into a KB** (KB 828938):
  ``2003-9-12 22:53:18 SMTP: Message Delivered Locally to user@contoso.com``,
  several entries run together on one line. The console shows the admin's
  local time, so these rows carry ``ts_source`` "local".

Field names and the names of numeric Event-IDs (KB Q173364 / 246959 /
821905) are knowledge (``knowledge/tracking.yaml``): a 2003 row and a 2007
row carry the same ``data`` keys (``sender``, ``recipients``,
``total_bytes``, ``event``/``event_2007``, ...), see docs/schema.md.
"""
from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import methodcaller
from typing import Any

import pyarrow as pa

from .. import knowledge
from ..hosts import tracking_log_host
from . import _columnar, register
from ._legacytracking import LegacyBatch as _LegacyBatch
from ._textcommon import head_lines
from .base import ParseContext, Source

#: KB 246965 column order of the 2000/2003 log, used when no header is present.
LEGACY_COLUMNS = ["Date", "Time", "Client-IP", "Client-hostname", "Partner-name",
                  "Server-hostname", "Server-IP", "Recipient-address", "Event-ID", "MSGID",
                  "Priority", "Recipient-report-status", "Total-bytes", "Number-recipients",
                  "Origination-time", "Encryption", "Service-version", "Linked-MSGID",
                  "Message-Subject", "Sender-Address"]

_LEGACY_HDR = re.compile(r"^#\s*(?:Message Tracking Log File|Exchange System Attendant Version)", re.I)
_LEGACY_COLS = re.compile(r"^#\s*Date\s+Time\s+Client-IP", re.I)
_MSGTRK_TYPE = re.compile(r"^#Log-type:\s*Message Tracking Log", re.I)
_FIELDS = re.compile(r"^#Fields:\s*(?P<f>.*)$")
_TRAIL = re.compile(
    r"(?P<d>\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4})\s+(?P<t>\d{1,2}:\d{2}(?::\d{2})?(?:\s*[AP]M)?)\s+"
    r"(?P<ev>(?:SMTP|STORE|MTA|X\.?400|Exchange|MAPI|Categorizer|Routing):\s.*?)"
    r"(?=\s+(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{4})\s+\d{1,2}:\d{2}|\s*$)")
_TO = re.compile(r"\s+(?:to|from)\s+(?P<addr>\S+@\S+?)\.?$", re.I)


def _snake(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def event_name(event_id: int) -> str:
    """The KB name of a numeric (5.5/2000/2003) tracking Event-ID."""
    return knowledge.load("tracking")["event_names"].get(event_id, f"event {event_id}")


def _event(value: str) -> dict[str, Any]:
    """``event``, ``event_id`` and ``event_2007`` of an Event-ID column:
    2007+ logs name the event (``RECEIVE``: ``event_id`` stays None, which
    is how a check tells the generations apart), 2000/2003 number it."""
    v = value.strip()
    if v.lstrip("-").isdecimal():
        n = int(v)
        return {"event": event_name(n), "event_id": n,
                "event_2007": knowledge.load("tracking")["event_2007"].get(n)}
    return {"event": v or None, "event_id": None, "event_2007": v.upper() or None}


@functools.lru_cache(maxsize=512)
def column_role(col: str) -> tuple[str, str]:
    """(role, ``data`` key) of a log column, worked out once per column
    name: role ``drop`` (already in ``ts``), ``event-id``, ``list``, ``int``
    or ``str`` (knowledge/tracking.yaml)."""
    k = knowledge.load("tracking")
    low = col.strip().lower()
    if low in k["drop"]:
        return "drop", ""
    if low == "event-id":
        return "event-id", ""
    key = k["rename"].get(low) or _snake(col)
    return ("list" if key in k["lists"] else "int" if key in k["ints"] else "str"), key


def list_value(value: str, blank: tuple[str, ...]) -> list[str]:
    """A ``;``-separated column as a list (blank items left out)."""
    return [x.strip() for x in value.split(";") if x.strip() and x.strip() not in blank]


def _fields(rec: dict[str, str], blank: tuple[str, ...] = ("",)) -> dict[str, Any]:
    """One log line's columns as ``data``: the names, lists and numbers of
    ``knowledge/tracking.yaml``; values in ``blank`` (2003 logs write ``-``)
    are left out."""
    data: dict[str, Any] = {}
    event: dict[str, Any] = {"event": None, "event_id": None, "event_2007": None}
    for col, raw in rec.items():
        value = raw.strip()
        role, key = column_role(col)
        if role == "drop" or value in blank:
            continue
        if role == "event-id":
            event = _event(value)
            continue
        if role == "list":
            data[key] = list_value(value, blank)
        elif role == "int":
            data[key] = int(value) if value.lstrip("-").isdecimal() else value
        else:
            data[key] = value
    data.update(event)
    data.setdefault("recipients", [])
    data.setdefault("sender", None)
    data.setdefault("message_id", None)
    data["server"] = tracking_log_host(data)
    data["client"] = data.get("client_hostname") or data.get("client_ip")
    return data


def _legacy_ts(d: str, t: str) -> datetime | None:
    """``2003-9-12`` + ``22:53:18 GMT`` -> aware UTC datetime (tolerant)."""
    t = re.sub(r"\s*(?:GMT|UTC|Z)\s*$", "", t.strip(), flags=re.I)
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M:%S", "%Y/%m/%d %H:%M:%S",
                "%m/%d/%Y %I:%M:%S %p", "%Y-%m-%d %I:%M:%S %p"):
        try:
            return datetime.strptime(f"{d.strip()} {t}", fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def _iso_ts(v: str) -> datetime | None:
    try:
        return datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


#: A line that may be a 2000/2003 row: a TAB somewhere, and a first
#: non-blank character that is not ``#`` (``\\s`` is what ``str.strip`` strips).
_ROWLIKE = re.compile(r"(?=[^\t]*\t)\s*[^\s#]")
#: What a line of an ASCII block starting with may still be a row (Python's
#: ``\s`` in ASCII, and the comment mark): see :func:`_rowlike`.
_ASCII_SPACE_OR_HASH = (" ", "\t", "\n", "\r", "\f", "\v", "\x1c", "\x1d", "\x1e", "\x1f", "#")
_HAS_TAB = methodcaller("__contains__", "\t")
_ODD_START = methodcaller("startswith", _ASCII_SPACE_OR_HASH)


def _rowlike(lines: list[str], ascii_only: bool) -> list[Any]:
    """Per line, whether it looks like a 2000/2003 row (:data:`_ROWLIKE`:
    a TAB, and a first non-blank character that is not ``#``), truthy or
    None. A block of an ASCII log whose every line holds a TAB and starts
    with neither a blank nor ``#`` is all rows, decided by two C-level
    passes (the regex a line cost 0.9 us: 0.45 s of a 500k-line log)."""
    if ascii_only and "" not in lines and all(map(_HAS_TAB, lines)) \
            and not any(map(_ODD_START, lines)):
        return [True] * len(lines)
    return list(map(_ROWLIKE.match, lines))


#: Characters per block of lines: a legacy batch is flushed at the end of each
#: block, so this bounds a batch (about 5k rows of a 2003 log; with the
#: batches built on workers, 2 MiB blocks raised a 500k-line log's peak from
#: 245 to 290 MB for no gain in speed).
_BLOCK_CHARS = 1 << 20


@dataclass
class _State:
    """Where the line state machine of :meth:`TrackingLogSource.parse` is."""

    csv_fields: list[str] | None = None
    legacy_cols: list[str] | None = None
    legacy_mode: bool = False
    buf: list[str] = field(default_factory=list)
    buf_no: int = 0
    n: int = 0
    r55: dict[str, Any] | None = None


@register
class TrackingLogSource(Source):
    name = "tracking"
    kind = "message-tracking-log"
    description = "Exchange message tracking logs (5.5/2000/2003 TAB, 2007+ MSGTRK CSV, pasted trails)"

    def sniff(self, head: bytes, name: str) -> int:
        lines = head_lines(head)
        nonblank = [ln for ln in lines if ln.strip()]
        if not nonblank:
            return 0
        if any(_MSGTRK_TYPE.match(ln) for ln in lines[:20]):
            return 96
        for ln in lines[:40]:
            m = _FIELDS.match(ln)
            if m:
                cols = {c.strip().lower() for c in m["f"].split(",")}
                if {"event-id", "message-id", "recipient-address"} <= cols:
                    return 93
        if any(_LEGACY_HDR.match(ln) or _LEGACY_COLS.match(ln) for ln in lines[:20]):
            return 95
        tabbed = [ln for ln in nonblank if ln.count("\t") >= 12]
        if len(tabbed) >= 2 and sum(1 for ln in tabbed if self._legacy_row_ok(ln.split("\t"))) >= 2:
            return 70
        trail = sum(len(_TRAIL.findall(ln)) for ln in nonblank)
        trail_lines = sum(1 for ln in nonblank if _TRAIL.search(ln))
        if trail >= 2:
            return 80 if trail_lines / len(nonblank) >= 0.5 else 30
        return 0

    @staticmethod
    def _legacy_row_ok(f: list[str]) -> bool:
        return len(f) >= 12 and f[8].strip().lstrip("-").isdecimal() and _legacy_ts(f[0], f[1]) is not None

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any] | pa.Table]:
        """Rows of every variant; the rows of 2000/2003 TAB lines come in
        Arrow batches built column by column (:class:`_LegacyBatch`), the
        other variants (small in practice) as row dicts.

        The legacy batch is flushed before any other line is acted on and
        at the end of each block of lines (there built on a worker thread
        while the next block is read: :meth:`_LegacyBatch.flush`), so rows
        and warnings keep file order (an over-long line is reported between
        blocks)."""
        st = _State()
        batch = _LegacyBatch()
        try:
            yield from self._blocks(ctx, st, batch)
            yield from batch.flush(ctx, self)
        finally:
            batch.close()
        if st.buf:
            ctx.warn("unterminated quoted field at end of file", f"line={st.buf_no}")
        if st.r55:
            st.n += 1
            yield self._row55(st.r55)
        if st.n + batch.rows == 0:
            ctx.warn("no tracking entries found", None)

    def _blocks(self, ctx: ParseContext, st: _State,
                batch: _LegacyBatch) -> Iterator[dict[str, Any] | pa.Table]:
        """Every block of lines: runs of 2000/2003 rows go to the batch in
        bulk, every other line through :meth:`_one`."""
        for block in _columnar.line_blocks(ctx.fs_path, chars=_BLOCK_CHARS):
            lines, start, end = block.lines, block.start, len(block.lines)
            joined = "\n".join(lines)
            batch.checked = _columnar.no_json_specials([joined])
            ascii_only = joined.isascii()
            batch.plain = batch.checked and ascii_only
            # Which lines look like 2000/2003 rows (a TAB, not a comment, not
            # blank); runs of them are taken in bulk while the state allows.
            found = _rowlike(lines, ascii_only) if "\x00" not in joined else [None] * end
            pos = 0
            while pos < end:
                try:
                    j = found.index(None, pos)
                except ValueError:
                    j = end
                if j > pos and not st.buf and (st.legacy_mode or st.legacy_cols):
                    yield from batch.add(ctx, self, st.legacy_cols or LEGACY_COLUMNS, start + pos,
                                         lines[pos:j], block.last_unterminated and j == end)
                    pos = j
                for i in range(pos, min(j + 1, end)):
                    yield from self._one(ctx, st, batch, lines[i], start + i,
                                         block.last_unterminated and i == end - 1)
                pos = j + 1
            yield from batch.flush(ctx, self, wait=False)

    def _one(self, ctx: ParseContext, st: _State, batch: _LegacyBatch, raw: str, no: int,
             last: bool) -> Iterator[dict[str, Any] | pa.Table]:
        """One line the bulk path did not take, in file order."""
        text = raw.replace("\x00", "")
        stripped = text.strip()
        if not st.buf and "\t" in text and stripped and stripped[0] != "#" and \
                (st.legacy_mode or st.legacy_cols or self._legacy_row_ok(text.split("\t"))):
            # A 2000/2003 row, of a log with a header or without one: rows
            # gather in one batch (a headerless log's rows, flushed one by
            # one, each cost an Arrow build of its own).
            yield from batch.add(ctx, self, st.legacy_cols or LEGACY_COLUMNS, no, [text], last)
            return
        if not stripped and not st.buf:
            return
        yield from batch.flush(ctx, self)
        yield from self._line(ctx, st, text, stripped, no, last)

    def _line(self, ctx: ParseContext, st: _State, text: str, stripped: str, no: int,
              last: bool) -> Iterator[dict[str, Any]]:
        """One line that is not a 2000/2003 row (:meth:`_one` takes those):
        the state machine of every other variant."""
        if st.buf:  # a quoted CSV field spanning lines
            st.buf.append(text)
            joined = "\n".join(st.buf)
            if joined.count('"') % 2 == 0:
                st.buf = []
                row = self._csv_row(ctx, joined, st.csv_fields or [], st.buf_no)
                if row:
                    st.n += 1
                    yield row
            return
        if stripped.startswith("#"):
            if (m := _FIELDS.match(stripped)):
                st.csv_fields = [c.strip() for c in m["f"].split(",")]
            elif _LEGACY_COLS.match(stripped):
                st.legacy_cols = [c.strip() for c in stripped.lstrip("#").split("\t") if c.strip()]
                if len(st.legacy_cols) < 10:  # whitespace-collapsed copy
                    st.legacy_cols = LEGACY_COLUMNS
                st.legacy_mode = True
            elif _LEGACY_HDR.match(stripped):
                st.legacy_mode = True
            return
        if st.csv_fields is not None and not st.legacy_mode and "\t" not in text:
            if text.count('"') % 2:
                st.buf, st.buf_no = [text], no
                return
            row = self._csv_row(ctx, text, st.csv_fields, no)
            if row:
                st.n += 1
                yield row
            return
        if "\t" in text:
            f = text.split("\t")
            # Exchange 5.5: header line (event number in field 2) or recipient line
            if len(f) >= 10 and f[1].strip().isdecimal():
                if st.r55:
                    st.n += 1
                    yield self._row55(st.r55)
                st.r55 = {"f": f, "line": no, "recipients": []}
                return
            if st.r55 is not None:
                st.r55["recipients"].append(f[0].strip())
                return
        trail = list(_TRAIL.finditer(stripped))
        if trail:
            for m in trail:
                st.n += 1
                yield self._trail_row(m, no)
            return
        if st.r55 is not None and stripped:
            st.r55["recipients"].append(stripped)
            return
        if last:
            ctx.warn("truncated last line", f"line={no}")

    # -- 2007+ CSV ------------------------------------------------------------
    def _csv_row(self, ctx: ParseContext, text: str, fields: list[str], no: int) -> dict[str, Any] | None:
        try:
            values = next(csv.reader([text.replace("\n", "\r")]))
        except (csv.Error, StopIteration) as exc:
            ctx.warn(f"unreadable CSV row: {exc}", f"line={no}")
            return None
        values = [v.replace("\r", "\n") for v in values]
        status = "ok"
        if len(values) != len(fields):
            ctx.warn(f"{len(values)} fields, header has {len(fields)}", f"line={no}")
            status = "partial"
        rec = dict(zip(fields, values))
        ts = _iso_ts(rec.get("date-time", ""))
        if ts is None:
            ctx.warn(f"bad date-time {rec.get('date-time', '')[:30]!r}", f"line={no}")
            status = "partial"
        data = _fields(rec)
        return self._row(ts, "utc", data, no, status)

    # -- 2000/2003 TAB ------------------------------------------------------
    def _legacy_row(self, ctx: ParseContext, f: list[str], cols: list[str], no: int,
                    last: bool) -> dict[str, Any] | None:
        rec = {c: (f[i].strip() if i < len(f) else "") for i, c in enumerate(cols)}
        key = {c.lower(): c for c in cols}

        def g(name: str) -> str:
            return rec.get(key.get(name.lower(), name), "")

        ts = _legacy_ts(g("Date"), g("Time"))
        status = "ok"
        if ts is None or len(f) < 10:
            ctx.warn("truncated last line" if last else f"unreadable tracking row ({len(f)} fields)",
                     f"line={no}")
            if len(f) < 10:
                return None
            status = "partial"
        if last and status == "ok" and len(f) < len(cols):
            # an unterminated last line that is also short: cut while written
            ctx.warn("truncated last line", f"line={no}")
            status = "partial"
        data = _fields(rec, blank=("", "-"))
        return self._row(ts, "utc", data, no, status)

    # -- 5.5 ----------------------------------------------------------------
    def _row55(self, r: dict[str, Any]) -> dict[str, Any]:
        f = r["f"]
        ts = None
        dt = f[2].strip() if len(f) > 2 else ""
        for fmt in ("%m/%d/%Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%m/%d/%y %H:%M:%S", "%d/%m/%Y %H:%M:%S"):
            try:
                ts = datetime.strptime(dt, fmt).replace(tzinfo=timezone.utc)
                break
            except ValueError:
                continue
        event_id = int(f[1].strip())
        event = _event(str(event_id))
        recips = [x for x in r["recipients"] if x]
        if len(f) > 13 and f[13].strip():
            recips.insert(0, f[13].strip())
        count = f[12].strip() if len(f) > 12 else ""
        data = {"message_id": f[0].strip() or None, **event,
                "sender": f[6].strip() if len(f) > 6 and f[6].strip() else None,
                "recipients": recips, "server": None, "client": None,
                "gateway": f[3].strip() if len(f) > 3 and f[3].strip() else None,
                "partner": f[4].strip() if len(f) > 4 and f[4].strip() else None,
                "variant": "5.5"}
        status = "ok" if (not count.isdecimal() or int(count) == len(recips)) and ts else "partial"
        return self._row(ts, "utc" if ts else None, data, r["line"], status)

    # -- pasted trail ---------------------------------------------------------
    def _trail_row(self, m: re.Match[str], no: int) -> dict[str, Any]:
        ev = m["ev"].strip()
        ts = _legacy_ts(m["d"], m["t"] if m["t"].count(":") == 2 or "M" in m["t"] else m["t"] + ":00")
        if ts is not None:
            ts = ts.replace(tzinfo=None)  # console local time, stored as wall clock
        to = _TO.search(ev)
        recips = [to["addr"]] if to else []
        event = ev[: to.start()] if to else ev
        data = {"message_id": None, "sender": None, "recipients": recips, "event": event.strip(),
                "event_id": None, "server": None, "client": None, "text": ev, "variant": "pasted-trail"}
        return self._row(ts, "local" if ts else None, data, no, "ok")

    @staticmethod
    def _row(ts: datetime | None, ts_source: str | None, data: dict[str, Any], no: int,
             status: str) -> dict[str, Any]:
        recips = ";".join(data.get("recipients") or [])
        msg = " ".join(x for x in (data.get("event") or "", data.get("sender") or "",
                                   f"-> {recips}" if recips else "", data.get("message_id") or "") if x)
        # The row's host is the server that wrote the log, never the peer it
        # sent to (analyzer/hosts.py).
        return {"kind": "tracking_entry", "ts": ts, "ts_source": ts_source,
                "host": data.get("server"),
                "level": "information", "message": msg, "data": data, "locator": f"line={no}",
                "parse_status": status}
