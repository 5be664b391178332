"""Exchange 2007+ SMTP protocol logs (Send and Receive connectors) ->
``smtp_protocol`` rows, one per logged line.

The files (``RECV*.LOG`` / ``SEND*.LOG`` under ``TransportRoles\\Logs\\
ProtocolLog``) start with a W3C-like header block: ``#Software: Microsoft
Exchange Server``, ``#Version: 8.0.0.0`` (2007) / ``14.0.0.0`` (2010),
``#Log-type: SMTP Receive Protocol Log`` or ``SMTP Send Protocol Log``,
``#Date:`` and ``#Fields: date-time,connector-id,session-id,
sequence-number,local-endpoint,remote-endpoint,event,data,context``. Then
RFC-4180 CSV lines. What the parser copes with:

- a new header block mid-file (the transport service restarted): the
  ``#Fields:`` line resets the columns, ``#Log-type:`` the direction;
- quoted fields holding commas (the ``220`` banner with its date), unquoted
  data with double spaces (``250  SERVER Hello``);
- the same sequence number repeated (one SMTP exchange logged as several
  ``*`` lines) or skipped: rows are kept as written, never renumbered;
- a Send log's first ``*`` line has no local endpoint yet (empty field);
- an unterminated or short last line (a log copied while the service was
  writing it): a warning with its line number, the row marked partial.

Event column: ``+`` connect, ``-`` disconnect, ``>`` sent by this server,
``<`` received from the remote, ``*`` information. When ``data`` is an SMTP
reply (``451 4.4.0 ...``, ``550 5.1.1 ...``, ``250-SIZE``), its code and
enhanced status code (RFC 3463) become fields, so a check can count 4xx/5xx
replies per remote endpoint without parsing text. Times are UTC.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from . import register
from ._textcommon import head_lines, read_lines
from .base import ParseContext, Source
from .netstat import split_endpoint

#: The columns every Exchange 2007/2010 protocol log declares.
DEFAULT_FIELDS = ["date-time", "connector-id", "session-id", "sequence-number", "local-endpoint",
                  "remote-endpoint", "event", "data", "context"]
EVENT_NAMES = {"+": "connect", "-": "disconnect", ">": "send", "<": "receive", "*": "information"}

_LOG_TYPE = re.compile(r"^#Log-type:\s*SMTP\s+(?P<dir>Send|Receive)\s+Protocol\s+Log", re.I)
_FIELDS = re.compile(r"^#Fields:\s*(?P<f>.*)$", re.I)
_HEADER = re.compile(r"^#(?P<name>Software|Version|Date):\s*(?P<value>.*)$", re.I)
#: A data line without any header (a pasted fragment): ISO time, connector,
#: 16-hex-digit session id, sequence number.
_BARE_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z,[^,]*,[0-9A-F]{16},\d+,", re.I)
#: An SMTP reply: 3-digit code, ``-`` (continued) or space or end, then an
#: optional enhanced status code class.subject.detail.
_REPLY = re.compile(r"^(?P<code>[2-5]\d\d)(?P<sep>[ -]|$)\s*(?:(?P<enh>[245]\.\d{1,3}\.\d{1,3})\b)?")


def parse_reply(text: str) -> dict[str, Any] | None:
    """``"451 4.4.0 DNS query failed"`` -> ``{"smtp_code": 451,
    "enhanced_status": "4.4.0", "reply_continued": False}``; None when ``text``
    is not an SMTP reply."""
    m = _REPLY.match(text.strip())
    if not m:
        return None
    return {"smtp_code": int(m["code"]), "enhanced_status": m["enh"], "reply_continued": m["sep"] == "-"}


def _iso_utc(text: str) -> datetime | None:
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else None


@register
class SmtpProtocolLogSource(Source):
    name = "smtplog"
    kind = "smtp-protocol-log"
    description = "Exchange 2007+ SMTP Send/Receive connector protocol logs"

    def sniff(self, head: bytes, name: str) -> int:
        lines = head_lines(head, limit=60)
        if any(_LOG_TYPE.match(ln) for ln in lines[:20]):
            return 97
        for ln in lines[:40]:
            m = _FIELDS.match(ln)
            if m:
                cols = {c.strip().lower() for c in m["f"].split(",")}
                if {"connector-id", "session-id", "sequence-number"} <= cols:
                    return 93
        bare = sum(1 for ln in lines if _BARE_LINE.match(ln))
        return 80 if bare >= 2 else 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        fields = DEFAULT_FIELDS
        header: dict[str, Any] = {}
        n = 0
        for ln in read_lines(ctx.fs_path):
            text = ln.raw.replace("\x00", "").lstrip("\ufeff")
            if not text.strip():
                continue
            if text.startswith("#"):
                header, fields = self._header_line(text, header, fields)
                continue
            row = self._row(ctx, text, fields, header, ln.no, ln.last_unterminated)
            if row is not None:
                n += 1
                yield row
        if n == 0:
            ctx.warn("no SMTP protocol log lines found", None)

    @staticmethod
    def _header_line(text: str, header: dict[str, Any],
                     fields: list[str]) -> tuple[dict[str, Any], list[str]]:
        """Apply one ``#`` line; a ``#Software`` line opens a new block."""
        if (m := _LOG_TYPE.match(text)):
            return {**header, "log_type": m["dir"].lower()}, fields
        if (m := _FIELDS.match(text)):
            cols = [c.strip() for c in m["f"].split(",") if c.strip()]
            return header, cols or fields
        if (m := _HEADER.match(text)):
            key = m["name"].lower()
            base = {} if key == "software" else header
            return {**base, key: m["value"].strip()}, fields
        return header, fields

    def _row(self, ctx: ParseContext, text: str, fields: list[str], header: dict[str, Any],
             no: int, last: bool) -> dict[str, Any] | None:
        try:
            values = next(csv.reader([text]))
        except (csv.Error, StopIteration) as exc:
            ctx.warn(f"unreadable CSV line: {exc}", f"line={no}")
            return None
        rec = dict(zip(fields, values))
        ts = _iso_utc(rec.get("date-time", ""))
        if ts is None:
            ctx.warn("truncated last line" if last else
                     f"not a protocol log line (bad date-time {text[:40]!r})", f"line={no}")
            return None
        status = "ok"
        if len(values) != len(fields):
            what = "truncated last line" if last else \
                f"{len(values)} fields where the header declares {len(fields)}"
            ctx.warn(what, f"line={no}")
            status = "partial"
        data = self._data(rec, header)
        level = "information"
        code = data.get("smtp_code")
        if code is not None and data["event"] in ("<", ">"):
            level = "error" if code >= 500 else "warning" if code >= 400 else "information"
        connector = data["connector_id"] or ""
        host = connector.split("\\", 1)[0] if "\\" in connector else None
        body = data["data"] or data["context"] or ""
        msg = f"{data['session_id'] or '?'} {data['event'] or '?'} {body}".rstrip()
        return {"kind": "smtp_protocol", "ts": ts, "ts_source": "utc", "host": host or None,
                "level": level, "message": msg, "data": data, "locator": f"line={no}",
                "parse_status": status}

    @staticmethod
    def _data(rec: dict[str, str], header: dict[str, Any]) -> dict[str, Any]:
        """The row's ``data``: every column, endpoints split, reply decoded."""
        seq = rec.get("sequence-number", "")
        event = rec.get("event") or None
        data: dict[str, Any] = {
            "log_type": header.get("log_type"),
            "log_version": header.get("version"),
            "connector_id": rec.get("connector-id") or None,
            "session_id": rec.get("session-id") or None,
            "sequence_number": int(seq) if seq.isdecimal() else None,
            "local_endpoint": rec.get("local-endpoint") or None,
            "remote_endpoint": rec.get("remote-endpoint") or None,
            "event": event,
            "event_name": EVENT_NAMES.get(event or ""),
            "data": rec.get("data") or None,
            "context": rec.get("context") or None,
        }
        for side in ("local", "remote"):
            ep = data[f"{side}_endpoint"]
            addr, port = split_endpoint(ep) if ep and ":" in ep else (ep, None)
            data[f"{side}_address"], data[f"{side}_port"] = addr, port
        for extra in set(rec) - set(DEFAULT_FIELDS):
            data[re.sub(r"[^0-9a-z]+", "_", extra.lower()).strip("_")] = rec[extra] or None
        reply = parse_reply(data["data"] or "") if event in ("<", ">") else None
        data.update(reply or {"smtp_code": None, "enhanced_status": None, "reply_continued": None})
        return data
