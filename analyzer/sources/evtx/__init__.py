""".evtx (Windows Vista and later event logs), two backends behind one source.

The package, by concern:

* :mod:`.layout`: the file header and chunk slots read with bounded reads,
  :class:`~.layout.ChunkRange` per slot, the chunk a cut file ends inside
  of rebuilt so its complete records stay readable, CRC checks;
* :mod:`.rust` (default backend): the ``evtx`` package (Rust) over a range
  of chunk slots; :mod:`.process`: the helper reader process of a large file;
* :mod:`.pyevtx` (``--evtx-backend python``): python-evtx, walking every
  chunk slot itself (python-evtx trusts the stale header chunk count);
* :mod:`.records`: the JSON -> Arrow table pipeline both backends share, in
  batches of :data:`~.rust.BATCH` records, so the rows of the two backends
  are equal and memory holds one batch of record text at a time.

A large file (:data:`SPLIT_MIN_CHUNKS`) on a machine with two cores is read
by two processes (the parent the first :data:`FIRST_SHARE` of its records,
then both, block by block, whichever is free); rows, warnings and notes are
the same as a one-process read (tested by forcing the split on the damaged
corpus files).

Damage is never silent: warnings carry the chunk number and its file offset
(``chunk=6 offset=0x61000``); a file that ends inside a chunk, or is shorter
than its header announces, or whose header's next record id is beyond the
records read, is ``partial`` with the figures; a file that holds records but
yields none is ``failed``; an empty log says so. The inventory note says how
many records were read and how many record/chunk errors were skipped.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pyarrow as pa

from .. import register
from ..base import ParseContext, Source
from . import pyevtx
from .layout import (CHUNK_MAGIC, CHUNK_SIZE, FILE_HEADER_SIZE, FILE_MAGIC, Layout, crc_problems,
                     read_layout)
from .process import Helper, plan_blocks
from .records import records_to_table
from .rust import AFTER_PREVIOUS, BATCH, RangeReader, after_locator

#: Files with at least this many 64 KiB chunk slots (4 MiB) are read by two
#: processes, one per part of the chunks, when two cores are available. The
#: Rust parser's own threads do not help here (bare iteration measured the
#: same with 1 and 2 threads: building each record's Python string and dict
#: holds the GIL), and the table build is a few microseconds a record more,
#: so a second process is what makes use of the second core. Below this
#: size the fork (~10-30 ms) costs more than it saves.
SPLIT_MIN_CHUNKS = 64

#: The share of a split file's records the parent reads before it starts
#: giving the helper's: the rest is shared block by block as each process
#: is free (:mod:`.process`), so this only sets how early the parent
#: starts on the helper's batches (it also enriches them and hands them to
#: the output: Parquet encoding, the file's hash). Measured on the 750 MiB
#: benchmark file: 0.1, 0.2 and 0.35 all ended within the noise (12.9-13.9
#: s); the parent never waited for the helper for more than 0.3 s.
FIRST_SHARE = 0.2

#: The rest of a split file is cut into about this many blocks, of at most
#: one batch of records and at least :data:`BLOCK_LEAST`: blocks of a whole
#: batch each left a 20 MiB log (~30k records) in one block, read by the
#: helper while the parent waited (measured: 1.73 s against 1.49 s with a
#: fixed split); more, smaller blocks add a batch's fixed cost each.
BLOCKS = 8
BLOCK_LEAST = 2_000


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
        if head.startswith(FILE_MAGIC):
            return 100
        # Damaged header but chunks present: still an event log.
        if len(head) >= FILE_HEADER_SIZE + 8 and \
                head[FILE_HEADER_SIZE:FILE_HEADER_SIZE + 8] == CHUNK_MAGIC:
            return 80
        if name.lower().endswith(".evtx") and CHUNK_MAGIC in head:
            return 60
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[pa.Table]:
        backend = getattr(ctx.options, "evtx_backend", "rust") or "rust"
        # The Rust readers check the CRCs of their own ranges (in parallel).
        layout = read_layout(ctx.fs_path, crc=backend == "python")
        _header_note(ctx, layout)
        outcome = _Outcome()
        if backend == "python":
            _crc_warnings(ctx, layout.bad_crc)
            yield from self._parse_python(ctx, layout, outcome)
        else:
            yield from self._parse_rust(ctx, layout, outcome)
        _damage(ctx, layout, outcome)

    # -- Rust ----------------------------------------------------------------
    def _parse_rust(self, ctx: ParseContext, layout: Layout, outcome: _Outcome) -> Iterator[pa.Table]:
        from evtx import PyEvtxParser

        path = ctx.fs_path
        try:
            PyEvtxParser(str(path))
        except (RuntimeError, OSError, ValueError) as exc:
            _crc_warnings(ctx, crc_problems(path, layout.chunks))
            ctx.warn(f"not readable as .evtx: {exc}", "offset=0x0")
            outcome.unreadable = True
            return
        slots = layout.slots
        helper = None
        if slots >= SPLIT_MIN_CHUNKS and _threads() >= 2:
            split, blocks = plan_blocks(layout, FIRST_SHARE, BATCH, BLOCK_LEAST, BLOCKS)
            helper = Helper.start(path, blocks, layout, ctx.work_dir, ctx.path, self.name) \
                if blocks else None
        if helper is None:
            split = slots
        first = RangeReader(path, 0, split, layout, threads=1 if helper else _threads())
        ranges = [first]
        try:
            yield from first.tables(ctx.path, self.name)
            if helper:
                yield from helper.in_order(ranges, ctx.note)
        finally:
            if helper:
                helper.close()
        _crc_warnings(ctx, sorted(bad for rng in ranges for bad in rng.bad_crc))
        last_text: str | None = None
        rec_errors = chunk_errors = 0
        for rng in ranges:
            for msg, loc in rng.warnings:
                if loc == AFTER_PREVIOUS:
                    # Placed after the last record of the previous range.
                    loc = after_locator(path, last_text, layout.chunks)
                ctx.warn(msg, loc)
            last_text = rng.last_text or last_text
            outcome.add(rng.read, rng.max_id)
            rec_errors += rng.rec_errors
            chunk_errors += rng.chunk_errors
        _summary(ctx, outcome.read, rec_errors, chunk_errors)

    # -- python-evtx ---------------------------------------------------------
    def _parse_python(self, ctx: ParseContext, layout: Layout,
                      outcome: _Outcome) -> Iterator[pa.Table]:
        counts = {"record": 0, "chunk": 0}

        def warn(message: str, locator: str) -> None:
            counts["record" if "record=" in locator else "chunk"] += 1
            ctx.warn(message, locator)

        batch: list[str] = []
        for rec in pyevtx.iter_records(ctx.fs_path, warn, layout, ctx.note):
            batch.append(rec.json)
            outcome.add(1, rec.record_id)
            if len(batch) >= BATCH:
                yield records_to_table(batch, ctx.path, self.name)
                batch = []
        if batch:
            yield records_to_table(batch, ctx.path, self.name)
        _summary(ctx, outcome.read, counts["record"], counts["chunk"], backend="python-evtx")


class _Outcome:
    """What a read yielded: records and the highest record id."""

    def __init__(self) -> None:
        self.read = 0
        self.max_id: int | None = None
        self.unreadable = False

    def add(self, count: int, max_id: int | None) -> None:
        self.read += count
        if max_id is not None:
            self.max_id = max_id if self.max_id is None else max(self.max_id, max_id)


def _header_note(ctx: ParseContext, layout: Layout) -> None:
    header = layout.header
    found = layout.found + (1 if layout.cut is not None else 0)  # the cut one counts
    if header.valid and header.chunk_count != found:
        ctx.note(f"header says {header.chunk_count} chunks, {found} found")
    if header.dirty:
        ctx.note("header marked dirty (log copied while open)")


def _crc_warnings(ctx: ParseContext, bad_crc: list[tuple[int, str]]) -> None:
    """A chunk whose CRC32 is wrong is named; its records are still read
    (the parsers do not check CRCs), so the file is not made partial by it."""
    for idx, what in bad_crc:
        ctx.warn(f"chunk {idx}: CRC32 of the chunk {what} does not match; records read as "
                 "found (a chunk being written when the log was copied, or damaged bytes)",
                 f"chunk={idx} offset=0x{FILE_HEADER_SIZE + idx * CHUNK_SIZE:x}", partial=False)


def _damage(ctx: ParseContext, layout: Layout, outcome: _Outcome) -> None:
    """Compare what the header and the file size announce with what was
    read: a cut file, a file shorter than its header says, records missing
    at the end, nothing read from a log that holds records, an empty log."""
    header, size, read = layout.header, layout.size, outcome.read
    announced = f"header announces {header.chunk_count} chunks" if header.valid \
        else "no valid file header"
    cut = layout.cut
    if cut is not None:
        ctx.warn(f"file ends at byte {size} inside chunk {cut.index} ({cut.present} of "
                 f"{CHUNK_SIZE} bytes present, {cut.records} complete record(s) kept); "
                 f"{announced}; {read} records read", f"chunk={cut.index} offset=0x{cut.offset:x}")
    elif header.valid and header.chunk_count > len(layout.chunks):
        need = FILE_HEADER_SIZE + header.chunk_count * CHUNK_SIZE
        ctx.warn(f"file is {size} bytes and holds {len(layout.chunks)} chunks; {announced} "
                 f"({need} bytes); {read} records read", f"offset=0x{size:x}")
    elif header.valid and outcome.max_id is not None and header.next_record_id - 1 > outcome.max_id:
        ctx.warn(f"header's next record id is {header.next_record_id} but the highest record "
                 f"read is {outcome.max_id}; {read} records read", "offset=0x18")
    if layout.blank_announced:
        first = next(c for c in layout.chunks if c.blank)
        ctx.warn(f"{layout.blank_announced} of the {header.chunk_count} chunk slots the header "
                 "counts are blank (all-zero chunk headers): their records are missing",
                 first.locator())
    if layout.tail_bytes:
        ctx.note(f"{layout.tail_bytes} bytes after the last chunk slot are not a chunk; ignored")
    if read:
        return
    if not layout.holds_records and not ctx.warnings and not outcome.unreadable:
        next_id = f", next record id {header.next_record_id}" if header.valid else ""
        ctx.empty(f"empty log: no chunk holds a record ({size} bytes, {layout.found} "
                  f"chunk(s){next_id})")
    elif not ctx.partial:
        ctx.warn(f"no record could be read: {size} bytes, {layout.found} chunk(s) with the chunk "
                 f"magic; {announced}", "offset=0x0")


def _summary(ctx: ParseContext, read: int, rec_errors: int, chunk_errors: int,
             backend: str = "evtx") -> None:
    if rec_errors or chunk_errors:
        ctx.note(f"{backend}: {read} records read; skipped {rec_errors} bad record(s) "
                 f"and {chunk_errors} bad chunk(s)")
    else:
        ctx.note(f"{backend}: {read} records read")
