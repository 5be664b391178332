"""Exports of the event table: Parquet, CSV and JSON Lines, chosen by the
output file's extension, and a timeline that Timesketch imports.

Timesketch reads CSV or JSONL with three required columns: ``message``,
``datetime`` (ISO 8601) and ``timestamp_desc`` (what the time means); any
further column becomes an attribute. :func:`timeline_table` puts these in
front of every column of the normalized table, so the export is both a
Timesketch timeline and the table itself (``parse -o x.csv`` writes the
table alone).

Writing is by Arrow record batches (CSV: pyarrow's writer; JSONL: one
batch's rows at a time), so memory stays bounded by the table already held.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import table as tbl

#: Extension -> format. Anything else is refused (a ``.csv`` that holds
#: Parquet helps nobody).
FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
BATCH_ROWS = 50_000

#: What a row's time means, by kind (Timesketch's ``timestamp_desc``).
TIME_MEANING = {"event": "Event Recorded", "registry_key": "Key Last Written",
                "registry_value": "Key Last Written", "setup_line": "Setup Log Line",
                "setup_process": "Setup Process Started", "tracking_entry": "Message Tracked"}
TIMESKETCH = ("message", "datetime", "timestamp", "timestamp_desc")
#: The table's own ``message`` column is ``event_message`` in a timeline
#: (Timesketch's ``message`` is the one-line description of every row).
RENAMED = {"message": "event_message"}
#: Arrow's ``%S`` prints the microseconds of a timestamp[us].
ISO = "%Y-%m-%dT%H:%M:%S+00:00"


class ExportFormatError(ValueError):
    """An output file name whose extension names no export format."""


def export_format(path: str | Path) -> str:
    """The format ``path``'s extension asks for: parquet, csv or jsonl."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise ExportFormatError(
            f"cannot tell the format of {Path(path).name!r} from its extension: use one of "
            + ", ".join(sorted(FORMATS)))
    return FORMATS[ext]


def _messages(t: pa.Table) -> pa.Array:
    """A one-line description of every row (Timesketch's ``message``), the
    way the reports' excerpts describe rows, computed column-wise."""
    def s(name: str) -> pa.Array:
        col = t.column(name).combine_chunks()
        return col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col.cast(pa.string())

    text = pc.coalesce(s("message"), s("data"), pa.scalar(""))
    empty = pa.scalar("")
    # (join's null_handling="skip" miscounts rows on some pyarrow versions:
    # nulls become "" and the doubled spaces are folded instead)
    head = pc.binary_join_element_wise(*(pc.coalesce(s(c), empty) for c in ("provider", "event_id", "level")),
                                       pa.scalar(" "))
    head = pc.utf8_trim_whitespace(pc.replace_substring(head, "  ", " "))
    event = pc.if_else(pc.equal(pc.utf8_length(text), 0), head,
                       pc.binary_join_element_wise(head, text, pa.scalar(": ")))
    vname = pc.if_else(pc.fill_null(pc.equal(s("value_name"), ""), True),
                       pa.scalar("(Default)"), s("value_name"))
    value = pc.binary_join_element_wise(
        pc.binary_join_element_wise(pc.coalesce(s("key"), pa.scalar("")), vname, pa.scalar("\\")),
        pc.binary_join_element_wise(pc.coalesce(s("value_type"), pa.scalar("")),
                                    pc.coalesce(s("value"), pa.scalar("")), pa.scalar(" ")), pa.scalar(" = "))
    kind = s("kind")
    out = pc.case_when(
        pc.make_struct(pc.equal(kind, "event"), pc.equal(kind, "registry_value"),
                       pc.equal(kind, "registry_key")),
        event, pc.utf8_trim_whitespace(value), pc.coalesce(s("key"), pa.scalar("")), text)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def timeline_table(df: pd.DataFrame) -> pa.Table:
    """The table in time order (rows without a time last, in table order)
    with Timesketch's columns in front: ``message``, ``datetime`` (ISO 8601,
    UTC; empty without a time), ``timestamp`` (microseconds since 1970) and
    ``timestamp_desc`` (with "(local time)" when the source wrote a wall
    clock without a zone)."""
    timed = df.sort_values("ts", kind="stable", na_position="last")
    t = tbl.to_arrow(timed.reset_index(drop=True))
    ts = t.column("ts")
    iso = pc.strftime(ts, format=ISO)
    kinds = timed["kind"].astype(str)
    desc = pa.array(kinds.map(TIME_MEANING).fillna("Time").to_numpy(dtype=object), pa.string())
    local = pc.fill_null(pc.equal(t.column("ts_source").cast(pa.string()), "local"), False)
    desc = pc.if_else(local, pc.binary_join_element_wise(desc, pa.scalar("(local time)"), " "), desc)
    desc = pc.if_else(pc.is_null(ts), pa.scalar("No time"), desc)
    micros = ts.cast(pa.int64())
    front = [_messages(t), iso, micros, desc]
    names = [RENAMED.get(n, n) for n in t.column_names]
    return pa.Table.from_arrays(front + list(t.columns), names=list(TIMESKETCH) + names)


def _plain(t: pa.Table) -> pa.Table:
    """Dictionary columns as plain strings (CSV writers and readers expect them)."""
    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in t.columns]
    return pa.Table.from_arrays(cols, names=t.column_names)


def _jsonl_rows(t: pa.Table) -> Iterable[str]:
    for batch in t.to_batches(max_chunksize=BATCH_ROWS):
        cols = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
        pylists = {}
        for name, col in cols.items():
            if pa.types.is_timestamp(col.type):
                col = pc.strftime(col, format=ISO)
            pylists[name] = col.to_pylist()
        for i in range(batch.num_rows):
            yield json.dumps({k: v[i] for k, v in pylists.items()}, ensure_ascii=False) + "\n"


def write_table(t: pa.Table | pd.DataFrame, path: str | Path) -> str:
    """Write an Arrow table (or the event table) to ``path`` in the format
    its extension names; return that format. Times are ISO 8601 UTC text in
    CSV and JSONL; nulls are empty CSV fields (an empty string is ``""``) and
    JSON ``null``."""
    fmt = export_format(path)
    if isinstance(t, pd.DataFrame):
        t = tbl.to_arrow(t)
    if fmt == "parquet":
        import pyarrow.parquet as pq
        pq.write_table(t, path)
    elif fmt == "csv":
        import pyarrow.csv as pcsv
        plain = _plain(t)
        cols = [pc.strftime(c, format=ISO) if pa.types.is_timestamp(c.type)
                else c for c in plain.columns]
        plain = pa.Table.from_arrays(cols, names=plain.column_names)
        with pcsv.CSVWriter(str(path), plain.schema,
                            write_options=pcsv.WriteOptions(quoting_style="needed")) as w:
            for batch in plain.to_batches(max_chunksize=BATCH_ROWS):
                w.write_batch(batch)
    else:
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(_jsonl_rows(_plain(t)))
    return fmt


def cited_rows(df: pd.DataFrame, report: dict[str, Any]) -> pd.DataFrame:
    """The rows of ``df`` a report cites as evidence (any finding, any cause)."""
    cited = {(ev["path"], ev["locator"]) for f in report["findings"]
             for ev in f["evidence"] + [e for c in f["causes"] for e in c["evidence"]]}
    if not cited or df.empty:
        return df.iloc[0:0]
    keys = pd.MultiIndex.from_arrays([df["path"].astype(str), df["locator"].astype(str)])
    return df[keys.isin(list(cited))]
