"""JSON records -> event table, vectorized (shared by both .evtx backends).

Both backends produce, per record, the JSON document the ``evtx`` crate's
``records_json`` emits (the python-evtx backend imitates it, see
:mod:`.pyevtx`), so one pipeline builds the table rows and the
backends give identical rows by construction.

Why Arrow and not a Python loop: bare Rust iteration runs ~200-450k
records/s on this kind of machine and ``json.loads`` of the same strings
alone ~170k/s, so any per-record Python work caps the table build far below
the 0.5x target (a dict per record measured 0.2x; benchmarks/evtx_throughput.py). Here
Python only collects the record strings; everything else is a fixed number
of Arrow kernel calls per batch, which release the GIL (so the source can run
them on the second core while the Rust iterator produces the next batch):

* **Split, zero-copy.** A record is ``{"Event":{...,"System":{...}`` +
  ``,"EventData":<value>`` (or ``,"UserData":<value>``) + ``}}``. The split
  points come from one RE2 search for the markers' common tail ``Data":``
  checked by bytes (the markers cannot occur inside a JSON string, where
  quotes are escaped; see :func:`_marker_at`). New
  offsets over the *same* value buffer then cut the bodies out of the
  records, and the heads are kept as where they end. Before this, a Python
  loop cut the bodies (~0.5 us a record) and every regex below ran over
  whole records.
* **System** fields are read by DuckDB's JSON functions (yyjson) from the
  System objects, handed over as string views into the record texts
  (:func:`_system_docs`; else head + ``}}``, a complete document), one
  ``json_extract_string`` with all paths,
  so EventData is never parsed for them. Measured on a 20k-record batch: Arrow's JSON reader took 48 ms plus
  12 ms for a regex giving ``"EventID"`` one shape; DuckDB 22 ms.
* **data** is the body rewritten into the table convention: named EventData
  items stay keys in document order, unnamed ``<Data>`` values become
  ``"strings"``, Binary becomes lower-case hex under ``"binary"``, UserData
  stays nested under ``"UserData"``, and EventSourceName / provider_guid are
  appended. Each RE2 rewrite runs only on the rows a plain substring test
  says it can change (``filter`` -> rewrite -> ``replace_with_mask``), so
  its cost follows the matching rows, not the batch; the Binary item is cut
  by offsets where the row has the crate's shape (:func:`_binary_cut`), and
  the provider GUID and event source name pieces are built once per
  distinct value.
* level, qualifiers, the low 16 bits of the event id, the record locator are
  Arrow kernels too.
* **message** is filled only for rows whose (provider, event id) is in the
  message catalog (:func:`messages_column`): an ``is_in`` on the event id
  picks candidates, and the templates are filled by Arrow string joins over
  values DuckDB reads, per group of rows with the same template and data
  keys; the rows Python would print differently go to
  :func:`analyzer.messages.render`. The result equals ``render`` on every
  catalog row (a test holds that on the corpus).

Rows not shaped as the crate writes them (forwarded events carry numbers as
text, ``"Level":"4"``) get their System fields from a per-record Python
extraction (:func:`_slow_system`, the old strict-reader fallback, now per
row instead of per batch); ``data`` still goes through the same rewrite.
"""
from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from analyzer import table

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
# A JSON scalar or list of scalars, as the crate writes unnamed <Data> values.
_JSTR = r'"(?:[^"\\]|\\.)*"'
_JSCALAR = rf'(?:{_JSTR}|-?[0-9][0-9.eE+-]*|true|false|null)'
_JLIST = rf'\[(?:{_JSCALAR}(?:,{_JSCALAR})*)?\]'

#: Markers that end the System part of a record (first occurrence is
#: structural: inside JSON strings quotes are escaped).
_EVENTDATA = ',"EventData":'
_USERDATA = ',"UserData":'
_MARKERS = ",(?:" + re.escape(_EVENTDATA[1:-1]) + "|" + re.escape(_USERDATA[1:-1]) + "):"


def _f(arr: Any, name: str) -> pa.Array:
    """Struct child with the parent's nulls applied (``StructArray.field``
    does not apply them: a non-matching regex would read as "")."""
    return pc.struct_field(arr, name)


def _lit(text: str) -> str:
    """A literal as an RE2 pattern. Arrow's plain ``find_substring`` /
    ``match_substring`` were measured 4x slower than RE2 on the same literal
    (RE2 scans with memchr on the first byte)."""
    return re.escape(text)


def _offsets(arr: pa.StringArray) -> np.ndarray:
    """The int32 value offsets of a string array, honouring its slice offset."""
    return np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + len(arr) + 1]


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


#: System fields read per record: column -> JSON path under $.Event.System.
#: Numeric fields are read as text too and cast after a digits check.
_SYS_PATHS: dict[str, str] = {
    "name": 'Provider."#attributes".Name',
    "guid": 'Provider."#attributes".Guid',
    "esn": 'Provider."#attributes".EventSourceName',
    "eid": "EventID",
    "eid_text": 'EventID."#text"',
    "qual": 'EventID."#attributes".Qualifiers',
    "level": "Level",
    "task": "Task",
    "keywords": "Keywords",
    "time": 'TimeCreated."#attributes".SystemTime',
    "rid": "EventRecordID",
    "channel": "Channel",
    "computer": "Computer",
    "user": 'Security."#attributes".UserID',
}
_INT_FIELDS = ("eid_text", "qual", "level", "task", "rid")
_STR_FIELDS = ("name", "guid", "esn", "keywords", "time", "channel", "computer", "user")
_SYS_SQL = "SELECT {cols} FROM (SELECT json_extract_string(doc, [{paths}]) AS v FROM heads)".format(
    cols=", ".join(f"v[{i + 1}] AS {k}" for i, k in enumerate(_SYS_PATHS)),
    paths=", ".join("'$.Event.System." + p + "'" for p in _SYS_PATHS.values()))
#: The same over the System objects themselves (see :func:`_system_docs`).
_SYS_SQL_SYSTEM = _SYS_SQL.replace("'$.Event.System.", "'$.")
_DIGITS = r"^-?[0-9]{1,18}$"

_local = threading.local()
#: Connections inherited through fork: kept referenced so the child never
#: runs their destructors (which would touch the parent's DuckDB state).
_inherited: list[Any] = []


def _duckdb() -> Any:
    """A DuckDB connection of this thread and process, single-threaded.

    Single-threaded from the start (``config``, not ``SET threads``): the
    parallelism is the source's two processes, and a DuckDB instance with
    worker threads is not fork-safe (measured: a child that changed the
    thread count of a fresh connection after the parent had used DuckDB
    hung joining threads). With one thread there is nothing to join, and a
    forked child opens its own connection instead of using its parent's.
    """
    import duckdb
    con = getattr(_local, "con", None)
    if con is None or _local.pid != os.getpid():
        if con is not None:
            _inherited.append(con)
        con = duckdb.connect(config={"threads": 1})
        _local.con, _local.pid = con, os.getpid()
    return con


def _object_text(arr: pa.Array) -> np.ndarray:
    """Rows of a string array whose text starts with ``{"``, ``{}`` or ``[``
    (an object or array as JSON text), from the value bytes and offsets."""
    n = len(arr)
    buf = arr.buffers()[2]
    raw = np.frombuffer(buf, dtype=np.uint8) if buf is not None else None
    if n == 0 or raw is None or raw.size == 0 or \
            not _holds(arr, r"[{\[]"):
        # One search of the column's bytes: most columns hold no brace at all.
        return np.zeros(n, dtype=bool)
    offs = _offsets(arr).astype(np.int64)
    start, lens = offs[:-1], np.diff(offs)
    first = np.where(lens > 0, raw[np.minimum(start, len(raw) - 1)], 0)
    second = np.where(lens > 1, raw[np.minimum(start + 1, len(raw) - 1)], 0)
    hit = (first == ord("[")) | ((first == ord("{")) & ((second == ord('"')) | (second == ord("}"))))
    if arr.null_count:
        hit &= pc.is_valid(arr).to_numpy(zero_copy_only=False)
    return hit


def _arrow_of(con: Any, docs: pa.Table, query: str) -> pa.Table:
    con.register("heads", docs)
    try:
        rel = con.sql(query)
        return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    finally:
        con.unregister("heads")


#: How the evtx crate starts every record: the Event element's namespace,
#: then System.
_HEAD_PREFIX = ('{"Event":{"#attributes":{"xmlns":'
                '"http://schemas.microsoft.com/win/2004/08/events/event"},"System":')


def _system_docs(arr: pa.Array, head_end: np.ndarray) -> pa.Array | None:
    """The System object of every record as a string view over the record
    texts (no copy), or None.

    The crate writes System last in the head (``{"Event":{...,"System":
    {...}``), so the text from the first ``"System":`` key to the head's end
    is the System object alone: DuckDB parses ~80 bytes a record less than
    the whole head and no ``}}`` is appended to every head. A record whose
    head holds no such key with a quote before it gives None; one where
    something follows System is not valid JSON, DuckDB refuses it and the
    caller reads the whole heads."""
    n = len(arr)
    buf = arr.buffers()[2]
    if not n or buf is None or arr.null_count:
        return None
    if pc.all(pc.starts_with(arr, _HEAD_PREFIX)).as_py():
        # The crate's constant start of a record: no search.
        at = np.full(n, len(_HEAD_PREFIX) - len('System":'), dtype=np.int64)
    else:
        at = pc.find_substring_regex(arr, _lit('System":')).to_numpy(zero_copy_only=False)
    start = _offsets(arr)[:-1].astype(np.int64)
    begin = start + at + len('System":')
    if (at < 1).any() or (begin > head_end).any():
        return None
    raw = np.frombuffer(buf, dtype=np.uint8)
    if (raw[start + at - 1] != ord('"')).any():
        return None
    return _views(arr, begin, head_end)


def _views(arr: pa.Array, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """The bytes ``[start[i], end[i])`` of ``arr``'s value buffer as a
    ``string_view`` array: 16 bytes a row pointing into the same buffer.

    Unlike :func:`_cut`, the ranges need not be taken into a new buffer,
    so the System objects reach DuckDB without being copied (measured
    ~0.5 us a record less: the heads and the System objects were each a
    copy of most of the record). A row's view holds its length and first 4
    bytes (all of it, inline, when 12 bytes or fewer), then buffer 0 and
    the offset, as the Arrow format lays them out."""
    n = len(start)
    raw = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    lens = (end - start).astype(np.int32)
    view = np.zeros((n, 16), dtype=np.uint8)
    words = view.view(np.int32)
    words[:, 0] = lens
    k = np.arange(12)
    short = np.flatnonzero(lens <= 12)
    if len(short):
        take = np.minimum(start[short, None] + k, len(raw) - 1)
        view[short, 4:] = np.where(k < lens[short, None], raw[take], 0)
    long = np.flatnonzero(lens > 12)
    if len(long):
        view[long, 4:8] = raw[start[long, None] + k[:4]]
        words[long, 3] = start[long]
    return pa.Array.from_buffers(pa.string_view(), n, [None, pa.py_buffer(view)] +
                                 ([arr.buffers()[2]] if len(long) else []))


#: Byte -> is an ASCII digit.
_IS_DIGIT = np.zeros(256, dtype=bool)
_IS_DIGIT[ord("0"):ord("9") + 1] = True


def _integers(arr: pa.Array) -> pa.Array:
    """``match_substring_regex(arr, _DIGITS)``, answered for the whole
    column at once when it holds no null and every value is 1-18 digits
    (the crate's numbers: one numpy pass over a few bytes a row, where an
    RE2 call a row costs ~0.03 us a field)."""
    buf = arr.buffers()[2] if len(arr) > arr.null_count else None
    if buf is not None:
        offs = _offsets(arr)
        lens = np.diff(offs)
        valid = pc.is_valid(arr).to_numpy(zero_copy_only=False) if arr.null_count else None
        if valid is not None:
            lens = lens[valid]
        # The bytes of null rows are in the range too: they can only make
        # the test fail (then RE2 decides).
        if lens.min() >= 1 and lens.max() <= 18 and \
                _IS_DIGIT[_value_bytes(arr)].all():
            return pa.array(np.ones(len(arr), dtype=bool),
                            mask=None if valid is None else ~valid)
    return pc.match_substring_regex(arr, _DIGITS)


def _rows_matching(arr: pa.Array, pattern: str) -> np.ndarray:
    """Rows matching an RE2 pattern (null rows count as matching), after one
    search of the whole value buffer says whether any row can: a pattern
    that is absent from a batch then costs one scan, not an RE2 call a row.
    (Only for patterns that cannot match across two rows' text: anchors
    and patterns that span a row boundary are not used here.)"""
    if not arr.null_count and not _holds(arr, pattern):
        return np.zeros(len(arr), dtype=bool)
    return pc.fill_null(pc.match_substring_regex(arr, pattern), True).to_numpy(zero_copy_only=False)


def _system_fast(arr: pa.Array, head_end: np.ndarray) -> tuple[dict[str, pa.Array], np.ndarray]:
    """System fields of every record, and the rows to redo by the slow path.

    DuckDB's JSON functions (yyjson) read the System objects, handed over
    as string views into the record texts (:func:`_system_docs`), or, when
    that is refused, the heads copied out (``head + "}}"`` is a complete
    document); either about twice as fast as Arrow's JSON reader, which
    also needed a regex rewrite of every ``"EventID"`` (a bare number, or an
    object when it carries Qualifiers) to give the column one shape. All
    values come back as text; a row is redone in Python (exactly as the old
    strict-reader fallback did for the whole batch) when a numeric field is
    not a plain integer or a text field holds an object or array, i.e. when
    the record is not shaped as the evtx crate writes it.
    """
    con = _duckdb()
    res = None
    try:
        system = _system_docs(arr, head_end)
        if system is not None:
            res = _arrow_of(con, pa.table({"doc": system}), _SYS_SQL_SYSTEM)
    except Exception:  # noqa: BLE001 - not the crate's shape (duckdb.Error), or no string
        # views in this pyarrow or DuckDB: the whole heads below
        res = None
    if res is None:
        heads = _cut(arr, _offsets(arr)[:-1].astype(np.int64), head_end)
        res = _arrow_of(con, pa.table({"doc": pc.binary_join_element_wise(heads, "}}", "")}),
                        _SYS_SQL)
    cols = {k: table.one_array(res.column(k)) for k in _SYS_PATHS}
    eid_num = _integers(cols["eid"])
    eid_obj = pc.starts_with(cols["eid"], "{")
    bad = pc.and_kleene(pc.is_valid(cols["eid"]), pc.invert(pc.or_(eid_num, eid_obj)))
    for k in _INT_FIELDS:
        bad = pc.or_kleene(bad, pc.and_kleene(pc.is_valid(cols[k]),
                                              pc.invert(_integers(cols[k]))))
    bad_np = pc.fill_null(bad, False).to_numpy(zero_copy_only=False)
    for k in _STR_FIELDS:
        # An object or array comes back as its JSON text ({"..., {}, [...]);
        # a GUID text "{fc65...}" is a string. Read from each value's first
        # two bytes with numpy (a per-row RE2 call cost ~0.03 us a field).
        bad_np = bad_np | _object_text(cols[k])
    out: dict[str, pa.Array] = {k: cols[k] for k in _STR_FIELDS}
    eid_text = pc.if_else(pc.fill_null(eid_num, False), cols["eid"], cols["eid_text"])
    ok = pa.array(~bad_np)
    for k, v in (("eid", eid_text), ("qual", cols["qual"]), ("level", cols["level"]),
                 ("task", cols["task"]), ("rid", cols["rid"])):
        out[k] = pc.cast(pc.if_else(ok, v, None), pa.int64())
    return out, bad_np


def _system_columns(struct: pa.StructArray) -> dict[str, pa.Array]:
    """The flat System columns of a :data:`SYSTEM_TYPE` struct array."""
    prov = _f(_f(struct, "Provider"), "#attributes")
    eid = _f(struct, "EventID")
    return {
        "name": _f(prov, "Name"), "guid": _f(prov, "Guid"), "esn": _f(prov, "EventSourceName"),
        "eid": _f(eid, "#text"), "qual": _f(_f(eid, "#attributes"), "Qualifiers"),
        "level": _f(struct, "Level"), "task": _f(struct, "Task"),
        "keywords": _f(struct, "Keywords"),
        "time": _f(_f(_f(struct, "TimeCreated"), "#attributes"), "SystemTime"),
        "rid": _f(struct, "EventRecordID"), "channel": _f(struct, "Channel"),
        "computer": _f(struct, "Computer"),
        "user": _f(_f(_f(struct, "Security"), "#attributes"), "UserID"),
    }


def system_fields(arr: pa.Array, head_end: np.ndarray) -> dict[str, pa.Array]:
    """System columns for a batch (``head_end``: where each record's head
    ends in the value buffer): the DuckDB fast path, with the rows it cannot
    take (or the whole batch, if DuckDB refuses it) done in Python."""
    try:
        cols, bad = _system_fast(arr, head_end)
    except Exception:  # noqa: BLE001 - duckdb.Error (malformed JSON) and kin: slow path
        return _system_columns(_slow_system(arr.to_pylist()))
    if not bad.any():
        return cols
    idx = np.flatnonzero(bad)
    slow = _system_columns(_slow_system(arr.take(pa.array(idx)).to_pylist()))
    mask = pa.array(bad)
    return {k: pc.replace_with_mask(cols[k], mask, slow[k].cast(cols[k].type)) for k in cols}


def _marker_at(arr: pa.Array, start: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per record, where its first EventData/UserData marker starts (-1: none).

    Every marker ends in ``Data":``, and the first ``Data":`` of a record
    is found with RE2 skipping ahead to each ``D`` (memchr), where the
    marker's own leading ``,`` occurs all over JSON text (measured 0.17 vs
    0.28 us a record). A ``Data":`` that is not preceded by ``,"Event`` or
    ``,"User`` (a key ending in Data before the marker) sends that record to
    the marker regex itself. A record without ``Data":`` has no marker."""
    at = pc.find_substring_regex(arr, _lit('Data":')).to_numpy(zero_copy_only=False) \
        .astype(np.int64)
    pos = start + at
    out = np.full(len(at), -1, dtype=np.int64)
    for lead in (_EVENTDATA[:-len('Data":')], _USERDATA[:-len('Data":')]):
        k = len(lead)
        rows = np.flatnonzero((at >= k) & (out < 0))
        if len(rows):
            got = values[pos[rows, None] - k + np.arange(k)]
            hit = (got == np.frombuffer(lead.encode(), dtype=np.uint8)).all(axis=1)
            out[rows[hit]] = at[rows[hit]] - k
    odd = np.flatnonzero((at >= 0) & (out < 0))
    if len(odd):
        out[odd] = pc.find_substring_regex(arr.take(pa.array(odd)), _MARKERS) \
            .to_numpy(zero_copy_only=False)
    return out


def split_records(arr: pa.StringArray) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """(head ends, bodies, kinds) of a batch of record texts.

    head = the record up to the EventData/UserData marker (the whole record
    but its closing ``}}`` when it has neither), given as where it ends in
    the value buffer (it starts where the record does): only the System
    object inside it is read, through a view (:func:`_system_docs`); body =
    the marker's value (EventData), ``"UserData":<value>`` (UserData) or ""
    (neither); kind = 0 / 1 / 2 for those three cases. Records are assumed
    to end with ``}}`` (closing Event and the document), which both
    backends guarantee.
    """
    n = len(arr)
    offs = _offsets(arr).astype(np.int64)
    lens = np.diff(offs)
    values = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    at = _marker_at(arr, offs[:-1], values)
    found = at >= 0
    which = np.zeros(n, dtype=np.uint8)
    which[found] = values[offs[:-1][found] + at[found] + 2]
    kinds = np.where(found & (which == ord("E")), 0, np.where(found, 1, 2)).astype(np.int8)
    cut = np.where(found, at, np.maximum(lens - 2, 0))
    skip = np.choose(kinds, [len(_EVENTDATA), 1, 0])  # marker bytes not in the body
    head_end = offs[:-1] + cut
    bodies = _cut(arr, head_end + skip, np.maximum(offs[1:] - 2, head_end + skip))
    return head_end, bodies, kinds


def _value_bytes(arr: pa.Array) -> np.ndarray:
    """The value bytes of a string array's rows (zero-copy numpy view):
    a numpy test over them says whether any row holds a byte."""
    buf = arr.buffers()[2]
    if buf is None:
        return np.zeros(0, dtype=np.uint8)
    offs = _offsets(arr)
    return np.frombuffer(buf, dtype=np.uint8)[offs[0]:offs[-1]]


def _whole(arr: pa.Array) -> pa.Array:
    """The value bytes of a string array as a one-value array (zero-copy):
    one RE2 search over it says whether any row contains a pattern."""
    offs = _offsets(arr)
    buf = arr.buffers()[2]
    if buf is None:
        return pa.array([""], pa.string())
    return pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(
        np.array([offs[0], offs[-1]], dtype=np.int32)), buf])


def _holds(arr: pa.Array, pattern: str) -> bool:
    """Whether the value bytes of ``arr`` hold an RE2 ``pattern``: one
    search of the whole buffer (null rows' bytes included)."""
    return bool(pc.match_substring_regex(_whole(arr), pattern)[0].as_py())


def _rewrite(arr: pa.Array, rows: np.ndarray, fn: Any) -> pa.Array:
    """``fn`` applied to the ``rows`` only (those :func:`_odd_rows` found
    holding the text ``fn`` rewrites): a substring test is far cheaper than
    an RE2 replacement over every row."""
    if not rows.any():
        return arr
    mask = pa.array(rows)
    return pc.replace_with_mask(arr, mask, fn(pc.filter(arr, mask)))


def _json_quote(arr: pa.Array) -> pa.Array:
    """JSON string literal of each value. Values here are names and GUIDs, so
    backslash and quote are escaped in Arrow; the rare value with a control
    character (a damaged record) is quoted by Python's json module."""
    raw = _value_bytes(arr)
    esc = arr
    if (raw == ord("\\")).any():
        esc = pc.replace_substring(esc, "\\", "\\\\")
    if (raw == ord('"')).any():
        esc = pc.replace_substring(esc, '"', '\\"')
    quoted = pc.binary_join_element_wise('"', esc, '"', "")
    # One numpy pass over the value bytes decides first (a per-row RE2 call
    # costs ~0.1 us even on a 38-byte GUID).
    if ((raw < 0x20) | (raw == 0x7F)).any():
        ctrl = pc.fill_null(pc.match_substring_regex(arr, r"[\x00-\x1f\x7f]"), False)
    else:
        ctrl = pa.scalar(False)
    if pc.any(ctrl).as_py():
        fixed = pa.array([json.dumps(v, ensure_ascii=False) for v in pc.filter(arr, ctrl).to_pylist()],
                         pa.string())
        quoted = pc.replace_with_mask(quoted, ctrl, fixed)
    return quoted


def _piece(key: str, quoted: pa.Array) -> pa.Array:
    """``,"key":value`` or "" where value is null."""
    joined = pc.binary_join_element_wise(f',"{key}":', quoted, "")
    return pc.fill_null(joined, "")


def _piece_by_value(key: str, arr: pa.Array, quote: Any) -> pa.Array:
    """:func:`_piece` of ``quote(arr)``, computed once per distinct value:
    provider GUIDs and event source names repeat over a whole log, so a
    dictionary encoding (one hash a row) replaces the trims, case maps,
    escapes and joins a row."""
    enc = pc.dictionary_encode(arr)
    return pc.fill_null(_piece(key, quote(enc.dictionary)).take(enc.indices), "")


def _guid_text(guid: pa.Array) -> pa.Array:
    """A GUID as ``"{UPPER}"``: GUIDs stored as text may carry their braces
    already (one pair only)."""
    return _json_quote(pc.binary_join_element_wise("{", pc.utf8_upper(pc.utf8_trim(guid, "{}")),
                                                   "}", ""))


def _binary_regex(sub: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(hex or null, body without Binary) by RE2: the general case."""
    hexes = _f(pc.extract_regex(sub, r'"Binary":"(?P<h>[0-9A-Fa-f]*)"'), "h")
    sub = pc.replace_substring_regex(sub, r',"Binary":(?:"[0-9A-Fa-f]*"|null)', "")
    sub = pc.replace_substring_regex(sub, r'^\{"Binary":(?:"[0-9A-Fa-f]*"|null),?', "{")
    return hexes, sub


def _cut(arr: pa.Array, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """The bytes ``[start[i], end[i])`` of ``arr``'s value buffer, one
    string each: new offsets over the same buffer, no copy. The ranges lie
    inside rows of ``arr``, one per row at most, in row order."""
    n = len(start)
    two = np.empty(2 * n, dtype=np.int64)
    two[0::2], two[1::2] = start, end
    pieces = pa.Array.from_buffers(pa.string(), max(2 * n - 1, 0),
                                   [None, pa.py_buffer(two.astype(np.int32)), arr.buffers()[2]])
    return pieces.take(pa.array(np.arange(0, 2 * n - 1, 2, dtype=np.int32))) if n else \
        pa.array([], pa.string())


def _binary_cut(sub: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(hex or null, body without its ``"Binary":`` item) of rows holding
    ``Binary":``: what :func:`_binary_regex` gives, cut by offsets where the
    row holds one ``"Binary":`` item, hex text or null, after a comma or
    first in the object (the crate's shape, e.g. System 7036); the other
    rows go through the regexes (an extract and two rewrites of the whole
    row cost ~2 us a row)."""
    n = len(sub)
    buf = sub.buffers()[2]
    if not n or buf is None or sub.null_count:
        return _binary_regex(sub)
    raw = np.frombuffer(buf, dtype=np.uint8)
    offs = _offsets(sub).astype(np.int64)
    start, end = offs[:-1], offs[1:]
    at = start + pc.find_substring_regex(sub, _lit('Binary":')).to_numpy(zero_copy_only=False)
    q = at - 1  # the key's opening quote
    ok = (q > start) & (raw[np.maximum(q, 0)] == ord('"'))
    comma = ok & (raw[np.maximum(q - 1, 0)] == ord(","))
    first = ok & (q - 1 == start) & (raw[np.maximum(q - 1, 0)] == ord("{"))
    ok &= comma | first
    v = at + len('Binary":')  # the value
    head = raw[np.minimum(v, len(raw) - 1)]
    null = ok & (head == ord("n")) & (v + 4 <= end)
    null_rows = np.flatnonzero(null)
    for k, c in enumerate(b"null"):
        null[null_rows] &= raw[v[null_rows] + k] == c
    text = ok & (head == ord('"')) & (v + 1 < end)
    # The hex digits run to the next quote: its position in the rest of the row.
    close = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(text)
    if len(rows):
        rest = _cut(sub, (v + 1)[rows], end[rows])
        close[rows] = pc.find_substring(rest, '"').to_numpy(zero_copy_only=False)
    text &= close >= 0
    hex_end = v + 1 + close
    rows = np.flatnonzero(text)
    if len(rows):
        digits = _cut(sub, (v + 1)[rows], hex_end[rows])
        text[rows] &= pc.match_substring_regex(digits, "^[0-9A-Fa-f]*$") \
            .to_numpy(zero_copy_only=False)
    ok &= null | text
    value_end = np.where(null, v + 4, hex_end + 1)
    # One item only: no other 'Binary":' after it.
    rows = np.flatnonzero(ok)
    if len(rows):
        tail = _cut(sub, value_end[rows], end[rows])
        ok[rows] &= ~pc.match_substring_regex(tail, _lit('Binary":')).to_numpy(zero_copy_only=False)
    if not ok.any():
        return _binary_regex(sub)
    after = raw[np.minimum(value_end, len(raw) - 1)]
    cut_from = np.where(first, q, q - 1)
    cut_to = np.where(first & (after == ord(",")) & (value_end < end), value_end + 1, value_end)
    rows = np.flatnonzero(ok)
    fast_body = pc.binary_join_element_wise(_cut(sub, start[rows], cut_from[rows]),
                                            _cut(sub, cut_to[rows], end[rows]), "")
    h0 = (v + 1)[rows]
    fast_hex = pc.if_else(pa.array(text[rows]), _cut(sub, h0, np.maximum(hex_end[rows], h0)), None)
    mask = pa.array(ok)
    hexes = pc.replace_with_mask(pa.nulls(n, pa.string()), mask, fast_hex)
    body = pc.replace_with_mask(sub, mask, fast_body)
    if not ok.all():
        slow = pa.array(~ok)
        s_hex, s_body = _binary_regex(sub.filter(slow))
        hexes = pc.replace_with_mask(hexes, slow, s_hex)
        body = pc.replace_with_mask(body, slow, s_body)
    return hexes, body


def data_column(bodies: pa.Array, kinds: np.ndarray, esn: pa.Array, guid: pa.Array) -> pa.Array:
    """The ``data`` JSON text of each record (see the module docstring) from
    the bodies and kinds of :func:`split_records`.

    Most records are named EventData that needs no rewrite: their data is
    the body without its closing brace, then the appended pieces. That is
    written for every row at once; only the rows a rewrite may change
    (:func:`_odd_rows`) go through :func:`_normalized`, and replace theirs.
    Each rewrite used to pass over the whole batch (a masked replace or an
    ``if_else`` copies every row): on a Security log, where 2% of the rows
    are odd, 0.76-0.84 -> 0.58-0.64 us a record; on the mixed BIG.evtx (41%
    odd), 1.48-1.64 -> 1.44-1.51."""
    esn_piece = _piece_by_value("EventSourceName", esn, _json_quote)
    guid_piece = _piece_by_value("provider_guid", guid, _guid_text)
    odd, found = _odd_rows(bodies, kinds)
    if odd.all():
        return _normalized(bodies, kinds, esn_piece, guid_piece, found)
    out = pc.binary_join_element_wise(pc.utf8_slice_codeunits(bodies, 0, -1),
                                      esn_piece, guid_piece, "}", "")
    if odd.any():
        mask = pa.array(odd)
        out = pc.replace_with_mask(out, mask, _normalized(
            pc.filter(bodies, mask), kinds[odd], pc.filter(esn_piece, mask),
            pc.filter(guid_piece, mask), {lead: rows[odd] for lead, rows in found.items()}))
    return out


#: What the rewrites of :func:`_normalized` look for: RenderingInfo,
#: unnamed Data, Binary. Each is searched from its first letter on: RE2
#: skips ahead with memchr on a pattern's first byte, and ``"`` is
#: everywhere in JSON, a letter much less (measured 0.20 vs 0.06 us a row).
#: A row the shorter text picks wrongly is left as it is by the rewrite,
#: whose own pattern is exact.
_RENDERING, _UNNAMED, _BINARY = 'RenderingInfo":', 'Data":{"#text":', 'Binary":'


def _odd_rows(bodies: pa.Array, kinds: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows whose data is not simply body + pieces: UserData or no
    EventData, a ``null`` or empty (``{}``, two bytes or fewer) body, and
    bodies holding what a rewrite of :func:`_normalized` looks for; and,
    per such text, the rows holding it (handed to the rewrites, which then
    need not search again)."""
    lens = np.diff(_offsets(bodies))
    odd = (kinds != 0) | (lens <= 2) | \
        pc.fill_null(pc.equal(bodies, "null"), True).to_numpy(zero_copy_only=False)
    found = {lead: _rows_matching(bodies, _lit(lead)) for lead in (_RENDERING, _UNNAMED, _BINARY)}
    for rows in found.values():
        odd |= rows
    return odd, found


def _unnamed_data_regex(arr: pa.Array) -> pa.Array:
    """Unnamed <Data>: ``"Data":{"#text":[...]}`` / ``{"#text":"x"}`` ->
    ``"strings":[...]`` wherever it occurs (two RE2 replacements)."""
    return pc.replace_substring_regex(
        pc.replace_substring_regex(arr, rf'"Data":\{{"#text":({_JLIST})\}}', r'"strings":\1'),
        rf'"Data":\{{"#text":({_JSCALAR})\}}', r'"strings":[\1]')


#: How the crate writes a classic event's EventData: the unnamed values
#: first, then (or not) its Binary item.
_UNNAMED_HEAD = '{"Data":{"#text":'
_UNNAMED_BINARY = '},"Binary":'


def _unnamed_data(arr: pa.Array) -> pa.Array:
    """:func:`_unnamed_data_regex`, with the crate's shape of a classic
    event cut at fixed places instead: ``{"Data":{"#text":X}}`` or
    ``{"Data":{"#text":X},"Binary":...}``, X a value the patterns accept
    (checked by an anchored match, which RE2 answers in one pass), and no
    other unnamed Data after it. The two unanchored replacements cost ~1.5
    us a row; this ~0.75. Rows in any other shape get the replacements."""
    if not _value_bytes(arr).size:  # no row holds a byte
        return _unnamed_data_regex(arr)
    offs = _offsets(arr).astype(np.int64)
    start, end = offs[:-1], offs[1:]
    raw = np.frombuffer(arr.buffers()[2], dtype=np.uint8)
    head = len(_UNNAMED_HEAD)
    mid = pc.find_substring(arr, _UNNAMED_BINARY).to_numpy(zero_copy_only=False).astype(np.int64)
    closed = (end - start >= head + 2) & (raw[np.maximum(end - 2, 0)] == ord("}")) & \
        (raw[np.maximum(end - 1, 0)] == ord("}"))
    x_end = np.where(mid >= 0, start + mid, np.where(closed, end - 2, -1))
    ok = pc.fill_null(pc.starts_with(arr, _UNNAMED_HEAD), False).to_numpy(zero_copy_only=False) & \
        (x_end >= start + head)
    x_end = np.where(ok, x_end, start + head)
    xs = _cut(arr, np.where(ok, start + head, start), np.where(ok, x_end, start))
    rest = _cut(arr, np.where(ok, x_end + 1, end), end)
    listed = pc.match_substring_regex(xs, f"^{_JLIST}$").to_numpy(zero_copy_only=False)
    scalar = ~listed & pc.match_substring_regex(xs, f"^{_JSCALAR}$").to_numpy(zero_copy_only=False)
    ok &= (listed | scalar) & ~pc.match_substring(rest, '"Data":{"#text":') \
        .to_numpy(zero_copy_only=False)
    if not ok.any():
        return _unnamed_data_regex(arr)
    values = pc.if_else(pa.array(scalar), pc.binary_join_element_wise("[", xs, "]", ""), xs)
    out = pc.if_else(pa.array(ok), pc.binary_join_element_wise('{"strings":', values, rest, ""), arr)
    if not ok.all():
        other = pa.array(~ok)
        out = pc.replace_with_mask(out, other, _unnamed_data_regex(pc.filter(arr, other)))
    return out


def _normalized(bodies: pa.Array, kinds: np.ndarray, esn_piece: pa.Array,
                guid_piece: pa.Array, found: dict[str, np.ndarray]) -> pa.Array:
    """:func:`data_column` of any rows, each rewrite applied where it can
    change a row (``found``: the rows of ``bodies`` holding each text the
    rewrites look for, from :func:`_odd_rows`)."""
    # RenderingInfo (forwarded events) follows EventData/UserData: dropped.
    body = _rewrite(bodies, found[_RENDERING],
                    lambda a: pc.replace_substring_regex(a, r'(\}|null),"RenderingInfo":.*$', r"\1"))
    # The rewrites below add none of the texts searched for, and a row
    # picked where the cut RenderingInfo held one is left as it is by their
    # exact patterns: the rows found in the bodies serve them all.
    if (kinds == 1).any():
        ud = pa.array(kinds == 1)
        body = pc.replace_with_mask(body, ud, pc.binary_join_element_wise(
            "{", pc.filter(body, ud), "}", ""))
    if (kinds == 2).any():
        body = pc.if_else(pa.array(kinds == 2), "{}", body)
    body = pc.if_else(pc.equal(body, "null"), "{}", body)
    body = _rewrite(body, found[_UNNAMED], _unnamed_data)
    # Binary: lower-case hex under "binary" (the crate writes upper case).
    # The patterns below are exact, so a row picked wrongly (see _BINARY)
    # keeps its text and gets no hex.
    bmask = pa.array(found[_BINARY])
    if pc.any(bmask).as_py():
        sub = pc.filter(body, bmask)
        sub_hex, sub = _binary_cut(sub)
        hexes = pc.replace_with_mask(pa.nulls(len(body), pa.string()), bmask, sub_hex)
        body = pc.replace_with_mask(body, bmask, sub)
        binary = _piece("binary", _json_quote(pc.utf8_lower(hexes)))
    else:
        binary = ""
    inner = pc.utf8_slice_codeunits(body, 0, -1)  # drop the closing brace
    out = pc.binary_join_element_wise(inner, binary, esn_piece, guid_piece, "}", "")
    # An empty body followed by a piece starts "{,": only where inner is "{".
    empty = pc.equal(inner, "{")
    if pc.any(empty).as_py():
        out = pc.replace_with_mask(out, empty, pc.replace_substring_regex(
            pc.filter(out, empty), r"^\{,", "{"))
    return out


#: The level labels a record can get, in code order: the manifest levels
#: (:data:`LEVELS`), then the two the keywords decide and "unknown".
_LEVEL_LABELS = np.array(sorted(set(LEVELS.values())) + ["audit_failure", "audit_success",
                                                         "unknown"], dtype=object)
_LABEL_CODE = {label: i for i, label in enumerate(_LEVEL_LABELS)}
#: Manifest level 0-255 -> label code (above 5: provider-defined verbose).
_LEVEL_CODE = np.array([_LABEL_CODE[LEVELS.get(i, "verbose")] for i in range(256)], dtype=np.int8)


def _levels(level: pa.Array, keywords: pa.Array) -> pa.Array:
    """The table's level: audit success/failure from the keywords, else
    the manifest level's name (see :data:`LEVELS`); "unknown" without one.

    Built as the table's dictionary column directly, from small codes: the
    keywords are read once per distinct value (a log holds a few dozen),
    and no label is written out per row to be hashed back into a
    dictionary (measured ~0.14 -> ~0.05 us a record)."""
    lvl = pc.fill_null(level, -1).to_numpy(zero_copy_only=False)
    inside = (lvl >= 0) & (lvl < 256)
    code = np.where(inside, _LEVEL_CODE[np.where(inside, lvl, 0)], _LABEL_CODE["unknown"])
    enc = pc.dictionary_encode(keywords)
    nibble = _audit_nibble(enc.dictionary)[pc.fill_null(enc.indices, 0).to_numpy(
        zero_copy_only=False)] if len(enc.dictionary) else np.zeros(len(lvl), dtype=np.int8)
    if enc.indices.null_count:
        nibble = np.where(pc.is_valid(enc.indices).to_numpy(zero_copy_only=False), nibble, 0)
    code = np.where((nibble & 2) != 0, _LABEL_CODE["audit_success"],
                    np.where((nibble & 1) != 0, _LABEL_CODE["audit_failure"], code))
    # The dictionary holds the labels in use in the order they first occur,
    # as an encoding of the labels themselves gives it.
    used = np.flatnonzero(np.bincount(code, minlength=len(_LEVEL_LABELS)))
    used = used[np.argsort([int(np.argmax(code == c)) for c in used])]
    compact = np.zeros(len(_LEVEL_LABELS), dtype=np.int8)
    compact[used] = np.arange(len(used), dtype=np.int8)
    return pa.DictionaryArray.from_arrays(pa.array(compact[code], pa.int8()),
                                          pa.array(_LEVEL_LABELS[used].tolist(), pa.string()))


#: Byte -> hex digit value, -1 for a non-hex byte.
_HEX = np.full(256, -1, dtype=np.int8)
for _i, _c in enumerate(b"0123456789"):
    _HEX[_c] = _i
for _i, _c in enumerate(b"abcdef"):
    _HEX[_c] = _HEX[_c - 32] = 10 + _i


def _audit_nibble(keywords: pa.Array) -> np.ndarray:
    """Per row, the value of the hex digit :data:`_AUDIT_NIBBLE` names (the
    14th from the right, when the last 14 characters are hex digits), else
    0; read from the value bytes with numpy instead of a per-row regex."""
    n = len(keywords)
    out = np.zeros(n, dtype=np.int8)
    buf = keywords.buffers()[2] if n else None
    if buf is None:
        return out
    raw = np.frombuffer(buf, dtype=np.uint8)
    offs = _offsets(keywords).astype(np.int64)
    ok = np.diff(offs) >= 14
    if keywords.null_count:
        ok &= pc.is_valid(keywords).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(ok)
    if not len(rows):
        return out
    tail = _HEX[raw[offs[1:][rows, None] - 14 + np.arange(14)]]
    good = (tail >= 0).all(axis=1)
    out[rows[good]] = tail[good, 0]
    return out


def records_to_table(texts: Sequence[str] | pa.Array, path: str, source: str) -> pa.Table:
    """Table rows (Arrow, table column names) for a batch of record JSON texts."""
    arr = texts if isinstance(texts, pa.Array) else pa.array(texts, type=pa.string())
    n = len(arr)
    head_end, bodies, kinds = split_records(arr)
    sysf = system_fields(arr, head_end)
    stime = sysf["time"]
    ts = _timestamps(stime)
    record_id = sysf["rid"]
    event_id = pc.cast(pc.bit_wise_and(sysf["eid"], 0xFFFF), pa.int32())
    provider = sysf["name"]
    data = data_column(bodies, kinds, sysf["esn"], sysf["guid"])
    cols = {
        "ts": ts,
        "ts_source": _const("utc", n, "ts_source", None if not ts.null_count else pc.is_valid(ts)),
        "host": sysf["computer"],
        "source": _const(source, n, "source"),
        "kind": _const("event", n, "kind"),
        "channel": sysf["channel"],
        "provider": provider,
        "event_id": event_id,
        "qualifiers": pc.cast(sysf["qual"], pa.int32()),
        "level": _levels(sysf["level"], sysf["keywords"]),
        "category": pc.cast(sysf["task"], pa.string()),
        "user": sysf["user"],
        "record_id": record_id,
        "message": messages_column(provider, event_id, data),
        "data": data,
        "path": _const(path, n, "path"),
        "locator": pc.binary_join_element_wise(
            "record=", pc.fill_null(pc.cast(record_id, pa.string()), "unknown"), ""),
        "parse_status": _const("ok", n, "parse_status"),
    }
    # Conformed here, in the process that built the batch: the helper
    # process's half reaches the parent with its dictionaries encoded.
    return table.conform_arrow(pa.table(cols))


def _const(value: str, n: int, column: str, valid: pa.Array | None = None) -> pa.Array:
    """A column holding one value (null where ``valid`` is false), built
    directly in the table's dictionary type (no string per row to encode)."""
    typ = table.SCHEMA[column]
    indices = pa.array(np.zeros(n, dtype=typ.index_type.to_pandas_dtype()), typ.index_type)
    if valid is not None:
        indices = pc.if_else(valid, indices, None)
    return pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()))


def _timestamps(stime: pa.Array) -> pa.Array:
    """SystemTime text -> UTC microseconds, vectorized.

    Parsed at nanosecond precision first, then truncated to microseconds
    (``safe=False`` drops the sub-microsecond digits, as the pandas fallback
    did with ``floor``): forwarded events (Windows Event Collector) write 9
    fractional digits (``...33.833733500Z``), which a direct cast to
    microseconds refuses, sending the whole batch through pandas row by row
    (9.5 of ~26 us a record on a WEC log). Text Arrow cannot parse at all
    still goes through :func:`_parse_ts`; a batch holding a date outside
    the nanosecond range (years before 1678 or after 2261: FILETIME 0 of a
    damaged record) is cast to microseconds directly.
    """
    us = pa.timestamp("us", tz="UTC")
    try:
        return pc.cast(stime, pa.timestamp("ns", tz="UTC")).cast(us, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    try:
        return pc.cast(stime, us)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([_parse_ts(s) for s in stime.to_pylist()], us)


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


def warm() -> None:
    """Load what every batch needs (the DuckDB module, the message catalog
    and provider aliases) before a helper process is forked: the child
    inherits them instead of loading them again (~0.2 s a process)."""
    import duckdb  # noqa: F401 - imported for its side effect (loaded once)
    _catalog_ids()
    _template("Service Control Manager", 7036)


@cache
def _catalog_ids() -> pa.Array:
    """Event ids (low 16 bits) that have an entry in knowledge/events.yaml."""
    from analyzer import knowledge
    ids = sorted({int(e["id"]) & 0xFFFF for e in knowledge.load("events")["events"]})
    return pa.array(ids, pa.int32())


_SLOT = re.compile(r"%(\d+)")


@lru_cache(maxsize=4096)
def _template(provider: str, event_id: int) -> tuple[bool, tuple[str, int, tuple[Any, ...]] | None]:
    """(in the catalog, compiled template) for (provider, event id); the
    compiled template is None when the catalog chooses the template by the
    count of insertion strings (DCOM 10016, Application Error 1000:
    :func:`_template_by_count` then), or see :func:`_compile`."""
    from analyzer import messages
    entry = messages.lookup(provider, event_id)
    if entry is None:
        return False, None
    if entry.get("templates_by_count"):
        return True, None
    return True, _compile(entry.get("template"))


@lru_cache(maxsize=4096)
def _template_by_count(provider: str, event_id: int,
                       count: int) -> tuple[str, int, tuple[Any, ...]] | None:
    """The compiled template :func:`analyzer.messages.render` fills for an
    event with ``count`` insertion strings: the catalog's template for that
    count, else its default one. Rows of one data shape have one count, so
    a Windows version's DCOM 10016 (7, 9 or 11 strings) is filled by Arrow
    like any other template; these rows went to Python one by one before
    (~30 us a row)."""
    from analyzer import messages
    entry = messages.lookup(provider, event_id)
    if entry is None:
        return None
    return _compile((entry.get("templates_by_count") or {}).get(count) or entry.get("template"))


@lru_cache(maxsize=4096)
def _compile(template: str | None) -> tuple[str, int, tuple[Any, ...]] | None:
    """A template compiled: (``str.format`` pattern with one positional
    field per ``%n`` slot, highest slot number, parts), parts being the
    text split at its slots: literals at even positions, (slot number, slot
    text) at odd ones. ``format`` makes a message one C-level call instead
    of a regex substitution with a Python callback per slot (most of
    ``messages.render``'s ~16 us a row); the parts drive the vectorized
    fill. None when there is no template, it has no slots, or writes a slot
    in a form these cannot mirror (``%0``, ``%01``): render() handles those.
    """
    if not template:
        return None
    split = _SLOT.split(template)
    if len(split) == 1 or any(p != str(int(p)) or int(p) == 0 for p in split[1::2]):
        return None
    fmt = "".join(p.replace("{", "{{").replace("}", "}}") if i % 2 == 0 else f"{{{int(p) - 1}}}"
                  for i, p in enumerate(split))
    parts = tuple(p if i % 2 == 0 else (int(p), "%" + p) for i, p in enumerate(split))
    return fmt, max(int(p) for p in split[1::2]), parts


def _render(provider: str, event_id: int, data: Any) -> str | None:
    """:func:`analyzer.messages.render`, with the common case (a catalog
    template and insertion strings to fill it) done from the compiled
    template; every other case goes to ``messages.render`` itself. A test
    holds the two equal on every catalog row of the corpus. Same slot rule
    as :func:`analyzer.messages.fill`: a slot with no string stays visible
    as ``%n``."""
    from analyzer import messages
    compiled = _template(provider, event_id)[1]
    if compiled is not None:
        strings = messages.insertion_strings(data)
        if strings:
            fmt, top, _ = compiled
            if len(strings) < top:
                strings = strings + [f"%{i}" for i in range(len(strings) + 1, top + 1)]
            return fmt.format(*strings)
    return messages.render(provider, event_id, data)


#: json_type() names whose text json_extract_string gives exactly as
#: Python's str() of the json.loads value; the others (booleans: "true" vs
#: "True", floats: exponent forms, nested values) go to Python.
_NOT_PLAIN = "['BOOLEAN', 'DOUBLE', 'OBJECT', 'ARRAY']"
#: The same as a pattern on the JSON text: a value that is a boolean, an
#: object, an array or a number with a fraction or exponent.
_NOT_PLAIN_TEXT = r'":(?:true|false|\{|\[|-?[0-9]+[.eE])'


def _sql_list(paths: list[str]) -> str:
    return "[" + (", ".join("'" + p.replace("'", "''") + "'" for p in paths) or "'$.none'") + "]"


def _arrow(con: Any, query: str) -> pa.Table:
    rel = con.sql(query)
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()


def _fill_group(con: Any, group: pa.Table, keys: list[str],
                parts: tuple[Any, ...]) -> tuple[pa.Array, np.ndarray]:
    """Messages of one group (same template, same data keys in the same
    order), filled with Arrow string joins; and the mask of rows left to
    Python.

    Insertion strings as :func:`analyzer.messages.insertion_strings` takes
    them: a non-empty ``strings`` list, else the named values in document
    order minus metadata keys and nested values. A row goes to Python when
    a value is not plain (see :data:`_NOT_PLAIN`: nested values would also
    shift the slots), its ``strings`` is not a non-empty list, or it has no
    insertion strings at all (render() writes its fallback text then).
    """
    from analyzer.messages import META_KEYS
    slots = sorted({p[0] for p in parts[1::2]})
    use_list = "strings" in keys
    named = [k for k in keys if k not in META_KEYS]
    if use_list:
        paths = [f"$.strings[{j - 1}]" for j in slots]
        check = "json_type(d, '$.strings[*]')"
        extra = ("json_array_length(d, '$.strings') AS n, "
                 "coalesce(json_type(d, '$.strings') <> 'ARRAY', true) AS odd")
    else:
        paths = ["$." + json.dumps(named[j - 1]) for j in slots if j <= len(named)]
        # Non-plain values found by a regex on the text instead of a second
        # JSON parse (json_type); a false alarm (the pattern inside a string,
        # a nested metadata value) only sends the row to Python.
        check = "[]::VARCHAR[]"
        extra = "0 AS n, false AS odd"
    con.register("grp", group)
    try:
        res = _arrow(con, f"SELECT json_extract_string(d, {_sql_list(paths)}) AS v, "
                          f"coalesce(list_has_any({check}, {_NOT_PLAIN}), false) AS bad, {extra} "
                          f"FROM grp")
    finally:
        con.unregister("grp")
    values = table.one_array(res.column("v"))
    count = pc.fill_null(pc.cast(table.one_array(res.column("n")), pa.int64()), 0)
    python = pc.or_(table.one_array(res.column("bad")), table.one_array(res.column("odd")))
    if not use_list:
        python = pc.or_(python, pc.match_substring_regex(group.column("d"), _NOT_PLAIN_TEXT))
    if use_list:
        python = pc.or_(python, pc.equal(count, 0))
    elif not named:
        python = pc.or_(python, True)
    by_slot: dict[int, Any] = {}
    pos = 0
    for j in slots:
        if use_list:
            val = pc.fill_null(pc.list_element(values, pos), "")
            by_slot[j] = pc.if_else(pc.greater_equal(count, j), val, "%" + str(j))
            pos += 1
        elif j <= len(named):
            by_slot[j] = pc.fill_null(pc.list_element(values, pos), "")
            pos += 1
        else:
            by_slot[j] = "%" + str(j)
    pieces = [p if i % 2 == 0 else by_slot[p[0]] for i, p in enumerate(parts)]
    pieces = [p for p in pieces if not (isinstance(p, str) and p == "")] or [""]
    msg = pc.binary_join_element_wise(*pieces, "")
    if not isinstance(msg, pa.Array):  # every piece a literal
        msg = pa.array([msg.as_py()] * group.num_rows, pa.string())
    return msg, pc.fill_null(python, True).to_numpy(zero_copy_only=False)


class _SlotJoin:
    """Messages of the named-values groups of a batch (rows of one group
    share their keys, so slot ``j`` is list index ``named[j - 1]`` of every
    row's values), written together.

    Each group adds its rows' pieces (slot values, template literals, ``%n``
    for a slot beyond the values) as indices into one pool, every value of
    the batch then the literals; :meth:`finish` lays all pieces end to end
    with one ``take`` and writes every message with one ``binary_join``
    (a ``list_element`` and a ``fill_null`` per slot before a join cost
    more: a 4625 template has 21 slots)."""

    def __init__(self, values: pa.ListArray) -> None:
        self.values = values
        self.offsets = values.offsets.to_numpy().astype(np.int64)
        self.lengths = np.diff(self.offsets)
        self.valid = values.is_valid().to_numpy(zero_copy_only=False) if values.null_count \
            else None
        self.literals: dict[str, int] = {}  # text -> pool index
        self.positions: list[np.ndarray] = []
        self.pieces: list[np.ndarray] = []  # pool indices, row after row
        self.widths: list[np.ndarray] = []

    def _literal(self, text: str) -> int:
        return self.literals.setdefault(text, len(self.values.values) + len(self.literals))

    def add(self, positions: np.ndarray, named: list[int], parts: tuple[Any, ...]) -> None:
        """Rows ``positions`` of the values, filled into ``parts`` (see
        :func:`_compile`). ValueError when a row has fewer values than its
        group's keys (not the crate's output: the caller renders in Python)."""
        slots = sorted({q[0] for q in parts[1::2]})
        need = max((named[j - 1] for j in slots if j <= len(named)), default=-1)
        if len(positions) and ((self.valid is not None and not self.valid[positions].all())
                               or self.lengths[positions].min() <= need):
            raise ValueError("rows of one shape with fewer values than keys")
        at: list[int] = []  # a literal's pool index, or a slot value's list index
        slot: list[bool] = []
        for i, q in enumerate(parts):
            if i % 2 == 0:
                if q:
                    at.append(self._literal(q))
                    slot.append(False)
            elif q[0] <= len(named):
                at.append(named[q[0] - 1])
                slot.append(True)
            else:
                at.append(self._literal("%" + str(q[0])))
                slot.append(False)
        # A slot value's pool index is its row's first value's, plus its list index.
        idx = np.array(at, dtype=np.int64) + \
            self.offsets[positions][:, None] * np.array(slot, dtype=np.int64)
        self.positions.append(positions)
        self.pieces.append(idx.ravel())
        self.widths.append(np.full(len(positions), len(at), dtype=np.int64))

    def finish(self) -> tuple[np.ndarray, pa.Array]:
        """(positions, messages) of every row added."""
        if not self.positions:
            return np.zeros(0, dtype=np.int64), pa.array([], pa.string())
        pool = pa.concat_arrays([pc.fill_null(self.values.values, "").cast(pa.string()),
                                 pa.array(list(self.literals), pa.string())])
        offsets = np.concatenate([[0], np.cumsum(np.concatenate(self.widths))]).astype(np.int32)
        lists = pa.ListArray.from_arrays(pa.array(offsets),
                                         pool.take(pa.array(np.concatenate(self.pieces))))
        return np.concatenate(self.positions), pc.binary_join(lists, "")


#: Combined group codes stay below this (int64).
_CODE_SPAN = 1 << 62


def _shape_groups(p: pa.Array, e: pa.Array,
                  s: pa.Array) -> Iterator[tuple[Any, Any, Any, np.ndarray]]:
    """(provider, event id, keys text, positions) of every group of rows
    with the same three, positions ascending: three dictionary encodings
    and one sort of their combined codes (an Acero group-by with a list of
    positions per group, read back into Python, measured ~2x that)."""
    encs = [pc.dictionary_encode(table.one_array(c), null_encoding="encode") for c in (p, e, s)]
    code = np.zeros(len(p), dtype=np.int64)
    span = 1  # codes lie in [0, span)
    for enc in encs:
        if span * len(enc.dictionary) >= _CODE_SPAN:  # renumber densely first
            code = np.unique(code, return_inverse=True)[1].astype(np.int64).ravel()
            span = int(code.max()) + 1
        code = code * len(enc.dictionary) + enc.indices.to_numpy(zero_copy_only=False)
        span *= len(enc.dictionary)
    order = np.argsort(code, kind="stable")
    cuts = np.flatnonzero(np.diff(code[order])) + 1
    values = [(enc.dictionary.to_pylist(), enc.indices.to_numpy(zero_copy_only=False))
              for enc in encs]
    for positions in (np.split(order, cuts) if len(order) else []):
        first = positions[0]
        yield (*(names[int(ix[first])] for names, ix in values), positions)


def _vectorized(sub: pa.Table) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """Messages of the catalog rows ``sub`` (columns p, e, d) that Arrow can
    fill: (positions in sub, messages, positions left to Python).

    One DuckDB query parses every row once and gives its top-level keys and
    its top-level values as text in document order (``$.*``); a group of
    rows with the same (provider, id, keys) then takes its slots by list
    index, with no further parse. That replaced a ``json_keys`` query plus
    one ``json_extract_string`` query per group (two parses of each row:
    ~0.6 us a record less on the benchmark file). Groups with a
    ``strings`` list (unnamed ``<Data>``) still use :func:`_fill_group`.
    """
    from analyzer.messages import META_KEYS
    con = _duckdb()
    con.register("cat", sub.select(["d"]))
    try:
        # json_keys is ~8x cheaper than json_structure (measured).
        res = _arrow(con, "SELECT to_json(json_keys(d)) AS s, json_extract_string(d, '$.*') AS v "
                          "FROM cat")
    finally:
        con.unregister("cat")
    join = _SlotJoin(table.one_array(res.column("v")))
    # Named values Python would print differently (booleans, floats) or
    # that are nested (they do not take a slot): such rows go to Python.
    # A false alarm (the pattern inside a string) only costs time.
    not_plain: np.ndarray | None = None
    done_pos: list[np.ndarray] = []
    done_msg: list[pa.Array] = []
    python: list[np.ndarray] = []
    for p, e, shape, positions in _shape_groups(sub["p"], sub["e"], res.column("s")):
        keys = _loads(shape) if p is not None and e is not None else None
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) \
                or len(set(keys)) != len(keys):
            # Duplicate keys: Python keeps the last value at the first
            # key's place; not mirrored here.
            python.append(positions)
            continue
        compiled = _template(p, e)[1]
        named = [i for i, k in enumerate(keys) if k not in META_KEYS]
        if compiled is None and "strings" not in keys:
            # A template chosen by the count of strings: here one count,
            # the named values (rows with nested ones go to Python below).
            compiled = _template_by_count(p, e, len(named))
        if compiled is None or not ("strings" in keys or named):
            python.append(positions)  # no template to fill, or render()'s fallback text
            continue
        if "strings" in keys:
            msg, left = _fill_group(con, sub.select(["d"]).take(pa.array(positions)), keys,
                                    compiled[2])
            done_pos.append(positions[~left])
            done_msg.append(msg.filter(pa.array(~left)))
        else:
            if not_plain is None:
                not_plain = _rows_matching(table.one_array(sub["d"]), _NOT_PLAIN_TEXT)
            left = not_plain[positions]
            join.add(positions[~left], named, compiled[2])
        python.append(positions[left])
    joined_pos, joined = join.finish()
    pos = np.concatenate(done_pos + [joined_pos])
    msgs = pa.concat_arrays(done_msg + [joined])
    left_all = np.concatenate(python) if python else np.zeros(0, dtype=np.int64)
    return pos, msgs, left_all


def _loads(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _catalog_hits(provs: pa.Array, eids: pa.Array) -> np.ndarray:
    """Rows whose (provider, event id) is in the catalog, asked once per
    distinct pair (a log holds a few hundred at most)."""
    enc = pc.dictionary_encode(provs)
    names = enc.dictionary.to_pylist()
    code = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    eid = pc.fill_null(eids, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    pairs, inverse = np.unique((code + 1) * (1 << 32) + (eid + 1), return_inverse=True)
    known = np.array([_known(names, int(k)) for k in pairs], dtype=bool)
    return known[inverse.ravel()] if len(pairs) else np.zeros(len(provs), dtype=bool)


def _known(names: list[str | None], key: int) -> bool:
    code, eid = (key >> 32) - 1, (key & 0xFFFFFFFF) - 1
    p = names[code] if code >= 0 else None
    return bool(p) and eid >= 0 and _template(p, eid)[0]


def messages_column(provider: pa.Array, event_id: pa.Array, data: pa.Array) -> pa.Array:
    """``message`` for the rows whose (provider, event id) is in the message
    catalog (DCOM 10000, Exchange MOM 9986, Security 4625, ...), rendered
    from their insertion strings; null elsewhere.

    Cost follows the matching rows, and most of it is vectorized: an
    ``is_in`` of the event id against the catalog's ids picks candidates;
    the provider (aliases, case-insensitive) is checked once per distinct
    (provider, id); DuckDB's ``json_structure`` groups the matching rows by
    the shape of their data, and per (template, shape) group the slots are
    read with one ``json_extract_string`` and joined with the template's
    literals by Arrow. Rows whose values Python would print differently
    (booleans, floats, nested values in ``strings``) or that need
    ``messages.render``'s fallback text are rendered in Python. Rendering
    every catalog row in Python cost ~10-16 us a row: on a System log full
    of Service Control Manager 7036 that was more than the whole table
    build.
    """
    n = len(provider)
    cand = np.flatnonzero(pc.fill_null(pc.is_in(event_id, value_set=_catalog_ids()), False)
                          .to_numpy(zero_copy_only=False))
    if not len(cand):
        return pa.nulls(n, pa.string())
    idx = pa.array(cand)
    provs, eids = provider.take(idx), pc.cast(event_id.take(idx), pa.int32())
    hits = _catalog_hits(provs, eids)
    if not hits.any():
        return pa.nulls(n, pa.string())
    rows = cand[hits]
    mask = pa.array(hits)
    sub = pa.table({"p": provs.filter(mask), "e": eids.filter(mask),
                    "d": data.take(pa.array(rows))})
    try:
        pos, msgs, left = _vectorized(sub)
    except Exception:  # noqa: BLE001 - duckdb.Error and kin: every row in Python
        pos, msgs, left = np.zeros(0, dtype=np.int64), pa.array([], pa.string()), \
            np.arange(sub.num_rows)
    if len(left):
        texts = sub["d"].take(pa.array(left)).to_pylist()
        try:
            # One json.loads of all rows: half the cost of one call a row.
            docs = json.loads("[" + ",".join(texts) + "]")
        except (ValueError, TypeError):
            docs = [_loads(t) for t in texts]
        ps, es = sub["p"].take(pa.array(left)).to_pylist(), sub["e"].take(pa.array(left)).to_pylist()
        rendered: list[str | None] = []
        for p, e, doc in zip(ps, es, docs):
            try:
                rendered.append(_render(p, e, doc))
            except Exception:  # noqa: BLE001 - a message is a convenience, never a parse failure
                rendered.append(None)
        pos = np.concatenate([pos, left])
        msgs = pa.concat_arrays([msgs, pa.array(rendered, pa.string())])
    order = np.argsort(pos, kind="stable")
    mask = np.zeros(n, dtype=bool)
    mask[rows[pos[order]]] = True
    return pc.replace_with_mask(pa.nulls(n, pa.string()), pa.array(mask),
                                msgs.take(pa.array(order)))
