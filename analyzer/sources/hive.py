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
  (DESIGN.md); :func:`replay_logs` implements the rules above itself, on a
  copy in the work directory — the input is never modified.
* regipy's value reader reads ``data_size`` bytes even for data stored inline
  in the value cell (size with the top bit set = up to 2 GiB: "to the end of
  the file"), which is what makes its full walk take minutes. We use regipy
  for key navigation and read value cells ourselves (bounded, per value, so
  one bad value does not lose the key). For ``--registry full`` libregf
  (``pyregf``, optional) walks ~60x faster; where it cannot read a subkey, the
  regipy path takes over for that subtree.
* A damaged hive is read key by key: a bad subkey list or value list costs
  that key's children or values (a warning with the key), not the hive.
"""
from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from .. import safeio
from ..registry import decode_value, key_locator, segment_match
from ..table import conform_arrow
from . import register
from .base import ParseContext, Source

try:  # optional fast walker for --registry full
    import pyregf  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the environment
    pyregf = None

BASE = 4096  # hive bins start after the base block
FILETIME_EPOCH = 116444736000000000  # 1970-01-01 in 100 ns ticks since 1601
#: Key timestamps outside this window are damage, not history (ts = None).
TS_MIN, TS_MAX = FILETIME_EPOCH + 10 * 365 * 86400 * 10**7, FILETIME_EPOCH + 130 * 365 * 86400 * 10**7
BIG_DATA_SEGMENT = 16344
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
# Readers: one node interface over regipy and libregf


class _Failed:
    """A subkey that could not be read (its index and the error)."""

    def __init__(self, index: int, error: BaseException) -> None:
        self.index, self.error = index, error


def _value_data(buf: bytes, dsize: int, doff: int, minor: int) -> bytes:
    if dsize & 0x80000000:  # data inline in the offset field
        n = dsize & 0x7FFFFFFF
        if n > 4:
            raise ValueError(f"inline data size {n} > 4")
        return struct.pack("<I", doff)[:n]
    if dsize == 0:
        return b""
    cell = BASE + doff
    if doff == 0xFFFFFFFF or cell + 4 > len(buf):
        raise ValueError(f"value data offset 0x{doff:x} outside the hive")
    start = cell + 4
    if dsize > BIG_DATA_SEGMENT and minor >= 4 and buf[start:start + 2] == b"db":
        nseg, seglist = struct.unpack_from("<HI", buf, start + 2)
        out = bytearray()
        remaining = dsize
        so = BASE + seglist + 4
        for s in range(nseg):
            if remaining <= 0:
                break
            (seg,) = struct.unpack_from("<I", buf, so + 4 * s)
            sc = BASE + seg + 4
            piece = buf[sc:sc + min(BIG_DATA_SEGMENT, remaining)]
            if not piece:
                raise ValueError(f"big-data segment at 0x{seg:x} outside the hive")
            out += piece
            remaining -= len(piece)
        if remaining > 0:
            raise ValueError(f"big data truncated ({dsize - remaining} of {dsize} bytes)")
        return bytes(out)
    if start + dsize > len(buf):
        raise ValueError(f"value data at 0x{doff:x} runs past the end of the hive")
    return bytes(buf[start:start + dsize])


def _subkey_offsets(buf: bytes, list_off: int, depth: int = 0) -> Iterator[int | BaseException]:
    """Key-cell offsets of a subkey list (lf/lh/li, or an ri index of them)."""
    o = BASE + list_off + 4
    if o + 4 > len(buf):
        yield ValueError(f"subkey list offset 0x{list_off:x} outside the hive")
        return
    sig = bytes(buf[o:o + 2])
    (n,) = struct.unpack_from("<H", buf, o + 2)
    width = {b"lf": 8, b"lh": 8, b"li": 4, b"ri": 4}.get(sig)
    if width is None or (sig == b"ri" and depth):
        yield ValueError(f"bad subkey list signature {sig!r} at offset 0x{list_off:x}")
        return
    if o + 4 + width * n > len(buf):
        yield ValueError(f"subkey list at offset 0x{list_off:x} runs past the end of the hive")
        return
    for i in range(n):
        (off,) = struct.unpack_from("<I", buf, o + 4 + width * i)
        if sig == b"ri":
            yield from _subkey_offsets(buf, off, depth + 1)
        else:
            yield off


class RegipyNode:
    """A key parsed by regipy's NKRecord. Subkey lists and value cells are
    read here (bounded, signature-checked, one failure at a time): regipy's
    own iterators either stop at the first bad cell or read to the end of
    the file."""

    def __init__(self, nk: Any, buf: bytes, minor: int, stream: Any, offset: int | None) -> None:
        self.nk, self.buf, self.minor, self.stream = nk, buf, minor, stream
        self.name: str = nk.name
        self.ts: int = nk.header.last_modified
        self.nsubkeys: int = nk.header.subkey_count
        self.nvalues: int = nk.header.values_count
        self.ident = ("r", offset)

    def values(self) -> Iterator[tuple[str, int, bytes] | BaseException]:
        buf = self.buf
        lst = BASE + self.nk.header.values_list_offset + 4
        if self.nvalues and lst + 4 * self.nvalues > len(buf):
            yield ValueError(f"value list at offset 0x{self.nk.header.values_list_offset:x} outside the hive")
            return
        for j in range(self.nvalues):
            try:
                (vrel,) = struct.unpack_from("<I", buf, lst + 4 * j)
                o = BASE + vrel + 4
                if buf[o:o + 2] != b"vk":
                    raise ValueError(f"no value cell (vk) at offset 0x{vrel:x}")
                nlen, dsize, doff, dtype, flags = struct.unpack_from("<HIIIH", buf, o + 2)
                raw_name = buf[o + 20:o + 20 + nlen]
                name = raw_name.decode("latin-1") if flags & 1 else raw_name.decode("utf-16-le", errors="replace")
                yield name, dtype, _value_data(buf, dsize, doff, self.minor)
            except Exception as exc:  # noqa: BLE001 - one bad value, not the key
                yield exc

    def subkeys(self) -> Iterator[RegipyNode | _Failed]:
        if not self.nsubkeys:
            return
        from regipy.registry import Cell, NKRecord
        for i, off in enumerate(_subkey_offsets(self.buf, self.nk.header.subkeys_list_offset)):
            if isinstance(off, BaseException):
                yield _Failed(i, off)
                continue
            cell = BASE + off + 4
            if self.buf[cell:cell + 2] != b"nk":
                yield _Failed(i, ValueError(f"no key cell (nk) at offset 0x{off:x}"))
                continue
            try:
                nk = NKRecord(Cell(cell_type="nk", offset=cell + 2, size=0), self.stream)
            except Exception as exc:  # noqa: BLE001
                yield _Failed(i, exc)
                continue
            yield RegipyNode(nk, self.buf, self.minor, self.stream, off)

    def subkey(self, name: str) -> RegipyNode | None:
        low = name.lower()
        for sk in self.subkeys():
            if not isinstance(sk, _Failed) and sk.name.lower() == low:
                return sk
        return None


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


def open_regipy(path: Path, buf: bytes) -> RegipyNode:
    from regipy.registry import RegistryHive
    hive = RegistryHive(str(path))
    bb = parse_base_block(buf)
    return RegipyNode(hive.root, buf, bb.minor if bb else 5, hive._stream, None)


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
    """Column lists for registry rows, turned into Arrow batches (a dict per
    row costs more than the walk itself on a full SYSTEM hive)."""

    COLS = ("ts", "kind", "key", "value_name", "value_type", "value", "data", "locator", "parse_status")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.c: dict[str, list[Any]] = {c: [] for c in self.COLS}

    def __len__(self) -> int:
        return len(self.c["kind"])

    def add(self, ts: int | None, kind: str, key: str, vname: str | None, vtype: str | None,
            value: str | None, data: str | None, status: str) -> None:
        c = self.c
        c["ts"].append(ts)
        c["kind"].append(kind)
        c["key"].append(key)
        c["value_name"].append(vname)
        c["value_type"].append(vtype)
        c["value"].append(value)
        c["data"].append(data)
        c["locator"].append(key_locator(key, vname))
        c["parse_status"].append(status)

    def table(self, source: str, path: str, host: str | None) -> pa.Table:
        n = len(self)
        ts = pa.array(self.c["ts"], type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        cols: dict[str, Any] = {
            "ts": ts,
            "ts_source": pa.array(["utc" if t is not None else None for t in self.c["ts"]], pa.string()),
            "host": pa.array([host] * n, pa.string()),
            "source": pa.array([source] * n, pa.string()),
            "path": pa.array([path] * n, pa.string()),
        }
        for name in self.COLS[1:]:
            cols[name] = pa.array(self.c[name], pa.string())
        return conform_arrow(pa.table(cols))


def _ts_us(ft: int) -> int | None:
    if ft < TS_MIN or ft > TS_MAX:
        return None
    return (ft - FILETIME_EPOCH) // 10


def _json(obj: dict[str, Any]) -> str:
    import json
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

    def warn(self, msg: str, key: str) -> None:
        if self.n_warn < MAX_WARNINGS:
            self.ctx.warn(msg, f"key={key}")
        else:
            self.suppressed += 1
            self.ctx.partial = True
        self.n_warn += 1

    def full_key(self, rel: list[str]) -> str:
        return "\\".join([self.mount, *rel]) if rel else self.mount

    def emit(self, node: Any, rel: list[str]) -> str:
        key = self.full_key(rel)
        low = key.lower()
        if low in self.done:
            return key
        self.done.add(low)
        status = self.status
        vals: list[tuple[str, int, bytes]] = []
        for item in node.values():
            if isinstance(item, BaseException):
                self.warn(f"value unreadable: {item}", key)
                status = "partial"
            else:
                vals.append(item)
        self.rows.add(_ts_us(node.ts), "registry_key", key, None, None, None,
                      _json({"subkeys": node.nsubkeys, "values": node.nvalues}), status)
        self.keys += 1
        ts = _ts_us(node.ts)
        for name, code, raw in vals:
            tname, text, extra = decode_value(code, raw)
            self.rows.add(ts, "registry_value", key, name, tname, text,
                          _json(extra) if extra else None, status)
            self.values += 1
        return key

    def walk(self, node: Any, rel: list[str], depth: int = 0) -> Iterator[pa.Table]:
        """The key and its whole subtree (iterative per level: deep hives
        must not hit Python's recursion limit)."""
        stack: list[tuple[Any, list[str]]] = [(node, rel)]
        while stack:
            node, rel = stack.pop()
            if node.ident in self.visited:
                self.warn("subkey cycle (a key listed as its own descendant); not followed",
                          self.full_key(rel))
                continue
            self.visited.add(node.ident)
            key = self.emit(node, rel)
            if len(rel) >= MAX_DEPTH:
                self.warn(f"deeper than {MAX_DEPTH} levels; not followed", key)
                continue
            children = []
            failed = False
            for sk in node.subkeys():
                if isinstance(sk, _Failed):
                    alt = self.fallback(rel, sk.index) if self.fallback else None
                    if alt is not None:
                        children.append((alt, [*rel, alt.name]))
                        continue
                    self.warn(f"subkey #{sk.index} unreadable: {str(sk.error).split('. ')[0]}", key)
                    failed = True
                    continue
                children.append((sk, [*rel, sk.name]))
            if not failed and len(children) < node.nsubkeys:
                self.warn(f"only {len(children)} of {node.nsubkeys} subkeys listed", key)
            stack.extend(reversed(children))
            if len(self.rows) >= self.BATCH:
                yield self.flush()

    def flush(self) -> pa.Table:
        tab = self.rows.table(HiveSource.name, self.ctx.path, self.host)
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
    SYSTEM hive with a name is there."""
    from regipy.registry import RegistryHive

    found: set[str] = set()
    for sib in siblings:
        try:
            with safeio.open_regular(sib) as fh:
                if fh.read(4) != b"regf":
                    continue
            hive = RegistryHive(str(sib))
            cur = next((v.value for v in hive.get_key("\\Select").iter_values()
                        if v.name.lower() == "current"), None)
            key = hive.get_key(f"\\ControlSet{int(cur):03d}\\Control\\ComputerName\\ComputerName")
            name = next((v.value for v in key.iter_values() if v.name.lower() == "computername"), None)
        except Exception:  # noqa: BLE001 - not a readable SYSTEM hive: no opinion
            continue
        if isinstance(name, str) and name.strip():
            found.add(name.strip())
    return found.pop() if len(found) == 1 else None


# ---------------------------------------------------------------------------
# Sources


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
            primary = path.read_bytes()
        except OSError as exc:
            ctx.warn(f"cannot read: {exc}")
            return
        bb = parse_base_block(primary)
        if bb is None or not bb.signature_ok:
            ctx.warn("not a registry hive (no regf base block)", "offset=0x0")
            return
        read_path, status = path, "ok"
        logs = find_logs(path, ctx.siblings)
        if not bb.checksum_ok:
            ctx.warn("base block checksum mismatch", "offset=0x1fc", partial=False)
        if bb.dirty:
            if logs:
                infos = []
                for lp in logs:
                    try:
                        infos.append(classify_log(lp.name, lp.read_bytes()))
                    except OSError as exc:
                        ctx.warn(f"cannot read transaction log {lp.name}: {exc}")
                res = replay_logs(primary, infos)
                if res.data is not None:
                    work = Path(ctx.work_dir) if ctx.work_dir else path.parent
                    work.mkdir(parents=True, exist_ok=True)
                    read_path = work / f"{path.name}.recovered"
                    read_path.write_bytes(bytes(res.data))
                    primary = bytes(res.data)
                    status = "recovered"
                    ctx.note(f"recovered from transaction logs ({', '.join(res.applied)}: "
                             f"{res.fmt} format, {res.entries} entr{'y' if res.entries == 1 else 'ies'}, "
                             f"{res.pages} page(s))")
                    for m in res.messages:
                        ctx.note(m)
                else:
                    ctx.warn("hive is dirty and its transaction logs could not be applied ("
                             + "; ".join(res.messages) + "); recent changes may be missing",
                             "offset=0x4")
            else:
                ctx.warn(f"hive is dirty (sequence numbers {bb.seq1} != {bb.seq2}) and no "
                         ".LOG1/.LOG2 were supplied; recent changes may be missing; "
                         "collect the hive together with its .LOG1 and .LOG2 files",
                         "offset=0x4", partial=False)
        elif logs:
            ctx.note("hive is clean; transaction logs not needed")

        buf = primary
        for msg, loc in check_structure(buf, parse_base_block(buf) or bb):
            ctx.warn(msg, loc)
        pyf = None
        root: Any = None
        reg_root: Any = None
        errors = []
        try:
            reg_root = open_regipy(read_path, buf)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"regipy: {type(exc).__name__}: {exc}")
        full = ctx.options.registry == "full"
        # Our regipy-based walker (own subkey-list and value-cell reading) is
        # as fast as libregf on a full walk (benchmarks/registry_full_load.py)
        # and keeps more of a damaged hive; libregf is the fallback when
        # regipy cannot even parse the root key.
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
            yield from self._rows(ctx, root, reg_root, bb, full, status, len(primary))
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
            """libregf could not read a subkey: take it from regipy."""
            if reg_root is None or reg_root is root:
                return None
            node = reg_root
            for seg in rel:
                node = node.subkey(seg)
                if node is None:
                    return None
            for i, sk in enumerate(node.subkeys()):
                if i == index:
                    return None if isinstance(sk, _Failed) else sk
            return None

        walker = _Walker(ctx, mount, status, fallback)
        walker.host = host
        declared = _declared_paths().get(htype) or []
        if full or (not declared and size <= SMALL_HIVE):
            if not full:
                ctx.note("no declared subtrees for this hive type; loaded whole (small hive)")
            yield from walker.walk(root, [])
        elif not declared:
            ctx.note(f"no declared subtrees for a {htype} hive of {size} bytes; root key only "
                     "(use registry=full to load everything)")
            walker.emit(root, [])
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
                        walker.emit(node, rel)
                found += hit
            ctx.note(f"targeted load: {found} of {len(declared)} declared subtrees present")
            if not found:
                ctx.empty(f"targeted load: none of the {len(declared)} subtrees the checks read "
                          f"from a {htype} hive is in it (registry=full loads every key)")
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
            info = classify_log(path.name, path.read_bytes())
        except OSError as exc:
            ctx.warn(f"cannot read: {exc}")
            return
        what = f"{info.fmt} format" if info.fmt else f"not usable: {info.reason}"
        if hive is not None:
            ctx.note(f"transaction log of {hive.name} ({what})")
        else:
            ctx.note(f"transaction log ({what}); its hive {hive_name!r} is not in the case")
        ctx.empty("transaction log: applied to its hive when that is dirty; no rows of its own")
        yield from ()  # a log yields no rows of its own
