"""Column-at-a-time helpers for the big text sources (netstat, tracking).

Why: a row dict per line, a ``json.dumps`` per row and a ``strptime`` per
row cost 20-70 µs a line; a 1M-line ``netstat -ano`` or a 500k-line tracking
log then takes a minute. These sources instead match lines in Python (the
same regular expressions as before, so what is a row does not change),
keep the matched fields in lists, and build each batch's columns with Arrow
kernels: JSON ``data`` by string concatenation, dates per column, one
Python call per *distinct* value where a value needs Python's own rules
(state words, Unicode, escapes). Every helper here gives exactly what the
row-at-a-time code gave (``tests/test_text_rows_identity.py`` checks it).

:func:`line_blocks` reads a file in blocks of lines with the same line
numbers, the same over-long-line rule and the same last-line flag as
:func:`analyzer.sources._textcommon.read_lines`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import table, textio
from ._textcommon import _ends_with_newline

#: Rows per Arrow batch a source yields (memory stays bounded by it). With
#: Arrow's freed pages kept for reuse (analyzer/__init__.py), a 1M-line
#: netstat output peaked at 325 MB with 50k-row batches, 286 MB with 25k,
#: at the same speed (benchmarks/big_logs.py row 5).
BATCH_ROWS = 25_000
#: A batch smaller than this is handed on as row dicts: the loader pools the
#: rows of many small files into one table, where a table per file would cost
#: each file a table's overhead (a folder of 4,000 small netstat outputs).
SMALL_BATCH = 1000
#: Characters read per block (a block ends early at an over-long line).
BLOCK_CHARS = 1 << 20
#: Characters JSON escapes in a string (besides which a string is copied as is).
_JSON_SPECIAL = r'[\x00-\x1f"\\]'
#: Every character ``str.strip()`` removes (``str.isspace``), for Arrow trims.
PY_WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())


@dataclass
class Block:
    """Consecutive lines of a file: the number of the first, the lines
    (end-of-line removed), and whether the last one is the file's
    unterminated last line."""

    start: int
    lines: list[str]
    last_unterminated: bool = False


def _raw_blocks(fh: Any, cap: int, chars: int) -> Iterator[tuple[str, Any]]:
    """("lines", (start, lines)) and ("long", (no, offset, length)) items in
    file order; a line longer than ``cap`` (counting its end-of-line) is
    skipped, as :func:`analyzer.textio.capped_lines` does."""
    no, offset, carry = 1, 0, ""
    skipping = -1  # length so far of an over-long line being skipped, or -1
    while True:
        chunk = fh.read(chars)
        if not chunk:
            break
        if skipping >= 0:
            i = chunk.find("\n")
            if i < 0:
                skipping += len(chunk)
                continue
            skipping += i + 1
            yield "long", (no, offset, skipping)
            no, offset, skipping, chunk = no + 1, offset + skipping, -1, chunk[i + 1:]
        data = carry + chunk
        parts = data.split("\n")
        carry = parts.pop()
        if parts and max(map(len, parts)) >= cap:
            run: list[str] = []
            for p in parts:
                if len(p) + 1 > cap:
                    if run:
                        yield "lines", (no - len(run), run)
                        run = []
                    yield "long", (no, offset, len(p) + 1)
                else:
                    run.append(p)
                no += 1
                offset += len(p) + 1
            if run:
                yield "lines", (no - len(run), run)
        elif parts:
            yield "lines", (no, parts)
            no += len(parts)
            offset += len(data) - len(carry)
        if len(carry) > cap:
            skipping, carry = len(carry), ""
    if skipping >= 0:
        yield "long", (no, offset, skipping)
    elif carry:
        if len(carry) > cap:
            yield "long", (no, offset, len(carry))
        else:
            yield "lines", (no, [carry])


def line_blocks(path: Path, encoding: str | None = None, chars: int = BLOCK_CHARS) -> Iterator[Block]:
    """Stream a text file as :class:`Block` s (any encoding textio knows).

    Over-long lines are skipped and reported to the current
    :class:`analyzer.textio.LinePolicy` when ``read_lines`` reports them:
    it reads one line ahead, so the report comes before the line just in
    front of the long one is handed on. The last line handed on carries the
    file's unterminated-last-line flag, as in ``read_lines``.
    """
    pol = textio.current_line_policy()
    fh, enc = textio.open_text(path, encoding)
    with fh:
        terminated = _ends_with_newline(fh.buffer, enc)
        held: tuple[int, list[str]] | None = None
        for what, item in _raw_blocks(fh, pol.max_chars, chars):
            if what == "long":
                if held is not None and len(held[1]) > 1:
                    yield Block(held[0], held[1][:-1])
                    held = (held[0] + len(held[1]) - 1, held[1][-1:])
                if pol.warn is not None:
                    pol.warn(*item)
                continue
            if held is not None:
                yield Block(held[0], held[1])
            held = item
        if held is not None:
            yield Block(held[0], held[1], not terminated)


# -- columns ------------------------------------------------------------------

def map_unique(arr: pa.Array, fn: Callable[[Any], Any], typ: pa.DataType = pa.string()) -> pa.Array:
    """``fn`` applied to each distinct value of ``arr`` (nulls included, as
    None), spread back to every row: Python's own rules at the cost of the
    distinct values."""
    enc = table.one_array(pc.dictionary_encode(arr, null_encoding="encode"))
    values = pa.array([fn(v) for v in enc.dictionary.to_pylist()], type=typ)
    return values.take(enc.indices)


#: Every byte but those JSON escapes (NUL..US except TAB and LF, ``"``, ``\\``):
#: deleting them from UTF-8 text leaves only the bytes that need escapes.
_NOT_JSON_SPECIAL = bytes(b for b in range(256)
                          if not (b < 0x20 and b not in (0x09, 0x0A)) and b not in b'"\\')


def no_json_specials(lines: list[str]) -> bool:
    """Whether none of ``lines`` holds a character JSON escapes (TAB aside:
    a TAB-separated field holds none): then :func:`json_str` may skip its
    per-value check. One C pass over the text."""
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    return not raw.translate(None, _NOT_JSON_SPECIAL)


def json_str(arr: pa.Array, checked: bool = False) -> pa.Array:
    """Each string as ``json.dumps(s, ensure_ascii=False)`` gives it, null
    as ``null``: quotes added by Arrow, Python's encoder only for the
    distinct values that need escapes (``checked``: the caller knows there
    are none)."""
    quoted = pc.binary_join_element_wise('"', arr, '"', "")
    if not checked:
        special = pc.fill_null(pc.match_substring_regex(arr, _JSON_SPECIAL), False)
        if pc.any(special).as_py():
            fixed = map_unique(pc.if_else(special, arr, None),
                               lambda v: None if v is None else json.dumps(v, ensure_ascii=False))
            quoted = pc.if_else(special, fixed, quoted)
    return pc.fill_null(quoted, "null")


def json_int(arr: pa.Array) -> pa.Array:
    """Integers (or nulls) as JSON text."""
    return pc.fill_null(pc.cast(arr, pa.string()), "null")


def concat(pieces: Sequence[pa.Array | str]) -> pa.Array:
    """Row-wise concatenation of string arrays and literals."""
    return pc.binary_join_element_wise(*pieces, "")


def locators(nos: Sequence[int] | pa.Array) -> pa.Array:
    """``line=N`` for each line number."""
    return pc.binary_join_element_wise("line=", pc.cast(pa.array(nos, pa.int64()), pa.string()), "")


def batch_table(columns: dict[str, pa.Array], n: int, source: str, path: str) -> pa.Table:
    """A batch conformed to :data:`analyzer.table.SCHEMA`, with the
    provenance the loader gives row dicts (``source``, ``path``)."""
    cols = dict(columns)
    cols["source"] = constant(source, n)
    cols["path"] = constant(path, n)
    return table.conform_arrow(pa.table(cols))


def handed_on(batch: pa.Table) -> Iterator[pa.Table | dict[str, Any]]:
    """What a source yields for a built batch: the table, or its rows as
    dicts when it is small (see :data:`SMALL_BATCH`)."""
    if batch.num_rows >= SMALL_BATCH:
        yield batch
        return
    cols = [c for c in batch.column_names if c not in ("source", "path")]
    yield from batch.select(cols).to_pylist()


def constant(value: str | None, n: int, typ: pa.DataType = pa.string()) -> pa.Array:
    """A column of ``n`` copies of ``value``."""
    if value is None:
        return pa.nulls(n, typ)
    return pa.array([value], typ).take(pa.array(np.zeros(n, dtype=np.int32)))
