"""``ExchangeSetup.log`` of Exchange 2007 / 2010 / 2013 / 2016 / 2019
(examples: tests/fixtures/text/exsetup_*.txt).

Line format ``[<date> <HH:MM:SS>.<ffff>] [<depth>] <message>``. Pitfalls:

- the date is culture-formatted: ``04/11/2023``, ``11.14.2022``,
  ``2023-04-11``; separators ``/ . -``; day/month order unknown. The order is
  decided once per file in a first cheap pass over the line prefixes (a
  first part > 12 means day-first, a second part > 12 month-first; if the
  file never disambiguates, month-first is assumed and noted). Times are the
  server's local time (``ts_source`` "local"); the 4-digit fraction is
  1/10000 s. A 12-hour clock with an AM/PM word is accepted;
- ``[depth]`` is the task nesting (0 launcher, 1 component task, 2 exsetdata
  atoms) -> ``data.depth``;
- ``[ERROR]`` / ``[ERROR-REFERENCE]`` / ``[WARNING]`` markers set the level;
- lines without the prefix (.NET stack traces, PowerShell blocks with TABs,
  ``Error code 0X...`` lines of the embedded legacy exsetdata engine) belong
  to the previous record and are folded into its message with newlines;
- the same HRESULT appears as hex (``0X8007200A (8202)``) and as unsigned
  decimal (``error code '2147950602'``): both are normalized to
  ``data.error_code`` = "0X8007200A";
- runs: each setup run is bracketed by ``*****`` lines and ends with ``End
  of Setup``; a file accumulates many runs -> ``data.run`` (1-based). The
  un-prefixed banner ``Starting Microsoft Exchange Server 2019 Setup`` before
  a run's first ruler belongs to that run.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from . import register
from ._textcommon import head_lines, read_lines
from .base import ParseContext, Source

_PREFIX = re.compile(
    r"^\s*\[(?P<a>\d{1,4})(?P<sep>[/.-])(?P<b>\d{1,2})[/.-](?P<c>\d{1,4})\s+"
    r"(?P<h>\d{1,2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:[.,](?P<f>\d{1,7}))?(?:\s*(?P<ampm>[^\]\s]{1,6}))?\]"
    r"\s*\[(?P<depth>\d+)\]\s?(?P<msg>.*)$")
_MARK = re.compile(r"^\s*\[(?P<m>ERROR|ERROR-REFERENCE|WARNING)\]")
_HEXCODE = re.compile(r"Error code (?P<code>0[Xx][0-9A-Fa-f]{8})")
_DECCODE = re.compile(r"error code '(?P<dec>-?\d{4,10})'", re.I)
_RULER = re.compile(r"^\*{10,}\s*$")
_END = re.compile(r"^End of Setup\b", re.I)
_PM = frozenset({"PM", "P.M.", "NACHM.", "ΜΜ"})
_AM = frozenset({"AM", "A.M.", "VORM.", "ΠΜ"})


def _order(lines: list[tuple[int, int, int, int]]) -> tuple[str, bool]:
    """('ymd'|'dmy'|'mdy', decided?) from (len(a), a, b, c) prefixes."""
    if any(la == 4 for la, _, _, _ in lines):
        return "ymd", True
    if any(a > 12 for _, a, _, _ in lines):
        return "dmy", True
    if any(b > 12 for _, _, b, _ in lines):
        return "mdy", True
    return "mdy", False


@register
class ExchangeSetupLogSource(Source):
    name = "exsetuplog"
    kind = "exchangesetup-log"
    description = "ExchangeSetup.log (Exchange 2007 and later)"

    def sniff(self, head: bytes, name: str) -> int:
        lines = head_lines(head)
        hits = sum(1 for ln in lines if _PREFIX.match(ln))
        if hits >= 2:
            return 95
        return 70 if hits else 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        prefixes = []
        for ln in read_lines(ctx.fs_path):
            m = _PREFIX.match(ln.text)
            if m:
                prefixes.append((len(m["a"]), int(m["a"]), int(m["b"]), int(m["c"])))
                if len(prefixes) > 5000 and _order(prefixes)[1]:
                    break
        order, decided = _order(prefixes)
        if prefixes and not decided:
            ctx.note("date order ambiguous (no part > 12): month/day assumed")

        run = 0
        in_run = False
        last_msg = ""
        cur: dict[str, Any] | None = None
        more: list[str] = []  # un-prefixed lines folded into cur
        n = 0
        for ln in read_lines(ctx.fs_path):
            text = ln.text
            m = _PREFIX.match(text)
            if not m:
                if not text.strip():
                    continue
                if cur is not None:
                    # Folded lines are collected and joined once when the
                    # record ends; only the new line is searched for codes
                    # (codes never span lines), so a record followed by
                    # 40,000 un-prefixed lines costs linear time.
                    more.append(text.rstrip())
                    self._codes(more[-1], cur["data"])
                    continue
                # un-prefixed line before any record: the run banner
                cur = self._row(None, text.strip(), None, run if in_run else run + 1, ln.no, None)
                continue
            if cur is not None:
                yield self._joined(cur, more)
                n += 1
            more = []
            msg = m["msg"].rstrip()
            depth = int(m["depth"])
            if _RULER.match(msg):
                if not in_run:
                    run, in_run = run + 1, True
                elif _END.match(last_msg):
                    in_run = False
                else:  # a new run started without the previous one ending
                    run += 1
            elif not in_run:
                run, in_run = run + 1, True
            last_msg = msg
            ts = self._ts(ctx, m, order, ln.no)
            cur = self._row(ts, msg, depth, run, ln.no, m)
            if ln.last_unterminated and not msg.endswith((".", "*", "'", ":")):
                ctx.warn("truncated last line", f"line={ln.no}")
                cur["parse_status"] = "partial"
        if cur is not None:
            yield self._joined(cur, more)
            n += 1
        if n == 0:
            ctx.warn("no ExchangeSetup.log lines found", None)

    @staticmethod
    def _joined(cur: dict[str, Any], more: list[str]) -> dict[str, Any]:
        if more:
            cur["message"] = "\n".join([cur["message"], *more])
        return cur

    @staticmethod
    def _ts(ctx: ParseContext, m: re.Match[str], order: str, no: int) -> datetime | None:
        a, b, c = int(m["a"]), int(m["b"]), int(m["c"])
        y, mo, d = {"ymd": (a, b, c), "dmy": (c, b, a), "mdy": (c, a, b)}[order]
        if y < 100:
            y += 2000
        h = int(m["h"])
        ampm = (m["ampm"] or "").upper()
        if ampm in _PM and h < 12:
            h += 12
        elif ampm in _AM and h == 12:
            h = 0
        frac = (m["f"] or "0")[:6].ljust(6, "0")
        try:
            return datetime(y, mo, d, h, int(m["mi"]), int(m["s"]), int(frac))
        except ValueError:
            ctx.warn(f"invalid date/time {m.group(0)[:40]!r}", f"line={no}")
            return None

    def _row(self, ts: datetime | None, msg: str, depth: int | None, run: int, no: int,
             m: re.Match[str] | None) -> dict[str, Any]:
        mark = _MARK.match(msg)
        marker = mark["m"] if mark else None
        level = "error" if marker in ("ERROR", "ERROR-REFERENCE") else (
            "warning" if marker == "WARNING" else "information")
        data: dict[str, Any] = {"run": run, "depth": depth, "error": marker == "ERROR",
                                "marker": marker}
        if m is not None:
            data["time"] = f"{m['h']}:{m['mi']}:{m['s']}" + (f".{m['f']}" if m["f"] else "")
        self._codes(msg, data)
        return {"kind": "setup_line", "ts": ts, "ts_source": "local" if ts else "none",
                "level": level, "message": msg, "data": data, "locator": f"line={no}",
                "parse_status": "ok"}

    @staticmethod
    def _codes(msg: str, data: dict[str, Any]) -> None:
        if "error_code" in data:
            return
        if hm := _HEXCODE.search(msg):
            data["error_code"] = "0X" + hm["code"][2:].upper()
        elif dm := _DECCODE.search(msg):
            v = int(dm["dec"]) & 0xFFFFFFFF
            data["error_code"] = f"0X{v:08X}"
            data["error_code_dec"] = dm["dec"]
