"""The case table built in a file of the work directory and memory-mapped
(analyzer/tablesink.py) is the same table as the one built in memory, and
the checks reach the same verdicts on it.

Every sample case is loaded as it loads by default (in memory) and with
the limits lowered so that its rows go to segment files in the work
directory, the way a large case loads. Rows, columns, dtypes and the stable part of
the report must be equal; the Parquet written during the load equals the
table.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from analyzer import table
from analyzer.case import load_case
from analyzer.report import analyze
from test_samples import SAMPLES, stable_report

NAMES = sorted(p.name for p in SAMPLES.iterdir() if (p / "case").exists())


def _values(df: pd.DataFrame) -> dict[str, list]:
    return {c: df[c].astype(object).where(df[c].notna(), None).tolist() for c in df.columns}


@pytest.mark.parametrize("spill", [0, 30_000])
@pytest.mark.parametrize("name", NAMES)
def test_on_disk_table_equals_in_memory(name: str, spill: int, tmp_path: Path) -> None:
    """``spill=0``: every file's rows in a segment of its own; 30 kB: small
    files held in memory, then the held rows written out once the case
    passes the limit, larger files in segments -- order kept throughout."""
    case_dir = SAMPLES / name / "case"
    mem = load_case(case_dir)
    disk = load_case(case_dir, spill_bytes=spill, parquet=tmp_path / "t.parquet", work_root=tmp_path)
    table.validate(disk.table)
    assert list(disk.table.dtypes) == list(mem.table.dtypes)
    assert _values(disk.table) == _values(mem.table)
    assert list(disk.table.index) == list(mem.table.index)
    # the Parquet written batch by batch during the load is the table
    written = table.read_parquet(tmp_path / "t.parquet")
    assert _values(written) == _values(mem.table)
    # nothing is left in the work root: the table file was unlinked when mapped
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]
    assert stable_report(analyze(disk).to_dict()) == stable_report(analyze(mem).to_dict())


def test_spill_reads_columns_in_place(tmp_path: Path) -> None:
    """A spilled table's text columns are chunks of the mapped file (one per
    batch), not one copy; masks and filters keep the values and the index."""
    from analyzer.query import select

    case_dir = SAMPLES / "smtp-mailbox-stuck-evtx" / "case"
    disk = load_case(case_dir, spill_bytes=0)
    data = disk.table["data"].array.__arrow_array__()
    assert data.num_chunks > 1
    mem = load_case(case_dir)
    a = select(disk.table, provider="MSExchangeTransport", contains="smtp")
    b = select(mem.table, provider="MSExchangeTransport", contains="smtp")
    assert len(a) and _values(a) == _values(b) and list(a.index) == list(b.index)


def test_parquet_sink_of_an_empty_case(tmp_path: Path) -> None:
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "empty.txt").write_bytes(b"")
    load_case(tmp_path / "case", parquet=tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").num_rows == 0
    assert pq.read_schema(tmp_path / "t.parquet").names == list(table.COLUMNS)
