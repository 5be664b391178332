"""Reading customer text files whatever Windows wrote them with.

Customers paste, redirect and export: regedit v5 and PowerShell 5.1 ``>``
write UTF-16LE with a BOM, cmd.exe redirection writes the OEM code page
(netstat, tasklist, rpcdump), Notepad writes ANSI (cp1252) or UTF-8 with or
without a BOM. Detection order: BOM, then the NUL-byte pattern of BOM-less
UTF-16, then strict UTF-8, then a single-byte fallback. The OEM/ANSI choice
cannot be made reliably from bytes alone; we prefer cp1252 and fall back to
cp850 only when the text has box-drawing-range bytes typical of OEM output
(German netstat's ``ABHÖREN`` is 0x99 in cp850, 0xD6 in cp1252).
"""
from __future__ import annotations

import codecs
import functools
import io
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from . import safeio

#: How many bytes of a file sniffers get to see.
HEAD_BYTES = 64 * 1024

# detect_encoding, looks_binary and decode_head are cached on the head bytes:
# every sniffer asks the same questions of the same head, and a folder of
# 50,000 small files must not decode each head twenty times.


@functools.lru_cache(maxsize=8)
def detect_encoding(head: bytes) -> str:
    """Best guess of a text file's encoding from its first bytes."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le-bom"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be-bom"
    sample = head[:4096]
    if len(sample) >= 4:
        odd_nuls = sample[1::2].count(0)
        even_nuls = sample[0::2].count(0)
        half = len(sample) // 2
        if odd_nuls > half * 0.4 and even_nuls < half * 0.05:
            return "utf-16-le"
        if even_nuls > half * 0.4 and odd_nuls < half * 0.05:
            return "utf-16-be"
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # A multibyte sequence cut at the end of the head is still UTF-8.
        if exc.start >= len(head) - 3:
            try:
                head[: exc.start].decode("utf-8")
                return "utf-8"
            except UnicodeDecodeError:
                pass
    high = [b for b in head if b >= 0x80]
    if high and sum(1 for b in high if 0x80 <= b <= 0x9F or 0xB0 <= b <= 0xDF) > len(high) * 0.6:
        # Mostly bytes that are control/punctuation in cp1252 but letters or
        # box drawing in cp850: OEM output from cmd.exe.
        return "cp850"
    return "cp1252"


def _codec(encoding: str) -> tuple[str, int]:
    """(python codec, BOM bytes to skip)."""
    if encoding == "utf-16-le-bom":
        return "utf-16-le", 2
    if encoding == "utf-16-be-bom":
        return "utf-16-be", 2
    return encoding, 0


@functools.lru_cache(maxsize=8)
def looks_binary(head: bytes) -> bool:
    """True when ``head`` is not text in any encoding we read."""
    if not head:
        return False
    enc = detect_encoding(head)
    if enc.startswith("utf-16"):
        return False
    if b"\x00" in head[:4096]:
        return True
    ctrl = sum(1 for b in head[:4096] if b < 9 or 13 < b < 32)
    return ctrl > len(head[:4096]) * 0.05


@functools.lru_cache(maxsize=8)
def decode_head(head: bytes) -> str:
    """Decode a sniffing head (possibly cut mid-character) for text sniffers."""
    codec, skip = _codec(detect_encoding(head))
    data = head[skip:]
    if codec.startswith("utf-16") and len(data) % 2:
        data = data[:-1]
    return data.decode(codec, errors="replace")


def read_head(path: str | Path, size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of a regular file (never a FIFO or device)."""
    with safeio.open_regular(path) as fh:
        return fh.read(size)


def open_text(path: str | Path, encoding: str | None = None) -> tuple[io.TextIOBase, str]:
    """Open a text file for streaming with the detected encoding.

    Returns (file object, encoding name). Undecodable bytes are replaced, never
    fatal: a customer's file with one bad byte must still be read.
    """
    raw = safeio.open_regular(path)
    try:
        if encoding is None:
            encoding = detect_encoding(raw.read(HEAD_BYTES))
        codec, skip = _codec(encoding)
        raw.seek(skip)
    except BaseException:
        raw.close()
        raise
    # newline=None: CRLF, LF and lone CR all end a line.
    return io.TextIOWrapper(raw, encoding=codec, errors="replace", newline=None), encoding


#: Longest line (in characters) a line reader hands on; a longer line is
#: skipped with a warning. A 1 GB file that is one line must not become a
#: 1 GB string (and 4 GB of UCS-4 once decoded).
MAX_LINE_CHARS = 16 << 20


@dataclass(frozen=True)
class LinePolicy:
    """How line readers treat over-long lines: the cap, and who is told
    (``warn(line number, character offset, line length)``)."""

    max_chars: int = MAX_LINE_CHARS
    warn: Callable[[int, int, int], None] | None = None


_POLICY: ContextVar[LinePolicy] = ContextVar("line_policy", default=LinePolicy())


@contextmanager
def line_policy(max_chars: int | None = None,
                warn: Callable[[int, int, int], None] | None = None) -> Iterator[LinePolicy]:
    """Set the line cap and the warning callback for the line readers used
    while parsing one file (the case sets it around each parse, so every
    source gets the cap without passing it through)."""
    pol = LinePolicy(max_chars or MAX_LINE_CHARS, warn)
    token = _POLICY.set(pol)
    try:
        yield pol
    finally:
        _POLICY.reset(token)


def current_line_policy() -> LinePolicy:
    """The line policy in force (for readers that cut text themselves)."""
    return _POLICY.get()


def long_line_message(no: int, offset: int, length: int, cap: int) -> str:
    return (f"line {no} is {length} characters long (limit {cap}); skipped "
            f"(starts at character offset {offset})")


def capped_lines(fh: io.TextIOBase, max_chars: int | None = None) -> Iterator[tuple[int, str]]:
    """(1-based line number, line with its end-of-line) of a text stream,
    reading at most ``max_chars`` characters of a line at a time; a longer
    line is read through in pieces, reported to the policy's ``warn`` and
    not yielded (its number still counts)."""
    pol = _POLICY.get()
    cap = max_chars or pol.max_chars
    no = offset = 0
    while True:
        line = fh.readline(cap)
        if not line:
            return
        no += 1
        if len(line) >= cap and not line.endswith("\n"):
            length = len(line)
            while True:
                piece = fh.readline(cap)
                length += len(piece)
                if not piece or piece.endswith("\n"):
                    break
            if length > cap:
                if pol.warn is not None:
                    pol.warn(no, offset, length)
                offset += length
                continue
        offset += len(line)
        yield no, line


def capped_text(fh: io.TextIOBase, max_chars: int | None = None) -> Iterator[str]:
    """The lines of a text stream with their end-of-line, for readers that
    take an iterable of lines (``csv.reader``): an over-long line is
    reported (see :func:`capped_lines`) and stands as an empty line, so the
    reader's line count stays right."""
    expected = 1
    for no, line in capped_lines(fh, max_chars):
        while expected < no:
            yield "\n"
            expected += 1
        expected = no + 1
        yield line


def iter_lines(path: str | Path, encoding: str | None = None) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without its end-of-line) lazily;
    lines longer than the current :class:`LinePolicy` cap are skipped and
    reported (see :func:`capped_lines`)."""
    fh, _ = open_text(path, encoding)
    with fh:
        for no, line in capped_lines(fh):
            yield no, line.rstrip("\r\n")


def read_text(path: str | Path, encoding: str | None = None) -> str:
    """Whole file as text (for small files only: exports of a few MB)."""
    fh, _ = open_text(path, encoding)
    with fh:
        return fh.read()


#: Characters that must not reach a terminal or a report as they are: C0/C1
#: controls (ESC sequences can retitle or rewrite a terminal) and the Unicode
#: bidirectional overrides (they can make a file name read backwards).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
#: Unicode categories escaped too, wherever they are: format characters (Cf:
#: every bidi mark such as U+200F RIGHT-TO-LEFT MARK, zero-width characters,
#: the BOM), line/paragraph separators (they break a line where none shows)
#: and lone surrogates (undecodable bytes of a file name).
_UNSAFE_CATEGORIES = frozenset({"Cf", "Zl", "Zp", "Cs"})


def _escape_char(ch: str) -> str:
    return ch.encode("unicode_escape", "backslashreplace").decode("ascii")


def escape_controls(text: str) -> str:
    """``text`` with control, bidi and other invisible format characters as
    escapes (``\\x1b``, ``\\u200f``); tab and newline are kept."""
    text = _UNSAFE.sub(lambda m: _escape_char(m.group()), text)
    if text.isascii():
        return text
    cat = unicodedata.category
    if not any(cat(ch) in _UNSAFE_CATEGORIES for ch in text):
        return text
    return "".join(_escape_char(ch) if cat(ch) in _UNSAFE_CATEGORIES else ch for ch in text)
