"""The helper reader process of a large .evtx file, and how the two
processes share the chunk slots.

A large file on a machine with two cores is read by two processes: the
per-record work is Python-bound (the Rust parser's own threads measured no
faster: building each record's Python string and dict holds the GIL), so
the second core only helps from a second interpreter.

The work is shared dynamically, not split once: on a shared machine either
process may get less of a core than the other, and a fixed split left one
of them idle for up to 1.8 s of an 11 s read (measured on the 750 MiB
benchmark file). The parent reads the first part of the file; the rest is
cut into blocks of about one batch of records (:func:`plan_blocks`). Each
process claims the lowest unclaimed block (a hard link created in the
scratch directory: atomic, and it carries the claimant's letter), reads it,
and claims the next. The parent gives every row in file order: block by
block, its own (read now, or earlier while it waited for the helper and
kept as Arrow IPC files) or the helper's.

The helper reads each block exactly as the parent does (the same
:class:`~.rust.RangeReader`), writes each batch as an Arrow IPC file into
the scratch directory (complete files only: written as ``.part``, then
renamed) and, when the block is done, its warnings and counts as JSON. The
parent memory-maps the helper's batches as they appear (no pickling of rows:
sending rows back through a pipe lost the whole parallel gain when
measured). A helper that dies (killed, out of memory) is detected by its
exit status, and the parent reads the rest of its block itself, past the
rows already given. The helper asks the kernel to kill it when the parent
dies (a batch worker killed for its time limit leaves no orphan).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa

from ...safeio import FORK_GATE
from .layout import CHUNK_SIZE, Layout
from .records import warm
from .rust import RangeReader

#: Most records a chunk can hold (a record is at least 24 bytes): a bound
#: on a damaged chunk header's record range when blocks are planned.
_MAX_CHUNK_RECORDS = CHUNK_SIZE // 24

Block = tuple[int, int]  # chunk slots [first, last)


def plan_blocks(layout: Layout, first_share: float, most: int, least: int = 1,
                parts: int = 1) -> tuple[int, list[Block]]:
    """(end of the parent's first part, the blocks after it).

    Cut by the records the chunk headers announce: the first part holds
    about ``first_share`` of the file's records; the rest is cut into
    about ``parts`` blocks, each holding at most ``most`` records (one
    batch: no small batch at every block's end) and, where the rest allows,
    at least ``least``. Every block has at least one slot; a file whose
    headers announce no record is cut by slots."""
    slots = layout.slots
    counts = [min(max(c.last_record - c.first_record + 1, 0), _MAX_CHUNK_RECORDS) if c.valid else 0
              for c in layout.chunks[:slots]]
    if slots > len(layout.chunks) and layout.cut is not None:
        counts.append(layout.cut.records)
    if not sum(counts):
        counts = [1] * slots
    total = sum(counts)
    first, held = 0, 0
    while first < slots - 1 and (first == 0 or held + counts[first] <= total * first_share):
        held += counts[first]
        first += 1
    block_records = min(most, max(least, -(-(total - held) // parts)))
    blocks: list[Block] = []
    start, held = first, 0
    for i in range(first, slots):
        if i > start and held + counts[i] > block_records:
            blocks.append((start, i))
            start, held = i, 0
        held += counts[i]
    if start < slots:
        blocks.append((start, slots))
    return first, blocks


def _claim(tmp: Path, k: int, who: str) -> bool:
    """Claim block ``k`` for ``who`` ("p" parent, "c" child): a hard link
    to the claimant's letter file, which either process can create first
    and only one can."""
    try:
        os.link(tmp / f"owner-{who}", tmp / f"claim-{k:05d}")
        return True
    except FileExistsError:
        return False


def _owner(tmp: Path, k: int) -> str | None:
    try:
        return (tmp / f"claim-{k:05d}").read_text(encoding="ascii") or None
    except FileNotFoundError:
        return None


def _write_batch(path: Path, tbl: pa.Table) -> None:
    """One batch as an Arrow IPC file, under its final name once complete
    (an incomplete one is removed)."""
    part = path.with_suffix(".part")
    try:
        with pa.OSFile(str(part), "wb") as sink, pa.ipc.new_file(sink, tbl.schema) as writer:
            writer.write_table(tbl)
        os.replace(part, path)
    except OSError:
        part.unlink(missing_ok=True)
        raise


def _read_batch(path: Path) -> pa.Table:
    # Memory-mapped: the batch's buffers stay valid after the file is
    # removed (Linux keeps the pages until unmapped).
    tbl = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    path.unlink(missing_ok=True)
    return tbl


def _summary(rng: RangeReader) -> dict:
    return {"warnings": rng.warnings, "read": rng.read, "rec_errors": rng.rec_errors,
            "chunk_errors": rng.chunk_errors, "last_text": rng.last_text, "max_id": rng.max_id,
            "bad_crc": rng.bad_crc}


def _range_of(info: dict, first: int, last: int, layout: Layout) -> RangeReader:
    rng = RangeReader(Path(), first, last, layout, threads=1)
    rng.warnings = [(m, loc) for m, loc in info["warnings"]]
    rng.read, rng.rec_errors = info["read"], info["rec_errors"]
    rng.chunk_errors, rng.last_text = info["chunk_errors"], info["last_text"]
    rng.max_id = info["max_id"]
    rng.bad_crc = [(idx, what) for idx, what in info["bad_crc"]]
    return rng


class Helper:
    """A forked child reading the blocks it claims."""

    #: Seconds between two looks for the child's next batch, when the
    #: parent has no block of its own left to read meanwhile.
    POLL = 0.01

    def __init__(self, pid: int, tmp: Path, path: Path, blocks: list[Block], layout: Layout,
                 display: str, source: str) -> None:
        self.pid: int | None = pid
        self.status: int | None = None  # the child's wait status, once it exited
        self.tmp, self.path, self.blocks, self.layout = tmp, path, blocks, layout
        self.display, self.source = display, source
        #: Blocks the parent read ahead: their ranges and batches (files,
        #: or tables when a file could not be written).
        self._ahead: dict[int, tuple[RangeReader, list[Path | pa.Table]]] = {}
        self.taken = 0  # rows of the child's batches given so far
        self.failed = False  # the child died (said once)
        self._unclaimed = 0  # no block below this one is left to claim
        self._spool_ok = True  # blocks read ahead can be written to the scratch directory

    @classmethod
    def start(cls, path: Path, blocks: list[Block], layout: Layout, work_dir: Path | None,
              display: str, source: str) -> Helper | None:
        """Fork the child; None when this platform or the moment does not allow it."""
        if not sys.platform.startswith("linux"):
            # fork() of a process with native thread pools is only known to
            # be safe here on Linux (and PR_SET_PDEATHSIG is Linux's).
            return None
        try:
            if work_dir is not None:
                work_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix="evtx-helper-", dir=work_dir))
        except OSError:
            return None
        try:
            for who in "pc":
                (tmp / f"owner-{who}").write_text(who, encoding="ascii")
            # Claims are hard links: a scratch file system without them
            # (some network mounts) means one process reads the file.
            os.link(tmp / "owner-p", tmp / "probe")
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        parent = os.getpid()
        # What every batch needs is loaded once, here, and inherited.
        warm()
        # Hand Arrow's free pages back to the OS first: pages the allocator
        # keeps for reuse are shared after fork, so every batch either
        # process builds in them costs a copy-on-write fault. Measured on
        # the benchmark file: minor faults per process 37k -> 17k, CPU per
        # half 0.42 -> 0.34 s.
        pa.default_memory_pool().release_unused()
        keep_heap_pages()
        try:
            # No other thread of the loader is inside native code meanwhile
            # (hashing, Parquet encoding): see analyzer.safeio.ForkGate.
            pid = FORK_GATE.fork()
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        if pid == 0:  # pragma: no cover - runs in the child, reported via its files
            _child(path, blocks, layout, tmp, parent, display, source)
        return cls(pid, tmp, path, blocks, layout, display, source)

    def _reap(self, block: bool) -> bool:
        """Whether the child has exited (its status kept in :attr:`status`)."""
        if self.pid is None:
            return self.status is not None
        pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.pid, self.status = None, status
        return True

    def in_order(self, ranges: list[RangeReader], note: Callable[[str], None]) -> Iterator[pa.Table]:
        """Every block's rows in file order; each block's range (warnings,
        counts) appended to ``ranges`` in the same order."""
        for k, (first, last) in enumerate(self.blocks):
            # Claimed already, or claimed now by the parent, or by the
            # child between the two looks.
            owner = _owner(self.tmp, k) or ("p" if _claim(self.tmp, k, "p") else _owner(self.tmp, k))
            if owner == "c":
                yield from self._childs_block(k, ranges, note)
            elif k in self._ahead:
                rng, kept = self._ahead.pop(k)
                for item in kept:
                    yield item if isinstance(item, pa.Table) else _read_batch(item)
                ranges.append(rng)
            else:
                rng = RangeReader(self.path, first, last, self.layout, threads=1)
                yield from rng.tables(self.display, self.source)
                ranges.append(rng)

    def _childs_block(self, k: int, ranges: list[RangeReader],
                      note: Callable[[str], None]) -> Iterator[pa.Table]:
        """The child's batches of block ``k``, as soon as each is written;
        the block read here past them when the child failed on it."""
        first, last = self.blocks[k]
        taken = 0
        for tbl in self.tables(k):
            taken += tbl.num_rows
            yield tbl
        self.taken += taken
        done = self.tmp / f"c{k:05d}.json"
        info = json.loads(done.read_text(encoding="utf-8")) if done.exists() else None
        if info is not None and info["read"] == taken:
            ranges.append(_range_of(info, first, last, self.layout))
            return
        # The child died (killed, out of memory), or fewer of its rows
        # arrived than it says it read: the block is read here, past the
        # records already given.
        if info is None:
            if not self.failed:
                note(f"helper reader process failed after {self.taken} records; "
                     "the rest read in-process")
            self.failed = True
        else:
            note(f"helper reader process read {info['read']} records of chunks {first}-{last - 1} "
                 f"but {taken} arrived; the rest read in-process")
        rng = RangeReader(self.path, first, last, self.layout, threads=1)
        yield from skip_rows(rng.tables(self.display, self.source), taken)
        ranges.append(rng)

    def tables(self, k: int) -> Iterator[pa.Table]:
        """The child's batches of block ``k`` in order, each as soon as the
        child has written it; ends when the block is done, or when the child
        has exited and its last batch is taken. While none is ready, the
        parent reads a block of its own ahead."""
        i = 0
        while True:
            f = self.tmp / f"c{k:05d}-{i:06d}.arrow"
            if f.exists():
                yield _read_batch(f)
                i += 1
            elif (self.tmp / f"c{k:05d}.json").exists() or self._reap(block=False):
                if not f.exists():  # written between the two looks: take it
                    return
            elif not self._read_ahead():
                time.sleep(self.POLL)

    def _read_ahead(self) -> bool:
        """Claim the lowest unclaimed block and read it into batch files;
        False when every block is claimed."""
        # Claims only grow: a block found claimed is not looked at again.
        while self._spool_ok and self._unclaimed < len(self.blocks):
            k = self._unclaimed
            self._unclaimed += 1
            if _claim(self.tmp, k, "p"):
                self._spool(k)
                return True
        return False

    def _spool(self, k: int) -> None:
        """Read block ``k`` (claimed by the parent) into batch files, kept
        in :attr:`_ahead` until its turn comes."""
        first, last = self.blocks[k]
        rng = RangeReader(self.path, first, last, self.layout, threads=1)
        kept: list[Path | pa.Table] = []
        for i, tbl in enumerate(rng.tables(self.display, self.source)):
            kept.append(self.tmp / f"p{k:05d}-{i:06d}.arrow")
            try:
                _write_batch(kept[-1], tbl)
            except OSError:
                # The scratch disk is full: this block stays in memory
                # (about one batch), and no other is read ahead.
                kept[-1] = tbl
                self._spool_ok = False
        self._ahead[k] = (rng, kept)

    def close(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            # Killed: what tables() sees from now on.
            self.pid, self.status = None, -signal.SIGKILL
        shutil.rmtree(self.tmp, ignore_errors=True)


def skip_rows(tables: Iterator[pa.Table], count: int) -> Iterator[pa.Table]:
    """``tables`` without their first ``count`` rows (one row a record)."""
    for tbl in tables:
        if count >= tbl.num_rows:
            count -= tbl.num_rows
            continue
        yield tbl.slice(count) if count else tbl
        count = 0


def _child(path: Path, blocks: list[Block], layout: Layout, tmp: Path, parent: int,
           display: str, source: str) -> None:  # pragma: no cover - runs in the child, reported via its files
    """The child's whole life: read the blocks it can claim, write their
    files, exit."""
    code = 1
    try:
        _die_with_parent(parent)
        for k, (first, last) in enumerate(blocks):
            if not _claim(tmp, k, "c"):
                continue
            rng = RangeReader(path, first, last, layout, threads=1)
            for i, tbl in enumerate(rng.tables(display, source)):
                _write_batch(tmp / f"c{k:05d}-{i:06d}.arrow", tbl)
            done = tmp / f"c{k:05d}.json"
            done.with_suffix(".part").write_text(json.dumps(_summary(rng)), encoding="utf-8")
            os.replace(done.with_suffix(".part"), done)
        code = 0
    except BaseException:  # noqa: BLE001 - the parent reads this block itself
        code = 1
    finally:
        os._exit(code)


#: glibc ``mallopt`` parameters and the values :func:`keep_heap_pages` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TRIM_BYTES, _MMAP_BYTES = 128 << 20, 32 << 20


def keep_heap_pages() -> bool:
    """Let glibc's heap keep up to 128 MiB of freed memory for reuse in this
    process (and the helper forked after it), instead of giving it back to
    the kernel once a few MiB lie free at the heap's top.

    A batch of the table build holds tens of MB of numpy temporaries (on
    the C heap) and frees them at its end: with glibc's defaults the heap
    shrinks after every batch and the next batch faults the same pages in
    again. Measured on the 750 MiB benchmark file: minor page faults in the
    table build 98-110k -> 45-54k in the parent, 240-280k -> 115-150k over
    both processes; system time 1.0 -> 0.75-0.85 s; peak RSS within the
    run-to-run spread. The mmap threshold is set as well, to 32 MiB (the top
    of glibc's own adjustment): setting the trim threshold alone turns that
    adjustment off, leaving 128 KiB, so every larger buffer became a fresh
    mapping (610k faults); a 4 MiB threshold did the same to the build's
    larger temporaries. Called when the first split read starts, not at
    start-up: a text source holding many small rows at once peaked ~10%
    higher with it (the tracking parse 298-304 MB against its 300 MB goal).
    It then stays for the rest of the process, since glibc cannot go back
    to adjusting its thresholds itself; what the heap keeps unused is
    bounded by the 128 MiB. False where this is not glibc."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        import ctypes
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_BYTES)) and \
            bool(libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES))
    except (OSError, AttributeError, ValueError):  # not glibc, or no confstr name
        return False


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
