"""Event log text exports made of "Label: value" blocks.

One parser for every block-shaped export, because customers (and KB
articles) mix them in one file
(tests/fixtures/eventtext/mom2005_console_seed000.txt holds MOM console
blocks and a KB block for DCOM 10000 in the same text):

- **KB blocks** (NT4-2003 Event Viewer "copy to clipboard", KB articles):
  ``Event Type:``, ``Event Source:``, ``Event Category:``, ``Event ID:``,
  ``Date:``, ``Time:``, ``User:``, ``Computer:``, ``Description:`` in any order
  and spacing (``Event ID:2155``, ``Event ID : 10000``, column aligned), short
  labels (``Source:``, ``Type:``, ``Category:``), an optional ``Data:`` hex dump.
- **Vista+ "Copy details as text"**: ``Log Name:`` ... ``Description:`` ...
  ``Event Xml:`` followed by the event XML (HTML-escaped in web pastes,
  sometimes malformed). The XML is parsed (see eventxml.py) and wins for
  ids, record id, qualifiers and the UTC time.
- **wevtutil qe /f:text**: ``Event[n]:`` then indented labels, the
  description on the following lines at column 0 until the next ``Event[n]:``.
- **MOM 2005 Operator Console event details**: ``Description:``
  first, then ``Domain:``, ``Computer:``, ``Time:``, ``Type:``,
  ``Provider Name:``, ``Event Number:``, ``Provider Type:``, ``Source:``.
  These events never were in a Windows log (MOM wrote them to its own
  database), so they get channel ``"MOM"``; provider is the ``Source``
  ("Exchange MOM"), event id the Event Number. OpsMgr 2007 events come from
  the real "Operations Manager" log and keep that channel from ``Log Name:``.

Robustness rules for text scraped from the web (a pasted article may have
lost its line breaks): a label may be glued to the preceding text (``Exchange_Server_Name
Time:`` arrives as ``Exchange_Server_NameTime:``) — glued labels are only
recognised case-sensitively in their English spelling; ``Event Number 9970``
may lack its colon; a value may wrap onto the next line (``Source: Exchange``
/ ``MOM``); a label with an empty value takes the next line. Inside a
description only the labels that can end it are recognised (a 529
description contains ``User Name:`` and ``Domain:`` lines that are not
block labels): in KB style a block-starting label (``Event ...``, ``Log
Name``) or ``Data:``; in MOM style the MOM field labels; in wevtutil style
only ``Event[n]:``; in "Copy details" style ``Event Xml:`` / ``Log Name:``.

Times: ``Date:``/``Time:`` are the viewer's local wall-clock time with no
zone. We store that wall-clock time in ``ts`` as if it were UTC and set
``ts_source = "local"`` (the table cannot know the offset; a check comparing
with UTC sources must allow for it). ``SystemTime`` from an ``Event Xml``
section is real UTC (``ts_source = "utc"``); the local text is then kept in
``data["local_time"]``. Slash dates are read M/D/Y (US Event Viewer) unless
the first number exceeds 12; dotted dates D.M.Y.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from .. import knowledge, textio
from ..messages import extract_fields, render
from . import ParseContext, Source, register
from .eventxml import event_row, parse_fragment

#: Labels that, at line start, open a new block (KB style "strong" labels).
_STRONG = {"log_name", "event_id", "event_number"}
#: MOM console fields (any of them ends a MOM description).
_MOM_FIELDS = {"domain", "computer", "time", "date", "type", "provider_name",
               "event_number", "provider_type", "source"}
#: Fields that make a block a MOM console block.
_MOM_MARKERS = {"event_number", "provider_name", "provider_type", "domain"}
#: Description lines kept in KB/MOM style before we assume the paste ran on
#: into article prose (wevtutil/"Copy details" have explicit ends).
_MAX_DESC_LINES = 60

_EVENT_N = re.compile(r"^\s*Event\[(\d+)\]\s*:?\s*$")
_NOT_FOUND = re.compile(
    r"The description for Event ID \(\s*(\d+)\s*\) in Source \(\s*(.*?)\s*\) (?:could not|cannot) be found"
    r".*?(?:insertion string\(s\)|included with the event|is part of the event)\s*:\s*(.*)", re.S | re.I)


@cache
def _vocab() -> tuple[dict[str, str], dict[str, str], re.Pattern[str], re.Pattern[str], frozenset[str]]:
    """(spelling.lower() -> field, level word -> level, line-start regex,
    glued regex, strong spellings)."""
    ev = knowledge.load("events")
    spell: dict[str, str] = {}
    for fld, names in ev["labels"].items():
        for n in names:
            spell[n.lower()] = fld
    levels = {w.lower(): lvl for lvl, words in ev["levels"].items() for w in words}
    names = sorted(spell, key=len, reverse=True)

    def alt(ns: list[str]) -> str:
        return "|".join(re.escape(n).replace(r"\ ", r"\s+") for n in ns)

    start = re.compile(rf"^[\s>]*(?P<label>{alt(names)})\s*:[ \t]*", re.I)
    glued_names = [n for fld, ns in ev["labels"].items() for n in ns
                   if n.isascii() and n[:1].isupper() and fld not in ("data", "event_xml")]
    glued_names.sort(key=len, reverse=True)
    event_names = [n for n in glued_names if n.startswith("Event ")]
    # Glued to the previous word (lost line break), or "Event ..." labels after
    # ": " (tests/fixtures/eventtext/kb828938_seed004.txt: "... in the application
    # log: Event Type: Error").
    glued = re.compile(rf"(?:(?<=[^\s\-\\/])(?P<label>{alt(glued_names)})"
                       rf"|(?<=: )(?P<label2>{alt(event_names)}))\s?:[ \t]*")
    strong = frozenset(n for n, f in spell.items()
                       if f in _STRONG or (n.startswith("event ") and f in ("type", "source", "category")))
    return spell, levels, start, glued, strong


_EVENT_NUMBER = re.compile(r"(?:(?<=[^\s])|^[\s>-]*|(?<=\s))Event Number\s*:?\s*(?P<num>\d+)\b")


def level_of(word: str | None) -> str | None:
    """Level text (English or localized) -> table level; unknown words -> "unknown"."""
    if not word or not word.strip():
        return None
    w = re.sub(r"\s+", " ", word.strip().lower())
    return _vocab()[1].get(w, "unknown")


def parse_local_datetime(text: str | None) -> datetime | None:
    """Wall-clock date/time text -> naive datetime (see module doc for D/M order).

    Accepts ``9/13/2000 5:56:06 PM``, ``2016-05-15T17:00:51.526``,
    ``13.09.2000 17:56:06``, ``5/11/2010 10:00:43 AM``. Needs a date *and* a
    time: a date alone is not a point in time.
    """
    if not text:
        return None
    s = text.strip()
    m = re.search(r"(\d{4})-(\d{1,2})-(\d{1,2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?", s)
    if m:
        y, mo, d, hh, mi, ss = (int(x or 0) for x in m.groups()[:6])
        us = int((m.group(7) or "0")[:6].ljust(6, "0"))
        try:
            return datetime(y, mo, d, hh, mi, ss, us)
        except ValueError:
            return None
    m = re.search(r"(\d{1,4})([/.\-])(\d{1,2})\2(\d{2,4})", s)
    t = re.search(r"(?<![\d/.\-])(\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,]\d+)?\s*([AaPp])?\.?\s*(?:[Mm]\.?)?(?![\w])", s[m.end():] if m else s)
    if not m or not t:
        return None
    a, sep, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
    if len(m.group(1)) == 4:  # 2000/9/13
        y, mo, d = a, b, c
    elif sep == "." or a > 12:
        d, mo, y = a, b, c
    else:
        mo, d, y = a, b, c
    if y < 100:
        y += 2000 if y < 70 else 1900
    hh, mi, ss = int(t.group(1)), int(t.group(2)), int(t.group(3) or 0)
    ampm = (t.group(4) or "").lower()
    if ampm == "p" and hh < 12:
        hh += 12
    elif ampm == "a" and hh == 12:
        hh = 0
    try:
        return datetime(y, mo, d, hh, mi, ss)
    except ValueError:
        return None


@cache
def _known_providers() -> tuple[str, ...]:
    names = {a for canon, aliases in knowledge.load("providers").items() for a in [canon, *aliases]}
    names |= {e["provider"] for e in knowledge.load("events")["events"]}
    return tuple(sorted(names, key=len, reverse=True))


def _clean_provider(value: str) -> tuple[str, str | None]:
    """A ``Source:`` value glued to following prose (a pasted article: ``Exchange
    MOMMOM may not log event 9986 ...``) is cut back to the known provider
    name it starts with; returns (provider, original text or None)."""
    v = value.strip()
    if len(v) > 40 and len(v.split()) > 3:
        for name in _known_providers():
            if v.startswith(name):
                return name, v
    return v, None


@dataclass
class _Block:
    line: int
    style: str | None = None  # wevtutil | vista | mom | kb (set at Description)
    fields: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    last: str | None = None
    desc: list[str] = field(default_factory=list)
    xml: list[str] = field(default_factory=list)
    binary: list[str] = field(default_factory=list)
    event_n: int | None = None


class _BlockParser:
    """State machine over lines: IDLE -> HEADER <-> DESC / XML / DATA."""

    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.spell, _levels, self.start_re, self.glued_re, self.strong = _vocab()
        self.state = "IDLE"
        self.block: _Block | None = None
        self.blank_run = 0
        self.out: list[dict[str, Any]] = []

    # -- label search ---------------------------------------------------
    def _allowed(self) -> tuple[set[str] | None, bool, bool]:
        """(allowed fields or None=all, glued allowed, strong-spellings only)."""
        if self.state == "DESC":
            st = self.block.style if self.block else "kb"
            if st == "wevtutil":
                return set(), False, False
            if st == "vista":
                return {"event_xml", "log_name"}, False, False
            if st == "mom":
                return _MOM_FIELDS | _STRONG, True, False
            return _STRONG | {"type", "source", "category", "data"}, False, True
        if self.state == "XML":
            return {"log_name"}, False, False
        return None, True, False

    def _find(self, line: str, pos: int) -> tuple[int, int, str, str | None] | None:
        """Next label at or after pos: (start, end, field, inline number)."""
        allowed, glued_ok, strong_only = self._allowed()
        best: tuple[int, int, str, str | None] | None = None
        if pos == 0:
            m = self.start_re.match(line)
            if m:
                sp = re.sub(r"\s+", " ", m.group("label")).lower()
                f = self.spell[sp]
                ok = allowed is None or f in allowed
                if strong_only and f in ("type", "source", "category"):
                    ok = sp in self.strong
                if ok:
                    best = (m.start("label"), m.end(), f, None)
        if allowed is None or "event_number" in allowed:
            for m in _EVENT_NUMBER.finditer(line, pos):
                glued = m.start() > 0 and not line[m.start() - 1].isspace()
                at_start = not line[:m.start()].strip(" \t>-")
                if (glued and glued_ok) or at_start or glued:
                    if best is None or m.start() < best[0]:
                        best = (m.start(), m.end(), "event_number", m.group("num"))
                    break
        if glued_ok:
            for m in self.glued_re.finditer(line, pos):
                f = self.spell[re.sub(r"\s+", " ", m.group("label") or m.group("label2")).lower()]
                if allowed is not None and f not in allowed:
                    continue
                if f == "event_number":
                    continue
                if best is None or m.start() < best[0]:
                    best = (m.start(), m.end(), f, None)
                break
        return best

    # -- driving ---------------------------------------------------------
    def feed(self, no: int, line: str) -> None:
        m = _EVENT_N.match(line)
        if m:
            self._flush()
            self.block = _Block(line=no, style="wevtutil", event_n=int(m.group(1)))
            self.state = "HEADER"
            return
        if self.state == "DATA":
            if self._hex_line(line):
                return
            self.state = "HEADER"
        pos = 0
        first = True
        while True:
            hit = self._find(line, pos)
            seg = line[pos: hit[0] if hit else len(line)]
            if first:
                self._text(no, seg, followed=hit is not None)
            else:
                self._value(seg)
            if hit is None:
                break
            self._label(no, hit[2])
            if hit[3] is not None:
                self._value(hit[3])
            pos = hit[1]
            first = False

    def _text(self, no: int, text: str, followed: bool) -> None:
        """Text before any label on a line (the whole line when it has none)."""
        st = self.state
        blank = not text.strip()
        if st == "DESC":
            b = self.block
            if blank and followed:
                return
            if blank:
                self.blank_run += 1
                if b.style in ("kb", "mom") and self.blank_run >= 2 and any(x.strip() for x in b.desc):
                    self.state = "HEADER"
                    return
            else:
                self.blank_run = 0
            if b.style in ("kb", "mom") and len(b.desc) >= _MAX_DESC_LINES:
                self.state = "HEADER"
                return
            b.desc.append(text.rstrip() if b.style in ("wevtutil", "vista") else text.strip())
            return
        if st == "XML":
            self.block.xml.append(text)
            return
        if blank or st == "IDLE":
            return
        b = self.block
        last = b.last
        words = text.split()
        if last and last in b.fields and not b.fields[last].strip():
            b.fields[last] = text.strip()
        elif last and last in b.fields and (followed or (len(words) <= 3 and len(text.strip()) <= 40
                                                         and not text.strip().endswith("."))):
            b.fields[last] = (b.fields[last] + " " + text.strip()).strip()
        else:
            self._flush()

    def _value(self, text: str) -> None:
        b = self.block
        if b is None:
            return
        if self.state == "DESC":
            if text.strip():
                b.desc.append(text.strip())
            return
        if self.state in ("XML", "DATA"):
            if text.strip() and self.state == "XML":
                b.xml.append(text)
            return
        if b.last:
            b.fields[b.last] = (b.fields.get(b.last, "") + " " + text.strip()).strip() \
                if b.fields.get(b.last) else text.strip()

    def _label(self, no: int, f: str) -> None:
        b = self.block
        new = (b is None or self.state == "IDLE"
               or (f in b.fields and f != "data") or (f == "description" and b.desc)
               or (f == "log_name" and b.style != "wevtutil" and b.order)
               or (b.style == "kb" and f != "data"
                   and (self.state == "DESC" or "description" in b.order)))
        if self.state == "DESC" and b is not None and b.style == "mom" and not new:
            new = f in b.fields
        if new:
            self._flush()
            b = self.block = _Block(line=no)
        self.blank_run = 0
        if f == "description":
            if b.style is None:
                if "log_name" in b.fields:
                    b.style = "vista"
                elif not b.order or _MOM_MARKERS & set(b.fields):
                    b.style = "mom"
                else:
                    b.style = "kb"
            b.order.append(f)
            b.last = None
            self.state = "DESC"
            return
        if f == "event_xml":
            b.order.append(f)
            self.state = "XML"
            b.last = None
            return
        if f == "data":
            b.order.append(f)
            b.last = None
            self.state = "DATA"
            return
        b.fields[f] = ""
        b.order.append(f)
        b.last = f
        self.state = "HEADER"

    _HEX_RE = re.compile(r"^\s*[0-9a-fA-F]{4,8}:\s+(.*)$")

    def _hex_line(self, line: str) -> bool:
        """A line of the KB ``Data:`` dump (Bytes or Words view)."""
        if not line.strip():
            return bool(self.block and not self.block.binary)
        if line.strip().lower() in ("bytes", "words"):
            return True
        m = self._HEX_RE.match(line)
        if not m:
            return False
        part = re.split(r"\s{2,}", m.group(1).strip())[0]
        toks = part.split()
        if toks and all(re.fullmatch(r"[0-9a-fA-F]{8}", t) for t in toks):
            # Words view: DWORD values; the bytes are their little-endian form.
            self.block.binary.extend(int(t, 16).to_bytes(4, "little").hex() for t in toks)
            return True
        hexes = []
        for t in toks:
            if re.fullmatch(r"[0-9a-fA-F]{2}", t):
                hexes.append(t.lower())
            else:
                break
        if not hexes:
            return False
        self.block.binary.extend(hexes)
        return True

    # -- rows --------------------------------------------------------------
    def _flush(self) -> None:
        b, self.block = self.block, None
        self.state = "IDLE"
        self.blank_run = 0
        if b is None:
            return
        row = self._row(b)
        if row is not None:
            self.out.append(row)

    def finish(self) -> list[dict[str, Any]]:
        self._flush()
        return self.out

    def _row(self, b: _Block) -> dict[str, Any] | None:
        f = {k: v.strip() for k, v in b.fields.items()}
        loc = f"line={b.line}"
        desc_lines = list(b.desc)
        while desc_lines and not desc_lines[-1].strip():
            desc_lines.pop()
        while desc_lines and not desc_lines[0].strip():
            desc_lines.pop(0)
        message = "\n".join(desc_lines).strip() or None
        raw_id = f.get("event_id") or f.get("event_number")
        if not (raw_id or f.get("source") or message or b.xml):
            self.ctx.warn("block has no event id, source or description; skipped", loc)
            return None
        data: dict[str, Any] = {}
        event_id: int | None = None
        if raw_id:
            m = re.fullmatch(r"\(?\s*(\d+)\s*\)?", raw_id)
            if m and int(m.group(1)) <= 0xFFFFFFFF:
                event_id = int(m.group(1)) & 0xFFFF
            else:
                self.ctx.warn(f"unreadable event id {raw_id[:40]!r}", loc)
                data["event_id_text"] = raw_id
        provider, source_text = _clean_provider(f["source"]) if f.get("source") else (None, None)
        if source_text:
            data["source_text"] = source_text
        is_mom = b.style == "mom" or bool(_MOM_MARKERS & set(f))
        channel = f.get("log_name") or None
        if is_mom and not channel:
            channel = "MOM"
        user = f.get("user") or None
        if user and user.upper() == "N/A":
            user = None
        when_text = " ".join(x for x in (f.get("date"), f.get("time")) if x)
        local = parse_local_datetime(when_text)
        row: dict[str, Any] = {
            "ts": local, "ts_source": "local" if local else None,
            "host": f.get("computer") or None, "kind": "event", "channel": channel,
            "provider": provider, "event_id": event_id, "qualifiers": None,
            "level": level_of(f.get("type") or f.get("level")),
            "category": f.get("category") or None, "user": user, "record_id": None,
            "message": message, "locator": loc, "parse_status": "ok",
        }
        if when_text and local is None:
            data["date_text"] = when_text
        if row["category"] and row["category"].upper() == "N/A":
            row["category"] = None
        # Vista+ text shows "Level: Information" for audits; the keyword says which.
        kw_level = level_of(f.get("keywords")) if f.get("keywords") else None
        if kw_level in ("audit_success", "audit_failure"):
            row["level"] = kw_level
        extra = {"keywords": "Keywords", "opcode": "Opcode", "user_name": "User Name",
                 "domain": "Domain", "provider_name": "Provider Name",
                 "provider_type": "Provider Type"}
        for k, name in extra.items():
            if f.get(k):
                data[name] = f[k]
        if b.xml:
            self._merge_xml(b, row, data, loc, when_text)
        if b.binary and "binary" not in data:
            data["binary"] = "".join(b.binary)
        if message and "strings" not in data:
            nf = _NOT_FOUND.search(message)
            if nf:
                data["strings"] = _insertion_strings(nf.group(3))
        if row["channel"] is None and row["provider"] and row["provider"].lower() in (
                "security", "microsoft-windows-security-auditing"):
            row["channel"] = "Security"  # the Security source writes only to the Security log
        for k, v in extract_fields(row["provider"], row["event_id"], message).items():
            data.setdefault(k, v)
        if row["message"] is None and row["provider"] and row["event_id"] is not None:
            row["message"] = render(row["provider"], row["event_id"], data)
        row["data"] = data or None
        return row

    def _merge_xml(self, b: _Block, row: dict[str, Any], data: dict[str, Any], loc: str,
                   when_text: str) -> None:
        """Fill a "Copy details" row from its ``Event Xml:`` section (XML wins
        for ids and time; the text keeps message and category)."""
        events = parse_fragment("\n".join(b.xml))
        if not events:
            self.ctx.warn("Event Xml section unreadable; using the text fields", loc)
            row["parse_status"] = "partial"
            return
        x = event_row(events[0], loc)
        for col in ("provider", "event_id", "qualifiers", "record_id", "channel", "host", "user"):
            if x.get(col) is not None and x[col] != "":
                row[col] = x[col]
        if row["level"] in (None, "unknown") and x.get("level"):
            row["level"] = x["level"]
        if row["category"] is None and x.get("category"):
            row["category"] = x["category"]
        if x.get("ts") is not None:
            row["ts"], row["ts_source"] = x["ts"], "utc"
            if when_text:
                data["local_time"] = when_text
        xd = x.get("data") or {}
        for k, v in xd.items():
            data.setdefault(k, v)


def _insertion_strings(text: str) -> list[str]:
    """Strings after "...insertion string(s):" (Windows 2000: comma list ending
    with a period) or "...included with the event:" (Vista: one per line)."""
    text = text.strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and not any(ln.endswith(",") for ln in lines):
        return lines
    flat = " ".join(lines)
    parts = [p.strip() for p in flat.split(", ")]
    if parts and parts[-1].endswith("."):
        parts[-1] = parts[-1][:-1]
    return [p for p in parts if p]


# --------------------------------------------------------------------------
# sniffing

_SNIFF_FIELDS = ("source", "type", "category", "date", "time", "user", "computer",
                 "description", "log_name", "level")


def sniff_text(text: str) -> int:
    """Confidence that ``text`` is a block-shaped event export."""
    if text.lstrip("\ufeff \t\r\n").startswith(("<", "#TYPE", "\"")):
        return 0
    spell, _lv, start_re, _g, _s = _vocab()
    seen: set[str] = set()
    event_n = 0
    for line in text.splitlines()[:2000]:
        if _EVENT_N.match(line):
            event_n += 1
            continue
        m = start_re.match(line)
        if m:
            seen.add(spell[re.sub(r"\s+", " ", m.group("label")).lower()])
        elif _EVENT_NUMBER.search(line):
            seen.add("event_number")
    has_id = bool({"event_id", "event_number"} & seen)
    if event_n and has_id and "log_name" in seen:
        return 92
    if {"log_name", "event_id"} <= seen and ({"source", "level", "description"} & seen):
        return 90
    if "event_number" in seen and ({"provider_name", "provider_type"} & seen):
        return 85
    n = len(seen & set(_SNIFF_FIELDS))
    if has_id and n >= 2:
        return min(85, 55 + 5 * n)
    return 0


@register
class EventTextSource(Source):
    name = "eventtext"
    kind = "event-text"
    description = ("Event text exports in label blocks: KB blocks, Vista+ Copy details, "
                   "wevtutil /f:text, MOM 2005 console event details")

    def sniff(self, head: bytes, name: str) -> int:
        if not head or textio.looks_binary(head):
            return 0
        return sniff_text(textio.decode_head(head))

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        bp = _BlockParser(ctx)
        for no, line in textio.iter_lines(ctx.fs_path):
            bp.feed(no, line)
            if len(bp.out) >= 1000:
                yield from bp.out
                bp.out = []
        yield from bp.finish()
        bp.out = []
