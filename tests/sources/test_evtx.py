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


# Expected (records, read warnings, CRC warnings) for the defect-named and
# damaged corpus files. A read warning is a record or chunk the reader
# skipped (or, for the bad-chunk-magic file, the blank chunk slots its
# header counts); a CRC warning names a chunk whose CRC32 does not match.
DAMAGED = {
    "sample_with_a_bad_chunk_magic.evtx": (270, 3, 3),
    "sample-with-zero-data-size-event.evtx": (335, 1, 1),
    "sysmon.evtx": (358, 8, 0),
    "2-vss_0-Microsoft-Windows-RemoteDesktopServices-RdpCoreTS%4Operational.evtx": (1910, 4, 2),
    "2-vss_0-Microsoft-Windows-TerminalServices-RemoteConnectionManager%4Operational.evtx": (1774, 2, 2),
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
        crc = sum("CRC32" in w.message for w in ctx.warnings)
        if f.name in DAMAGED:
            assert (len(df), len(ctx.warnings) - crc, crc) == DAMAGED[f.name], f.name
            assert ctx.partial, f.name
            assert all(w.locator and "offset=0x" in w.locator for w in ctx.warnings), f.name
            assert any("skipped" in n for n in ctx.notes), ctx.notes
        elif f.name in CLEAN_DEFECT:
            assert len(df) == CLEAN_DEFECT[f.name]
            # Only CRC warnings (Application_no_crc32 and the bad string
            # cache sample carry wrong CRCs): no record is lost.
            assert len(ctx.warnings) == crc and not ctx.partial, (f.name, ctx.warnings)


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
    assert "header says 3 chunks, 15 found" in ctx.notes


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


# -- the two-process read of large files ---------------------------------------

def _warn_list(ctx):
    return [(w.locator, w.message) for w in ctx.warnings]


@pytest.mark.parametrize("batch", [None, 100])
@pytest.mark.parametrize("name", [
    "sample_with_a_bad_chunk_magic.evtx", "sysmon.evtx", "system.evtx",
    "2-vss_0-Microsoft-Windows-RemoteDesktopServices-RdpCoreTS%4Operational.evtx",
    "sample-with-zero-data-size-event.evtx",
])
def test_split_read_equals_single_read(corpus_dir, monkeypatch, name, batch):
    """Forcing the helper process on small files: same rows, same warnings
    (chunk numbers of the helper's blocks mapped back), same counts; with
    100-record batches the file is shared in many blocks of one batch."""
    from analyzer.sources import evtx as evtx_mod
    from analyzer.sources.evtx import rust
    path = corpus_dir / "evtx" / name
    monkeypatch.setattr(evtx_mod, "SPLIT_MIN_CHUNKS", 10 ** 9)
    single, sctx = parse(path)
    monkeypatch.setattr(evtx_mod, "SPLIT_MIN_CHUNKS", 2)
    monkeypatch.setattr(evtx_mod, "_threads", lambda: 2)
    if batch:
        monkeypatch.setattr(rust, "SLICE", batch)
        monkeypatch.setattr(rust, "BATCH", batch)
        monkeypatch.setattr(evtx_mod, "BATCH", batch)
    split, pctx = parse(path)
    assert len(split) == len(single)
    r, p = _rows(single), _rows(split)
    assert r.keys() == p.keys()
    for rid in r:
        assert r[rid] == p[rid], rid
    assert list(split["record_id"]) == list(single["record_id"])  # file order kept
    assert _warn_list(pctx) == _warn_list(sctx)
    assert pctx.notes == sctx.notes and pctx.partial == sctx.partial


def _split_small_batches(monkeypatch) -> None:
    """Force the helper on a small file, with 100-record batches."""
    from analyzer.sources import evtx as evtx_mod
    from analyzer.sources.evtx import rust
    monkeypatch.setattr(evtx_mod, "SPLIT_MIN_CHUNKS", 2)
    monkeypatch.setattr(evtx_mod, "_threads", lambda: 2)
    monkeypatch.setattr(rust, "SLICE", 100)
    monkeypatch.setattr(rust, "BATCH", 100)
    monkeypatch.setattr(evtx_mod, "BATCH", 100)  # blocks of one batch


def _one_process_ids(path: Path, monkeypatch) -> list[int]:
    """Record ids of a read without the helper process."""
    from analyzer.sources import evtx as evtx_mod
    with monkeypatch.context() as m:
        m.setattr(evtx_mod, "SPLIT_MIN_CHUNKS", 10 ** 9)
        return list(parse(path)[0]["record_id"])


def _helper_parse(path: Path, work: Path) -> tuple[list[int], ParseContext]:
    ctx = ParseContext(path=path.name, fs_path=path, options=Options(), work_dir=work)
    batches = [table.conform_arrow(b) for b in get("evtx").parse(ctx)]
    return pa.concat_tables(batches).column("record_id").to_pylist(), ctx


@pytest.mark.parametrize("dies_at", [0, 3])
def test_a_dead_helper_loses_and_repeats_no_record(corpus_dir, monkeypatch, tmp_path, dies_at):
    """A helper that dies (here: raises in the child) before its first batch
    or after writing three is detected by its exit status: the parent gives
    the rows of the complete batches, then reads the rest of that block
    itself from the next record on, and every later block. The rows equal
    a one-process read, none twice; the note says how far the helper got;
    no scratch files are left."""
    import os

    from analyzer.sources.evtx import rust
    path = corpus_dir / "evtx" / "system.evtx"
    single = _one_process_ids(path, monkeypatch)
    parent = os.getpid()
    real = rust.RangeReader.tables
    written = [0]  # the child's batches so far (its own copy after the fork)

    def tables(self, display, source):
        for tbl in real(self, display, source):
            if os.getpid() != parent:
                if written[0] == dies_at:
                    raise RuntimeError("simulated crash in the helper")
                written[0] += 1
            yield tbl

    monkeypatch.setattr(rust.RangeReader, "tables", tables)
    _split_small_batches(monkeypatch)
    rids, ctx = _helper_parse(path, tmp_path / "work")
    assert rids == single
    failed = [n for n in ctx.notes if n.startswith("helper reader process failed after ")]
    assert len(failed) == 1 and failed[0].endswith(" records; the rest read in-process"), ctx.notes
    if dies_at == 0:
        assert failed[0].startswith("helper reader process failed after 0 records")
    assert not list((tmp_path / "work").iterdir())


def test_helper_rows_that_never_arrive_are_read_in_the_parent(corpus_dir, monkeypatch, tmp_path):
    """A helper that succeeds but whose batches of one block the parent
    never took (a batch renamed between the parent's two looks, were the
    second look missing): the count the helper reports for the block
    tells, and the block is read in the parent; rows equal a one-process
    read."""
    import re

    from analyzer.sources.evtx import process
    path = corpus_dir / "evtx" / "system.evtx"
    single = _one_process_ids(path, monkeypatch)
    real = process.Helper.tables
    seen: list[int] = []

    def first_block_lost(self, k):
        seen.append(k)
        for tbl in real(self, k):
            if len(seen) > 1:
                yield tbl

    monkeypatch.setattr(process.Helper, "tables", first_block_lost)
    _split_small_batches(monkeypatch)
    rids, ctx = _helper_parse(path, tmp_path / "work")
    assert rids == single
    assert seen, "the helper read no block"
    assert any(re.fullmatch(r"helper reader process read [1-9]\d* records of chunks \d+-\d+ but 0 "
                            r"arrived; the rest read in-process", n) for n in ctx.notes), ctx.notes


def test_plan_blocks_covers_every_slot_once_in_batches():
    """The parent's first part holds about its share of the announced
    records; the blocks after it are contiguous, cover every slot to the
    end (the cut chunk's too) and hold at most one batch of records unless
    a single slot holds more; a file whose headers announce nothing is cut
    by slots."""
    from analyzer.sources.evtx.layout import ChunkRange, CutChunk, FileHeader, Layout
    from analyzer.sources.evtx.process import plan_blocks

    def layout(counts, cut=None):
        chunks, rid = [], 1
        for i, n in enumerate(counts):
            valid = n is not None
            chunks.append(ChunkRange(i, rid, rid + (n or 0) - 1, valid, 0x200))
            rid += n or 0
        header = FileHeader(0, len(counts) - 1, rid, len(counts), 0, True)
        return Layout(0x1000 + len(counts) * 0x10000, header, chunks, cut=cut)

    counts = [90, 100, None, 80, 100, 100, 3000, 0, 100, 100, 50]
    for share, block in ((0.35, 200), (0.5, 100), (0.1, 1000)):
        lay = layout(counts, cut=CutChunk(len(counts), 0x8000, 7, 1000, b"x" * 0x10000))
        first, blocks = plan_blocks(lay, share, block)
        assert lay.slots == len(counts) + 1
        assert 1 <= first < lay.slots
        edges = [first] + [b for _, b in blocks]
        assert [a for a, _ in blocks] == edges[:-1] and edges[-1] == lay.slots
        per = [min(max(n or 0, 0), 0x10000 // 24) for n in counts] + [7]
        total = sum(per)
        assert sum(per[:first]) <= total * share or first == 1
        assert sum(per[:first + 1]) > total * share
        for a, b in blocks:
            assert b > a and (sum(per[a:b]) <= block or b - a == 1), (share, block, a, b)
    first, blocks = plan_blocks(layout([None] * 6), 0.35, 2)
    assert first == 2 and blocks == [(2, 4), (4, 6)]
    # A rest cut into about ``parts`` blocks, none above ``most``: a file
    # of a few batches is still shared.
    lay = layout([100] * 40)
    first, blocks = plan_blocks(lay, 0.2, 40_000, least=250, parts=8)
    assert first == 8 and len(blocks) == 8 and all(b - a == 4 for a, b in blocks)
    first, blocks = plan_blocks(lay, 0.2, 40_000, least=1_000, parts=8)
    assert len(blocks) == 4  # at least 1,000 records a block
    first, blocks = plan_blocks(lay, 0.2, 300, least=1_000, parts=8)
    assert all(b - a == 3 for a, b in blocks[:-1])  # never above one batch


def test_blocks_go_to_whichever_process_is_free(corpus_dir, monkeypatch, tmp_path):
    """A slow helper: the parent reads most blocks itself while it waits.
    A slow parent: the helper reads them. Either way the rows, warnings and
    notes equal a one-process read of a damaged file."""
    import os
    import time

    from analyzer.sources import evtx as evtx_mod
    from analyzer.sources.evtx import process, rust
    from analyzer.sources.evtx.layout import read_layout
    path = corpus_dir / "evtx" / "sample_with_a_bad_chunk_magic.evtx"
    single, sctx = parse(path)
    parent = os.getpid()
    real_read, real_claim = rust.RangeReader.tables, process._claim
    for slow in ("helper", "parent"):
        claims: list[int] = []

        def read(self, display, source):
            for tbl in real_read(self, display, source):
                if (os.getpid() != parent) == (slow == "helper"):
                    time.sleep(1.0)  # a wide margin over the other's start-up
                yield tbl

        def claim(tmp, k, who):
            won = real_claim(tmp, k, who)
            if won and os.getpid() == parent:
                claims.append(k)
            return won

        with monkeypatch.context() as m:
            _split_small_batches(m)
            m.setattr(rust.RangeReader, "tables", read)
            m.setattr(process, "_claim", claim)
            ctx = ParseContext(path=path.name, fs_path=path, options=Options(),
                               work_dir=tmp_path / slow)
            blocks = process.plan_blocks(read_layout(path, crc=False), evtx_mod.FIRST_SHARE,
                                         evtx_mod.BATCH, evtx_mod.BLOCK_LEAST, evtx_mod.BLOCKS)[1]
            tbl = pa.concat_tables(table.conform_arrow(b) for b in get("evtx").parse(ctx))
        assert tbl.column("record_id").to_pylist() == \
            pa.Array.from_pandas(single["record_id"]).to_pylist(), slow
        assert _warn_list(ctx) == _warn_list(sctx) and ctx.notes == sctx.notes, slow
        assert len(blocks) >= 4
        if slow == "helper":
            assert len(claims) >= len(blocks) - 1, (claims, len(blocks))
        else:
            assert len(claims) <= 1, (claims, len(blocks))


def test_a_read_ahead_block_that_cannot_be_written_stays_in_memory(corpus_dir, monkeypatch,
                                                                   tmp_path):
    """The parent's scratch files fail (disk full) while it reads ahead
    beside a slow helper: the block it was reading is kept in memory, no
    other is read ahead, and the rows still equal a one-process read."""
    import os
    import time

    from analyzer.sources.evtx import process, rust
    path = corpus_dir / "evtx" / "system.evtx"
    single = _one_process_ids(path, monkeypatch)
    parent = os.getpid()
    real_read, real_write = rust.RangeReader.tables, process._write_batch
    failed: list[str] = []

    def read(self, display, source):
        for tbl in real_read(self, display, source):
            if os.getpid() != parent:
                time.sleep(0.1)
            yield tbl

    def write(target, tbl):
        if os.getpid() == parent:
            failed.append(target.name)
            raise OSError(28, "No space left on device")
        real_write(target, tbl)

    monkeypatch.setattr(rust.RangeReader, "tables", read)
    monkeypatch.setattr(process, "_write_batch", write)
    _split_small_batches(monkeypatch)
    rids, ctx = _helper_parse(path, tmp_path / "work")
    assert rids == single
    # One block kept in memory (its batches), then no other read ahead.
    assert failed and len({name.split("-")[0] for name in failed}) == 1, failed
    assert not any("failed" in n for n in ctx.notes), ctx.notes


def test_a_scratch_directory_without_hard_links_means_one_process(corpus_dir, monkeypatch,
                                                                  tmp_path):
    """Blocks are claimed with hard links: where the scratch file system
    refuses them, no helper is started and the file is read in-process,
    with the rows of a one-process read and nothing left behind."""
    import os

    from analyzer.sources.evtx import process
    path = corpus_dir / "evtx" / "system.evtx"
    single = _one_process_ids(path, monkeypatch)
    forks: list[int] = []
    real_fork = os.fork

    def no_link(src, dst, *a, **k):
        raise PermissionError(1, "Operation not permitted")

    def fork():
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(process.os, "link", no_link)
    monkeypatch.setattr(process.os, "fork", fork)
    _split_small_batches(monkeypatch)
    rids, ctx = _helper_parse(path, tmp_path / "work")
    assert rids == single and not forks
    assert not any("helper" in n for n in ctx.notes), ctx.notes
    assert not list((tmp_path / "work").iterdir())


def test_skip_rows_cuts_inside_a_batch() -> None:
    from analyzer.sources.evtx.process import skip_rows as _skip_rows
    tables = [pa.table({"r": list(range(a, b))}) for a, b in ((0, 3), (3, 7), (7, 9))]
    for count in range(10):
        kept = [t for t in _skip_rows(iter(tables), count)]
        assert [v for t in kept for v in t.column("r").to_pylist()] == list(range(count, 9))
        assert all(t.num_rows for t in kept)


def test_helper_batches_are_taken_while_it_reads(corpus_dir, monkeypatch, tmp_path):
    """The parent takes the helper's batches as they are written, not after
    the helper exits: here the helper waits, after its first batch, until
    the parent has taken it (a marker file), and gives up (dies) after 20 s
    when it is not; a parent that waited for the helper's exit first would
    never take the batch, and its note would say the helper failed."""
    import os
    import time

    from analyzer.sources.evtx import process, rust
    path = corpus_dir / "evtx" / "system.evtx"
    single = _one_process_ids(path, monkeypatch)
    marker = tmp_path / "taken"
    parent = os.getpid()
    first_done: list[bool] = []  # the child's own copy after the fork
    real_read, real_take = rust.RangeReader.tables, process.Helper.tables

    def read(self, display, source):
        for i, tbl in enumerate(real_read(self, display, source)):
            yield tbl
            if os.getpid() != parent and i == 0 and not first_done:
                first_done.append(True)
                deadline = time.monotonic() + 20
                while not marker.exists():
                    if time.monotonic() > deadline:
                        raise RuntimeError("first batch not taken while the helper ran")
                    time.sleep(0.01)

    def take(self, k):
        for tbl in real_take(self, k):
            marker.touch()
            yield tbl

    monkeypatch.setattr(rust.RangeReader, "tables", read)
    monkeypatch.setattr(process.Helper, "tables", take)
    _split_small_batches(monkeypatch)
    rids, ctx = _helper_parse(path, tmp_path / "work")
    assert marker.exists()
    assert not any("failed" in n for n in ctx.notes), ctx.notes
    assert rids == single


# -- message text --------------------------------------------------------------

def test_catalog_events_get_message_text(corpus_dir):
    from analyzer import messages
    df, _ = parse(corpus_dir / "evtx" / "2-vss_7-System.evtx")
    dcom = df[(df["provider"] == "Microsoft-Windows-DistributedCOM") & (df["event_id"] == 10016)]
    assert len(dcom)
    row = dcom.iloc[0]
    assert row["message"] == messages.render(row["provider"], 10016, table.row_data(row["data"]))
    assert "permission settings do not grant" in row["message"]
    data = table.row_data(row["data"])
    assert data["param4"] in row["message"]  # CLSID filled in
    # Events outside the catalog stay without message (rendered on demand).
    catalog = df.apply(lambda r: messages.lookup(r["provider"], r["event_id"]) is not None, axis=1)
    assert df.loc[~catalog, "message"].isna().all()
    assert df.loc[catalog, "message"].notna().all()


def test_messages_equal_render_on_every_catalog_row(corpus_dir):
    """The vectorized fill (and its Python fallback) gives exactly what
    messages.render gives, on every catalog row of the corpus."""
    from analyzer import messages
    seen = 0
    for name in ["deepblue-smb-password-guessing-security.evtx", "Security_with_size_t.evtx",
                 "Security_short_selected.evtx", "system.evtx", "2-vss_7-System.evtx",
                 "deepblue-many-events-application.evtx", "plaso-System.evtx",
                 "sample-with-zero-data-size-event.evtx"]:
        df, _ = parse(corpus_dir / "evtx" / name)
        for p, e, d, m in zip(df["provider"], df["event_id"], df["data"], df["message"]):
            if messages.lookup(p, int(e)) is None:
                continue
            seen += 1
            assert m == messages.render(p, int(e), json.loads(d)), (name, p, e)
    assert seen > 3000


def _doc(system: str, rest: str = "") -> str:
    return ('{"Event":{"#attributes":{"xmlns":"http://schemas.microsoft.com/win/2004/08/events/event"},'
            '"System":' + system + rest + '}}')


SYS_4625 = ('{"Provider":{"#attributes":{"Name":"Microsoft-Windows-Security-Auditing",'
            '"Guid":"54849625-5478-4994-A5BA-3E3B0328C30D"}},"EventID":4625,"Version":0,"Level":0,'
            '"Task":12544,"Opcode":0,"Keywords":"0x8010000000000000","TimeCreated":{"#attributes":'
            '{"SystemTime":"2020-01-02T03:04:05.000006Z"}},"EventRecordID":%d,"Correlation":null,'
            '"Execution":{"#attributes":{"ProcessID":1,"ThreadID":2}},"Channel":"Security",'
            '"Computer":"EXCH01","Security":null}')


def test_records_to_table_edge_shapes():
    """Hand-written records in the crate's shape: values Python prints
    differently from JSON (booleans, floats) go through messages.render;
    a forwarded record with numbers as text is read by the Python path;
    UserData followed by RenderingInfo keeps valid JSON."""
    from analyzer import messages
    from analyzer.sources.evtx.records import records_to_table
    texts = [
        _doc(SYS_4625 % 1, ',"EventData":{"SubjectUserSid":"S-1-0-0","SubjectUserName":"-",'
             '"LogonType":3,"Flag":true,"Ratio":1.5}'),
        _doc(SYS_4625 % 2, ',"EventData":{"SubjectUserSid":"S-1-5-18","SubjectUserName":"a\\\\b"}'),
        _doc(SYS_4625.replace('"Level":0', '"Level":"4"').replace('"EventID":4625',
             '"EventID":"4625"') % 3, ',"EventData":{"TargetUserName":"bob"}'),
        _doc(SYS_4625 % 4, ',"UserData":{"LogFileCleared":{"SubjectUserName":"x"}},'
             '"RenderingInfo":{"Message":"m"}'),
        _doc(SYS_4625 % 5, ',"EventData":{"Data":{"#text":["one",null,"three"]},"Binary":"0A0B"}'),
    ]
    t = records_to_table(texts, "x.evtx", "evtx")
    rows = t.to_pylist()
    assert [r["record_id"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["event_id"] for r in rows] == [4625] * 5
    # Numbers as text (forwarded events) read by the Python path.
    assert rows[2]["level"] == "audit_failure" and rows[2]["category"] == "12544"
    for r in rows:
        data = json.loads(r["data"])
        assert r["message"] == messages.render(r["provider"], r["event_id"], data)
    # Python's spelling of a boolean and a float, as render() writes them.
    assert "Logon ID:\t\tTrue" in rows[0]["message"]
    assert "Security ID:\t\t1.5" in rows[0]["message"]
    assert json.loads(rows[1]["data"])["SubjectUserName"] == "a\\b"
    assert "a\\b" in rows[1]["message"]
    assert json.loads(rows[3]["data"])["UserData"] == {"LogFileCleared": {"SubjectUserName": "x"}}
    five = json.loads(rows[4]["data"])
    assert five["strings"] == ["one", None, "three"] and five["binary"] == "0a0b"


SYS_10016 = SYS_4625.replace("Microsoft-Windows-Security-Auditing", "Microsoft-Windows-DistributedCOM") \
    .replace('"EventID":4625', '"EventID":{"#attributes":{"Qualifiers":49152},"#text":10016}') \
    .replace('"Channel":"Security"', '"Channel":"System"')


def test_templates_chosen_by_count_are_filled_by_arrow(monkeypatch):
    """DCOM 10016's template depends on how many insertion strings the
    Windows version wrote (7, 9, 11): each data shape has one count, so
    these rows are filled by Arrow, exactly as messages.render fills them,
    and none goes to the Python renderer."""
    from analyzer import messages
    from analyzer.sources.evtx import records

    calls: list[tuple] = []
    real = records._render
    monkeypatch.setattr(records, "_render", lambda *a: calls.append(a) or real(*a))
    texts = []
    for rid, count in enumerate([7, 9, 11, 9, 7, 3], start=1):
        params = ",".join(f'"param{i}":"v{i}-{rid}"' for i in range(1, count + 1))
        texts.append(_doc(SYS_10016 % rid, ',"EventData":{' + params + "}"))
    rows = records.records_to_table(texts, "x.evtx", "evtx").to_pylist()
    assert [r["event_id"] for r in rows] == [10016] * 6
    for r in rows:
        assert r["message"] == messages.render(r["provider"], 10016, json.loads(r["data"]))
    assert "v9-2 running in" not in rows[1]["message"]  # the 9-string text, not the 11
    assert "from address v9-2." in rows[1]["message"]
    assert "to the user v5-1\\v6-1 SID (v7-1)" in rows[0]["message"]
    # No template for 3 strings: the default one, its slots past the third kept visible.
    assert "grant v2-6 v3-6 permission" in rows[5]["message"] and "(%11)" in rows[5]["message"]
    assert calls == []


@pytest.mark.parametrize("backend", ["rust", "python"])
def test_control_character_in_system_text_stays_valid_json(tmp_path, backend):
    """A damaged EventSourceName with a control character must not make the
    whole table invalid."""
    from datetime import datetime, timezone

    from analyzer import load_case
    from analyzer.synth.evtx import EvtxEvent, evtx_bytes
    from analyzer.table import row_data, validate

    (tmp_path / "a.evtx").write_bytes(evtx_bytes([EvtxEvent(
        "P", 1, datetime(2020, 1, 1, tzinfo=timezone.utc), event_source_name="D\x01COM")]))
    case = load_case(tmp_path, evtx_backend=backend)
    validate(case.table)
    assert row_data(case.table["data"].iloc[0])["EventSourceName"] == "D\x01COM"


@pytest.mark.parametrize("backend", ["rust", "python"])
def test_provider_guid_has_one_pair_of_braces(corpus_dir, backend):
    """Application_no_crc32.evtx stores some provider GUIDs as text with braces."""
    import json

    from analyzer import load_case

    case = load_case(corpus_dir / "evtx" / "Application_no_crc32.evtx", evtx_backend=backend)
    guids = {json.loads(v).get("provider_guid") for v in case.table["data"]} - {None}
    assert guids and all(g.startswith("{") and not g.startswith("{{") and g.count("}") == 1
                         for g in guids), guids


def test_numpy_byte_readers_equal_their_regexes():
    """The numpy readers of value bytes (audit nibble of Keywords, object
    text of a System field) give what the regexes they replaced give, on
    edge values: short, non-hex tails, nulls, sliced arrays, non-ASCII."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from analyzer.sources.evtx import records as ec
    kws = ["0x8010000000000000", "0x8020000000000000", "0x10000000000000", "0xF0000000000000",
           "0x8000000000000000", "", None, "0x1", "zz8010000000000000", "0x80g0000000000000",
           "0x80A0000000000000x", "0xé010000000000000", "0x8030000000000000", "3" + "0" * 13]
    arr = pa.array(["pad"] + kws, pa.string()).slice(1)
    nib = ec._f(pc.extract_regex(pc.fill_null(arr, ""), ec._AUDIT_NIBBLE), "n").to_pylist()
    want = [int(x, 16) if x else 0 for x in nib]
    assert ec._audit_nibble(arr).tolist() == want
    assert want[:4] == [1, 2, 1, 15]
    texts = ['{"a":1}', "{}", "[1]", "{FC65-1}", "", None, "x", "{", '{"', "[", "é{"]
    arr = pa.array(["pad"] + texts, pa.string()).slice(1)
    regex = pc.fill_null(pc.match_substring_regex(arr, r'^(?:\{"|\{\}|\[)'), False).to_pylist()
    assert ec._object_text(arr).tolist() == regex
    assert regex[:4] == [True, True, True, False]


def test_levels_from_level_and_audit_keywords():
    """Audit keywords decide first (success over failure), then the manifest
    level; out-of-range or missing levels are "unknown". The column is the
    table's dictionary type holding only the labels in use."""
    import pyarrow as pa

    from analyzer import table
    from analyzer.sources.evtx import records as ec
    level = pa.array([0, 4, None, 2, 300, -1, 5, 7, 0, 0, 1, 3], pa.int64())
    kws = pa.array(["0x8010000000000000", "0x80", None, "0x4000000000200800", "0x8020000000000000",
                    "x", "0x8080000000000000", None, "0x8030000000000000", "0x10000000000000",
                    "0x8080000000000000", ""], pa.string())
    got = ec._levels(level, kws)
    assert got.to_pylist() == ["audit_failure", "information", "unknown", "error", "audit_success",
                               "unknown", "verbose", "verbose", "audit_success", "audit_failure",
                               "critical", "warning"]
    assert got.type == table.SCHEMA["level"]
    # The labels in use, in the order they first occur (as encoding the labels gives).
    assert got.dictionary.to_pylist() == list(dict.fromkeys(got.to_pylist()))
    assert ec._levels(pa.array([4, 4], pa.int64()), pa.array([None, None], pa.string())) \
        .to_pylist() == ["information", "information"]
    assert ec._levels(pa.array([], pa.int64()), pa.array([], pa.string())).to_pylist() == []


def test_unnamed_data_cut_equals_the_replacements():
    """Classic events' unnamed <Data> cut at fixed places gives what the two
    regex replacements give, on the crate's shapes and on every shape the
    cut must leave to them (nested values, other keys, a second Data, text
    that looks like the Binary marker inside a string, bad JSON)."""
    import pyarrow as pa

    from analyzer.sources.evtx import records as ec
    cases = ['{"Data":{"#text":["a","b"]},"Binary":"0A"}', '{"Data":{"#text":["a"]}}',
             '{"Data":{"#text":"x"}}', '{"Data":{"#text":12},"Binary":null}',
             '{"Data":{"#text":["a",{"o":1}]}}', '{"Other":1,"Data":{"#text":["a"]}}',
             '{"Data":{"#text":["a"]},"X":{"Data":{"#text":["b"]}}}', '{"Data":{"#text":["a\\"]}","b"]}}',
             '{"Data":{"#text":[]}}', '{"Data":{"#text":["},\\"Binary\\":"]},"Binary":"00"}',
             '{"Data":{"#text":null}}', '{"Data":{"#text":]}}', '{"Data":{"#text":["a"]},"Q":1},"Binary":"0"}',
             '{"Data":{"#text":["é",true,-1.5e3]}}', '{"Data":{"#text":"x"},"Binary":"0A0B"}']
    arr = pa.array(["pad"] + cases, pa.string()).slice(1)
    got = ec._unnamed_data(arr).to_pylist()
    assert got == ec._unnamed_data_regex(arr).to_pylist()
    assert got[0] == '{"strings":["a","b"],"Binary":"0A"}' and got[2] == '{"strings":["x"]}'
    assert got[4] == cases[4]  # a nested value is no insertion string: left as it is
    assert ec._unnamed_data(pa.array(["", ""], pa.string())).to_pylist() == ["", ""]


def test_message_groups_are_the_same_when_their_codes_are_renumbered(monkeypatch):
    """Rows are grouped by (provider, event id, keys) through one combined
    integer code; when the three dictionaries together would overflow it,
    the code is renumbered densely first, and the groups stay the same."""
    import pyarrow as pa

    from analyzer.sources.evtx import records as ec
    p = pa.array([f"p{i % 7}" for i in range(500)] + [None])
    e = pa.array([i % 11 for i in range(500)] + [3], pa.int32())
    s = pa.array([f"k{i % 13}" for i in range(500)] + ["k1"])

    def groups() -> list[tuple]:
        return sorted((g[0] or "", g[1], g[2], tuple(g[3])) for g in ec._shape_groups(p, e, s))

    want = groups()
    assert len(want) == 501  # i mod 7, 11, 13 are distinct for 500 rows; the null provider
    monkeypatch.setattr(ec, "_CODE_SPAN", 50)
    assert groups() == want
    assert sum(len(g[3]) for g in want) == 501


def test_string_views_equal_the_bytes_they_name():
    """The System objects reach DuckDB as string views into the record
    texts: each view gives exactly its byte range, short (inline) and long,
    empty, non-ASCII and from a sliced array; a record whose head holds no
    System key (only its body does) gives no views, so the heads are read."""
    import numpy as np

    from analyzer.sources.evtx import records as R
    texts = ["", "a", "abcdefghijkl", "abcdefghijklm", "é" * 40, '{"x":"\"y"}' * 9, "z" * 13]
    arr = pa.array(["pad"] + texts, pa.string()).slice(1)
    offs = R._offsets(arr).astype(np.int64)
    raw = arr.buffers()[2].to_pybytes()
    for start, end in ((offs[:-1], offs[1:]), (offs[:-1] + np.minimum(np.diff(offs), 1), offs[1:]),
                       (offs[:-1], offs[:-1] + np.diff(offs) // 2)):
        views = R._views(arr, start, end)
        assert views.type == pa.string_view()
        want = [raw[a:b].decode("utf-8", "replace") for a, b in zip(start, end)]
        got = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
               for v in views.cast(pa.binary_view()).to_pylist()]
        assert got == want
    records = pa.array([R._HEAD_PREFIX + '{"Channel":"A"},"EventData":{"x":"1"}}}',
                        '{"Event":{"Other":{},"EventData":{"System":{"y":1}}}}'], pa.string())
    head_end, _, _ = R.split_records(records)
    assert R._system_docs(records.slice(0, 1), head_end[:1]).cast(pa.string()).to_pylist() == \
        ['{"Channel":"A"}']
    assert R._system_docs(records, head_end) is None
    assert R.system_fields(records, head_end)["channel"].to_pylist() == ["A", None]


def test_rows_without_rewrites_get_the_data_every_rewrite_gives():
    """data_column writes body + pieces for the rows no rewrite can change
    and rewrites only the others: every row equals what the full chain of
    rewrites gives it, in a batch mixing both kinds of rows."""
    import numpy as np

    from analyzer.sources.evtx import records as R
    records = [
        '{"a":"1","b":"x\\"y"}', "{}", "null", '{"Data":{"#text":["p",null]}}',
        '"UserData":{"U":{"k":"v"}}', "", '{"Binary":"0A0B","x":"1"}',
        '{"a":"2"},"RenderingInfo":{"Message":"m"}', '{"c":"Binary"}', '{"d":3}', "{",
        '{"e":1},"RenderingInfo":{"Binary":"0A","Data":{"#text":["x"]}}',
    ]
    kinds = np.array([0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0], dtype=np.int8)
    bodies = pa.array(["pad"] + records, pa.string()).slice(1)
    esn = pa.array([None, "S", None, "S", None, None, "S", None, "S", None, None, "S"],
                   pa.string())
    guid = pa.array(["{A-1}", None, "b-2", "b-2", None, "{A-1}", None, None, "C", "C", None, None],
                    pa.string())
    odd, found = R._odd_rows(bodies, kinds)
    assert not odd.all() and odd.any()
    pieces = (R._piece_by_value("EventSourceName", esn, R._json_quote),
              R._piece_by_value("provider_guid", guid, R._guid_text))
    want = R._normalized(bodies, kinds, *pieces, found).to_pylist()
    assert R.data_column(bodies, kinds, esn, guid).to_pylist() == want
    # The rows _odd_rows found are handed to the rewrites: texts that were
    # inside the RenderingInfo that is cut change nothing.
    assert json.loads(want[-1]) == {"e": 1, "EventSourceName": "S"}
    assert json.loads(want[3]) == {"strings": ["p", None], "EventSourceName": "S",
                                   "provider_guid": "{B-2}"}
    assert json.loads(want[6]) == {"x": "1", "binary": "0a0b", "EventSourceName": "S"}
    assert json.loads(want[0]) == {"a": "1", "b": 'x"y', "provider_guid": "{A-1}"}
    assert json.loads(want[1]) == {"EventSourceName": "S"}


def test_nine_fractional_digits_stay_vectorized(monkeypatch):
    """Forwarded events write 9 fractional digits: the batch is cast in
    Arrow (no per-row fallback) and gives what the fallback gave."""
    from analyzer.sources.evtx import records
    times = ["2021-11-19T16:52:33.833733500Z", "2020-01-02T03:04:05.000006Z", None,
             "2020-01-02T03:04:05Z"]
    want = [records._parse_ts(t) for t in times]

    def no_fallback(_):
        raise AssertionError("per-row fallback used")

    monkeypatch.setattr(records, "_parse_ts", no_fallback)
    got = records._timestamps(pa.array(times, pa.string())).to_pylist()
    assert got == want
    # A date outside the nanosecond range (FILETIME 0) still casts in Arrow.
    assert records._timestamps(pa.array(["1601-01-01T00:00:00.000000Z"])).to_pylist()[0].year == 1601
