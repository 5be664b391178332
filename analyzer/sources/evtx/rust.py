"""The Rust (``evtx`` package) backend: a range of chunk slots read into tables.

Each record is its own result: a bad record or chunk raises once from the
iterator and the iterator goes on, so one damaged chunk never costs the rest
of the file. A :class:`RangeReader` reads chunk slots ``[first, last)`` and
keeps that range's warnings and counts itself (not on the ParseContext), so a
helper process (:mod:`.process`) can read one half of a large file and hand
them back.
"""
from __future__ import annotations

import io
import mmap
import os
import re
import struct
from collections.abc import Iterator
from itertools import islice
from operator import itemgetter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from .layout import CHUNK_SIZE, FILE_HEADER_SIZE, ChunkRange, Layout, crc_problems
from .records import records_to_table

#: Records per Arrow batch: large enough to amortize the per-batch kernels
#: and queries, small enough that one batch of JSON text stays a few tens
#: of MB. Measured on the benchmark files: 40k records cost ~0.6 us a
#: record less than 20k in the table build (7.1 vs 7.8 us, ~1 s of CPU
#: over BIG.evtx) and raised the peak RSS of parsing the 1 GiB Security
#: log from 0.82 to 1.1 GB (both reader processes together).
BATCH = 40_000

#: A batch ends earlier when its record text reaches this many bytes, so
#: memory stays bounded (and below Arrow's 2 GiB string offsets) even for
#: records near the 64 KiB chunk size.
BATCH_BYTES = 128 << 20

#: Record texts are turned into Arrow this many at a time, while they are
#: still in the CPU cache, and released: Python then reuses their memory for
#: the next records instead of holding a whole batch of strings (measured:
#: iteration plus conversion 2.8-4.1 -> 2.6 us a record, bare iteration 2.1).
SLICE = 1_000

#: Locator placeholder of an error that precedes every record of a range
#: after the first: resolved to "after" the previous range's last record.
AFTER_PREVIOUS = "\x00after-previous"

_CHUNK_ERR = re.compile(r"chunk number (\d+)", re.I)
_RECORD_ERR = re.compile(r"record number (\d+)", re.I)
_RID = re.compile(r'"EventRecordID":"?(\d+)')


class ChunkView(io.RawIOBase):
    """A read-only file of the real file header plus chunk slots
    ``[first, last)``, for the Rust parser, which takes any seekable file
    object but has no chunk-range option. Slot ``i`` comes from the file,
    except the cut chunk, which comes from its repaired copy in the layout
    (the Rust parser skips a short chunk silently). Reads are ``os.pread``
    calls of the parser's chunk-sized requests: memory stays bounded."""

    def __init__(self, path: Path, first: int, last: int, layout: Layout) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self._first = first
        self._layout = layout
        self._size = FILE_HEADER_SIZE + max(0, last - first) * CHUNK_SIZE
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buf: bytearray | memoryview) -> int:
        want = min(len(buf), self._size - self._pos)
        if want <= 0:
            return 0
        if self._pos < FILE_HEADER_SIZE:
            want = min(want, FILE_HEADER_SIZE - self._pos)
            data = os.pread(self._fd, want, self._pos)
        else:
            slot, inner = divmod(self._pos - FILE_HEADER_SIZE, CHUNK_SIZE)
            slot += self._first
            want = min(want, CHUNK_SIZE - inner)
            repaired = self._layout.chunk_bytes(slot)
            if repaired is not None:
                data = repaired[inner:inner + want]
            else:
                data = os.pread(self._fd, want, FILE_HEADER_SIZE + slot * CHUNK_SIZE + inner)
        buf[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class RangeReader:
    """The records of chunk slots ``[first, last)`` read by the Rust parser,
    in batches of :data:`BATCH`, with the range's warnings and counts."""

    def __init__(self, path: Path, first: int, last: int, layout: Layout, threads: int) -> None:
        self.path, self.first, self.last = path, first, last
        self.layout, self.threads = layout, threads
        self.warnings: list[tuple[str, str | None]] = []
        self.read = self.rec_errors = self.chunk_errors = 0
        self.last_text: str | None = None
        self.max_id: int | None = None
        #: (chunk index, what) of the range's chunks whose CRC32 is wrong,
        #: checked once its records are read (see :meth:`tables`).
        self.bad_crc: list[tuple[int, str]] = []

    @property
    def chunks(self) -> list[ChunkRange]:
        return self.layout.chunks

    def tables(self, display: str, source: str) -> Iterator[pa.Table]:
        from evtx import PyEvtxParser

        whole = self.first == 0 and self.last >= len(self.layout.chunks) and \
            self.layout.cut is None
        # The whole of an undamaged file: the parser reads the path itself.
        view = None if whole else ChunkView(self.path, self.first, self.last, self.layout)
        try:
            # Buffered in C: the parser reads each chunk in 8-32 KiB pieces,
            # which would each be a Python call of the view.
            parser = PyEvtxParser(str(self.path) if view is None else
                                  io.BufferedReader(view, buffer_size=4 * CHUNK_SIZE),
                                  number_of_threads=self.threads)
            yield from self._read(parser.records_json(), display, source)
            # Checked here, by the process that read the range, rather than
            # before the file is split: the two processes share the work.
            self.bad_crc = crc_problems(self.path, self.layout.chunks[self.first:self.last])
        finally:
            if view is not None:
                view.close()

    def _read(self, it: Iterator[dict], display: str, source: str) -> Iterator[pa.Table]:
        # The iterator always advances, so errors are bounded by the records
        # the range can hold; the cap only guards a library bug.
        max_errors = (self.last - self.first + 1) * CHUNK_SIZE // 24 + 16
        data = itemgetter("data")
        pending: list[str] = []  # record texts not yet in Arrow
        slices: list[pa.Array] = []
        held = size = 0
        last: str | None = None  # the last record text read in this range
        while True:
            try:
                while True:
                    # extend() keeps the records taken before an error.
                    pending.extend(map(data, islice(it, SLICE - len(pending))))
                    full = len(pending) == SLICE
                    if full:
                        slices.append(pa.array(pending, pa.string()))
                        held, last, pending = held + SLICE, pending[-1], []
                        size += slices[-1].nbytes
                    if held >= BATCH or size >= BATCH_BYTES:
                        yield self._table(slices, last, display, source)
                        slices, held, size = [], 0, 0
                    if not full:
                        break
                break
            except RuntimeError as exc:
                self._error(str(exc), pending[-1] if pending else last)
                if self.rec_errors + self.chunk_errors > max_errors:
                    self.warnings.append(("too many errors; rest of file not read", None))
                    break
        if pending:
            slices.append(pa.array(pending, pa.string()))
            last = pending[-1]
        if slices:
            yield self._table(slices, last, display, source)

    def _table(self, slices: list[pa.Array], last: str | None, display: str,
               source: str) -> pa.Table:
        arr = slices[0] if len(slices) == 1 else pa.concat_arrays(slices)
        self.read += len(arr)
        self.last_text = last
        tbl = records_to_table(arr, display, source)
        top = pc.max(tbl.column("record_id")).as_py()
        if top is not None:
            self.max_id = top if self.max_id is None else max(self.max_id, top)
        return tbl

    def _error(self, msg: str, prev: str | None) -> None:
        """Record a reader error; ``prev`` is the last record text read in this range."""
        if self.first:
            # A range view numbers its chunks from 0: say the file's number.
            msg = _CHUNK_ERR.sub(lambda m: f"{m.group(0)[:-len(m.group(1))]}"
                                 f"{int(m.group(1)) + self.first}", msg, count=1)
        loc, is_chunk = error_locator(msg, self.chunks)
        if loc is None:
            # The record id is not in any chunk header's range, or the error
            # names no record (bad record header): find the record in the
            # file, else place the error after the last record read.
            m = _RECORD_ERR.search(msg)
            loc = find_record(self.path, int(m.group(1))) if m else None
            if loc is None:
                loc = AFTER_PREVIOUS if prev is None and self.first > 0 else \
                    after_locator(self.path, prev, self.chunks)
        if is_chunk:
            self.chunk_errors += 1
        else:
            self.rec_errors += 1
        self.warnings.append((msg, loc))


def error_locator(msg: str, chunks: list[ChunkRange]) -> tuple[str | None, bool]:
    """(locator, names a chunk) of a Rust error message (chunk numbers
    already mapped to the file's)."""
    m = _CHUNK_ERR.search(msg)
    if m:
        idx = int(m.group(1))
        return f"chunk={idx} offset=0x{FILE_HEADER_SIZE + idx * CHUNK_SIZE:x}", True
    m = _RECORD_ERR.search(msg)
    if m:
        rid = int(m.group(1))
        for c in chunks:
            if c.valid and c.first_record <= rid <= c.last_record:
                return f"{c.locator()} record={rid}", False
        # Not in any chunk's header range (damaged header): placed after
        # the last record read by the caller.
    return None, False


def find_record(path: Path, rid: int) -> str | None:
    """Locator of the record header carrying ``rid`` (searched only on
    errors, through a memory map: pages are read, not copied)."""
    pattern = re.compile(re.escape(b"\x2a\x2a\x00\x00") + b".{4}" + re.escape(struct.pack("<Q", rid)),
                         re.S)
    with open(path, "rb") as fh:
        if os.fstat(fh.fileno()).st_size <= FILE_HEADER_SIZE:
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            m = pattern.search(buf, FILE_HEADER_SIZE)
    if not m:
        return None
    off = m.start()
    idx = (off - FILE_HEADER_SIZE) // CHUNK_SIZE
    return f"chunk={idx} offset=0x{off:x} record={rid}"


def after_locator(path: Path, text: str | None, chunks: list[ChunkRange]) -> str | None:
    """Locator "after" the record whose JSON text is ``text``."""
    m = _RID.search(text) if text else None
    if not m:
        return None
    rid = int(m.group(1))
    for c in chunks:
        if c.valid and c.first_record <= rid <= c.last_record:
            return f"{c.locator()} after record={rid}"
    found = find_record(path, rid)
    return f"{found.replace(' record=', ' after record=')}" if found else f"after record={rid}"
