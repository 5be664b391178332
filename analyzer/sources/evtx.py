""".evtx (Windows Vista and later event logs), two backends behind one source.

* ``rust`` (default): the ``evtx`` package (Rust). Each record is its own
  result: a bad record or chunk raises once from the iterator and the
  iterator goes on, so one damaged chunk never costs the rest of the file.
* ``python``: python-evtx through :mod:`analyzer.evtx_python`, which walks
  every chunk slot itself (python-evtx trusts the stale header chunk count).

Both feed the same JSON -> Arrow pipeline (:mod:`._evtx_common`) in batches
of :data:`BATCH` records, so memory holds one batch of record text at a
time plus the table being built, and the rows of the two backends are equal.

A large file (:data:`SPLIT_MIN_CHUNKS`) on a machine with two cores is read
by two processes, one per half of its chunk slots (:class:`_Helper`): the
per-record work is Python-bound (the parser's own threads measured no
faster), so the second core only helps from a second interpreter. The
helper hands its batches back as Arrow IPC files, and its warnings and
counts as JSON; rows, warnings and notes are the same as a one-process
read (tested by forcing the split on the damaged corpus files).

Warnings carry the chunk number and its file offset (``chunk=6
offset=0x61000``); the inventory note says how many records were read and
how many record/chunk errors were skipped.
"""
from __future__ import annotations

import io
import json
import mmap
import os
import re
import shutil
import signal
import struct
import sys
import tempfile
from collections.abc import Iterator
from itertools import islice
from operator import itemgetter
from pathlib import Path

import pyarrow as pa

from .. import evtx_python as ep
from . import register
from ._evtx_common import records_to_table
from .base import ParseContext, Source

#: Records per Arrow batch: large enough to amortize the per-batch kernels,
#: small enough that one batch of JSON text stays a few tens of MB.
BATCH = 20_000

#: Files with at least this many 64 KiB chunk slots (4 MiB) are read by two
#: processes, one per half of the chunks, when two cores are available. The
#: Rust parser's own threads do not help here (bare iteration measured the
#: same with 1 and 2 threads: building each record's Python string and dict
#: holds the GIL), and the table build is a few microseconds a record more,
#: so a second process is what makes use of the second core. Below this
#: size the fork (~10-30 ms) costs more than it saves.
SPLIT_MIN_CHUNKS = 64

#: Locator placeholder of an error that precedes every record of a range
#: after the first: resolved to "after" the previous range's last record.
_AFTER_PREVIOUS = "\x00after-previous"

_CHUNK_ERR = re.compile(r"chunk number (\d+)", re.I)
_RECORD_ERR = re.compile(r"record number (\d+)", re.I)


def _threads() -> int:
    """Worker threads for the Rust parser: every core this process may use
    (chunks are decoded in parallel; records come back in file order)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@register
class EvtxSource(Source):
    name = "evtx"
    kind = "evtx"
    description = "Windows event log (.evtx, Vista and later): Rust evtx or python-evtx backend"

    def sniff(self, head: bytes, name: str) -> int:
        if head.startswith(ep.FILE_MAGIC):
            return 100
        # Damaged header but chunks present: still an event log.
        if len(head) >= ep.FILE_HEADER_SIZE + 8 and \
                head[ep.FILE_HEADER_SIZE:ep.FILE_HEADER_SIZE + 8] == ep.CHUNK_MAGIC:
            return 80
        if name.lower().endswith(".evtx") and ep.CHUNK_MAGIC in head:
            return 60
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[pa.Table]:
        backend = getattr(ctx.options, "evtx_backend", "rust") or "rust"
        if backend == "python":
            yield from self._parse_python(ctx)
        else:
            yield from self._parse_rust(ctx)

    # -- Rust ----------------------------------------------------------------
    def _parse_rust(self, ctx: ParseContext) -> Iterator[pa.Table]:
        from evtx import PyEvtxParser

        path = ctx.fs_path
        chunks = _chunk_map(path)
        _header_note(ctx, path, chunks)
        try:
            PyEvtxParser(str(path))
        except (RuntimeError, OSError, ValueError) as exc:
            ctx.warn(f"not readable as .evtx: {exc}", "offset=0x0")
            return
        slots = len(chunks)
        split = slots // 2 if slots >= SPLIT_MIN_CHUNKS and _threads() >= 2 else slots
        helper = _Helper.start(path, split, slots, chunks, ctx, self.name) if split < slots else None
        if helper is None:
            split = slots
        first = _Range(path, 0, split, slots, chunks, threads=1 if helper else _threads())
        try:
            for tbl in first.tables(ctx.path, self.name):
                yield tbl
            second = helper.finish() if helper else None
            if helper and second is None:
                # The helper died (killed, out of memory): read its half here.
                ctx.note("second-half reader process failed; read in-process")
                second = _Range(path, split, slots, slots, chunks, threads=_threads())
                for tbl in second.tables(ctx.path, self.name):
                    yield tbl
            elif second is not None:
                yield from helper.tables()
        finally:
            if helper:
                helper.close()
        ranges = [first] + ([second] if second is not None else [])
        last_text: str | None = None
        read = rec_errors = chunk_errors = 0
        for rng in ranges:
            for msg, loc in rng.warnings:
                if loc == _AFTER_PREVIOUS:
                    # Placed after the last record of the previous range.
                    loc = _after_locator(path, last_text, chunks)
                ctx.warn(msg, loc)
            last_text = rng.last_text or last_text
            read += rng.read
            rec_errors += rng.rec_errors
            chunk_errors += rng.chunk_errors
        _summary(ctx, read, rec_errors, chunk_errors)

    # -- python-evtx ---------------------------------------------------------
    def _parse_python(self, ctx: ParseContext) -> Iterator[pa.Table]:
        counts = {"record": 0, "chunk": 0}

        def warn(message: str, locator: str) -> None:
            counts["record" if "record=" in locator else "chunk"] += 1
            ctx.warn(message, locator)

        batch: list[str] = []
        read = 0
        for rec in ep.iter_records(ctx.fs_path, warn, ctx.note):
            batch.append(rec.json)
            if len(batch) >= BATCH:
                read += len(batch)
                yield records_to_table(batch, ctx.path, self.name)
                batch = []
        if batch:
            read += len(batch)
            yield records_to_table(batch, ctx.path, self.name)
        _summary(ctx, read, counts["record"], counts["chunk"], backend="python-evtx")



class _ChunkView(io.RawIOBase):
    """A read-only file of the real file header plus chunk slots
    ``[first, last)`` (to the end of the file when ``last`` is the final
    slot, so a truncated tail chunk stays readable), for the Rust parser,
    which takes any seekable file object but has no chunk-range option.
    Reads are ``os.pread`` calls of the parser's chunk-sized requests."""

    def __init__(self, path: Path, first: int, last: int, slots: int) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        real = os.fstat(self._fd).st_size
        self._shift = first * ep.CHUNK_SIZE
        end = real if last >= slots else ep.FILE_HEADER_SIZE + last * ep.CHUNK_SIZE
        self._size = max(ep.FILE_HEADER_SIZE, end - self._shift)
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
        if self._pos < ep.FILE_HEADER_SIZE:
            want = min(want, ep.FILE_HEADER_SIZE - self._pos)
            real = self._pos
        else:
            real = self._pos + self._shift
        data = os.pread(self._fd, want, real)
        buf[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class _Range:
    """The records of chunk slots ``[first, last)`` read by the Rust parser,
    in batches of :data:`BATCH`, with the range's warnings and counts kept
    here (not on the ParseContext) so a helper process can hand them back."""

    def __init__(self, path: Path, first: int, last: int, slots: int,
                 chunks: list[tuple[int, int, int, bool]], threads: int) -> None:
        self.path, self.first, self.last, self.slots = path, first, last, slots
        self.chunks, self.threads = chunks, threads
        self.warnings: list[tuple[str, str | None]] = []
        self.read = self.rec_errors = self.chunk_errors = 0
        self.last_text: str | None = None

    def tables(self, display: str, source: str) -> Iterator[pa.Table]:
        from evtx import PyEvtxParser

        whole = self.first == 0 and self.last >= self.slots
        view = None if whole else _ChunkView(self.path, self.first, self.last, self.slots)
        try:
            parser = PyEvtxParser(str(self.path) if view is None else view,
                                  number_of_threads=self.threads)
            yield from self._read(parser.records_json(), display, source)
        finally:
            if view is not None:
                view.close()

    def _read(self, it: Iterator[dict], display: str, source: str) -> Iterator[pa.Table]:
        # The iterator always advances, so errors are bounded by the records
        # the range can hold; the cap only guards a library bug.
        max_errors = (self.last - self.first + 1) * ep.CHUNK_SIZE // 24 + 16
        data = itemgetter("data")
        batch: list[str] = []
        while True:
            try:
                while True:
                    # extend() keeps the records taken before an error.
                    batch.extend(map(data, islice(it, BATCH - len(batch))))
                    if len(batch) < BATCH:
                        break
                    yield self._table(batch, display, source)
                    batch = []
                break
            except RuntimeError as exc:
                self._error(str(exc), batch)
                if self.rec_errors + self.chunk_errors > max_errors:
                    self.warnings.append(("too many errors; rest of file not read", None))
                    break
        if batch:
            yield self._table(batch, display, source)

    def _table(self, batch: list[str], display: str, source: str) -> pa.Table:
        self.read += len(batch)
        self.last_text = batch[-1]
        return records_to_table(batch, display, source)

    def _error(self, msg: str, batch: list[str]) -> None:
        if self.first:
            # A range view numbers its chunks from 0: say the file's number.
            msg = _CHUNK_ERR.sub(lambda m: f"{m.group(0)[:-len(m.group(1))]}"
                                 f"{int(m.group(1)) + self.first}", msg, count=1)
        loc, is_chunk = _error_locator(msg, self.chunks)
        if loc is None:
            # The record id is not in any chunk header's range, or the error
            # names no record (bad record header): find the record in the
            # file, else place the error after the last record read.
            m = _RECORD_ERR.search(msg)
            loc = _find_record(self.path, int(m.group(1))) if m else None
            if loc is None:
                prev = batch[-1] if batch else self.last_text
                loc = _AFTER_PREVIOUS if prev is None and self.first > 0 else \
                    _after_locator(self.path, prev, self.chunks)
        if is_chunk:
            self.chunk_errors += 1
        else:
            self.rec_errors += 1
        self.warnings.append((msg, loc))


class _Helper:
    """The second half of a large file, read by a forked child process.

    The child reads its chunk range exactly as the parent reads the first
    half (same :class:`_Range` code), writes each batch as an Arrow IPC file
    into a scratch directory and its warnings and counts as JSON; the parent
    yields its own half while the child works, then memory-maps the child's
    batches (no pickling of rows: sending rows back to a parent lost the
    whole parallel gain in DESIGN.md's measurements). A child that dies
    (killed, out of memory) is detected by its exit status and the parent
    reads that half itself. The child asks the kernel to kill it when the
    parent dies (a batch worker killed for its time limit leaves no orphan).
    """

    def __init__(self, pid: int, tmp: Path, first: int, last: int, slots: int,
                 chunks: list[tuple[int, int, int, bool]]) -> None:
        self.pid: int | None = pid
        self.tmp = tmp
        self.first, self.last, self.slots, self.chunks = first, last, slots, chunks

    @classmethod
    def start(cls, path: Path, first: int, last: int, chunks: list[tuple[int, int, int, bool]],
              ctx: ParseContext, source: str) -> _Helper | None:
        slots = len(chunks)
        if not sys.platform.startswith("linux"):
            # fork() of a process with native thread pools is only known to
            # be safe here on Linux (and PR_SET_PDEATHSIG is Linux's).
            return None
        try:
            base = ctx.work_dir
            if base is not None:
                base.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix="evtx-half-", dir=base))
        except OSError:
            return None
        parent = os.getpid()
        # Hand Arrow's free pages back to the OS first: pages the allocator
        # keeps for reuse are shared after fork, so every batch either
        # process builds in them costs a copy-on-write fault. Measured on
        # the benchmark file: minor faults per process 37k -> 17k, CPU per
        # half 0.42 -> 0.34 s.
        pa.default_memory_pool().release_unused()
        try:
            pid = os.fork()
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        if pid == 0:  # pragma: no cover - runs in the child, reported via its files
            code = 1
            try:
                _die_with_parent(parent)
                rng = _Range(path, first, last, slots, chunks, threads=1)
                for i, tbl in enumerate(rng.tables(ctx.path, source)):
                    with pa.OSFile(str(tmp / f"{i:06d}.arrow"), "wb") as sink, \
                            pa.ipc.new_file(sink, tbl.schema) as writer:
                        writer.write_table(tbl)
                summary = {"warnings": rng.warnings, "read": rng.read,
                           "rec_errors": rng.rec_errors, "chunk_errors": rng.chunk_errors,
                           "last_text": rng.last_text}
                (tmp / "summary.part").write_text(json.dumps(summary), encoding="utf-8")
                os.replace(tmp / "summary.part", tmp / "summary.json")
                code = 0
            except BaseException:  # noqa: BLE001 - the parent re-reads this half
                code = 1
            finally:
                os._exit(code)
        return cls(pid, tmp, first, last, slots, chunks)

    def finish(self) -> _Range | None:
        """Wait for the child; its range (warnings, counts), or None when it failed."""
        if self.pid is None:
            return None
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        summary = self.tmp / "summary.json"
        if status != 0 or not summary.exists():
            return None
        info = json.loads(summary.read_text(encoding="utf-8"))
        rng = _Range(Path(), self.first, self.last, self.slots, self.chunks, threads=1)
        rng.warnings = [(m, loc) for m, loc in info["warnings"]]
        rng.read, rng.rec_errors = info["read"], info["rec_errors"]
        rng.chunk_errors, rng.last_text = info["chunk_errors"], info["last_text"]
        return rng

    def tables(self) -> Iterator[pa.Table]:
        for f in sorted(self.tmp.glob("*.arrow")):
            # Memory-mapped: the batch's buffers stay valid after the file is
            # removed (Linux keeps the pages until unmapped).
            yield pa.ipc.open_file(pa.memory_map(str(f))).read_all()

    def close(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.pid = None
        shutil.rmtree(self.tmp, ignore_errors=True)


def _die_with_parent(parent: int) -> None:
    """In a forked child: ask Linux for SIGKILL when the parent dies
    (PR_SET_PDEATHSIG), and leave at once if it is already gone."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def _chunk_map(path: Path) -> list[tuple[int, int, int, bool]]:
    """Chunk index -> record-id range, read from the chunk headers (16 per
    MB; cheap) so a Rust error naming a record can be given a file offset."""
    with open(path, "rb") as fh:
        if fh.seek(0, 2) < ep.FILE_HEADER_SIZE + ep.CHUNK_SIZE:
            fh.seek(0)
            return ep.chunk_ranges(fh.read())
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return ep.chunk_ranges(buf)


def _header_note(ctx: ParseContext, path: Path, chunks: list[tuple[int, int, int, bool]]) -> None:
    with open(path, "rb") as fh:
        header = ep.read_file_header(fh.read(ep.FILE_HEADER_SIZE))
    found = sum(1 for c in chunks if c[3])
    if header.valid and header.chunk_count != found:
        ctx.note(f"header says {header.chunk_count} chunks, {found} found")
    if header.valid and header.flags & 0x1:
        ctx.note("header marked dirty (log copied while open)")


def _error_locator(msg: str, chunks: list[tuple[int, int, int, bool]],
                   base: int = 0) -> tuple[str | None, bool]:
    """Locator of a Rust error message; ``base`` is the file chunk index of
    the parser's first chunk (a range view numbers its chunks from 0)."""
    m = _CHUNK_ERR.search(msg)
    if m:
        idx = int(m.group(1)) + base
        return f"chunk={idx} offset=0x{ep.FILE_HEADER_SIZE + idx * ep.CHUNK_SIZE:x}", True
    m = _RECORD_ERR.search(msg)
    if m:
        rid = int(m.group(1))
        for idx, first, last, ok in chunks:
            if ok and first <= rid <= last:
                off = ep.FILE_HEADER_SIZE + idx * ep.CHUNK_SIZE
                return f"chunk={idx} offset=0x{off:x} record={rid}", False
        # Not in any chunk's header range (damaged header): placed after
        # the last record read by the caller.
        return None, False
    return None, False


def _find_record(path: Path, rid: int) -> str | None:
    """Locator of the record header carrying ``rid`` (searched only on errors)."""
    pattern = re.compile(re.escape(b"\x2a\x2a\x00\x00") + b".{4}" + re.escape(struct.pack("<Q", rid)),
                         re.S)
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        m = pattern.search(buf, ep.FILE_HEADER_SIZE)
    if not m:
        return None
    off = m.start()
    idx = (off - ep.FILE_HEADER_SIZE) // ep.CHUNK_SIZE
    return f"chunk={idx} offset=0x{off:x} record={rid}"


_RID = re.compile(r'"EventRecordID":"?(\d+)')


def _after_locator(path: Path, text: str | None,
                   chunks: list[tuple[int, int, int, bool]]) -> str | None:
    m = _RID.search(text) if text else None
    if not m:
        return None
    rid = int(m.group(1))
    for idx, first, last, ok in chunks:
        if ok and first <= rid <= last:
            return f"chunk={idx} offset=0x{ep.FILE_HEADER_SIZE + idx * ep.CHUNK_SIZE:x} after record={rid}"
    found = _find_record(path, rid)
    return f"{found.replace(' record=', ' after record=')}" if found else f"after record={rid}"


def _summary(ctx: ParseContext, read: int, rec_errors: int, chunk_errors: int,
             backend: str = "evtx") -> None:
    if rec_errors or chunk_errors:
        ctx.note(f"{backend}: {read} records read; skipped {rec_errors} bad record(s) "
                 f"and {chunk_errors} bad chunk(s)")
    else:
        ctx.note(f"{backend}: {read} records read")
