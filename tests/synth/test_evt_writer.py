"""Read-back tests for analyzer.synth.evt.

Readers: libevt-python (``pyevt``) plus an independent struct walk written
here from the libyal format document (header, records, end-of-file record).
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone

import pytest

from analyzer.synth.evt import (
    EVENTLOG_AUDIT_FAILURE,
    EVENTLOG_WARNING_TYPE,
    EvtRecord,
    evt_bytes,
    write_evt,
)

pyevt = pytest.importorskip("pyevt")

T0 = datetime(2004, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
T0_POSIX = 1078142400

RECORDS = [
    EvtRecord(
        event_id=9646,
        source="MSExchangeIS",
        time_generated=T0,
        time_written=T0_POSIX + 2,
        event_type="error",
        category=6,
        computer="EXCH01",
        strings=["/o=Org/ou=First/cn=Recipients/cn=jdoe", "Objects", "500"],
        data=bytes(range(7)),
        user_sid="S-1-5-21-1004336348-1177238915-682003330-512",
    ),
    EvtRecord(
        event_id=529,
        source="Security",
        time_generated=T0_POSIX + 60,
        event_type=EVENTLOG_AUDIT_FAILURE,
        category=2,
        computer="DC01",
        strings=["baduser", "CONTOSO", "3", "User32  ", "Negotiate", "WS1"],
        user_sid="S-1-5-18",
    ),
    EvtRecord(event_id=7036, source="Service Control Manager", time_generated=T0_POSIX + 120,
              strings=["Microsoft Exchange Information Store", "running"]),
    EvtRecord(event_id=1022, source="MSExchangeIS Mailbox Store", time_generated=T0_POSIX + 180,
              event_type=EVENTLOG_WARNING_TYPE, qualifiers=0x8000, strings=["Ünïcödé ✓"]),
    EvtRecord(event_id=0x00001B58, source="Service Control Manager", time_generated=T0_POSIX + 240,
              event_type="error", qualifiers=0, strings=[]),
]


def _data(rec) -> bytes:
    """pyevt quirk: ``record.data`` raises OSError when the record has no data."""
    try:
        return rec.data or b""
    except OSError:
        return b""


def _struct_read(blob: bytes) -> dict:
    """Independent minimal .evt reader (header, records, EOF record)."""
    size, sig, major, minor, start, end, current, oldest, max_size, flags, retention, size2 = struct.unpack_from(
        "<I4sIIIIIIIIII", blob, 0
    )
    assert (size, sig, major, minor, size2) == (0x30, b"LfLe", 1, 1, 0x30)
    header = dict(start=start, end=end, current=current, oldest=oldest, max_size=max_size, flags=flags,
                  retention=retention)
    records = []
    off = 0x30
    while True:
        rsize = struct.unpack_from("<I", blob, off)[0]
        if blob[off + 4 : off + 20] == struct.pack("<IIII", 0x11111111, 0x22222222, 0x33333333, 0x44444444):
            assert rsize == 0x28
            e_start, e_end, e_cur, e_old, e_size2 = struct.unpack_from("<IIIII", blob, off + 20)
            assert e_size2 == 0x28
            eof = dict(offset=off, start=e_start, end=e_end, current=e_cur, oldest=e_old)
            break
        assert blob[off + 4 : off + 8] == b"LfLe"
        assert struct.unpack_from("<I", blob, off + rsize - 4)[0] == rsize
        assert rsize % 4 == 0
        (num, gen, wri, eid, etype, nstr, cat, _fl, _closing, str_off, sid_len, sid_off, data_len,
         data_off) = struct.unpack_from("<IIIIHHHHIIIIII", blob, off + 8)
        rec = blob[off : off + rsize]
        names = rec[56:str_off].decode("utf-16-le", errors="strict") if sid_len == 0 else rec[56:sid_off].decode("utf-16-le")
        src, comp = names.split("\x00")[:2]
        strings = rec[str_off : str_off + 10**9].decode("utf-16-le", errors="ignore").split("\x00")[:nstr] if nstr else []
        records.append(dict(number=num, generated=gen, written=wri, event_id=eid, type=etype, category=cat,
                            source=src, computer=comp, strings=strings, data=rec[data_off:data_off + data_len],
                            sid_len=sid_len, sid_off=sid_off, offset=off))
        off += rsize
    return dict(header=header, records=records, eof=eof, size=len(blob))


def _open(path):
    f = pyevt.file()
    f.open(str(path))
    return f


def test_records_read_back_by_pyevt_and_struct(tmp_path):
    path = tmp_path / "AppEvent.Evt"
    write_evt(path, RECORDS)
    blob = path.read_bytes()
    parsed = _struct_read(blob)
    f = _open(path)
    try:
        assert not f.is_corrupted()
        assert f.number_of_records == len(RECORDS) == len(parsed["records"])
        for i, (want, got_s) in enumerate(zip(RECORDS, parsed["records"])):
            got = f.get_record(i)
            # record numbers 1..n, both readers
            assert got.identifier == got_s["number"] == i + 1
            # pyevt returns the full 32-bit message id; Event Viewer shows & 0xFFFF
            assert got.event_identifier == got_s["event_id"] == want.stored_event_id
            assert got.event_identifier & 0xFFFF == want.event_id & 0xFFFF
            assert got.event_type == got_s["type"]
            assert got.event_category == got_s["category"] == want.category
            assert got.source_name == got_s["source"] == want.source
            assert got.computer_name == got_s["computer"] == want.computer
            assert list(got.strings) == got_s["strings"] == list(want.strings)
            assert _data(got) == got_s["data"] == bytes(want.data)
            assert got.user_security_identifier == want.user_sid
            assert got.get_creation_time_as_integer() == got_s["generated"]
            assert got.get_written_time_as_integer() == got_s["written"]
            assert got.offset == got_s["offset"]
            if want.user_sid:
                assert got_s["sid_off"] % 4 == 0
    finally:
        f.close()


def test_event_id_qualifiers():
    recs = {r.event_id: r for r in RECORDS}
    assert recs[9646].stored_event_id == 0xC0000000 | 9646  # error -> severity 11
    assert recs[529].stored_event_id == 529  # audits: qualifiers 0
    assert recs[7036].stored_event_id == 0x40000000 | 7036  # information
    assert recs[1022].stored_event_id == 0x80000000 | 1022
    assert recs[0x1B58].stored_event_id == 0x1B58  # explicit qualifiers=0
    assert EvtRecord(0xC0001B58, "x", T0).stored_event_id == 0xC0001B58  # full id given


def test_times(tmp_path):
    path = tmp_path / "t.evt"
    write_evt(path, RECORDS[:1])
    f = _open(path)
    rec = f.get_record(0)
    assert rec.get_creation_time_as_integer() == T0_POSIX
    assert rec.get_written_time_as_integer() == T0_POSIX + 2
    assert rec.creation_time == T0.replace(tzinfo=None)
    f.close()


def test_header_and_eof_record():
    blob = evt_bytes(RECORDS, max_size=0x10000, retention=604800)
    p = _struct_read(blob)
    h, e = p["header"], p["eof"]
    assert h["flags"] == 0
    assert h["max_size"] == 0x10000 and h["retention"] == 604800
    assert h["start"] == e["start"] == 0x30
    assert h["end"] == e["end"] == e["offset"] == len(blob) - 0x28
    assert h["current"] == e["current"] == len(RECORDS) + 1  # next record number
    assert h["oldest"] == e["oldest"] == 1


def test_first_record_number_and_explicit_numbers(tmp_path):
    recs = [EvtRecord(1, "A", T0), EvtRecord(2, "A", T0), EvtRecord(3, "A", T0, record_number=100),
            EvtRecord(4, "A", T0)]
    path = tmp_path / "n.evt"
    write_evt(path, recs, first_record_number=41)
    f = _open(path)
    assert [r.identifier for r in f.records] == [41, 42, 100, 101]
    p = _struct_read(path.read_bytes())
    assert p["eof"]["oldest"] == 41 and p["eof"]["current"] == 102
    f.close()


def test_dirty_file(tmp_path):
    path = tmp_path / "dirty.evt"
    blob = evt_bytes(RECORDS, dirty=True, stale_records=2, pad_to=0x10000)
    path.write_bytes(blob)
    assert len(blob) == 0x10000
    p = _struct_read(blob)
    h, e = p["header"], p["eof"]
    assert h["flags"] & 1
    # header lags two records behind; the EOF record is the truth
    assert h["end"] == p["records"][-2]["offset"] != e["end"]
    assert h["current"] == len(RECORDS) - 1 and e["current"] == len(RECORDS) + 1
    f = _open(path)
    try:
        assert f.is_corrupted()  # libevt flags the dirty header
        got = list(f.records) + list(f.recovered_records)
        assert [r.identifier for r in got][: len(RECORDS)] == [1, 2, 3, 4, 5]
    finally:
        f.close()
    # fully stale header: describes an empty log
    h2 = _struct_read(evt_bytes(RECORDS, dirty=True))["header"]
    assert (h2["end"], h2["current"], h2["oldest"]) == (0x30, 1, 0)


def test_empty_log():
    blob = evt_bytes([])
    p = _struct_read(blob)
    assert p["records"] == [] and len(blob) == 0x30 + 0x28
    assert p["eof"]["oldest"] == 0 and p["eof"]["current"] == 1


def test_dict_input_and_determinism(tmp_path):
    d = [dict(event_id=1000, source="MSExchangeSA", time_generated=T0, event_type="warning", strings=["x"])]
    a = evt_bytes(d)
    assert a == evt_bytes(d) == evt_bytes([EvtRecord(**d[0])])
    fh = (tmp_path / "f.evt").open("wb")
    write_evt(fh, d)
    fh.close()
    assert (tmp_path / "f.evt").read_bytes() == a
    assert evt_bytes(RECORDS) == evt_bytes(list(RECORDS))
