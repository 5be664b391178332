"""The legacy .evt source, on files written by analyzer.synth.evt and read
back by libevt-python (pyevt) as the independent second reader."""
from __future__ import annotations

import struct
from datetime import datetime, timezone
from pathlib import Path

import pytest

from analyzer import table
from analyzer.case import load_case
from analyzer.sources import Options, ParseContext, get
from analyzer.synth.evt import EvtRecord, evt_bytes

T0 = datetime(2006, 5, 1, 10, 0, tzinfo=timezone.utc)

RECORDS = [
    EvtRecord(10000, "DCOM", T0, "error", computer="EXCH01",
              strings=["{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}", "5", "C:\\empkp.exe"],
              user_sid="S-1-5-21-1004336348-1177238915-682003330-500"),
    EvtRecord(9986, "Exchange MOM", datetime(2006, 5, 1, 10, 5, 30, tzinfo=timezone.utc),
              "information", computer="EXCH01", strings=["EXCH01"], data=b"\x01\x02\xab"),
    EvtRecord(529, "Security", datetime(2006, 5, 1, 11, 0, tzinfo=timezone.utc), "audit_failure",
              computer="EXCH01", category=2, strings=["bob", "CORP", "2"], user_sid="S-1-5-18"),
    EvtRecord(1000, "Application Error", datetime(2006, 5, 1, 12, 0, tzinfo=timezone.utc),
              "warning", computer="EXCH01", strings=[]),
]


def parse(path: Path, display: str | None = None):
    ctx = ParseContext(path=display or path.name, fs_path=path, options=Options())
    df = table.rows_to_frame(list(get("evt").parse(ctx)))
    table.validate(df)
    return df, ctx


def write(tmp_path: Path, name: str, raw: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(raw)
    return p


def pyevt_records(path: Path):
    pyevt = pytest.importorskip("pyevt")
    f = pyevt.file()
    f.open(str(path))
    try:
        return [(r.identifier, r.event_identifier, r.source_name, r.computer_name,
                 list(r.strings), r.user_security_identifier, r.event_type) for r in f.records]
    finally:
        f.close()


def test_fields_and_second_reader(tmp_path):
    path = write(tmp_path, "SysEvent.Evt", evt_bytes(RECORDS, pad_to=0x10000))
    df, ctx = parse(path)
    assert len(df) == 4 and not ctx.warnings
    assert list(df["event_id"]) == [10000, 9986, 529, 1000]
    assert list(df["qualifiers"]) == [0xC000, 0x4000, 0, 0x8000]
    assert list(df["level"]) == ["error", "information", "audit_failure", "warning"]
    assert set(df["channel"]) == {"System"}
    assert df["ts"].iloc[1] == datetime(2006, 5, 1, 10, 5, 30, tzinfo=timezone.utc)
    assert set(df["ts_source"]) == {"utc"}
    assert df["category"].iloc[2] == "2"
    d0 = table.row_data(df["data"].iloc[0])
    assert d0["strings"][0] == "{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}" and "binary" not in d0
    assert table.row_data(df["data"].iloc[1])["binary"] == "0102ab"
    assert df["locator"].iloc[0] == "record=1 offset=0x30"
    # pyevt reads the same records; it returns the full 32-bit identifier.
    other = pyevt_records(path)
    assert len(other) == len(df)
    for (rid, ident, src, comp, strings, sid, etype), row in zip(other, df.itertuples()):
        assert (rid, ident & 0xFFFF, ident >> 16) == (row.record_id, row.event_id, row.qualifiers)
        assert (src, comp, sid) == (row.provider, row.host, row.user if row.user is not pd_na() else None)
        assert strings == table.row_data(row.data)["strings"]


def pd_na():
    import pandas as pd
    return pd.NA


def test_dirty_header_recovered_from_eof_record(tmp_path):
    raw = evt_bytes(RECORDS, dirty=True, pad_to=0x10000)
    assert struct.unpack_from("<I", raw, 0x24)[0] & 1  # dirty flag
    path = write(tmp_path, "AppEvent.Evt", raw)
    df, ctx = parse(path)
    assert len(df) == 4
    assert set(df["channel"]) == {"Application"}
    assert any("stale" in n for n in ctx.notes) and any("dirty" in n for n in ctx.notes)
    assert not ctx.partial


def test_bad_record_length_skipped_with_warning(tmp_path):
    raw = bytearray(evt_bytes(RECORDS))
    second = 0x30 + struct.unpack_from("<I", raw, 0x30)[0]
    struct.pack_into("<I", raw, second, 0x7FFF0)  # record 2 claims a huge length
    path = write(tmp_path, "odd-name.bin", bytes(raw))
    df, ctx = parse(path)
    assert list(df["record_id"]) == [1, 3, 4]
    assert df["channel"].isna().all()
    assert ctx.partial and len(ctx.warnings) == 1
    assert ctx.warnings[0].locator == f"offset=0x{second:x}"
    assert "bad record" in ctx.warnings[0].message


def test_truncated_file(tmp_path):
    raw = evt_bytes(RECORDS)
    third = 0x30
    for _ in range(2):
        third += struct.unpack_from("<I", raw, third)[0]
    path = write(tmp_path, "SecEvent.Evt", raw[: third + 40])
    df, ctx = parse(path)
    assert list(df["record_id"]) == [1, 2]
    assert ctx.partial and ctx.warnings
    assert set(df["channel"]) == {"Security"}


def test_wrapped_log(tmp_path):
    """A full log continues after the header: start offset > end offset."""
    raw = evt_bytes(RECORDS)
    recs, eof = raw[0x30:-0x28], raw[-0x28:]
    sizes, pos = [], 0
    while pos < len(recs):
        sizes.append(struct.unpack_from("<I", recs, pos)[0])
        pos += sizes[-1]
    # Layout: [hdr][rec3 rec4][EOF][free][rec1 rec2] with rec1 at `start`.
    first_two = recs[: sizes[0] + sizes[1]]
    last_two = recs[sizes[0] + sizes[1]:]
    free = 0x40
    end = 0x30 + len(last_two)
    start = end + 0x28 + free
    body = last_two + eof[:0] + b""
    eof_rec = struct.pack("<I", 0x28) + eof[4:20] + struct.pack("<IIIII", start, end, 5, 1, 0x28)
    size = start + len(first_two)
    header = bytearray(raw[:0x30])
    struct.pack_into("<IIII", header, 0x10, start, end, 5, 1)
    struct.pack_into("<I", header, 0x20, size)
    struct.pack_into("<I", header, 0x24, 0x2)  # wrapped
    data = bytes(header) + body + eof_rec + b"\x00" * free + first_two
    assert len(data) == size
    path = write(tmp_path, "SysEvent.Evt", data)
    df, ctx = parse(path)
    assert list(df["record_id"]) == [1, 2, 3, 4]
    assert not ctx.warnings


def test_sniff_and_load_case(tmp_path):
    folder = tmp_path / "case"
    folder.mkdir()
    write(folder, "sysevent.evt", evt_bytes(RECORDS, dirty=True))
    src = get("evt")
    head = (folder / "sysevent.evt").read_bytes()[:65536]
    assert src.sniff(head, "whatever.dat") == 100
    assert src.sniff(b"LfLe" * 4, "x.evt") < 100
    assert src.sniff(b"plain text\r\n", "SysEvent.Evt") < 20
    case = load_case(folder)
    (entry,) = case.inventory
    assert entry.status == "parsed" and entry.rows == 4 and entry.source == "evt"
    ev = case.table
    assert set(ev["channel"].dropna()) == {"System"}
    dcom = ev[(ev["provider"] == "DCOM") & (ev["event_id"] == 10000)]
    assert len(dcom) == 1 and dcom["message"].notna().all()


def test_channel_from_file_name_comes_from_knowledge():
    from analyzer import knowledge
    from analyzer.sources.evt import channel_from_name
    names = knowledge.load("evt_channels")
    assert names["appevent"] == "Application" and names["secevent"] == "Security"
    assert channel_from_name("AppEvent.Evt") == "Application"
    assert channel_from_name("case.zip!logs/SysEvent.evt") == "System"
    assert channel_from_name("DNS Event.evt") == "DNS Server"
    assert channel_from_name("upload (2).evt") is None
    for stem, channel in names.items():
        assert channel_from_name(f"{stem.upper()}.EVT") == channel


# -- truncation: never silent ---------------------------------------------------

def _many(n: int) -> list[EvtRecord]:
    return [EvtRecord(1000 + i, "Src", datetime(2006, 5, 1, 10, i % 60, tzinfo=timezone.utc),
                      "information", computer="EXCH01", strings=[f"value {i}" * (1 + i % 5)])
            for i in range(n)]


@pytest.mark.parametrize("dirty", [False, True])
def test_cut_at_ten_points_is_partial_or_failed_with_figures(tmp_path, dirty):
    """A synth log cut at ten points: the records wholly before the cut are
    read (counted independently from the record sizes), and the file is
    partial (or failed when nothing is left) with the byte figures."""
    raw = evt_bytes(_many(40), dirty=dirty)
    ends, pos = [], 0x30
    while pos < len(raw) - 0x28:
        pos += struct.unpack_from("<I", raw, pos)[0]
        ends.append(pos)
    for k in range(10):
        cut = 20 + (len(raw) - 60) * k // 10
        path = write(tmp_path, f"c{k}.evt", raw[:cut])
        df, ctx = parse(path)
        assert len(df) == sum(1 for e in ends if e <= cut), cut
        assert ctx.partial, cut
        text = " ".join(w.message for w in ctx.warnings)
        assert f"{cut} bytes" in text or "no record could be read" in text, (cut, text)
        entry = load_case(path).inventory[0]
        assert entry.status == ("partial" if len(df) else "failed"), (cut, entry)


def test_header_announces_more_records_than_read(tmp_path):
    """Without its end-of-file record (cut off), a clean header's numbers
    say how many records the log held: the shortfall is stated."""
    raw = evt_bytes(RECORDS)
    third = 0x30
    for _ in range(2):
        third += struct.unpack_from("<I", raw, third)[0]
    df, ctx = parse(write(tmp_path, "AppEvent.Evt", raw[:third]))
    assert len(df) == 2
    assert any("announces records 1..4 (4); 2 read" in w.message for w in ctx.warnings)


def test_empty_log_is_parsed_and_says_why(tmp_path):
    path = write(tmp_path, "AppEvent.Evt", evt_bytes([]))
    entry = load_case(path).inventory[0]
    assert entry.status == "parsed" and entry.rows == 0
    assert "empty log" in entry.detail
