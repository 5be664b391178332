"""Offline registry hives (``regf``): SOFTWARE, SYSTEM, SAM, SECURITY,
NTUSER.DAT, UsrClass.dat — including dirty hives with their transaction logs.

Format facts this module relies on (Windows registry file format, as
documented by M. Suhanov and libyal):

* Base block (4096 bytes): ``regf``, primary and secondary sequence numbers
  (equal = the last write completed), last-written FILETIME, minor version,
  file type (0 primary, 1/2 old-format log, 6 new-format log), root cell
  offset, hive-bins data size, a 64-byte UTF-16 file name (the *tail* of the
  path the hive was loaded from, e.g. ``\\??\\C:\\Users\\tony\\ntuser.dat``),
  XOR-32 checksum of the first 508 bytes at offset 508.
* The hive type is never taken from the file name (customers rename files):
  it comes from the root key's subkeys (Select + ControlSet00N = SYSTEM,
  Microsoft + Classes = SOFTWARE, ...) and then the base block's file name.
* Dirty hive: sequence numbers differ, or the base block is invalid. Windows
  then replays ``.LOG1``/``.LOG2`` (or ``.LOG``). Old format (XP..7): the log
  holds a copy of the base block, ``DIRT`` + a bitmap of dirty 512-byte
  pages, then the pages. New format (8.1+): log entries ``HvLE`` with a
  sequence number, dirty page references and two Marvin32 hashes; entries are
  applied in sequence-number order across both logs, stopping at the first
  entry that fails its hashes or breaks the sequence.
  regipy's replay applies every HvLE entry whatever its sequence number and
  applies LOG2 before LOG1, which does not match Windows on the new format
  (tests/sources/test_hive.py compares with Windows' own recovery);
  :func:`replay_logs` implements the rules above itself, on a copy in the
  work directory — the input is never modified.
* Keys and values are read by our cell reader (:mod:`.hivecells`) from a
  memory map of the hive: regipy's construct-based key parse and its value
  reader (which reads ``data_size`` bytes even for data stored inline, up to
  "the end of the file") cost minutes on a full walk; the cell reader keeps
  regipy's semantics (root = first cell of the first bin, name decoding) and
  hands the cells it cannot take to regipy. libregf (``pyregf``, optional)
  walks the hive when the root key cannot be parsed at all.
* A damaged hive is read key by key: a bad subkey list or value list costs
  that key's children or values (a warning with the key), not the hive.
"""
from __future__ import annotations

import json
import mmap
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import safeio
from ..registry import decode_value, segment_match, type_name
from ..table import conform_arrow
from . import register
from .base import ParseContext, Source
from .hivecells import BASE, CellNode, Hive, read_value_batch
from .hivecells import Failed as _Failed

try:  # optional fast walker for --registry full
    import pyregf  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    pyregf = None

FILETIME_EPOCH = 116444736000000000  # 1970-01-01 in 100 ns ticks since 1601
#: Key timestamps outside this window are damage, not history (ts = None).
TS_MIN, TS_MAX = FILETIME_EPOCH + 10 * 365 * 86400 * 10**7, FILETIME_EPOCH + 130 * 365 * 86400 * 10**7
MAX_DEPTH = 512
MAX_WARNINGS = 100
#: Hive types without declared subtrees are loaded whole in targeted mode up
#: to this size (a `reg save` of a single key, SAM, SECURITY).
SMALL_HIVE = 8 * 1024 * 1024

FILE_TYPE_PRIMARY = 0
OLD_LOG_TYPES = (1, 2)
NEW_LOG_TYPE = 6


# ---------------------------------------------------------------------------
# Base block


def regf_checksum(block: bytes) -> int:
    """XOR-32 of the first 508 bytes, with 0 -> 1 and 0xFFFFFFFF -> 0xFFFFFFFE."""
    acc = 0
    for (w,) in struct.iter_unpack("<I", block[:508]):
        acc ^= w
    if acc == 0:
        return 1
    if acc == 0xFFFFFFFF:
        return 0xFFFFFFFE
    return acc


@dataclass
class BaseBlock:
    raw: bytes
    signature_ok: bool
    checksum_ok: bool
    seq1: int
    seq2: int
    timestamp: int
    major: int
    minor: int
    file_type: int
    root_offset: int
    hbins_size: int
    file_name: str

    @property
    def valid(self) -> bool:
        return self.signature_ok and self.checksum_ok

    @property
    def dirty(self) -> bool:
        return not self.valid or self.seq1 != self.seq2


def parse_base_block(data: bytes) -> BaseBlock | None:
    if len(data) < 512:
        return None
    seq1, seq2, ts, major, minor, ftype, _fmt, root, hsize = struct.unpack_from("<IIQIIIIII", data, 4)
    name = data[48:48 + 64].decode("utf-16-le", errors="replace").split("\x00", 1)[0]
    (stored,) = struct.unpack_from("<I", data, 508)
    return BaseBlock(bytes(data[:512]), data[:4] == b"regf", regf_checksum(data) == stored,
                     seq1, seq2, ts, major, minor, ftype, root, hsize, name)


# ---------------------------------------------------------------------------
# Transaction logs

_M32 = 0xFFFFFFFF


def marvin32(data: bytes, seed: int = 0x82EF4D887A4E55C5) -> int:
    """64-bit Marvin32 hash (the checksum of new-format log entries)."""
    lo, hi = seed & _M32, seed >> 32
    n = len(data) // 4

    def mix(lo: int, hi: int) -> tuple[int, int]:
        hi ^= lo
        lo = ((lo << 20) | (lo >> 12)) & _M32
        lo = (lo + hi) & _M32
        hi = ((hi << 9) | (hi >> 23)) & _M32
        hi ^= lo
        lo = ((lo << 27) | (lo >> 5)) & _M32
        lo = (lo + hi) & _M32
        hi = ((hi << 19) | (hi >> 13)) & _M32
        return lo, hi

    for (w,) in struct.iter_unpack("<I", data[: n * 4]):
        lo, hi = mix((lo + w) & _M32, hi)
    tail = data[n * 4:]
    final = 0x80 << (8 * len(tail))
    for i, b in enumerate(tail):
        final |= b << (8 * i)
    lo, hi = mix((lo + final) & _M32, hi)
    lo, hi = mix(lo, hi)
    return lo | (hi << 32)


@dataclass
class LogInfo:
    name: str
    data: bytes
    base: BaseBlock | None
    fmt: str | None  # "old" | "new" | None (unusable)
    reason: str = ""


def classify_log(name: str, data: bytes) -> LogInfo:
    """Which format a transaction log is in and whether Windows would use it."""
    if not data:
        return LogInfo(name, data, None, None, "empty")
    bb = parse_base_block(data)
    if bb is None or not bb.signature_ok:
        return LogInfo(name, data, bb, None, "no regf base block")
    if not bb.checksum_ok:
        return LogInfo(name, data, bb, None, "base block checksum mismatch")
    if bb.seq1 != bb.seq2:
        return LogInfo(name, data, bb, None, "log base block is itself dirty")
    if bb.file_type == NEW_LOG_TYPE:
        if len(data) <= 512 + 40 or data[512:516] != b"HvLE":
            return LogInfo(name, data, bb, None, "no log entries")
        return LogInfo(name, data, bb, "new")
    if bb.file_type in OLD_LOG_TYPES:
        if data[512:516] != b"DIRT":
            return LogInfo(name, data, bb, None, "no DIRT dirty vector")
        return LogInfo(name, data, bb, "old")
    return LogInfo(name, data, bb, None, f"file type {bb.file_type} is not a log")


@dataclass
class ReplayResult:
    data: bytearray | None  # recovered hive bytes, None when nothing was applied
    applied: list[str] = field(default_factory=list)  # log names, in order
    fmt: str | None = None
    entries: int = 0
    pages: int = 0
    messages: list[str] = field(default_factory=list)


def _new_log_entries(log: LogInfo, expected: int) -> Iterator[tuple[int, int, list[tuple[int, bytes]]]]:
    """Valid HvLE entries of a new-format log: (sequence, hbins size, pages).

    Stops at the first entry that is malformed, fails its hashes or does not
    carry the next sequence number — what follows is stale data of earlier
    cycles, which Windows never applies."""
    data = log.data
    pos = 512
    while pos + 40 <= len(data):
        if data[pos:pos + 4] != b"HvLE":
            return
        size, _flags, seq, hsize, count = struct.unpack_from("<IIIII", data, pos + 4)
        h1, h2 = struct.unpack_from("<QQ", data, pos + 24)
        if size < 512 or size % 512 or pos + size > len(data):
            return
        if hsize < 4096 or hsize % 4096 or count == 0 or 40 + 8 * count > size:
            return
        if seq != expected:
            return
        if marvin32(data[pos:pos + 32]) != h2 or marvin32(data[pos + 40:pos + size]) != h1:
            return
        pages = []
        off = pos + 40 + 8 * count
        for i in range(count):
            rel, psize = struct.unpack_from("<II", data, pos + 40 + 8 * i)
            page = data[off:off + psize]
            if len(page) != psize:
                return
            pages.append((rel, page))
            off += psize
        yield seq, hsize, pages
        pos += size
        expected = (expected + 1) & _M32


def _write_pages(buf: bytearray, hsize: int, pages: list[tuple[int, bytes]]) -> int:
    need = BASE + hsize
    if len(buf) < need:
        buf.extend(b"\x00" * (need - len(buf)))
    n = 0
    for rel, page in pages:
        start = BASE + rel
        if start + len(page) > need:  # a page outside the hive: damaged reference
            continue
        buf[start:start + len(page)] = page
        n += 1
    return n


def _finish_base_block(buf: bytearray, template: bytes, seq: int, hsize: int, log_base: BaseBlock) -> None:
    """Write a consistent, clean base block onto the recovered copy."""
    block = bytearray(template[:BASE].ljust(BASE, b"\x00"))
    struct.pack_into("<II", block, 4, seq, seq)
    struct.pack_into("<Q", block, 12, log_base.timestamp)
    struct.pack_into("<II", block, 20, log_base.major, log_base.minor)
    struct.pack_into("<I", block, 28, FILE_TYPE_PRIMARY)
    struct.pack_into("<I", block, 36, log_base.root_offset)
    struct.pack_into("<I", block, 40, hsize)
    struct.pack_into("<I", block, 508, regf_checksum(bytes(block)))
    buf[:BASE] = block
    del buf[BASE + hsize:]


def _seq_before(a: int, b: int) -> bool:
    """True when sequence number a comes before b (32-bit wrap-around)."""
    return a != b and ((b - a) & _M32) <= 0x7FFFFFFF


def replay_logs(primary: bytes, logs: list[LogInfo]) -> ReplayResult:
    """Recover a dirty hive from its transaction logs, as Windows does.

    Returns the recovered bytes (a new buffer; ``primary`` is not touched) or
    ``data=None`` with the reasons in ``messages``.
    """
    res = ReplayResult(None)
    bb = parse_base_block(primary)
    if bb is None or not bb.signature_ok:
        res.messages.append("no regf base block")
        return res
    if not bb.dirty:
        res.messages.append("hive is clean (sequence numbers match); logs not needed")
        return res
    for lg in logs:
        if lg.fmt is None:
            res.messages.append(f"{lg.name} not usable: {lg.reason}")
    new = [lg for lg in logs if lg.fmt == "new"]
    old = [lg for lg in logs if lg.fmt == "old"]
    if new:
        new.sort(key=lambda lg: lg.base.seq1)  # type: ignore[union-attr]
        if len(new) == 2 and not _seq_before(new[0].base.seq1, new[1].base.seq1):  # type: ignore[union-attr]
            new.reverse()  # the sequence numbers wrapped around
        if bb.valid:
            # Start with the first log that is not older than the hive.
            order = [lg for lg in new if not _seq_before(lg.base.seq1, bb.seq2)]  # type: ignore[union-attr]
            for lg in new:
                if lg not in order:
                    res.messages.append(f"{lg.name} not applied: older than the hive "
                                        f"(log sequence {lg.base.seq1} < hive {bb.seq2})")  # type: ignore[union-attr]
            template = primary[:BASE]
        else:
            # Invalid primary base block: Windows takes the newest log only.
            order = new[-1:]
            template = order[0].base.raw  # type: ignore[union-attr]
            res.messages.append("hive base block invalid; using the newest log's base block")
        buf = bytearray(primary)
        last_seq: int | None = None
        hsize = bb.hbins_size
        for lg in order:
            start = lg.base.seq1  # type: ignore[union-attr]
            if last_seq is not None and start != ((last_seq + 1) & _M32):
                res.messages.append(f"{lg.name} not applied: its sequence {start} does not follow {last_seq}")
                break
            n_entries = 0
            for seq, hsize, pages in _new_log_entries(lg, start):
                res.pages += _write_pages(buf, hsize, pages)
                last_seq = seq
                n_entries += 1
            if n_entries:
                res.applied.append(lg.name)
                res.entries += n_entries
            else:
                res.messages.append(f"{lg.name}: no valid log entry")
                if last_seq is None:
                    continue
                break
        if last_seq is None:
            res.messages.append("no log entry could be applied")
            return res
        _finish_base_block(buf, template, last_seq, hsize, order[0].base)  # type: ignore[arg-type]
        res.data, res.fmt = buf, "new"
        return res
    if old:
        if len(old) == 2:  # the most recently written log wins
            old.sort(key=lambda lg: lg.base.timestamp, reverse=True)  # type: ignore[union-attr]
        lg = old[0]
        lb = lg.base
        assert lb is not None
        if bb.valid and lb.timestamp < bb.timestamp:
            res.messages.append(f"{lg.name} not applied: written before the hive")
            return res
        hsize = lb.hbins_size
        vec_len = hsize // 4096
        bitmap = lg.data[516:516 + vec_len]
        if len(bitmap) < vec_len:
            res.messages.append(f"{lg.name} not applied: dirty vector truncated")
            return res
        start = 516 + vec_len
        start += (-start) % 512
        buf = bytearray(primary)
        if len(buf) < BASE + hsize:
            buf.extend(b"\x00" * (BASE + hsize - len(buf)))
        k = 0
        for bit in range(vec_len * 8):
            if bitmap[bit // 8] >> (bit % 8) & 1:
                page = lg.data[start + 512 * k:start + 512 * (k + 1)]
                k += 1
                if len(page) != 512:
                    res.messages.append(f"{lg.name}: truncated after {k - 1} dirty pages")
                    break
                buf[BASE + 512 * bit:BASE + 512 * (bit + 1)] = page
                res.pages += 1
        _finish_base_block(buf, lb.raw if not bb.valid else primary[:BASE], lb.seq1, hsize, lb)
        res.data, res.fmt, res.applied, res.entries = buf, "old", [lg.name], 1
        return res
    res.messages.append("no usable transaction log")
    return res


def find_logs(hive: Path, siblings: tuple[Path, ...]) -> list[Path]:
    """``<hive>.LOG``, ``.LOG1``, ``.LOG2`` beside the hive, any case;
    regular files only (a FIFO or a link to a device named like a log
    would block or never end: see analyzer/safeio.py)."""
    want = {f"{hive.name}.log".lower(), f"{hive.name}.log1".lower(), f"{hive.name}.log2".lower()}
    return sorted((p for p in siblings if p.name.lower() in want and safeio.is_regular(p)),
                  key=lambda p: p.name.lower())


# ---------------------------------------------------------------------------
# Readers: one node interface over our cell reader (hivecells) and libregf


class PyregfNode:
    """A key read through libregf (``pyregf``)."""

    def __init__(self, key: Any) -> None:
        self.key = key
        self.name: str = key.name or ""
        self.ts: int = key.get_last_written_time_as_integer()
        self.nsubkeys: int = key.number_of_sub_keys
        self.nvalues: int = key.number_of_values
        self.ident = ("p", key.offset)

    def values(self) -> Iterator[tuple[str, int, bytes] | BaseException]:
        for j in range(self.nvalues):
            try:
                v = self.key.get_value(j)
                yield v.name or "", v.type, v.data or b""
            except Exception as exc:  # noqa: BLE001
                yield exc

    def read_values(self, names: list[str], codes: list[int], texts: list[str],
                    extras: list[str | None]) -> list[BaseException]:
        """Append each readable value (name, type code, text as
        :func:`analyzer.registry.decode_value` gives it, data JSON) to the
        column lists; return the errors of the others, in value order."""
        errors = []
        for item in self.values():
            if isinstance(item, BaseException):
                errors.append(item)
                continue
            name, code, raw = item
            _, text, extra = decode_value(code, raw)
            names.append(name)
            codes.append(code)
            texts.append(text)
            extras.append(_json(extra) if extra else None)
        return errors

    def subkeys(self) -> Iterator[PyregfNode | _Failed]:
        for i in range(self.nsubkeys):
            try:
                yield PyregfNode(self.key.get_sub_key(i))
            except Exception as exc:  # noqa: BLE001
                yield _Failed(i, exc)

    def subkey(self, name: str) -> PyregfNode | None:
        try:
            k = self.key.get_sub_key_by_name(name)
        except Exception:  # noqa: BLE001
            return None
        return PyregfNode(k) if k is not None else None


def open_cells(buf: Any) -> CellNode:
    """The root key of a hive buffer, read by :mod:`.hivecells`."""
    bb = parse_base_block(buf)
    return Hive(buf, bb.minor if bb else 5).root()


def open_pyregf(path: Path) -> tuple[Any, PyregfNode] | None:
    if pyregf is None:
        return None
    f = pyregf.file()
    f.open(str(path))
    root = f.get_root_key()
    if root is None:
        f.close()
        raise ValueError("no root key")
    return f, PyregfNode(root)


def check_structure(buf: bytes, bb: BaseBlock) -> list[tuple[str, str]]:
    """Integrity problems a walk would not notice: damaged hive-bin headers,
    truncation, a root cell that is not the hive's root key. (message, locator)."""
    problems: list[tuple[str, str]] = []
    end = BASE + bb.hbins_size
    if len(buf) < end:
        problems.append((f"hive truncated: file ends at byte {len(buf)}; the base block declares "
                         f"{bb.hbins_size} bytes of hive bins (a {end}-byte file); "
                         f"{max(0, end - len(buf))} bytes of bins missing, with the keys stored there",
                         f"offset=0x{len(buf):x}"))
        end = len(buf)
    pos, bad, first_bad = BASE, 0, None
    while pos + 32 <= end:
        sig = buf[pos:pos + 4]
        off, size = struct.unpack_from("<II", buf, pos + 4)
        if sig != b"hbin" or off != pos - BASE or size < 4096 or size % 4096 or pos + size > end + 4096:
            bad += 1
            first_bad = pos if first_bad is None else first_bad
            pos += 4096
            continue
        pos += size
    if bad:
        problems.append((f"{bad} hive bin(s) with a damaged header (first at offset 0x{first_bad:x}); "
                         "keys stored there may be missing or wrong", f"offset=0x{first_bad:x}"))
    root = BASE + bb.root_offset + 4
    if buf[root:root + 2] != b"nk":
        problems.append((f"root cell offset 0x{bb.root_offset:x} does not point to a key",
                         f"offset=0x{root:x}"))
    elif not struct.unpack_from("<H", buf, root + 2)[0] & 0x4:
        problems.append(("the root key cell lacks the hive-root flag (KEY_HIVE_ENTRY): the hive's real "
                         "root is missing; reading from the first key cell instead", f"offset=0x{root:x}"))
    return problems


# ---------------------------------------------------------------------------
# Hive type and mount point

_USER_RE = re.compile(r"(?:users|documents and settings|profiles)\\([^\\]+)\\", re.I)


def identify_hive(subkeys: set[str], base_name: str) -> str:
    """Hive type from the root's subkey names (lower-cased), then from the
    base block's file name field. Never from the file's own name."""
    s = subkeys
    if "select" in s and any(n.startswith("controlset") for n in s):
        return "SYSTEM"
    if "microsoft" in s and ({"classes", "policies", "clients", "wow6432node"} & s):
        return "SOFTWARE"
    if "policy" in s and ({"rxact", "cache", "sam"} & s or len(s) <= 4):
        return "SECURITY"
    if "sam" in s and len(s) <= 3:
        return "SAM"
    if "software" in s and ({"control panel", "environment", "appevents", "console",
                             "keyboard layout", "printers"} & s):
        return "NTUSER"
    if "local settings" in s or ("clsid" in s and any(n.startswith(".") for n in s)):
        return "USRCLASS"
    last = base_name.replace("/", "\\").rsplit("\\", 1)[-1].strip().lower()
    by_name = {"system": "SYSTEM", "software": "SOFTWARE", "sam": "SAM", "security": "SECURITY",
               "ntuser.dat": "NTUSER", "default": "NTUSER", "usrclass.dat": "USRCLASS"}
    return by_name.get(last, "UNKNOWN")


def mount_point(hive_type: str, base_name: str, display_path: str) -> str:
    """Where Windows shows the hive's root key (the prefix of every row's key)."""
    fixed = {"SYSTEM": "HKLM\\SYSTEM", "SOFTWARE": "HKLM\\SOFTWARE", "SAM": "HKLM\\SAM",
             "SECURITY": "HKLM\\SECURITY"}
    if hive_type in fixed:
        return fixed[hive_type]
    stem = re.split(r"[\\/!]", display_path)[-1] or "hive"
    m = _USER_RE.search(base_name.replace("/", "\\"))
    if hive_type == "NTUSER":
        return f"HKU\\{m.group(1) if m else stem}"
    if hive_type == "USRCLASS":
        return f"HKU\\{m.group(1) if m else stem}_Classes"
    # Unknown (e.g. `reg save` of one key): where `reg load HKLM\<name>` puts it.
    return f"HKLM\\{stem}"


# ---------------------------------------------------------------------------
# Rows


class _Rows:
    """Registry rows of one batch, kept as columns: per key (path, time,
    status, counts) and per value (name, type code, text, extra data, in
    chunks). The table is assembled in Arrow (a Python object per row and
    per cell costs more than reading the hive): a key's row comes first,
    then its values."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.kpath: list[str] = []
        self.kft: list[int] = []  # last-written FILETIME
        self.ksub: list[int] = []  # subkey and value counts of the key cell
        self.kval: list[int] = []
        self.knv: list[int] = []  # values read per key
        self.partial: list[int] = []  # keys with an unreadable value
        self.chunks: list[tuple[pa.Array, np.ndarray, pa.Array, pa.Array]] = []
        self.nvalues = 0

    def __len__(self) -> int:
        return len(self.kpath) + self.nvalues

    def add_keys(self, nodes: list[Any], read: list[int]) -> None:
        """Header fields of the last ``len(nodes)`` keys of ``kpath`` and how
        many values of each are in the value chunks."""
        self.kft.extend([n.ts for n in nodes])
        self.ksub.extend([n.nsubkeys for n in nodes])
        self.kval.extend([n.nvalues for n in nodes])
        self.knv.extend(read)

    def add_values(self, names: Any, codes: Any, texts: Any, extras: Any) -> None:
        """The values of the keys added since the last call, in key order."""
        self.chunks.append((pa.array(names, pa.string()), np.asarray(codes, dtype=np.int64),
                            pa.array(texts, pa.string()), pa.array(extras, pa.string())))
        self.nvalues += len(self.chunks[-1][1])

    def _values(self) -> tuple[pa.Array, np.ndarray, pa.Array, pa.Array]:
        if not self.chunks:
            empty = pa.array([], pa.string())
            return empty, np.zeros(0, dtype=np.int64), empty, empty
        return (pa.concat_arrays([c[0] for c in self.chunks]), np.concatenate([c[1] for c in self.chunks]),
                pa.concat_arrays([c[2] for c in self.chunks]), pa.concat_arrays([c[3] for c in self.chunks]))

    def _key_columns(self, status: str) -> tuple[pa.Array, pa.Array, pa.Array]:
        """Per key: time (None outside TS_MIN..TS_MAX: damage, not history),
        ``data`` JSON of the counts, parse status."""
        ft = np.asarray(self.kft, dtype=np.uint64)
        valid = (ft >= TS_MIN) & (ft <= TS_MAX)
        us = ((ft - np.uint64(FILETIME_EPOCH)) // np.uint64(10)).astype(np.int64)
        ts = pa.array(us, pa.int64(), mask=~valid)
        data = pc.binary_join_element_wise('{"subkeys": ', pa.array(self.ksub, pa.int64()).cast(pa.string()),
                                           ', "values": ', pa.array(self.kval, pa.int64()).cast(pa.string()),
                                           "}", "")
        st = np.zeros(len(self.kpath), dtype=np.int8)
        st[self.partial] = 1
        return ts, data, pa.DictionaryArray.from_arrays(pa.array(st), [status, "partial"]).cast(pa.string())

    def table(self, source: str, path: str, host: str | None, status: str) -> pa.Table:
        names, codes, texts, extras = self._values()
        kts, kdata, kstatus = self._key_columns(status)
        nk, nv = len(self.kpath), len(codes)
        n = nk + nv
        knv = np.asarray(self.knv, dtype=np.int64)
        kidx = pa.array(np.repeat(np.arange(nk, dtype=np.int64), knv + 1))  # row -> its key
        is_key = np.zeros(n, dtype=bool)
        is_key[np.arange(nk, dtype=np.int64) + np.cumsum(knv) - knv] = True
        vpos = np.full(n, nv, dtype=np.int64)  # row -> its value (nv: the key row's null)
        vpos[~is_key] = np.arange(nv, dtype=np.int64)
        vidx = pa.array(vpos)
        null = pa.nulls(1, pa.string())
        shown = pc.if_else(pc.equal(names, ""), "(Default)", names)
        suffix = pa.concat_arrays([pc.binary_join_element_wise("; value=", shown, ""),
                                   pa.array([""], pa.string())]).take(vidx)
        key = pa.array(self.kpath, pa.string()).take(kidx)
        ts = kts.take(kidx)
        uniq, inv = np.unique(codes, return_inverse=True)
        tnames = pa.array([type_name(int(c)) for c in uniq] + [None], pa.string())
        data_pos = np.where(is_key, nv + np.repeat(np.arange(nk, dtype=np.int64), knv + 1), vpos)
        cols: dict[str, Any] = {
            "ts": ts.cast(pa.timestamp("us", tz="UTC")),
            "ts_source": pc.if_else(ts.is_valid(), "utc", pa.scalar(None, pa.string())),
            "host": pa.nulls(n, pa.string()) if host is None else pa.repeat(pa.scalar(host, pa.string()), n),
            "source": pa.repeat(pa.scalar(source, pa.string()), n),
            "path": pa.repeat(pa.scalar(path, pa.string()), n),
            "kind": pa.DictionaryArray.from_arrays(pa.array(np.where(is_key, 0, 1).astype(np.int8)),
                                                   ["registry_key", "registry_value"]),
            "key": key,
            "value_name": pa.concat_arrays([names, null]).take(vidx),
            "value_type": tnames.take(pa.array(np.append(inv.reshape(-1), len(uniq))[vpos])),
            "value": pa.concat_arrays([texts, null]).take(vidx),
            "data": pa.concat_arrays([extras, kdata]).take(pa.array(data_pos)),
            "locator": pc.binary_join_element_wise("key=", key, suffix, ""),
            "parse_status": kstatus.take(kidx),
        }
        return conform_arrow(pa.table(cols))


def _json(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False)


class _Walker:
    """Turns nodes into rows, key by key, keeping whatever can be read."""

    BATCH = 50_000

    def __init__(self, ctx: ParseContext, mount: str, status: str,
                 fallback: Callable[[list[str], int], Any] | None = None) -> None:
        self.ctx, self.mount, self.status = ctx, mount, status
        self.rows = _Rows()
        self.fallback = fallback
        self.done: set[str] = set()
        self.visited: set[Any] = set()
        self.n_warn = 0
        self.suppressed = 0
        self.keys = 0
        self.values = 0
        #: Cell-read keys whose values are not read yet (the last keys of kpath).
        self.pending: list[CellNode] = []
        self.pending_n = 0

    def warn(self, msg: str, key: str) -> None:
        self.settle()  # the values of the keys before this problem are warned first
        self._warn(msg, key)

    def _warn(self, msg: str, key: str) -> None:
        if self.n_warn < MAX_WARNINGS:
            self.ctx.warn(msg, f"key={key}")
        else:
            self.suppressed += 1
            self.ctx.partial = True
        self.n_warn += 1

    def full_key(self, rel: list[str]) -> str:
        return "\\".join([self.mount, *rel]) if rel else self.mount

    def emit(self, node: Any, key: str) -> None:
        """The key's row and its values' rows (once per key path). Values of
        cell-read keys are read later, many keys at once (:meth:`settle`)."""
        low = key.lower()
        if low in self.done:
            return
        self.done.add(low)
        self.keys += 1
        if type(node) is CellNode:
            self.rows.kpath.append(key)
            self.pending.append(node)
            self.pending_n += min(node.nvalues, 1 << 16)
            return
        self.settle()
        self.rows.kpath.append(key)
        vals: tuple[list[Any], ...] = ([], [], [], [])
        for exc in node.read_values(*vals):
            self._warn(f"value unreadable: {exc}", key)
            if not self.rows.partial or self.rows.partial[-1] != len(self.rows.kpath) - 1:
                self.rows.partial.append(len(self.rows.kpath) - 1)
        self.rows.add_keys([node], [len(vals[0])])
        self.rows.add_values(*vals)
        self.values += len(vals[0])

    def settle(self) -> None:
        """Read the values of the keys emitted since the last call (one
        numpy pass over their value cells; they are the last keys of the
        batch), warn about the unreadable ones in key order, and mark those
        keys partial."""
        if not self.pending:
            return
        pending, self.pending, self.pending_n = self.pending, [], 0
        vb = read_value_batch(pending[0].hive, [n.v_list for n in pending], [n.nvalues for n in pending])
        rows = self.rows
        base = len(rows.kpath) - len(pending)
        for i, exc in vb.errors:
            self._warn(f"value unreadable: {exc}", rows.kpath[base + i])
            if not rows.partial or rows.partial[-1] != base + i:
                rows.partial.append(base + i)
        rows.add_keys(pending, vb.per_key.tolist())
        rows.chunks.append((vb.names, vb.codes, vb.texts, vb.extras))
        rows.nvalues += len(vb.codes)
        self.values += len(vb.codes)

    def walk(self, node: Any, rel: list[str]) -> Iterator[pa.Table]:
        """The key and its whole subtree, depth first in list order
        (iterative: deep hives must not hit Python's recursion limit). Key
        paths are built from the parent's; segment lists only for the
        libregf fallback, which navigates by them."""
        fallback = self.fallback
        stack: list[tuple[Any, str, int, list[str] | None]] = [
            (node, self.full_key(rel), len(rel), rel if fallback else None)]
        visited, rows = self.visited, self.rows
        while stack:
            node, key, depth, rel = stack.pop()
            if node.ident in visited:
                self.warn("subkey cycle (a key listed as its own descendant); not followed", key)
                continue
            visited.add(node.ident)
            self.emit(node, key)
            if depth >= MAX_DEPTH:
                self.warn(f"deeper than {MAX_DEPTH} levels; not followed", key)
                continue
            children = []
            failed = False
            for sk in node.subkeys():
                if isinstance(sk, _Failed):
                    alt = fallback(rel, sk.index) if fallback else None
                    if alt is not None:
                        children.append((alt, f"{key}\\{alt.name}", depth + 1, [*rel, alt.name]))
                        continue
                    self.warn(f"subkey #{sk.index} unreadable: {str(sk.error).split('. ')[0]}", key)
                    failed = True
                    continue
                children.append((sk, f"{key}\\{sk.name}", depth + 1, None if rel is None else [*rel, sk.name]))
            if not failed and len(children) < node.nsubkeys:
                self.warn(f"only {len(children)} of {node.nsubkeys} subkeys listed", key)
            stack.extend(reversed(children))
            if len(rows) + self.pending_n >= self.BATCH:
                yield self.flush()
        self.settle()

    def flush(self) -> pa.Table:
        self.settle()
        tab = self.rows.table(HiveSource.name, self.ctx.path, self.host, self.status)
        self.rows.clear()
        return tab

    host: str | None = None


def _declared_paths() -> dict[str, list[dict[str, Any]]]:
    from ..registry import declared_paths  # shared paths + each check's registry_keys
    return declared_paths()


def _resolve(root: Any, pattern: str) -> Iterator[tuple[Any, list[str]]]:
    """Nodes matching a root-relative path with * / ? segments."""
    segs = [s for s in pattern.split("\\") if s]
    level: list[tuple[Any, list[str]]] = [(root, [])]
    for seg in segs:
        nxt: list[tuple[Any, list[str]]] = []
        wild = any(ch in seg for ch in "*?[")
        for node, rel in level:
            if wild:
                for sk in node.subkeys():
                    if not isinstance(sk, _Failed) and segment_match(sk.name, seg):
                        nxt.append((sk, [*rel, sk.name]))
            else:
                sk = node.subkey(seg)
                if sk is not None:
                    nxt.append((sk, [*rel, sk.name]))
        level = nxt
        if not level:
            return
    yield from level


def _read_value(node: Any, name: str) -> tuple[int, bytes] | None:
    for item in node.values():
        if not isinstance(item, BaseException) and item[0].lower() == name.lower():
            return item[1], item[2]
    return None


def system_host(root: Any) -> tuple[str | None, int | None]:
    """(computer name, current control set) of a SYSTEM hive."""
    cur = None
    sel = root.subkey("Select")
    if sel is not None:
        v = _read_value(sel, "Current")
        if v is not None and len(v[1]) >= 4:
            cur = struct.unpack("<I", v[1][:4])[0]
    names = [f"ControlSet{cur:03d}"] if cur else []
    names += ["ControlSet001", "ControlSet002"]
    for cs in names:
        node = root
        for seg in (cs, "Control", "ComputerName", "ComputerName"):
            node = node.subkey(seg) if node is not None else None
        if node is not None:
            v = _read_value(node, "ComputerName")
            if v is not None:
                return decode_value(v[0], v[1])[1] or None, cur
    return None, cur


def sibling_system_host(siblings: tuple[Path, ...]) -> str | None:
    """ComputerName of the one SYSTEM hive among ``siblings``, if exactly one
    SYSTEM hive with a name is there (``Select\\Current`` names the control
    set). Each sibling is mapped, not read: only the few cells on the path
    are touched."""
    found: set[str] = set()
    for sib in siblings:
        buf: Any = b""
        try:
            buf = map_file(sib)
            if buf[:4] != b"regf":
                continue
            node = root = open_cells(buf)
            sel = root.subkey("Select")
            cur = _read_value(sel, "Current") if sel is not None else None
            if cur is None:
                continue
            for seg in (f"ControlSet{int(decode_value(*cur)[1]):03d}", "Control", "ComputerName", "ComputerName"):
                node = node.subkey(seg) if node is not None else None
            v = _read_value(node, "ComputerName") if node is not None else None
            name = decode_value(*v)[1] if v is not None and v[0] in (1, 2) else None
        except Exception:  # noqa: BLE001 - not a readable SYSTEM hive: no opinion
            continue
        finally:
            _unmap(buf)
        if name and name.strip():
            found.add(name.strip())
    return found.pop() if len(found) == 1 else None


# ---------------------------------------------------------------------------
# Sources


def map_file(path: Path) -> Any:
    """The file's bytes as a read-only memory map (pages are read as the
    walk touches them and can be dropped again: a hive of a few hundred MB
    is never copied into the process); ``b""`` for an empty file. Regular
    files only (analyzer/safeio.py)."""
    with safeio.open_regular(path) as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return b""
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def _unmap(buf: Any) -> None:
    if isinstance(buf, mmap.mmap):
        try:
            buf.close()
        except BufferError:  # a view still alive (an error's frame): unmapped when it goes
            pass


def _recover(ctx: ParseContext, path: Path, primary: Any, logs: list[Path]) -> Path | None:
    """Replay the transaction logs onto a copy of the dirty hive in the work
    directory; the copy's path, or None (with a warning) when no log applies."""
    infos, maps = [], []
    try:
        for lp in logs:
            try:
                maps.append(map_file(lp))
                infos.append(classify_log(lp.name, maps[-1]))
            except OSError as exc:
                ctx.warn(f"cannot read transaction log {lp.name}: {exc}")
        res = replay_logs(primary, infos)
    finally:
        for m in maps:
            _unmap(m)
    if res.data is None:
        ctx.warn("hive is dirty and its transaction logs could not be applied ("
                 + "; ".join(res.messages) + "); recent changes may be missing", "offset=0x4")
        return None
    work = Path(ctx.work_dir) if ctx.work_dir else path.parent
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"{path.name}.recovered"
    out.write_bytes(res.data)
    ctx.note(f"recovered from transaction logs ({', '.join(res.applied)}: "
             f"{res.fmt} format, {res.entries} entr{'y' if res.entries == 1 else 'ies'}, "
             f"{res.pages} page(s))")
    for m in res.messages:
        ctx.note(m)
    return out


def _sniff_regf(head: bytes) -> tuple[bool, int | None, bytes]:
    if len(head) < 4 or head[:4] != b"regf":
        return False, None, b""
    ftype = struct.unpack_from("<I", head, 28)[0] if len(head) >= 32 else None
    return True, ftype, head[512:516]


@register
class HiveSource(Source):
    """Offline registry hive (regf primary file)."""

    name = "hive"
    kind = "regf"
    description = "Offline registry hive (SOFTWARE, SYSTEM, SAM, SECURITY, NTUSER.DAT, UsrClass.dat)"

    def sniff(self, head: bytes, name: str) -> int:
        ok, ftype, at512 = _sniff_regf(head)
        if not ok:
            return 0
        if ftype in OLD_LOG_TYPES + (NEW_LOG_TYPE,) or at512 in (b"DIRT", b"HvLE"):
            return 30  # a transaction log: HiveLogSource claims it higher
        return 95

    def parse(self, ctx: ParseContext) -> Iterator[pa.Table]:
        path = Path(ctx.fs_path)
        try:
            primary = map_file(path)
        except OSError as exc:
            ctx.warn(f"cannot read: {exc}")
            return
        try:
            yield from self._parse(ctx, path, primary)
        finally:
            _unmap(primary)

    def _parse(self, ctx: ParseContext, path: Path, primary: Any) -> Iterator[pa.Table]:
        bb = parse_base_block(primary)
        if bb is None or not bb.signature_ok:
            ctx.warn("not a registry hive (no regf base block)", "offset=0x0")
            return
        read_path, status, buf = path, "ok", primary
        logs = find_logs(path, ctx.siblings)
        if not bb.checksum_ok:
            ctx.warn("base block checksum mismatch", "offset=0x1fc", partial=False)
        if bb.dirty and logs:
            read_path = _recover(ctx, path, primary, logs) or path
            if read_path is not path:
                status = "recovered"
                buf = map_file(read_path)
        elif bb.dirty:
            ctx.warn(f"hive is dirty (sequence numbers {bb.seq1} != {bb.seq2}) and no "
                     ".LOG1/.LOG2 were supplied; recent changes may be missing; "
                     "collect the hive together with its .LOG1 and .LOG2 files",
                     "offset=0x4", partial=False)
        elif logs:
            ctx.note("hive is clean; transaction logs not needed")
        try:
            yield from self._read(ctx, read_path, buf, bb, status)
        finally:
            if buf is not primary:
                _unmap(buf)

    def _read(self, ctx: ParseContext, read_path: Path, buf: Any, bb: BaseBlock,
              status: str) -> Iterator[pa.Table]:
        for msg, loc in check_structure(buf, parse_base_block(buf) or bb):
            ctx.warn(msg, loc)
        pyf = None
        root: Any = None
        reg_root: Any = None
        errors = []
        try:
            reg_root = open_cells(buf)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"regipy: {type(exc).__name__}: {exc}")
        full = ctx.options.registry == "full"
        # Our cell reader (hivecells) walks faster than libregf's binding
        # (benchmarks/registry_full_load.py) and keeps more of a damaged
        # hive; libregf is the fallback when the root key cannot be parsed.
        if reg_root is None:
            try:
                opened = open_pyregf(read_path)
                if opened:
                    pyf, root = opened
            except Exception as exc:  # noqa: BLE001
                errors.append(f"libregf: {exc}".split(". ")[0])
        if root is None:
            root = reg_root
        if root is None:
            ctx.warn("root key unreadable: " + "; ".join(errors), f"offset=0x{BASE + bb.root_offset:x}")
            return
        try:
            yield from self._rows(ctx, root, reg_root, bb, full, status, len(buf))
        finally:
            if pyf is not None:
                pyf.close()

    def _rows(self, ctx: ParseContext, root: Any, reg_root: Any, bb: BaseBlock, full: bool,
              status: str, size: int) -> Iterator[pa.Table]:
        names: set[str] = set()
        for sk in root.subkeys():
            if isinstance(sk, _Failed) and reg_root is not None and reg_root is not root:
                continue
            if not isinstance(sk, _Failed):
                names.add(sk.name.lower())
        if reg_root is not None and reg_root is not root:
            names |= {sk.name.lower() for sk in reg_root.subkeys() if not isinstance(sk, _Failed)}
        htype = identify_hive(names, bb.file_name)
        mount = mount_point(htype, bb.file_name, ctx.path)
        ctx.note(f"{htype} hive" + (f" (base block name {bb.file_name!r})" if bb.file_name else "")
                 + f", mounted as {mount}")
        host = None
        if htype == "SYSTEM":
            host, cur = system_host(reg_root or root)
            if cur:
                ctx.note(f"current control set ControlSet{cur:03d} (Select\\Current)")
        elif htype in ("SOFTWARE", "SAM", "SECURITY"):
            # Machine hives carry no computer name of their own; hives copied
            # together from one config folder belong to the same machine.
            host = sibling_system_host(ctx.siblings)
            if host:
                ctx.note(f"host {host} from the SYSTEM hive beside it")

        def fallback(rel: list[str], index: int) -> Any:
            """libregf could not read a subkey: take it from our cell reader."""
            node = reg_root
            for seg in rel:
                node = node.subkey(seg)
                if node is None:
                    return None
            for i, sk in enumerate(node.subkeys()):
                if i == index:
                    return None if isinstance(sk, _Failed) else sk
            return None

        mixed = reg_root is not None and reg_root is not root  # libregf walks, cells fill in
        walker = _Walker(ctx, mount, status, fallback if mixed else None)
        walker.host = host
        # A full load needs no declared subtrees (they import every check).
        declared = [] if full else _declared_paths().get(htype) or []
        if full or (not declared and size <= SMALL_HIVE):
            if not full:
                ctx.note("no declared subtrees for this hive type; loaded whole (small hive)")
            yield from walker.walk(root, [])
        elif not declared:
            ctx.note(f"no declared subtrees for a {htype} hive of {size} bytes; root key only "
                     "(use registry=full to load everything)")
            walker.emit(root, walker.mount)
        else:
            found = 0
            nav = reg_root or root
            for spec in declared:
                pattern = spec["path"] if isinstance(spec, dict) else str(spec)
                subtree = spec.get("subtree", True) if isinstance(spec, dict) else True
                hit = False
                for node, rel in _resolve(nav, pattern):
                    hit = True
                    if subtree:
                        yield from walker.walk(node, rel)
                    else:
                        walker.emit(node, walker.full_key(rel))
                found += hit
            ctx.note(f"targeted load: {found} of {len(declared)} declared subtrees present")
            if not found:
                ctx.empty(f"targeted load: none of the {len(declared)} subtrees the checks read "
                          f"from a {htype} hive is in it (registry=full loads every key)")
        walker.settle()
        if walker.suppressed:
            ctx.warn(f"{walker.suppressed} more problem(s) not listed", f"key={mount}")
        ctx.note(f"{walker.keys} keys, {walker.values} values")
        if len(walker.rows):
            yield walker.flush()


@register
class HiveLogSource(Source):
    """A hive's transaction log (.LOG1/.LOG2): read by the hive source, no rows."""

    name = "regf-log"
    kind = "regf-log"
    description = "Registry hive transaction log (.LOG, .LOG1, .LOG2; old DIRT or new HvLE format)"

    def sniff(self, head: bytes, name: str) -> int:
        ok, ftype, at512 = _sniff_regf(head)
        if ok and (ftype in OLD_LOG_TYPES + (NEW_LOG_TYPE,) or at512 in (b"DIRT", b"HvLE")):
            return 97
        if not head and re.search(r"\.log[12]?$", name, re.I):
            return 10  # an empty .LOG2 beside a hive: nothing to read, but ours
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[pa.Table]:
        path = Path(ctx.fs_path)
        hive_name = re.sub(r"\.log[12]?$", "", path.name, flags=re.I)
        hive = next((s for s in ctx.siblings if s.name.lower() == hive_name.lower()), None)
        try:
            data = map_file(path)
        except OSError as exc:
            ctx.warn(f"cannot read: {exc}")
            return
        try:
            info = classify_log(path.name, data)
        finally:
            _unmap(data)
        what = f"{info.fmt} format" if info.fmt else f"not usable: {info.reason}"
        if hive is not None:
            ctx.note(f"transaction log of {hive.name} ({what})")
        else:
            ctx.note(f"transaction log ({what}); its hive {hive_name!r} is not in the case")
        ctx.empty("transaction log: applied to its hive when that is dirty; no rows of its own")
        yield from ()  # a log yields no rows of its own
