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

A sink that only writes Parquet (``keep=False``: the ``parse`` command,
which never reads the table back) holds no table at all: a large file's
batches go straight into the Parquet file while it parses, instead of into
a segment that is read back and written again when the file ends (measured:
about a tenth of the parse of a 750 MB log, all of it in the serial tail
after the second reader process has finished). Should the file be dropped
after that (over its budget), the Parquet file is cut back to the row
groups before it.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from itertools import count
from pathlib import Path

import pyarrow as pa

from . import eventdata, filebudget, safeio, table

#: The case's rows are held in memory up to this many bytes; past it the
#: table is built in files of the work directory. Small cases (nearly every
#: test case, a typical upload) never reach it and keep the in-memory speed.
SPILL_BYTES = 256 * 1024 * 1024
#: One file's rows are held in memory up to this many bytes while it parses.
FILE_SPILL_BYTES = 64 * 1024 * 1024
#: One file's rows held in memory by a sink that keeps no table: past this
#: they go straight to the Parquet file (cheap, where a segment must be
#: read back), so a parse holds a few batches, not 64 MiB of them.
DIRECT_SPILL_BYTES = 8 * 1024 * 1024
#: Bytes written to segments between two returns of the allocator's cached
#: free memory to the system (Arrow keeps freed batches for reuse: in a long
#: load that is hundreds of MB the process holds for nothing).
RELEASE_EVERY = 16 * 1024 * 1024
#: Batches larger than that (a large .evtx file's: 25-40 MB) are released
#: every this many batches instead of after every one: the next batches
#: reuse the pages a batch frees, where pages handed back were faulted in
#: again by the very next batch (parse of the 750 MB benchmark log: page
#: faults of the parent 172-179k -> 138-141k, system time 0.9-1.1 -> 0.7
#: s, peak RSS +45 MB). Small batches keep the 16 MiB rhythm: a netstat
#: parse held ~18 MB more without it, close to its 300 MB goal.
RELEASE_BATCHES = 4


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


class OutputError(Exception):
    """The output file could not be written (a full disk, a bad schema):
    the load fails, it is not any input file's fault."""


class _ParquetThread:
    """A Parquet writer that encodes on a thread of its own, in the order
    written: encoding and compressing a batch release the GIL, so a parse
    goes on with the next batch meanwhile (measured: 0.36 s of a 500k-line
    tracking log's 3.6 s parse left the critical path). At most
    :data:`QUEUED` batches wait, so memory stays bounded. The first write
    error stops the writing and is raised, as :class:`OutputError`, by
    every later call and by :meth:`close`."""

    QUEUED = 2

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq
        self.path = path
        self._writer = pq.ParquetWriter(str(path), table.ARROW_SCHEMA, **table.parquet_options())
        self._queue: queue.Queue[pa.Table | pa.RecordBatch | None] = queue.Queue(self.QUEUED)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain: nothing more is written after an error
            try:
                with safeio.FORK_GATE.native():
                    if isinstance(item, pa.RecordBatch):
                        self._writer.write_batch(item)
                    else:
                        self._writer.write_table(item)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise OutputError(f"cannot write {self.path.name}: {type(self._error).__name__}: "
                              f"{self._error}") from self._error

    def write(self, item: pa.Table | pa.RecordBatch) -> None:
        """Queue a table or a record batch (waits while :data:`QUEUED` do)."""
        self._raise()
        self._queue.put(item)

    def close(self) -> None:
        """Wait for every queued batch, then write the footer."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        try:
            self._raise()
        finally:
            self._writer.close()


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
                 parquet: str | os.PathLike[str] | None = None, keep: bool = True) -> None:
        if not keep and parquet is None:
            raise ValueError("a sink that keeps no table must write Parquet")
        self.work = work
        self.spill_bytes = spill_bytes
        self.file_spill_bytes = file_spill_bytes if keep else min(file_spill_bytes, DIRECT_SPILL_BYTES)
        self._parts: list[pa.Table | Path] = []
        self._held_bytes = 0
        self._spilled = False
        self._open: _Segment | None = None
        self._names = count()
        self._written = 0
        self._large = 0  # batches over RELEASE_EVERY written since the last release
        self._parquet = None
        self.rows = 0
        #: False: the rows go to the Parquet file only (:meth:`finish` gives
        #: an empty table).
        self.keep = keep
        #: Called before a file's rows go straight to Parquet, so rows the
        #: loader still pools (small files before it) are written first.
        self.before_direct: Callable[[], None] = lambda: None
        self._target = self._current = Path(parquet) if parquet is not None else None
        #: rows in the Parquet file (committed or provisional)
        self._parquet_rows = 0
        if parquet is not None:
            self._parquet = _ParquetThread(self._target)

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
            self.write_parquet(tbl)
        if not self.keep:
            return
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
                    self._parquet.write(batch)
        return seg.rows

    def write_parquet(self, tbl: pa.Table) -> None:
        """Write enriched rows to the Parquet file (each call its own row
        groups, so a file's rows can be cut off again: :meth:`cut_parquet`)."""
        assert self._parquet is not None
        # Counted first: a budget signal between the two must not leave
        # queued rows that a cut would not know of.
        self._parquet_rows += tbl.num_rows
        self._parquet.write(tbl)

    def cut_parquet(self, rows: int) -> None:
        """Keep only the first ``rows`` rows of the Parquet file: the row
        groups a dropped file wrote after them go. The file is closed, its
        leading row groups copied into a new file (which stays open for the
        rows to come) and the old one removed; a rare path (a large file
        over its budget), so a copy is acceptable."""
        import pyarrow.parquet as pq
        if self._parquet is None or rows >= self._parquet_rows:
            return
        assert self._current is not None and self._target is not None
        self._parquet.close()
        old = self._current
        new = old.with_name(f"{self._target.name}.{next(self._names)}.cut")
        writer = _ParquetThread(new)
        copied = 0
        try:
            with pq.ParquetFile(str(old)) as source:
                for i in range(source.num_row_groups):
                    if copied >= rows:
                        break
                    group = source.read_row_group(i)
                    writer.write(group)
                    copied += group.num_rows
            if copied != rows:  # row groups are whole calls of write_parquet
                raise OutputError(f"Parquet cut at {rows} rows fell inside a row group ({copied})")
        except BaseException:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the first error is the one raised
                pass
            new.unlink(missing_ok=True)
            self._parquet = None
            raise
        old.unlink(missing_ok=True)
        self._parquet, self._current, self._parquet_rows = writer, new, copied

    def _release(self, nbytes: int) -> None:
        self._written += nbytes
        if nbytes >= RELEASE_EVERY:
            self._large += 1
        if self._written > RELEASE_EVERY and (nbytes < RELEASE_EVERY or
                                               self._large >= RELEASE_BATCHES):
            pa.default_memory_pool().release_unused()
            self._written = self._large = 0

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
        """The whole table (one Arrow table, dictionaries unified); an empty
        one when the sink keeps no table."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
            if self._current != self._target:
                os.replace(self._current, self._target)  # type: ignore[arg-type]
                self._current = self._target
        self._close_open()
        if not self.keep:
            return table.rows_to_arrow([])
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
        if self._current is not None and self._current != self._target:
            self._current.unlink(missing_ok=True)
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
        #: Rows of the Parquet file before this file's, once its rows go
        #: straight there (a sink that keeps no table); None until then.
        self.direct_from: int | None = None
        #: this file's rows written straight to Parquet
        self.direct_rows = 0
        self._bytes = 0
        #: rows that could not be converted once the file went to a segment
        self.dropped: list[str] = []

    @property
    def spilled(self) -> bool:
        """The file's rows left memory (a segment, or the Parquet file)."""
        return self.seg is not None or self.direct_from is not None

    def append(self, item: pa.Table | list[dict]) -> None:
        if self.spilled:
            self._write(item)
            return
        self.items.append(item)
        self._bytes += item.nbytes if isinstance(item, pa.Table) else 0
        if self._bytes > self.sink.file_spill_bytes:
            if self.sink.keep:
                self.seg = self.sink.segment()
            else:
                self.sink.before_direct()
                self.direct_from = self.sink._parquet_rows
            items, self.items = self.items, []
            for it in items:
                self._write(it)

    def _write(self, item: pa.Table | list[dict]) -> None:
        if not isinstance(item, pa.Table):
            try:
                item = table.rows_to_arrow(item)
            except (filebudget.BudgetExceeded, MemoryError):
                raise
            except Exception as exc:  # noqa: BLE001 - the file's other rows are kept
                self.dropped.append(f"{len(item)} row(s) dropped: {type(exc).__name__}: {exc}")
                return
        if not item.num_rows:
            return
        item = eventdata.enrich(item)
        if self.seg is not None:
            self.seg.write(item)
        else:
            self.sink.write_parquet(item)
            self.direct_rows += item.num_rows
        self.sink._release(item.nbytes)

    def commit_direct(self) -> int:
        """The rows this file wrote straight to Parquet, now committed."""
        self.sink.rows += self.direct_rows
        return self.direct_rows

    def clear(self) -> None:
        """Drop everything the file produced (over budget)."""
        self.items = []
        if self.seg is not None:
            self.seg.discard()
            self.seg = None
        if self.direct_from is not None:
            self.sink.cut_parquet(self.direct_from)
            self.direct_rows = 0
