"""Exchange 2000/2003 message tracking rows, a batch of lines at a time.

A 500k-line daily log read row by row (a dict per line, the knowledge
names looked up per field, ``strptime`` and ``json.dumps`` per row) ran at
~14k rows/s. Here a batch of TAB lines becomes one Arrow table: the header
is resolved once (:class:`_Layout`: each column's ``data`` key and kind),
fields are split and trimmed by Arrow, dates parsed per column, and the
``data`` JSON is concatenated from per-column pieces. Values Python treats
in its own way (Unicode digits, ``;`` lists, JSON escapes, dates in the
other accepted formats) go through the row-at-a-time functions of
:mod:`analyzer.sources.tracking`, once per distinct value, so each row is
exactly what :meth:`TrackingLogSource._legacy_row` gives
(``tests/test_text_rows_identity.py``). A header the fast path does not
model (two columns with one name or one ``data`` key) makes the batch go
through ``_legacy_row`` itself.
"""
from __future__ import annotations

import functools
import json
import re
from collections import deque
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import knowledge
from . import _columnar

if TYPE_CHECKING:
    from .base import ParseContext
    from .tracking import TrackingLogSource

#: Values a 2000/2003 log writes for "nothing".
_BLANK = ("", "-")
#: Keys the row adds after the columns' own: a column may not produce them.
_ADDED = frozenset({"event", "event_id", "event_2007", "server", "client"})
#: Keys whose value the message, host and defaults read: plain strings.
_STR_KEYS = ("sender", "message_id", "server_hostname", "client_hostname", "client_ip")
#: ``2003-9-12`` and ``22:53:18`` / ``22:53:18 GMT``: the shape parsed by
#: Arrow; other shapes go to Python's parser (``tracking._legacy_ts``).
_DATE = re.compile(r"(?P<y>(?:19|20|21)[0-9]{2})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})\Z")
_EPOCH = date(1970, 1, 1)


class _Layout:
    """What a header's columns become, worked out once per header: for
    each column its index, ``data`` key and kind (``str``/``list``/``int``),
    which column holds the Event-ID, Date and Time. ``ok`` is False when
    the fast path would not give what the row-at-a-time code gives."""

    def __init__(self, cols: list[str]) -> None:
        from .tracking import column_role

        k = knowledge.load("tracking")
        self.cols = cols
        self.members: list[tuple[int, str, str]] = []
        self.event_col: int | None = None
        events = 0
        for i, col in enumerate(cols):
            role, key = column_role(col)
            if role == "event-id":
                self.event_col, events = i, events + 1
            elif role != "drop":
                self.members.append((i, key, role))
        # rec = {c: ...} keeps the last column of a name; g() the last of a
        # lower-cased name: the Date and Time the row-at-a-time code reads
        last = {c: i for i, c in enumerate(cols)}
        lower = {c.lower(): c for c in cols}
        self.date_col = last.get(lower.get("date", "Date"))
        self.time_col = last.get(lower.get("time", "Time"))
        keys = [key for _i, key, _k in self.members]
        kinds = {key: kind for _i, key, kind in self.members}
        self.ok = (len(set(cols)) == len(cols) and len(set(keys)) == len(keys) and events <= 1
                   and not _ADDED & set(keys)
                   and all(kinds.get(key, "str") == "str" for key in _STR_KEYS)
                   and kinds.get("recipients", "list") == "list")
        self.key_col = {key: i for i, key, _k in self.members}
        own = k["own_server"]
        self.own = dict(own)  # looked up with the event upper-cased, as hosts.py does
        self.own_default = own["default"]
        self.ok = self.ok and all(kinds.get(side, "str") == "str" for side in own.values())


@functools.lru_cache(maxsize=16)
def _layout(cols: tuple[str, ...]) -> _Layout:
    return _Layout(list(cols))


class LegacyBatch:
    """TAB lines of one header waiting to become a table."""

    #: Batches built at once on worker threads (one per core here).
    WORKERS = 2

    def __init__(self) -> None:
        self.cols: list[str] | None = None
        self.nos: list[int] = []
        self.texts: list[str] = []
        self.last: int | None = None
        #: rows yielded so far (for "no tracking entries found")
        self.rows = 0
        #: of the block the lines come from (a batch never spans blocks):
        #: no character JSON escapes; that, and ASCII only
        self.checked = False
        self.plain = False
        #: a batch being built on the worker thread (see :meth:`flush`)
        self._pending: deque[tuple[Any, int, list[int], list[str], int | None, list[str]]] = deque()
        self._pool: Any = None

    def add(self, ctx: ParseContext, src: TrackingLogSource, cols: list[str], start: int,
            texts: list[str], last: bool) -> Iterator[Any]:
        """Consecutive rows of the header ``cols``, the first on line
        ``start``; ``last``: the final one is the file's unterminated last
        line. Rows gathered under another header are flushed first (one
        table has one header's columns)."""
        if self.cols is not cols:
            yield from self.flush(ctx, src)
            self.cols = cols
        self.nos.extend(range(start, start + len(texts)))
        self.texts.extend(texts)
        if last:
            self.last = start + len(texts) - 1

    def flush(self, ctx: ParseContext, src: TrackingLogSource, wait: bool = True) -> Iterator[Any]:
        """The rows of the batch built before (see ``wait``), then this
        batch's rows (one table), and an empty batch. If the fast path
        cannot take the header, or fails, the lines go through the
        row-at-a-time code (which then fails, or warns, as it always did).

        ``wait=False`` (the end of a block of lines): the batch is built on
        a worker thread (up to :data:`WORKERS` at once) and handed on by a
        later flush, while this thread reads and matches the next blocks;
        the Arrow kernels of a build release the GIL (measured: a 500k-line
        log 3.35 -> 2.75 s). Every other flush (before a line that is not a
        row is acted on, at the end) hands on every queued batch first and
        waits, so rows and warnings keep file order."""
        nos, texts, last, cols = self.nos, self.texts, self.last, self.cols or []
        self.nos, self.texts, self.last = [], [], None
        layout = _layout(tuple(cols))
        if wait or not nos or not layout.ok:
            yield from self._collect_pending(ctx, src)
        if not nos:
            return
        args = (layout, nos, texts, last, ctx.path, self.checked, self.plain)
        if not layout.ok:
            yield from self._emit(ctx, src, None, nos, texts, last, cols)
        elif wait:
            yield from self._emit(ctx, src, _try_build(*args), nos, texts, last, cols)
        else:
            self._pending.append((self._worker().submit(_try_build, *args), len(ctx.warnings),
                                  nos, texts, last, cols))
            while len(self._pending) > self.WORKERS:
                yield from self._collect_one(ctx, src)

    def _collect_pending(self, ctx: ParseContext, src: TrackingLogSource) -> Iterator[Any]:
        while self._pending:
            yield from self._collect_one(ctx, src)

    def _collect_one(self, ctx: ParseContext, src: TrackingLogSource) -> Iterator[Any]:
        """The oldest batch built on a worker, handed on. Its warnings go
        where its lines were in the file: before any warning given since it
        was queued (an over-long line after its block)."""
        future, at, nos, texts, last, cols = self._pending.popleft()
        before = len(ctx.warnings)
        yield from self._emit(ctx, src, future.result(), nos, texts, last, cols)
        mine = len(ctx.warnings) - before
        if at < before and mine:
            moved = ctx.warnings[before:]
            del ctx.warnings[before:]
            ctx.warnings[at:at] = moved
        if mine:  # the batches queued after it now start that much later
            self._pending = deque((f, a + mine, *rest) for f, a, *rest in self._pending)

    def _worker(self) -> Any:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor
            self._pool = ThreadPoolExecutor(max_workers=self.WORKERS,
                                            thread_name_prefix="tracking-batch")
        return self._pool

    def close(self) -> None:
        """Stop the worker (a parse that ends early leaves no build running)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._pending.clear()

    def _emit(self, ctx: ParseContext, src: TrackingLogSource, built: Any, nos: list[int],
              texts: list[str], last: int | None, cols: list[str]) -> Iterator[Any]:
        if built is None:
            for no, text in zip(nos, texts):
                row = src._legacy_row(ctx, text.split("\t"), cols, no, no == last)
                if row:
                    self.rows += 1
                    yield row
            return
        out, warnings = built
        for no, message in warnings:
            ctx.warn(message, f"line={no}")
        if out.num_rows:
            self.rows += out.num_rows
            yield from _columnar.handed_on(out)


def _try_build(*args: Any) -> tuple[pa.Table, list[tuple[int, str]]] | None:
    """:func:`_build`, or None when the fast path fails on these lines."""
    try:
        return _build(*args)
    except (pa.ArrowException, ValueError, KeyError, TypeError, OverflowError):
        return None


# -- the columns ----------------------------------------------------------------

def _fields(texts: pa.Array, n_cols: int, plain: bool) -> tuple[pa.Array, list[pa.Array]]:
    """(field count, each column's stripped value; "" past a short line).
    ``plain``: the text is ASCII without control characters, so the only
    blank a field can start or end with is a space, and columns without
    one are not trimmed."""
    parts = pc.split_pattern(texts, "\t")
    counts = pc.list_value_length(parts)
    if pc.min(counts).as_py() < n_cols:  # short lines: pad them with empty fields
        parts = pc.split_pattern(_columnar.concat([texts, "\t" * n_cols]), "\t")
    values = []
    for i in range(n_cols):
        v = pc.list_element(parts, i)
        if not plain:
            v = pc.utf8_trim(v, _columnar.PY_WHITESPACE)
        elif pc.any(pc.or_(pc.starts_with(v, " "), pc.ends_with(v, " "))).as_py():
            v = pc.ascii_trim(v, " ")
        values.append(v)
    return counts, values


def _day(value: str) -> int | None:
    """Days since 1970 of a ``2003-9-12`` date (1900-2199), None for any
    other shape or an invalid date."""
    m = _DATE.match(value)
    if not m:
        return None
    try:
        return (date(int(m["y"]), int(m["m"]), int(m["d"])) - _EPOCH).days
    except ValueError:
        return None


def _seconds(times: pa.Array) -> pa.Array:
    """Second of the day of each ``22:53:18`` / ``22:53:18 GMT`` (null for
    any other shape): one or two digits of hour (0-23), two of minute and
    of second (00-59), as ``%H:%M:%S`` reads them, in Arrow."""
    bare = pc.if_else(pc.ends_with(times, " GMT"), pc.utf8_slice_codeunits(times, 0, -4), times)
    parts = pc.split_pattern(_columnar.concat([bare, "::"]), ":")
    three = pc.equal(pc.list_value_length(parts), 5)
    h, m, sec = (pc.list_element(parts, k) for k in range(3))
    shape = pc.and_(pc.and_(three, pc.is_in(pc.utf8_length(h), pa.array([1, 2], pa.int32()))),
                    pc.and_(pc.equal(pc.utf8_length(m), 2), pc.equal(pc.utf8_length(sec), 2)))
    digits = pc.and_(pc.and_(pc.ascii_is_decimal(h), pc.ascii_is_decimal(m)), pc.ascii_is_decimal(sec))
    ok = pc.and_(shape, digits)
    hi, mi, si = (pc.cast(pc.if_else(ok, x, "0"), pa.int64()) for x in (h, m, sec))
    ok = pc.and_(ok, pc.and_(pc.less_equal(hi, 23), pc.and_(pc.less_equal(mi, 59), pc.less_equal(si, 59))))
    total = pc.add(pc.add(pc.multiply(hi, 3600), pc.multiply(mi, 60)), si)
    return pc.if_else(ok, total, None)


def _timestamps(d: pa.Array, t: pa.Array) -> pa.Array:
    """``tracking._legacy_ts`` of every row. In the usual shapes
    (``2003-9-12`` and ``22:53:18`` / ``22:53:18 GMT``) the first format
    it tries reads date and time apart, so each distinct date and each
    distinct time is read once; the other rows go through ``_legacy_ts``
    itself, once per distinct pair."""
    from .tracking import _legacy_ts

    de = pc.dictionary_encode(d)
    te = pc.dictionary_encode(t)
    days = pa.array([_day(v) for v in de.dictionary.to_pylist()], pa.int64()).take(de.indices)
    secs = _seconds(te.dictionary).take(te.indices)
    micros = pc.multiply(pc.add(pc.multiply(days, 86400), secs), 1_000_000)
    ts = pc.cast(micros, pa.timestamp("us", tz="UTC"))
    if ts.null_count == 0:
        return ts
    idx = np.flatnonzero(pc.is_null(ts).to_numpy(zero_copy_only=False))
    seen: dict[tuple[str, str], datetime | None] = {}
    fixed = [seen[k] if (k := (a, b)) in seen else seen.setdefault(k, _legacy_ts(a, b))
             for a, b in zip(d.take(idx).to_pylist(), t.take(idx).to_pylist())]
    mask = np.zeros(len(d), dtype=bool)
    mask[idx] = True
    return pc.replace_with_mask(ts, pa.array(mask), pa.array(fixed, pa.timestamp("us", tz="UTC")))


def _split(value: str) -> list[str]:
    from .tracking import list_value

    return list_value(value, _BLANK)


def _blank(v: pa.Array) -> pa.Array:
    """Where a value is one of :data:`_BLANK` (every one at most a byte
    long: a length test first spares the text compares of every row)."""
    short = pc.fill_null(pc.less_equal(pc.binary_length(v), max(len(b.encode()) for b in _BLANK)), False)
    if not pc.any(short).as_py():
        return short
    return pc.and_(short, pc.is_in(v, pa.array(_BLANK)))


def _member(key: str, kind: str, v: pa.Array, checked: bool, blank: pa.Array) -> list[pa.Array | str]:
    """The pieces (literals and arrays) of ``"key": value, `` of one column
    ("" where ``blank``), as ``_fields`` writes it for the column's kind. A
    column without blanks adds its values to the one concatenation that
    builds ``data``; only mixed columns cost a concatenation of their own."""
    blanks = pc.sum(blank).as_py() or 0
    if blanks == len(v):
        return []
    head = json.dumps(key, ensure_ascii=False) + ": "
    if kind == "str":
        pieces: list[pa.Array | str] = [head + '"', v, '", '] if checked else \
            [head, _columnar.json_str(v), ", "]
    elif kind == "int":
        simple = pc.fill_null(pc.match_substring_regex(v, r"^-?[0-9]{1,18}$"), False)
        value = pc.cast(pc.cast(pc.if_else(simple, v, None), pa.int64()), pa.string())
        odd = pc.and_(pc.invert(simple), pc.invert(blank))
        if pc.any(odd).as_py():
            other = _columnar.map_unique(pc.if_else(odd, v, None), lambda x: None if x is None else json.dumps(
                int(x) if x.lstrip("-").isdecimal() else x, ensure_ascii=False))
            value = pc.if_else(odd, other, value)
        pieces = [head, value, ", "]
    else:
        odd = pc.and_(pc.match_substring(v, ";"), pc.invert(blank))
        if checked and not pc.any(odd).as_py():
            pieces = [head + '["', v, '"], ']
        else:
            value = _columnar.concat(["[", _columnar.json_str(v, checked), "]"])
            if pc.any(odd).as_py():
                other = _columnar.map_unique(pc.if_else(odd, v, None), lambda x: None if x is None else
                                             json.dumps(_split(x), ensure_ascii=False))
                value = pc.if_else(odd, other, value)
            pieces = [head, value, ", "]
    if blanks:
        return [pc.if_else(blank, "", _columnar.concat(pieces))]
    return pieces


def _event_columns(layout: _Layout, values: list[pa.Array], n: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(JSON of event/event_id/event_2007, event name, the data key naming
    the log's own server) of every row, once per distinct Event-ID."""
    from .tracking import _event

    def per_value(v: str | None) -> tuple[str, str | None, str]:
        ev = {"event": None, "event_id": None, "event_2007": None} if v is None or v in _BLANK \
            else _event(v)
        piece = ", ".join(f"{json.dumps(k)}: {json.dumps(x, ensure_ascii=False)}" for k, x in ev.items())
        name = ev["event"]
        side = layout.own.get(name.upper()) if isinstance(name, str) and ev["event_id"] is None else None
        return piece + ", ", name or None, side or layout.own_default

    src = values[layout.event_col] if layout.event_col is not None else pa.nulls(n, pa.string())
    enc = pc.dictionary_encode(src, null_encoding="encode")
    done = [per_value(v) for v in enc.dictionary.to_pylist()]
    return tuple(pa.array([x[k] for x in done], pa.string()).take(enc.indices) for k in range(3))


def _value(layout: _Layout, values: list[pa.Array], key: str, n: int,
           blank: Callable[[int], pa.Array]) -> pa.Array:
    """A plain-string key's value per row, null where blank or absent."""
    i = layout.key_col.get(key)
    if i is None:
        return pa.nulls(n, pa.string())
    return pc.if_else(blank(i), None, values[i])


def _build(layout: _Layout, nos: list[int], texts: list[str], last: int | None, path: str,
           checked: bool, plain: bool) -> tuple[pa.Table, list[tuple[int, str]]]:
    """The batch's table and its warnings (line, message) in line order
    (``checked``, ``plain``: see :class:`LegacyBatch`)."""
    n_all = len(nos)
    counts, values = _fields(pa.array(texts, pa.string()), len(layout.cols), plain)
    empty = _columnar.constant("", n_all)
    d = values[layout.date_col] if layout.date_col is not None else empty
    t = values[layout.time_col] if layout.time_col is not None else empty
    ts = _timestamps(d, t)
    short = pc.less(counts, 10)
    bad = pc.or_(pc.is_null(ts), short)
    no_arr = pa.array(nos, pa.int64())
    is_last = pc.equal(no_arr, last if last is not None else -1)
    cut = pc.and_(pc.and_(is_last, pc.invert(bad)), pc.less(counts, len(layout.cols)))
    warnings = _warnings(bad, cut, is_last, counts, nos)
    keep = pc.invert(short)
    if not pc.all(keep).as_py():
        values = [v.filter(keep) for v in values]
        ts, bad, cut, no_arr = ts.filter(keep), bad.filter(keep), cut.filter(keep), no_arr.filter(keep)
    n = len(no_arr)
    blanks: dict[int, pa.Array] = {}

    def blank(i: int) -> pa.Array:
        """Column ``i``'s blank mask, worked out once for the batch."""
        if i not in blanks:
            blanks[i] = _blank(values[i])
        return blanks[i]

    event_json, event_name, side = _event_columns(layout, values, n)
    pieces: list[pa.Array | str] = ["{"]
    for i, key, kind in layout.members:
        pieces += _member(key, kind, values[i], checked, blank(i))
    pieces.append(event_json)
    for key, default in (("recipients", "[]"), ("sender", "null"), ("message_id", "null")):
        i = layout.key_col.get(key)
        piece = f'"{key}": {default}, '
        pieces.append(piece if i is None else pc.if_else(blank(i), piece, ""))
    server = pa.nulls(n, pa.string())
    for key in set(side.unique().to_pylist()):
        server = pc.if_else(pc.equal(side, key), _value(layout, values, key, n, blank), server)
    client = pc.coalesce(_value(layout, values, "client_hostname", n, blank),
                         _value(layout, values, "client_ip", n, blank))
    pieces += ['"server": ', _columnar.json_str(server, checked), ', "client": ',
               _columnar.json_str(client, checked), "}"]
    data = _columnar.concat(pieces)
    message = pc.binary_join_element_wise(
        event_name, _value(layout, values, "sender", n, blank), _recipients_text(layout, values, n, blank),
        _value(layout, values, "message_id", n, blank), " ", null_handling="skip")
    status = pc.if_else(pc.or_(bad, cut), "partial", "ok")
    out = _columnar.batch_table({
        "ts": ts, "ts_source": _columnar.constant("utc", n), "host": server,
        "kind": _columnar.constant("tracking_entry", n), "level": _columnar.constant("information", n),
        "message": message, "data": data, "locator": _columnar.locators(no_arr), "parse_status": status,
    }, n, "tracking", path)
    return out, warnings


def _recipients_text(layout: _Layout, values: list[pa.Array], n: int,
                     blank: Callable[[int], pa.Array]) -> pa.Array:
    """``-> a;b`` of the message (null when the row has no recipient)."""
    i = layout.key_col.get("recipients")
    if i is None:
        return pa.nulls(n, pa.string())
    v = values[i]
    simple = pc.invert(pc.match_substring(v, ";"))
    joined = pc.if_else(simple, v, None)
    if not pc.all(simple).as_py():
        other = _columnar.map_unique(pc.if_else(simple, None, v),
                                     lambda x: None if x is None else ";".join(_split(x)))
        joined = pc.if_else(simple, joined, other)
    joined = pc.if_else(pc.or_(blank(i), pc.equal(joined, "")), None, joined)
    return _columnar.concat(["-> ", joined])


def _warnings(bad: pa.Array, cut: pa.Array, is_last: pa.Array, counts: pa.Array,
              nos: list[int]) -> list[tuple[int, str]]:
    """What ``_legacy_row`` warns, in line order: an unreadable (or cut)
    row, an unterminated short last line."""
    flagged = np.flatnonzero(pc.or_(bad, cut).to_numpy(zero_copy_only=False))
    out = []
    for k in flagged.tolist():
        if bad[k].as_py():
            out.append((nos[k], "truncated last line" if is_last[k].as_py()
                        else f"unreadable tracking row ({counts[k].as_py()} fields)"))
        else:
            out.append((nos[k], "truncated last line"))
    return out
