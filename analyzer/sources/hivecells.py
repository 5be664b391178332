"""Cell-level reading of a registry hive (``regf``) held in a buffer (an
``mmap`` of the file, or bytes): key nodes (``nk``), subkey lists
(``lf``/``lh``/``li`` and ``ri`` index roots), value lists and value cells
(``vk``, ``db`` big data), decoded straight into row columns.

Why a reader of our own: regipy parses each key node through ``construct``
(~25 µs a key) and its value iterator reads ``data_size`` bytes even for data
stored inline in the value cell (a size with the top bit set means "to the
end of the file"); libregf through its Python binding creates an object per
key and per value. A full load of a SYSTEM hive is 100k rows, so the per-row
cost is what counts (benchmarks/registry_full_load.py).

The reader keeps regipy's semantics where the hive source used regipy
before, so the rows do not change (tests/test_hive_rows_identity.py):

* the root key is the first allocated cell of the first hive bin (regipy's
  rule; a root cell that is not the hive's real root is reported by
  :func:`analyzer.sources.hive.check_structure`);
* key names are ASCII when compressed (``KEY_COMP_NAME``), else UTF-16LE,
  both with replacement characters; value names Latin-1 when compressed;
* whenever a cell does not have the shape the fast path needs (too short, a
  first hive-bin cell that is not allocated, a base block name that is not
  valid UTF-16), regipy itself parses it, so the same errors are reported.

A damaged list or cell costs that subkey or value (an exception in its
place, turned into a warning by the walker), not the key or the hive.
"""
from __future__ import annotations

import codecs
import io
import json
import mmap
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ..registry import decode_value

BASE = 4096  # hive bins start after the base block
BIG_DATA_SEGMENT = 16344
KEY_COMP_NAME = 0x20
VALUE_COMP_NAME = 0x1

#: CM_KEY_NODE from its flags (the 2 bytes after ``nk``): flags, last
#: written, access bits, parent, subkey count, volatile count, subkey list,
#: volatile list, value count, value list, 7 fields we skip, name size.
_NK = struct.Struct("<HQ4xIIIIIII28xH")
_NK_FIXED = 74  # bytes before the key name (the class-name size follows the name size)
_VK = struct.Struct("<HIIIH")  # name size, data size, data offset, type, flags
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_LIST_WIDTH = {b"lf": 8, b"lh": 8, b"li": 4, b"ri": 4}
_STRING_TYPES = (1, 2, 6)  # REG_SZ, REG_EXPAND_SZ, REG_LINK
#: bytes.decode("utf-16-le", errors) without the codec lookup of each call
#: (final=True: a dangling byte or surrogate at the end is an error too).
_u16 = codecs.utf_16_le_decode


class Failed:
    """A subkey that could not be read (its index in the list and the error)."""

    __slots__ = ("index", "error")

    def __init__(self, index: int, error: BaseException) -> None:
        self.index, self.error = index, error


class Hive:
    """A hive buffer and its format version (big data needs minor >= 4)."""

    __slots__ = ("buf", "minor", "_stream")

    def __init__(self, buf: Any, minor: int) -> None:
        self.buf, self.minor = buf, minor
        self._stream: Any = None

    def stream(self) -> Any:
        """A seekable stream over the buffer, for regipy's parsers (slow
        path only; an mmap is its own stream, bytes are not copied)."""
        if self._stream is None:
            self._stream = self.buf if isinstance(self.buf, mmap.mmap) else io.BytesIO(self.buf)
        return self._stream

    def node(self, pos: int, ident: int) -> CellNode:
        """The key whose CM_KEY_NODE starts at ``pos`` (after ``nk``)."""
        buf = self.buf
        if pos + _NK_FIXED <= len(buf):
            flags, ts, _parent, nsub, _vol, sk_list, _vlist, nval, v_list, nlen = _NK.unpack_from(buf, pos)
            end = pos + _NK_FIXED + nlen
            if end <= len(buf):
                raw = buf[pos + _NK_FIXED:end]
                name = raw.decode("ascii", "replace") if flags & KEY_COMP_NAME else _u16(raw, "replace", True)[0]
                return CellNode(self, name, ts, nsub, nval, sk_list, v_list, ident)
        return self._regipy_node(pos, ident)

    def _regipy_node(self, pos: int, ident: int) -> CellNode:
        """regipy's parse of a key cell the fast path declined (its errors)."""
        from regipy.registry import Cell, NKRecord
        nk = NKRecord(Cell(cell_type="nk", offset=pos, size=0), self.stream())
        return CellNode.from_regipy(self, nk, ident)

    def root(self) -> CellNode:
        """The root key, found as regipy finds it (see the module docstring)."""
        buf = self.buf
        try:
            bytes(buf[48:112]).decode("utf-16-le")  # regipy decodes the base block name strictly
            ok = True
        except UnicodeDecodeError:
            ok = False
        ok = ok and len(buf) >= BASE + 40 and buf[:4] == b"regf" and buf[BASE:BASE + 4] == b"hbin"
        if ok and _U32.unpack_from(buf, BASE + 8)[0] > 32 and struct.unpack_from("<i", buf, BASE + 32)[0] < 0:
            try:
                buf[BASE + 36:BASE + 38].decode()
                return self.node(BASE + 38, -1)
            except UnicodeDecodeError:
                pass
        from regipy.registry import HBin, NKRecord
        from regipy.structs import REGF_HEADER
        s = self.stream()
        s.seek(0)
        REGF_HEADER.parse_stream(s)
        s.seek(BASE)
        hbin = HBin(s)
        return CellNode.from_regipy(self, NKRecord(next(hbin.iter_cells(s)), s), -1)


class CellNode:
    """One key: its header fields, read from the hive buffer."""

    __slots__ = ("hive", "name", "ts", "nsubkeys", "nvalues", "sk_list", "v_list", "ident")

    def __init__(self, hive: Hive, name: str, ts: int, nsub: int, nval: int, sk_list: int, v_list: int,
                 ident: int) -> None:
        self.hive, self.name, self.ts = hive, name, ts
        self.nsubkeys, self.nvalues, self.sk_list, self.v_list = nsub, nval, sk_list, v_list
        self.ident = ident  # the key cell's offset: a key listed twice is a cycle

    @classmethod
    def from_regipy(cls, hive: Hive, nk: Any, ident: int) -> CellNode:
        h = nk.header
        return cls(hive, nk.name, h.last_modified, h.subkey_count, h.values_count,
                   h.subkeys_list_offset, h.values_list_offset, ident)

    # -- subkeys ---------------------------------------------------------

    def subkeys(self) -> list[CellNode | Failed]:
        if not self.nsubkeys:
            return []
        hive = self.hive
        buf = hive.buf
        size = len(buf)
        unpack = _NK.unpack_from
        out: list[CellNode | Failed] = []
        for i, off in enumerate(subkey_offsets(buf, self.sk_list)):
            if isinstance(off, BaseException):
                out.append(Failed(i, off))
                continue
            pos = BASE + off + 6  # the key node after its cell size and "nk"
            if buf[pos - 2:pos] != b"nk":
                out.append(Failed(i, ValueError(f"no key cell (nk) at offset 0x{off:x}")))
                continue
            if pos + _NK_FIXED <= size:  # Hive.node, inlined: one call per key less
                flags, ts, _p, nsub, _v, sk_list, _vl, nval, v_list, nlen = unpack(buf, pos)
                if pos + _NK_FIXED + nlen <= size:
                    raw = buf[pos + _NK_FIXED:pos + _NK_FIXED + nlen]
                    name = raw.decode("ascii", "replace") if flags & KEY_COMP_NAME else _u16(raw, "replace", True)[0]
                    out.append(CellNode(hive, name, ts, nsub, nval, sk_list, v_list, off))
                    continue
            try:
                out.append(hive._regipy_node(pos, off))
            except Exception as exc:  # noqa: BLE001 - regipy's parse of a damaged cell
                out.append(Failed(i, exc))
        return out

    def subkey(self, name: str) -> CellNode | None:
        low = name.lower()
        for sk in self.subkeys():
            if not isinstance(sk, Failed) and sk.name.lower() == low:
                return sk
        return None

    # -- values ----------------------------------------------------------

    def _value_offsets(self) -> tuple[int, ...] | ValueError:
        n = self.nvalues
        lst = BASE + self.v_list + 4
        if n and lst + 4 * n > len(self.hive.buf):
            return ValueError(f"value list at offset 0x{self.v_list:x} outside the hive")
        return struct.unpack_from(f"<{n}I", self.hive.buf, lst) if n else ()

    def values(self) -> list[tuple[str, int, bytes] | BaseException]:
        """(name, type code, data bytes) of each value, or the error in its place."""
        offs = self._value_offsets()
        if isinstance(offs, BaseException):
            return [offs]
        out: list[tuple[str, int, bytes] | BaseException] = []
        buf, minor = self.hive.buf, self.hive.minor
        for vrel in offs:
            try:
                name, dsize, doff, dtype = _vk(buf, vrel)
                out.append((name, dtype, value_data(buf, dsize, doff, minor)))
            except Exception as exc:  # noqa: BLE001 - one bad value, not the key
                out.append(exc)
        return out


def _vk(buf: Any, vrel: int) -> tuple[str, int, int, int]:
    """(name, data size, data offset, type) of the value cell at ``vrel``."""
    o = BASE + vrel + 4
    if buf[o:o + 2] != b"vk":
        raise ValueError(f"no value cell (vk) at offset 0x{vrel:x}")
    nlen, dsize, doff, dtype, flags = _VK.unpack_from(buf, o + 2)
    raw = buf[o + 20:o + 20 + nlen]
    return (raw.decode("latin-1") if flags & VALUE_COMP_NAME else _u16(raw, "replace", True)[0],
            dsize, doff, dtype)


def utf16_text(raw: bytes) -> str:
    """A string value as :func:`analyzer.registry.decode_value` gives it
    (UTF-16LE up to the first NUL character, replacement characters for
    broken surrogates), in one decode: a NUL code unit never belongs to an
    error sequence, so cutting after decoding gives the same text."""
    if len(raw) & 1:
        raw = raw[:-1]
    text = _u16(raw, "replace", True)[0]
    cut = text.find("\x00")
    return text if cut < 0 else text[:cut]


def value_data(buf: Any, dsize: int, doff: int, minor: int) -> bytes:
    """A value's data bytes: inline (<= 4 bytes in the offset field), in one
    cell, or in ``db`` big-data segments (hive version 1.4+); bounded by the
    hive, never by the declared size."""
    if dsize & 0x80000000:  # data inline in the offset field
        n = dsize & 0x7FFFFFFF
        if n > 4:
            raise ValueError(f"inline data size {n} > 4")
        return _U32.pack(doff)[:n]
    if dsize == 0:
        return b""
    cell = BASE + doff
    if doff == 0xFFFFFFFF or cell + 4 > len(buf):
        raise ValueError(f"value data offset 0x{doff:x} outside the hive")
    start = cell + 4
    if dsize > BIG_DATA_SEGMENT and minor >= 4 and buf[start:start + 2] == b"db":
        return _big_data(buf, start, dsize)
    if start + dsize > len(buf):
        raise ValueError(f"value data at 0x{doff:x} runs past the end of the hive")
    return bytes(buf[start:start + dsize])


def _big_data(buf: Any, start: int, dsize: int) -> bytes:
    nseg, seglist = struct.unpack_from("<HI", buf, start + 2)
    out = bytearray()
    remaining = dsize
    so = BASE + seglist + 4
    for s in range(nseg):
        if remaining <= 0:
            break
        (seg,) = _U32.unpack_from(buf, so + 4 * s)
        sc = BASE + seg + 4
        piece = buf[sc:sc + min(BIG_DATA_SEGMENT, remaining)]
        if not piece:
            raise ValueError(f"big-data segment at 0x{seg:x} outside the hive")
        out += piece
        remaining -= len(piece)
    if remaining > 0:
        raise ValueError(f"big data truncated ({dsize - remaining} of {dsize} bytes)")
    return bytes(out)


def subkey_offsets(buf: Any, list_off: int, depth: int = 0) -> list[int | BaseException]:
    """Key-cell offsets of a subkey list (lf/lh/li, or an ri index of them);
    an error in place of a list that cannot be read."""
    o = BASE + list_off + 4
    if o + 4 > len(buf):
        return [ValueError(f"subkey list offset 0x{list_off:x} outside the hive")]
    sig = bytes(buf[o:o + 2])
    (n,) = _U16.unpack_from(buf, o + 2)
    width = _LIST_WIDTH.get(sig)
    if width is None or (sig == b"ri" and depth):
        return [ValueError(f"bad subkey list signature {sig!r} at offset 0x{list_off:x}")]
    if o + 4 + width * n > len(buf):
        return [ValueError(f"subkey list at offset 0x{list_off:x} runs past the end of the hive")]
    if width == 8:  # lf/lh: (offset, name hint or hash) pairs
        return list(struct.unpack_from(f"<{2 * n}I", buf, o + 4)[::2])
    offs = struct.unpack_from(f"<{n}I", buf, o + 4)
    if sig != b"ri":
        return list(offs)
    out: list[int | BaseException] = []
    for off in offs:
        out.extend(subkey_offsets(buf, off, depth + 1))
    return out


# ---------------------------------------------------------------------------
# Values of many keys at once
#
# A full load reads ~2.4 values per key; in Python each costs ~2.5 µs
# (header, name, data, decode, appends). Here the value cells of a whole
# batch of keys are read with numpy: headers, ASCII names, inline and
# in-cell data, DWORD/QWORD as decimal and hex (strings are decoded one by
# one: a gather of their bytes costs as much as that). Every value whose
# shape is not the plain one (a damaged cell, a non-ASCII name, big data,
# REG_MULTI_SZ, an odd size for its type) goes through the per-value reader
# above, which gives the same text, data and errors as before.

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_PLAIN_HEX_EXCLUDED = [1, 2, 4, 5, 6, 7, 11]  # types decode_value does not show as hex
_GATHER_MAX = 128  # longer names/data are sliced per value (bounded index arrays)


@dataclass
class ValueBatch:
    """The readable values of a group of keys, in key order then value order."""

    names: pa.Array
    codes: np.ndarray
    texts: pa.Array
    extras: pa.Array
    per_key: np.ndarray  # values read, per key of the group
    errors: list[tuple[int, BaseException]]  # (key index in the group, error), in order


def _rd(b: np.ndarray, pos: np.ndarray, width: int) -> np.ndarray:
    """Little-endian unsigned integers of ``width`` bytes at ``pos``."""
    v = b[pos].astype(np.int64)
    for i in range(1, width):
        v |= b[pos + i].astype(np.int64) << (8 * i)
    return v


def _gather(b: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The bytes of each (start, length) segment, concatenated."""
    total = int(lens.sum())
    if not total:
        return np.empty(0, dtype=np.uint8)
    seg = np.cumsum(lens) - lens
    return b[np.repeat(starts - seg, lens) + np.arange(total)]


def _ascii_array(data: np.ndarray, lens: np.ndarray) -> pa.Array:
    offsets = np.concatenate(([0], np.cumsum(lens))).astype(np.int64)
    arr = pa.LargeStringArray.from_buffers(len(lens), pa.py_buffer(offsets), pa.py_buffer(data.tobytes()))
    return arr.cast(pa.string())


def _hex_array(b: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> pa.Array:
    data = _gather(b, starts, lens)
    out = np.empty(2 * len(data), dtype=np.uint8)
    out[0::2] = _HEX[data >> 4]
    out[1::2] = _HEX[data & 15]
    return _ascii_array(out, 2 * lens)


def _one_value(buf: Any, minor: int, vrel: int) -> tuple[str, int, str, str | None]:
    """(name, type, text, data JSON) of one value, or its error raised."""
    name, dsize, doff, dtype = _vk(buf, vrel)
    raw = value_data(buf, dsize, doff, minor)
    if dtype in _STRING_TYPES:
        return name, dtype, utf16_text(raw), None
    _, text, ex = decode_value(dtype, raw)
    return name, dtype, text, json.dumps(ex, ensure_ascii=False) if ex else None


@dataclass
class _Cells:
    """The value cells of a group of keys, one array entry per value."""

    key: np.ndarray  # index of the value's key in the group
    index: np.ndarray  # index of the value in its key's list
    vrel: np.ndarray  # cell offset
    plain: np.ndarray  # shape the vectorized reader takes (else: per value)
    dtype: np.ndarray
    name_bytes: np.ndarray  # ASCII names of the plain values, concatenated
    name_len: np.ndarray
    dstart: np.ndarray  # data bytes in the buffer (inline data: in the cell itself)
    dlen: np.ndarray


def _value_cells(b: np.ndarray, vl: np.ndarray, nv: np.ndarray) -> _Cells:
    """Locate and check every value cell of keys whose lists are in the
    hive (``nv`` is 0 for the others)."""
    size = len(b)
    kk = np.repeat(np.arange(len(nv), dtype=np.int64), nv)
    jj = np.arange(len(kk), dtype=np.int64) - np.repeat(np.cumsum(nv) - nv, nv)
    vrel = _rd(b, np.repeat(BASE + vl + 4, nv) + 4 * jj, 4)
    o = BASE + vrel + 4
    ok = o + 20 <= size
    o = np.where(ok, o, 0)
    nlen, dsize, doff, dtype, flags = (_rd(b, o + 2, 2), _rd(b, o + 4, 4), _rd(b, o + 8, 4),
                                       _rd(b, o + 12, 4), _rd(b, o + 16, 2))
    ok &= (b[o] == 0x76) & (b[o + 1] == 0x6B) & ((flags & VALUE_COMP_NAME) == 1) & (nlen <= _GATHER_MAX)
    ok &= o + 20 + nlen <= size
    nlen = np.where(ok, nlen, 0)
    name_bytes = _gather(b, o + 20, nlen)
    high = np.concatenate(([0], np.cumsum(name_bytes >= 0x80)))
    ends = np.cumsum(nlen)
    ok &= high[ends] == high[ends - nlen]  # ASCII names only: Latin-1 above 0x7F is not UTF-8
    inline = dsize >= 0x80000000
    ilen = dsize & 0x7FFFFFFF
    cstart = BASE + doff + 4
    dlen = np.where(inline, ilen, dsize)
    ok &= np.where(inline, ilen <= 4,
                   (dsize == 0) | ((dsize <= BIG_DATA_SEGMENT) & (doff != 0xFFFFFFFF) & (cstart + dsize <= size)))
    dstart = np.where(ok & (dlen > 0), np.where(inline, o + 8, cstart), 0)
    return _Cells(kk, jj, vrel, ok, dtype, name_bytes, nlen, dstart, np.where(ok, dlen, 0))


def _plain_texts(buf: Any, b: np.ndarray, c: _Cells) -> tuple[np.ndarray, list[tuple[np.ndarray, pa.Array]]]:
    """Texts of the plain values whose type has a plain rendering (decimal
    DWORD/QWORD, string, hex): which values, and (indices, texts) parts."""
    is_str = c.plain & np.isin(c.dtype, _STRING_TYPES)
    is_dw = c.plain & (c.dtype == 4) & (c.dlen == 4)
    is_qw = c.plain & (c.dtype == 11) & (c.dlen == 8)
    is_hex = c.plain & ~np.isin(c.dtype, _PLAIN_HEX_EXCLUDED)
    small = c.dlen <= _GATHER_MAX
    parts: list[tuple[np.ndarray, pa.Array]] = []
    sel = np.flatnonzero(is_dw)
    parts.append((sel, pa.array(_rd(b, c.dstart[sel], 4)).cast(pa.string())))
    sel = np.flatnonzero(is_qw)
    lo, hi = _rd(b, c.dstart[sel], 4).astype(np.uint64), _rd(b, c.dstart[sel] + 4, 4).astype(np.uint64)
    parts.append((sel, pa.array(lo | (hi << np.uint64(32))).cast(pa.string())))
    sel = np.flatnonzero(is_hex & small)
    parts.append((sel, _hex_array(b, c.dstart[sel], c.dlen[sel])))
    sel = np.flatnonzero(is_str)  # one by one: a gather of their bytes costs as much
    spans = zip(c.dstart[sel].tolist(), c.dlen[sel].tolist())
    parts.append((sel, pa.array([utf16_text(buf[s:s + n]) for s, n in spans], pa.string())))
    sel = np.flatnonzero(is_hex & ~small)
    spans = zip(c.dstart[sel].tolist(), c.dlen[sel].tolist())
    parts.append((sel, pa.array([buf[s:s + n].hex() for s, n in spans], pa.string())))
    return is_str | is_dw | is_qw | is_hex, parts


def read_value_batch(hive: Hive, v_lists: list[int], nvals: list[int]) -> ValueBatch:
    """The values of keys given by their value-list offsets and counts
    (CellNode.v_list, .nvalues): what :func:`_one_value` gives for each
    value of each key in turn, read together; the errors in that order."""
    buf = hive.buf
    b = np.frombuffer(buf, dtype=np.uint8)
    vl = np.asarray(v_lists, dtype=np.int64)
    nv = np.asarray(nvals, dtype=np.int64)
    bad_list = (nv > 0) & (BASE + vl + 4 + 4 * nv > len(b))
    errors: list[tuple[int, int, BaseException]] = [
        (int(k), -1, ValueError(f"value list at offset 0x{int(vl[k]):x} outside the hive"))
        for k in np.flatnonzero(bad_list)]
    c = _value_cells(b, vl, np.where(bad_list, 0, nv))
    n = len(c.key)
    fast, parts = _plain_texts(buf, b, c)
    keep = np.ones(n, dtype=bool)
    name_pos = np.where(fast, np.arange(n), n)  # ASCII names array, then a null, then the others
    extra_pos = np.full(n, -1, dtype=np.int64)
    codes = c.dtype.copy()
    slow = np.flatnonzero(~fast)
    slow_names, slow_texts, slow_extras = [], [], []
    for i, vr in zip(slow.tolist(), c.vrel[slow].tolist()):
        try:
            name, code, text, extra = _one_value(buf, hive.minor, vr)
        except Exception as exc:  # noqa: BLE001 - one bad value, not the key
            # without its traceback: the frame holds a view of the hive's map
            errors.append((int(c.key[i]), int(c.index[i]), exc.with_traceback(None)))
            keep[i] = False
            continue
        name_pos[i] = n + 1 + len(slow_names)
        extra_pos[i] = len(slow_names)
        codes[i] = code
        slow_names.append(name)
        slow_texts.append(text)
        slow_extras.append(extra)
    extra_pos[extra_pos < 0] = len(slow_extras)  # no data JSON: the null slot
    parts.append((slow[keep[slow]], pa.array(slow_texts, pa.string())))
    text_pos = np.empty(n, dtype=np.int64)
    at = 0
    for sel, _ in parts:
        text_pos[sel] = at + np.arange(len(sel))
        at += len(sel)
    names = pa.concat_arrays([_ascii_array(c.name_bytes, c.name_len), pa.nulls(1, pa.string()),
                              pa.array(slow_names, pa.string())])
    errors.sort(key=lambda e: (e[0], e[1]))
    return ValueBatch(
        names=names.take(pa.array(name_pos[keep])),
        codes=codes[keep],
        texts=pa.concat_arrays([a for _, a in parts]).take(pa.array(text_pos[keep])),
        extras=pa.array(slow_extras + [None], pa.string()).take(pa.array(extra_pos[keep])),
        per_key=np.bincount(c.key[keep], minlength=len(nv)),
        errors=[(k, e) for k, _, e in errors])
