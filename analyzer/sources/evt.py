"""Legacy .evt event logs (Windows NT 4 / 2000 / XP / 2003, "LfLe").

The format (libyal "Windows Event Log (EVT) format"; MSDN ELF_LOGFILE_HEADER,
EVENTLOGRECORD, ELF_EOF_RECORD) is a circular buffer: a 48-byte header,
records, and a 40-byte end-of-file record. We read it ourselves rather than
through libevt-python (pyevt) because pyevt follows the header, and the
header is exactly what is wrong in the files customers send:

* **Dirty header.** Windows rewrites the header only when the log is closed
  cleanly. A log copied while the EventLog service had it open (the usual
  case) has the dirty flag set and header offsets/record numbers that lag
  behind the data. The end-of-file record, rewritten after every event, is
  the authority: we locate it by its signature and take start/end offsets
  from it. Without one we walk from the start offset until the data stops
  making sense and then scan the rest of the file for record signatures.
* **Wrapping.** When the log is full, records continue after the header: the
  logical log runs from the start offset to the end of the file, then from
  offset 0x30 to the end-of-file record, and a record may be split across
  that boundary. Windows pads the tail with 0x00000027 dwords.
* **Bad lengths.** A record whose length field, signature or trailing
  length copy disagree is skipped with a warning naming its offset, and the
  walk resynchronises on the next ``LfLe`` signature that starts a valid
  record.

Field mapping: the stored 32-bit event identifier is a message id; Event
Viewer shows ``id & 0xFFFF`` (``event_id``) and the top 16 bits are what EVTX
calls Qualifiers (``qualifiers``). Times are UTC POSIX seconds. Event type
1/2/4/8/16 -> error/warning/information/audit_success/audit_failure; type 0
(EVENTLOG_SUCCESS) is shown by Event Viewer as Information. Insertion strings
go to ``data["strings"]``, the data bytes to ``data["binary"]`` (hex).
"""
from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import knowledge
from . import register
from .base import ParseContext, Source

SIGNATURE = b"LfLe"
HEADER_SIZE = 0x30
FIXED_SIZE = 0x38
EOF_SIZE = 0x28
EOF_MAGIC = struct.pack("<IIIII", EOF_SIZE, 0x11111111, 0x22222222, 0x33333333, 0x44444444)
PAD_DWORD = b"\x27\x00\x00\x00"
FLAG_DIRTY = 0x1
FLAG_WRAPPED = 0x2
#: Largest record we accept: Windows caps a record at 64 KiB of variable data.
MAX_RECORD = 0x40000

EVENT_TYPES = {0: "information", 1: "error", 2: "warning", 4: "information",
               8: "audit_success", 16: "audit_failure"}

def channel_from_name(name: str) -> str | None:
    """Channel of a .evt file from its name (the file has no log name inside):
    the stem, lower case and without spaces, looked up in
    ``knowledge/evt_channels.yaml`` (AppEvent.Evt -> Application, ...)."""
    stem = Path(name).name.rsplit(".", 1)[0].lower().replace(" ", "")
    value = knowledge.load("evt_channels").get(stem)
    return str(value) if value else None


def sid_text(raw: bytes) -> str | None:
    """Binary SID -> ``S-1-5-...`` (None when malformed)."""
    if len(raw) < 8:
        return None
    rev, count = raw[0], raw[1]
    if len(raw) < 8 + 4 * count:
        return None
    auth = int.from_bytes(raw[2:8], "big")
    subs = struct.unpack_from(f"<{count}I", raw, 8)
    return "S-" + "-".join([str(rev), str(auth), *map(str, subs)])


def _utf16z(buf: bytes, pos: int, end: int) -> tuple[str, int]:
    """NUL-terminated UTF-16LE string at pos (bounded by end): (text, next pos)."""
    i = pos
    while i + 1 < end:
        if buf[i] == 0 and buf[i + 1] == 0:
            return buf[pos:i].decode("utf-16-le", errors="replace"), i + 2
        i += 2
    return buf[pos:end].decode("utf-16-le", errors="replace"), end


def _u32(buf: Any, pos: int) -> int:
    """Little-endian DWORD at ``pos`` of bytes or of a :class:`_Log`."""
    return int.from_bytes(buf[pos:pos + 4], "little")


def valid_record_at(buf: Any, pos: int) -> int:
    """Size of a well-formed record starting at ``pos`` in ``buf`` (bytes or
    a :class:`_Log`), else 0."""
    if pos + FIXED_SIZE > len(buf) or buf[pos + 4:pos + 8] != SIGNATURE:
        return 0
    size = _u32(buf, pos)
    if size < FIXED_SIZE + 4 or size % 4 or size > MAX_RECORD or pos + size > len(buf):
        return 0
    if _u32(buf, pos + size - 4) != size:
        return 0
    return size


def decode_record(rec: bytes) -> dict[str, Any]:
    """The fields of one record (``rec`` is exactly the record's bytes)."""
    (size, _sig, number, generated, written, event_id, etype, nstrings, category,
     _flags, _closing, str_off, sid_len, sid_off, data_len, data_off) = struct.unpack_from(
        "<I4sIIIIHHHHIIIIII", rec, 0)
    end = size - 4
    source, pos = _utf16z(rec, FIXED_SIZE, end)
    computer, _ = _utf16z(rec, pos, end)
    user = None
    if sid_len and FIXED_SIZE <= sid_off and sid_off + sid_len <= end:
        user = sid_text(rec[sid_off:sid_off + sid_len])
    strings: list[str] = []
    if nstrings and FIXED_SIZE <= str_off < end:
        p = str_off
        limit = data_off if str_off <= data_off <= end and data_len else end
        for _ in range(nstrings):
            if p >= limit:
                break
            s, p = _utf16z(rec, p, limit)
            strings.append(s)
    binary = b""
    if data_len and FIXED_SIZE <= data_off and data_off + data_len <= end:
        binary = rec[data_off:data_off + data_len]
    return {"number": number, "generated": generated, "written": written,
            "event_id": event_id, "type": etype, "category": category,
            "source": source, "computer": computer, "user": user,
            "strings": strings, "binary": binary}


#: Bytes read at a time when searching the file (signatures, end-of-file record).
WINDOW = 1 << 20


class _File:
    """The file through bounded ``os.pread`` calls: slices, and forward and
    backward searches one :data:`WINDOW` at a time. Neither a whole-file
    read nor a memory map (whose touched pages count as the process's
    memory): a 2 GB sparse log costs a few MB."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, key: slice) -> bytes:
        lo, hi, _ = key.indices(self.size)
        return os.pread(self.fd, hi - lo, lo) if hi > lo else b""

    def find(self, sub: bytes, start: int, end: int | None = None) -> int:
        end = self.size if end is None else min(end, self.size)
        pos = max(start, 0)
        while pos < end:
            hi = min(pos + WINDOW + len(sub) - 1, end)
            at = self[pos:hi].find(sub)
            if at >= 0:
                return pos + at
            pos += WINDOW
        return -1

    def rfind(self, sub: bytes) -> int:
        hi = self.size
        while hi > 0:
            lo = max(0, hi - WINDOW)
            at = self[lo:min(hi + len(sub) - 1, self.size)].rfind(sub)
            if at >= 0:
                return lo + at
            hi = lo
        return -1


class _Log:
    """The logical byte stream of the circular log, with file offsets, over
    a :class:`_File`: only the slices asked for are read (a record, at most
    :data:`MAX_RECORD` bytes). When the log wrapped (start > end) the stream
    runs from ``start`` to the end of the file, then from after the header
    to ``end``; a slice or a search across that seam is assembled."""

    def __init__(self, data: _File, start: int, end: int) -> None:
        size = len(data)
        self.data = data
        if start <= end:
            parts = [(start, end)]
        else:
            parts = [(start, size), (HEADER_SIZE, end)]
        # A file shorter than its header leaves nothing to read.
        self.parts = [(a, b) for a, b in parts if b > a] or [(start, start)]
        self.length = sum(b - a for a, b in self.parts)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: slice) -> bytes:
        lo, hi, _ = key.indices(self.length)
        out = []
        base = 0
        for a, b in self.parts:
            n = b - a
            if hi > base and lo < base + n:
                out.append(self.data[a + max(lo - base, 0):a + min(hi - base, n)])
            base += n
        return out[0] if len(out) == 1 else b"".join(out)

    def find(self, sub: bytes, start: int) -> int:
        """First logical position of ``sub`` at or after ``start``, or -1."""
        base = 0
        for i, (a, b) in enumerate(self.parts):
            n = b - a
            if start < base + n:
                at = self.data.find(sub, a + max(start - base, 0), b)
                if at >= 0:
                    return base + at - a
            if i + 1 < len(self.parts):
                # A match across the seam.
                lo = max(base + n - len(sub) + 1, start)
                seam = self[lo:base + n + len(sub) - 1].find(sub)
                if seam >= 0:
                    return lo + seam
            base += n
        return -1

    def file_offset(self, pos: int) -> int:
        for a, b in self.parts:
            if pos < b - a:
                return a + pos
            pos -= b - a
        return self.parts[-1][1]


def _find_eof(data: _File) -> tuple[int, int, int, int, int] | None:
    """(offset, start, end, current, oldest) of the last end-of-file record."""
    at = data.rfind(EOF_MAGIC)
    if at < 0 or at + EOF_SIZE > len(data):
        return None
    start, end, current, oldest, size2 = struct.unpack("<IIIII", data[at + 20:at + EOF_SIZE])
    if size2 != EOF_SIZE:
        return None
    return at, start, end, current, oldest


@register
class EvtSource(Source):
    name = "evt"
    kind = "evt"
    description = "Legacy Windows event log (.evt, NT 4/2000/XP/2003)"

    def sniff(self, head: bytes, name: str) -> int:
        if len(head) >= 8 and head[4:8] == SIGNATURE and \
                struct.unpack_from("<I", head, 0)[0] == HEADER_SIZE:
            return 100
        # Header overwritten but records present.
        if SIGNATURE in head[:4096] and valid_record_at(head, max(0, head.find(SIGNATURE) - 4)):
            return 70 if name.lower().endswith(".evt") else 40
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        channel = channel_from_name(ctx.path.rsplit("!", 1)[-1])
        render = _renderer()
        with open(ctx.fs_path, "rb") as fh:
            # Bounded reads, never the whole file: a log can be gigabytes.
            data = _File(fh.fileno(), os.fstat(fh.fileno()).st_size)
            for rec, offset in self._records(ctx, data):
                yield _row(rec, offset, channel, render, ctx.path)

    # -- walking -----------------------------------------------------------
    def _records(self, ctx: ParseContext, data: _File) -> Iterator[tuple[dict[str, Any], int]]:
        size = len(data)
        header_ok = size >= HEADER_SIZE and data[4:8] == SIGNATURE
        h_start = h_end = flags = h_current = h_oldest = 0
        if header_ok:
            (_hs, _sig, _maj, _min, h_start, h_end, h_current, h_oldest, _max, flags, _ret,
             _hs2) = struct.unpack("<I4sIIIIIIIIII", data[0:HEADER_SIZE])
        else:
            ctx.warn("file header is not an LfLe header; records found by scanning", "offset=0x0")
        eof = _find_eof(data)
        if header_ok and flags & FLAG_DIRTY:
            ctx.note("header marked dirty (log copied while open)")
        if eof is not None:
            at, start, _end, _, _ = eof
            end = at  # the end-of-file record sits where the log ends
            if header_ok and (start, _end) != (h_start, h_end):
                ctx.note(f"header offsets (start 0x{h_start:x}, end 0x{h_end:x}) are stale; "
                         f"used the end-of-file record (start 0x{start:x}, end 0x{_end:x})")
            trusted_end = True
        elif header_ok:
            start, end, trusted_end = h_start, size, False
            ctx.warn(f"no end-of-file record in the file's {size} bytes (log cut short, or "
                     "its end overwritten): read up to the end of the file", f"offset=0x{size:x}")
        else:
            start, end, trusted_end = HEADER_SIZE, size, False
        if not (HEADER_SIZE <= start <= size) or not (HEADER_SIZE <= end <= size):
            ctx.warn(f"header offsets out of range (start 0x{start:x}, end 0x{end:x}); scanning",
                     "offset=0x10")
            start, end, trusted_end = HEADER_SIZE, size, False
        log = _Log(data, start, end)
        count = skipped = 0
        for item in self._walk(ctx, log, stop_at_eof=not trusted_end):
            if item is None:
                skipped += 1
                continue
            count += 1
            yield item
        ctx.note(f"{count} records read" + (f"; {skipped} damaged record(s) skipped" if skipped else ""))
        numbers = (eof[3], eof[4], "end-of-file record") if eof is not None else \
            (h_current, h_oldest, "header") if header_ok else None
        _compare(ctx, numbers, count, skipped, size, eof is not None)

    def _walk(self, ctx: ParseContext, log: _Log,
              stop_at_eof: bool) -> Iterator[tuple[dict[str, Any], int] | None]:
        buf = log
        pos = 0
        n = len(buf)
        while pos + 4 <= n:
            if buf[pos:pos + 4] == PAD_DWORD:
                pos += 4
                continue
            if buf[pos:pos + EOF_SIZE - 8] == EOF_MAGIC[: EOF_SIZE - 8]:
                return
            if stop_at_eof and buf[pos:pos + 4] == b"\x00\x00\x00\x00":
                # Unwritten space: nothing more unless records hide further on.
                nxt = self._resync(buf, pos)
                if nxt < 0:
                    return
                pos = nxt
                continue
            size = valid_record_at(buf, pos)
            if not size:
                claimed = _u32(buf, pos) if pos + 4 <= n else 0
                off = log.file_offset(pos)
                ctx.warn(f"bad record (length {claimed}, signature or trailing length wrong); "
                         "skipped to the next record", f"offset=0x{off:x}")
                yield None
                nxt = self._resync(buf, pos + 4)
                if nxt < 0:
                    return
                pos = nxt
                continue
            off = log.file_offset(pos)
            try:
                rec = decode_record(buf[pos:pos + size])
            except (struct.error, ValueError) as exc:
                ctx.warn(f"unreadable record: {exc}", f"offset=0x{off:x}")
                yield None
            else:
                yield rec, off
            pos += size

    @staticmethod
    def _resync(buf: _Log, pos: int) -> int:
        """Position of the next well-formed record at or after pos, else -1."""
        while True:
            i = buf.find(SIGNATURE, pos + 4 if pos + 4 <= len(buf) else len(buf))
            if i < 0:
                return -1
            cand = i - 4
            if cand >= pos and valid_record_at(buf, cand):
                return cand
            pos = i - 3


def _compare(ctx: ParseContext, numbers: tuple[int, int, str] | None, count: int,
             skipped: int, size: int, has_eof: bool) -> None:
    """Records read against what the log's numbers announce.

    ``numbers`` = (current = next number to write, oldest, where from): the
    end-of-file record's when there is one (rewritten after every event),
    else the header's (stale when dirty). Fewer records read than
    announced is damage with figures; no record in a log whose numbers say
    it is empty is an empty log, not a failure."""
    if numbers is None:
        if not count:
            ctx.warn(f"no record could be read: {size} bytes, no LfLe header and no "
                     "end-of-file record", "offset=0x0")
        return
    current, oldest, where = numbers
    announced = current - oldest if oldest and current >= oldest else 0
    if not count and not announced and has_eof and not ctx.partial:
        ctx.empty(f"empty log: the {where} says 0 records (next record number {current})")
        return
    if count < announced <= count + skipped:
        # Already warned record by record.
        ctx.note(f"the {where} announces {announced} records; {count} read, "
                 f"{skipped} skipped as damaged")
    elif count < announced:
        ctx.warn(f"the {where} announces records {oldest}..{current - 1} ({announced}); "
                 f"{count} read; file is {size} bytes", "offset=0x0")
    elif not count and not ctx.partial:
        ctx.warn(f"no record could be read: {size} bytes; the {where} says next record "
                 f"number {current}, oldest {oldest}", "offset=0x0")


def _renderer():
    try:
        from analyzer import messages
    except ImportError:
        return None
    return messages.render


def _row(rec: dict[str, Any], offset: int, channel: str | None, render: Any,
         path: str) -> dict[str, Any]:
    data: dict[str, Any] = {"strings": rec["strings"]}
    if rec["binary"]:
        data["binary"] = rec["binary"].hex()
    eid = rec["event_id"] & 0xFFFF
    message = None
    if render is not None and rec["source"]:
        try:
            message = render(rec["source"], eid, data)
        except Exception:  # noqa: BLE001 - a message is a convenience
            message = None
    return {
        "ts": datetime.fromtimestamp(rec["generated"], tz=timezone.utc),
        "ts_source": "utc",
        "host": rec["computer"] or None,
        "source": "evt",
        "kind": "event",
        "channel": channel,
        "provider": rec["source"] or None,
        "event_id": eid,
        "qualifiers": rec["event_id"] >> 16,
        "level": EVENT_TYPES.get(rec["type"], "unknown"),
        "category": str(rec["category"]),
        "user": rec["user"],
        "record_id": rec["number"],
        "message": message,
        "data": data,
        "path": path,
        "locator": f"record={rec['number']} offset=0x{offset:x}",
        "parse_status": "ok",
    }
