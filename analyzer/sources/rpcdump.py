"""Endpoint-mapper dumps from ``rpcdump.exe``: the Windows 2000/2003 Resource
Kit tool and Todd Sabin's (BindView RPCTools) tool of the same name.

Resource Kit layout (KB 926210; tests/fixtures/text/rpcdump_*.txt)::

    ncacn_ip_tcp(Connection-oriented TCP/IP)
      10.0.100.32[1033] [a4f1db00-ca47-1067-b31f-00dd010662da] Exchange Server STORE EMSMDB Interface :NOT_PINGED

Endpoints are grouped under ``protseq(Description)`` headers; each line is
``addr[endpoint] [uuid] annotation :STATE`` with STATE YES / NO (pinged with
``/i``) or NOT_PINGED. The annotation may be empty (double space before the
colon) and is free text spelled differently across versions (KB 926210
itself prints "MS ExchangeDirectory NSPI Proxy" once), so rows key on the
UUID and the interface name comes from knowledge/rpc_interfaces.yaml. The
tburke.net fragment quotes lines without the ``addr[endpoint]`` prefix; those
parse with a null address. Duplicate lines are real (the KB listing shows the
same STORE ADMIN binding twice) and are kept: one row per line.

Todd Sabin's rpcdump prints 4-line records (``IfId:`` interface uuid and
version, ``Annotation:``, ``UUID:`` object uuid, ``Binding:``); ``-v`` adds
``RpcMgmtInqIfIds succeeded`` + ``Interfaces: N`` + ``uuid vM.m`` lines,
which become ``data.mgmt_interfaces`` and state YES (a failed inquiry: NO).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from . import register
from ._textcommon import (UUID_RE, count_matches, endpoint_row, head_lines, parse_binding,
                          read_lines, unescape_backslashes)
from .base import ParseContext, Source

_HEADER = re.compile(r"^\s*(?P<ps>nca[a-z_]+)\((?P<desc>[^)]*)\)\s*$", re.I)
_RK_LINE = re.compile(
    r"^\s*(?:(?P<addr>[^\s\[]*)\[(?P<ep>[^\]]*)\]\s+)?\[(?P<uuid>" + UUID_RE + r")\]"
    r"(?P<ann>.*?)\s*:(?P<state>YES|NO|NOT_PINGED)\s*$")
_RK_START = re.compile(r"^\s*(?:[^\s\[]*\[[^\]]*\]\s+)?\[" + UUID_RE + r"\]")
_CMD = re.compile(r"^\s*(?:\S*[>$#]\s*)?rpcdump(?:\.exe)?\b.*?[/-]s\s+(?P<host>[^\s>]+)", re.I)
_SABIN_IFID = re.compile(r"^\s*IfId:\s*(?P<uuid>" + UUID_RE + r")\s+version\s+(?P<ver>\d+\.\d+)", re.I)
_SABIN_ANN = re.compile(r"^\s*Annotation:\s?(?P<ann>.*)$")
_SABIN_OBJ = re.compile(r"^\s*UUID:\s*(?P<uuid>" + UUID_RE + r")\s*$")
_SABIN_BIND = re.compile(r"^\s*Binding:\s*(?P<b>\S.*)$")
_SABIN_MGMT = re.compile(r"^\s*RpcMgmtInqIfIds\s+(?P<res>succeeded|failed.*)$", re.I)
_SABIN_COUNT = re.compile(r"^\s*Interfaces:\s*(?P<n>\d+)\s*$")
_SABIN_IFLIST = re.compile(r"^\s*(?P<uuid>" + UUID_RE + r")\s+v(?P<ver>\d+\.\d+)\s*$")
_CMD_SABIN = re.compile(r"^\s*\S*[>$#]\s*rpcdump(?:\.exe)?\b.*\s(?P<host>[A-Za-z0-9][\w.-]*)\s*$", re.I)


@register
class RpcDumpSource(Source):
    name = "rpcdump"
    kind = "rpcdump"
    description = "rpcdump.exe endpoint-mapper dump (Resource Kit or Todd Sabin's RPCTools)"

    def sniff(self, head: bytes, name: str) -> int:
        lines = head_lines(head)
        rk = count_matches(lines, _RK_LINE)
        headers = count_matches(lines, _HEADER)
        sabin = count_matches(lines, _SABIN_IFID)
        sabin_b = count_matches(lines, _SABIN_BIND)
        if rk >= 3 or (rk and headers):
            return 92
        if sabin and sabin_b:
            return 90 if sabin >= 2 else 75
        if rk:
            return 55
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        protseq: str | None = None
        host: str | None = None
        pending: tuple[int, str] | None = None  # Resource Kit line wrapped before :STATE
        sabin: dict[str, Any] | None = None
        n_rows = 0

        def flush_sabin() -> Iterator[dict[str, Any]]:
            nonlocal sabin, n_rows
            if sabin is None:
                return
            rec, sabin = sabin, None
            if "binding" not in rec:
                ctx.warn("IfId record without a Binding: line", f"line={rec['line']}")
                b = None
            else:
                b = parse_binding(rec["binding"])
                if b is None:
                    ctx.warn(f"unreadable binding {rec['binding']!r}", f"line={rec['bline']}")
            proto, addr, ep = b if b else (None, None, None)
            extra: dict[str, Any] = {"object_uuid": rec.get("object_uuid")}
            if "mgmt" in rec:
                extra["mgmt_interfaces"] = rec["mgmt"]
            row = endpoint_row(protocol=proto, address=addr, endpoint=ep, uuid=rec["uuid"],
                               version=rec["version"], annotation=rec.get("annotation"),
                               state=rec.get("state"), host=host,
                               locator=f"line={rec['line']}", extra=extra)
            row["parse_status"] = "ok" if b else "partial"
            n_rows += 1
            yield row

        for ln in read_lines(ctx.fs_path):
            text = ln.text
            if pending is not None:
                joined = pending[1] + " " + text.strip()
                no = pending[0]
                pending = None
                m = _RK_LINE.match(joined)
                if m:
                    n_rows += 1
                    yield self._rk_row(m, protseq, host, no)
                    continue
                ctx.warn("endpoint line without :STATE", f"line={no}")
            if not text.strip():
                continue
            m = _RK_LINE.match(text)
            if m:
                n_rows += 1
                yield self._rk_row(m, protseq, host, ln.no)
                continue
            m = _HEADER.match(text)
            if m:
                protseq = m["ps"].lower()
                continue
            if _RK_START.match(text):
                if ln.last_unterminated:
                    ctx.warn("truncated last line", f"line={ln.no}")
                else:
                    pending = (ln.no, text.strip())
                continue
            m = _SABIN_IFID.match(text)
            if m:
                yield from flush_sabin()
                sabin = {"uuid": m["uuid"], "version": m["ver"], "line": ln.no}
                continue
            if sabin is not None:
                if (m := _SABIN_ANN.match(text)) and "annotation" not in sabin:
                    sabin["annotation"] = m["ann"].strip() or None
                    continue
                if (m := _SABIN_OBJ.match(text)) and "object_uuid" not in sabin:
                    sabin["object_uuid"] = m["uuid"].lower()
                    continue
                if (m := _SABIN_BIND.match(text)) and "binding" not in sabin:
                    sabin["binding"], sabin["bline"] = m["b"].strip(), ln.no
                    continue
                if m := _SABIN_MGMT.match(text):
                    sabin["state"] = "YES" if m["res"].lower() == "succeeded" else "NO"
                    continue
                if _SABIN_COUNT.match(text):
                    sabin.setdefault("mgmt", [])
                    continue
                if (m := _SABIN_IFLIST.match(text)) and "mgmt" in sabin:
                    sabin["mgmt"].append({"uuid": m["uuid"].lower(), "version": m["ver"]})
                    continue
            if m := _CMD.search(text):
                host = m["host"]
                continue
            if m := _CMD_SABIN.search(text):
                host = m["host"]
                continue
            if ln.last_unterminated:
                ctx.warn("truncated last line", f"line={ln.no}")
                continue
            # Anything else (banners, "Querying Endpoint Mapper Database...",
            # "NN registered endpoints found.", prose around a pasted listing)
            # carries no endpoint; say so only when it looks like a damaged one.
            if re.search(UUID_RE, text):
                ctx.warn(f"unrecognised line with a UUID: {text.strip()[:80]!r}", f"line={ln.no}")
        if pending is not None:
            ctx.warn("endpoint line without :STATE at end of file", f"line={pending[0]}")
        yield from flush_sabin()
        if n_rows == 0:
            ctx.warn("no endpoint lines found", None)

    @staticmethod
    def _rk_row(m: re.Match[str], protseq: str | None, host: str | None, no: int) -> dict[str, Any]:
        addr, ep = m["addr"], m["ep"]
        if addr is not None:
            addr, ep = unescape_backslashes(addr, ep)
        row = endpoint_row(protocol=protseq, address=addr, endpoint=ep, uuid=m["uuid"],
                           version=None, annotation=m["ann"], state=m["state"].upper(),
                           host=host, locator=f"line={no}")
        row["parse_status"] = "ok"
        return row
