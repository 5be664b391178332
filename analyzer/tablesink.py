"""Where a case's rows go while it loads: memory for a small case, Arrow
files in the work directory for a large one.

Why: a 1 GB Security log is 1.5 million rows and about 1.5 GB of Arrow, of
which ``data`` and ``message`` are most. Holding every batch of a file and
then concatenating the case's batches doubled that at the peak, and the
checks' copies of the table doubled it again. So:

* a file's rows are kept apart while it is parsed (:class:`FileRows`: a
  file over its budget, or whose parser fails, loses what it produced), in
  memory up to :data:`FILE_SPILL_BYTES`, past that in a *segment* of its own,
  an Arrow IPC stream file in the work directory, written batch by batch;
* the case's rows (:class:`TableSink`) stay in memory up to
  :data:`SPILL_BYTES`; past that every part becomes a segment too;
* when loading ends, every segment is memory-mapped and read without
  copying: the table's columns are pages of those files, read in by the
  kernel when touched and dropped again under memory pressure. Each segment
  is unlinked as soon as it is mapped (Linux keeps the pages until the
  mapping goes), so nothing is left on disk whatever ends the process.

A check then touches the heavy columns only for the rows it selects:
:func:`analyzer.table.filter_rows` filters chunk by chunk, where a pandas
take would first concatenate every chunk of a column into new memory.

Every batch goes through :func:`analyzer.eventdata.enrich` once, batch by
batch, and the rows a file commits can also go to a Parquet file as they
are committed (``parse -o x.parquet``), so writing the output never needs
the whole table.
"""
from __future__ import annotations

import os
from itertools import count
from pathlib import Path

import pyarrow as pa

from . import eventdata, table

#: The case's rows are held in memory up to this many bytes; past it the
#: table is built in files of the work directory. Small cases (nearly every
#: test case, a typical upload) never reach it and keep the in-memory speed.
SPILL_BYTES = 256 * 1024 * 1024
#: One file's rows are held in memory up to this many bytes while it parses.
FILE_SPILL_BYTES = 64 * 1024 * 1024
#: Bytes written to segments between two returns of the allocator's cached
#: free memory to the system (Arrow keeps freed batches for reuse: in a long
#: load that is hundreds of MB the process holds for nothing).
RELEASE_EVERY = 128 * 1024 * 1024


def _combine_cheaply(typ: pa.DataType) -> bool:
    """Columns combined into one chunk after a spilled load: fixed-width and
    dictionary columns are a few bytes a row, and one chunk makes every mask
    over them one kernel call. Text columns stay chunked pages of the files."""
    return not (pa.types.is_string(typ) or pa.types.is_large_string(typ))


class _Segment:
    """One Arrow IPC stream file of batches, written in order."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._sink = pa.OSFile(str(path), "wb")
        self._writer = pa.ipc.new_stream(self._sink, table.ARROW_SCHEMA)
        self.rows = 0
        self.bytes = 0

    def write(self, tbl: pa.Table) -> None:
        self._writer.write_table(tbl)
        self.rows += tbl.num_rows
        self.bytes += tbl.nbytes

    def close(self) -> Path:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = None
        return self.path

    def discard(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - closing after a failure
            pass
        self.path.unlink(missing_ok=True)


def _read_mapped(path: Path) -> pa.Table:
    """A segment's table over a memory map of it; the file is unlinked."""
    try:
        return pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
    finally:
        path.unlink(missing_ok=True)


class TableSink:
    """The committed rows of one case, in file order."""

    def __init__(self, work: Path, *, spill_bytes: int = SPILL_BYTES,
                 file_spill_bytes: int = FILE_SPILL_BYTES,
                 parquet: str | os.PathLike[str] | None = None) -> None:
        self.work = work
        self.spill_bytes = spill_bytes
        self.file_spill_bytes = file_spill_bytes
        self._parts: list[pa.Table | Path] = []
        self._held_bytes = 0
        self._spilled = False
        self._open: _Segment | None = None
        self._names = count()
        self._written = 0
        self._parquet = None
        self.rows = 0
        if parquet is not None:
            import pyarrow.parquet as pq
            self._parquet = pq.ParquetWriter(str(parquet), table.ARROW_SCHEMA)

    @property
    def spilled(self) -> bool:
        return self._spilled

    def segment(self) -> _Segment:
        """A new segment file in the work directory."""
        return _Segment(self.work / f"segment-{next(self._names):06d}.arrows")

    def file_rows(self) -> FileRows:
        """Where one file's output waits until its parse has ended."""
        return FileRows(self)

    # -- committed rows ------------------------------------------------------
    def append(self, tbl: pa.Table) -> None:
        """Commit one batch (conforming to the table schema, not enriched)."""
        if tbl.num_rows == 0:
            return
        tbl = eventdata.enrich(tbl)
        self.rows += tbl.num_rows
        if self._parquet is not None:
            self._parquet.write_table(tbl)
        if self._spilled:
            if self._open is None:
                self._open = self.segment()
                self._parts.append(self._open.path)
            self._open.write(tbl)
            self._release(tbl.nbytes)
            return
        self._parts.append(tbl)
        self._held_bytes += tbl.nbytes
        if self._held_bytes > self.spill_bytes:
            self._spill()

    def add_segment(self, seg: _Segment) -> int:
        """Commit a file's segment (its batches enriched already); its rows."""
        path = seg.close()
        if not self._spilled:
            self._spill()
        self._close_open()
        self._parts.append(path)
        self.rows += seg.rows
        if self._parquet is not None:
            # Read, not mapped: a mapped segment read whole stays resident
            # until unmapped (a 1 GB log's 1.5 GB), one read batch is freed
            # as soon as it is written.
            with pa.OSFile(str(path)) as fh:
                for batch in pa.ipc.open_stream(fh):
                    self._parquet.write_batch(batch)
        return seg.rows

    def _release(self, nbytes: int) -> None:
        self._written += nbytes
        if self._written > RELEASE_EVERY:
            pa.default_memory_pool().release_unused()
            self._written = 0

    def _close_open(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def _spill(self) -> None:
        """Write what is held to segments (one per run of held batches);
        every later batch goes to a segment too."""
        self._spilled = True
        parts: list[pa.Table | Path] = []
        for part in self._parts:
            if isinstance(part, Path):
                self._close_open()
                parts.append(part)
                continue
            if self._open is None:
                self._open = self.segment()
                parts.append(self._open.path)
            self._open.write(part)
        self._parts, self._held_bytes = parts, 0
        pa.default_memory_pool().release_unused()

    def finish(self) -> pa.Table:
        """The whole table (one Arrow table, dictionaries unified)."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        self._close_open()
        if not self._spilled:
            held, self._parts = self._parts, []
            if not held:
                return table.rows_to_arrow([])
            return pa.concat_tables(held).unify_dictionaries().combine_chunks()
        parts, self._parts = self._parts, []
        tables = [_read_mapped(p) if isinstance(p, Path) else p for p in parts]
        merged = pa.concat_tables(tables).unify_dictionaries()
        pa.default_memory_pool().release_unused()
        cols = [merged.column(i).combine_chunks() if _combine_cheaply(f.type) else merged.column(i)
                for i, f in enumerate(merged.schema)]
        return pa.Table.from_arrays(cols, schema=merged.schema)

    def close(self) -> None:
        """Release what is open (a load that failed)."""
        for w in (self._parquet, self._open):
            if w is not None:
                try:
                    w.close()
                except Exception:  # noqa: BLE001 - closing after a failure
                    pass
        self._parquet = self._open = None
        for p in self._parts:
            if isinstance(p, Path):
                p.unlink(missing_ok=True)
        self._parts = []


class FileRows:
    """One file's output while it parses: Arrow tables and lists of row
    dicts, in order; past the sink's per-file limit, its tables go to a
    segment of their own (so a 1 GB log is never held whole in memory)."""

    def __init__(self, sink: TableSink) -> None:
        self.sink = sink
        self.items: list[pa.Table | list[dict]] = []
        self.seg: _Segment | None = None
        self._bytes = 0
        #: rows that could not be converted once the file went to a segment
        self.dropped: list[str] = []

    def append(self, item: pa.Table | list[dict]) -> None:
        if self.seg is not None:
            self._write(item)
            return
        self.items.append(item)
        self._bytes += item.nbytes if isinstance(item, pa.Table) else 0
        if self._bytes > self.sink.file_spill_bytes:
            self.seg = self.sink.segment()
            items, self.items = self.items, []
            for it in items:
                self._write(it)

    def _write(self, item: pa.Table | list[dict]) -> None:
        assert self.seg is not None
        if not isinstance(item, pa.Table):
            try:
                item = table.rows_to_arrow(item)
            except Exception as exc:  # noqa: BLE001 - the file's other rows are kept
                self.dropped.append(f"{len(item)} row(s) dropped: {type(exc).__name__}: {exc}")
                return
        if item.num_rows:
            self.seg.write(eventdata.enrich(item))
            self.sink._release(item.nbytes)

    def clear(self) -> None:
        """Drop everything the file produced (over budget)."""
        self.items = []
        if self.seg is not None:
            self.seg.discard()
            self.seg = None
