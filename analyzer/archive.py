"""Safe extraction of case archives (zip, tar, tar.gz/bz2/xz, gz, 7z, cab).

Customer archives are untrusted input. Nothing is ever written outside the
private work directory: member names that are absolute, carry a drive letter,
climb with ``..`` or are links are rejected with a reason, and limits on
total size, entry count, compression ratio and nesting depth stop archive
bombs. Sizes are enforced while writing, not only from headers, because
headers lie; for compressed streams (tar.gz, .xz, ...) the ratio is measured
against the compressed bytes actually consumed from the file. Cabinets are
inflated in memory by cabarchive, so their sizes are bounded from the
CFFOLDER/CFDATA/CFFILE headers before anything is inflated.

Every member the archive names is reported exactly once, extracted or
rejected with a reason, also when the archive breaks half-way: members read
before the break stay extracted and the break is ``Extraction.error``.
"""
from __future__ import annotations

import bisect
import bz2
import gzip
import hashlib
import io
import lzma
import mmap
import numbers
import os
import re
import shutil
import stat
import struct
import tarfile
import tempfile
import zipfile
import zlib
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import safeio

CHUNK = 1 << 20


@dataclass
class Limits:
    """Case limits (extraction and per-file parse budgets); defaults suit a
    support case of a few GB at most.

    Every limit must be a positive number; that is checked on construction
    and on assignment (``limits.max_depth = 0`` raises ValueError).
    """

    max_total_bytes: int = 8 << 30          # all extracted bytes of one case
    max_entries: int = 200_000              # all extracted members of one case
    max_ratio: float = 250.0                # uncompressed/compressed, per member and per stream
    max_depth: int = 5                      # archives inside archives
    #: Members smaller than this are exempt from the ratio limit (a 1 KB
    #: file of spaces compresses 100x and is harmless).
    ratio_min_bytes: int = 1 << 20
    #: Per-file parse budget: wall time, and growth of resident memory; a
    #: file over either is ``failed`` with the figure and the case goes on.
    file_seconds: float = 600.0
    file_memory_bytes: int = 1 << 30
    #: Longest text line handed to a parser (characters); longer lines are
    #: skipped with a warning naming the line and offset.
    max_line_chars: int = 16 << 20

    def __setattr__(self, name: str, value) -> None:
        if name in _LIMIT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"Limits.{name} must be a number, not {value!r}")
            if not value > 0:  # also rejects NaN
                raise ValueError(f"Limits.{name} must be positive, not {value!r}")
        super().__setattr__(name, value)


_LIMIT_FIELDS = ("max_total_bytes", "max_entries", "max_ratio", "max_depth", "ratio_min_bytes",
                 "file_seconds", "file_memory_bytes", "max_line_chars")


@dataclass
class Budget:
    """What is left of the case-wide limits while extracting."""

    limits: Limits
    bytes_used: int = 0
    entries_used: int = 0


@dataclass
class Member:
    """One archive member, extracted or rejected."""

    #: Extracted: the normalized relative name (as on disk). Rejected: the
    #: name as stored, never normalized (``a/b/../c`` stays so), with
    #: `` (copy N)`` appended when it would otherwise show like another member.
    name: str
    status: str                    # "extracted" | "rejected" | "skipped"
    reason: str | None = None
    size: int | None = None        # declared uncompressed size (written size if extracted)
    fs_path: Path | None = None
    #: Extracted: the normalized name to show, when the name on disk had to
    #: be shortened (a component longer than the file system allows).
    shown: str | None = None


@dataclass
class Extraction:
    kind: str
    members: list[Member] = field(default_factory=list)
    error: str | None = None
    #: names claimed on disk so far (files and their parent directories)
    _files: set[str] = field(default_factory=set, repr=False, compare=False)
    _dirs: set[str] = field(default_factory=set, repr=False, compare=False)

    def claim(self, rel: str) -> str | None:
        """Reserve ``rel`` for a file; the reason it cannot be, or None."""
        if rel in self._files:
            return "duplicate member name"
        if rel in self._dirs:
            return "name conflicts with a directory of another member"
        parts = rel.split("/")
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if any(p in self._files for p in parents):
            return "name conflicts with another member (a file where a directory is needed)"
        self._files.add(rel)
        self._dirs.update(parents)
        return None

    def release(self, rel: str) -> None:
        """Give back a claim whose member was not written after all."""
        self._files.discard(rel)


class LimitExceeded(Exception):
    pass


class _ReadError(Exception):
    """Reading the member's (decompressed) data failed after ``written`` bytes."""

    def __init__(self, written: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.written = written
        self.cause = cause


ARCHIVE_KINDS = ("zip", "7z", "cab", "tar", "gzip", "bzip2", "xz")

#: what a library raises for broken member data (not our own limits)
_DATA_ERRORS = (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError,
                zlib.error, ValueError, struct.error)


def detect_archive(head: bytes) -> str | None:
    """Archive kind from magic bytes, or None."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if head[:4] == b"MSCF":
        return "cab"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


_DRIVE = re.compile(r"^[A-Za-z]:")
#: Longest file name component (bytes) Linux file systems accept.
NAME_MAX = 255
#: Longest component Windows writes (UTF-16 units); a member name that
#: Windows could have produced is accepted however many bytes it takes.
WIN_NAME_MAX = 255




def safe_member_name(name: str) -> tuple[str | None, str | None]:
    """(normalized relative name, None) or (None, reason to reject)."""
    raw = name.replace("\\", "/")
    if not raw or raw.strip("/") == "":
        return None, "empty member name"
    if "\x00" in raw:
        return None, "NUL byte in member name"
    if raw.startswith("/"):
        return None, "absolute path"
    if _DRIVE.match(raw):
        return None, "drive letter in path"
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None, "path traversal ('..')"
    if not parts:
        return None, "empty member name"
    longest = max(parts, key=len)
    if len(longest) > WIN_NAME_MAX:
        return None, (f"a name component of {len(longest)} characters (Windows allows "
                      f"{WIN_NAME_MAX})")
    return "/".join(parts), None


def disk_name(rel: str) -> str:
    """``rel`` with every component that is too long for the file system
    (Windows allows 255 UTF-16 units, i.e. up to 765 UTF-8 bytes) shortened
    to a unique name that keeps its start and extension; the member keeps
    its real name for display (:attr:`Member.shown`)."""
    parts = rel.split("/")
    if all(len(os.fsencode(p)) <= NAME_MAX for p in parts):
        return rel
    out = []
    for p in parts:
        raw = os.fsencode(p)
        if len(raw) <= NAME_MAX:
            out.append(p)
            continue
        stem, dot, ext = p.rpartition(".")
        ext = f".{ext}" if dot and 0 < len(ext.encode()) <= 16 else ""
        tag = "~" + hashlib.sha256(raw).hexdigest()[:12]
        head = os.fsencode(p[: len(p) - len(ext)])[: NAME_MAX - len(tag) - len(ext.encode())]
        out.append(head.decode("utf-8", "ignore") + tag + ext)
    return "/".join(out)


def _describe(exc: BaseException, *hide: Path) -> str:
    """``Type: message`` of a library error, never empty, without our paths.

    OSError text names the file (``File exists: '/tmp/exa-.../x1/a'``); the
    work directory is private, so only the strerror part is kept, and any
    other mention of a path in ``hide`` is replaced by ``<work>``.
    """
    if isinstance(exc, _ReadError):
        exc = exc.cause
    if isinstance(exc, OSError) and exc.strerror:
        msg = exc.strerror
    else:
        msg = str(exc)
    for p in hide:
        for form in {str(p), str(p.resolve()) if p.exists() else str(p)}:
            if form and form not in ("/", "."):
                msg = msg.replace(form, "<work>")
    name = type(exc).__name__
    return f"{name}: {msg}" if msg else name


def _target(dest: Path, rel: str) -> Path:
    target = (dest / rel).resolve()
    root = dest.resolve()
    if root != target and root not in target.parents:
        raise LimitExceeded("resolves outside the work directory")
    return target


def _copy_limited(src: IO[bytes], dst_path: Path, declared: int | None,
                  compressed: int | Callable[[], int] | None, budget: Budget,
                  keep_partial: bool = False) -> int:
    """Stream src to dst_path, enforcing the ratio and the case-wide budget.

    ``compressed`` is the member's compressed size, or a callable giving the
    compressed bytes consumed so far (streams whose size is only known as
    they are read). A read error raises ``_ReadError``; with
    ``keep_partial`` the bytes written before it stay on disk (and count
    against the budget), otherwise the file is removed.
    """
    lim = budget.limits
    written = 0
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    keep = False
    read = src.read1 if keep_partial and hasattr(src, "read1") else src.read
    try:
        with open(dst_path, "xb") as out:
            while True:
                try:
                    # (read1 for keep_partial: one decompressor step per
                    # call, so a read error loses nothing already inflated)
                    buf = read(CHUNK)
                except _DATA_ERRORS as exc:
                    keep = keep_partial and written > 0
                    raise _ReadError(written, exc) from exc
                if not buf:
                    break
                written += len(buf)
                if budget.bytes_used + written > lim.max_total_bytes:
                    raise LimitExceeded(
                        f"case size limit of {lim.max_total_bytes} bytes exceeded")
                comp = compressed() if callable(compressed) else compressed
                if (comp is not None and written > lim.ratio_min_bytes
                        and written / max(comp, 1) > lim.max_ratio):
                    raise LimitExceeded(
                        f"compression ratio above {lim.max_ratio:g}:1 "
                        f"({written} bytes from {comp} so far)")
                if declared is not None and written > declared:
                    raise LimitExceeded(
                        f"member is larger than its declared size {declared}")
                out.write(buf)
    except BaseException:
        if keep:
            budget.bytes_used += written
        else:
            dst_path.unlink(missing_ok=True)
        raise
    budget.bytes_used += written
    return written


def _pre_checks(rel: str | None, reason: str | None, size: int | None,
                compressed: int | None, budget: Budget) -> str | None:
    if reason:
        return reason
    lim = budget.limits
    if budget.entries_used >= lim.max_entries:
        return f"entry count limit of {lim.max_entries} reached"
    if size is not None and budget.bytes_used + size > lim.max_total_bytes:
        return f"case size limit of {lim.max_total_bytes} bytes would be exceeded ({size} bytes declared)"
    if (size is not None and compressed and size > lim.ratio_min_bytes
            and size / max(compressed, 1) > lim.max_ratio):
        return f"compression ratio {size / max(compressed, 1):.0f}:1 above limit {lim.max_ratio:g}:1"
    return None


def _extract_stream(ex: Extraction, name: str, size: int | None,
                    compressed: int | Callable[[], int] | None,
                    opener, dest: Path, budget: Budget, keep_partial: bool = False) -> None:
    shown, reason = safe_member_name(name)
    rel = disk_name(shown) if shown else None
    reason = _pre_checks(rel, reason, size,
                         None if callable(compressed) else compressed, budget)
    if not reason:
        assert rel is not None
        reason = ex.claim(rel)
    if reason:
        ex.members.append(Member(name, "rejected", reason, size))
        return
    assert rel is not None
    try:
        target = _target(dest, rel)
        if target.exists() or target.is_symlink():
            ex.members.append(Member(name, "rejected", "duplicate member name", size))
            return
        with opener() as src:
            written = _copy_limited(src, target, size, compressed, budget, keep_partial)
    except LimitExceeded as exc:
        ex.release(rel)
        ex.members.append(Member(name, "rejected", str(exc), size))
        return
    except _ReadError as exc:
        if target.is_file():  # keep_partial: the readable prefix is the member
            what = "truncated" if isinstance(exc.cause, EOFError) else "corrupt"
            ex.error = (f"{what} compressed stream after {exc.written} bytes "
                        f"({_describe(exc, dest.parent)})")
            budget.entries_used += 1
            ex.members.append(Member(rel, "extracted", f"{what}: only the first {exc.written} "
                                     "bytes could be read", exc.written, target, shown))
            return
        ex.release(rel)
        ex.members.append(Member(name, "rejected",
                                 f"cannot extract: {_describe(exc, dest.parent)}", size))
        return
    except _DATA_ERRORS as exc:
        ex.release(rel)
        ex.members.append(Member(name, "rejected",
                                 f"cannot extract: {_describe(exc, dest.parent)}", size))
        return
    budget.entries_used += 1
    ex.members.append(Member(rel, "extracted", None, written, target, shown))


def _zip(path: Path, dest: Path, budget: Budget, ex: Extraction) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        # No (readable) central directory: an upload cut short. The local
        # headers still describe every member written before the cut.
        _zip_local(path, dest, budget, ex, str(exc))
        return
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                ex.members.append(Member(info.filename, "rejected", "symbolic link", info.file_size))
                continue
            if info.flag_bits & 0x1:
                ex.members.append(Member(info.filename, "rejected", "encrypted member (password needed)",
                                         info.file_size))
                continue
            _extract_stream(ex, info.filename, info.file_size, info.compress_size,
                            lambda info=info: zf.open(info), dest, budget)


_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_ZIP_METHODS = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma"}


class _LocalMember(io.RawIOBase):
    """The data of one zip member read from its local header onwards:
    stored or inflated, its CRC checked at the end. Input that ends before
    the member does raises EOFError after the last byte that could be
    produced (the caller keeps that prefix as a truncated member)."""

    def __init__(self, fh: IO[bytes], start: int, csize: int | None, method: int,
                 crc: int | None, end_of_file: int) -> None:
        self.fh, self.pos, self.method, self.crc = fh, start, method, crc
        self.stop = end_of_file if csize is None else min(start + csize, end_of_file)
        self.cut = csize is not None and start + csize > end_of_file
        self.start = start
        self.value = 0
        self.done = False
        self.dec = (zlib.decompressobj(-15) if method == 8 else bz2.BZ2Decompressor()
                    if method == 12 else None)

    def readable(self) -> bool:
        return True

    @property
    def consumed(self) -> int:
        """Compressed bytes used so far (ratio checks; the next header)."""
        if self.dec is not None and self.dec.eof:
            return self.pos - self.start - len(self.dec.unused_data)
        return self.pos - self.start

    def _raw(self, n: int) -> bytes:
        self.fh.seek(self.pos)
        data = self.fh.read(min(n, self.stop - self.pos))
        self.pos += len(data)
        return data

    def read(self, n: int = -1) -> bytes:
        n = CHUNK if n is None or n < 0 else n
        while not self.done:
            if self.dec is None:
                out = self._raw(n)
            elif self.dec.eof:
                out = b""
            else:
                raw = self._raw(min(n, 1 << 16))
                out = self.dec.decompress(raw) if raw else b""
                if not raw and not self.dec.eof:
                    raise EOFError(f"compressed data ends at offset {self.pos} (file cut)")
            if out:
                self.value = zlib.crc32(out, self.value)
                return out
            if self.dec is None or self.dec.eof or self.pos >= self.stop:
                self._finish()
        return b""

    def _finish(self) -> None:
        self.done = True
        if self.cut:
            raise EOFError(f"member data ends at offset {self.pos} (file cut)")
        if self.dec is not None and not self.dec.eof:
            raise EOFError(f"compressed data ends at offset {self.pos} (file cut)")
        if self.crc is not None and self.value != self.crc:
            raise zipfile.BadZipFile(f"CRC mismatch (0x{self.value:08x}, header says 0x{self.crc:08x})")


def _local_header(fh: IO[bytes], off: int, size: int) -> tuple | None:
    """(name, flags, method, compressed size or None, crc or None, data
    offset) of the local header at ``off``, or None when there is none.
    Size and CRC are None when a data descriptor follows the data (flag
    bit 3) and the header leaves them zero."""
    if off + _LOCAL.size > size:
        return None
    fh.seek(off)
    (sig, _ver, flags, method, _t, _d, crc, csize, _usize, nlen,
     xlen) = _LOCAL.unpack(fh.read(_LOCAL.size))
    if sig != b"PK\x03\x04":
        return None
    name_raw = fh.read(nlen)
    extra = fh.read(xlen)
    name = name_raw.decode("utf-8" if flags & 0x800 else "cp437", "replace")
    if csize == 0xFFFFFFFF:  # zip64: sizes in extra field 0x0001
        i = 0
        while i + 4 <= len(extra):
            tag, ln = struct.unpack_from("<HH", extra, i)
            if tag == 1 and ln >= 16:
                _u, csize = struct.unpack_from("<QQ", extra, i + 4)
            i += 4 + ln
    descriptor = bool(flags & 0x8)
    return (name, flags, method, None if descriptor and not csize else csize,
            None if descriptor and not crc else crc, off + _LOCAL.size + nlen + xlen)


def _zip_local(path: Path, dest: Path, budget: Budget, ex: Extraction, why: str) -> None:
    """Members of a zip without a central directory, from the local headers.

    Members complete before the cut are extracted (CRC checked); the one the
    cut runs through keeps the prefix that could be read and is reported as
    truncated; a member whose end cannot be found stops the walk.
    """
    size = path.stat().st_size
    notes = [f"no central directory ({why}); members read from their local headers"]
    off: int | None = 0
    with open(path, "rb") as fh:
        while off is not None:
            item = _local_header(fh, off, size)
            if item is None:
                break
            nxt = _zip_local_member(fh, size, ex, dest, budget, item)
            off = nxt if nxt is not None and nxt > off else None
    if ex.error:
        notes.append(ex.error)
    ex.error = "; ".join(notes)


def _zip_local_member(fh: IO[bytes], size: int, ex: Extraction, dest: Path, budget: Budget,
                      item: tuple) -> int | None:
    """Extract one member found by its local header; where the next header
    is, or None when that cannot be known."""
    name, flags, method, csize, crc, data = item
    if name.endswith("/"):
        return data + (csize or 0)
    reason = None
    if flags & 0x1:
        reason = "encrypted member (password needed)"
    elif method not in _ZIP_METHODS or method == 14:
        reason = f"compression method {method} not supported without a central directory"
    elif csize is None and method == 0:
        reason = "stored member with a data descriptor: its length is unknown without a central directory"
    if reason:
        ex.members.append(Member(name, "rejected", reason, None))
        return None if csize is None else data + csize
    readers: list[_LocalMember] = []

    @contextmanager
    def opener():
        r = _LocalMember(fh, data, csize, method, crc, size)
        readers.append(r)
        yield r

    _extract_stream(ex, name, None, lambda: readers[-1].consumed if readers else 0,
                    opener, dest, budget, keep_partial=True)
    if not readers:  # rejected before reading (name, limits): skip its data
        return None if csize is None else data + csize
    if readers[-1].cut or not readers[-1].done:
        return None
    end = data + readers[-1].consumed
    if flags & 0x8:  # data descriptor: optional signature, crc, sizes
        fh.seek(end)
        end += 16 if fh.read(4) == b"PK\x07\x08" else 12
    return end


class _CountingReader(io.RawIOBase):
    """The raw (compressed) file, counting the bytes handed to the decompressor."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self.fh.readinto(b) or 0
        self.count += n
        return n

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        return self.fh.seek(pos, whence)

    def tell(self) -> int:
        return self.fh.tell()


def _decompressor(kind: str, raw: IO[bytes]):
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind == "bzip2":
        return bz2.BZ2File(raw, "rb")
    return lzma.LZMAFile(raw, "rb")


class _RatioGuard:
    """Decompressed side of a compressed tar, for tarfile to read.

    Every read (member data, headers, and the skipping tarfile does between
    members) is done in CHUNK pieces and checked: once more than
    ``ratio_min_bytes`` came out, output/consumed-input above ``max_ratio``
    raises LimitExceeded and sets ``tripped``.
    """

    def __init__(self, inner, counter: _CountingReader, limits: Limits) -> None:
        self.inner = inner
        self.counter = counter
        self.limits = limits
        self.tripped: str | None = None

    def _check(self) -> None:
        if self.tripped:
            raise LimitExceeded(self.tripped)
        out, consumed = self.inner.tell(), max(self.counter.count, 1)
        if out > self.limits.ratio_min_bytes and out / consumed > self.limits.max_ratio:
            self.tripped = (f"compression ratio above {self.limits.max_ratio:g}:1 "
                            f"({out} bytes from {consumed} compressed bytes of the archive)")
            raise LimitExceeded(self.tripped)

    def read(self, n: int = -1) -> bytes:
        self._check()
        if 0 <= n <= CHUNK:
            data = self.inner.read(n)
            self._check()
            return data
        parts = []
        left = n
        while left != 0:
            piece = self.inner.read(CHUNK if left < 0 else min(CHUNK, left))
            self._check()
            if not piece:
                break
            parts.append(piece)
            if left > 0:
                left -= len(piece)
        return b"".join(parts)

    def seek(self, pos: int, whence: int = 0) -> int:
        here = self.inner.tell()
        if whence == 1:
            pos, whence = here + pos, 0
        if whence == 0 and pos > here:
            while self.inner.tell() < pos:  # skip forward through read(): checked
                if not self.read(min(CHUNK, pos - self.inner.tell())):
                    break
            return self.inner.tell()
        return self.inner.seek(pos, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def close(self) -> None:
        pass


def _tar(path: Path, dest: Path, budget: Budget, ex: Extraction, codec: str | None = None) -> None:
    """A plain tar, or (codec) one inside a gzip/bzip2/xz stream."""
    with open(path, "rb") as raw:
        guard = None
        if codec:
            counter = _CountingReader(raw)
            inner = _decompressor(codec, counter)
            guard = _RatioGuard(inner, counter, budget.limits)
            fileobj = guard
        else:
            inner = None
            fileobj = raw
        try:
            with tarfile.open(fileobj=fileobj, mode="r:") as tf:
                for info in tf:
                    if info.isdir():
                        continue
                    if info.issym() or info.islnk():
                        ex.members.append(Member(
                            info.name, "rejected",
                            f"{'symbolic' if info.issym() else 'hard'} link to {info.linkname!r}",
                            info.size))
                        continue
                    if not info.isfile():
                        ex.members.append(Member(info.name, "rejected",
                                                 "special file (device, FIFO)", info.size))
                        continue
                    # tar members are stored uncompressed; for a compressed tar
                    # the guard checks the whole stream and the member's own
                    # ratio is its output over the compressed bytes it consumed.
                    compressed = None
                    if guard is not None:
                        start = guard.counter.count
                        compressed = (lambda start=start: guard.counter.count - start)
                    _extract_stream(ex, info.name, info.size, compressed,
                                    lambda info=info: tf.extractfile(info), dest, budget)
                    if guard is not None and guard.tripped:
                        break
        except LimitExceeded:
            if guard is None or not guard.tripped:
                raise
        finally:
            if inner is not None:
                inner.close()
        if guard is not None and guard.tripped:
            ex.error = f"stopped reading the archive, later members not read: {guard.tripped}"


def _single_stream(kind: str, path: Path, dest: Path, budget: Budget, ex: Extraction) -> None:
    """gzip / bzip2 / xz: a tar inside, or one compressed file.

    A truncated or corrupt stream keeps the prefix that could be read as
    the extracted member, and says so in ``ex.error``.
    """
    if _is_compressed_tar(path, kind):
        ex.kind = f"tar+{kind}"
        _tar(path, dest, budget, ex, codec=kind)
        return
    stem = path.name
    for suffix in (".gz", ".gzip", ".bz2", ".xz", ".tgz"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)] or "data"
            break
    else:
        stem = stem + ".out"
    counters: list[_CountingReader] = []

    @contextmanager
    def opener():
        with open(path, "rb") as raw:
            counter = _CountingReader(raw)
            counters.append(counter)
            with _decompressor(kind, counter) as stream:
                yield stream

    _extract_stream(ex, stem, None, lambda: counters[-1].count if counters else 0,
                    opener, dest, budget, keep_partial=True)


def _is_compressed_tar(path: Path, kind: str) -> bool:
    try:
        with open(path, "rb") as raw, _decompressor(kind, raw) as fh:
            head = fh.read(512)
    except (OSError, EOFError, lzma.LZMAError, zlib.error):
        return False
    return len(head) >= 262 and head[257:262] == b"ustar"


def _crc_matches(path: Path, size: int | None, crc: int | None) -> bool:
    if size is not None and path.stat().st_size != size:
        return False
    if crc is None:
        return True
    value = 0
    with open(path, "rb") as fh:
        while buf := fh.read(CHUNK):
            value = zlib.crc32(buf, value)
    return value == crc


def _7z(path: Path, dest: Path, budget: Budget, ex: Extraction) -> None:
    import py7zr

    with py7zr.SevenZipFile(path, mode="r") as zf:
        if zf.needs_password():
            ex.error = "encrypted 7z archive (password needed)"
            return
        infos = [i for i in zf.list() if not i.is_directory]
        packed_total = path.stat().st_size
        unpacked_total = sum(i.uncompressed or 0 for i in infos)
        stored_names = [i.filename for i in infos]
        duplicates = len(set(stored_names)) != len(stored_names)
        ok: list[tuple[object, str]] = []
        targets: set[str] = set()
        for info in infos:
            rel, reason = safe_member_name(info.filename)
            if not reason and getattr(info, "is_symlink", False):
                reason = "symbolic link"
            reason = _pre_checks(rel, reason, info.uncompressed, None, budget)
            if not reason and unpacked_total > budget.limits.ratio_min_bytes \
                    and unpacked_total / max(packed_total, 1) > budget.limits.max_ratio:
                reason = (f"archive compression ratio {unpacked_total / max(packed_total, 1):.0f}:1 "
                          f"above limit {budget.limits.max_ratio:g}:1")
            if not reason and info.filename in targets:
                # py7zr writes the first copy under the name (later ones get
                # a suffix); only the first is kept.
                reason = "duplicate member name"
            if not reason:
                assert rel is not None
                reason = ex.claim(rel)
            if reason:
                ex.members.append(Member(info.filename, "rejected", reason, info.uncompressed))
                continue
            assert rel is not None
            ok.append((info, rel))
            targets.add(info.filename)
            budget.entries_used += 1
            budget.bytes_used += info.uncompressed or 0
        if not ok:
            return
        # Staging lives next to dest, never inside it: the case walks dest,
        # and a member may itself be called ".7z-staging/...".
        staging = Path(tempfile.mkdtemp(prefix=f"{dest.name}.7z-staging-", dir=dest.parent))
        try:
            failure: str | None = None
            try:
                zf.extract(path=staging, targets=sorted(targets))
            except Exception as exc:  # noqa: BLE001 - py7zr raises many types
                failure = _describe(exc, staging, dest.parent)
                ex.error = failure
            for info, rel in ok:
                src = staging / info.filename
                declared = info.uncompressed or 0
                reason = None
                if src.is_symlink() or not src.is_file():
                    reason = (f"cannot extract: {failure}" if failure
                              else "not a regular file after extraction")
                elif (failure or duplicates) and not _crc_matches(
                        src, info.uncompressed, getattr(info, "crc32", None)):
                    # written when the archive broke (or overwritten by a
                    # same-named copy): not the member's data
                    reason = f"cannot extract: {failure}" if failure else "duplicate member name"
                if reason:
                    budget.entries_used -= 1
                    budget.bytes_used -= declared
                    ex.release(rel)
                    ex.members.append(Member(info.filename, "rejected", reason, info.uncompressed))
                    continue
                target = _target(dest, rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), target)
                size = target.stat().st_size
                budget.bytes_used += size - declared
                ex.members.append(Member(rel, "extracted", None, size, target))
        finally:
            shutil.rmtree(staging, ignore_errors=True)


#: cabarchive reads the whole cabinet and inflates all of it in memory;
#: refuse cabinets (or their contents, from the headers) larger than this.
MAX_CAB_BYTES = 1 << 30
#: more CFDATA blocks than this are not walked (a real 1 GB cabinet has ~32k)
MAX_CAB_BLOCKS = 1 << 20


class _CabRefused(Exception):
    pass


@dataclass
class _CabLayout:
    """What cabarchive will inflate and hold, read from the headers only."""

    inflated: int = 0                       # sum of cbUncomp over every folder's CFDATA
    #: CFFILE entries in order: (name, folder index, uoffset, usize)
    files: list[tuple[str, int, int, int]] = field(default_factory=list)
    #: per folder, cumulative (uncompressed, compressed) ends of its blocks
    blocks: list[tuple[array, array]] = field(default_factory=list)

    @property
    def content(self) -> int:
        return sum(f[3] for f in self.files)

    def compressed_share(self, folder: int, start: int, size: int) -> float | None:
        """Compressed bytes of the blocks holding [start, start+size), pro rata."""
        if not 0 <= folder < len(self.blocks):
            return None
        ends_u, ends_c = self.blocks[folder]

        def at(x: int) -> float:
            i = bisect.bisect_right(ends_u, x)
            if i >= len(ends_u):
                return float(ends_c[-1]) if ends_c else 0.0
            u0, c0 = (ends_u[i - 1], ends_c[i - 1]) if i else (0, 0)
            span = ends_u[i] - u0
            return c0 + ((x - u0) * (ends_c[i] - c0) / span if span else 0)

        return at(start + size) - at(start)


def _cab_layout(path: Path) -> _CabLayout:
    """Read exactly the structures cabarchive's parser reads, at the offsets
    it reads them: CFHEADER (+ reserve), the CFFOLDER array, each folder's
    CFDATA chain (cbUncomp is what each block inflates to: the parser checks
    it) and the CFFILE array (each file's buffer is a copy of usize bytes).
    Raises _CabRefused for what cannot be bounded.
    """
    lay = _CabLayout()
    with safeio.open_regular(path) as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        size = len(buf)
        try:
            (sig, _cb, coff_files, _vmin, _vmaj, n_folders, n_files, flags,
             _set, _idx) = struct.unpack_from("<4sxxxxIxxxxIxxxxBBHHHHH", buf, 0)
        except struct.error:
            raise _CabRefused("cabinet header truncated") from None
        if sig != b"MSCF":
            raise _CabRefused("not a cabinet")
        if flags & 0x3:
            # cabarchive does not skip the prev/next cabinet names, so it
            # would read the folders elsewhere than this bound does
            raise _CabRefused("cabinet spanning several files is not supported")
        off = 36
        rsvd_folder = rsvd_block = 0
        try:
            if flags & 0x4:
                rsvd_hdr, rsvd_folder, rsvd_block = struct.unpack_from("<HBB", buf, off)
                off += 4 + rsvd_hdr
            folders = []
            for _ in range(n_folders):
                folders.append(struct.unpack_from("<IHH", buf, off))
                off += 8 + rsvd_folder
            if sum(n for _, n, _ in folders) > MAX_CAB_BLOCKS:
                raise _CabRefused(f"more than {MAX_CAB_BLOCKS} CFDATA blocks")
            for start, n_blocks, _ in folders:
                ends_u, ends_c = array("Q"), array("Q")
                pos, u, c = start, 0, 0
                for _ in range(n_blocks):
                    _sum, cb_data, cb_uncomp = struct.unpack_from("<IHH", buf, pos)
                    pos += 8 + rsvd_block + cb_data
                    u += cb_uncomp
                    c += cb_data
                    ends_u.append(u)
                    ends_c.append(c)
                lay.inflated += u
                lay.blocks.append((ends_u, ends_c))
            pos = coff_files
            for _ in range(n_files):
                usize, uoffset, folder = struct.unpack_from("<IIH", buf, pos)
                end = buf.find(b"\x00", pos + 16, min(pos + 16 + 255, size))
                name = buf[pos + 16:end].decode("utf-8", "replace") if end >= 0 else ""
                pos += 16 + (end - (pos + 16)) + 1 if end >= 0 else 16 + 255
                lay.files.append((name, folder, uoffset, usize))
        except struct.error:
            raise _CabRefused("cabinet headers point past the end of the file") from None
    return lay


def _cab(path: Path, dest: Path, budget: Budget, ex: Extraction) -> None:
    import cabarchive

    size = path.stat().st_size
    if size > MAX_CAB_BYTES:
        ex.error = f"cabinet larger than {MAX_CAB_BYTES} bytes is not extracted"
        return
    try:
        lay = _cab_layout(path)
    except _CabRefused as exc:
        ex.error = f"cabinet not extracted: {exc}"
        return
    lim = budget.limits
    content = lay.content
    need = max(lay.inflated, content)
    if need > MAX_CAB_BYTES:
        ex.error = (f"cabinet not extracted: its headers declare {need} bytes, more than "
                    f"the {MAX_CAB_BYTES} bytes inflated in memory")
        return
    if budget.bytes_used + content > lim.max_total_bytes:
        ex.error = (f"cabinet not extracted: case size limit of {lim.max_total_bytes} bytes "
                    f"would be exceeded ({content} bytes declared)")
        return
    if need > lim.ratio_min_bytes and need / max(size, 1) > lim.max_ratio:
        ex.error = (f"cabinet not extracted: compression ratio {need / max(size, 1):.0f}:1 "
                    f"above limit {lim.max_ratio:g}:1 ({need} bytes declared)")
        return
    # cabarchive parses from bytes only: read at most the bound checked
    # above (a file that grew since is refused, not read whole).
    data = safeio.read_bounded(path, MAX_CAB_BYTES + 1)
    if len(data) > MAX_CAB_BYTES:
        ex.error = f"cabinet larger than {MAX_CAB_BYTES} bytes is not extracted"
        return
    arc = cabarchive.CabArchive()
    arc.parse(data)
    # cabarchive keeps the last of several files with one name: list the others
    last = {}
    for i, (name, *_rest) in enumerate(lay.files):
        last[name] = i
    for i, (name, _folder, _off, usize) in enumerate(lay.files):
        if last[name] != i and name in arc:
            ex.members.append(Member(name, "rejected", "duplicate member name", usize))
    total = sum(len(f.buf or b"") for f in arc.values()) or 1
    for name, cabfile in sorted(arc.items()):
        buf = cabfile.buf or b""
        share = None
        if name in last:
            _n, folder, uoffset, usize = lay.files[last[name]]
            share = lay.compressed_share(folder, uoffset, usize)
        if share is None:
            share = size * len(buf) / total
        _extract_stream(ex, name, len(buf), max(1, round(share)),
                        lambda buf=buf: io.BytesIO(buf), dest, budget)


def _unique_names(ex: Extraction) -> None:
    """Rejected members must not show like another member: number the copies."""
    taken = {m.name for m in ex.members if m.status == "extracted"}
    for m in ex.members:
        if m.status == "extracted":
            continue
        shown = m.name.replace("\\", "/")
        if shown in taken:
            k = 2
            while f"{shown} (copy {k})" in taken:
                k += 1
            m.name = f"{m.name} (copy {k})"
            if m.reason == "duplicate member name":
                m.reason = f"duplicate member name (copy {k})"
            shown = m.name.replace("\\", "/")
        taken.add(shown)


def extract(path: Path, kind: str, dest: Path, budget: Budget) -> Extraction:
    """Extract one archive into ``dest`` (created), within ``budget``.

    Never raises for a broken archive: the error is in ``Extraction.error``
    and the members read before it are kept, as extracted (the one being
    written when it broke is rejected with the reason).
    """
    if kind not in ARCHIVE_KINDS:
        raise ValueError(f"not an archive kind: {kind}")
    dest.mkdir(parents=True, exist_ok=True)
    ex = Extraction(kind)
    try:
        if kind == "zip":
            _zip(path, dest, budget, ex)
        elif kind == "tar":
            _tar(path, dest, budget, ex)
        elif kind in ("gzip", "bzip2", "xz"):
            _single_stream(kind, path, dest, budget, ex)
        elif kind == "7z":
            _7z(path, dest, budget, ex)
        elif kind == "cab":
            _cab(path, dest, budget, ex)
    except Exception as exc:  # noqa: BLE001 - every library raises its own types
        ex.error = _describe(exc, dest.parent)
    _unique_names(ex)
    return ex


@contextmanager
def work_directory(root: str | os.PathLike[str] | None = None,
                   keep: bool = False) -> Iterator[Path]:
    """A private work directory, removed afterwards unless ``keep``."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="exa-", dir=root))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def display_join(prefix: str, name: str) -> str:
    """Case-relative display path of an archive member: ``outer.zip!dir/file``.

    ``name`` is shown as given: extracted names are already normalized by
    safe_member_name, and a rejected ``a/b/../c`` must not show as ``a/c``
    (where it could be mistaken for, or collide with, a real member).
    """
    return f"{prefix}!{name}" if prefix else name
