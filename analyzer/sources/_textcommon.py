"""Helpers shared by the text-artifact sources (setup logs, rpcdump, netstat, ...).

Why a shared module: every one of these files reaches us the same ways —
redirected by cmd.exe (OEM code page), by PowerShell 5.1 (UTF-16LE + BOM),
saved by Notepad (UTF-8 with or without BOM), or pasted from a KB article or
a web page (leading TABs, ``> `` blockquote prefixes, HTML entities,
markdown ``_ _`` italics debris, trailing double-space hard breaks). The
parsers want clean lines with their original line numbers, and they want to
know when the last line had no end-of-line (a capture cut off mid-write), so
that a half line becomes a warning instead of a bogus row.

Endpoint rows are built here too because three formats (Resource Kit
rpcdump, impacket rpcdump.py, PortQry -e 135) produce the same row shape and
must agree exactly on it.
"""
from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .. import knowledge, textio

#: How many lines of the sniffing head the sniffers look at.
SNIFF_LINES = 400

_MD_DEBRIS = re.compile(r"^(?:_ _|_\s)+")
_QUOTE = re.compile(r"^\s*(?:>\s?)+")


def clean_scraped(line: str, keep_indent: bool = True) -> str:
    """Undo what web pages and KB archives do to pasted log text.

    Removes ``> `` blockquote prefixes, markdown ``_ _`` italics debris at the
    start (and a trailing ``_``), HTML entities, trailing whitespace (the
    80-column padding of tasklist, markdown hard breaks). With
    ``keep_indent=False`` leading whitespace goes too; parsers whose
    continuation lines are recognised by indentation keep it.
    """
    if "&" in line and ";" in line:
        line = html.unescape(line)
    if line.lstrip().startswith(">"):
        line = _QUOTE.sub("", line, count=1)
    if line.startswith("_"):
        line = _MD_DEBRIS.sub("", line, count=1)
    line = line.replace("\x00", "").rstrip()
    if line.endswith("_") and not line.endswith("__"):
        line = line[:-1]
    return line if keep_indent else line.lstrip()


def head_lines(head: bytes, limit: int = SNIFF_LINES, keep_indent: bool = True) -> list[str]:
    """Decoded, cleaned lines of a sniffing head (the last, possibly cut,
    line is dropped when the head is a full 64 KiB)."""
    return list(_head_lines(head, limit, keep_indent))


@functools.lru_cache(maxsize=8)
def _head_lines(head: bytes, limit: int, keep_indent: bool) -> tuple[str, ...]:
    # cached: every text sniffer asks for the same head's lines
    text = textio.decode_head(head)
    lines = text.splitlines()
    if len(head) >= textio.HEAD_BYTES and len(lines) > 1:
        lines = lines[:-1]
    return tuple(clean_scraped(ln, keep_indent) for ln in lines[:limit])


def _ends_with_newline(raw: IO[bytes], encoding: str) -> bool:
    """Whether the open binary file ends with an end-of-line (its position
    is restored: call before anything was read through a text wrapper)."""
    try:
        pos = raw.tell()
        size = raw.seek(0, 2)
        if size == 0:
            return True
        raw.seek(max(0, size - 2))
        tail = raw.read(2)
        raw.seek(pos)
    except OSError:
        return True
    if encoding.startswith("utf-16-le"):
        return tail in (b"\n\x00", b"\r\x00")
    if encoding.startswith("utf-16-be"):
        return tail in (b"\x00\n", b"\x00\r")
    return tail[-1:] in (b"\n", b"\r")


@dataclass
class Line:
    """One physical line: 1-based number, raw text (EOL stripped), cleaned
    text, and whether it is the file's unterminated last line."""

    no: int
    raw: str
    text: str
    last_unterminated: bool = False


def read_lines(path: Path, keep_indent: bool = True, encoding: str | None = None) -> Iterator[Line]:
    """Stream the file's lines (any encoding textio knows, or ``encoding``
    when the caller knows better), cleaned of scraping debris, flagging an
    unterminated last line.

    One line of look-ahead is kept so the last line can be flagged without
    reading the file twice.
    """
    fh, encoding = textio.open_text(path, encoding)  # one open: head, tail and lines
    with fh:
        terminated = _ends_with_newline(fh.buffer, encoding)
        prev: tuple[int, str] | None = None
        for no, line in textio.capped_lines(fh):
            raw = line.rstrip("\r\n")
            if prev is not None:
                yield Line(prev[0], prev[1], clean_scraped(prev[1], keep_indent))
            prev = (no, raw)
        if prev is not None:
            yield Line(prev[0], prev[1], clean_scraped(prev[1], keep_indent), not terminated)


def count_matches(lines: list[str], *patterns: re.Pattern[str]) -> int:
    """How many lines match any of ``patterns`` (search semantics)."""
    return sum(1 for ln in lines if any(p.search(ln) for p in patterns))


def score(hits: int, strong_at: int, base: int = 60, top: int = 95) -> int:
    """Map a count of format-specific lines to a confidence: one hit gives
    ``base``, ``strong_at`` hits or more give ``top``."""
    if hits <= 0:
        return 0
    if hits >= strong_at:
        return top
    return base + (top - base) * (hits - 1) // max(1, strong_at - 1)


# --------------------------------------------------------------------------
# endpoint rows (rpcdump, impacket rpcdump.py, PortQry -e 135)

_PORT_PROTOCOLS = frozenset({"ncacn_ip_tcp", "ncadg_ip_udp", "ncacn_http"})
UUID_RE = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_BINDING = re.compile(r"^(?P<proto>nca[a-z_]+):(?P<addr>[^\[\s]*)\[(?P<ep>[^\]]*)\]?\s*$")
_BACKSLASHES = re.compile(r"\\{2,}")


def _interfaces() -> dict[str, dict[str, Any]]:
    return knowledge.load("rpc_interfaces")["interfaces"]


def lookup_interface(uuid: str) -> dict[str, Any] | None:
    """The knowledge entry of an interface UUID (any case, braces allowed)."""
    return _interfaces().get(uuid.strip("{} ").lower())


def unescape_backslashes(addr: str, endpoint: str) -> tuple[str, str]:
    """Undo markdown/web doubling of backslashes in a named-pipe binding
    (``\\\\\\\\MYDC[\\\\PIPE\\\\lsass]`` -> ``\\\\MYDC[\\PIPE\\lsass]``)."""
    if addr.startswith("\\"):
        addr = "\\\\" + addr.lstrip("\\")
    endpoint = _BACKSLASHES.sub(r"\\", endpoint)
    return addr, endpoint


def parse_binding(text: str) -> tuple[str, str, str] | None:
    """``ncacn_ip_tcp:10.0.0.1[1033]`` -> (protocol, address, endpoint).
    ``ncalrpc:[name]`` gives an empty address. None when not a binding."""
    m = _BINDING.match(text.strip())
    if not m:
        return None
    addr, ep = unescape_backslashes(m["addr"], m["ep"])
    return m["proto"].lower(), addr, ep


def endpoint_row(*, protocol: str | None, address: str | None, endpoint: str | None,
                 uuid: str, version: str | None, annotation: str | None,
                 state: str | None, host: str | None, locator: str,
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``endpoint`` row all three endpoint-mapper formats produce.

    ``data.port`` is set only for protocols whose endpoint is a port number;
    ``data.interface``/``data.exchange_group`` come from
    knowledge/rpc_interfaces.yaml keyed on the UUID (annotations vary).
    """
    uuid_l = uuid.strip("{} ").lower()
    info = lookup_interface(uuid_l)
    annotation = annotation.strip() if annotation else None
    data: dict[str, Any] = {
        "protocol": protocol,
        "address": address if address else None,
        "endpoint": endpoint,
    }
    if protocol in _PORT_PROTOCOLS and endpoint is not None and endpoint.strip().isdecimal():
        data["port"] = int(endpoint)
    data.update({
        "uuid": uuid_l,
        "version": version,
        "annotation": annotation or None,
        "state": state,
        "interface": info.get("name") if info else None,
        "exchange_group": info.get("group") if info else None,
    })
    if extra:
        data.update(extra)
    where = f"{protocol or '?'}:{address or ''}[{endpoint or ''}]"
    label = annotation or (info.get("name") if info else "") or ""
    msg = f"{where} {uuid_l}" + (f" v{version}" if version else "")
    if label:
        msg += f" {label}"
    if state:
        msg += f" :{state}"
    return {"kind": "endpoint", "host": host, "message": msg, "data": data,
            "locator": locator, "level": "information"}
