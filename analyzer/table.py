"""The normalized event table: one row per observation, whatever the source.

Every source module (event logs, registry, text artifacts) yields rows in this
shape, and every check queries only this table. Keeping one flat table is what
lets a check read like the article it encodes ("is there a DCOM 10000 naming
this CLSID?") instead of knowing eleven file formats.

Design choices (see README "The event table"):
- pyarrow-backed dtypes throughout: Arrow strings and dictionary-encoded
  low-cardinality columns keep a million-row table well under a GB, where
  pandas object columns of dicts cost several hundred bytes per row.
- ``data`` (insertion strings, named EventData, endpoint or process fields) is
  one JSON text column, not one column per name: expanding ~1,000 EventData
  names into columns was measured 10x slower. :func:`row_data` and the
  ``exa`` accessor expand it only for the rows a check or a user asks about.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Column name -> Arrow type. The order is the table's column order.
SCHEMA: dict[str, pa.DataType] = {
    "ts": pa.timestamp("us", tz="UTC"),
    "ts_source": pa.dictionary(pa.int8(), pa.string()),
    "host": pa.dictionary(pa.int32(), pa.string()),
    "source": pa.dictionary(pa.int8(), pa.string()),
    "kind": pa.dictionary(pa.int8(), pa.string()),
    "channel": pa.dictionary(pa.int32(), pa.string()),
    "provider": pa.dictionary(pa.int32(), pa.string()),
    "event_id": pa.int32(),
    "qualifiers": pa.int32(),
    "level": pa.dictionary(pa.int8(), pa.string()),
    "category": pa.string(),
    "user": pa.string(),
    "record_id": pa.int64(),
    "message": pa.string(),
    "data": pa.string(),
    "key": pa.string(),
    "value_name": pa.string(),
    "value_type": pa.dictionary(pa.int8(), pa.string()),
    "value": pa.string(),
    "path": pa.dictionary(pa.int32(), pa.string()),
    "locator": pa.string(),
    "parse_status": pa.dictionary(pa.int8(), pa.string()),
}

COLUMNS: tuple[str, ...] = tuple(SCHEMA)

#: Allowed values of the closed vocabulary columns (``None`` is always allowed).
TS_SOURCES = frozenset({"utc", "local", "date-less", "none"})
LEVELS = frozenset(
    {"critical", "error", "warning", "information", "verbose",
     "audit_success", "audit_failure", "unknown"}
)
PARSE_STATUSES = frozenset({"ok", "partial", "recovered"})
#: Row kinds the sources produce today. New kinds are allowed but must be
#: documented in docs/schema.md; the validator only checks the type.
KINDS = frozenset(
    {"event", "registry_key", "registry_value", "endpoint", "listener",
     "connection", "process", "setup_line", "setup_process", "tracking_entry",
     "ldap_entry"}
)

ARROW_SCHEMA = pa.schema([pa.field(name, typ) for name, typ in SCHEMA.items()])

Row = Mapping[str, Any]


def _norm_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "data":
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, default=str, sort_keys=False)
    if name == "ts":
        ts = pd.Timestamp(value)
        if ts is pd.NaT:
            return None
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        return ts.tz_convert("UTC").to_pydatetime()
    if SCHEMA[name] in (pa.int32(), pa.int64()):
        return int(value)
    if not isinstance(value, str):
        return str(value)
    return value


def rows_to_arrow(rows: Iterable[Row]) -> pa.Table:
    """Build an Arrow table with the canonical schema from row mappings.

    Unknown keys are refused (a typo in a source would otherwise vanish
    silently); missing keys are null.
    """
    cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for row in rows:
        extra = set(row) - cols.keys()
        if extra:
            raise KeyError(f"unknown table column(s): {sorted(extra)}")
        for name in COLUMNS:
            cols[name].append(_norm_value(name, row.get(name)))
    arrays = []
    for name, typ in SCHEMA.items():
        if pa.types.is_dictionary(typ):
            arr = pa.array(cols[name], type=typ.value_type).dictionary_encode()
            arr = arr.cast(typ)
        else:
            arr = pa.array(cols[name], type=typ)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def one_array(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A column as one array: its only chunk as it is, else its chunks
    combined. ``ChunkedArray.combine_chunks`` copies even a single chunk
    (measured 2.9 ms for one 40 MB text column): a per-batch copy of every
    column that already is one piece, as a batch's columns are."""
    if isinstance(col, pa.Array):
        return col
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def conform_arrow(table: pa.Table) -> pa.Table:
    """Cast an Arrow table built by a fast path (e.g. the evtx source) to the
    canonical schema: missing columns become nulls, column order is fixed."""
    if table.schema.equals(ARROW_SCHEMA):  # conformed already (a source's batch)
        return table
    n = table.num_rows
    arrays = []
    for name, typ in SCHEMA.items():
        if name in table.column_names:
            col = table.column(name)
            if col.type != typ:
                if pa.types.is_dictionary(typ) and not pa.types.is_dictionary(col.type):
                    col = col.cast(typ.value_type).dictionary_encode().cast(typ)
                else:
                    col = col.cast(typ)
            arrays.append(col)
        else:
            arrays.append(pa.nulls(n, type=typ))
    extra = set(table.column_names) - set(SCHEMA)
    if extra:
        raise KeyError(f"unknown table column(s): {sorted(extra)}")
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow table -> DataFrame with pyarrow-backed dtypes (no object columns)."""
    return table.to_pandas(types_mapper=pd.ArrowDtype, ignore_metadata=True)


def empty_frame() -> pd.DataFrame:
    return arrow_to_frame(rows_to_arrow([]))


def rows_to_frame(rows: Iterable[Row]) -> pd.DataFrame:
    return arrow_to_frame(rows_to_arrow(rows))


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate conforming frames through Arrow (dictionary columns unify)."""
    if not frames:
        return empty_frame()
    tables = [to_arrow(f) for f in frames]
    merged = pa.concat_tables(tables, promote_options="none").unify_dictionaries()
    return arrow_to_frame(merged.combine_chunks())


def filter_rows(df: pd.DataFrame, mask: Any) -> pd.DataFrame:
    """``df[mask]`` that keeps the index, chunk by chunk.

    pandas selects rows of an Arrow column with a take, and Arrow's take on a
    chunked text column first concatenates every chunk into new memory: for
    a memory-mapped million-row table (see :mod:`analyzer.tablesink`) that
    copies all of ``data`` and ``message`` to pick a few rows. Arrow's filter
    works chunk by chunk and reads only the pages of the rows it keeps.
    """
    keep = np.asarray(mask, dtype=bool)
    if keep.all():
        return df
    if not keep.any() or not len(df.columns):
        return df.iloc[0:0] if not keep.any() else df[keep]
    if not all(isinstance(t, pd.ArrowDtype) for t in df.dtypes):
        return df[keep]
    sel = pa.array(keep)
    cols = {name: pd.arrays.ArrowExtensionArray(df[name].array.__arrow_array__().filter(sel))
            for name in df.columns}
    return pd.DataFrame(cols, index=df.index[keep], copy=False)


def map_values(col: pd.Series, fn: Any, dtype: Any = object) -> np.ndarray:
    """``fn`` of every value of a text column (None for a missing one), as a
    numpy array. A dictionary column is mapped through its dictionary (a few
    distinct values) and its indices, not row by row: a million-row column
    costs one numpy take."""
    arrow = col.dtype.pyarrow_dtype if isinstance(col.dtype, pd.ArrowDtype) else None
    if arrow is None or not pa.types.is_dictionary(arrow):
        vals = col.astype(object).where(col.notna(), None)
        return np.array([fn(v) for v in vals], dtype=dtype) if len(vals) else np.array([], dtype=dtype)
    parts = []
    for chunk in col.array.__arrow_array__().chunks:
        dictionary = chunk.dictionary.to_pylist()
        mapped = np.empty(len(dictionary) + 1, dtype=dtype)
        mapped[:] = [fn(d) for d in dictionary] + [fn(None)]
        idx = chunk.indices
        if idx.null_count:
            idx = idx.fill_null(len(dictionary))
        parts.append(mapped[idx.to_numpy(zero_copy_only=False)])
    return np.concatenate(parts) if parts else np.array([], dtype=dtype)


def search_text(df: pd.DataFrame, column: str, pattern: str, within: np.ndarray | None = None,
                *, literal: bool = False) -> np.ndarray:
    """Where a text column matches ``pattern`` (RE2, case-insensitive; a
    substring when ``literal``), among the rows ``within``, as a mask.

    Chunk by chunk: only the text of the rows searched is read, and only
    one chunk of it is copied at a time, so searching the 4625 events of a
    million-row Security log never copies the log's ``data``.
    """
    hit = np.zeros(len(df), dtype=bool)
    if not len(df):
        return hit
    rows = np.ones(len(df), dtype=bool) if within is None else np.asarray(within, dtype=bool)
    if literal and not any(c.isalpha() for c in pattern):
        # Nothing to fold: RE2 on a plain literal scans with memchr, several
        # times faster than any case-insensitive search (measured 0.7 s
        # against 1.3-4 s over 500 MB of 4625 EventData).
        pattern, literal = re.escape(pattern), False
        search = partial(pc.match_substring_regex, pattern=pattern)
    else:
        search = partial(pc.match_substring if literal else pc.match_substring_regex,
                         pattern=pattern, ignore_case=True)
    start = 0
    for chunk in df[column].array.__arrow_array__().chunks:
        end = start + len(chunk)
        sel = rows[start:end]
        if sel.any():
            text = chunk if sel.all() else chunk.filter(pa.array(sel))
            found = search(text).fill_null(False) \
                .to_numpy(zero_copy_only=False).astype(bool)
            hit[start + np.flatnonzero(sel)[found]] = True
        start = end
    return hit


def search_any(df: pd.DataFrame, needles: Iterable[str], within: np.ndarray,
               columns: Iterable[str] = ("data", "message")) -> np.ndarray:
    """Rows among ``within`` whose text in one of ``columns`` holds one of
    ``needles`` (case-insensitive substrings, :func:`search_text`); a row
    once found is not searched again."""
    hit = np.zeros(len(df), dtype=bool)
    for column in columns:
        for needle in needles:
            hit |= search_text(df, column, needle, within & ~hit, literal=True)
    return hit


def distinct(col: pd.Series) -> list[Any]:
    """The distinct non-null values of a column, through Arrow (a dictionary
    column's unique indices, not a million Python strings)."""
    if not isinstance(col.dtype, pd.ArrowDtype):
        return list(col.dropna().unique())
    found = pc.unique(col.array.__arrow_array__())
    if pa.types.is_dictionary(found.type):
        found = pc.unique(found.dictionary_decode())
    return [v for v in found.to_pylist() if v is not None]


def of_kind(df: pd.DataFrame, *kinds: str) -> pd.DataFrame:
    """The rows of the given kinds (through :func:`filter_rows`)."""
    wanted = set(kinds)
    return filter_rows(df, map_values(df["kind"], wanted.__contains__, bool))


def row_data(value: Any) -> dict[str, Any]:
    """The ``data`` column of one row as a dict (``{}`` for null)."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return {"_raw": value}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}


class TableError(ValueError):
    """Raised by :func:`validate` with every problem found, not just the first."""


def validate(df: pd.DataFrame) -> None:
    """Check that ``df`` is a well-formed event table; raise TableError if not.

    Used by the tests on every source's output and on every case, so a source
    that drifts from the documented schema fails loudly.
    """
    problems: list[str] = []
    if tuple(df.columns) != COLUMNS:
        problems.append(f"columns {list(df.columns)} != {list(COLUMNS)}")
    else:
        for name, typ in SCHEMA.items():
            dtype = df[name].dtype
            if not isinstance(dtype, pd.ArrowDtype) or dtype.pyarrow_dtype != typ:
                problems.append(f"column {name}: dtype {dtype} is not {typ}")
        if not problems:
            def bad(col: str, allowed: frozenset[str]) -> set[str]:
                vals = set(df[col].dropna().astype(str).unique())
                return vals - allowed
            for col, allowed in (("ts_source", TS_SOURCES), ("level", LEVELS),
                                 ("parse_status", PARSE_STATUSES)):
                extra = bad(col, allowed)
                if extra:
                    problems.append(f"column {col}: unexpected values {sorted(extra)}")
            for col in ("source", "kind", "path", "locator"):
                if df[col].isna().any():
                    problems.append(f"column {col}: {int(df[col].isna().sum())} null(s); provenance is required")
            # A timestamp always says where it came from.
            missing_src = df["ts"].notna() & df["ts_source"].isna()
            if missing_src.any():
                problems.append(f"{int(missing_src.sum())} row(s) have ts but no ts_source")
            for i, v in df["data"].dropna().items():
                try:
                    if not isinstance(json.loads(v), dict):
                        raise ValueError
                except ValueError:
                    problems.append(f"row {i}: data is not a JSON object: {v[:60]!r}")
                    break
    if problems:
        raise TableError("; ".join(problems))


def to_arrow(df: pd.DataFrame) -> pa.Table:
    """A conforming DataFrame back to an Arrow table with the canonical schema
    (no pandas metadata, so any Parquet/Arrow reader can open the file)."""
    return pa.Table.from_pandas(df, schema=ARROW_SCHEMA, preserve_index=False).replace_schema_metadata(None)


def parquet_options() -> dict[str, Any]:
    """How the table is written to Parquet: dictionary pages for the
    dictionary columns only. Trying a dictionary on ``data``, ``message``
    and ``locator`` (nearly every value distinct) costs a fifth of the
    write and the file comes out larger (measured on a 500k-line tracking
    log: 0.38 -> 0.30 s, 32 -> 30 MB)."""
    return {"use_dictionary": [f.name for f in ARROW_SCHEMA if pa.types.is_dictionary(f.type)]}


def write_parquet(df: pd.DataFrame, path: Any) -> None:
    import pyarrow.parquet as pq
    pq.write_table(to_arrow(df), path, **parquet_options())


def read_parquet(path: Any) -> pd.DataFrame:
    """Read a table written by :func:`write_parquet` back with the canonical dtypes."""
    import pyarrow.parquet as pq
    return arrow_to_frame(conform_arrow(pq.read_table(path)))
