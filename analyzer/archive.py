"""Safe extraction of case archives (zip, tar, tar.gz/bz2/xz, gz, 7z, cab).

Customer archives are untrusted input. Nothing is ever written outside the
private work directory: member names that are absolute, carry a drive letter,
climb with ``..`` or are links are rejected with a reason, and limits on
total size, entry count, per-entry compression ratio and nesting depth stop
archive bombs. Sizes are enforced while writing, not only from headers,
because headers lie.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import posixpath
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

CHUNK = 1 << 20


@dataclass
class Limits:
    """Extraction limits; defaults suit a support case of a few GB at most."""

    max_total_bytes: int = 8 << 30          # all extracted bytes of one case
    max_entries: int = 200_000              # all extracted members of one case
    max_ratio: float = 250.0                # uncompressed/compressed, per member
    max_depth: int = 5                      # archives inside archives
    #: Members smaller than this are exempt from the ratio limit (a 1 KB
    #: file of spaces compresses 100x and is harmless).
    ratio_min_bytes: int = 1 << 20


@dataclass
class Budget:
    """What is left of the case-wide limits while extracting."""

    limits: Limits
    bytes_used: int = 0
    entries_used: int = 0


@dataclass
class Member:
    """One archive member, extracted or rejected."""

    name: str                      # the member's name as stored (normalized to '/')
    status: str                    # "extracted" | "rejected" | "skipped"
    reason: str | None = None
    size: int | None = None        # declared uncompressed size
    fs_path: Path | None = None


@dataclass
class Extraction:
    kind: str
    members: list[Member] = field(default_factory=list)
    error: str | None = None


class LimitExceeded(Exception):
    pass


ARCHIVE_KINDS = ("zip", "7z", "cab", "tar", "gzip", "bzip2", "xz")


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
    return "/".join(parts), None


def _target(dest: Path, rel: str) -> Path:
    target = (dest / rel).resolve()
    root = dest.resolve()
    if root != target and root not in target.parents:
        raise LimitExceeded("resolves outside the work directory")
    return target


def _copy_limited(src: IO[bytes], dst_path: Path, declared: int | None,
                  compressed: int | None, budget: Budget) -> int:
    """Stream src to dst_path, enforcing the ratio and the case-wide budget."""
    lim = budget.limits
    written = 0
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(dst_path, "xb") as out:
            while True:
                buf = src.read(CHUNK)
                if not buf:
                    break
                written += len(buf)
                if budget.bytes_used + written > lim.max_total_bytes:
                    raise LimitExceeded(
                        f"case size limit of {lim.max_total_bytes} bytes exceeded")
                if (compressed and written > lim.ratio_min_bytes
                        and written / compressed > lim.max_ratio):
                    raise LimitExceeded(
                        f"compression ratio above {lim.max_ratio:g}:1 "
                        f"({written} bytes from {compressed} so far)")
                if declared is not None and written > declared:
                    raise LimitExceeded(
                        f"member is larger than its declared size {declared}")
                out.write(buf)
    except BaseException:
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


def _extract_stream(ex: Extraction, name: str, size: int | None, compressed: int | None,
                    opener, dest: Path, budget: Budget) -> None:
    rel, reason = safe_member_name(name)
    reason = _pre_checks(rel, reason, size, compressed, budget)
    if reason:
        ex.members.append(Member(name, "rejected", reason, size))
        return
    assert rel is not None
    try:
        target = _target(dest, rel)
        if target.exists():
            ex.members.append(Member(name, "rejected", "duplicate member name", size))
            return
        with opener() as src:
            _copy_limited(src, target, size, compressed, budget)
    except LimitExceeded as exc:
        ex.members.append(Member(name, "rejected", str(exc), size))
        return
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError,
            zlib.error) as exc:
        ex.members.append(Member(name, "rejected", f"cannot extract: {exc}", size))
        return
    budget.entries_used += 1
    ex.members.append(Member(rel, "extracted", None, size, target))


def _zip(path: Path, dest: Path, budget: Budget) -> Extraction:
    ex = Extraction("zip")
    with zipfile.ZipFile(path) as zf:
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
    return ex


def _tar(path: Path, dest: Path, budget: Budget) -> Extraction:
    ex = Extraction("tar")
    with tarfile.open(path, mode="r:*") as tf:
        for info in tf:
            if info.isdir():
                continue
            if info.issym() or info.islnk():
                ex.members.append(Member(info.name, "rejected",
                                         f"{'symbolic' if info.issym() else 'hard'} link to {info.linkname!r}",
                                         info.size))
                continue
            if not info.isfile():
                ex.members.append(Member(info.name, "rejected", "special file (device, FIFO)", info.size))
                continue
            # tar members are stored uncompressed; the ratio is enforced on the
            # outer gzip/bzip2/xz stream, which tarfile decompresses as we read.
            _extract_stream(ex, info.name, info.size, None,
                            lambda info=info: tf.extractfile(info), dest, budget)
    return ex


def _single_stream(kind: str, path: Path, dest: Path, budget: Budget) -> Extraction:
    """gzip / bzip2 / xz: a tar inside, or one compressed file."""
    opener = {"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}[kind]
    if _is_compressed_tar(path, opener):
        ex = _tar(path, dest, budget)
        ex.kind = f"tar+{kind}"
        return ex
    ex = Extraction(kind)
    stem = path.name
    for suffix in (".gz", ".gzip", ".bz2", ".xz", ".tgz"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)] or "data"
            break
    else:
        stem = stem + ".out"
    _extract_stream(ex, stem, None, path.stat().st_size,
                    lambda: opener(path, "rb"), dest, budget)
    return ex


def _is_compressed_tar(path: Path, opener) -> bool:
    try:
        with opener(path, "rb") as fh:
            head = fh.read(512)
    except (OSError, EOFError, lzma.LZMAError):
        return False
    return len(head) >= 262 and head[257:262] == b"ustar"


def _7z(path: Path, dest: Path, budget: Budget) -> Extraction:
    import py7zr

    ex = Extraction("7z")
    with py7zr.SevenZipFile(path, mode="r") as zf:
        if zf.needs_password():
            ex.error = "encrypted 7z archive (password needed)"
            return ex
        infos = [i for i in zf.list() if not i.is_directory]
        packed_total = path.stat().st_size
        unpacked_total = sum(i.uncompressed or 0 for i in infos)
        ok_names: dict[str, str] = {}
        for info in infos:
            rel, reason = safe_member_name(info.filename)
            if not reason and getattr(info, "is_symlink", False):
                reason = "symbolic link"
            reason = _pre_checks(rel, reason, info.uncompressed, None, budget)
            if not reason and unpacked_total > budget.limits.ratio_min_bytes \
                    and unpacked_total / max(packed_total, 1) > budget.limits.max_ratio:
                reason = (f"archive compression ratio {unpacked_total / max(packed_total, 1):.0f}:1 "
                          f"above limit {budget.limits.max_ratio:g}:1")
            if reason:
                ex.members.append(Member(info.filename, "rejected", reason, info.uncompressed))
                continue
            ok_names[info.filename] = rel  # type: ignore[assignment]
            budget.entries_used += 1
            budget.bytes_used += info.uncompressed or 0
        if ok_names:
            staging = dest / ".7z-staging"
            staging.mkdir(parents=True, exist_ok=True)
            zf.extract(path=staging, targets=list(ok_names))
            for stored, rel in ok_names.items():
                src = staging / stored
                if src.is_symlink() or not src.is_file():
                    ex.members.append(Member(stored, "rejected", "not a regular file after extraction"))
                    continue
                target = _target(dest, rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), target)
                ex.members.append(Member(rel, "extracted", None, target.stat().st_size, target))
            shutil.rmtree(staging, ignore_errors=True)
    return ex


#: cabarchive parses the whole cabinet in memory; refuse anything larger.
MAX_CAB_BYTES = 1 << 30


def _cab(path: Path, dest: Path, budget: Budget) -> Extraction:
    import cabarchive

    ex = Extraction("cab")
    size = path.stat().st_size
    if size > MAX_CAB_BYTES:
        ex.error = f"cabinet larger than {MAX_CAB_BYTES} bytes is not extracted"
        return ex
    arc = cabarchive.CabArchive()
    arc.parse(path.read_bytes())
    for name, cabfile in sorted(arc.items()):
        buf = cabfile.buf or b""
        _extract_stream(ex, name, len(buf), None, lambda buf=buf: io.BytesIO(buf), dest, budget)
    return ex


def extract(path: Path, kind: str, dest: Path, budget: Budget) -> Extraction:
    """Extract one archive into ``dest`` (created), within ``budget``.

    Never raises for a broken archive: the error is in ``Extraction.error``
    and whatever members were read before it are kept.
    """
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "zip":
            return _zip(path, dest, budget)
        if kind == "tar":
            return _tar(path, dest, budget)
        if kind in ("gzip", "bzip2", "xz"):
            return _single_stream(kind, path, dest, budget)
        if kind == "7z":
            return _7z(path, dest, budget)
        if kind == "cab":
            return _cab(path, dest, budget)
    except Exception as exc:  # noqa: BLE001 - every library raises its own types
        ex = Extraction(kind, error=f"{type(exc).__name__}: {exc}")
        return ex
    raise ValueError(f"not an archive kind: {kind}")


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
    """Case-relative display path of an archive member: ``outer.zip!dir/file``."""
    return f"{prefix}!{posixpath.normpath(name)}" if prefix else name
