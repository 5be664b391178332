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
  share one JSON -> table pipeline (:mod:`.records`), so
  equality of rows reduces to equality of these documents.
"""
from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from .layout import CHUNK_HEADER_SIZE, CHUNK_SIZE, FILE_HEADER_SIZE, RECORD_MAGIC, Layout, \
    read_layout

_EPOCH_1601 = datetime(1601, 1, 1)


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
            if isinstance(sub, n.BXmlTypeNode) and not _is_template(sub._buf, sub.offset()):
                # Nested BinXml written as plain elements (CAPI2 UserData).
                start = sub.offset()
                acc.extend(plain_fragment(sub._buf, sub._chunk.offset(), start,
                                          start + (sub._length or 0)))
            elif isinstance(sub, n.BXmlTypeNode):
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


#: BinXml token of a template instance; a record whose fragment starts with
#: another token is a plain element tree (forwarded events).
_TEMPLATE_INSTANCE = 0x0C
_T_EOF, _T_OPEN, _T_CLOSE_START, _T_CLOSE_EMPTY, _T_CLOSE, _T_VALUE, _T_ATTR = range(7)
_FRAGMENT_HEADER = 0x0F


def _is_template(buf: Any, pos: int) -> bool:
    """Whether the BinXml at ``pos`` (after an optional fragment header) is
    a template instance, which python-evtx reads; else it is plain elements."""
    if buf[pos] == _FRAGMENT_HEADER:
        pos += 4
    return buf[pos] == _TEMPLATE_INSTANCE


def plain_fragment(buf: Any, chunk: int, pos: int, end: int) -> list[Any]:
    """The element tree of a record written without a template, as
    (``"elem"``, name, attrs, children) items for :meth:`_Renderer._to_json`.

    Windows Event Collector writes forwarded events this way, and CAPI2
    writes its UserData as such a nested BinXml value (type 0x21): elements
    and values inline (MS-EVEN6 BinXml), and, outside a template definition,
    an open-start-element token carries no dependency identifier.
    python-evtx always reads one, so it mis-parses these records and loses
    them; the ``evtx`` crate reads them. Values here are text (type 0x01) or null
    (type 0x00); any other token or type raises, and the record is reported
    as unreadable like any other.
    """
    stack: list[list[Any]] = [[]]
    elems: list[tuple[str, list[Any]]] = []  # open elements: (name, attrs)
    while pos < end:
        if buf[pos] == _FRAGMENT_HEADER:
            pos += 4
            continue
        tok = buf[pos] & 0x0F
        flags = buf[pos] & 0xF0
        if tok == _T_EOF:
            break
        if tok == _T_OPEN:
            name_off = struct.unpack_from("<I", buf, pos + 5)[0]
            name, pos = _name(buf, chunk, name_off, pos + 9)
            if flags & 0x40:
                pos += 4  # attribute list size
            attrs: list[tuple[str, Any]] = []
            while buf[pos] & 0x0F == _T_ATTR:
                aname, pos = _name(buf, chunk, struct.unpack_from("<I", buf, pos + 1)[0], pos + 5)
                parts: list[Any] = []
                while buf[pos] & 0x0F in _TEXT_TOKENS:
                    value, pos = _plain_text(buf, chunk, pos)
                    parts.append(value)
                attrs.append((aname, _join(parts)))
            elems.append((name, attrs))
            stack.append([])
            if buf[pos] & 0x0F == _T_CLOSE_EMPTY:
                pos += 1
                _close(stack, elems)
            elif buf[pos] & 0x0F == _T_CLOSE_START:
                pos += 1
            else:
                raise ValueError(f"unexpected token 0x{buf[pos]:02x} after element start")
        elif tok == _T_CLOSE:
            pos += 1
            _close(stack, elems)
        elif tok in _TEXT_TOKENS:
            value, pos = _plain_text(buf, chunk, pos)
            stack[-1].append(("text", value))
        else:
            raise ValueError(f"unsupported token 0x{buf[pos]:02x} in a template-less record")
    if elems:
        raise ValueError("record ends inside an element")
    return stack[0]


def _close(stack: list[list[Any]], elems: list[tuple[str, list[Any]]]) -> None:
    children = stack.pop()
    name, attrs = elems.pop()
    stack[-1].append(("elem", name, attrs, children))


def _name(buf: Any, chunk: int, name_off: int, pos: int) -> tuple[str, int]:
    """A name string at chunk offset ``name_off`` (next offset, hash, count,
    UTF-16 text, NUL); when it is stored right here (``pos``), skip it."""
    at = chunk + name_off
    count = struct.unpack_from("<H", buf, at + 6)[0]
    text = bytes(buf[at + 8:at + 8 + 2 * count]).decode("utf-16-le", errors="ignore")
    if at == pos:
        pos += 8 + 2 * count + 2
    return text, pos


#: Character and entity reference tokens; the crate writes the character
#: they stand for (``&quot;`` -> ``"``).
_T_CHARREF, _T_ENTITY = 0x08, 0x09
_TEXT_TOKENS = (_T_VALUE, _T_CHARREF, _T_ENTITY)
_ENTITIES = {"quot": '"', "amp": "&", "lt": "<", "gt": ">", "apos": "'"}


def _plain_text(buf: Any, chunk: int, pos: int) -> tuple[Any, int]:
    """A value, character reference or entity reference token as text."""
    tok = buf[pos] & 0x0F
    if tok == _T_CHARREF:
        return chr(struct.unpack_from("<H", buf, pos + 1)[0]), pos + 3
    if tok == _T_ENTITY:
        name, pos = _name(buf, chunk, struct.unpack_from("<I", buf, pos + 1)[0], pos + 5)
        return _ENTITIES.get(name, f"&{name};"), pos
    vtype = buf[pos + 1]
    if vtype == 0x00:
        return None, pos + 2
    if vtype != 0x01:
        raise ValueError(f"unsupported value type 0x{vtype:02x} in a template-less record")
    count = struct.unpack_from("<H", buf, pos + 2)[0]
    text = bytes(buf[pos + 4:pos + 4 + 2 * count]).decode("utf-16-le", errors="ignore")
    return text, pos + 4 + 2 * count


def iter_records(path: Path, warn: Warn, layout: Layout | None = None,
                 note: Callable[[str], None] | None = None) -> Iterator[PyRecord]:
    """Yield every readable record of the file as evtx-crate-shaped JSON.

    ``warn(message, locator)`` is called for each bad chunk or record (with
    the file offset); the walk goes on with the next record or chunk. Each
    chunk is read on its own (64 KiB), never the whole file; a chunk cut by
    the end of the file is read from its repaired copy in ``layout`` (the
    records wholly before the cut). Blank slots (all-zero headers) are
    skipped silently, as the ``evtx`` crate does; the source reports the
    ones the header counts.
    """
    import Evtx.Evtx as evtx_mod
    import Evtx.Nodes as nodes

    renderer = _Renderer(nodes)
    layout = layout or read_layout(path)
    if layout.size < FILE_HEADER_SIZE:
        warn(f"file is {layout.size} bytes, shorter than the 4 KiB evtx header", "offset=0x0")
        return
    if not layout.header.valid:
        warn("file header magic is not ElfFile", "offset=0x0")
    borrowed: list[int] = []
    with open(path, "rb") as fh:
        fd = fh.fileno()
        header = os.pread(fd, FILE_HEADER_SIZE, 0)
        for idx in range(layout.slots):
            off = FILE_HEADER_SIZE + idx * CHUNK_SIZE
            cbuf = layout.chunk_bytes(idx)
            if cbuf is None:
                rng = layout.chunks[idx]
                if not rng.valid:
                    if not rng.blank:
                        magic = os.pread(fd, 8, off)
                        warn(f"chunk {idx}: bad chunk magic {magic!r}, chunk skipped",
                             f"chunk={idx} offset=0x{off:x}")
                    continue
                cbuf = os.pread(fd, CHUNK_SIZE, off)
            yield from _chunk_records(cbuf, 0, off, idx, evtx_mod, renderer, warn, header, borrowed)
    if borrowed and note is not None:
        shown = ", ".join(map(str, borrowed[:5])) + (", ..." if len(borrowed) > 5 else "")
        note(f"python-evtx: {len(borrowed)} record(s) it cannot decode read from the evtx "
             f"crate's rendering (records {shown})")


def _chunk_records(cbuf: Any, base: int, off: int, idx: int, evtx_mod: Any,
                   renderer: _Renderer, warn: Warn, header: bytes,
                   borrowed: list[int]) -> Iterator[PyRecord]:
    """The records of one chunk at ``cbuf[base:]`` (file offset ``off``),
    bounded by the chunk's own free-space offset and its 64 KiB.

    A record python-evtx cannot decode is taken from the ``evtx`` crate's
    rendering of this chunk when the crate reads it (its id goes to
    ``borrowed``), so both backends give the same rows; a record neither
    reads is a warning."""
    try:
        chunk = evtx_mod.ChunkHeader(cbuf, base)
        free = chunk.next_record_offset()
    except Exception as exc:  # noqa: BLE001 - damaged chunk header
        warn(f"chunk {idx}: unreadable header ({exc})", f"chunk={idx} offset=0x{off:x}")
        return
    end = base + min(max(free, CHUNK_HEADER_SIZE), CHUNK_SIZE)
    pos = base + CHUNK_HEADER_SIZE
    crate: dict[int, str] | None = None
    while pos + 0x18 <= end:
        at = off + pos - base  # file offset of the record
        magic_rec, rsize = struct.unpack_from("<II", cbuf, pos)
        if magic_rec != RECORD_MAGIC or rsize < 0x1C or pos + rsize > end:
            if magic_rec != 0 or rsize != 0:
                warn(f"chunk {idx}: bad record header (magic 0x{magic_rec:x}, size {rsize}); "
                     "rest of chunk skipped", f"chunk={idx} offset=0x{at:x}")
            break
        rid = struct.unpack_from("<Q", cbuf, pos + 8)[0]
        try:
            text = _decode(cbuf, base, pos, rsize, chunk, evtx_mod, renderer)
        except Exception as exc:  # noqa: BLE001 - one bad record never ends the file
            if crate is None:
                crate = _crate_records(header, bytes(cbuf[base:base + CHUNK_SIZE]))
            if rid in crate:
                borrowed.append(rid)
                yield PyRecord(rid, at, idx, crate[rid])
            else:
                warn(f"record {rid}: {type(exc).__name__}: {exc}",
                     f"chunk={idx} offset=0x{at:x} record={rid}")
        else:
            yield PyRecord(rid, at, idx, text)
        pos += rsize


def _decode(cbuf: Any, base: int, pos: int, rsize: int, chunk: Any, evtx_mod: Any,
            renderer: _Renderer) -> str:
    """One record as the crate's JSON text, or an exception."""
    if _is_template(cbuf, pos + 0x18):
        tree = renderer.build(evtx_mod.Record(cbuf, pos, chunk).root())
    else:
        tree = renderer._to_json(plain_fragment(cbuf, base, pos + 0x1C, pos + rsize - 4))
    doc = {"Event": tree.get("Event", {})}
    system = doc["Event"].get("System") if isinstance(doc["Event"], dict) else None
    rid = system.get("EventRecordID") if isinstance(system, dict) else None
    if not isinstance(rid, int) and not (isinstance(rid, str) and rid.isascii() and rid.isdigit()):
        # Template and values out of step: the bytes decode, but as noise.
        raise ValueError("decoded EventRecordID is not a number (record damaged)")
    # Compact separators, as the crate writes (the pipeline's regexes expect them).
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _crate_records(header: bytes, chunk: bytes) -> dict[int, str]:
    """Record id -> JSON text of the records the ``evtx`` crate reads from
    one chunk (given to it as a one-chunk file); {} when it reads none or
    is not installed."""
    try:
        from evtx import PyEvtxParser
    except ImportError:
        return {}
    out: dict[int, str] = {}
    it = PyEvtxParser(io.BytesIO(header + chunk), number_of_threads=1).records_json()
    for _ in range(CHUNK_SIZE // 24):  # each step consumes a record or an error
        try:
            rec = next(it)
        except StopIteration:
            break
        except RuntimeError:
            continue
        out[int(rec["event_record_id"])] = rec["data"]
    return out
