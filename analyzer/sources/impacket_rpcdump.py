"""Endpoint-mapper dumps from impacket's ``rpcdump.py`` (examples:
tests/fixtures/text/impacket_*.txt).

Block layout, one block per interface registration::

    Protocol: [MS-RSP]: Remote Shutdown Protocol
    Provider: wininit.exe
    UUID    : D95AFE70-A6D5-4259-822E-2C84DA1DDB0D v1.0 [annotation]
    Bindings:
              ncacn_ip_tcp:10.10.10.180[49664]
              ncacn_np:\\\\REMOTE[\\PIPE\\InitShutdown]

Pitfalls: UUIDs are UPPER-case (Resource Kit and PortQry print lower case:
normalise); trailing spaces after ``N/A``, the version and ``Bindings:`` are
present in some copies and stripped in others; ``Protocol``/``Provider`` are
impacket's own lookup tables, not what the server said (``N/A`` for every
Exchange executable), so they go to ``data.impacket_protocol`` /
``data.provider`` and never replace the UUID lookup. One row per binding.
``[*] Received N endpoints.`` counts blocks; a smaller number of parsed
blocks means a cut capture and is warned about. The old dict-style output
(impacket issue #296, ``{'UUID': ('...', 1.0), 'PIPE': ['x\\x00'], ...}``)
is read with ``ast.literal_eval`` (NUL terminators stripped).
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any

from . import register
from ._textcommon import UUID_RE, count_matches, endpoint_row, head_lines, parse_binding, read_lines
from .base import ParseContext, Source

_UUID = re.compile(r"^\s*UUID\s+:\s*(?P<uuid>" + UUID_RE + r")(?:\s+v(?P<ver>\d+\.\d+))?\s*(?P<ann>.*?)\s*$")
_PROTOCOL = re.compile(r"^\s*Protocol:\s*(?P<v>.*?)\s*$")
_PROVIDER = re.compile(r"^\s*Provider:\s*(?P<v>.*?)\s*$")
_BINDINGS = re.compile(r"^\s*Bindings:\s*$")
_RETRIEVING = re.compile(r"Retrieving endpoint list from\s+(?P<host>\S+)")
_RECEIVED = re.compile(r"Received\s+(?P<n>\d+|one)\s+endpoints?\.", re.I)
_BANNER = re.compile(r"^Impacket v\d")
_DICT_START = re.compile(r"^\s*\{'(?:APPLICATION|IP|NDR_UUID|UUID|PROTOCOL|PIPE|NETBIOS)'\s*:")


def _na(v: str | None) -> str | None:
    return None if v is None or v in ("", "N/A") else v


@register
class ImpacketRpcDumpSource(Source):
    name = "impacket-rpcdump"
    kind = "impacket-rpcdump"
    description = "impacket rpcdump.py endpoint-mapper dump"

    def sniff(self, head: bytes, name: str) -> int:
        lines = head_lines(head)
        uuids = count_matches(lines, _UUID)
        binds = count_matches(lines, _BINDINGS)
        if uuids and binds:
            return 93
        dicts = count_matches(lines, _DICT_START)
        if dicts and any("'UUID'" in ln or "'NDR_UUID'" in ln for ln in lines):
            return 80
        if uuids and any(_RETRIEVING.search(ln) or _BANNER.match(ln) for ln in lines):
            return 70
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        host: str | None = None
        blk: dict[str, Any] = {}
        in_bindings = False
        blocks = 0
        declared: tuple[int, int] | None = None
        dict_buf: list[str] = []
        dict_line = 0
        rows = 0

        for ln in read_lines(ctx.fs_path):
            text = ln.text
            stripped = text.strip()
            if dict_buf:
                dict_buf.append(text)
                if stripped.endswith("}"):
                    for row in self._dict_rows(ctx, "\n".join(dict_buf), dict_line, host):
                        rows += 1
                        yield row
                    dict_buf = []
                continue
            if _DICT_START.match(text):
                dict_buf, dict_line = [text], ln.no
                if stripped.endswith("}"):
                    for row in self._dict_rows(ctx, text, ln.no, host):
                        rows += 1
                        yield row
                    dict_buf = []
                continue
            if m := _RETRIEVING.search(text):
                host = m["host"]
                continue
            if m := _RECEIVED.search(text):
                n = 1 if m["n"].lower() == "one" else int(m["n"])
                declared = (n, ln.no)
                in_bindings = False
                continue
            if not stripped:
                in_bindings = False
                continue
            if m := _PROTOCOL.match(text):
                blk = {"impacket_protocol": _na(m["v"]), "line": ln.no}
                in_bindings = False
                continue
            if m := _PROVIDER.match(text):
                blk["provider"] = _na(m["v"])
                blk.setdefault("line", ln.no)
                continue
            if m := _UUID.match(text):
                blk.update(uuid=m["uuid"], version=m["ver"], annotation=_na(m["ann"]))
                blk.setdefault("line", ln.no)
                blocks += 1
                continue
            if _BINDINGS.match(text):
                in_bindings = True
                if "uuid" not in blk:
                    ctx.warn("Bindings: without a UUID line", f"line={ln.no}")
                continue
            if in_bindings and "uuid" in blk:
                if stripped in ("...", "…"):
                    continue
                b = parse_binding(stripped)
                if b is None:
                    if ln.last_unterminated:
                        ctx.warn("truncated last line", f"line={ln.no}")
                    else:
                        ctx.warn(f"unreadable binding {stripped[:80]!r}", f"line={ln.no}")
                    continue
                proto, addr, ep = b
                row = endpoint_row(protocol=proto, address=addr, endpoint=ep, uuid=blk["uuid"],
                                   version=blk.get("version"), annotation=blk.get("annotation"),
                                   state=None, host=host, locator=f"line={ln.no}",
                                   extra={"impacket_protocol": blk.get("impacket_protocol"),
                                          "provider": blk.get("provider"),
                                          "block_line": blk.get("line")})
                row["parse_status"] = "ok"
                rows += 1
                yield row
                continue
            # banners, [*]/[+] log lines, shell prompts: no endpoint data
            if ln.last_unterminated:
                ctx.warn("truncated last line", f"line={ln.no}")
                continue
            if re.search(UUID_RE, text):
                ctx.warn(f"unrecognised line with a UUID: {stripped[:80]!r}", f"line={ln.no}")
        if dict_buf:
            ctx.warn("unterminated dict record at end of file", f"line={dict_line}")
        if declared is not None and blocks and declared[0] != blocks:
            ctx.warn(f"output says {declared[0]} endpoints, {blocks} UUID blocks found",
                     f"line={declared[1]}")
        if rows == 0:
            ctx.warn("no endpoint bindings found", None)

    def _dict_rows(self, ctx: ParseContext, text: str, line: int,
                   host: str | None) -> Iterator[dict[str, Any]]:
        try:
            rec = ast.literal_eval(text.strip())
            if not isinstance(rec, dict):
                raise ValueError("not a dict")
        except (ValueError, SyntaxError) as exc:
            ctx.warn(f"unreadable dict record: {exc}", f"line={line}")
            return

        def s(v: Any) -> str:
            return str(v).replace("\x00", "").strip()

        uuid = rec.get("UUID")
        if not (isinstance(uuid, tuple) and uuid and re.fullmatch(UUID_RE, s(uuid[0]))):
            ctx.warn("dict record without a UUID", f"line={line}")
            return
        ver = f"{float(uuid[1]):.1f}" if len(uuid) > 1 and isinstance(uuid[1], (int, float)) else None
        ip = s(rec.get("IP", "")) or None
        extra = {"provider": _na(s(rec.get("APPLICATION", ""))),
                 "impacket_protocol": _na(s(rec.get("PROTOCOL", ""))), "dict_style": True}
        pipes = [s(p) for p in rec.get("PIPE") or []]
        netbios = [s(n) for n in rec.get("NETBIOS") or []]
        bindings: list[tuple[str | None, str | None, str | None]] = []
        for p in pipes:
            bindings.append(("ncacn_np" if netbios or p.lower().startswith("\\pipe") else "ncalrpc",
                             netbios[0] if netbios else ip, p))
        if not bindings:
            bindings.append((None, ip, None))
        for proto, addr, ep in bindings:
            row = endpoint_row(protocol=proto, address=addr, endpoint=ep, uuid=s(uuid[0]),
                               version=ver, annotation=None, state=None, host=host or ip,
                               locator=f"line={line}", extra=extra)
            row["parse_status"] = "ok" if proto else "partial"
            yield row
