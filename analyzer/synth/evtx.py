"""Writer for Windows XML event logs (``.evtx``, Vista and later).

Format (libyal "Windows XML Event Log (EVTX)", [MS-EVEN6] BinXml):

* a 4096-byte file header (``ElfFile``): first/last chunk number, next record
  identifier, header size 128, version 3.1, block size 4096, chunk count,
  flags (0x1 dirty, 0x2 full) and the CRC32 of its first 120 bytes;
* 64 KiB chunks (``ElfChnk``) with a 512-byte header: first/last record
  number and identifier, last-record offset, free-space offset, CRC32 of the
  record data, CRC32 of header bytes 0-120 + 128-512, then a 64-bucket
  common-string table and a 32-bucket template table (chunk offsets);
* records (``**\\0\\0``, size, identifier, written FILETIME, BinXml, copy of
  size). The BinXml is a fragment holding a *template instance*: the first
  record in a chunk that uses a template carries the template *definition*
  inline (GUID, size, fragment with elements, attributes and substitution
  tokens); later records only point at it by chunk offset. Names (element
  and attribute) are likewise stored once per chunk, hashed into the string
  table (hash = h*65599 + utf16 unit, low 16 bits; bucket = hash % 64), and
  referenced by offset afterwards. The instance then lists typed values
  (size, type) followed by their data.

Everything is chunk-local: a record that does not fit starts a new chunk
that re-defines its names and templates.

Reader pitfalls this writer respects:

* libevtx needs the BinXml end-of-stream token (0x00) after the substitution
  values (records are padded to 8 bytes after it, as Windows does);
* libevtx drops a record that ends exactly at the end of a chunk, so at
  least ``CHUNK_SLACK`` bytes are left free;
* libevtx's string accessors fail on records without EventData, so an empty
  ``<EventData/>`` is always written;
* python-evtx trusts the file header's chunk count, which is kept exact.

Templates are built per event "shape" (which optional System parts and which
EventData items are present); template GUIDs are derived from the shape so
output is deterministic.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence, Union

from ._util import PathOrFile, TimeLike, emit, sid_to_bytes, to_filetime

__all__ = [
    "EvtxEvent",
    "write_evtx",
    "evtx_bytes",
    "name_hash",
    "LEVEL_CRITICAL",
    "LEVEL_ERROR",
    "LEVEL_WARNING",
    "LEVEL_INFORMATION",
    "LEVEL_VERBOSE",
    "KEYWORDS_CLASSIC",
    "KEYWORDS_AUDIT_SUCCESS",
    "KEYWORDS_AUDIT_FAILURE",
]

FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
CHUNK_HEADER_SIZE = 512
#: Bytes always left unused at the end of a chunk (libevtx pitfall, see above).
CHUNK_SLACK = 8

LEVEL_LOG_ALWAYS = 0
LEVEL_CRITICAL = 1
LEVEL_ERROR = 2
LEVEL_WARNING = 3
LEVEL_INFORMATION = 4
LEVEL_VERBOSE = 5

#: Keywords of events logged through the classic ReportEvent API (EventLogClassic).
KEYWORDS_CLASSIC = 0x0080000000000000
KEYWORDS_AUDIT_SUCCESS = 0x8020000000000000
KEYWORDS_AUDIT_FAILURE = 0x8010000000000000

EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"

# BinXml value types
T_NULL = 0x00
T_STRING = 0x01
T_UINT8 = 0x04
T_UINT16 = 0x06
T_UINT32 = 0x08
T_UINT64 = 0x0A
T_BINARY = 0x0E
T_GUID = 0x0F
T_FILETIME = 0x11
T_SID = 0x13
T_HEXINT64 = 0x15

# BinXml tokens
TOK_EOF = 0x00
TOK_OPEN_START = 0x01
TOK_CLOSE_START = 0x02
TOK_CLOSE_EMPTY = 0x03
TOK_END_ELEMENT = 0x04
TOK_VALUE = 0x05
TOK_ATTRIBUTE = 0x06
TOK_TEMPLATE_INSTANCE = 0x0C
TOK_NORMAL_SUBST = 0x0D
TOK_OPTIONAL_SUBST = 0x0E
TOK_FRAGMENT_HEADER = 0x0F
FLAG_MORE = 0x40

_TEMPLATE_NS = uuid.UUID("6c1f9a52-3a51-4b7e-9f5e-0d8c2a0e5e11")

DataItems = Union[Mapping[str, Any], Sequence[Any]]


@dataclass
class EvtxEvent:
    """One event, rendered as the System + EventData XML Windows produces.

    ``data`` is either a mapping (named ``<Data Name="k">v</Data>``, as
    manifest-based providers write), a sequence of strings (unnamed
    ``<Data>v</Data>``, as classic ReportEvent sources write) or a sequence of
    ``(name or None, value)`` pairs to mix both. ``binary`` adds
    ``<Binary>HEX</Binary>`` (classic event data bytes).

    ``qualifiers`` adds ``<EventID Qualifiers="...">`` (the top 16 bits of
    the classic 32-bit message id, e.g. 16384 info, 49152 error). Optional
    System parts are omitted when None: ``provider_guid``,
    ``event_source_name``, ``version``, ``opcode``, ``activity_id``,
    ``related_activity_id``, ``process_id``/``thread_id`` (Execution is
    written when either is set), ``user_sid`` (``<Security/>`` stays, empty).
    ``record_id`` defaults to the running number; ``time_written`` (record
    header) defaults to ``time_created``.
    """

    provider: str
    event_id: int
    time_created: TimeLike
    level: int = LEVEL_INFORMATION
    channel: str = "Application"
    computer: str = "EXCH01.contoso.com"
    qualifiers: int | None = None
    provider_guid: str | uuid.UUID | None = None
    event_source_name: str | None = None
    version: int | None = 0
    task: int = 0
    opcode: int | None = 0
    keywords: int = KEYWORDS_CLASSIC
    record_id: int | None = None
    activity_id: str | uuid.UUID | None = None
    related_activity_id: str | uuid.UUID | None = None
    process_id: int | None = 0
    thread_id: int | None = 0
    user_sid: str | None = None
    data: DataItems = field(default_factory=list)
    binary: bytes | None = None
    time_written: TimeLike | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvtxEvent":
        return cls(**dict(d))


def name_hash(name: str) -> int:
    """BinXml name hash: h = h * 65599 + UTF-16 code unit, keep the low 16 bits."""
    h = 0
    raw = name.encode("utf-16-le")
    for (unit,) in struct.iter_unpack("<H", raw):
        h = (h * 65599 + unit) & 0xFFFFFFFF
    return h & 0xFFFF


def _guid_bytes(value: str | uuid.UUID) -> bytes:
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(str(value).strip("{}"))
    return u.bytes_le


# --------------------------------------------------------------------------
# Template model
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sub:
    index: int
    vtype: int
    optional: bool = True


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass
class _Elem:
    name: str
    attrs: list[tuple[str, _Sub | _Text]] = field(default_factory=list)
    children: list[Union["_Elem", _Sub, _Text]] = field(default_factory=list)


def _data_items(data: DataItems) -> list[tuple[str | None, str]]:
    if isinstance(data, Mapping):
        return [(str(k), "" if v is None else str(v)) for k, v in data.items()]
    out: list[tuple[str | None, str]] = []
    for item in data:
        if isinstance(item, tuple):
            name, value = item
            out.append((None if name is None else str(name), "" if value is None else str(value)))
        else:
            out.append((None, "" if item is None else str(item)))
    return out


def _event_values(ev: EvtxEvent, record_id: int) -> tuple[_Elem, list[tuple[int, bytes]], tuple]:
    """Return (template tree, substitution values, shape key) for one event."""
    values: list[tuple[int, bytes]] = []
    shape: list[Any] = []

    def sub(vtype: int, data: bytes, optional: bool = True) -> _Sub:
        values.append((vtype, data))
        return _Sub(len(values) - 1, vtype, optional)

    def s(text: str) -> bytes:
        return text.encode("utf-16-le")

    system = _Elem("System")
    prov_attrs: list[tuple[str, _Sub | _Text]] = [("Name", sub(T_STRING, s(ev.provider)))]
    if ev.provider_guid is not None:
        prov_attrs.append(("Guid", sub(T_GUID, _guid_bytes(ev.provider_guid))))
    if ev.event_source_name is not None:
        prov_attrs.append(("EventSourceName", sub(T_STRING, s(ev.event_source_name))))
    system.children.append(_Elem("Provider", prov_attrs))
    shape.append(tuple(a for a, _ in prov_attrs))

    eid_attrs: list[tuple[str, _Sub | _Text]] = []
    if ev.qualifiers is not None:
        eid_attrs.append(("Qualifiers", sub(T_UINT16, struct.pack("<H", ev.qualifiers & 0xFFFF))))
    system.children.append(_Elem("EventID", eid_attrs, [sub(T_UINT16, struct.pack("<H", ev.event_id & 0xFFFF))]))
    shape.append(ev.qualifiers is not None)

    if ev.version is not None:
        system.children.append(_Elem("Version", [], [sub(T_UINT8, struct.pack("<B", ev.version & 0xFF))]))
    system.children.append(_Elem("Level", [], [sub(T_UINT8, struct.pack("<B", ev.level & 0xFF))]))
    system.children.append(_Elem("Task", [], [sub(T_UINT16, struct.pack("<H", ev.task & 0xFFFF))]))
    if ev.opcode is not None:
        system.children.append(_Elem("Opcode", [], [sub(T_UINT8, struct.pack("<B", ev.opcode & 0xFF))]))
    system.children.append(
        _Elem("Keywords", [], [sub(T_HEXINT64, struct.pack("<Q", ev.keywords & 0xFFFFFFFFFFFFFFFF))])
    )
    system.children.append(
        _Elem("TimeCreated", [("SystemTime", sub(T_FILETIME, struct.pack("<Q", to_filetime(ev.time_created))))])
    )
    system.children.append(_Elem("EventRecordID", [], [sub(T_UINT64, struct.pack("<Q", record_id))]))
    shape.append((ev.version is not None, ev.opcode is not None))

    corr: list[tuple[str, _Sub | _Text]] = []
    if ev.activity_id is not None:
        corr.append(("ActivityID", sub(T_GUID, _guid_bytes(ev.activity_id))))
    if ev.related_activity_id is not None:
        corr.append(("RelatedActivityID", sub(T_GUID, _guid_bytes(ev.related_activity_id))))
    system.children.append(_Elem("Correlation", corr))
    shape.append(tuple(a for a, _ in corr))

    if ev.process_id is not None or ev.thread_id is not None:
        exe: list[tuple[str, _Sub | _Text]] = []
        if ev.process_id is not None:
            exe.append(("ProcessID", sub(T_UINT32, struct.pack("<I", ev.process_id & 0xFFFFFFFF))))
        if ev.thread_id is not None:
            exe.append(("ThreadID", sub(T_UINT32, struct.pack("<I", ev.thread_id & 0xFFFFFFFF))))
        system.children.append(_Elem("Execution", exe))
        shape.append(tuple(a for a, _ in exe))
    else:
        shape.append(None)

    system.children.append(_Elem("Channel", [], [sub(T_STRING, s(ev.channel))]))
    system.children.append(_Elem("Computer", [], [sub(T_STRING, s(ev.computer))]))
    sec: list[tuple[str, _Sub | _Text]] = []
    if ev.user_sid:
        sec.append(("UserID", sub(T_SID, sid_to_bytes(ev.user_sid))))
    system.children.append(_Elem("Security", sec))
    shape.append(bool(sec))

    event_data = _Elem("EventData")
    items = _data_items(ev.data)
    for name, value in items:
        attrs: list[tuple[str, _Sub | _Text]] = [("Name", _Text(name))] if name is not None else []
        # Normal (not optional) substitution: an empty string must still
        # produce its <Data/> element, or unnamed parameters would shift.
        event_data.children.append(_Elem("Data", attrs, [sub(T_STRING, s(value), optional=False)]))
    if ev.binary is not None:
        event_data.children.append(_Elem("Binary", [], [sub(T_BINARY, bytes(ev.binary), optional=False)]))
    shape.append(tuple(name for name, _ in items))
    shape.append(ev.binary is not None)

    root = _Elem("Event", [("xmlns", _Text(EVENT_NS))], [system, event_data])
    return root, values, tuple(shape)


# --------------------------------------------------------------------------
# Chunk builder
# --------------------------------------------------------------------------


class _ChunkFull(Exception):
    pass


class _Chunk:
    """Accumulates records for one 64 KiB chunk."""

    def __init__(self) -> None:
        self.buf = bytearray(CHUNK_SIZE)
        self.pos = CHUNK_HEADER_SIZE
        self.strings: dict[str, int] = {}
        self.string_buckets = [0] * 64
        self.templates: dict[tuple, tuple[int, int]] = {}  # shape -> (definition offset, template id)
        self.template_buckets = [0] * 32
        self.records: list[tuple[int, int]] = []  # (record id, offset)

    # -- helpers that write into a per-record bytearray at known chunk offsets
    def _name(self, out: bytearray, base: int, name: str) -> None:
        off = self.strings.get(name)
        if off is not None:
            out += struct.pack("<I", off)
            return
        here = base + len(out) + 4
        h = name_hash(name)
        bucket = h % 64
        out += struct.pack("<I", here)
        out += struct.pack("<IHH", self.string_buckets[bucket], h, len(name.encode("utf-16-le")) // 2)
        out += name.encode("utf-16-le") + b"\x00\x00"
        self.strings[name] = here
        self.string_buckets[bucket] = here

    def _element(self, out: bytearray, base: int, el: _Elem) -> None:
        dep = 0xFFFF
        if len(el.children) == 1 and isinstance(el.children[0], _Sub) and el.children[0].optional:
            dep = el.children[0].index  # Windows: element depends on its optional value
        out.append(TOK_OPEN_START | (FLAG_MORE if el.attrs else 0))
        out += struct.pack("<H", dep)
        size_at = len(out)
        out += b"\x00\x00\x00\x00"
        self._name(out, base, el.name)
        if el.attrs:
            list_at = len(out)
            out += b"\x00\x00\x00\x00"
            for attr_name, value in el.attrs:
                out.append(TOK_ATTRIBUTE)
                self._name(out, base, attr_name)
                self._content(out, value)
            struct.pack_into("<I", out, list_at, len(out) - list_at - 4)
        if el.children:
            out.append(TOK_CLOSE_START)
            for child in el.children:
                if isinstance(child, _Elem):
                    self._element(out, base, child)
                else:
                    self._content(out, child)
            out.append(TOK_END_ELEMENT)
        else:
            out.append(TOK_CLOSE_EMPTY)
        struct.pack_into("<I", out, size_at, len(out) - size_at - 4)

    @staticmethod
    def _content(out: bytearray, value: _Sub | _Text) -> None:
        if isinstance(value, _Sub):
            tok = TOK_OPTIONAL_SUBST if value.optional else TOK_NORMAL_SUBST
            out += struct.pack("<BHB", tok, value.index, value.vtype)
        else:
            raw = value.text.encode("utf-16-le")
            out += struct.pack("<BBH", TOK_VALUE, T_STRING, len(raw) // 2) + raw

    def try_add(self, ev: EvtxEvent, record_id: int) -> bool:
        """Append one record; on overflow roll back all chunk state and return False."""
        snapshot = (
            dict(self.strings), list(self.string_buckets), dict(self.templates), list(self.template_buckets)
        )
        try:
            self._add(ev, record_id)
            return True
        except _ChunkFull:
            self.strings, self.string_buckets, self.templates, self.template_buckets = (
                snapshot[0], snapshot[1], snapshot[2], snapshot[3]
            )
            return False

    def _add(self, ev: EvtxEvent, record_id: int) -> None:
        root, values, shape = _event_values(ev, record_id)
        start = self.pos
        base = start + 24  # chunk offset of the BinXml
        out = bytearray()
        out += bytes((TOK_FRAGMENT_HEADER, 1, 1, 0))
        known = self.templates.get(shape)
        if known is None:
            guid = uuid.uuid5(_TEMPLATE_NS, repr(shape)).bytes_le
            template_id = struct.unpack_from("<I", guid)[0]
            def_off = base + len(out) + 10
            out += struct.pack("<BBII", TOK_TEMPLATE_INSTANCE, 1, template_id, def_off)
            bucket = template_id % 32
            out += struct.pack("<I", self.template_buckets[bucket]) + guid
            size_at = len(out)
            out += b"\x00\x00\x00\x00"
            body_start = len(out)
            out += bytes((TOK_FRAGMENT_HEADER, 1, 1, 0))
            self._element(out, base, root)
            out.append(TOK_EOF)
            struct.pack_into("<I", out, size_at, len(out) - body_start)
            self.templates[shape] = (def_off, template_id)
            self.template_buckets[bucket] = def_off
        else:
            def_off, template_id = known
            out += struct.pack("<BBII", TOK_TEMPLATE_INSTANCE, 1, template_id, def_off)
        out += struct.pack("<I", len(values))
        for vtype, data in values:
            if len(data) > 0xFFFF:
                raise ValueError(f"substitution value of {len(data)} bytes exceeds 65535 (record {record_id})")
            out += struct.pack("<HBB", len(data), vtype, 0)
        for _vtype, data in values:
            out += data
        out.append(TOK_EOF)  # libevtx needs the end-of-stream token here
        while (24 + len(out) + 4) % 8:
            out.append(0)
        size = 24 + len(out) + 4
        if size > CHUNK_SIZE - CHUNK_HEADER_SIZE - CHUNK_SLACK:
            raise ValueError(f"event too large for one chunk ({size} bytes, record {record_id})")
        if start + size > CHUNK_SIZE - CHUNK_SLACK:
            raise _ChunkFull
        written = to_filetime(ev.time_written if ev.time_written is not None else ev.time_created)
        rec = b"**\x00\x00" + struct.pack("<IQQ", size, record_id, written) + bytes(out) + struct.pack("<I", size)
        self.buf[start : start + size] = rec
        self.pos = start + size
        self.records.append((record_id, start))

    def finish(self) -> bytes:
        first_id, last_id = self.records[0][0], self.records[-1][0]
        last_off = self.records[-1][1]
        buf = self.buf
        buf[0:8] = b"ElfChnk\x00"
        struct.pack_into(
            "<QQQQIII", buf, 8, first_id, last_id, first_id, last_id, 128, last_off, self.pos,
        )
        struct.pack_into("<I", buf, 52, zlib.crc32(bytes(buf[CHUNK_HEADER_SIZE : self.pos])))
        struct.pack_into("<I", buf, 120, 0)
        struct.pack_into("<64I", buf, 128, *self.string_buckets)
        struct.pack_into("<32I", buf, 384, *self.template_buckets)
        struct.pack_into("<I", buf, 124, zlib.crc32(bytes(buf[0:120]) + bytes(buf[128:512])))
        return bytes(buf)


def evtx_bytes(
    events: Iterable[EvtxEvent | Mapping[str, Any]],
    *,
    first_record_id: int = 1,
    dirty: bool = False,
    full: bool = False,
    minor_version: int = 1,
) -> bytes:
    """Return the bytes of an .evtx file holding ``events`` in order.

    Record identifiers run from ``first_record_id`` unless an event sets
    ``record_id`` (later events continue from it). ``dirty``/``full`` set the
    file-header flags (a log copied while open is dirty; readers should then
    trust the chunks rather than the header's next record id).
    """
    chunks: list[bytes] = []
    chunk = _Chunk()
    next_id = first_record_id
    for item in events:
        ev = item if isinstance(item, EvtxEvent) else EvtxEvent.from_dict(item)
        rid = ev.record_id if ev.record_id is not None else next_id
        if not chunk.try_add(ev, rid):
            chunks.append(chunk.finish())
            chunk = _Chunk()
            if not chunk.try_add(ev, rid):  # pragma: no cover - guarded by size check
                raise ValueError("event does not fit an empty chunk")
        next_id = rid + 1
    if chunk.records:
        chunks.append(chunk.finish())
    if len(chunks) > 0xFFFF:
        raise ValueError("too many chunks for the 16-bit chunk count")

    header = bytearray(FILE_HEADER_SIZE)
    flags = (0x1 if dirty else 0) | (0x2 if full else 0)
    struct.pack_into(
        "<8sQQQIHHHH",
        header,
        0,
        b"ElfFile\x00",
        0,
        max(len(chunks) - 1, 0),
        next_id,
        128,
        minor_version,
        3,
        FILE_HEADER_SIZE,
        len(chunks),
    )
    struct.pack_into("<I", header, 120, flags)
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))
    return bytes(header) + b"".join(chunks)


def write_evtx(target: PathOrFile, events: Iterable[EvtxEvent | Mapping[str, Any]], **options: Any) -> None:
    """Write an .evtx file to a path or binary file object. See :func:`evtx_bytes`."""
    emit(target, evtx_bytes(events, **options))
