"""PowerShell exports of Exchange cmdlet output -> one ``ps_object`` row per object.

One reader for the four ways customers send ``Get-Queue``,
``Get-TransportServer``, ``Get-ExchangeServer`` & co.:

- **Format-List** text (``Get-Queue | fl > q.txt``): ``Name : value`` lines,
  names padded to the longest name of the object, so the colons align and a
  space always precedes the colon (Event Viewer "Copy details" blocks have
  ``Log Name:`` with the colon glued to a label that may hold spaces;
  property names never do). Long values wrap onto continuation lines
  indented to the value column; a line filled to the output width was cut
  mid-word and is joined without a space. Collections print as
  ``{a, b, c, d...}``: at most ``$FormatEnumerationLimit`` (4) items, the
  ``...`` marks the cut (``data.truncated`` lists such properties). Objects
  are separated by blank lines, but pastes add blank lines between
  properties too, so a new object starts when a property name repeats.
- **Format-Table** text: a header line, a ruler of dashes, rows cut into
  columns at the ruler's column starts; cells ending in ``...`` were cut to
  the column width (``data.truncated``). Read only when the columns name a
  known object (a table of unknown columns is too lossy to be worth a row).
- **Export-Csv**, with or without the ``#TYPE`` line: multi-valued
  properties arrive flattened to a .NET type name
  (``Microsoft.Exchange.Data.MultiValuedProperty`1[...]``): the value is then
  null and the property listed in ``data.flattened``.
- **Export-Clixml** (``<Objs>`` of the PowerShell serialization): streamed
  with lxml ``iterparse`` with entities, DTDs and network off; typed values
  (``I32``, ``B``, ``DT``, ``LST``...), enums and ``ServerVersion`` objects by
  their ``ToString``, ``Ref`` resolved to the referenced object's value.

Which object a block is (``data.object``) comes from
``analyzer/knowledge/ps_objects.yaml``: the CLR type name when the export has
one, else the cmdlet on a preceding prompt line (``[PS] C:\\>Get-Queue | fl``),
else the property names. Text exports are UTF-16LE with a BOM when written
with ``>`` by Windows PowerShell: the normal case, read through textio.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from .. import knowledge, textio
from ..hosts import host_key
from . import register
from ._textcommon import head_lines, read_lines
from ._xmlsafe import SafeXml
from ._xmlsafe import local as _local
from .base import ParseContext, Source

_PROP = re.compile(r"^(?P<name>[A-Za-z_][\w.-]{0,127})(?P<pad> *) :(?: (?P<val>.*))?$")
_PROMPT = re.compile(r"^\s*(?:\[PS\]|PS)\s*[A-Za-z]:\\[^>]{0,260}>\s?(?P<cmd>.*)$")
_RULER = re.compile(r"^\s*-{2,}(?:\s+-+)*\s*$")
_CMDLET = re.compile(r"\b([A-Za-z]+-[A-Za-z]+)\b")
_NOISE = re.compile(r"^\s*(?:WARNING|VERBOSE|DEBUG):|^\*{10,}\s*$|^Windows PowerShell transcript", re.I)
_HEADER_CELL = re.compile(r'^"?[A-Za-z_][\w.]*"?$')
_FLATTENED = re.compile(r"^(?:Deserialized\.)?(?:System|Microsoft)\.[\w.`+]+(?:\[.*\])?$")
_BYTES = re.compile(r"\(([\d,. ]+)\s*bytes\)")
_CLIXML_NS = "http://schemas.microsoft.com/powershell/2004/04"
_CLIXML_COLLECTIONS = ("LST", "IE", "QUE", "STK")
_CLIXML_INTS = ("I16", "I32", "I64", "U16", "U32", "U64", "By", "SB")
_CLIXML_FLOATS = ("Sg", "Db", "D")
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_MAX_LINE_WARNINGS = 20
#: Row metadata keys in ``data`` (property names are PascalCase, these never collide).
META = ("object", "format", "type_name", "cmdlet", "truncated", "flattened")


# --------------------------------------------------------------------------
# knowledge


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    cmdlets: frozenset[str]
    type_names: frozenset[str]
    all: tuple[str, ...]
    any: tuple[str, ...]
    min_any: int
    types: dict[str, str]
    host: tuple[str, ...]


@cache
def specs() -> tuple[ObjectSpec, ...]:
    """The object kinds of ``analyzer/knowledge/ps_objects.yaml``."""
    out = []
    for name, e in knowledge.load("ps_objects")["objects"].items():
        ident = e.get("identify") or {}
        out.append(ObjectSpec(
            name, frozenset(c.lower() for c in e.get("cmdlets") or ()),
            frozenset(t.lower() for t in e.get("type_names") or ()),
            tuple(ident.get("all") or ()), tuple(ident.get("any") or ()),
            int(ident.get("min_any", 1)), dict(e.get("types") or {}), tuple(e.get("host") or ())))
    return tuple(out)


def _spec(name: str | None) -> ObjectSpec | None:
    return next((s for s in specs() if s.name == name), None)


def identify(props: Iterable[str], type_names: Iterable[str] = (), cmdlet: str | None = None) -> str | None:
    """The object kind of a property set: by type name, else by the cmdlet
    that produced it, else by the identifying properties (best score)."""
    for t in type_names:
        t = t.lower().removeprefix("deserialized.")
        for s in specs():
            if t in s.type_names:
                return s.name
    if cmdlet:
        for s in specs():
            if cmdlet.lower() in s.cmdlets:
                return s.name
    have = {p.lower() for p in props}
    best, best_score = None, 0
    for s in specs():
        if not all(a.lower() in have for a in s.all):
            continue
        n_any = sum(1 for a in s.any if a.lower() in have)
        if n_any < s.min_any:
            continue
        score = len(s.all) + n_any
        if score > best_score:
            best, best_score = s.name, score
    return best


def cmdlet_of(command: str) -> str | None:
    """The last known cmdlet of a pipeline typed at a prompt
    (``Get-ExchangeServer | Get-Queue | fl`` -> ``Get-Queue``)."""
    found = None
    known = {c for s in specs() for c in s.cmdlets}
    for m in _CMDLET.finditer(command):
        if m.group(1).lower() in known:
            found = m.group(1)
    return found


# --------------------------------------------------------------------------
# values and rows


def convert_text(value: str, typ: str | None) -> tuple[Any, bool]:
    """A text value as PowerShell printed it -> (typed value, truncated?)."""
    v = value.strip()
    if v.startswith("{") and v.endswith("}"):
        inner = v[1:-1].strip()
        truncated = inner.endswith("...")
        if truncated:
            inner = inner[:-3].rstrip(", ")
        return ([x.strip() for x in inner.split(",") if x.strip()] if inner else []), truncated
    if v in ("True", "False"):
        return v == "True", False
    if typ == "int" and re.fullmatch(r"-?[\d,]+", v):
        return int(v.replace(",", "")), False
    if typ == "size" and (m := _BYTES.search(v)):
        return int(re.sub(r"[^\d]", "", m.group(1))), False
    if typ == "list":
        return ([v] if v else []), False
    return value, False


def _host(props: dict[str, Any], spec: ObjectSpec | None) -> str | None:
    for name in (spec.host if spec else ("PSComputerName",)):
        v = props.get(name)
        if isinstance(v, str) and v.strip():
            text = v.strip()
            if "\\" in text:
                text = text.split("\\", 1)[0]
            if host_key(text):
                return text
    return None


def make_row(props: dict[str, Any], fmt: str, locator: str, *, type_names: Iterable[str] = (),
             cmdlet: str | None = None, truncated: Iterable[str] = (), flattened: Iterable[str] = (),
             partial: bool = False, typed: bool = False) -> dict[str, Any]:
    """The ``ps_object`` row of one object, whatever the export format.
    Text values are typed by the object's knowledge (see convert_text)
    unless the export was ``typed`` already (CliXML)."""
    tnames = list(type_names)
    obj = identify(props, tnames, cmdlet)
    spec = _spec(obj)
    trunc = list(truncated)
    data: dict[str, Any] = {"object": obj, "format": fmt,
                            "type_name": tnames[0] if tnames else None, "cmdlet": cmdlet}
    for name, value in props.items():
        if isinstance(value, str) and not typed:
            value, cut = convert_text(value, spec.types.get(name) if spec else None)
            if cut:
                trunc.append(name)
        data[name if name not in META else f"property_{name}"] = value
    if trunc:
        data["truncated"] = sorted(set(trunc))
    if flattened:
        data["flattened"] = list(flattened)
    label = next((str(props[k]) for k in ("Identity", "Name", "FileName", "MessageId")
                  if props.get(k) not in (None, "")), None)
    msg = f"{obj or 'object'}" + (f" {label}" if label else "") + f" ({len(props)} properties)"
    return {"kind": "ps_object", "host": _host(props, spec), "message": msg, "data": data,
            "locator": locator, "level": "information", "parse_status": "partial" if partial else "ok"}


# --------------------------------------------------------------------------
# sniffing


def _fl_shape(lines: list[str]) -> tuple[int, set[str]]:
    """(property lines in aligned runs, their names) of Format-List text."""
    n, names = 0, set()
    run: list[tuple[str, int]] = []

    def flush() -> None:
        nonlocal n
        cols = [c for _, c in run]
        if len(run) >= 3 and max(cols.count(c) for c in set(cols)) >= 0.8 * len(run):
            n += len(run)
            names.update(p for p, _ in run)
        run.clear()

    for ln in lines:
        m = _PROP.match(ln)
        if m:
            run.append((m["name"], len(m["name"]) + len(m["pad"])))
        elif ln.strip() and not ln.startswith(" "):
            flush()
    flush()
    return n, names


def _ft_headers(lines: list[str]) -> list[list[str]]:
    """Header names of every Format-Table block (a line above a dash ruler)."""
    out = []
    for i in range(1, len(lines)):
        if _RULER.match(lines[i]) and lines[i - 1].strip():
            cols = _columns(lines[i])
            names = [lines[i - 1][a:b].strip() for a, b in cols]
            if names and all(re.fullmatch(r"[A-Za-z_][\w.]*", x) for x in names):
                out.append(names)
    return out


def _delimiter(first: str) -> str:
    """``;`` for ``Export-Csv -UseCulture`` in most European locales, else ``,``."""
    return ";" if first.count('";"') > first.count('","') else ","


def _csv_header(first: str) -> list[str] | None:
    try:
        cells = next(csv.reader([first], delimiter=_delimiter(first)))
    except (csv.Error, StopIteration):
        return None
    if len(cells) < 2 or not all(_HEADER_CELL.match(c) for c in cells):
        return None
    return cells


def _columns(ruler: str) -> list[tuple[int, int | None]]:
    """Column spans from a dash ruler: each column starts at its dashes and
    runs to the next column's start (the last to the end of the line)."""
    starts = [m.start() for m in re.finditer(r"-+", ruler)]
    return [(s, starts[i + 1] if i + 1 < len(starts) else None) for i, s in enumerate(starts)]


def sniff_text(text: str) -> int:
    """Confidence that ``text`` is a PowerShell export this source reads."""
    body = text.lstrip("\ufeff \t\r\n")
    if body.startswith("<"):
        head = body[:4096]
        return 95 if "<Objs" in head and _CLIXML_NS in head else 0
    lines = [ln.rstrip() for ln in body.splitlines()[:400]]
    first = lines[0] if lines else ""
    if first.startswith("#TYPE "):
        tname = first[6:].strip()
        if re.match(r"System\.Diagnostics\.(Eventing\.Reader\.EventLogRecord|EventLogEntry)", tname):
            return 0  # Get-WinEvent / Get-EventLog exports belong to the event CSV reader
        header = _csv_header(lines[1]) if len(lines) > 1 else None
        return 92 if header and identify(header, [tname]) else 85 if header else 0
    if first.startswith('"') and (header := _csv_header(first)) is not None:
        return 88 if identify(header) else 0
    prompt = any(_PROMPT.match(ln) and cmdlet_of(ln) for ln in lines)
    typed = any((m := _PROMPT.match(ln)) and _CMDLET.search(m["cmd"]) for ln in lines)
    n, names = _fl_shape(lines)
    score = 0
    if n >= 3:
        # Objects nobody knows are claimed only below a prompt that ran a
        # cmdlet: other formats (wmic, Get-PSDrive) print "Name : value" too.
        score = 90 if identify(names) else 55 if typed else 0
    if any(identify(h) for h in _ft_headers(lines)):
        score = max(score, 88)
    if score and prompt:
        score = min(95, score + 4)
    return score


# --------------------------------------------------------------------------
# the source


@register
class PowerShellSource(Source):
    name = "powershell"
    kind = "powershell-export"
    description = ("PowerShell output of Exchange cmdlets: Format-List / Format-Table text, "
                   "Export-Csv, Export-Clixml")

    def sniff(self, head: bytes, name: str) -> int:
        if not head or textio.looks_binary(head):
            return 0
        return sniff_text(textio.decode_head(head))

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        lines = head_lines(textio.read_head(ctx.fs_path), limit=5)
        first = next((ln.lstrip("\ufeff ") for ln in lines if ln.strip()), "")
        if first.startswith("<"):
            rows = _clixml(ctx)
        elif first.startswith("#TYPE ") or first.startswith('"'):
            rows = _csv(ctx)
        else:
            rows = _TextReader(ctx).rows()
        counts: dict[str, int] = {}
        for row in rows:
            key = f"{row['data']['format']} {row['data']['object'] or 'unknown object'}"
            counts[key] = counts.get(key, 0) + 1
            yield row
        if counts:  # the inventory says what the file held: "list queue x3"
            ctx.note(", ".join(f"{k} x{n}" for k, n in counts.items()))


def _csv(ctx: ParseContext) -> Iterator[dict[str, Any]]:
    fh, _enc = textio.open_text(ctx.fs_path)
    n = 0
    with fh:
        first = fh.readline().lstrip("\ufeff")
        offset = 1
        tnames: list[str] = []
        if first.startswith("#TYPE "):
            tnames = [first[6:].strip()]
            first = fh.readline()
            offset = 2
        header = _csv_header(first.strip())
        if header is None:
            ctx.warn("no CSV header of property names", f"line={offset}")
            return
        reader = csv.reader(fh, delimiter=_delimiter(first))
        prev = offset
        for rec in reader:
            start, prev = prev + 1, offset + reader.line_num
            if not rec or all(not c.strip() for c in rec):
                continue
            if len(rec) != len(header):
                ctx.warn(f"row has {len(rec)} of {len(header)} columns", f"line={start}")
            props = dict(zip(header, rec))
            flat = [k for k, v in props.items() if _FLATTENED.match(v.strip())
                    and ("`" in v or v.strip().endswith(("[]", "Collection")))]
            for k in flat:
                props[k] = None
            yield make_row(props, "csv", f"line={start}", type_names=tnames, flattened=flat,
                           partial=len(rec) < len(header))
            n += 1
    if n == 0:
        ctx.warn("no objects in the CSV export", None)


class _TextReader:
    """Format-List and Format-Table text, with prompt lines, streamed."""

    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        # The output width: the longest line PowerShell wrote (prompt lines
        # are typed by the user and may be longer).
        self.width = max((len(ln.raw.rstrip("\r\n")) for ln in read_lines(ctx.fs_path)
                          if not _PROMPT.match(ln.raw)), default=0)
        self.cmdlet: str | None = None
        self.props: dict[str, str] = {}
        self.start = 0
        self.cur: str | None = None
        self.last_raw = ""
        self.partial = False
        self.table: list[tuple[int, int | None]] | None = None
        self.header: list[str] = []
        self.pending: tuple[int, str] | None = None
        self.bad = 0
        self.n = 0

    def warn_line(self, message: str, no: int) -> None:
        self.bad += 1
        if self.bad <= _MAX_LINE_WARNINGS:
            self.ctx.warn(message, f"line={no}")
        elif self.bad == _MAX_LINE_WARNINGS + 1:
            self.ctx.warn("more unrecognized lines; not listed", f"line={no}")

    def flush(self) -> Iterator[dict[str, Any]]:
        if self.props:
            self.n += 1
            props = {k: v.rstrip() for k, v in self.props.items()}
            yield make_row(props, "list", f"line={self.start}", cmdlet=self.cmdlet,
                           partial=self.partial)
        self.props, self.cur, self.partial = {}, None, False

    def flush_pending(self) -> None:
        if self.pending is not None:
            self.warn_line(f"unrecognized line {self.pending[1].strip()[:80]!r}", self.pending[0])
            self.pending = None

    def rows(self) -> Iterator[dict[str, Any]]:
        for ln in read_lines(self.ctx.fs_path):
            raw = ln.raw.replace("\x00", "").rstrip("\r\n")
            yield from self.line(ln.no, raw, ln.last_unterminated)
        self.flush_pending()
        yield from self.flush()
        if self.n == 0:
            self.ctx.warn("no PowerShell objects found", None)

    def line(self, no: int, raw: str, last: bool) -> Iterator[dict[str, Any]]:
        text = raw.rstrip()
        if self.table is not None:
            if text.strip():
                yield self.table_row(no, raw, last)
                return
            self.table = None
            return
        if not text.strip():
            self.flush_pending()
            self.cur = None
            return
        if (pm := _PROMPT.match(text)) is not None:
            self.flush_pending()
            yield from self.flush()
            self.cmdlet = cmdlet_of(pm["cmd"])
            return
        if _RULER.match(text) and self.pending is not None:
            yield from self.flush()
            cols = _columns(raw)
            names = [self.pending[1][a:b].strip() for a, b in cols]
            if all(re.fullmatch(r"[A-Za-z_][\w.]*", x) for x in names):
                self.table, self.header = cols, names
            else:
                self.warn_line("table header does not match its ruler", self.pending[0])
            self.pending = None
            return
        self.flush_pending()
        m = _PROP.match(raw)  # raw: a value cut after a space keeps it
        if m:
            yield from self.prop(no, m, raw, last)
            return
        if raw.startswith(" ") and self.cur is not None:
            # a line filled to the width was cut mid-word: no separator
            sep = "" if len(self.last_raw.rstrip()) >= self.width - 1 else " "
            self.props[self.cur] = (self.props[self.cur] if sep == "" else self.props[self.cur].rstrip()) \
                + sep + raw.lstrip()
            self.last_raw = raw
            if last:
                self.truncated(no)
            return
        if _NOISE.match(text):
            return
        if last:  # a cut-off last line: the object it belonged to is incomplete
            self.truncated(no)
            return
        self.pending = (no, raw)

    def prop(self, no: int, m: re.Match[str], raw: str, last: bool) -> Iterator[dict[str, Any]]:
        name = m["name"]
        if name in self.props:
            yield from self.flush()
        if not self.props:
            self.start = no
        self.props[name] = m["val"] or ""
        self.cur = name
        self.last_raw = raw
        if last:
            self.truncated(no)

    def truncated(self, no: int) -> None:
        self.partial = True
        self.ctx.warn("truncated last line: the last value may be cut", f"line={no}")

    def table_row(self, no: int, raw: str, last: bool) -> dict[str, Any]:
        cells = {}
        trunc = []
        for name, (a, b) in zip(self.header, self.table or []):
            cell = raw[a:b].strip() if b is not None else raw[a:].strip()
            if cell.endswith("..."):
                cell = cell[:-3].rstrip()
                trunc.append(name)
            cells[name] = cell
        if last:
            self.ctx.warn("truncated last line: the last row may be cut", f"line={no}")
        self.n += 1
        return make_row(cells, "table", f"line={no}", cmdlet=self.cmdlet, truncated=trunc,
                        partial=last)


# --------------------------------------------------------------------------
# Export-Clixml

_MAX_REFS = 100_000


def _unescape(text: str | None) -> str:
    """CliXML escapes control characters as ``_xHHHH_`` (CR LF = ``_x000D__x000A_``)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text or "")


class _CliXml:
    """Values of CliXML elements; remembers type names and objects by RefId."""

    def __init__(self) -> None:
        self.tn: dict[str, list[str]] = {}
        self.refs: dict[str, Any] = {}

    def type_names(self, obj: Any) -> list[str]:
        for c in obj:
            tag = _local(c.tag)
            if tag == "TN":
                names = [_unescape(t.text) for t in c if _local(t.tag) == "T"]
                if c.get("RefId") is not None:
                    self.tn[c.get("RefId")] = names
                return names
            if tag == "TNRef":
                return self.tn.get(c.get("RefId") or "", [])
        return []

    def props(self, obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for c in obj:
            if _local(c.tag) in ("Props", "MS"):
                for p in c:
                    name = p.get("N")
                    if name is not None:
                        out[_unescape(name)] = self.value(p)
        return out

    def value(self, el: Any) -> Any:
        tag = _local(el.tag)
        if tag == "Nil":
            return None
        if tag == "Ref":
            return self.refs.get(el.get("RefId") or "")
        if tag in _CLIXML_INTS:
            try:
                return int((el.text or "").strip())
            except ValueError:
                return _unescape(el.text)
        if tag in _CLIXML_FLOATS:
            try:
                return float((el.text or "").strip())
            except ValueError:
                return _unescape(el.text)
        if tag == "B":
            return (el.text or "").strip().lower() == "true"
        if tag == "Obj":
            v = self.obj_value(el)
            if el.get("RefId") is not None and len(self.refs) < _MAX_REFS:
                self.refs[el.get("RefId")] = v
            return v
        return _unescape(el.text)

    def obj_value(self, el: Any) -> Any:
        """A nested object: a collection as a list, a dictionary as a dict,
        else its ToString (enums, ServerVersion, sizes), else its primitive,
        else its properties."""
        self.type_names(el)
        kids = {_local(c.tag): c for c in el}
        for coll in _CLIXML_COLLECTIONS:
            if coll in kids:
                return [self.value(c) for c in kids[coll]]
        if "DCT" in kids:
            out = {}
            for en in kids["DCT"]:
                parts = {c.get("N"): self.value(c) for c in en}
                out[str(parts.get("Key"))] = parts.get("Value")
            return out
        if "ToString" in kids:
            return _unescape(kids["ToString"].text)
        for tag, c in kids.items():
            if tag not in ("TN", "TNRef", "Props", "MS"):
                return self.value(c)
        return self.props(el)


def _clixml(ctx: ParseContext) -> Iterator[dict[str, Any]]:
    """One row per top-level element of ``<Objs>``; each is dropped from the
    tree once read (bounded memory whatever the number of objects). A row is
    held back until the next one starts, to know whether XML damage was
    recovered from inside it."""
    cx = _CliXml()
    xml = SafeXml(ctx, "Objs")
    held: tuple[int, dict[str, Any]] | None = None
    n = 0
    for event, el in xml:
        parent = el.getparent()
        if event == "start" or parent is None or _local(parent.tag) != "Objs":
            continue
        line = el.sourceline or 0
        if _local(el.tag) == "Obj":
            props = cx.props(el) or {"Value": cx.obj_value(el)}
            if el.get("RefId") is not None and len(cx.refs) < _MAX_REFS:
                cx.refs[el.get("RefId")] = props.get("Name") or props.get("Identity")
            row = make_row(props, "clixml", f"line={line}", type_names=cx.type_names(el), typed=True)
        else:
            row = make_row({"Value": cx.value(el)}, "clixml", f"line={line}", typed=True)
        if held is not None:
            yield _mark(xml, held, line)
        held = (line, row)
        n += 1
        el.clear()
        while el.getprevious() is not None:
            del parent[0]
    if held is not None:
        yield _mark(xml, held, None)
    if n == 0:
        ctx.warn("no objects in the CliXML export", None)


def _mark(xml: SafeXml, held: tuple[int, dict[str, Any]], next_line: int | None) -> dict[str, Any]:
    line, row = held
    if xml.damaged(line, next_line):
        row["parse_status"] = "partial"
    return row
