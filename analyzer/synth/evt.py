"""Writer for legacy Windows NT/2000/XP/2003 event logs (``.evt``, "LfLe").

Format (libyal "Windows Event Log (EVT) format", MSDN ELF_LOGFILE_HEADER /
EVENTLOGRECORD / ELF_EOF_RECORD), all little-endian:

* 48-byte file header: size, ``LfLe``, version 1.1, start (oldest record)
  offset, end offset (= offset of the end-of-file record), current record
  number (= the *next* number to be written), oldest record number, maximum
  size, flags (0x1 dirty, 0x2 wrapped, 0x4 log full, 0x8 archive), retention
  (seconds), copy of size.
* event records: 56-byte fixed part, source name and computer name
  (UTF-16LE, NUL-terminated), user SID (DWORD-aligned), insertion strings
  (UTF-16LE, each NUL-terminated), binary data, padding to 4 bytes, copy of
  the record size.
* the 0x28-byte end-of-file ("cursor") record: size, 0x11111111 0x22222222
  0x33333333 0x44444444, then again start offset, end offset, current record
  number and oldest record number, and a copy of the size.

The stored "event identifier" is the full 32-bit message id: severity (2
bits), customer flag, facility and code.  Event Viewer shows only
``id & 0xFFFF``; the top 16 bits are what EVTX calls ``Qualifiers``.  Readers
differ: pyevt's ``event_identifier`` returns the full 32-bit value, so parsers
must mask it themselves.

Windows only rewrites the file header when the log is closed cleanly. A log
copied while the EventLog service holds it open has the dirty flag set and
header offsets/record numbers that lag behind the real end of the data; the
end-of-file record is then the authority. ``dirty=True`` reproduces that.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence, Union

from ._util import PathOrFile, TimeLike, emit, sid_to_bytes, to_posix_seconds, utf16

__all__ = [
    "EVENTLOG_ERROR_TYPE",
    "EVENTLOG_WARNING_TYPE",
    "EVENTLOG_INFORMATION_TYPE",
    "EVENTLOG_AUDIT_SUCCESS",
    "EVENTLOG_AUDIT_FAILURE",
    "EvtRecord",
    "EvtLog",
    "write_evt",
    "evt_bytes",
]

SIGNATURE = b"LfLe"
HEADER_SIZE = 0x30
EOF_RECORD_SIZE = 0x28
EOF_SIGNATURE = struct.pack("<IIII", 0x11111111, 0x22222222, 0x33333333, 0x44444444)

FLAG_DIRTY = 0x0001
FLAG_WRAPPED = 0x0002
FLAG_LOGFULL_WRITTEN = 0x0004
FLAG_ARCHIVE_SET = 0x0008

EVENTLOG_SUCCESS = 0x0000
EVENTLOG_ERROR_TYPE = 0x0001
EVENTLOG_WARNING_TYPE = 0x0002
EVENTLOG_INFORMATION_TYPE = 0x0004
EVENTLOG_AUDIT_SUCCESS = 0x0008
EVENTLOG_AUDIT_FAILURE = 0x0010

_TYPE_NAMES = {
    "success": EVENTLOG_SUCCESS,
    "error": EVENTLOG_ERROR_TYPE,
    "warning": EVENTLOG_WARNING_TYPE,
    "information": EVENTLOG_INFORMATION_TYPE,
    "info": EVENTLOG_INFORMATION_TYPE,
    "audit_success": EVENTLOG_AUDIT_SUCCESS,
    "audit_failure": EVENTLOG_AUDIT_FAILURE,
}

#: Default qualifiers (severity bits of the message id) per event type, as
#: produced by message compilers: Sev=Error -> 0xC000, Warning -> 0x8000,
#: Informational -> 0x4000. Security audits are usually compiled with
#: Sev=Success (qualifiers 0), e.g. 529 is stored as 0x00000211.
_DEFAULT_QUALIFIERS = {
    EVENTLOG_SUCCESS: 0x0000,
    EVENTLOG_ERROR_TYPE: 0xC000,
    EVENTLOG_WARNING_TYPE: 0x8000,
    EVENTLOG_INFORMATION_TYPE: 0x4000,
    EVENTLOG_AUDIT_SUCCESS: 0x0000,
    EVENTLOG_AUDIT_FAILURE: 0x0000,
}

#: Default maximum log size of Windows 2000/2003 (512 KiB).
DEFAULT_MAX_SIZE = 0x80000


def _event_type(value: Union[int, str]) -> int:
    if isinstance(value, str):
        try:
            return _TYPE_NAMES[value.strip().lower().replace(" ", "_")]
        except KeyError:
            raise ValueError(f"unknown event type {value!r}") from None
    return int(value)


@dataclass
class EvtRecord:
    """One event record.

    ``event_id`` is the code shown by Event Viewer (low 16 bits). The stored
    identifier is ``qualifiers << 16 | event_id``; ``qualifiers=None`` derives
    them from ``event_type`` (error 0xC000, warning 0x8000, information
    0x4000, audits 0). An ``event_id`` above 0xFFFF is taken as the complete
    stored identifier (its top bits win over ``qualifiers``).
    """

    event_id: int
    source: str
    time_generated: TimeLike
    event_type: Union[int, str] = EVENTLOG_INFORMATION_TYPE
    computer: str = "EXCH01"
    category: int = 0
    strings: Sequence[str] = ()
    data: bytes = b""
    user_sid: str | None = None
    time_written: TimeLike | None = None  #: defaults to ``time_generated``
    qualifiers: int | None = None
    record_number: int | None = None  #: defaults to the running number

    @property
    def stored_event_id(self) -> int:
        """The 32-bit identifier as written to the file."""
        if self.event_id > 0xFFFF:
            return self.event_id & 0xFFFFFFFF
        quals = self.qualifiers
        if quals is None:
            quals = _DEFAULT_QUALIFIERS.get(_event_type(self.event_type), 0)
        return ((quals & 0xFFFF) << 16) | (self.event_id & 0xFFFF)

    @classmethod
    def from_dict(cls, d: Mapping) -> "EvtRecord":
        return cls(**dict(d))


@dataclass
class EvtLog:
    """File-level options.

    ``dirty`` sets the header's dirty flag and leaves the header describing
    the log as it was ``stale_records`` records earlier (default: all records
    newer than the header, i.e. the header still describes an empty log), as
    in a copy taken while the EventLog service had it open. The end-of-file
    record always has the true values.

    ``pad_to`` appends zero bytes up to that file size (Windows pre-grows the
    file; readers must stop at the end-of-file record).
    """

    records: Sequence[EvtRecord | Mapping] = field(default_factory=list)
    first_record_number: int = 1
    max_size: int = DEFAULT_MAX_SIZE
    retention: int = 0
    dirty: bool = False
    stale_records: int | None = None
    archive: bool = False
    pad_to: int | None = None


def _record_bytes(rec: EvtRecord, number: int) -> bytes:
    """Serialize one EVENTLOGRECORD."""
    variable = bytearray()
    variable += utf16(rec.source)
    variable += utf16(rec.computer)
    # The SID is DWORD-aligned relative to the record start (56 + variable).
    while (56 + len(variable)) % 4:
        variable += b"\x00"
    sid = sid_to_bytes(rec.user_sid) if rec.user_sid else b""
    sid_offset = 56 + len(variable)
    variable += sid
    strings_offset = 56 + len(variable)
    for s in rec.strings:
        variable += utf16(s)
    data_offset = 56 + len(variable)
    variable += bytes(rec.data)
    while (56 + len(variable)) % 4:
        variable += b"\x00"
    size = 56 + len(variable) + 4
    generated = to_posix_seconds(rec.time_generated)
    written = to_posix_seconds(rec.time_written if rec.time_written is not None else rec.time_generated)
    fixed = struct.pack(
        "<I4sIIIIHHHHIIIIII",
        size,
        SIGNATURE,
        number,
        generated,
        written,
        rec.stored_event_id,
        _event_type(rec.event_type),
        len(rec.strings),
        rec.category & 0xFFFF,
        0,  # reserved flags
        0,  # closing record number (reserved)
        strings_offset,
        len(sid),
        sid_offset,  # points at the (empty) SID slot even without a SID
        len(rec.data),
        data_offset,
    )
    assert len(fixed) == 56
    return fixed + bytes(variable) + struct.pack("<I", size)


def _header(start: int, end: int, current: int, oldest: int, max_size: int, flags: int, retention: int) -> bytes:
    return struct.pack(
        "<I4sIIIIIIIIII", HEADER_SIZE, SIGNATURE, 1, 1, start, end, current, oldest, max_size, flags, retention, HEADER_SIZE
    )


def _eof(start: int, end: int, current: int, oldest: int) -> bytes:
    return struct.pack("<I", EOF_RECORD_SIZE) + EOF_SIGNATURE + struct.pack("<IIIII", start, end, current, oldest, EOF_RECORD_SIZE)


def evt_bytes(records: Iterable[EvtRecord | Mapping] | EvtLog, **options) -> bytes:
    """Return the bytes of a .evt file holding ``records`` (oldest first).

    ``options`` are the :class:`EvtLog` fields (``dirty``, ``max_size``, ...).
    """
    if isinstance(records, EvtLog):
        log = records
    else:
        log = EvtLog(records=list(records), **options)
    recs = [r if isinstance(r, EvtRecord) else EvtRecord.from_dict(r) for r in log.records]

    body = bytearray()
    offsets: list[int] = []
    number = log.first_record_number
    numbers: list[int] = []
    for rec in recs:
        if rec.record_number is not None:
            number = rec.record_number
        offsets.append(HEADER_SIZE + len(body))
        numbers.append(number)
        body += _record_bytes(rec, number)
        number += 1

    start = HEADER_SIZE
    end = HEADER_SIZE + len(body)
    current = number  # next record number to be written
    oldest = numbers[0] if numbers else 0  # MSDN: 0 for an empty log

    flags = FLAG_ARCHIVE_SET if log.archive else 0
    h_start, h_end, h_current, h_oldest = start, end, current, oldest
    if log.dirty:
        flags |= FLAG_DIRTY
        stale = len(recs) if log.stale_records is None else max(0, min(log.stale_records, len(recs)))
        kept = len(recs) - stale
        if kept == 0:
            h_end, h_current, h_oldest = HEADER_SIZE, log.first_record_number, 0
        else:
            h_end = offsets[kept] if kept < len(recs) else end
            h_current = numbers[kept - 1] + 1
    eof = _eof(start, end, current, oldest)
    total = end + len(eof)
    max_size = max(log.max_size, total, log.pad_to or 0)
    out = _header(h_start, h_end, h_current, h_oldest, max_size, flags, log.retention) + bytes(body) + eof
    if log.pad_to and log.pad_to > len(out):
        out += b"\x00" * (log.pad_to - len(out))
    return out


def write_evt(target: PathOrFile, records: Iterable[EvtRecord | Mapping] | EvtLog, **options) -> None:
    """Write a .evt file to a path or binary file object. See :func:`evt_bytes`."""
    emit(target, evt_bytes(records, **options))
