"""The .evtx file layout, read with bounded reads, and what a damaged file holds.

An .evtx file is a 4 KiB header followed by 64 KiB chunk slots; each chunk
carries its own 512-byte header (record-id range, free-space offset, CRC32s
of its header and of its records) and the records, whose templates and
strings are referenced by offsets inside the chunk. (Format: libyal
"Windows XML Event Log (EVTX)"; MS-EVEN6 for the BinXml inside records.)

This module reads only the header, the chunk headers and, for the CRC of
the records, one chunk at a time with ``os.pread``: never the whole file.
A 2 GB file whose header claims 65,535 chunks costs a few MB here.

What the layout tells the source about damage:

* a file that ends inside a chunk (a cut upload) keeps the records of that
  chunk that lie wholly before the cut: :func:`repair_cut_chunk` rebuilds
  the chunk with its header pointing at the last complete record (record
  count, free-space offset and CRCs rewritten), because both readers refuse
  a short chunk (the Rust reader skips it silently);
* a header announcing more chunks than the file holds, or a next record id
  beyond the records read, says the file lost its end;
* a chunk whose CRC32 does not match is named (its records are still read:
  a chunk being written when a live log was copied shows this too).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

try:
    # zlib-ng's CRC32 (carry-less multiply): ~18 GB/s here against ~1.8 GB/s
    # for the system zlib's, which made the CRC checks ~0.45 s of reading a
    # 750 MiB log. The same function; the system zlib's is the fallback.
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - zlib-ng is a dependency
    from zlib import crc32

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
FILE_HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
CHUNK_HEADER_SIZE = 0x200
RECORD_MAGIC = 0x00002A2A
#: The smallest well-formed record: header (24 bytes) + size copy (4).
MIN_RECORD = 0x1C


@dataclass
class FileHeader:
    """The fields of the 4 KiB file header used here."""

    first_chunk: int
    last_chunk: int
    next_record_id: int
    chunk_count: int
    flags: int
    valid: bool

    @property
    def dirty(self) -> bool:
        """Flag 0x1: the log was open (copied while in use): counts lag."""
        return self.valid and bool(self.flags & 0x1)


def read_file_header(buf: bytes) -> FileHeader:
    if len(buf) < 0x80 or buf[:8] != FILE_MAGIC:
        return FileHeader(0, 0, 0, 0, 0, False)
    first, last, nxt = struct.unpack_from("<QQQ", buf, 8)
    chunk_count = struct.unpack_from("<H", buf, 0x2A)[0]
    flags = struct.unpack_from("<I", buf, 0x78)[0]
    return FileHeader(first, last, nxt, chunk_count, flags, True)


class ChunkRange(NamedTuple):
    """One 64 KiB chunk slot: its index, the record-id range its header
    declares, whether it carries the chunk magic, and its free-space
    offset (0x200 = no record). ``(index, 0, -1, False, 0)`` for a slot
    without the magic."""

    index: int
    first_record: int
    last_record: int
    valid: bool
    free: int = 0
    #: A slot without the magic whose 512-byte header area is all zero
    #: (never written, or a hole of a sparse file).
    blank: bool = False

    @property
    def offset(self) -> int:
        """File offset of the chunk."""
        return FILE_HEADER_SIZE + self.index * CHUNK_SIZE

    def locator(self) -> str:
        return f"chunk={self.index} offset=0x{self.offset:x}"


def chunk_slots(size: int) -> int:
    """How many whole 64 KiB chunk slots fit in a file of ``size`` bytes."""
    return max(0, (size - FILE_HEADER_SIZE) // CHUNK_SIZE)


def _chunk_range(index: int, head: bytes) -> ChunkRange:
    if head[:8] != CHUNK_MAGIC or len(head) < 0x34:
        return ChunkRange(index, 0, -1, False, 0, not any(head))
    first, last = struct.unpack_from("<QQ", head, 0x08)
    free = struct.unpack_from("<I", head, 0x30)[0]
    return ChunkRange(index, first, last, True, free)


def chunk_ranges(buf: bytes) -> list[ChunkRange]:
    """The :class:`ChunkRange` of every whole slot of an in-memory file."""
    return [_chunk_range(i, bytes(buf[o:o + 0x34]))
            for i in range(chunk_slots(len(buf)))
            for o in (FILE_HEADER_SIZE + i * CHUNK_SIZE,)]


@dataclass
class CutChunk:
    """The chunk the file ends inside of."""

    index: int
    #: Bytes of the chunk present in the file (< 64 KiB).
    present: int
    #: Records wholly before the cut, and the last one's id.
    records: int = 0
    last_record: int | None = None
    #: The chunk rebuilt to end at its last complete record (64 KiB), or
    #: None when no record is complete.
    data: bytes | None = None

    @property
    def offset(self) -> int:
        return FILE_HEADER_SIZE + self.index * CHUNK_SIZE


@dataclass
class Layout:
    """What the file holds, from its header and chunk headers."""

    size: int
    header: FileHeader
    chunks: list[ChunkRange]
    #: The chunk cut by the end of the file (the slot after the last whole one).
    cut: CutChunk | None = None
    #: Bytes after the last whole slot that are not a chunk (all zero, or not
    #: starting with the chunk magic).
    tail_bytes: int = 0
    #: (chunk index, what) of chunks whose header or records CRC32 is wrong.
    bad_crc: list[tuple[int, str]] = field(default_factory=list)

    @property
    def found(self) -> int:
        """Chunks carrying the magic (whole ones)."""
        return sum(1 for c in self.chunks if c.valid)

    @property
    def slots(self) -> int:
        """Chunk slots the readers see: the whole ones, plus the cut one when
        it kept a record."""
        return len(self.chunks) + (1 if self.cut is not None and self.cut.data is not None else 0)

    @property
    def blank_announced(self) -> int:
        """Blank slots among the chunks the header counts."""
        count = self.header.chunk_count if self.header.valid else 0
        return sum(1 for c in self.chunks[:count] if c.blank)

    @property
    def holds_records(self) -> bool:
        """Whether any chunk header says it holds a record."""
        return any(c.valid and c.free > CHUNK_HEADER_SIZE for c in self.chunks) or \
            (self.cut is not None and self.cut.records > 0)

    def chunk_bytes(self, index: int) -> bytes | None:
        """The repaired bytes of the cut chunk, when ``index`` is it."""
        if self.cut is not None and self.cut.index == index:
            return self.cut.data
        return None


def read_layout(path: Path, crc: bool = True) -> Layout:
    """The :class:`Layout` of a file, read with bounded ``pread`` calls.

    With ``crc=False`` the chunks' CRC32s are left to the readers
    (:func:`crc_problems` over each reader's range): reading and checksumming
    every chunk here is ~0.5 s of a 750 MiB file spent before the second
    reader process can start."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        header = read_file_header(os.pread(fd, FILE_HEADER_SIZE, 0))
        chunks: list[ChunkRange] = []
        for i in range(chunk_slots(size)):
            head = os.pread(fd, CHUNK_HEADER_SIZE, FILE_HEADER_SIZE + i * CHUNK_SIZE)
            chunks.append(_chunk_range(i, head))
        layout = Layout(size, header, chunks)
        if crc:
            layout.bad_crc = _crc_of(fd, chunks)
        start = FILE_HEADER_SIZE + len(chunks) * CHUNK_SIZE
        rest = size - start if size > start else 0
        if rest:
            tail = os.pread(fd, rest, start)  # < 64 KiB
            if tail[:8] == CHUNK_MAGIC:
                layout.cut = repair_cut_chunk(len(chunks), tail)
            else:
                layout.tail_bytes = rest
        return layout
    finally:
        os.close(fd)


def crc_problems(path: Path, chunks: list[ChunkRange]) -> list[tuple[int, str]]:
    """(chunk index, what) of the ``chunks`` (valid whole chunks of the file
    at ``path``) whose header or records CRC32 is wrong."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _crc_of(fd, chunks)
    finally:
        os.close(fd)


def _crc_of(fd: int, chunks: list[ChunkRange]) -> list[tuple[int, str]]:
    bad: list[tuple[int, str]] = []
    for rng in chunks:
        if rng.valid:
            # One read a chunk: its header and its records up to the
            # free-space offset the header gives (``rng.free``).
            chunk = os.pread(fd, min(max(rng.free, CHUNK_HEADER_SIZE), CHUNK_SIZE), rng.offset)
            what = _crc_problem(chunk)
            if what:
                bad.append((rng.index, what))
    return bad


def _crc_problem(chunk: bytes) -> str | None:
    """Which CRC32 of a whole chunk is wrong ("header", "records", both), or
    None. ``chunk``: the chunk's bytes from its start, at least its header
    and up to its free-space offset when that is in range."""
    problems = []
    if crc32(chunk[:0x78] + chunk[0x80:CHUNK_HEADER_SIZE]) != struct.unpack_from("<I", chunk, 0x7C)[0]:
        problems.append("header")
    free = struct.unpack_from("<I", chunk, 0x30)[0]
    if CHUNK_HEADER_SIZE <= free <= CHUNK_SIZE:
        if crc32(memoryview(chunk)[CHUNK_HEADER_SIZE:free]) != struct.unpack_from("<I", chunk, 0x34)[0]:
            problems.append("records")
    else:
        problems.append("records (free-space offset out of range)")
    return " and ".join(problems) or None


def complete_records(chunk: bytes, limit: int) -> tuple[int, int, int | None, int | None]:
    """Walk the records of a chunk up to byte ``limit``: (count, end offset
    of the last complete record, its offset, its id). A record is complete
    when its magic, its size and the size copy at its end agree."""
    pos, count, last_off, last_id = CHUNK_HEADER_SIZE, 0, None, None
    while pos + MIN_RECORD <= limit:
        magic, rsize = struct.unpack_from("<II", chunk, pos)
        if magic != RECORD_MAGIC or rsize < MIN_RECORD or pos + rsize > limit or \
                struct.unpack_from("<I", chunk, pos + rsize - 4)[0] != rsize:
            break
        last_off, last_id = pos, struct.unpack_from("<Q", chunk, pos + 8)[0]
        count += 1
        pos += rsize
    return count, pos, last_off, last_id


def repair_cut_chunk(index: int, present: bytes) -> CutChunk:
    """The cut chunk ``index`` rebuilt from its ``present`` bytes: the records
    wholly before the cut, zeros after them, and a header that says so (last
    record number and id, last record offset, free-space offset, both CRCs),
    so either reader decodes them as a normal chunk."""
    cut = CutChunk(index, len(present))
    if len(present) < CHUNK_HEADER_SIZE:
        return cut
    free = struct.unpack_from("<I", present, 0x30)[0]
    limit = min(len(present), free) if free >= CHUNK_HEADER_SIZE else len(present)
    count, end, last_off, last_id = complete_records(present, limit)
    cut.records, cut.last_record = count, last_id
    if not count:
        return cut
    buf = bytearray(present[:end]) + bytes(CHUNK_SIZE - end)
    struct.pack_into("<Q", buf, 0x10, last_id)  # last event record number
    struct.pack_into("<Q", buf, 0x20, last_id)  # last event record identifier
    struct.pack_into("<II", buf, 0x2C, last_off, end)
    struct.pack_into("<I", buf, 0x34, crc32(bytes(buf[CHUNK_HEADER_SIZE:end])))
    struct.pack_into("<I", buf, 0x7C, crc32(bytes(buf[:0x78]) + bytes(buf[0x80:CHUNK_HEADER_SIZE])))
    cut.data = bytes(buf)
    return cut
