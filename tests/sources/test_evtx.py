"""The .evtx source: record counts against the Rust reader, damaged files,
backend equality (python-evtx vs evtx), field mapping, case integration."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from analyzer import table
from analyzer.case import load_case
from analyzer.sources import Options, ParseContext, get


def parse(path: Path, backend: str = "rust", display: str | None = None):
    ctx = ParseContext(path=display or path.name, fs_path=path, options=Options(evtx_backend=backend))
    batches = [table.conform_arrow(b) for b in get("evtx").parse(ctx)]
    merged = pa.concat_tables(batches).unify_dictionaries().combine_chunks() if batches \
        else table.rows_to_arrow([])
    df = table.arrow_to_frame(merged)
    table.validate(df)
    return df, ctx


def rust_ok_count(path: Path) -> int:
    """The Rust reader's own count of records it returns without error."""
    from evtx import PyEvtxParser
    it = PyEvtxParser(str(path)).records_json()
    n = 0
    while True:
        try:
            for _ in it:
                n += 1
            return n
        except RuntimeError:
            continue


# Expected (records, warnings) for the defect-named and damaged corpus files.
DAMAGED = {
    "sample_with_a_bad_chunk_magic.evtx": (270, 2),
    "sample-with-zero-data-size-event.evtx": (335, 1),
    "sysmon.evtx": (358, 8),
    "2-vss_0-Microsoft-Windows-RemoteDesktopServices-RdpCoreTS%4Operational.evtx": (1910, 4),
    "2-vss_0-Microsoft-Windows-TerminalServices-RemoteConnectionManager%4Operational.evtx": (1774, 2),
}
# Defect-named files the Rust reader reads completely.
CLEAN_DEFECT = {
    "security_bad_string_cache.evtx": 2261,
    "Application_no_crc32.evtx": 17,
    "Security_with_size_t.evtx": 636,
    "python-evtx-issue_43.evtx": 1730,
    "sample-with-irregular-bool-values.evtx": 3028,
}


def test_every_corpus_file_matches_the_rust_count(corpus_dir):
    files = sorted((corpus_dir / "evtx").glob("*.evtx"))
    assert len(files) >= 20
    for f in files:
        df, ctx = parse(f)
        assert len(df) == rust_ok_count(f), f.name
        assert df["record_id"].notna().sum() >= len(df) - 1, f.name
        if f.name in DAMAGED:
            assert (len(df), len(ctx.warnings)) == DAMAGED[f.name], f.name
            assert ctx.partial, f.name
            assert all(w.locator and "offset=0x" in w.locator for w in ctx.warnings), f.name
            assert any("skipped" in n for n in ctx.notes), ctx.notes
        elif f.name in CLEAN_DEFECT:
            assert len(df) == CLEAN_DEFECT[f.name]
            assert not ctx.warnings, (f.name, ctx.warnings)


def test_bad_chunk_magic_warning_names_chunk_and_offset(corpus_dir):
    df, ctx = parse(corpus_dir / "evtx" / "sample_with_a_bad_chunk_magic.evtx")
    locs = [w.locator for w in ctx.warnings]
    assert all(loc.startswith("chunk=") for loc in locs)
    idx = int(locs[0].split()[0].split("=")[1])
    assert f"offset=0x{0x1000 + idx * 0x10000:x}" in locs[0]
    assert any("270 records read" in n and "2 bad chunk" in n for n in ctx.notes)


def test_truncated_file_keeps_readable_records(corpus_dir, tmp_path):
    src = corpus_dir / "evtx" / "security.evtx"
    full, _ = parse(src)
    cut = tmp_path / "security_truncated.evtx"
    cut.write_bytes(src.read_bytes()[: 0x1000 + 3 * 0x10000 + 0x5000])
    for backend in ("rust", "python"):
        df, ctx = parse(cut, backend)
        assert 0 < len(df) < len(full)
        # Every record read is a true record of the full file.
        assert set(df["record_id"]) <= set(full["record_id"])
        # The first three chunks are intact.
        first3 = full["record_id"].iloc[0]
        assert (df["record_id"] >= first3).all()


def _rows(df):
    out = {}
    for row in df.astype(object).where(df.notna(), None).to_dict("records"):
        row["data"] = json.loads(row["data"]) if row["data"] else None
        out[row["record_id"]] = row
    return out


@pytest.mark.parametrize("name", [
    "Security_short_selected.evtx", "new-user-security.evtx", "Application_no_crc32.evtx",
    "Microsoft-Windows-HelloForBusiness%4Operational.evtx", "post-Security.evtx",
    "deepblue-password-spray.evtx", "sample_with_a_bad_chunk_magic.evtx",
    "sample-with-zero-data-size-event.evtx", "system.evtx",
])
def test_backends_yield_identical_rows(corpus_dir, name):
    path = corpus_dir / "evtx" / name
    rust, _ = parse(path, "rust")
    py, pctx = parse(path, "python")
    assert len(rust) == len(py)
    r, p = _rows(rust), _rows(py)
    assert r.keys() == p.keys()
    for rid in r:
        assert r[rid] == p[rid], rid


def test_python_backend_walks_past_stale_header_count(corpus_dir):
    df, ctx = parse(corpus_dir / "evtx" / "system.evtx", "python")
    assert len(df) == 1881  # python-evtx alone returns 326
    assert "python-evtx: header says 3 chunks, 15 found" in ctx.notes


def test_field_mapping_classic_event(corpus_dir):
    df, _ = parse(corpus_dir / "evtx" / "system.evtx")
    row = df[df["record_id"] == 1].iloc[0]
    assert row["provider"] == "EventLog" and row["event_id"] == 6009
    assert row["qualifiers"] == 32768 and row["channel"] == "System"
    assert row["level"] == "information" and row["host"] == "WIN-P4SIAA0SQCO"
    assert str(row["ts"]) == "2017-07-12 17:16:28.214161+00:00" and row["ts_source"] == "utc"
    assert row["locator"] == "record=1"
    data = table.row_data(row["data"])
    assert data["strings"] == ["10.00.", "15063", "", "Multiprocessor Free", "0"]
    assert "Binary" not in data and "binary" not in data
    with_binary = [table.row_data(d) for d in df["data"] if '"binary"' in d]
    assert with_binary and all(b["binary"] == b["binary"].lower() for b in with_binary)


def test_field_mapping_security_audit(corpus_dir):
    df, _ = parse(corpus_dir / "evtx" / "Security_short_selected.evtx")
    fails = df[df["event_id"] == 4625]
    assert len(fails) and set(fails["level"]) == {"audit_failure"}
    assert set(fails["provider"]) == {"Microsoft-Windows-Security-Auditing"}
    data = table.row_data(fails["data"].iloc[0])
    assert "TargetUserName" in data and data["provider_guid"].startswith("{")
    ok = df[df["event_id"] == 4611]
    assert len(ok) == 1 and set(ok["level"]) == {"audit_success"}


def test_userdata_nested(corpus_dir):
    df, _ = parse(corpus_dir / "evtx" / "system.evtx")
    cleared = df[(df["event_id"] == 104)]
    assert len(cleared)
    data = table.row_data(cleared["data"].iloc[0])
    assert "LogFileCleared" in data["UserData"]


def test_load_case_marks_damaged_file_partial(corpus_dir, tmp_path):
    shutil.copy(corpus_dir / "evtx" / "sample_with_a_bad_chunk_magic.evtx", tmp_path / "a.evtx")
    shutil.copy(corpus_dir / "evtx" / "new-user-security.evtx", tmp_path / "b.evtx")
    case = load_case(tmp_path)
    inv = {e.path: e for e in case.inventory}
    assert inv["a.evtx"].status == "partial" and inv["a.evtx"].rows == 270
    assert "270 records read" in inv["a.evtx"].detail
    assert inv["b.evtx"].status == "parsed" and inv["b.evtx"].rows == 4
    assert inv["b.evtx"].source == "evtx"
    table.validate(case.table)


def test_sniff_by_content_not_name(corpus_dir):
    head = (corpus_dir / "evtx" / "system.evtx").read_bytes()[:65536]
    src = get("evtx")
    assert src.sniff(head, "upload (2).bin") == 100
    assert src.sniff(b"ElfFile", "x.txt") == 0 or src.sniff(b"ElfFile", "x.txt") < 100
    assert src.sniff(b"hello world", "System.evtx") < 20
