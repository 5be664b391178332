""".evtx (Windows Vista and later event logs), two backends behind one source.

* ``rust`` (default): the ``evtx`` package (Rust). Each record is its own
  result: a bad record or chunk raises once from the iterator and the
  iterator goes on, so one damaged chunk never costs the rest of the file.
* ``python``: python-evtx through :mod:`analyzer.evtx_python`, which walks
  every chunk slot itself (python-evtx trusts the stale header chunk count).

Both feed the same JSON -> Arrow pipeline (:mod:`._evtx_common`) in batches
of :data:`BATCH` records, so memory holds one batch of record text at a
time plus the table being built, and the rows of the two backends are equal.

Warnings carry the chunk number and its file offset (``chunk=6
offset=0x61000``); the inventory note says how many records were read and
how many record/chunk errors were skipped.
"""
from __future__ import annotations

import mmap
import os
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from . import register
from ._evtx_common import records_to_table
from .base import ParseContext, Source
from .. import evtx_python as ep

#: Records per Arrow batch: large enough to amortize the per-batch kernels,
#: small enough that one batch of JSON text stays a few tens of MB.
BATCH = 20_000

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
        size = path.stat().st_size
        chunks = _chunk_map(path)
        _header_note(ctx, path, chunks)
        try:
            parser = PyEvtxParser(str(path), number_of_threads=_threads())
        except (RuntimeError, OSError, ValueError) as exc:
            ctx.warn(f"not readable as .evtx: {exc}", "offset=0x0")
            return
        it = parser.records_json()
        # The iterator always advances, so errors are bounded by the records
        # a file of this size can hold; the cap only guards a library bug.
        max_errors = size // 24 + 16
        batch: list[str] = []
        last_text: str | None = None
        read = rec_errors = chunk_errors = 0
        while True:
            try:
                for rec in it:
                    batch.append(rec["data"])
                    if len(batch) >= BATCH:
                        read += len(batch)
                        last_text = batch[-1]
                        yield records_to_table(batch, ctx.path, self.name)
                        batch = []
                break
            except RuntimeError as exc:
                msg = str(exc)
                loc, is_chunk = _error_locator(msg, chunks)
                if loc is None:
                    # The record id is not in any chunk header's range, or the
                    # error names no record (bad record header): find the
                    # record in the file, else place the error after the last
                    # record read.
                    m = _RECORD_ERR.search(msg)
                    loc = (_find_record(path, int(m.group(1))) if m else None) or \
                        _after_locator(path, batch[-1] if batch else last_text, chunks)
                if is_chunk:
                    chunk_errors += 1
                else:
                    rec_errors += 1
                ctx.warn(msg, loc)
                if rec_errors + chunk_errors > max_errors:
                    ctx.warn("too many errors; rest of file not read", None)
                    break
        if batch:
            read += len(batch)
            yield records_to_table(batch, ctx.path, self.name)
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


def _error_locator(msg: str, chunks: list[tuple[int, int, int, bool]]) -> tuple[str | None, bool]:
    m = _CHUNK_ERR.search(msg)
    if m:
        idx = int(m.group(1))
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
