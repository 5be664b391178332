"""Read-back tests for analyzer.synth.evtx.

Readers: ``evtx`` (Rust, PyEvtxParser.records_json / records), python-evtx
(``Evtx.Evtx``) and libevtx-python (``pyevtx``) where it imports. Every field
the writer sets is compared across readers.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree as ET

import pytest

from analyzer.synth.evtx import (
    CHUNK_SIZE,
    KEYWORDS_AUDIT_FAILURE,
    KEYWORDS_CLASSIC,
    LEVEL_ERROR,
    LEVEL_WARNING,
    EvtxEvent,
    evtx_bytes,
    name_hash,
    write_evtx,
)

evtx_rs = pytest.importorskip("evtx")
Evtx = pytest.importorskip("Evtx.Evtx")
try:
    import pyevtx
except ImportError:  # pragma: no cover - optional third reader
    pyevtx = None

NS = "{http://schemas.microsoft.com/win/2004/08/events/event}"
T0 = datetime(2010, 3, 1, 12, 0, 0, tzinfo=timezone.utc)

EVENTS = [
    EvtxEvent(
        provider="MSExchangeIS",
        event_id=9646,
        qualifiers=49152,
        level=LEVEL_ERROR,
        task=6,
        time_created=T0.replace(microsecond=123000),
        time_written=T0 + timedelta(seconds=1),
        computer="EXCH01.contoso.com",
        data=["/o=Contoso/ou=First/cn=Recipients/cn=jdoe", "", "Objects", "500"],
        binary=bytes([0x01, 0x02, 0xFF, 0x00]),
        user_sid="S-1-5-21-1004336348-1177238915-682003330-512",
    ),
    EvtxEvent(
        provider="Microsoft-Windows-Security-Auditing",
        provider_guid="{54849625-5478-4994-A5BA-3E3B0328C30D}",
        event_id=4625,
        version=0,
        level=0,
        task=12544,
        opcode=0,
        keywords=KEYWORDS_AUDIT_FAILURE,
        time_created=T0 + timedelta(minutes=1),
        channel="Security",
        computer="DC01.contoso.com",
        activity_id="{11111111-2222-3333-4444-555555555555}",
        process_id=512,
        thread_id=4242,
        data={"SubjectUserSid": "S-1-0-0", "TargetUserName": "baduser", "Status": "0xc000006d",
              "IpAddress": "10.0.0.9", "Ünïcödé": "✓ <&> \"q\""},
    ),
    EvtxEvent(
        provider="MSExchange ADAccess",
        event_source_name="MSExchange ADAccess",
        provider_guid="{E8A9A8B6-2A1E-4A3B-9F05-6A9D3B6D5C11}",
        event_id=2114,
        qualifiers=49152,
        level=LEVEL_ERROR,
        task=3,
        time_created=T0 + timedelta(minutes=2),
        data=["MAD.EXE (1234)", "0x80004005"],
        related_activity_id="{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}",
        activity_id="{01234567-89AB-CDEF-0123-456789ABCDEF}",
    ),
    EvtxEvent(
        provider="Service Control Manager",
        provider_guid="{555908d1-a6d7-4695-8e1e-26931d2012f4}",
        event_source_name="Service Control Manager",
        event_id=7036,
        qualifiers=16384,
        version=None,
        opcode=None,
        process_id=None,
        thread_id=None,
        time_created=T0 + timedelta(minutes=3),
        channel="System",
        data={"param1": "Microsoft Exchange Information Store", "param2": "running"},
        binary=b"",
    ),
    EvtxEvent(provider="MSExchangeTransport", event_id=1000, level=LEVEL_WARNING, time_created=T0 + timedelta(hours=1),
              record_id=100),
]


# ---------------------------------------------------------------- readers


def _rs_parser(path):
    # one worker thread: the CI/dev machines are small and shared
    return evtx_rs.PyEvtxParser(str(path), number_of_threads=1)


def _dt(text: str) -> datetime:
    """Parse the SystemTime text of either python reader."""
    text = text.strip().replace("Z", "+00:00").replace(" UTC", "")
    if " " in text and "T" not in text:
        text = text.replace(" ", "T", 1)
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _guid(text: str | None) -> str | None:
    return None if text is None else text.strip("{}").upper()


def _expected(ev: EvtxEvent, rid: int) -> dict:
    items = list(ev.data.items()) if isinstance(ev.data, dict) else [
        it if isinstance(it, tuple) else (None, it) for it in ev.data
    ]
    return dict(
        record_id=rid,
        event_id=ev.event_id,
        qualifiers=ev.qualifiers,
        provider=ev.provider,
        provider_guid=_guid(str(ev.provider_guid)) if ev.provider_guid else None,
        event_source_name=ev.event_source_name,
        version=ev.version,
        level=ev.level,
        task=ev.task,
        opcode=ev.opcode,
        keywords=ev.keywords,
        time_created=ev.time_created,
        computer=ev.computer,
        channel=ev.channel,
        user_sid=ev.user_sid,
        activity_id=_guid(ev.activity_id),
        related_activity_id=_guid(ev.related_activity_id),
        process_id=ev.process_id,
        thread_id=ev.thread_id,
        data=items,
        binary=ev.binary,
    )


def _from_xml(xml: str, binary_decoder) -> dict:
    """Normalize one rendered <Event> (both python-evtx and evtx-rs XML)."""
    root = ET.fromstring(xml)
    sys_ = root.find(f"{NS}System")

    def txt(tag):
        el = sys_.find(f"{NS}{tag}")
        return None if el is None else (el.text or "").strip()

    def attr(tag, name):
        el = sys_.find(f"{NS}{tag}")
        return None if el is None else el.get(name)

    def opt_int(tag):
        v = txt(tag)
        return None if v is None else int(v)

    data, binary = [], None
    ed = root.find(f"{NS}EventData")
    for el in list(ed) if ed is not None else []:
        if el.tag == f"{NS}Data":
            data.append((el.get("Name"), el.text or ""))
        elif el.tag == f"{NS}Binary":
            binary = binary_decoder((el.text or "").strip())
    eid = sys_.find(f"{NS}EventID")
    return dict(
        event_id=int(eid.text),
        qualifiers=int(eid.get("Qualifiers")) if eid.get("Qualifiers") is not None else None,
        provider=attr("Provider", "Name"),
        provider_guid=_guid(attr("Provider", "Guid")),
        event_source_name=attr("Provider", "EventSourceName"),
        version=opt_int("Version"),
        level=int(txt("Level")),
        task=int(txt("Task")),
        opcode=opt_int("Opcode"),
        keywords=int(txt("Keywords"), 16),
        time_created=_dt(attr("TimeCreated", "SystemTime")),
        record_id=int(txt("EventRecordID")),
        computer=txt("Computer"),
        channel=txt("Channel"),
        user_sid=attr("Security", "UserID"),
        activity_id=_guid(attr("Correlation", "ActivityID")),
        related_activity_id=_guid(attr("Correlation", "RelatedActivityID")),
        process_id=int(attr("Execution", "ProcessID")) if attr("Execution", "ProcessID") is not None else None,
        thread_id=int(attr("Execution", "ThreadID")) if attr("Execution", "ThreadID") is not None else None,
        data=data,
        binary=binary,
    )


def _read_rust_json(path) -> list[dict]:
    """evtx (Rust) records_json(): System fields and pure named/unnamed EventData."""
    out = []
    for rec in _rs_parser(path).records_json():
        ev = json.loads(rec["data"])["Event"]
        s = ev["System"]

        def attrs(x):
            return (x or {}).get("#attributes", {}) if isinstance(x, dict) else {}

        eid = s["EventID"]
        row = dict(
            record_id=s["EventRecordID"],
            header_record_id=rec["event_record_id"],
            written=_dt(rec["timestamp"]),
            event_id=eid["#text"] if isinstance(eid, dict) else eid,
            qualifiers=attrs(eid).get("Qualifiers"),
            provider=attrs(s["Provider"]).get("Name"),
            provider_guid=_guid(attrs(s["Provider"]).get("Guid")),
            event_source_name=attrs(s["Provider"]).get("EventSourceName"),
            version=s.get("Version"),
            level=s["Level"],
            task=s["Task"],
            opcode=s.get("Opcode"),
            keywords=int(s["Keywords"], 16),
            time_created=_dt(attrs(s["TimeCreated"])["SystemTime"]),
            computer=s["Computer"],
            channel=s["Channel"],
            user_sid=attrs(s.get("Security")).get("UserID"),
            activity_id=_guid(attrs(s.get("Correlation")).get("ActivityID")),
            related_activity_id=_guid(attrs(s.get("Correlation")).get("RelatedActivityID")),
            process_id=attrs(s.get("Execution")).get("ProcessID"),
            thread_id=attrs(s.get("Execution")).get("ThreadID"),
        )
        ed = ev.get("EventData") or {}
        has_binary = isinstance(ed, dict) and "Binary" in ed
        binary = ed.pop("Binary") if has_binary else None
        row["binary"] = bytes.fromhex(binary or "") if has_binary else None
        if isinstance(ed, dict) and "Data" in ed and isinstance(ed["Data"], dict) and "#text" in ed["Data"]:
            texts = ed["Data"]["#text"]
            row["data"] = [(None, t if t is not None else "") for t in (texts if isinstance(texts, list) else [texts])]
        else:
            row["data"] = [(k, "" if v is None else v) for k, v in (ed or {}).items()]
        out.append(row)
    return out


def _read_rust_xml(path) -> list[dict]:
    rows = []
    for rec in _rs_parser(path).records():
        row = _from_xml(rec["data"], bytes.fromhex)
        row["header_record_id"] = rec["event_record_id"]
        rows.append(row)
    return rows


def _read_python_evtx(path) -> list[dict]:
    rows = []
    with Evtx.Evtx(str(path)) as log:
        # python-evtx renders Binary substitutions as base64
        for rec in log.records():
            row = _from_xml(rec.xml(), base64.b64decode)
            row["header_record_id"] = rec.record_num()
            row["written"] = rec.timestamp().replace(tzinfo=timezone.utc)
            rows.append(row)
    return rows


def _read_pyevtx(path) -> list[dict]:
    f = pyevtx.file()
    f.open(str(path))
    rows = []
    try:
        for rec in f.records:
            # libevtx quirk: provider_identifier reads None once source_name has
            # been accessed (same on Windows-written files), so read it first.
            guid = rec.provider_identifier
            rows.append(
                dict(
                    provider_guid=_guid(guid),
                    record_id=rec.identifier,
                    event_id=rec.event_identifier,
                    qualifiers=rec.event_identifier_qualifiers,
                    provider=rec.source_name,
                    level=rec.event_level,
                    version=rec.event_version,
                    computer=rec.computer_name,
                    channel=rec.channel_name,
                    user_sid=rec.user_security_identifier,
                    written=rec.written_time.replace(tzinfo=timezone.utc),
                    time_created=rec.creation_time.replace(tzinfo=timezone.utc),
                    strings=[rec.get_string(i) for i in range(rec.number_of_strings)],
                    binary=rec.data,
                )
            )
    finally:
        f.close()
    return rows


# ---------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def evtx_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("evtx") / "Application.evtx"
    write_evtx(path, EVENTS)
    return path


def _expected_all():
    out, rid = [], 1
    for ev in EVENTS:
        rid = ev.record_id or rid
        out.append(_expected(ev, rid))
        rid += 1
    return out


FIELDS = ["record_id", "event_id", "qualifiers", "provider", "provider_guid", "event_source_name", "version",
          "level", "task", "opcode", "keywords", "computer", "channel", "user_sid", "activity_id",
          "related_activity_id", "process_id", "thread_id", "data", "binary"]


def test_rust_json(evtx_path):
    got = _read_rust_json(evtx_path)
    want = _expected_all()
    assert len(got) == len(want)
    for g, w, ev in zip(got, want, EVENTS):
        for f in FIELDS:
            assert g[f] == w[f], (f, g[f], w[f])
        assert g["time_created"] == w["time_created"]
        assert g["header_record_id"] == w["record_id"]
        assert g["written"] == (ev.time_written or ev.time_created)


def test_rust_xml_and_python_evtx_agree(evtx_path):
    rust = _read_rust_xml(evtx_path)
    py = _read_python_evtx(evtx_path)
    want = _expected_all()
    assert len(rust) == len(py) == len(want)
    for r, p, w in zip(rust, py, want):
        for f in FIELDS:
            assert r[f] == w[f], ("rust", f, r[f], w[f])
            assert p[f] == w[f], ("python-evtx", f, p[f], w[f])
        assert r["time_created"] == w["time_created"]
        # python-evtx converts FILETIME through a float: allow 1 microsecond
        assert abs(p["time_created"] - w["time_created"]) <= timedelta(microseconds=1)
        assert r["header_record_id"] == p["header_record_id"] == w["record_id"]


@pytest.mark.skipif(pyevtx is None, reason="libevtx-python not importable")
def test_pyevtx(evtx_path):
    got = _read_pyevtx(evtx_path)
    want = _expected_all()
    assert len(got) == len(want)
    for g, w, ev in zip(got, want, EVENTS):
        for f in ["record_id", "event_id", "qualifiers", "provider", "level", "computer", "channel", "user_sid",
                  "provider_guid"]:
            assert g[f] == w[f], (f, g[f], w[f])
        assert g["version"] == (w["version"] if w["version"] is not None else 0) or g["version"] is None
        assert g["time_created"] == w["time_created"]
        assert g["written"] == (ev.time_written or ev.time_created)
        # libevtx quirk: strings are the EventData values, empty ones as None,
        # followed by the Binary rendered as hex when present
        values = [v or None for _n, v in w["data"]]
        if w["binary"]:
            values.append(w["binary"].hex().upper())
        elif w["binary"] is not None:
            values.append(None)
        assert g["strings"] == values


def _chunks(blob: bytes) -> list[bytes]:
    return [blob[o : o + CHUNK_SIZE] for o in range(4096, len(blob), CHUNK_SIZE)]


def test_checksums_and_header(evtx_path):
    blob = evtx_path.read_bytes()
    assert blob[:8] == b"ElfFile\x00"
    first, last, next_id, hsize, minor, major, bsize, count = struct.unpack_from("<QQQIHHHH", blob, 8)
    assert (first, hsize, major, minor, bsize) == (0, 128, 3, 1, 4096)
    assert count == len(_chunks(blob)) == last + 1 == 1
    assert next_id == 101
    assert struct.unpack_from("<I", blob, 124)[0] == zlib.crc32(blob[:120])
    for c in _chunks(blob):
        assert c[:8] == b"ElfChnk\x00"
        free = struct.unpack_from("<I", c, 48)[0]
        assert struct.unpack_from("<I", c, 52)[0] == zlib.crc32(c[512:free])
        assert struct.unpack_from("<I", c, 124)[0] == zlib.crc32(c[:120] + c[128:512])
    # every element/attribute name is in the chunk's string table with the right hash
    c = _chunks(blob)[0]
    names = {}
    for bucket, head in enumerate(struct.unpack_from("<64I", c, 128)):
        off = head
        while off:
            nxt, h, n = struct.unpack_from("<IHH", c, off)
            name = c[off + 8 : off + 8 + 2 * n].decode("utf-16-le")
            assert h == name_hash(name) and h % 64 == bucket
            names[name] = off
            off = nxt
    assert {"Event", "System", "Provider", "EventID", "Qualifiers", "EventData", "Data", "Name", "Binary"} <= set(names)


def test_name_hash_matches_windows():
    # values taken from a Windows-written chunk string table
    assert name_hash("Channel") == 0x6183
    assert name_hash("EventData") == 0x8244
    assert name_hash("SystemTime") == 0x7B3C
    assert name_hash("xmlns") == 0x0FBC


def _many(n):
    return [
        EvtxEvent(
            provider="MSExchangeIS" if i % 3 else "MSExchange ADAccess",
            event_id=1000 + i % 50,
            qualifiers=16384 if i % 2 else None,
            time_created=T0 + timedelta(seconds=i),
            data=[f"value {i}", "x" * (i % 97)] if i % 4 else {"Name": f"n{i}", "Extra": "y" * (i % 13)},
            binary=bytes([i % 256]) * (i % 7) if i % 5 == 0 else None,
        )
        for i in range(n)
    ]


def test_multi_chunk_2000_events(tmp_path):
    events = _many(2000)
    path = tmp_path / "many.evtx"
    write_evtx(path, events)
    blob = path.read_bytes()
    chunks = _chunks(blob)
    assert len(chunks) > 2
    assert struct.unpack_from("<H", blob, 42)[0] == len(chunks)
    assert struct.unpack_from("<Q", blob, 16)[0] == len(chunks) - 1
    ids = []
    for c in chunks:
        first, last = struct.unpack_from("<QQ", c, 8)
        free = struct.unpack_from("<I", c, 48)[0]
        assert free <= CHUNK_SIZE - 8  # slack: no record ends exactly at the chunk end
        assert struct.unpack_from("<I", c, 52)[0] == zlib.crc32(c[512:free])
        ids.extend(range(first, last + 1))
    assert ids == list(range(1, 2001))

    rust = _read_rust_json(path)
    assert [r["record_id"] for r in rust] == ids
    assert [r["event_id"] for r in rust] == [e.event_id for e in events]
    assert [r["time_created"] for r in rust] == [e.time_created for e in events]
    for r, e in zip(rust, events):
        exp = list(e.data.items()) if isinstance(e.data, dict) else [(None, v) for v in e.data]
        assert r["data"] == exp
        assert r["binary"] == e.binary
    with Evtx.Evtx(str(path)) as log:
        py = list(log.records())
        assert [r.record_num() for r in py] == ids
        sample = [_from_xml(py[i].xml(), base64.b64decode) for i in (0, 999, 1999)]
    assert [s["data"] for s in sample] == [
        list(events[i].data.items()) if isinstance(events[i].data, dict) else [(None, v) for v in events[i].data]
        for i in (0, 999, 1999)
    ]
    if pyevtx is not None:
        f = pyevtx.file()
        f.open(str(path))
        assert not f.is_corrupted() and f.number_of_records == 2000
        f.close()
        got = _read_pyevtx(path)
        assert [g["record_id"] for g in got] == ids
        assert [g["event_id"] for g in got] == [e.event_id for e in events]


def test_mixed_named_and_unnamed_data(tmp_path):
    ev = EvtxEvent("X", 1, T0, data=[("First", "1"), (None, "two"), ("Third", "")])
    path = tmp_path / "mixed.evtx"
    write_evtx(path, [ev])
    want = [("First", "1"), (None, "two"), ("Third", "")]
    assert _read_rust_xml(path)[0]["data"] == want
    assert _read_python_evtx(path)[0]["data"] == want


def test_empty_eventdata_is_written(tmp_path):
    path = tmp_path / "e.evtx"
    write_evtx(path, [EvtxEvent("X", 1, T0)])
    assert "<EventData" in next(_rs_parser(path).records())["data"]
    if pyevtx is not None:
        assert _read_pyevtx(path)[0]["strings"] == []


def test_dict_input_determinism_and_fileobj(tmp_path):
    d = [dict(provider="MSExchangeIS", event_id=1000, time_created=T0, data=["a"])]
    a = evtx_bytes(d)
    assert a == evtx_bytes(d) == evtx_bytes([EvtxEvent(**d[0])])
    big = evtx_bytes(_many(700))
    assert big == evtx_bytes(_many(700))
    with (tmp_path / "f.evtx").open("wb") as fh:
        write_evtx(fh, d)
    assert (tmp_path / "f.evtx").read_bytes() == a


def test_dirty_flag_and_first_record_id(tmp_path):
    blob = evtx_bytes([EvtxEvent("X", 1, T0)], dirty=True, first_record_id=5000)
    assert struct.unpack_from("<I", blob, 120)[0] == 1
    assert struct.unpack_from("<I", blob, 124)[0] == zlib.crc32(blob[:120])
    path = tmp_path / "d.evtx"
    path.write_bytes(blob)
    assert [r["event_record_id"] for r in _rs_parser(path).records_json()] == [5000]


def test_classic_keywords_default():
    assert EvtxEvent("X", 1, T0).keywords == KEYWORDS_CLASSIC


def test_large_records_fill_chunks(tmp_path):
    """Records of ~30 KB: two never fit one chunk, each must start a new one."""
    events = [EvtxEvent("X", i, T0 + timedelta(seconds=i), data=[chr(65 + i) * 15000]) for i in range(5)]
    path = tmp_path / "big.evtx"
    write_evtx(path, events)
    blob = path.read_bytes()
    assert struct.unpack_from("<H", blob, 42)[0] == len(_chunks(blob)) >= 3
    rust = _read_rust_json(path)
    assert [r["data"] for r in rust] == [[(None, chr(65 + i) * 15000)] for i in range(5)]
    assert [r["data"] for r in _read_python_evtx(path)] == [[(None, chr(65 + i) * 15000)] for i in range(5)]
    if pyevtx is not None:
        assert [g["strings"] for g in _read_pyevtx(path)] == [[chr(65 + i) * 15000] for i in range(5)]
    with pytest.raises(ValueError):
        evtx_bytes([EvtxEvent("X", 1, T0, data=["x" * 40000])])
