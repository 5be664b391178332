"""Endpoint-mapper dumps from ``PortQry -e 135`` (examples:
tests/fixtures/text/portqry_*.txt).

Record = ``UUID: <uuid>[ <annotation>]`` followed by one binding line
(``ncacn_ip_tcp:169.254.12.191[4144]``); a blank line usually separates
records but not always. Pre-amble lines name the target ("Querying target
system called:" + the name on the next line, "Name resolved to ..."), the
port state line says TCP or UDP (``UDP port 135 (epmap service): LISTENING
or FILTERED``), the footer says ``Total endpoints found: N`` — checked
against the rows read, since a shorter count means a cut capture. Text
scraped from web pages doubles backslashes in named-pipe bindings
(``\\\\\\\\MYDC[\\\\PIPE\\\\lsass]``); they are un-escaped. PortQry does not
ping interfaces, so ``state`` is null. Several captures in one file (TCP then
UDP) are read one after another; each new "Querying target system" resets
the host.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from . import register
from ._textcommon import UUID_RE, count_matches, endpoint_row, head_lines, parse_binding, read_lines
from .base import ParseContext, Source

_UUID = re.compile(r"^\s*UUID:\s*(?P<uuid>" + UUID_RE + r")(?:\s+(?P<ann>.*?))?\s*$")
_BINDING_LINE = re.compile(r"^\s*nca[a-z_]+:")
_QUERYING = re.compile(r"Querying Endpoint Mapper Database|epmap service\)|End of RPC Endpoint Mapper",
                       re.I)
_TARGET = re.compile(r"^\s*Querying target system called:\s*(?P<host>\S+)?\s*$", re.I)
_RESOLVED = re.compile(r"^\s*(?:Name|IP address) resolved to\s+(?P<v>\S+?)\.?\s*$", re.I)
_PORTLINE = re.compile(r"^\s*(?P<proto>TCP|UDP) port 135 \(epmap service\):\s*(?P<state>.+?)\s*$", re.I)
_TOTAL = re.compile(r"^\s*Total endpoints found:\s*(?P<n>\d+)", re.I)
_EPDUMP = re.compile(r"^\s*Binding to portmapper:\s*(?P<host>[^\s\[]+)")


@register
class PortQrySource(Source):
    name = "portqry"
    kind = "portqry"
    description = "PortQry -e 135 endpoint-mapper query output"

    def sniff(self, head: bytes, name: str) -> int:
        lines = head_lines(head)
        pairs = sum(1 for a, b in zip(lines, lines[1:]) if _UUID.match(a) and _BINDING_LINE.match(b))
        if not pairs:
            return 0
        if count_matches(lines, _QUERYING, _EPDUMP):
            return 92
        return 60 if pairs >= 2 else 45

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        host: str | None = None
        want_host = False
        query_proto: str | None = None
        port_state: str | None = None
        current: tuple[str, str | None, int] | None = None
        rows_since_total = 0
        total_rows = 0
        for ln in read_lines(ctx.fs_path):
            text = ln.text
            stripped = text.strip()
            if want_host and stripped:
                host, want_host = stripped, False
                continue
            if m := _TARGET.match(text):
                host = m["host"]
                want_host = host is None
                query_proto = port_state = None
                continue
            if m := _EPDUMP.match(text):
                host = m["host"]
                continue
            if m := _PORTLINE.match(text):
                query_proto, port_state = m["proto"].upper(), m["state"]
                continue
            if m := _UUID.match(text):
                if current is not None:
                    ctx.warn("UUID line without a binding line", f"line={current[2]}")
                current = (m["uuid"], m["ann"], ln.no)
                continue
            if _BINDING_LINE.match(text):
                if current is None:
                    ctx.warn(f"binding line without a UUID line: {stripped[:80]!r}", f"line={ln.no}")
                    continue
                b = parse_binding(stripped)
                if b is None:
                    ctx.warn("truncated last line" if ln.last_unterminated
                             else f"unreadable binding {stripped[:80]!r}", f"line={ln.no}")
                    current = None
                    continue
                proto, addr, ep = b
                row = endpoint_row(protocol=proto, address=addr, endpoint=ep, uuid=current[0],
                                   version=None, annotation=current[1], state=None, host=host,
                                   locator=f"line={current[2]}",
                                   extra={"query_protocol": query_proto, "epmap_state": port_state})
                row["parse_status"] = "ok"
                current = None
                rows_since_total += 1
                total_rows += 1
                yield row
                continue
            if m := _TOTAL.match(text):
                n = int(m["n"])
                if n != rows_since_total:
                    ctx.warn(f"footer says {n} endpoints, {rows_since_total} read", f"line={ln.no}")
                rows_since_total = 0
                continue
            if m := _RESOLVED.match(text):
                if host is None or host[:1].isdecimal():
                    host = m["v"]
                continue
            if ln.last_unterminated and stripped:
                ctx.warn("truncated last line", f"line={ln.no}")
        if current is not None:
            ctx.warn("UUID line without a binding line at end of file", f"line={current[2]}")
        if total_rows == 0:
            ctx.warn("no endpoints found", None)
