"""Windows event XML exports: Event Viewer "Save as XML", ``wevtutil qe /f:xml``.

Formats (examples: tests/fixtures/eventtext/*.xml):

- Event Viewer XML export: ``<Events><Event xmlns="http://schemas.microsoft.com/
  win/2004/08/events/event">...</Event>...</Events>``, optionally with
  ``<RenderingInfo>`` (rendered Message, Level, Task text) per event.
- ``wevtutil qe LOG /f:xml``: the same ``<Event>`` elements concatenated with
  **no root element** (not well-formed XML as a whole) and no declaration.

Both are streamed: a synthetic root is fed to an lxml pull parser ahead of
the text, so root-less concatenations parse, and each ``<Event>`` is cleared
once its row is built (memory stays bounded by one event). The parser runs
with entity resolution and network access off (a customer file must not make
us read local files or fetch URLs: XXE) and in recover mode, so junk between
events costs a warning, not the file. Times are ``SystemTime`` (UTC).

:func:`event_row` turns one ``<Event>`` element into a table row and is shared
with the "Copy details" parser (``Event Xml:`` sections) in eventtext.py.
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from lxml import etree

from .. import textio
from ..messages import render
from . import ParseContext, Source, register

EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"

#: Windows level numbers (winmeta.xml): 0 LogAlways is shown as Information.
LEVEL_BY_NUMBER = {0: "information", 1: "critical", 2: "error", 3: "warning",
                   4: "information", 5: "verbose"}
#: Keywords bits that make a Security event an audit success / failure.
AUDIT_FAILURE = 0x10000000000000
AUDIT_SUCCESS = 0x20000000000000

_FEED = 1 << 16


def make_parser(**kw: Any) -> etree.XMLParser:
    """The only XML parser configuration we use on customer data."""
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                           recover=True, remove_comments=True, **kw)


def _local(tag: Any) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _child(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _text(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    t = "".join(el.itertext())
    return t


def parse_system_time(value: str | None) -> datetime | None:
    """``2013-01-17T22:19:11.000000000Z`` (nanoseconds, Z) -> aware UTC datetime."""
    if not value:
        return None
    m = re.match(r"\s*(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?", value)
    if not m:
        return None
    frac = (m.group(3) or "0")[:6].ljust(6, "0")
    try:
        dt = datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}.{frac}")
    except ValueError:
        return None
    tz = m.group(4)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        hh, mm = int(tz[1:3]), int(tz[-2:])
        from datetime import timedelta
        dt = dt - sign * timedelta(hours=hh, minutes=mm)
    return dt.replace(tzinfo=timezone.utc)


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    m = re.search(r"-?(?:0x[0-9a-fA-F]+|\d+)", text)
    if not m:
        return None
    try:
        return int(m.group(0), 0)
    except ValueError:
        return None


def element_to_obj(el: etree._Element) -> Any:
    """UserData (and other nested XML) as nested dicts; leaf text as str.
    Repeated child names become lists; attributes are kept as ``@name``."""
    children = [c for c in el if isinstance(c.tag, str)]
    attrs = {f"@{_local(k)}": v for k, v in el.attrib.items()}
    if not children:
        txt = (el.text or "")
        return {**attrs, "#text": txt} if attrs else txt
    out: dict[str, Any] = dict(attrs)
    for c in children:
        key = _local(c.tag)
        val = element_to_obj(c)
        if key in out:
            if not isinstance(out[key], list):
                out[key] = [out[key]]
            out[key].append(val)
        else:
            out[key] = val
    return out


def event_data(ev: etree._Element) -> dict[str, Any]:
    """The ``data`` object of an event: named Data in document order,
    unnamed Data under ``strings``, Binary as lowercase hex, UserData nested."""
    data: dict[str, Any] = {}
    system = _child(ev, "System")
    prov = _child(system, "Provider")
    if prov is not None:
        if prov.get("EventSourceName"):
            data["EventSourceName"] = prov.get("EventSourceName")
        if prov.get("Guid"):
            data["provider_guid"] = prov.get("Guid")
    ed = _child(ev, "EventData")
    if ed is not None:
        strings: list[str] = []
        for c in ed:
            name = _local(c.tag)
            if name == "Data":
                val = _text(c) or ""
                if c.get("Name"):
                    data[c.get("Name")] = val
                else:
                    strings.append(val)
            elif name == "Binary":
                data["binary"] = re.sub(r"\s+", "", _text(c) or "").lower()
            elif name:
                data[name] = element_to_obj(c)
        if strings:
            data["strings"] = strings
    ud = _child(ev, "UserData")
    if ud is not None:
        data["UserData"] = {_local(c.tag): element_to_obj(c) for c in ud if isinstance(c.tag, str)}
    return data


def event_row(ev: etree._Element, locator: str) -> dict[str, Any]:
    """One ``<Event>`` element -> table row (without source/path)."""
    system = _child(ev, "System")
    prov = _child(system, "Provider")
    provider = prov.get("Name") if prov is not None else None
    if provider is None and prov is not None:
        provider = prov.get("EventSourceName")
    eid_el = _child(system, "EventID")
    raw_id = _int(_text(eid_el))
    qual = _int(eid_el.get("Qualifiers")) if eid_el is not None and eid_el.get("Qualifiers") else None
    level_num = _int(_text(_child(system, "Level")))
    keywords = _int(_text(_child(system, "Keywords")))
    tc = _child(system, "TimeCreated")
    ts = parse_system_time(tc.get("SystemTime") if tc is not None else None)
    sec = _child(system, "Security")
    data = event_data(ev)
    level = LEVEL_BY_NUMBER.get(level_num) if level_num is not None else None
    if keywords is not None and keywords & AUDIT_FAILURE:
        level = "audit_failure"
    elif keywords is not None and keywords & AUDIT_SUCCESS:
        level = "audit_success"
    task = _text(_child(system, "Task"))
    rendering = _child(ev, "RenderingInfo")
    message = None
    if rendering is not None:
        message = _text(_child(rendering, "Message"))
        task = _text(_child(rendering, "Task")) or task
    event_id = raw_id & 0xFFFF if raw_id is not None else None
    if raw_id is not None and raw_id > 0xFFFF and qual is None:
        qual = raw_id >> 16
    if not message and provider and event_id is not None:
        message = render(provider, event_id, data)
    return {
        "ts": ts, "ts_source": "utc" if ts else None,
        "host": _text(_child(system, "Computer")),
        "kind": "event",
        "channel": _text(_child(system, "Channel")),
        "provider": provider,
        "event_id": event_id,
        "qualifiers": qual,
        "level": level,
        "category": task if task not in (None, "") else None,
        "user": sec.get("UserID") if sec is not None else None,
        "record_id": _int(_text(_child(system, "EventRecordID"))),
        "message": message,
        "data": data,
        "locator": locator,
        "parse_status": "ok",
    }


def parse_fragment(text: str) -> list[etree._Element]:
    """``<Event>`` elements of an XML snippet (a "Copy details" ``Event Xml:``
    section), HTML-escaped or not, possibly malformed (recover mode)."""
    if "&lt;" in text and "<Event" not in text:
        text = html.unescape(text)
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    try:
        root = etree.fromstring(f"<r>{text}</r>", make_parser())
    except etree.XMLSyntaxError:
        return []
    if root is None:
        return []
    return [e for e in root.iter() if _local(e.tag) == "Event"]


_EVENT_START = re.compile(r"<Event[\s>/]")
_TAG_LEN = 7  # len("<Event ") : a match is decided by this many characters


class _Segment:
    """The text of one event (or of what precedes the first), as pieces;
    pieces are dropped once it grows past the cap (only its size is kept)."""

    __slots__ = ("n", "line", "cap", "parts", "size")

    def __init__(self, n: int, line: int, cap: int) -> None:
        self.n, self.line, self.cap = n, line, cap
        self.parts: list[str] = []
        self.size = 0

    def add(self, piece: str, line: int) -> int:
        """Append ``piece`` (which starts at ``line``); the line after it."""
        self.size += len(piece)
        if self.size <= self.cap:
            self.parts.append(piece)
        elif self.parts:
            self.parts = []
        return line + piece.count("\n")
#: Wrapper text that is not junk: declaration, <Events>, </Events>, comments.
_WRAPPER = re.compile(r"<\?xml[^>]*\?>|</?Events[^>]*>|<!--.*?-->|\ufeff", re.S)

#: A document type declaration, with its internal subset (entity
#: definitions: the "billion laughs" lives there). Never processed: each
#: event is parsed on its own, without it, and entities stay unexpanded.
_DOCTYPE = re.compile(r"<!DOCTYPE\b[^\[>]*(?:\[.*?\]\s*)?>", re.S)
_XML_START = re.compile(r"^\ufeff?\s*(?:<\?xml[^>]*\?>\s*)?(?:<!--.*?-->\s*)*"
                        r"(?:<!DOCTYPE\b[^\[>]*(?:\[.*?\]\s*)?>\s*)?(?:<!--.*?-->\s*)*"
                        r"<(?:Events|Event)[\s>]", re.S)


@register
class EventXmlSource(Source):
    name = "eventxml"
    kind = "event-xml"
    description = "Windows event XML: Event Viewer XML export, wevtutil qe /f:xml (no root)"

    def sniff(self, head: bytes, name: str) -> int:
        if not head or textio.looks_binary(head):
            return 0
        text = textio.decode_head(head)
        if not _XML_START.match(text):
            return 0
        if EVENT_NS in text[:4096] or "<System>" in text[:8192]:
            return 90
        return 40

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        """Split the text at ``<Event`` start tags and parse each event on its
        own (recover mode): a damaged event or junk between events costs that
        event at most, never the rest of the file (libxml2's recovery on one
        whole document was seen to drop everything after a stray ``<``).

        The text is scanned once, chunk by chunk: each chunk is searched for
        start tags (with a few characters of overlap for a tag cut between
        chunks) and appended to the current segment's list of pieces, so one
        huge ``<Event>`` costs linear time. A segment longer than the line
        cap (``Limits.max_line_chars``; real events are a few KB) is not kept:
        it costs a warning with its line, and the next event is read.
        """
        cap = textio.current_line_policy().max_chars
        fh, _enc = textio.open_text(ctx.fs_path)
        seg = _Segment(0, 1, cap)  # text before the first event
        carry = ""
        line = 1  # line number at the start of carry
        n = 0
        with fh:
            while True:
                chunk = fh.read(_FEED)
                text = carry + chunk
                limit = len(text) if not chunk else max(0, len(text) - _TAG_LEN)
                pos = 0
                for m in _EVENT_START.finditer(text):
                    if m.start() >= limit:
                        break
                    line = seg.add(text[pos:m.start()], line)
                    yield from self._close(ctx, seg)
                    n += 1
                    seg = _Segment(n, line, cap)
                    pos = m.start()
                line = seg.add(text[pos:limit], line)
                carry = text[limit:]
                if not chunk:
                    break
        yield from self._close(ctx, seg)
        if n == 0:
            ctx.warn("no <Event> element found", None)

    def _close(self, ctx: ParseContext, seg: _Segment) -> Iterator[dict[str, Any]]:
        """The rows of a finished segment (or the warning it costs)."""
        if seg.size > seg.cap:
            what = f"<Event> number {seg.n}" if seg.n else "text before the first <Event>"
            ctx.warn(f"{what} is {seg.size} characters long (limit {seg.cap}); skipped",
                     f"event={seg.n};line={seg.line}" if seg.n else f"line={seg.line}")
            return
        text = "".join(seg.parts)
        if seg.n == 0:
            self._junk(ctx, text, seg.line)
        else:
            yield from self._segment(ctx, text, seg.n, seg.line)

    def _junk(self, ctx: ParseContext, text: str, line: int) -> None:
        if "<!" in text and _DOCTYPE.search(text):
            ctx.warn("document type declaration (DTD) ignored: entities it defines are "
                     "not expanded", f"line={line}", partial=False)
            text = _DOCTYPE.sub("", text)
        rest = _WRAPPER.sub("", text).strip()
        if rest:
            ctx.warn(f"text outside any <Event> ignored: {rest[:60]!r}", f"line={line}")

    def _segment(self, ctx: ParseContext, seg: str, n: int, line: int) -> Iterator[dict[str, Any]]:
        end = seg.rfind("</Event>")
        body, tail = (seg[:end + 8], seg[end + 8:]) if end >= 0 else (seg, "")
        loc = f"event={n}"
        parser = make_parser()
        try:
            root = etree.fromstring(body.encode("utf-8"), parser)
        except etree.XMLSyntaxError as exc:
            ctx.warn(f"unreadable event XML: {exc}", f"{loc};line={line}")
            return
        if root is None or _local(root.tag) != "Event":
            ctx.warn("unreadable event XML", f"{loc};line={line}")
            return
        if end < 0 or len(parser.error_log):
            first = parser.error_log[0].message if len(parser.error_log) else "no </Event>"
            ctx.warn(f"damaged event XML recovered: {first}", f"{loc};line={line}")
        row = event_row(root, loc)
        if row["event_id"] is None:
            ctx.warn("event without a readable EventID", loc)
        if end < 0 or len(parser.error_log):
            row["parse_status"] = "recovered"
        yield row
        if tail.strip():
            lead = tail[: len(tail) - len(tail.lstrip())]
            self._junk(ctx, tail, line + body.count("\n") + lead.count("\n"))
