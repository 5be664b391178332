"""benchmarks/build_big_inputs.py and benchmarks/big_logs.py run, at a tiny
scale (the full-size figures are the benchmark's business, not a test's:
no timing is asserted here)."""
from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"


@pytest.fixture(scope="module")
def built(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exa-bench")
    proc = subprocess.run([sys.executable, str(BENCH / "build_big_inputs.py"), str(out), "--scale", "0.001"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "BIG.evtx" in proc.stdout and "tracking.log" in proc.stdout
    return out


def _records(path: Path) -> list[tuple[int, int, str]]:
    """(header record id, XML EventRecordID, channel) of every record, read
    by the evtx crate (an independent reader of what the builder wrote)."""
    from evtx import PyEvtxParser

    out = []
    for r in PyEvtxParser(str(path)).records_json():
        system = json.loads(r["data"])["Event"]["System"]
        out.append((r["event_record_id"], int(system["EventRecordID"]), system.get("Channel")))
    return out


def test_stitched_logs_are_renumbered_and_clean(built: Path) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    for name in ("BIG.evtx", "sec-case/SEC.evtx"):
        raw = (built / name).read_bytes()
        info = manifest["files"][name]
        assert len(raw) == 0x1000 + info["chunks"] * 0x10000
        assert struct.unpack_from("<I", raw, 0x7C)[0] == zlib.crc32(raw[:0x78])
        assert struct.unpack_from("<Q", raw, 0x18)[0] == info["records"] + 1   # next record id
        recs = _records(built / name)
        assert [r[0] for r in recs] == list(range(1, info["records"] + 1))
        # the XML carries the new id too (but the one forwarded record's)
        assert sum(1 for h, x, _ in recs if h != x) == info["records_without_xml_id"] <= 1
    sec = _records(built / "sec-case" / "SEC.evtx")
    assert {c for _, _, c in sec} == {"Security"}
    assert manifest["files"]["sec-case/SEC.evtx"]["4625_share"] > 0.3


def test_text_inputs_have_their_sizes(built: Path) -> None:
    netstat = (built / "netstat.txt").read_bytes().split(b"\r\n")
    assert len(netstat) - 1 == 1000 and netstat[1] == b"Active Connections"
    tracking = (built / "tracking.log").read_bytes().decode("ascii").split("\r\n")
    assert len(tracking) - 1 == 500 and tracking[0] == "# Message Tracking Log File"
    assert all(len(line.split("\t")) == 20 for line in tracking[3:-1])


def test_big_logs_prints_its_table(built: Path) -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "big_logs.py"), "--dir", str(built), "--scale", "0.001",
                           "--rounds", "1", "--only", "1,5"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "reusing the inputs of scale 0.001" in out
    # each measured command ran once, read every row, without a warning
    files = json.loads((built / "manifest.json").read_text())["files"]
    big, netstat = files["BIG.evtx"]["records"], files["netstat.txt"]["rows"]
    assert re.search(rf"round 1  bare evtx loop BIG\.evtx .*\| {big:,} rows", out), out
    assert re.search(rf"round 1  parse BIG\.evtx .*\| {big:,} rows", out), out
    assert re.search(rf"round 1  parse netstat\.txt .*\| {netstat:,} rows", out), out
    assert "FAILED" not in out and "warning" not in out
    table = out[out.index("\nrow "):]
    assert re.search(r"^1 .*parse BIG\.evtx vs bare evtx loop +\d+\.\d\dx \(.*(yes|no) *$", table, re.M), table
    assert re.search(r"^5 .*parse netstat\.txt.* [\d.,]+k? rows/s, \d+ MB .*(yes|no) *$", table, re.M), table
    assert not re.search(r"^[2-467] ", table, re.M)


def test_builder_refuses_a_folder_inside_the_repository(corpus_dir: Path) -> None:
    proc = subprocess.run([sys.executable, str(BENCH / "build_big_inputs.py"), str(REPO / "bench-out"),
                           "--scale", "0.001"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "inside the repository" in proc.stderr
    assert not (REPO / "bench-out").exists()
