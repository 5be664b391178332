"""JSON records -> event table, vectorized (shared by both .evtx backends).

Both backends produce, per record, the JSON document the ``evtx`` crate's
``records_json`` emits (the python-evtx backend imitates it, see
:mod:`analyzer.evtx_python`), so one pipeline builds the table rows and the
backends give identical rows by construction.

Why Arrow and not a Python loop: measured on the corpus, bare Rust iteration
runs ~300k records/s, ``json.loads`` of the same strings alone ~170k/s, so any
per-record dict work caps the table build near 0.3x of the bare parser
(DESIGN.md measured 0.2x for the full dict pipeline). Here Python only
collects the record strings; then, per batch of records:

* the System fields are read by Arrow's C++ JSON reader with an explicit
  schema (unknown fields are skipped, so EventData never becomes ~1,000
  columns);
* ``data`` is cut out of the record text with RE2 regexes (Arrow compute) and
  rewritten into the table convention: named EventData items stay keys in
  document order, unnamed ``<Data>`` values become ``"strings"``, Binary
  becomes lower-case hex under ``"binary"``, UserData stays nested under
  ``"UserData"``, and EventSourceName / provider_guid are appended;
* level, qualifiers, the low 16 bits of the event id, the record locator are
  Arrow kernels too.

A batch the strict reader refuses (forwarded events carry numbers as text,
``"Level":"4"``) falls back to a per-record Python extraction of the System
fields; ``data`` still goes through the same regex rewrite.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

#: Level (the manifest's level value) -> table level. Level 0 is "LogAlways":
#: classic (pre-Vista style) events and Security audits are written with
#: Level 0; they are informational unless the audit keywords say otherwise.
#: Values above 5 are provider-defined verbose levels.
LEVELS: dict[int, str] = {0: "information", 1: "critical", 2: "error", 3: "warning",
                          4: "information", 5: "verbose"}

#: Security audit keywords: 0x0010000000000000 = Audit Failure,
#: 0x0020000000000000 = Audit Success (bits 52 and 53, the 14th hex digit
#: counted from the right; the crate prints keywords without zero padding).
_AUDIT_NIBBLE = r"(?P<n>[0-9a-fA-F])[0-9a-fA-F]{13}$"

_STR_ATTRS = pa.struct([pa.field("Name", pa.string()), pa.field("Guid", pa.string()),
                        pa.field("EventSourceName", pa.string())])
SYSTEM_TYPE = pa.struct([
    pa.field("Provider", pa.struct([pa.field("#attributes", _STR_ATTRS)])),
    pa.field("EventID", pa.struct([
        pa.field("#attributes", pa.struct([pa.field("Qualifiers", pa.int64())])),
        pa.field("#text", pa.int64())])),
    pa.field("Level", pa.int64()),
    pa.field("Task", pa.int64()),
    pa.field("Keywords", pa.string()),
    pa.field("TimeCreated", pa.struct([pa.field("#attributes", pa.struct([
        pa.field("SystemTime", pa.string())]))])),
    pa.field("EventRecordID", pa.int64()),
    pa.field("Channel", pa.string()),
    pa.field("Computer", pa.string()),
    pa.field("Security", pa.struct([pa.field("#attributes", pa.struct([
        pa.field("UserID", pa.string())]))])),
])
_READ_SCHEMA = pa.schema([pa.field("Event", pa.struct([pa.field("System", SYSTEM_TYPE)]))])
_PARSE_OPTS = pj.ParseOptions(explicit_schema=_READ_SCHEMA, unexpected_field_behavior="ignore")

# A JSON scalar or list of scalars, as the crate writes unnamed <Data> values.
_JSTR = r'"(?:[^"\\]|\\.)*"'
_JSCALAR = rf'(?:{_JSTR}|-?[0-9][0-9.eE+-]*|true|false|null)'
_JLIST = rf'\[(?:{_JSCALAR}(?:,{_JSCALAR})*)?\]'


def _f(arr: Any, name: str) -> pa.Array:
    """Struct child with the parent's nulls applied (``StructArray.field``
    does not apply them: a non-matching regex would read as "")."""
    return pc.struct_field(arr, name)


def _lines_buffer(arr: pa.Array) -> pa.Buffer:
    """The records as one newline-delimited buffer, without a Python copy:
    append "\n" to every value, then take the value buffer of the result."""
    withnl = pc.binary_join_element_wise(arr, "", "\n")
    if isinstance(withnl, pa.ChunkedArray):
        withnl = withnl.combine_chunks()
    _, offsets, values = withnl.buffers()
    offs = np.frombuffer(offsets, dtype=np.int32)[withnl.offset: withnl.offset + len(withnl) + 1]
    return values.slice(int(offs[0]), int(offs[-1] - offs[0]))


def _flat_system(batch: pa.Buffer) -> pa.StructArray:
    table = pj.read_json(pa.BufferReader(batch), parse_options=_PARSE_OPTS,
                         read_options=pj.ReadOptions(use_threads=True, block_size=1 << 24))
    return _f(table.column("Event").combine_chunks(), "System")


def _int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return int(v, 0) if isinstance(v, str) else int(v)
    except (TypeError, ValueError):
        return None


def _slow_system(texts: Sequence[str]) -> pa.StructArray:
    """Per-record System extraction for batches the strict reader refused."""
    rows = []
    for t in texts:
        try:
            sys_ = json.loads(t).get("Event", {}).get("System") or {}
        except (ValueError, AttributeError):
            sys_ = {}
        def attrs(key: str) -> dict[str, Any]:
            v = sys_.get(key)
            return (v.get("#attributes") or {}) if isinstance(v, dict) else {}
        eid = sys_.get("EventID")
        if isinstance(eid, dict):
            qual, eid_val = _int((eid.get("#attributes") or {}).get("Qualifiers")), _int(eid.get("#text"))
        else:
            qual, eid_val = None, _int(eid)
        pa_ = attrs("Provider")
        def s(v: Any) -> str | None:
            return None if v is None else str(v)
        rows.append({
            "Provider": {"#attributes": {"Name": s(pa_.get("Name")), "Guid": s(pa_.get("Guid")),
                                         "EventSourceName": s(pa_.get("EventSourceName"))}},
            "EventID": {"#attributes": {"Qualifiers": qual}, "#text": eid_val},
            "Level": _int(sys_.get("Level")), "Task": _int(sys_.get("Task")),
            "Keywords": s(sys_.get("Keywords")),
            "TimeCreated": {"#attributes": {"SystemTime": s(attrs("TimeCreated").get("SystemTime"))}},
            "EventRecordID": _int(sys_.get("EventRecordID")),
            "Channel": s(sys_.get("Channel")), "Computer": s(sys_.get("Computer")),
            "Security": {"#attributes": {"UserID": s(attrs("Security").get("UserID"))}},
        })
    return pa.array(rows, type=SYSTEM_TYPE)


def _json_quote(arr: pa.Array) -> pa.Array:
    """JSON string literal of each value (values here are names/GUIDs: only
    backslash and quote need escaping)."""
    esc = pc.replace_substring(arr, "\\", "\\\\")
    esc = pc.replace_substring(esc, '"', '\\"')
    return pc.binary_join_element_wise('"', esc, '"', "")


def _piece(key: str, quoted: pa.Array) -> pa.Array:
    """``,"key":value`` or "" where value is null."""
    joined = pc.binary_join_element_wise(f',"{key}":', quoted, "")
    return pc.fill_null(joined, "")


def data_column(texts: Sequence[str], esn: pa.Array, guid: pa.Array) -> pa.Array:
    """The ``data`` JSON text of each record (see the module docstring)."""
    # Cutting the EventData/UserData part out with str.find per record is
    # cheaper than an RE2 capture of ".*" (measured 0.5 vs 10 us/record).
    # Records end with "}}" (closing Event and the document).
    bodies = []
    for t in texts:
        i = t.find(',"EventData":')
        if i >= 0:
            bodies.append(t[i + 13:-2])
        else:
            i = t.find(',"UserData":')
            bodies.append('{' + t[i + 1:-2] + '}' if i >= 0 else "{}")
    body = pa.array(bodies, pa.string())
    del bodies
    if pc.any(pc.match_substring(body, ',"RenderingInfo":')).as_py():
        # RenderingInfo (forwarded events) follows EventData/UserData: dropped.
        body = pc.replace_substring_regex(body, r'(\}|null),"RenderingInfo":.*$', r"\1")
        body = pc.replace_substring_regex(body, r'^(\{"UserData":.*),"RenderingInfo":.*$', r"\1}")
    body = pc.replace_substring_regex(body, r"^null$", "{}")
    # Unnamed <Data>: "Data":{"#text":[...]} / {"#text":"x"} -> "strings":[...]
    body = pc.replace_substring_regex(body, rf'"Data":\{{"#text":({_JLIST})\}}', r'"strings":\1')
    body = pc.replace_substring_regex(body, rf'"Data":\{{"#text":({_JSCALAR})\}}', r'"strings":[\1]')
    # Binary: lower-case hex under "binary" (the crate writes upper case).
    hexes = _f(pc.extract_regex(body, r'"Binary":"(?P<h>[0-9A-Fa-f]*)"'), "h")
    body = pc.replace_substring_regex(body, r',"Binary":(?:"[0-9A-Fa-f]*"|null)', "")
    body = pc.replace_substring_regex(body, r'^\{"Binary":(?:"[0-9A-Fa-f]*"|null),?', "{")
    body = pc.fill_null(body, "{}")
    inner = pc.utf8_slice_codeunits(body, 0, -1)  # drop the closing brace
    guid_text = pc.binary_join_element_wise("{", pc.utf8_upper(guid), "}", "")
    out = pc.binary_join_element_wise(
        inner,
        _piece("binary", _json_quote(pc.utf8_lower(hexes))),
        _piece("EventSourceName", _json_quote(esn)),
        _piece("provider_guid", _json_quote(guid_text)),
        "}", "")
    return pc.replace_substring_regex(out, r"^\{,", "{")


def _levels(level: pa.Array, keywords: pa.Array) -> pa.Array:
    lvl_names = pa.array([LEVELS.get(i, "verbose") for i in range(256)])
    clipped = pc.if_else(pc.and_(pc.greater_equal(level, 0), pc.less(level, 256)), level, None)
    base = pc.fill_null(pc.take(lvl_names, clipped), "unknown")
    nibble = _f(pc.extract_regex(pc.fill_null(keywords, ""), _AUDIT_NIBBLE), "n")
    n = pc.fill_null(pc.index_in(nibble, value_set=pa.array(list("0123456789abcdefABCDEF"))), 0)
    digits = pa.array(list(range(16)) + list(range(10, 16)), pa.int64())
    val = pc.take(digits, n)
    fail = pc.not_equal(pc.bit_wise_and(val, 1), 0)
    succ = pc.not_equal(pc.bit_wise_and(val, 2), 0)
    return pc.if_else(succ, "audit_success", pc.if_else(fail, "audit_failure", base))


def records_to_table(texts: Sequence[str], path: str, source: str) -> pa.Table:
    """Table rows (Arrow, table column names) for a batch of record JSON texts."""
    n = len(texts)
    arr = pa.array(texts, type=pa.string())
    # EventID is a bare number unless it carries Qualifiers: make it one shape.
    # Only the first occurrence (System precedes EventData) is rewritten, and
    # only the System reader sees the rewritten text.
    norm = pc.replace_substring_regex(arr, r'"EventID":(-?\d+)', r'"EventID":{"#text":\1}',
                                      max_replacements=1)
    try:
        system = _flat_system(_lines_buffer(norm))
        if len(system) != n:
            raise ValueError("row count mismatch")
    except (pa.ArrowInvalid, ValueError):
        system = _slow_system(texts)
    prov = _f(_f(system, "Provider"), "#attributes")
    eid = _f(system, "EventID")
    stime = _f(_f(_f(system, "TimeCreated"), "#attributes"), "SystemTime")
    try:
        ts = pc.cast(stime, pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ts = pa.array([_parse_ts(s) for s in stime.to_pylist()], pa.timestamp("us", tz="UTC"))
    record_id = _f(system, "EventRecordID")
    event_id = pc.bit_wise_and(_f(eid, "#text"), 0xFFFF)
    cols = {
        "ts": ts,
        "ts_source": pc.if_else(pc.is_valid(ts), "utc", None),
        "host": _f(system, "Computer"),
        "source": pa.array([source] * n, pa.string()),
        "kind": pa.array(["event"] * n, pa.string()),
        "channel": _f(system, "Channel"),
        "provider": _f(prov, "Name"),
        "event_id": pc.cast(event_id, pa.int32()),
        "qualifiers": pc.cast(_f(_f(eid, "#attributes"), "Qualifiers"), pa.int32()),
        "level": _levels(_f(system, "Level"), _f(system, "Keywords")),
        "category": pc.cast(_f(system, "Task"), pa.string()),
        "user": _f(_f(_f(system, "Security"), "#attributes"), "UserID"),
        "record_id": record_id,
        "data": data_column(texts, _f(prov, "EventSourceName"), _f(prov, "Guid")),
        "path": pa.array([path] * n, pa.string()),
        "locator": pc.binary_join_element_wise(
            "record=", pc.fill_null(pc.cast(record_id, pa.string()), "unknown"), ""),
        "parse_status": pa.array(["ok"] * n, pa.string()),
    }
    # Messages are not rendered here: analyzer.messages.render costs ~35 us a
    # row (measured), ten times the whole pipeline; the query layer renders
    # them for the rows asked about (see _messages for the catalog-only helper).
    cols["message"] = pa.nulls(n, pa.string())
    return pa.table(cols)


def _parse_ts(s: str | None) -> Any:
    import pandas as pd
    if not s:
        return None
    try:
        t = pd.Timestamp(s)
    except (ValueError, OverflowError):
        return None
    t = (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).floor("us")
    return t.to_pydatetime()


def _messages(provider: pa.Array, event_id: pa.Array, data: pa.Array) -> pa.Array:
    """Message text for events of the message catalog (DCOM 10000, MOM 9986,
    Security 4625, ...), rendered from their insertion strings.

    Only catalog events are rendered here: rendering a fallback for every row
    would put a per-record Python loop back into the hot path; the catalog
    decides per distinct (provider, event id), so this stays cheap.
    """
    n = len(provider)
    try:
        from analyzer import messages
    except ImportError:
        return pa.nulls(n, pa.string())
    uniq = pa.table({"p": provider, "e": event_id}).group_by(["p", "e"]).aggregate([]).to_pylist()
    wanted = {(u["p"], u["e"]) for u in uniq
              if u["p"] is not None and u["e"] is not None and messages.lookup(u["p"], u["e"])}
    if not wanted:
        return pa.nulls(n, pa.string())
    out: list[str | None] = [None] * n
    plist, elist = provider.to_pylist(), event_id.to_pylist()
    dlist = None
    for i, key in enumerate(zip(plist, elist)):
        if key in wanted:
            if dlist is None:
                dlist = data.to_pylist()
            try:
                out[i] = messages.render(key[0], key[1], json.loads(dlist[i]))
            except Exception:  # noqa: BLE001 - a message is a convenience
                out[i] = None
    return pa.array(out, pa.string())
