"""The Windows ``hosts`` file (``%SystemRoot%\\System32\\drivers\\etc\\hosts``)
-> one ``hosts_entry`` row per active entry.

A hard-coded entry overrides DNS for that name on that server: the classic
hidden cause of odd routing, and also the tell-tale workaround of a DNS
problem (mail to a domain flows once its MX host is pinned in hosts: the
"451 4.4.0 DNS query failed" case of KB 972744). So every active line is a
row, with its address, names and trailing comment.

Format: ``address<whitespace>name [aliases...] [# comment]``, TABs or
spaces, ``#`` comment lines (the Microsoft sample text and the commented
examples ``#  102.54.94.97  rhino.acme.com`` are comments, not entries).
Windows ignores a line whose address does not parse; such a line is still
reported (``address_valid: false``) with a warning, because the admin who
wrote it believes it is in effect.

Sniffing is deliberately strict, since "an address and a name per line" is
a shape other text can have: the Microsoft sample header decides alone;
without it every non-comment line of the head must be a valid entry.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Any

from . import register
from ._textcommon import head_lines, read_lines
from .base import ParseContext, Source

_SAMPLE = re.compile(r"^#\s*(?:This is a sample HOSTS file used by Microsoft TCP/IP|"
                     r"Copyright \(c\) 1993-\d{4} Microsoft Corp)", re.I)
_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?$")
_NUMERIC = re.compile(r"^[\d.]+$")
#: ``arp -a`` rows look like entries: address, then a MAC address.
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(?:[-:][0-9A-Fa-f]{2}){5}$")


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of an entry (an IPv6 zone ``%11`` allowed); None if invalid."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def split_entry(line: str) -> tuple[str, list[str], str | None] | None:
    """``10.0.0.1  mail mail.x  # note`` -> ("10.0.0.1", ["mail", "mail.x"],
    "note"); None for blank and comment lines."""
    body, _, comment = line.partition("#")
    tokens = body.split()
    if not tokens:
        return None
    return tokens[0], tokens[1:], comment.strip() or None


def _is_entry(line: str) -> bool:
    parts = split_entry(line)
    if parts is None:
        return False
    addr, names, _ = parts
    return (parse_address(addr) is not None and bool(names)
            and all(_NAME.match(n) and not _NUMERIC.match(n) and not _MAC.match(n) for n in names))


@register
class HostsFileSource(Source):
    name = "hostsfile"
    kind = "hosts-file"
    description = "Windows hosts file (drivers\\etc\\hosts)"

    def sniff(self, head: bytes, name: str) -> int:
        lines = [ln.strip() for ln in head_lines(head, limit=300, keep_indent=False)]
        if any(_SAMPLE.match(ln) for ln in lines[:30]):
            return 95
        active = [ln for ln in lines if ln and not ln.startswith("#")]
        comments = sum(1 for ln in lines if ln.startswith("#"))
        if not active or not all(_is_entry(ln) for ln in active):
            return 0
        if len(active) >= 2:
            return 75
        return 55 if comments else 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        n = 0
        for ln in read_lines(ctx.fs_path, keep_indent=False):
            parts = split_entry(ln.text)
            if parts is None:
                continue
            addr_text, names, comment = parts
            status = "ok"
            if ln.last_unterminated and not names:
                ctx.warn("truncated last line", f"line={ln.no}")
                continue
            if not names:
                ctx.warn(f"hosts line without a host name: {ln.text.strip()[:60]!r}", f"line={ln.no}")
                continue
            addr = parse_address(addr_text)
            if addr is None:
                ctx.warn(f"invalid address {addr_text[:40]!r} (Windows ignores this line)", f"line={ln.no}")
                status = "partial"
            n += 1
            data = {"address": addr_text, "names": names, "hostname": names[0], "aliases": names[1:],
                    "comment": comment, "ip_version": addr.version if addr else None,
                    "address_valid": addr is not None,
                    "loopback": bool(addr and addr.is_loopback)}
            yield {"kind": "hosts_entry", "level": "information" if addr else "warning",
                   "message": f"{addr_text} {' '.join(names)}" + (f"  # {comment}" if comment else ""),
                   "data": data, "locator": f"line={ln.no}", "parse_status": status}
        if n == 0:
            ctx.note("no active entries (comments only)")
