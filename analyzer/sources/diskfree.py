"""Disk free-space outputs -> one ``volume_space`` row per volume.

Transport back pressure (MSExchangeTransport 15002/15004/15006) fires when
the queue database or queue log volume runs short of space; the customer's
proof of free space comes as whatever command they ran. Every form becomes
the same row: ``volume``, ``free_bytes``, ``total_bytes`` and, when both
are known, ``percent_used`` — rounded *down*, the way Exchange's resource
monitor computes it — so a check compares one number with the thresholds
of the event.

Forms handled (labels and words in ``analyzer/knowledge/diskfree.yaml``):

- ``fsutil volume diskfree C:``: the classic ``Total # of free bytes  :``
  lines and the newer ``Total free bytes : 58,128,412,672 ( 54.1 GB)``
  wording; the output never names the volume, so it comes from the command
  line when present, else from a file name such as ``diskfree-D.txt``
  (``volume_from`` says which);
- ``wmic logicaldisk get caption,freespace,size``: columns in alphabetical
  order whatever was typed, found by the header's positions; UTF-16LE with
  ``\\r\\r\\n`` line ends when redirected; empty cells for drives without
  media;
- ``dir`` summary ``N Dir(s)  X bytes free`` (localized words, thousands
  separators ``,`` ``.`` space NBSP), the volume from ``Directory of``;
  only free space is known;
- PowerShell ``Get-WmiObject Win32_LogicalDisk`` (list or table) and
  ``Get-PSDrive`` (table: ``Used (GB)``/``Free (GB)`` in decimal GB, so the
  row is marked ``approximate``; list: bytes).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from .. import knowledge
from . import register
from ._textcommon import Line, head_lines, read_lines
from .base import ParseContext, Source

_CMD_FSUTIL = re.compile(r"^\s*(?:[A-Za-z]:\\[^>]*>|PS [^>]*>)?\s*fsutil(?:\.exe)?\s+volume\s+diskfree\s+"
                         r"(?P<vol>\S+)", re.I)
_PROMPT = re.compile(r"^\s*(?:[A-Za-z]:\\[^>]*>|PS [^>]*>)")
_RULER = re.compile(r"^\s*-{2,}(?:\s+-{2,})*\s*$")
_FL = re.compile(r"^(?P<k>[A-Za-z][\w ()]*?)\s*:\s?(?P<v>.*)$")
_NAME_VOLUME = re.compile(r"(?:^|[-_ .])(?P<v>[A-Za-z])(?:[-_ ]?(?:drive|volume|vol))?$", re.I)
_NUMBER = r"\d[\d,.'\s\u00a0\u202f]*\d|\d"
_GB = 1024 ** 3


@dataclass(frozen=True)
class _Vocab:
    fsutil: re.Pattern[str]
    fsutil_field: dict[str, str | None]
    dir_free: re.Pattern[str]
    directory_of: re.Pattern[str]
    volume_in: re.Pattern[str]


@cache
def vocab() -> _Vocab:
    k = knowledge.load("diskfree")
    fld: dict[str, str | None] = {lab.lower(): f for f, labs in k["fsutil_labels"].items() for lab in labs}
    fld.update({lab.lower(): None for lab in k["fsutil_other"]})
    alts = "|".join(re.escape(x) for x in sorted(fld, key=len, reverse=True))
    dirs = "|".join(re.escape(x) for x in k["dir_dirs_words"])
    free = "|".join(re.escape(x) for x in k["dir_free_words"])
    return _Vocab(
        re.compile(rf"^\s*(?P<label>{alts})\s*:\s*(?P<value>.*?)\s*$", re.I), fld,
        re.compile(rf"^\s*(?P<dirs>\d[\d,.\s]*?)\s+(?:{dirs})\s+(?P<free>{_NUMBER})\s+(?:{free})\s*$", re.I),
        re.compile(rf"^\s*(?:{'|'.join(re.escape(x) for x in k['dir_directory_of'])})\s+"
                   r"(?P<dir>(?P<vol>[A-Za-z]:)?\S.*?)\s*$", re.I),
        re.compile(rf"^\s*(?:{'|'.join(re.escape(x) for x in k['dir_volume_in_drive'])})\s+"
                   r"(?P<vol>[A-Za-z]):?\s", re.I))


def to_int(text: str | None) -> int | None:
    """``58,128,412,672 ( 54.1 GB)`` / ``524.288.000`` / ``1 048 576`` -> int;
    None when ``text`` holds no number."""
    if text is None:
        return None
    body = re.sub(r"\(.*?\)\s*$", "", text).strip()
    digits = re.sub(r"[,.'\s\u00a0\u202f]", "", body)
    return int(digits) if digits.isdecimal() else None


def _volume(text: str | None) -> str | None:
    if not text:
        return None
    m = re.match(r"^([A-Za-z]):?\\?$", text.strip())
    return f"{m[1].upper()}:" if m else text.strip()


def volume_row(tool: str, volume: str | None, free: int | None, total: int | None, locator: str,
               **extra: Any) -> dict[str, Any]:
    """The ``volume_space`` row every form produces."""
    used = extra.pop("used_bytes", None)
    if used is None and free is not None and total is not None:
        used = total - free
    pct = math.floor(100 * (total - free) / total) if free is not None and total else None
    data: dict[str, Any] = {"tool": tool, "volume": volume, "free_bytes": free, "total_bytes": total,
                            "used_bytes": used, "percent_used": pct,
                            "percent_free": round(100 * free / total, 2) if pct is not None else None}
    data.update(extra)
    gib = f"{free / _GB:.2f} GB free" if free is not None else "free space unknown"
    msg = f"{volume or '?'} {gib}" + (f" of {total / _GB:.2f} GB ({pct}% used)" if pct is not None else "")
    return {"kind": "volume_space", "level": "information", "message": msg, "data": data,
            "locator": locator, "parse_status": "ok"}


def _columns(header: str, names: list[str] | None = None) -> list[tuple[str, int, int]]:
    """Column (name, start, end) from a header (or a ``----`` ruler) line."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+(?: \S+)*" if names is None else r"-+", header)]
    out = []
    for i, (a, _b) in enumerate(spans):
        end = spans[i + 1][0] if i + 1 < len(spans) else 10 ** 6
        name = header[a:_b] if names is None else names[i] if i < len(names) else f"col{i}"
        out.append((name.strip(), a, end))
    return out


def _cells(line: str, cols: list[tuple[str, int, int]]) -> dict[str, str]:
    cells = {n: line[a:e].strip() for n, a, e in cols}
    words = line.split()
    if len(words) == len(cols) and any(cells[n] != w for (n, _, _), w in zip(cols, words)):
        # a web copy that lost the alignment but kept one word per column
        cells = {n: w for (n, _, _), w in zip(cols, words)}
    return cells


def _is_table_header(line: str) -> bool:
    words = set(re.findall(r"[A-Za-z]+(?: \(GB\))?", line))
    return ({"FreeSpace", "Size"} <= words and bool({"Caption", "DeviceID", "Name"} & words)) or \
        {"Name", "Used (GB)", "Free (GB)"} <= words


def _float(text: str | None) -> float | None:
    try:
        return float(text.replace(",", ".")) if text else None
    except ValueError:
        return None


class _Parser:
    """Line state machine; finished rows go to ``out``."""

    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.out: list[dict[str, Any]] = []
        self.fsutil: dict[str, Any] | None = None
        self.fsutil_vol: str | None = None
        self.table: tuple[str, list[tuple[str, int, int]]] | None = None
        self.pending_header: Line | None = None
        self.fl: dict[str, str] = {}
        self.fl_line = 0
        self.dir_vol: str | None = None
        self.directory: str | None = None
        self.cut_from = 10 ** 9

    # -- fsutil ---------------------------------------------------------------
    def flush_fsutil(self) -> None:
        b, self.fsutil = self.fsutil, None
        if not b:
            return
        extra = {k: v for k, v in b.items() if k in ("avail_free_bytes", "used_bytes", "reserved_bytes")}
        row = volume_row("fsutil", b.get("volume"), b.get("free_bytes"), b.get("total_bytes"),
                         f"line={b['line']}", volume_from="command" if b.get("volume") else None, **extra)
        if b.get("partial"):
            row["parse_status"] = "partial"
        self.out.append(row)

    def fsutil_line(self, ln: Line, m: re.Match[str]) -> None:
        fld = vocab().fsutil_field[re.sub(r"\s+", " ", m["label"]).lower()]
        if self.fsutil is not None and fld is not None and fld in self.fsutil:
            self.flush_fsutil()
        if self.fsutil is None:
            self.fsutil = {"line": ln.no, "volume": self.fsutil_vol}
            self.fsutil_vol = None
        if fld is None:
            return
        value = to_int(m["value"])
        if value is None and not ln.last_unterminated:
            self.ctx.warn(f"unreadable number {m['value'][:40]!r}", f"line={ln.no}")
            self.fsutil["partial"] = True
        if value is not None:
            self.fsutil[fld] = value

    # -- tables (wmic, PowerShell Format-Table) ----------------------------------
    def start_table(self, header: Line, ruler: str | None) -> None:
        if ruler is None:
            self.table = ("wmic", _columns(header.text))
            return
        names = [header.text[a:e].strip() for _n, a, e in _columns(ruler, [])]
        kind = "psdrive" if "Used (GB)" in names else "wmiobject"
        self.table = (kind, _columns(ruler, names))

    def table_row(self, ln: Line) -> bool:
        """One table line; False when the line does not belong to the table."""
        assert self.table is not None
        tool, cols = self.table
        c = _cells(ln.text, cols)
        vol = c.get("Caption") or c.get("DeviceID") or c.get("Name")
        if not vol or not re.match(r"^[A-Za-z][\w$]*:?\\?$", vol):
            return False
        loc = f"line={ln.no}"
        if tool == "psdrive":
            used, free = _float(c.get("Used (GB)")), _float(c.get("Free (GB)"))
            if used is None or free is None:
                return True  # Env:, HKLM: and other non-disk drives
            fb, ub = round(free * _GB), round(used * _GB)
            self.out.append(volume_row("get-psdrive", _volume(vol), fb, fb + ub, loc, used_bytes=ub,
                                       approximate=True, volume_from="output"))
            return True
        free, size = to_int(c.get("FreeSpace")), to_int(c.get("Size"))
        extra = {k: c[n] for k, n in (("volume_name", "VolumeName"), ("file_system", "FileSystem"),
                                      ("drive_type", "DriveType")) if c.get(n)}
        self.out.append(volume_row("wmic" if tool == "wmic" else "get-wmiobject", _volume(vol), free, size,
                                   loc, volume_from="output", **extra))
        return True

    # -- Format-List ---------------------------------------------------------------
    def flush_fl(self) -> None:
        b, self.fl = self.fl, {}
        loc = f"line={self.fl_line}"
        if "FreeSpace" in b and ("DeviceID" in b or "Name" in b):
            extra = {k: b[n] for k, n in (("volume_name", "VolumeName"), ("file_system", "FileSystem"),
                                          ("drive_type", "DriveType")) if b.get(n)}
            self.out.append(volume_row("get-wmiobject", _volume(b.get("DeviceID") or b.get("Name")),
                                       to_int(b.get("FreeSpace")), to_int(b.get("Size")), loc,
                                       volume_from="output", **extra))
        elif {"Name", "Used", "Free"} <= b.keys() and "FileSystem" in b.get("Provider", "FileSystem"):
            free, used = to_int(b["Free"]), to_int(b["Used"])
            total = free + used if free is not None and used is not None else None
            self.out.append(volume_row("get-psdrive", _volume(b["Name"]), free, total, loc,
                                       used_bytes=used, volume_from="output"))

    # -- driver ------------------------------------------------------------------
    def flush_all(self) -> None:
        self.flush_fsutil()
        if self.fl:
            self.flush_fl()
        self.table = None

    def feed(self, ln: Line) -> None:
        text = ln.text
        if ln.last_unterminated and text.strip() and not _PROMPT.match(text):
            # Whatever this line completes (or leaves incomplete) is marked partial in finish().
            self.ctx.warn("truncated last line", f"line={ln.no}")
            self.cut_from = len(self.out)
        if (m := _CMD_FSUTIL.match(text)):
            self.flush_all()
            self.fsutil_vol = _volume(m["vol"])
            return
        if _PROMPT.match(text):
            self.flush_all()
            self.pending_header = None
            return
        if not text.strip():
            if self.fl:
                self.flush_fl()
            return
        if self.pending_header is not None:
            header, self.pending_header = self.pending_header, None
            if _RULER.match(text):
                self.start_table(header, text)
                return
            self.start_table(header, None)
        if (m := vocab().fsutil.match(text)):
            self.table = None
            self.fsutil_line(ln, m)
            return
        self.flush_fsutil()
        if self.dir_line(ln):
            return
        if _is_table_header(text):
            self.flush_all()
            self.pending_header = ln
            return
        if self.table is not None:
            if self.table_row(ln):
                return
            self.table = None
        m = _FL.match(text.strip())
        if m and (self.fl or m["k"] in ("DeviceID", "Name")):
            self.fl_line = self.fl_line if self.fl else ln.no
            self.fl[m["k"].strip()] = m["v"].strip()

    def dir_line(self, ln: Line) -> bool:
        v = vocab()
        if (m := v.volume_in.match(ln.text)):
            self.dir_vol = f"{m['vol'].upper()}:"
            return True
        if (m := v.directory_of.match(ln.text)):
            self.directory = m["dir"]
            if m["vol"]:
                self.dir_vol = m["vol"].upper()
            return True
        if (m := v.dir_free.match(ln.text)):
            free = to_int(m["free"])
            self.out.append(volume_row("dir", self.dir_vol, free, None, f"line={ln.no}",
                                       directory=self.directory,
                                       volume_from="output" if self.dir_vol else None))
            return True
        return False

    def finish(self, name: str) -> None:
        if self.pending_header is not None:
            self.ctx.warn("table header without rows", f"line={self.pending_header.no}")
        self.flush_all()
        for row in self.out[self.cut_from:]:
            row["parse_status"] = "partial"
        nameless = [r for r in self.out if r["data"]["volume"] is None]
        stem = re.sub(r"\.[^.]*$", "", name.replace("\\", "/").rsplit("/", 1)[-1].rsplit("!", 1)[-1])
        m = _NAME_VOLUME.search(stem)
        if len(nameless) == 1 and m:
            nameless[0]["data"].update(volume=f"{m['v'].upper()}:", volume_from="file name")
            nameless[0]["message"] = f"{m['v'].upper()}:" + nameless[0]["message"][1:]


@register
class DiskFreeSource(Source):
    name = "diskfree"
    kind = "disk-free"
    description = "fsutil volume diskfree, wmic logicaldisk, dir summary, Get-PSDrive / Win32_LogicalDisk"

    def sniff(self, head: bytes, name: str) -> int:
        v = vocab()
        lines = head_lines(head, limit=400)
        fsutil = sum(1 for ln in lines if v.fsutil.match(ln) and to_int(v.fsutil.match(ln)["value"]) is not None)
        if fsutil >= 2:
            return 95
        if any(_is_table_header(ln) for ln in lines):
            return 88
        if any(v.dir_free.match(ln) for ln in lines):
            return 85
        fl = {m["k"] for ln in lines if (m := _FL.match(ln.strip()))}
        if {"DeviceID", "FreeSpace", "Size"} <= fl:
            return 85
        if fsutil:
            return 60
        if any(v.volume_in.match(ln) for ln in lines[:5]) and any(v.directory_of.match(ln) for ln in lines):
            return 60
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        p = _Parser(ctx)
        for ln in read_lines(ctx.fs_path):
            p.feed(ln)
        p.finish(ctx.path)
        yield from p.out
        if not p.out:
            ctx.warn("no free-space figures found", None)
