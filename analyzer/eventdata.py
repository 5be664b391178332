"""Structured fields of events, read once for the whole table.

A check about transport back pressure wants "Version buckets at 200, level
High, threshold High=200" and "inbound submission disabled"; a check about a
crashing store wants "store.exe, version 8.1.240.6, in EXCDO.DLL". The event
table holds these as insertion strings (.evtx, .evt, the ``Event Xml`` of a
Copy details block) or only as the description text (KB blocks, Save-As
.txt/.csv, wevtutil text, Get-WinEvent CSV). This module turns either into
the same ``data`` fields, so a check reads one set of names whatever the
export was.

Which events have fields, and which parser reads them, is data: the
``fields`` section of ``knowledge/events.yaml`` maps a parser name to the
(provider, event ids) it reads. :func:`enrich` runs after the case table is
built (:func:`analyzer.case.load_case`): an ``is_in`` on the event id picks
the candidate rows, the provider is checked once per distinct (provider, id),
and only those rows are parsed in Python, so a log of a million other events
costs one vectorized comparison.

The parsers take the insertion strings first (they are what Windows stored)
and the message text when the strings are absent or do not have the expected
shape (a text export; a Windows version with another layout). Fields a row
already has are never overwritten. A row whose event should have fields but
whose text gives none (a localized or truncated export) gets
``fields_unread`` (the parser's name) instead, so a missing field is never
mistaken for a healthy event.
"""
from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import knowledge, messages
from .table import one_array

#: A parser: (event id, insertion strings, message text) -> fields (empty
#: when it recognizes nothing).
Parser = Callable[[int, list[str], str], dict[str, Any]]
PARSERS: dict[str, Parser] = {}


def parser(name: str) -> Callable[[Parser], Parser]:
    """Register a parser under the name ``knowledge/events.yaml`` uses."""
    def deco(fn: Parser) -> Parser:
        PARSERS[name] = fn
        return fn
    return deco


@cache
def _index() -> dict[tuple[str, int], str]:
    """(canonical provider lower-cased, event id) -> parser name."""
    out: dict[tuple[str, int], str] = {}
    for name, spec in knowledge.load("events")["fields"].items():
        for provider, ids in spec["providers"].items():
            for eid in ids:
                out[(messages.canonical_provider(provider), int(eid))] = name
    return out


@lru_cache(maxsize=1024)
def parser_for(provider: str | None, event_id: int | None) -> str | None:
    """The parser name for (provider, event id), aliases matched; None when
    the event has no structured fields."""
    if not provider or event_id is None:
        return None
    return _index().get((messages.canonical_provider(provider), int(event_id) & 0xFFFF))


def declared_keys(name: str) -> list[str]:
    """The keys the parser ``name`` may add (``knowledge/events.yaml``)."""
    return list(knowledge.load("events")["fields"][name]["keys"])


def fields(provider: str | None, event_id: int | None, data: dict[str, Any] | list | None,
           message: str | None) -> dict[str, Any]:
    """Structured fields of one event (empty when none apply)."""
    name = parser_for(provider, event_id)
    if name is None:
        return {}
    return PARSERS[name](int(event_id) & 0xFFFF, insertion_strings(data), message or "")


_PARAM = re.compile(r"param(\d+)$")


def insertion_strings(data: dict[str, Any] | list | None) -> list[str]:
    """The event's insertion strings in slot order: the ``strings`` list
    (classic .evt, unnamed ``<Data>``), else the ``param1..paramN`` values
    (Service Control Manager's named EventData on Vista+), else none.

    Not every named value as :func:`analyzer.messages.insertion_strings`
    takes them: a text export puts its own labels (``Keywords``,
    ``Opcode``, ``User Name``) into ``data``, and those are no slots."""
    if isinstance(data, (list, tuple)):
        return ["" if v is None else str(v) for v in data]
    if not isinstance(data, dict):
        return []
    strings = data.get("strings")
    if isinstance(strings, list) and strings:
        return ["" if v is None else str(v) for v in strings]
    params = sorted((int(m.group(1)), v) for k, v in data.items()
                    if (m := _PARAM.match(k)) and not isinstance(v, (dict, list)))
    return ["" if v is None else str(v) for _n, v in params]


@cache
def _ids() -> pa.Array:
    return pa.array(sorted({eid for _p, eid in _index()}), pa.int32())


def enrich(table: pa.Table) -> pa.Table:
    """The table with the structured fields merged into ``data`` of the rows
    whose (provider, event id) has a parser; other rows are untouched.

    A row whose parsing fails keeps its data as it was: fields are a
    convenience on top of the row, never a reason to lose it.
    """
    if table.num_rows == 0 or "event_id" not in table.column_names:
        return table
    event_id = table.column("event_id")
    cand = np.flatnonzero(pc.fill_null(pc.is_in(event_id, value_set=_ids()), False)
                          .to_numpy(zero_copy_only=False))
    if not len(cand):
        return table
    take = pa.array(cand)
    provs = table.column("provider").take(take).to_pylist()
    eids = event_id.take(take).to_pylist()
    hits = [i for i, (p, e) in enumerate(zip(provs, eids)) if parser_for(p, e)]
    if not hits:
        return table
    rows = cand[hits]
    pos = pa.array(rows)
    datas = table.column("data").take(pos).to_pylist()
    msgs = table.column("message").take(pos).to_pylist()
    out: list[str | None] = []
    for i, raw, msg in zip(hits, datas, msgs):
        out.append(_merged(provs[i], eids[i], raw, msg))
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[rows] = True
    col = one_array(table.column("data"))
    new = pc.replace_with_mask(col, pa.array(mask), pa.array(out, col.type))
    return table.set_column(table.column_names.index("data"), "data", new)


def _merged(provider: str, event_id: int, raw: str | None, message: str | None) -> str | None:
    """One row's data JSON with its fields added (unchanged when none)."""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return raw
    if not isinstance(data, dict):
        return raw
    try:
        extra = fields(provider, event_id, data, message)
    except Exception:  # noqa: BLE001 - fields are a convenience, never a lost row
        return raw
    added = {k: v for k, v in extra.items() if k not in data and v is not None}
    if not extra:
        # The event should have fields and none could be read (a localized
        # or cut text): say so, so that a check does not take the missing
        # fields for a healthy event.
        added = {"fields_unread": parser_for(provider, event_id)}
    if not added:
        return raw
    data.update(added)
    return json.dumps(data, ensure_ascii=False)


# --------------------------------------------------------------------------
# shared helpers

_HEX_DIGITS = re.compile(r"^(?:0x)*([0-9a-f]+)$", re.I)


def _hex(value: str | None) -> str | None:
    """``0x``-prefixed lower-case hex as printed (``0x0xa078`` and a missing
    prefix repaired, zero padding kept); other text (``XXXX``, redacted) as
    given; None for empty."""
    if value is None:
        return None
    v = value.strip().rstrip(".,")
    if not v:
        return None
    m = _HEX_DIGITS.match(v)
    return "0x" + m.group(1).lower() if m else v


def _hex_int(value: str | None) -> int | None:
    """A hex number (process id: EventData prints it without ``0x``) as int."""
    if value is None:
        return None
    m = _HEX_DIGITS.match(value.strip().rstrip(".,"))
    return int(m.group(1), 16) if m else None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    v = value.strip().replace(",", "")
    return int(v) if v.isdecimal() else None


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    return v or None


def _flat(text: str) -> str:
    """Whitespace collapsed: web and KB copies wrap sentences anywhere."""
    return re.sub(r"\s+", " ", text).strip()


# --------------------------------------------------------------------------
# MSExchangeTransport 15001-15007: back pressure

@cache
def _bp_vocab() -> dict[str, Any]:
    k = knowledge.load("events")["back_pressure"]
    levels = "|".join(sorted(k["levels"], key=len, reverse=True))
    heads = sorted(k["sections"].items(), key=lambda kv: -len(kv[0]))
    head_re = re.compile("|".join(
        "(?P<s%d>%s)" % (i, r"\s+".join(re.escape(w) for w in h.split()))
        for i, (h, _s) in enumerate(heads)), re.I)
    known = "|".join(re.escape(n) for n in sorted(k["resources"], key=len, reverse=True))
    comps = "|".join(re.escape(n) for n in sorted(k["components"], key=len, reverse=True))
    return {
        "levels": {lv.lower(): lv for lv in k["levels"]},
        "change": re.compile(
            rf"(?:The\s+)?resource\s+pressure\s+(?P<how>increased|decreased|changed)\s+from\s+"
            rf"(?P<from>{levels})\s+to\s+(?P<to>{levels})\b|(?:The\s+)?resource\s+pressure\s+is\s+"
            rf"constant\s+at\s+(?P<at>{levels})\b", re.I),
        "heads": head_re,
        "head_sections": [s for _h, s in heads],
        "known": re.compile(rf"(?P<name>{known})" + _RES_TAIL, re.I),
        "generic": re.compile(r"^\s*(?P<name>[A-Za-z][A-Za-z ]{1,60}?)" + _RES_TAIL, re.I),
        "components": re.compile(rf"{comps}", re.I),
    }


#: After a resource name: optional ("path"), "= value[%]", optional [Level],
#: then [Normal=.. Medium=.. High=..] or [limit is N% ...].
_RES_TAIL = (r"\s*(?:\(\s*\"(?P<path>[^\"]*)\"\s*\))?\s*=\s*(?P<value>[^\s\[\]%]+)\s*(?P<pct>%)?"
             r"(?:\s*\[(?P<level>[A-Za-z]+)\])?"
             r"(?:\s*\[(?P<thr>(?:\s*[A-Za-z]+\s*=\s*[\d.,]+\s*%?)+)\s*\]"
             r"|\s*\[\s*limit\s+is\s+(?P<limit>[\d.]+)\s*%?(?P<limit_text>[^\]]*)\])?")
_THRESHOLD = re.compile(r"([A-Za-z]+)\s*=\s*([\d.,]+)")


def _number(text: str) -> int | float | None:
    t = text.replace(",", "")
    if re.fullmatch(r"\d+", t):
        return int(t)
    if re.fullmatch(r"\d*\.\d+", t):
        return float(t)
    return None


def _resource(m: re.Match[str]) -> dict[str, Any]:
    """One resource line as {resource, value, unit, level, thresholds, path, ...}."""
    vocab = _bp_vocab()
    out: dict[str, Any] = {"resource": _flat(m["name"]), "value": _number(m["value"]),
                           "unit": "%" if m["pct"] else None}
    if out["value"] is None:
        out["value_text"] = m["value"]  # redacted ("XXX") or unreadable
    level = m["level"]
    out["level"] = vocab["levels"].get(level.lower(), level) if level else None
    if m["thr"]:
        thr: dict[str, Any] = {}
        for name, val in _THRESHOLD.findall(m["thr"]):
            key = name.lower()
            key = "medium" if key == "mediumhigh" else key
            thr[key] = _number(val)
        out["thresholds"] = thr
    if m["limit"]:
        out["limit"] = _number(m["limit"])
    if m["path"] is not None:
        out["path"] = m["path"].strip()  # « path » of French copies
    out["text"] = _flat(m.group(0))
    return out


def _bp_sections(text: str) -> list[tuple[str | None, str]]:
    """The text cut at its section headings: (section or None, body)."""
    vocab = _bp_vocab()
    out: list[tuple[str | None, str]] = []
    last, section = 0, None
    for m in vocab["heads"].finditer(text):
        out.append((section, text[last:m.start()]))
        idx = next(int(k[1:]) for k, v in m.groupdict().items() if v is not None)
        section, last = vocab["head_sections"][idx], m.end()
    out.append((section, text[last:]))
    return out


def _bp_resources(body: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Resource lines of one section, and its other (prose) lines."""
    vocab = _bp_vocab()
    found: list[dict[str, Any]] = []
    prose: list[str] = []
    for line in body.split("\n"):
        if not line.strip():
            continue
        ms = list(vocab["known"].finditer(line))
        if not ms:
            g = vocab["generic"].match(line)
            ms = [g] if g and (g["level"] or g["thr"] or g["limit"]) else []
        if ms:
            found.extend(_resource(m) for m in ms)
        else:
            prose.append(line.strip())
    return found, prose


def _bp_components(body: str) -> list[str]:
    """Disabled components: one a line, or (a collapsed copy) the known names."""
    lines = [ln.strip().rstrip(".") for ln in body.split("\n") if ln.strip()]
    comps = _bp_vocab()["components"]
    out: list[str] = []
    for ln in lines:
        named = [m.group(0) for m in comps.finditer(ln)]
        if len(named) > 1 or (named and len(_flat(ln)) > len(named[0]) + 3):
            out.extend(named)
        else:
            out.append(_flat(ln))
    return out


def _bp_body(text: str) -> dict[str, Any]:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"\\([\[\]])", r"\1", text)  # markdown-escaped \[High\]
    text = re.sub("[\u201c\u201d\u201e\u00ab\u00bb]", '"', text)
    if "&quot;" in text or "&#" in text:
        text = html.unescape(text)
    resources: list[dict[str, Any]] = []
    components: list[str] | None = None
    effect: list[str] = []
    for section, body in _bp_sections(text):
        if section == "disabled":
            components = (components or []) + _bp_components(body)
            continue
        found, prose = _bp_resources(body)
        resources.extend(found)
        if section == "statistics":
            effect.extend(prose)  # RTM: "Inbound mail submission ... has stopped."
    out: dict[str, Any] = {}
    if resources:
        out["resources"] = resources
    if components is not None:
        out["disabled_components"] = components
    if effect:
        out["effect"] = " ".join(effect)
    return out


@parser("back_pressure")
def back_pressure(event_id: int, strings: list[str], message: str) -> dict[str, Any]:
    """Levels, resources and disabled components of a back-pressure event.

    ``pressure_from``/``pressure_to`` ("changed from Normal to High"),
    ``pressure`` (the level now: the "to" level, or RTM's "constant at"),
    ``pressure_change`` (increased, decreased, changed, constant);
    ``resources``: one object per resource line (``resource``, ``value``,
    ``unit`` "%" or null, ``level``, ``thresholds`` {normal, medium, high},
    ``path``, ``limit`` for physical memory, ``text`` as printed);
    ``disabled_components``: the list of components back pressure disabled;
    ``effect``: Exchange 2007 RTM's prose sentence instead of that list.
    The thresholds come from the event, never from defaults: builds differ.
    """
    vocab = _bp_vocab()
    out: dict[str, Any] = {}
    joined = "\n".join(strings)
    m = vocab["change"].search(message) or vocab["change"].search(joined)
    if m and m["at"]:
        out.update(pressure=vocab["levels"][m["at"].lower()], pressure_change="constant")
    elif m:
        out.update(pressure_from=vocab["levels"][m["from"].lower()],
                   pressure_to=vocab["levels"][m["to"].lower()], pressure_change=m["how"].lower())
    elif len(strings) >= 2 and all(s.strip().lower() in vocab["levels"] for s in strings[:2]):
        out.update(pressure_from=vocab["levels"][strings[0].strip().lower()],
                   pressure_to=vocab["levels"][strings[1].strip().lower()])
    if "pressure_to" in out:
        out["pressure"] = out["pressure_to"]
    body = _bp_body(joined) if strings else {}
    if "resources" not in body and "disabled_components" not in body:
        body = _bp_body(message)
    out.update(body)
    return out


# --------------------------------------------------------------------------
# Application Error 1000, Windows Error Reporting 1001, Application Hang 1002

_CRASH_KEYS = ("app", "app_version", "app_timestamp", "module", "module_version",
               "module_timestamp", "exception_code", "offset", "pid", "start_time",
               "app_path", "module_path", "report_id", "package_full_name", "package_app_id")
_V = r"[^\s,]+?"
#: Windows 2003; the stamps and ``debug?`` are optional because shortened
#: copies ("..., faulting module EXCDO.DLL, version 8.1.240.5, address
#: 0x0004f3a1.") are what tickets and forum posts often carry.
_CRASH_2003 = re.compile(
    rf"Faulting application (?P<app>.+?), version (?P<app_version>{_V})(?:, stamp (?P<app_timestamp>{_V}))?, "
    rf"faulting module (?P<module>.+?), version (?P<module_version>{_V})(?:, stamp (?P<module_timestamp>{_V}))?"
    rf"(?:, debug\? (?P<debug>\d))?, (?:fault )?address (?P<offset>[^\s,]+?)\.?(?:\s|$)", re.I)
_CRASH_2008 = re.compile(
    rf"Faulting application (?P<app>.+?), version (?P<app_version>{_V}), time stamp (?P<app_timestamp>{_V}), "
    rf"faulting module (?P<module>.+?), version (?P<module_version>{_V}), time stamp "
    rf"(?P<module_timestamp>{_V}), exception code (?P<exception_code>{_V}), fault offset "
    rf"(?P<offset>{_V}), process id (?P<pid>{_V}), application start time (?P<start_time>[^\s,]+?)\.?(?:\s|$)",
    re.I)
_CRASH_LABELS = {
    "app": r"Faulting application name:\s*(?P<v>[^,\n]+)",
    "app_version": r"Faulting application name:[^\n]*?,\s*version:\s*(?P<v>[^,\s]+)",
    "app_timestamp": r"Faulting application name:[^\n]*?time\s+stamp:\s*(?P<v>\S+)",
    "module": r"Faulting module name:\s*(?P<v>[^,\n]+)",
    "module_version": r"Faulting module name:[^\n]*?,\s*version:\s*(?P<v>[^,\s]+)",
    "module_timestamp": r"Faulting module name:[^\n]*?time\s+stamp:\s*(?P<v>\S+)",
    "exception_code": r"Exception code:\s*(?P<v>\S+)",
    "offset": r"Fault offset:\s*(?P<v>\S+)",
    "pid": r"Faulting process id:\s*(?P<v>\S+)",
    "start_time": r"Faulting application start time:\s*(?P<v>\S+)",
    "app_path": r"Faulting application path:[ \t]*(?P<v>[^\n]*)",
    "module_path": r"Faulting module path:[ \t]*(?P<v>[^\n]*)",
    "report_id": r"Report Id:\s*(?P<v>[0-9a-f-]{8,})",
    "package_full_name": r"Faulting package full name:[ \t]*(?P<v>[^\n]*)",
    "package_app_id": r"Faulting package-relative application ID:[ \t]*(?P<v>[^\n]*)",
}
_CRASH_LABEL_RES = {k: re.compile(v, re.I) for k, v in _CRASH_LABELS.items()}


def _crash_norm(raw: dict[str, str | None]) -> dict[str, Any]:
    """Crash fields in canonical form: hex with ``0x`` (exception code as
    ``0xC0000005`` like every status code in the table), pid as int."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        v = _clean(v)
        if v is None:
            continue
        if k == "exception_code":
            out[k] = messages.status_code(v) or _hex(v)
        elif k in ("app_timestamp", "module_timestamp", "offset", "start_time", "termination_time"):
            out[k] = _hex(v)
        elif k == "pid":
            out[k] = _hex_int(v)
        elif k == "debug":
            out[k] = _int(v)
        else:
            out[k] = v
    return out


def _looks_hex(*values: str) -> bool:
    return all(_HEX_DIGITS.match(v.strip()) for v in values)


@parser("app_crash")
def app_crash(event_id: int, strings: list[str], message: str) -> dict[str, Any]:
    """Faulting application and module of an event 1000, in all three text
    generations: Windows XP/2003 (``stamp`` and ``debug?`` from 2003 SP1 on,
    ``fault address``: the address is module-relative and becomes
    ``offset``), Vista/2008 (one
    sentence with exception code, offset, process id, start time) and 2008
    R2+ (one ``Label: value`` line each, with paths and report id).
    ``layout`` says which: ``2003``, ``2008``, ``2008 R2+``."""
    n = len(strings)
    s = [x.strip() for x in strings]
    if n == 5 and s[0] and s[2] and _looks_hex(s[4]):
        raw = dict(zip(("app", "app_version", "module", "module_version", "offset"), s))
        return {**_crash_norm(raw), "layout": "2003"}
    if n == 8 and s[6] in ("0", "1") and _looks_hex(s[2], s[5]):
        raw = dict(zip(("app", "app_version", "app_timestamp", "module", "module_version",
                        "module_timestamp", "debug", "offset"), s))
        return {**_crash_norm(raw), "layout": "2003"}
    if n >= 10 and s[0] and s[3] and _looks_hex(s[6], s[8]):
        raw = dict(zip(_CRASH_KEYS, s))
        return {**_crash_norm(raw), "layout": "2008" if n < 12 else "2008 R2+"}
    return _crash_text(message)


def _crash_text(message: str) -> dict[str, Any]:
    flat = _flat(message)
    for rx, layout in ((_CRASH_2008, "2008"), (_CRASH_2003, "2003")):
        m = rx.search(flat)
        if m:
            return {**_crash_norm(m.groupdict()), "layout": layout}
    text = message.replace("\r\n", "\n").replace("\r", "\n")
    raw = {}
    for k, rx in _CRASH_LABEL_RES.items():
        m = rx.search(text)
        if m:
            raw[k] = m["v"]
    if "app" not in raw:
        return {}
    return {**_crash_norm(raw), "layout": "2008 R2+"}


#: WER APPCRASH problem signature P1..P8.
_SIGNATURE_CRASH = ("app", "app_version", "app_timestamp", "module", "module_version",
                    "module_timestamp", "exception_code", "offset")


@parser("wer_report")
def wer_report(event_id: int, strings: list[str], message: str) -> dict[str, Any]:
    """Windows Error Reporting 1001: bucket, event name, the problem
    signature (P1..P10 as ``signature``) and, for ``APPCRASH``, the crash
    fields of event 1000 under the same names. Windows 2003's "Fault bucket
    N." gives the bucket only."""
    s = [x.strip() for x in strings]
    out: dict[str, Any] = {}
    if len(s) >= 15 and re.fullmatch(r"[A-Za-z0-9_]+", s[2] or "-"):
        out = {"bucket": s[0] or None, "bucket_type": _int(s[1]), "event_name": s[2],
               "signature": s[5:15]}
        if len(s) > 19 and s[19]:
            out["report_id"] = s[19]
    else:
        text = message.replace("\r\n", "\n").replace("\r", "\n")
        m = re.search(r"Fault bucket\s*(?P<b>[^,\n]*?)\s*(?:,\s*type\s+(?P<t>\d+)|\.?\s*$|\n)", text, re.I | re.M)
        if m:
            out["bucket"] = m["b"].strip().rstrip(".") or None
            out["bucket_type"] = _int(m["t"])
        m = re.search(r"Event Name:\s*(\S+)", text, re.I)
        if m:
            out["event_name"] = m.group(1)
        sig = dict(re.findall(r"^\s*P(\d+):[ \t]*([^\n]*)$", text, re.M))
        if sig:
            top = max(int(k) for k in sig)
            out["signature"] = [sig.get(str(i), "").strip() for i in range(1, top + 1)]
        m = re.search(r"Report Id:\s*([0-9a-f-]{8,})", text, re.I)
        if m:
            out["report_id"] = m.group(1)
    if out.get("event_name", "").upper() == "APPCRASH" and out.get("signature"):
        out.update(_crash_norm(dict(zip(_SIGNATURE_CRASH, out["signature"]))))
    return {k: v for k, v in out.items() if v is not None}


_HANG_2003 = re.compile(
    rf"Hanging application (?P<app>.+?), version (?P<app_version>{_V}), hang module (?P<module>.+?), "
    rf"version (?P<module_version>{_V}), hang address (?P<offset>[^\s,]+?)\.?(?:\s|$)", re.I)
_HANG_2008 = re.compile(r"The program (?P<app>.+?) version (?P<app_version>\S+) stopped interacting", re.I)
_HANG_LABELS = {"pid": r"Process ID:\s*(?P<v>\S+)", "start_time": r"Start Time:\s*(?P<v>\S+)",
                "termination_time": r"Termination Time:\s*(?P<v>\S+)",
                "app_path": r"Application Path:[ \t]*(?P<v>[^\n]*)",
                "report_id": r"Report Id:\s*(?P<v>[0-9a-f-]{8,})"}


@parser("app_hang")
def app_hang(event_id: int, strings: list[str], message: str) -> dict[str, Any]:
    """Application Hang 1002: the hung program (and on Windows 2003 the hang
    module and address, as ``module`` and ``offset``)."""
    s = [x.strip() for x in strings]
    if len(s) == 5 and s[0]:
        raw = dict(zip(("app", "app_version", "module", "module_version", "offset"), s))
        return {**_crash_norm(raw), "layout": "2003"}
    if len(s) >= 7 and s[0] and _looks_hex(s[2]):
        raw = dict(zip(("app", "app_version", "pid", "start_time", "termination_time", "app_path",
                        "report_id"), s))
        return {**_crash_norm(raw), "layout": "2008"}
    flat = _flat(message)
    m = _HANG_2003.search(flat)
    if m:
        return {**_crash_norm(m.groupdict()), "layout": "2003"}
    m = _HANG_2008.search(flat)
    if not m:
        return {}
    raw = dict(m.groupdict())
    text = message.replace("\r\n", "\n").replace("\r", "\n")
    for k, rx in _HANG_LABELS.items():
        mm = re.search(rx, text, re.I)
        if mm:
            raw[k] = mm["v"]
    return {**_crash_norm(raw), "layout": "2008"}


# --------------------------------------------------------------------------
# Service Control Manager 7000, 7023, 7031, 7032, 7034

_SCM_TEXT = re.compile(
    r"The (?P<service>.+?) service (?:terminated unexpectedly|failed to start|terminated with)"
    r"|after the unexpected termination of the (?P<service2>.+?) service", re.I)
_SCM_COUNT = re.compile(r"It has done this (?P<n>\d+) time\(s\)", re.I)
_SCM_ACTION = re.compile(r"corrective action will be taken in (?P<ms>\d+) milliseconds: (?P<action>.+?)\.?$",
                         re.I)
_SCM_TRIED = re.compile(r"tried to take a corrective action \((?P<action>[^)]*)\)", re.I)
_SCM_ERROR = re.compile(r"the following error: ?(?P<error>.+?)$", re.I)
_INT_KEYS = frozenset({"crash_count", "action_delay_ms", "action_number"})


@parser("service")
def service(event_id: int, strings: list[str], message: str) -> dict[str, Any]:
    """The service display name (``service``) of a Service Control Manager
    event; for a crash (7031/7034) the crash count and the recovery action
    and its delay; for a start failure or a failed recovery the error text.

    From the insertion strings by the slot names of ``knowledge/events.yaml``
    when the row has enough of them (Vista+ names them param1..param5, in
    that order); otherwise from the text, whose double spaces and hard wraps
    (KB 872963) are collapsed first."""
    slots = knowledge.load("events")["fields"]["service"]["slots"].get(event_id, [])
    s = [x.strip() for x in strings]
    if slots and len(s) >= slots.index("service") + 1:
        out: dict[str, Any] = {}
        for name, value in zip(slots, s):
            if name and value:
                out[name] = _int(value) if name in _INT_KEYS else value
        return out
    flat = _flat(message)
    m = _SCM_TEXT.search(flat)
    if not m:
        return {}
    out = {"service": m["service"] or m["service2"]}
    if (c := _SCM_COUNT.search(flat)):
        out["crash_count"] = int(c["n"])
    if (a := _SCM_ACTION.search(flat)):
        out["action_delay_ms"], out["action"] = int(a["ms"]), a["action"]
    elif (t := _SCM_TRIED.search(flat)):
        out["action"] = t["action"]
    if "crash_count" not in out and (e := _SCM_ERROR.search(flat)):
        out["error"] = e["error"]
    return out
