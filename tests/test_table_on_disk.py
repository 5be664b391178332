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

import _thread
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from analyzer import table
from analyzer.archive import Limits
from analyzer.case import load_case
from analyzer.report import analyze
from analyzer.sources import _REGISTRY, ParseContext, Source
from analyzer.tablesink import SPILL_BYTES
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


class _Batches(Source):
    """Yields three Arrow batches, then spins (over its time budget) or
    raises (a parser error), by the file's first bytes."""

    name = "test-batches"
    kind = "test-batches"

    def sniff(self, head: bytes, name: str) -> int:
        return 99 if head.startswith((b"BATCH-SPIN", b"BATCH-FAIL")) else 0

    def parse(self, ctx: ParseContext):
        head = Path(ctx.fs_path).read_bytes()[:10]
        for b in range(3):
            yield table.rows_to_arrow([{"kind": "process", "source": self.name, "path": ctx.path,
                                        "locator": f"line={b * 100 + i}", "data": "{}"}
                                       for i in range(100)])
        if head == b"BATCH-FAIL":
            raise ValueError("bad bytes at offset 0x40")
        while True:
            time.sleep(0.01)


@pytest.fixture
def batches_source():
    _REGISTRY[_Batches.name] = _Batches()
    yield
    del _REGISTRY[_Batches.name]


@pytest.mark.parametrize("spill", [0, SPILL_BYTES])
def test_a_file_over_budget_leaves_no_rows_and_no_segment(tmp_path: Path, batches_source,
                                                           spill: int) -> None:
    """A file's rows wait apart until its parse ends: over its budget they
    are dropped (its segment file too); a parser error keeps what was read."""
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    (case_dir / "a-spin.bin").write_bytes(b"BATCH-SPIN")
    (case_dir / "b-fail.bin").write_bytes(b"BATCH-FAIL")
    (case_dir / "c-netstat.txt").write_bytes((SAMPLES.parent / "tests" / "fixtures" / "text"
                                              / "netstat_ano.txt").read_bytes())
    work = tmp_path / "work"
    work.mkdir()
    watchdog = threading.Timer(60, _thread.interrupt_main)
    watchdog.start()
    try:
        case = load_case(case_dir, limits=Limits(file_seconds=1.0), spill_bytes=spill,
                         work_root=work, parquet=tmp_path / "t.parquet")
    finally:
        watchdog.cancel()
    inv = {e.path: e for e in case.inventory}
    assert inv["a-spin.bin"].status == "failed" and inv["a-spin.bin"].rows == 0
    assert inv["b-fail.bin"].status == "partial" and inv["b-fail.bin"].rows == 300
    assert "bad bytes at offset 0x40" in inv["b-fail.bin"].detail
    assert inv["c-netstat.txt"].status == "parsed"
    paths = case.table["path"].astype(str)
    assert not (paths == "a-spin.bin").any()
    assert int((paths == "b-fail.bin").sum()) == 300
    assert len(case.table) == 300 + inv["c-netstat.txt"].rows
    assert list(work.iterdir()) == []  # segments and the work directory are gone
    assert _values(table.read_parquet(tmp_path / "t.parquet")) == _values(case.table)


@pytest.mark.parametrize("spill", [0, SPILL_BYTES])
def test_case_sql_reads_the_table_in_place(spill: int) -> None:
    """DuckDB over the case's table (mapped or in memory) counts what pandas counts."""
    case = load_case(SAMPLES / "rpc-port-conflict-static-port-in-use" / "case", spill_bytes=spill)
    got = case.sql("SELECT kind, count(*) AS n FROM events GROUP BY kind ORDER BY kind")
    want = case.table["kind"].astype(str).value_counts().sort_index()
    assert dict(zip(got["kind"].astype(str), got["n"].astype(int))) == want.to_dict()
    sec = case.sql("SELECT count(*) AS n FROM events WHERE event_id = 529 AND channel = 'Security'")
    assert int(sec["n"][0]) == len(case.events(event_id=529, channel="Security")) > 0
    inv = case.sql("SELECT path, rows FROM inventory ORDER BY path")
    assert sorted(inv["path"].astype(str)) == sorted(e.path for e in case.inventory)


@pytest.mark.parametrize("spill", [0, 30_000])
@pytest.mark.parametrize("name", NAMES)
def test_parse_to_parquet_only_writes_the_same_table(name: str, spill: int, tmp_path: Path) -> None:
    """``keep_table=False`` (the ``parse`` command): no table is held, a
    file's rows past the limit go straight into the Parquet file; the file
    holds the very rows an in-memory load gives, in the same order."""
    case_dir = SAMPLES / name / "case"
    mem = load_case(case_dir)
    only = load_case(case_dir, spill_bytes=spill, parquet=tmp_path / "t.parquet", work_root=tmp_path,
                     keep_table=False)
    assert len(only.table) == 0 and only.rows_written == len(mem.table)
    written = table.read_parquet(tmp_path / "t.parquet")
    assert list(written.dtypes) == list(mem.table.dtypes)
    assert _values(written) == _values(mem.table)
    assert [e.to_dict() for e in only.inventory] == [e.to_dict() for e in mem.inventory]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_parquet_only_cuts_a_dropped_file_back_out(tmp_path: Path, batches_source) -> None:
    """A file whose rows already went straight to Parquet and which then
    goes over its budget is cut back out of the file; the files before and
    after it keep their rows, in order, and nothing is left beside it."""
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    netstat = (SAMPLES.parent / "tests" / "fixtures" / "text" / "netstat_ano.txt").read_bytes()
    (case_dir / "a-netstat.txt").write_bytes(netstat)
    (case_dir / "b-spin.bin").write_bytes(b"BATCH-SPIN")
    (case_dir / "c-fail.bin").write_bytes(b"BATCH-FAIL")
    (case_dir / "d-netstat.txt").write_bytes(netstat)
    work = tmp_path / "work"
    work.mkdir()
    watchdog = threading.Timer(60, _thread.interrupt_main)
    watchdog.start()
    try:
        kw = dict(limits=Limits(file_seconds=1.0), spill_bytes=0, work_root=work)
        kept = load_case(case_dir, **kw)
        only = load_case(case_dir, parquet=tmp_path / "t.parquet", keep_table=False, **kw)
    finally:
        watchdog.cancel()
    inv = {e.path: e for e in only.inventory}
    assert inv["b-spin.bin"].status == "failed" and inv["b-spin.bin"].rows == 0
    assert inv["c-fail.bin"].rows == 300
    written = table.read_parquet(tmp_path / "t.parquet")
    assert "b-spin.bin" not in set(written["path"].astype(str))
    assert only.rows_written == len(written) == len(kept.table) == 300 + 2 * inv["a-netstat.txt"].rows
    assert _values(written) == _values(kept.table)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case", "t.parquet", "work"]
    assert list(work.iterdir()) == []


def test_parquet_thread_writes_in_order_and_raises_its_error(tmp_path: Path) -> None:
    """The background Parquet writer keeps the order of the batches, and a
    batch it cannot write fails the caller (at the next call or at close),
    never silently."""
    import pyarrow as pa

    from analyzer.tablesink import OutputError, _ParquetThread

    rows = [table.rows_to_arrow([{"kind": "process", "source": "t", "path": "p", "locator": f"line={i}"}])
            for i in range(7)]
    w = _ParquetThread(tmp_path / "ok.parquet")
    for r in rows:
        w.write(r)
    w.close()
    assert pq.read_table(tmp_path / "ok.parquet")["locator"].to_pylist() == [f"line={i}" for i in range(7)]

    bad = _ParquetThread(tmp_path / "bad.parquet")
    bad.write(pa.table({"x": [1]}))  # not the table's schema
    with pytest.raises(OutputError, match="(?i)schema"):
        for r in rows * 10:
            bad.write(r)
    # the error stays: no later write or close goes through
    with pytest.raises(OutputError):
        bad.write(rows[0])
    with pytest.raises(OutputError):
        bad.close()


def test_an_output_write_error_fails_the_load_not_a_file(tmp_path: Path, monkeypatch) -> None:
    """A Parquet write that fails (a full disk) is the output's failure: the
    load stops with it, instead of one input file being marked partial."""
    from analyzer import tablesink

    def fail(self, tbl):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", fail)
    case_dir = SAMPLES / "rpc-port-conflict-static-port-in-use" / "case"
    with pytest.raises(tablesink.OutputError, match="No space left"):
        load_case(case_dir, spill_bytes=0, parquet=tmp_path / "t.parquet", keep_table=False,
                  work_root=tmp_path)


def test_freed_pages_go_back_every_16_mib_or_every_few_large_batches(tmp_path: Path,
                                                                      monkeypatch) -> None:
    """Small batches hand the allocator's free pages back every 16 MiB
    written; batches larger than that every RELEASE_BATCHES batches, so
    that the next batch reuses what one frees."""
    from analyzer import tablesink

    released: list[int] = []

    class Pool:
        def release_unused(self) -> None:
            released.append(len(calls))

    calls: list[int] = []
    monkeypatch.setattr(tablesink.pa, "default_memory_pool", lambda: Pool())
    sink = tablesink.TableSink(tmp_path)
    mib = 1 << 20
    for _ in range(8):  # 8 x 5 MiB: released after the 4th (20 MiB) and the 8th
        calls.append(5 * mib)
        sink._release(5 * mib)
    assert released == [4, 8]
    released.clear()
    calls.clear()
    big = 30 * mib
    for _ in range(10):
        calls.append(big)
        sink._release(big)
    assert released == [tablesink.RELEASE_BATCHES, 2 * tablesink.RELEASE_BATCHES]
    released.clear()
    calls.clear()
    sink = tablesink.TableSink(tmp_path)
    for size in (17, 100, 20, 20, 2, 40):  # uneven large batches count as batches
        calls.append(size * mib)
        sink._release(size * mib)
    assert released == [4]
