"""The python-evtx backend for .evtx files (``--evtx-backend python``).

It exists as an independent second reader (the design asks every binary
format to be checked by two readers) and as a fallback where the Rust wheel
is unavailable. Two python-evtx behaviours are worked around here:

* ``Evtx.chunks()`` trusts the chunk count in the file header. Windows only
  rewrites that header when the log is closed cleanly, so copies of live logs
  carry stale counts and python-evtx stops early without an error (corpus
  ``system.evtx``: 326 of 1,881 records). We walk every 64 KiB slot up to the
  real file size and read each one that carries the ``ElfChnk\\0`` magic, and
  report when the header disagrees. Loops are bounded by the file size and
  the chunk's own free-space offset, never by counts read from the file.
* python-evtx renders values as XML text (GUIDs in braces and lower case,
  Binary as base64, FILETIME with a space, booleans as ``True``). To give
  table rows identical to the Rust backend we do not use its renderer: we walk
  the BinXML node tree ourselves and emit the same JSON document shape and
  value types the ``evtx`` crate's ``records_json`` emits. Both backends then
  share one JSON -> table pipeline (:mod:`analyzer.sources._evtx_common`), so
  equality of rows reduces to equality of these documents.
"""
from __future__ import annotations

import json
import mmap
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
FILE_HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
CHUNK_HEADER_SIZE = 0x200
RECORD_MAGIC = 0x00002A2A

_EPOCH_1601 = datetime(1601, 1, 1)


@dataclass
class FileHeader:
    """The fields of the 4 KiB file header we use."""

    first_chunk: int
    last_chunk: int
    next_record_id: int
    chunk_count: int
    flags: int
    valid: bool


def read_file_header(buf: bytes) -> FileHeader:
    if len(buf) < 0x80 or buf[:8] != FILE_MAGIC:
        return FileHeader(0, 0, 0, 0, 0, False)
    first, last, nxt = struct.unpack_from("<QQQ", buf, 8)
    chunk_count = struct.unpack_from("<H", buf, 0x2A)[0]
    flags = struct.unpack_from("<I", buf, 0x78)[0]
    return FileHeader(first, last, nxt, chunk_count, flags, True)


def chunk_slots(size: int) -> int:
    """How many 64 KiB chunk slots fit in a file of ``size`` bytes."""
    return max(0, (size - FILE_HEADER_SIZE) // CHUNK_SIZE)


def chunk_ranges(buf: bytes | mmap.mmap) -> list[tuple[int, int, int, bool]]:
    """(chunk index, first record id, last record id, magic ok) for every
    64 KiB slot of the file; the record-id range is (0, -1) when the magic
    is wrong."""
    out = []
    for i in range(chunk_slots(len(buf))):
        off = FILE_HEADER_SIZE + i * CHUNK_SIZE
        if buf[off:off + 8] == CHUNK_MAGIC:
            first, last = struct.unpack_from("<QQ", buf, off + 8)
            out.append((i, first, last, True))
        else:
            out.append((i, 0, -1, False))
    return out


# ---------------------------------------------------------------------------
# BinXML -> the evtx crate's JSON document shape


def _filetime_text(value: int) -> str | None:
    """FILETIME (100 ns since 1601) as the Rust crate writes it: ISO 8601,
    microseconds (truncated), ``Z``."""
    try:
        dt = _EPOCH_1601 + timedelta(microseconds=value // 10)
    except OverflowError:
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _guid_text(raw: bytes) -> str:
    """GUID bytes (mixed-endian) as upper-case, brace-less text, the Rust form."""
    d1, d2, d3 = struct.unpack_from("<IHH", raw, 0)
    rest = raw[8:16]
    return (f"{d1:08X}-{d2:04X}-{d3:04X}-{rest[0]:02X}{rest[1]:02X}-"
            + "".join(f"{b:02X}" for b in rest[2:]))


class _Renderer:
    """Builds the JSON value of one record the way the ``evtx`` crate does.

    Rules (checked against ``PyEvtxParser.records_json`` on the corpus):
    an element without attributes becomes ``name: value`` (null when empty);
    with attributes ``{"#attributes": {...}, "#text": value}``; attributes
    whose value is null are dropped; a repeated element name gets ``_1``,
    ``_2``, ... suffixes; ``<Data Name="x">`` becomes ``x: value``; unnamed
    ``<Data>`` values collect in ``"Data": {"#text": value-or-list}``.
    """

    def __init__(self, nodes: Any) -> None:
        self.n = nodes

    # -- values ------------------------------------------------------------
    def value(self, v: Any) -> Any:
        n = self.n
        if v is None or isinstance(v, n.NullTypeNode):
            return None
        if isinstance(v, n.WstringTypeNode):
            return _wstring(v)
        if isinstance(v, n.StringTypeNode):
            return v.string()
        if isinstance(v, (n.SignedByteTypeNode, n.UnsignedByteTypeNode)):
            return v.byte()
        if isinstance(v, (n.SignedWordTypeNode, n.UnsignedWordTypeNode)):
            return v.word()
        if isinstance(v, (n.SignedDwordTypeNode, n.UnsignedDwordTypeNode)):
            return v.dword()
        if isinstance(v, (n.SignedQwordTypeNode, n.UnsignedQwordTypeNode)):
            return v.qword()
        if isinstance(v, n.FloatTypeNode):
            return v.float()
        if isinstance(v, n.DoubleTypeNode):
            return v.double()
        if isinstance(v, n.BooleanTypeNode):
            # The crate keeps non-0/1 "booleans" as the raw integer
            # (corpus sample-with-irregular-bool-values.evtx).
            raw = v.int32()
            return bool(raw) if raw in (0, 1) else raw
        if isinstance(v, n.BinaryTypeNode):
            return v.binary().hex().upper()
        if isinstance(v, n.GuidTypeNode):
            return _guid_text(bytes(v._buf[v._offset:v._offset + 16]))
        if isinstance(v, n.SizeTypeNode):
            return f"0x{v.num():x}"
        if isinstance(v, n.FiletimeTypeNode):
            return _filetime_text(struct.unpack_from("<Q", v._buf, v._offset)[0])
        if isinstance(v, n.SystemtimeTypeNode):
            return v.systemtime().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if isinstance(v, n.SIDTypeNode):
            return v.string()
        if isinstance(v, (n.Hex32TypeNode, n.Hex64TypeNode)):
            return f"0x{int.from_bytes(bytes(v.hex()), 'little'):x}"
        if isinstance(v, n.WstringArrayTypeNode):
            raw = bytes(v.binary())
            text = raw.decode("utf-16-le", errors="replace")
            parts = text.split("\x00")
            if parts and parts[-1] == "":
                parts.pop()
            return parts
        return v.string()

    # -- tree --------------------------------------------------------------
    def build(self, root: Any) -> dict[str, Any]:
        """Element tree of a root node: list of (name, attrs, children)."""
        subs = root.substitutions()
        out: list[Any] = []
        for child in root.template().children():
            self._rec(child, subs, out)
        return self._to_json(out)

    def _rec(self, node: Any, subs: list[Any], acc: list[Any]) -> None:
        n = self.n
        if isinstance(node, n.OpenStartElementNode):
            attrs: list[tuple[str, Any]] = []
            children: list[Any] = []
            for child in node.children():
                if isinstance(child, n.AttributeNode):
                    vals: list[Any] = []
                    self._rec(child.attribute_value(), subs, vals)
                    attrs.append((child.attribute_name().string(),
                                  _join([v[1] for v in vals if v[0] == "text"])))
            for child in node.children():
                if not isinstance(child, n.AttributeNode):
                    self._rec(child, subs, children)
            acc.append(("elem", node.tag_name(), attrs, children))
        elif isinstance(node, n.ValueNode):
            acc.append(("text", node.children()[0].string()))
        elif isinstance(node, (n.NormalSubstitutionNode, n.ConditionalSubstitutionNode)):
            sub = subs[node.index()] if node.index() < len(subs) else None
            if isinstance(sub, n.BXmlTypeNode):
                inner = sub.root()
                isubs = inner.substitutions()
                for c in inner.template().children():
                    self._rec(c, isubs, acc)
            elif isinstance(node, n.ConditionalSubstitutionNode) and (
                    sub is None or isinstance(sub, n.NullTypeNode)):
                acc.append(("text", None))
            else:
                acc.append(("text", self.value(sub)))
        elif isinstance(node, n.CDataSectionNode):
            acc.append(("text", node.cdata()))
        elif isinstance(node, n.EntityReferenceNode):
            acc.append(("text", node.entity_reference()))
        elif isinstance(node, n.TemplateInstanceNode):
            pass
        # Close/stream/end nodes carry nothing.

    def _to_json(self, items: list[Any]) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for item in items:
            if item[0] == "elem":
                self._insert(obj, item)
        return obj

    def _element_value(self, attrs: list[tuple[str, Any]], children: list[Any]) -> Any:
        # The crate treats empty text as no text (null), except in unnamed <Data>.
        texts = [c[1] for c in children if c[0] == "text" and c[1] != ""]
        elems = [c for c in children if c[0] == "elem"]
        attr_obj = {k: v for k, v in attrs if v is not None and v != ""}
        if elems:
            obj: dict[str, Any] = {}
            if attr_obj:
                obj["#attributes"] = attr_obj
            for e in elems:
                self._insert(obj, e)
            text = _join(texts)
            if text is not None:
                obj["#text"] = text
            return obj
        text = _join(texts)
        if attr_obj:
            obj = {"#attributes": attr_obj}
            if text is not None:
                obj["#text"] = text
            return obj
        return text

    def _insert(self, obj: dict[str, Any], elem: tuple) -> None:
        _, name, attrs, children = elem
        if name == "Data":
            data_name = next((v for k, v in attrs if k == "Name"), None)
            if data_name is not None:
                # A repeated Name overwrites (JSON object semantics in the crate).
                # Named <Data> keeps an empty string (unlike other elements).
                obj[str(data_name)] = _join([c[1] for c in children if c[0] == "text"])
                return
            text = _join([c[1] for c in children if c[0] == "text"])
            values = text if isinstance(text, list) else ["" if text is None else text]
            holder = obj.get("Data")
            if isinstance(holder, dict) and "#text" in holder:
                prev = holder["#text"]
                holder["#text"] = (prev if isinstance(prev, list) else [prev]) + values
            else:
                _put(obj, "Data", {"#text": values[0] if len(values) == 1 else values})
            return
        value = self._element_value(attrs, children)
        if isinstance(value, list) and not attrs:
            # An array substitution expands into repeated elements (an empty
            # array leaves one empty element).
            for item in value or [None]:
                _put(obj, name, item)
            return
        _put(obj, name, value)


def _wstring(v: Any) -> str:
    """UTF-16 text of a Wstring value, decoded leniently: python-evtx raises
    on unpaired surrogates (corpus python-evtx-issue_43.evtx); the crate
    drops them."""
    buf, off = v._buf, v._offset
    if v._length is None:
        count = struct.unpack_from("<H", buf, off)[0]
        raw = bytes(buf[off + 2:off + 2 + 2 * count])
    else:
        raw = bytes(buf[off:off + v._length])
    return raw.decode("utf-16-le", errors="ignore").rstrip("\x00")


def _join(vals: list[Any]) -> Any:
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    if len(vals) == 1:
        return vals[0]
    if all(isinstance(v, str) for v in vals):
        return "".join(vals)
    return "".join(str(v) for v in vals)


def _put(obj: dict[str, Any], name: str, value: Any) -> None:
    if name not in obj:
        obj[name] = value
        return
    i = 1
    while f"{name}_{i}" in obj:
        i += 1
    obj[f"{name}_{i}"] = value


# ---------------------------------------------------------------------------
# The record walk


@dataclass
class PyRecord:
    record_id: int
    offset: int
    chunk: int
    json: str


Warn = Callable[[str, str], None]


def iter_records(path: Path, warn: Warn, note: Callable[[str], None]) -> Iterator[PyRecord]:
    """Yield every readable record of the file as evtx-crate-shaped JSON.

    ``warn(message, locator)`` is called for each bad chunk or record (with
    the file offset); the walk goes on with the next record or chunk.
    """
    import Evtx.Evtx as evtx_mod
    import Evtx.Nodes as nodes

    renderer = _Renderer(nodes)
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size < FILE_HEADER_SIZE:
            warn(f"file is {size} bytes, shorter than the 4 KiB evtx header", "offset=0x0")
            return
        buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield from _walk(buf, size, evtx_mod, renderer, warn, note)
        finally:
            buf.close()


def _walk(buf: Any, size: int, evtx_mod: Any, renderer: _Renderer, warn: Warn,
          note: Callable[[str], None]) -> Iterator[PyRecord]:
    header = read_file_header(buf[:FILE_HEADER_SIZE])
    if not header.valid:
        warn("file header magic is not ElfFile", "offset=0x0")
    slots = chunk_slots(size)
    found = 0
    for idx in range(slots):
        off = FILE_HEADER_SIZE + idx * CHUNK_SIZE
        magic = bytes(buf[off:off + 8])
        if magic != CHUNK_MAGIC:
            if idx < header.chunk_count or any(buf[off:off + CHUNK_SIZE]):
                warn(f"chunk {idx}: bad chunk magic {magic!r}, chunk skipped",
                     f"chunk={idx} offset=0x{off:x}")
            continue
        found += 1
        try:
            chunk = evtx_mod.ChunkHeader(buf, off)
            free = chunk.next_record_offset()
        except Exception as exc:  # noqa: BLE001 - damaged chunk header
            warn(f"chunk {idx}: unreadable header ({exc})", f"chunk={idx} offset=0x{off:x}")
            continue
        end = off + min(max(free, CHUNK_HEADER_SIZE), CHUNK_SIZE)
        pos = off + CHUNK_HEADER_SIZE
        while pos + 0x18 <= end:
            magic_rec, rsize = struct.unpack_from("<II", buf, pos)
            if magic_rec != RECORD_MAGIC or rsize < 0x1C or pos + rsize > end:
                if magic_rec != 0 or rsize != 0:
                    warn(f"chunk {idx}: bad record header (magic 0x{magic_rec:x}, size {rsize}); "
                         "rest of chunk skipped", f"chunk={idx} offset=0x{pos:x}")
                break
            rid = struct.unpack_from("<Q", buf, pos + 8)[0]
            try:
                rec = evtx_mod.Record(buf, pos, chunk)
                doc = {"Event": renderer.build(rec.root()).get("Event", {})}
                # Compact separators, as the crate writes (the pipeline's regexes
                # expect them).
                text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
            except Exception as exc:  # noqa: BLE001 - one bad record never ends the file
                warn(f"record {rid}: {type(exc).__name__}: {exc}",
                     f"chunk={idx} offset=0x{pos:x} record={rid}")
            else:
                yield PyRecord(rid, pos, idx, text)
            pos += rsize
    if header.valid and found != header.chunk_count:
        note(f"python-evtx: header says {header.chunk_count} chunks, {found} found")
