"""The .evtx table's contents, column by column, against recorded digests.

The batch build of the .evtx source (analyzer/sources/evtx/records.py) is
tuned for speed; this gate holds that no tuning changes a value. For every
corpus .evtx (damaged ones too: their readable rows count) and for a file
stitched from corpus chunks large enough for the two-process split, each
column of the parsed table is serialized canonically (one ``repr`` per
value, in row order) and its sha256 compared with
``tests/data/evtx_rows_identity.json``. A few whole rows are recorded as
well, so a failure shows what changed, not only that something did.

The digests were recorded from the table build before its restructuring;
regenerate them only for an intended change of the table's contents:

    PYTHONPATH=$PWD python tests/test_evtx_rows_identity.py
"""
from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from analyzer import table
from analyzer.sources import Options, ParseContext, get

GOLDEN = Path(__file__).resolve().parent / "data" / "evtx_rows_identity.json"
#: Corpus files whose chunks make the stitched file: a WEC log (9 fractional
#: digits), classic System/Application events with catalog messages,
#: Security audits with Binary and unnamed data.
STITCH = ["MSExchange_Management_wec.evtx", "plaso-System.evtx", "security.evtx",
          "deepblue-many-events-application.evtx", "system.evtx"]
STITCHED = "stitched.evtx"
#: Chunk slots of the stitched file (the split needs SPLIT_MIN_CHUNKS).
STITCH_CHUNKS = 72


def stitch(corpus: Path, target: Path) -> None:
    """A clean .evtx of :data:`STITCH_CHUNKS` real chunks taken in turn
    from the :data:`STITCH` files (header counts and CRC rewritten)."""
    chunks: list[bytes] = []
    for name in STITCH:
        raw = (corpus / "evtx" / name).read_bytes()
        for off in range(0x1000, len(raw) - 0xFFFF, 0x10000):
            if raw[off:off + 8] == b"ElfChnk\x00":
                chunks.append(raw[off:off + 0x10000])
    out = [chunks[i % len(chunks)] for i in range(STITCH_CHUNKS)]
    header = bytearray((corpus / "evtx" / STITCH[0]).read_bytes()[:0x1000])
    struct.pack_into("<QQ", header, 8, 0, len(out) - 1)
    struct.pack_into("<H", header, 0x2A, len(out))
    struct.pack_into("<I", header, 0x78, 0)
    struct.pack_into("<I", header, 0x7C, zlib.crc32(bytes(header[:0x78])) & 0xFFFFFFFF)
    target.write_bytes(bytes(header) + b"".join(out))


def parse_table(path: Path, backend: str = "rust") -> pa.Table:
    """The file's rows as the case loader receives them (batches conformed
    to the table schema), in file order."""
    ctx = ParseContext(path=path.name, fs_path=path, options=Options(evtx_backend=backend))
    batches = [table.conform_arrow(b) for b in get("evtx").parse(ctx)]
    if not batches:
        return table.rows_to_arrow([])
    return pa.concat_tables(batches).unify_dictionaries().combine_chunks()


def _value(v: Any) -> str:
    return repr(v.isoformat() if hasattr(v, "isoformat") else v)


def digests(tbl: pa.Table) -> dict[str, str]:
    """sha256 of each column's values, one ``repr`` a line in row order
    (dictionary columns by their values, timestamps as ISO text)."""
    out = {}
    for name in table.COLUMNS:
        h = hashlib.sha256()
        for v in tbl.column(name).to_pylist():
            h.update(_value(v).encode("utf-8", "surrogatepass"))
            h.update(b"\n")
        out[name] = h.hexdigest()
    return out


def sample_rows(tbl: pa.Table) -> dict[str, dict[str, str]]:
    """A few whole rows (first, last, first with a message), by position."""
    n = tbl.num_rows
    picks = {0, n - 1} if n else set()
    msgs = tbl.column("message").to_pylist()
    picks |= {next((i for i, m in enumerate(msgs) if m is not None), 0)} if n else set()
    return {str(i): {k: _value(v) for k, v in tbl.slice(i, 1).to_pylist()[0].items()}
            for i in sorted(picks)}


def files(corpus: Path) -> list[Path]:
    return sorted((corpus / "evtx").glob("*.evtx"))


def record(corpus: Path, tmp: Path) -> dict[str, Any]:
    """Digests and sample rows of every file (what the JSON file holds)."""
    out: dict[str, Any] = {}
    paths = files(corpus)
    stitched = tmp / STITCHED
    stitch(corpus, stitched)
    for p in paths + [stitched]:
        tbl = parse_table(p)
        out[p.name] = {"rows": tbl.num_rows, "columns": digests(tbl), "samples": sample_rows(tbl)}
    return out


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def _compare(name: str, tbl: pa.Table, want: dict[str, Any]) -> None:
    assert tbl.num_rows == want["rows"], name
    for i, row in want["samples"].items():
        got = {k: _value(v) for k, v in tbl.slice(int(i), 1).to_pylist()[0].items()}
        assert got == row, f"{name} row {i}"
    got = digests(tbl)
    changed = [c for c in table.COLUMNS if got[c] != want["columns"][c]]
    assert not changed, f"{name}: columns changed: {changed}"


def test_every_corpus_file_has_a_golden(corpus_dir, golden):
    assert sorted(p.name for p in files(corpus_dir)) == sorted(k for k in golden if k != STITCHED)


#: The corpus files the goldens were taken from (a file added to the corpus
#: fails the test above until its golden is recorded).
GOLDEN_FILES = sorted(k for k in json.loads(GOLDEN.read_text(encoding="utf-8")) if k != STITCHED)


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_corpus_file_rows_unchanged(corpus_dir, golden, name):
    path = corpus_dir / "evtx" / name
    _compare(name, parse_table(path), golden[name])


def test_stitched_file_rows_unchanged_through_the_split(corpus_dir, golden, tmp_path, monkeypatch):
    """A file of many chunks, read by two processes (forced even on one
    core): every column equals the recorded one-process table of main."""
    from analyzer.sources import evtx as evtx_mod
    path = tmp_path / STITCHED
    stitch(corpus_dir, path)
    assert STITCH_CHUNKS >= evtx_mod.SPLIT_MIN_CHUNKS
    monkeypatch.setattr(evtx_mod, "_threads", lambda: 2)
    _compare(STITCHED, parse_table(path), golden[STITCHED])


@pytest.mark.parametrize("name", ["Application_no_crc32.evtx", "MSExchange_Management_wec.evtx",
                                  "post-Security.evtx", "deepblue-password-spray.evtx"])
def test_python_backend_rows_unchanged(corpus_dir, golden, name):
    """The python-evtx backend goes through the same batch build: its
    table equals the recorded one too."""
    path = corpus_dir / "evtx" / name
    _compare(name, parse_table(path, backend="python"), golden[name])


if __name__ == "__main__":
    import tempfile
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import CORPUS
    with tempfile.TemporaryDirectory() as d:
        data = record(CORPUS, Path(d))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}: {len(data)} files")


def test_offset_readers_equal_their_regexes():
    """The numpy/offset readers of the batch build give what the RE2
    patterns they replace give, on the shapes the crate writes and on the
    ones that must fall back (two Binary items, a key ending in Binary,
    non-hex text, a number; a key ending in Data before the marker)."""
    import numpy as np
    import pyarrow.compute as pc

    from analyzer.sources.evtx import records as R
    bodies = [
        '{"param1":"a","Binary":"0A0B"}', '{"Binary":"FF","x":"y"}', '{"Binary":null,"x":1}',
        '{"x":"y","Binary":null}', '{"Binary":"AB"}', '{"x":"1","Binary":""}',
        '{"x":"Binary\\":","Binary":"AA"}', '{"a":{"Binary":"AA"},"Binary":"BB"}',
        '{"XBinary":"AA"}', '{"Binary":"zz"}', '{"Binary":12,"y":"Binary"}', '{"Binary":"A',
        '{"s":"\\u00e9\\"","Binary":"C0FFEE","t":"\\\\"}', '{"Binary":nul}',
    ]
    arr = pa.array(bodies).slice(0)
    for sub in (arr, arr.slice(3), arr.take(pa.array([5, 0, 7]))):
        assert [x.to_pylist() for x in R._binary_cut(sub)] == \
            [x.to_pylist() for x in R._binary_regex(sub)]
    records = pa.array([
        '{"Event":{"System":{"a":1},"EventData":{"x":"Data\\":"}}}',
        '{"Event":{"System":{"MyData":1},"UserData":{"y":{}}}}',
        '{"Event":{"System":{"a":"b"}}}', '{"Event":{"System":{"ExtData":1},"EventData":null}}',
        '{"Event":{"System":{},"UserData":{"EventData":1}}}', 'Data":', '',
    ])
    for sub in (records, records.slice(2)):
        offs = R._offsets(sub).astype("int64")
        values = np.frombuffer(sub.buffers()[2], dtype="uint8")
        assert list(R._marker_at(sub, offs[:-1], values)) == \
            pc.find_substring_regex(sub, R._MARKERS).to_pylist()
    for ints in (["1", "22", None, "333"], ["1", "-2"], [None, None], ["1" * 19], ["1", ""],
                 ["12", "x"], ["0"] * 3):
        col = pa.array(ints, pa.string())
        assert R._integers(col).to_pylist() == pc.match_substring_regex(col, R._DIGITS).to_pylist()
    text = pa.array(['{"a":true}', '{"b":"x"}', '{"c":1.5}', '{"d":{"e":1}}'])
    for sub in (text, text.slice(1, 1)):
        assert list(R._rows_matching(sub, R._NOT_PLAIN_TEXT)) == \
            pc.match_substring_regex(sub, R._NOT_PLAIN_TEXT).to_pylist()
