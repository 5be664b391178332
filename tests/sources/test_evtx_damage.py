""".evtx damage is never silent: files cut at many points keep the records
wholly before the cut and are partial/failed with byte and chunk figures,
an empty log says so, the two backends agree on every corpus file, and a
huge sparse file costs bounded memory."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from analyzer import table
from analyzer.case import load_case
from analyzer.sources import Options, ParseContext, get
from analyzer.sources.evtx.layout import (CHUNK_HEADER_SIZE, CHUNK_MAGIC, CHUNK_SIZE,
                                          FILE_HEADER_SIZE, complete_records)

BACKENDS = ("rust", "python")


def parse(path: Path, backend: str = "rust") -> tuple[pa.Table | None, ParseContext]:
    ctx = ParseContext(path=path.name, fs_path=path, options=Options(evtx_backend=backend))
    batches = [table.conform_arrow(b) for b in get("evtx").parse(ctx)]
    return (pa.concat_tables(batches) if batches else None), ctx


def expected_before(raw: bytes, cut: int) -> int:
    """Records wholly before ``cut``, counted by walking the original file's
    chunks (an independent count: record headers and size copies)."""
    n = 0
    for off in range(FILE_HEADER_SIZE, min(cut, len(raw)), CHUNK_SIZE):
        chunk = raw[off:off + CHUNK_SIZE]
        if chunk[:8] != CHUNK_MAGIC:
            continue
        free = struct.unpack_from("<I", chunk, 0x30)[0]
        n += complete_records(chunk, min(free, cut - off, CHUNK_SIZE))[0]
    return n


def cut_points(size: int) -> list[int]:
    """Ten cuts: inside the file header, inside chunk 0's header, inside
    chunk 0's records, at a chunk boundary, and inside later chunks (kept
    within the first five slots so the test stays fast)."""
    span = min(size, FILE_HEADER_SIZE + 5 * CHUNK_SIZE)
    fixed = [3000, FILE_HEADER_SIZE + 0x100, FILE_HEADER_SIZE + 0x3000, 60_000,
             FILE_HEADER_SIZE + CHUNK_SIZE]
    spread = [FILE_HEADER_SIZE + CHUNK_SIZE + (span - FILE_HEADER_SIZE - CHUNK_SIZE) * k // 6 + 0x1234
              for k in range(1, 6)]
    return [c for c in fixed + spread if c < size]


# Clean corpus files: every record before a cut is readable, so the count is exact.
def _clean(corpus_dir: Path) -> list[Path]:
    out = []
    for f in sorted((corpus_dir / "evtx").glob("*.evtx")):
        _, ctx = parse(f)
        if not ctx.warnings:
            out.append(f)
    return out


def test_every_corpus_evtx_cut_at_ten_points(corpus_dir, tmp_path):
    """Rust backend, every corpus file: never 0 rows when the first chunk's
    records are whole, the exact count of complete records for a clean file,
    always partial or failed, and a warning with the byte and chunk figures."""
    clean = {f.name for f in _clean(corpus_dir)}
    checked = 0
    for f in sorted((corpus_dir / "evtx").glob("*.evtx")):
        raw = f.read_bytes()
        for cut in cut_points(len(raw)):
            p = tmp_path / f"cut-{cut}-{f.name}"
            p.write_bytes(raw[:cut])
            tbl, ctx = parse(p)
            rows = tbl.num_rows if tbl is not None else 0
            want = expected_before(raw, cut)
            if f.name in clean:
                assert rows == want, (f.name, cut)
            if cut >= FILE_HEADER_SIZE + CHUNK_SIZE and want:
                assert rows > 0, (f.name, cut)
            if not any(raw[cut:]):
                continue  # only never-written slots were cut off: nothing lost
            announced = struct.unpack_from("<H", raw, 0x2A)[0]
            if (cut - FILE_HEADER_SIZE) % CHUNK_SIZE == 0 and \
                    announced <= (cut - FILE_HEADER_SIZE) // CHUNK_SIZE:
                # Cut at a chunk boundary of a log whose header is stale (copied
                # while open: it counts fewer chunks than were written): nothing
                # in the shorter file says chunks are missing.
                continue
            assert ctx.partial, (f.name, cut)
            text = " ".join(w.message for w in ctx.warnings)
            assert f"{cut}" in text and ("chunk" in text or "header" in text), (f.name, cut, text)
            k, inside = divmod(cut - FILE_HEADER_SIZE, CHUNK_SIZE)
            slot = FILE_HEADER_SIZE + k * CHUNK_SIZE
            if cut > FILE_HEADER_SIZE and inside and raw[slot:slot + 8] == CHUNK_MAGIC:
                assert f"file ends at byte {cut} inside chunk {k}" in text, (f.name, cut, text)
                assert "header announces" in text and f"{rows} records read" in text
            p.unlink()
            checked += 1
    assert checked >= 200


def test_cut_files_in_a_case_are_partial_or_failed(corpus_dir, tmp_path):
    raw = (corpus_dir / "evtx" / "new-user-security.evtx").read_bytes()
    assert len(raw) == 69_632
    (tmp_path / "cut.evtx").write_bytes(raw[:60_000])       # the shape
    (tmp_path / "header-only.evtx").write_bytes(raw[:3000])
    inv = {e.path: e for e in load_case(tmp_path).inventory}
    cut = inv["cut.evtx"]
    assert cut.status == "partial" and cut.rows == 4
    assert any("file ends at byte 60000 inside chunk 0" in w and "header announces 1 chunks" in w
               and "4 records read" in w for w in cut.warnings)
    assert inv["header-only.evtx"].status == "failed" and inv["header-only.evtx"].rows == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_corpus_files_cut_both_backends(corpus_dir, tmp_path, backend):
    """The one-chunk corpus files (python-evtx is slow: small files only)
    cut at ten points inside their chunk: both backends keep exactly the
    complete records."""
    files = [f for f in sorted((corpus_dir / "evtx").glob("*.evtx"))
             if f.stat().st_size == FILE_HEADER_SIZE + CHUNK_SIZE]
    assert len(files) >= 5
    for f in files:
        raw = f.read_bytes()
        free = struct.unpack_from("<I", raw, FILE_HEADER_SIZE + 0x30)[0]
        for k in range(10):
            cut = FILE_HEADER_SIZE + CHUNK_HEADER_SIZE + (free - CHUNK_HEADER_SIZE) * k // 10 + 7
            p = tmp_path / f"{k}-{f.name}"
            p.write_bytes(raw[:cut])
            tbl, ctx = parse(p, backend)
            rows = tbl.num_rows if tbl is not None else 0
            want = expected_before(raw, cut)
            # A damaged record before the cut may be unreadable: never more.
            assert rows <= want and (rows == want or ctx.warnings), (f.name, cut)
            assert ctx.partial
            assert any(f"file ends at byte {cut} inside chunk 0" in w.message for w in ctx.warnings)
            p.unlink()


def test_empty_log_is_parsed_and_says_why(tmp_path):
    from analyzer.synth.evtx import evtx_bytes
    raw = evtx_bytes([])
    (tmp_path / "Empty.evtx").write_bytes(raw)
    for backend in BACKENDS:
        e = load_case(tmp_path, evtx_backend=backend).inventory[0]
        assert e.status == "parsed" and e.rows == 0, backend
        assert "empty log" in e.detail, e.detail


def test_records_present_but_none_readable_is_failed(tmp_path):
    from analyzer.synth.evtx import EvtxEvent, evtx_bytes
    raw = bytearray(evtx_bytes([EvtxEvent("P", 1, datetime(2020, 1, 1, tzinfo=timezone.utc))]))
    # Break the only record's magic: the chunk says it holds a record.
    at = FILE_HEADER_SIZE + CHUNK_HEADER_SIZE
    raw[at:at + 4] = b"XXXX"
    (tmp_path / "x.evtx").write_bytes(bytes(raw))
    for backend in BACKENDS:
        e = load_case(tmp_path, evtx_backend=backend).inventory[0]
        assert e.status == "failed" and e.rows == 0, (backend, e)


def test_bad_chunk_crc_is_a_warning(corpus_dir):
    """A chunk whose CRC32 does not match is named (records still read)."""
    tbl, ctx = parse(corpus_dir / "evtx" / "security_bad_string_cache.evtx")
    assert tbl.num_rows == 2261
    crc = [w for w in ctx.warnings if "CRC32" in w.message]
    assert len(crc) == 1 and crc[0].locator == "chunk=0 offset=0x1000"
    tbl, ctx = parse(corpus_dir / "evtx" / "security.evtx")
    assert not ctx.warnings


def _key_rows(tbl: pa.Table) -> list[tuple]:
    cols = ["record_id", "ts", "host", "channel", "provider", "event_id", "qualifiers",
            "level", "user", "message"]
    data = [json.loads(d) for d in tbl.column("data").to_pylist()]
    return list(zip(*(tbl.column(c).to_pylist() for c in cols), data))


def test_backends_agree_on_every_corpus_file(corpus_dir, tmp_path):
    """Same rows, same key values, both backends, on every corpus file.
    python-evtx decodes ~100 records/s, so each file is compared on its
    first chunk's records up to 0xE000 (a cut chunk, which exercises the
    repair on both backends); the files where the backends used to differ
    (forwarded events, CAPI2 UserData, damaged records) have their
    differing records inside that span."""
    for f in sorted((corpus_dir / "evtx").glob("*.evtx")):
        p = tmp_path / f.name
        p.write_bytes(f.read_bytes()[:FILE_HEADER_SIZE + 0xE000])
        rust, _ = parse(p, "rust")
        py, _ = parse(p, "python")
        assert (rust is None) == (py is None), f.name
        if rust is None:
            continue
        assert rust.num_rows == py.num_rows, f.name
        assert _key_rows(rust) == _key_rows(py), f.name


def test_forwarded_event_python_backend(corpus_dir):
    """The Windows Event Collector file: records written without a template."""
    path = corpus_dir / "evtx" / "MSExchange_Management_wec.evtx"
    rust, _ = parse(path, "rust")
    py, ctx = parse(path, "python")
    assert rust.num_rows == py.num_rows == 1 and not ctx.warnings
    assert _key_rows(rust) == _key_rows(py)
    row = py.to_pylist()[0]
    assert row["provider"] == "MSExchange CmdletLogs" and row["host"] == "WEC.ave.local"
    assert json.loads(row["data"])["strings"][0] == "Set-Mailbox"


# -- bounded memory ------------------------------------------------------------

_RSS = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from analyzer.sources import Options, ParseContext, get
    path, kind, backend = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ParseContext(path=path.name, fs_path=path, options=Options(evtx_backend=backend))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = 0
    for chunk in get(kind).parse(ctx):
        rows += getattr(chunk, "num_rows", 1)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(rows, before // 1024, after // 1024, ctx.partial, len(ctx.warnings))
""")


def _peak(path: Path, kind: str, backend: str = "rust") -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, "-c", _RSS, str(path), kind, backend],
                         capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    rows, before, after, *_ = out.stdout.split()
    return int(rows), int(before), int(after)


SPARSE = 512 * 1024 * 1024  # large enough to show a whole-file read, cheap as a sparse file


def test_sparse_evtx_claiming_65535_chunks_costs_bounded_memory(corpus_dir, tmp_path):
    head = (corpus_dir / "evtx" / "new-user-security.evtx").read_bytes()
    header = bytearray(head[:FILE_HEADER_SIZE])
    struct.pack_into("<H", header, 0x2A, 0xFFFF)
    struct.pack_into("<Q", header, 0x10, 0xFFFE)
    p = tmp_path / "huge.evtx"
    with open(p, "wb") as fh:
        fh.write(bytes(header) + head[FILE_HEADER_SIZE:])
        fh.truncate(SPARSE)
    for backend in BACKENDS:
        rows, before, after = _peak(p, "evtx", backend)
        assert rows == 4, backend
        assert after - before < 150, (backend, before, after)  # MB; the file is 512


def test_sparse_evt_with_a_valid_header_costs_bounded_memory(tmp_path):
    from analyzer.synth.evt import EvtRecord, evt_bytes
    raw = evt_bytes([EvtRecord(1, "Src", datetime(2006, 1, 1, tzinfo=timezone.utc), "information",
                               computer="H", strings=["a"])])
    p = tmp_path / "huge.evt"
    with open(p, "wb") as fh:
        fh.write(raw)
        fh.truncate(SPARSE)
    rows, before, after = _peak(p, "evt")
    assert rows == 1
    assert after - before < 150, (before, after)
