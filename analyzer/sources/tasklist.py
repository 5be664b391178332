"""``tasklist /svc`` (and plain ``tasklist``) output -> ``process`` rows
(examples: tests/fixtures/text/tasklist_*.txt).

The ``====`` ruler under the (localized) header gives the column widths, so
nothing depends on English header words. Pitfalls:

- service lists wrap: a continuation line has blank image and PID columns
  and its services belong to the row above (``svchost.exe 804
  BrokerInfrastructure, DcomLaunch, Power,`` / ``SystemEventsBroker``);
- image names are cut to the column width (25 characters): such names are
  flagged ``truncated`` (an Exchange ``Microsoft.Exchange.Store.Worker.exe``
  appears as ``Microsoft.Exchange.Store.``);
- reverse-shell captures pad every line to 80 columns; PowerShell ``>``
  writes UTF-16LE, cmd.exe the OEM code page (textio handles both);
- plain ``tasklist`` has Session Name / Session# / Mem Usage columns instead
  of Services; ``Mem Usage`` keeps the locale's thousands separator
  (``12,345 K`` / ``12.345 K``) and becomes ``mem_usage_kb``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from . import register
from ._textcommon import head_lines, read_lines
from .base import ParseContext, Source

_RULER = re.compile(r"^(=+)((?: =+){1,5})\s*$")
_EXEC_SUFFIX = re.compile(r"\.(?:exe|com|scr|bin)$", re.I)


def _spans(ruler: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", ruler)]


@register
class TasklistSource(Source):
    name = "tasklist"
    kind = "tasklist"
    description = "tasklist /svc (or plain tasklist) output"

    def sniff(self, head: bytes, name: str) -> int:
        lines = head_lines(head)
        for i, ln in enumerate(lines):
            m = _RULER.match(ln)
            if not m:
                continue
            spans = _spans(ln)
            if len(spans) not in (3, 5):
                continue
            # the image column is 25 wide, the PID column right-aligned numbers
            if spans[0][1] - spans[0][0] == 25 and any(
                    re.match(r"^.{25}\s+\d+\b", nxt) for nxt in lines[i + 1:i + 6]):
                return 92
            return 55
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        spans: list[tuple[int, int]] | None = None
        cur: dict[str, Any] | None = None
        n = 0
        for ln in read_lines(ctx.fs_path):
            text = ln.raw.rstrip("\r\n").replace("\x00", "").rstrip()
            if _RULER.match(text):
                if cur is not None:
                    yield cur
                    cur = None
                sp = _spans(text)
                spans = sp if len(sp) in (3, 5) else None
                if spans is None:
                    ctx.warn(f"ruler with {len(sp)} columns not understood", f"line={ln.no}")
                continue
            if spans is None or not text.strip():
                continue
            svc_mode = len(spans) == 3
            img_end, pid_end = spans[0][1], spans[1][1]
            image = text[:img_end].strip()
            pid_txt = text[img_end:pid_end].strip()
            rest = text[pid_end:].strip()
            if not image and not pid_txt and svc_mode and cur is not None:
                cur["data"]["services"].extend(self._services(rest))
                cur["message"] = self._message(cur["data"])
                continue
            if not pid_txt.isdecimal():
                # maybe the columns drifted (pasted text): fall back to tokens
                m = re.match(r"^(?P<image>.+?)\s+(?P<pid>\d+)(?:\s+(?P<rest>.*))?$", text.strip())
                if not m or not image:
                    ctx.warn("truncated last line" if ln.last_unterminated
                             else f"unreadable tasklist row {text.strip()[:80]!r}", f"line={ln.no}")
                    continue
                image, pid_txt, rest = m["image"], m["pid"], (m["rest"] or "")
            if cur is not None:
                yield cur
            data: dict[str, Any] = {
                "image": image, "pid": int(pid_txt),
                "truncated": len(image) >= img_end and not _EXEC_SUFFIX.search(image)}
            if svc_mode:
                data["services"] = self._services(rest)
            else:
                data["services"] = None
                cols = [text[a:b].strip() if b <= len(text) else text[a:].strip()
                        for a, b in spans[2:]]
                cols += [""] * (3 - len(cols))
                data["session_name"] = cols[0] or None
                data["session_num"] = int(cols[1]) if cols[1].isdecimal() else None
                mem = re.sub(r"[^\d]", "", text[spans[4][0]:]) if len(text) > spans[4][0] else ""
                data["mem_usage_kb"] = int(mem) if mem else None
            cur = {"kind": "process", "data": data, "locator": f"line={ln.no}",
                   "level": "information", "parse_status": "ok",
                   "message": self._message(data)}
            n += 1
        if cur is not None:
            yield cur
        if n == 0:
            ctx.warn("no tasklist rows found", None)

    @staticmethod
    def _services(text: str) -> list[str]:
        if text.strip().upper() in ("N/A", ""):
            return []
        return [s.strip() for s in text.split(",") if s.strip()]

    @staticmethod
    def _message(data: dict[str, Any]) -> str:
        svcs = data.get("services")
        tail = f" {', '.join(svcs)}" if svcs else ""
        return f"{data['image']} pid={data['pid']}{tail}"
