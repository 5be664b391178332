"""Case loading: inventory completeness, failure isolation, provenance."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from analyzer import load_case, sources, table
from analyzer.sources.base import Source


class _Boom(Source):
    """A test source that claims files starting with BOOM and fails midway."""

    name = "test-boom"
    kind = "boom"

    def sniff(self, head: bytes, name: str) -> int:
        return 100 if head.startswith(b"BOOM") else 0

    def parse(self, ctx):
        yield {"kind": "event", "event_id": 1, "locator": "line=1", "host": "H1"}
        ctx.warn("line 2 is unreadable", "line=2")
        yield {"kind": "event", "event_id": 2, "locator": "line=3", "host": "H1"}
        if b"FAIL" in ctx.fs_path.read_bytes():
            raise ValueError("corrupt at offset 0x40")


@pytest.fixture(scope="module", autouse=True)
def _register_boom():
    if "test-boom" not in {s.name for s in sources.registered()}:
        sources.register(_Boom)


def _make_tree(root: Path) -> None:
    """A case with nested folders and archives (an archive inside an archive)."""
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "one.log").write_bytes(b"BOOM ok")
    (root / "a" / "two.txt").write_bytes(b"BOOM FAIL")
    (root / "empty.dat").write_bytes(b"")
    (root / "x.bin").write_bytes(bytes(range(256)))
    with zipfile.ZipFile(root / "inner.zip", "w") as zf:
        zf.writestr("deep/three.log", b"BOOM nested")
        zf.writestr("deep/four.txt", b"plain words\n")
    with zipfile.ZipFile(root / "outer.zip", "w") as zf:
        zf.write(root / "inner.zip", "sub/inner.zip")


def test_every_file_exactly_once(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    case = load_case(tmp_path)
    paths = [e.path for e in case.inventory]
    assert len(paths) == len(set(paths))
    assert sorted(paths) == sorted([
        "a/b/one.log", "a/two.txt", "empty.dat", "x.bin", "inner.zip",
        "inner.zip!deep/three.log", "inner.zip!deep/four.txt", "outer.zip",
        "outer.zip!sub/inner.zip", "outer.zip!sub/inner.zip!deep/three.log",
        "outer.zip!sub/inner.zip!deep/four.txt"])
    inv = {e.path: e for e in case.inventory}
    assert inv["empty.dat"].status == "skipped" and inv["empty.dat"].detail == "empty file"
    assert inv["a/b/one.log"].status == "partial" and inv["a/b/one.log"].rows == 2
    assert "line=2" in inv["a/b/one.log"].warnings[0]
    # A parser that raises keeps its rows, is marked partial and names the error.
    assert inv["a/two.txt"].status == "partial"
    assert "corrupt at offset 0x40" in inv["a/two.txt"].detail
    assert all(len(e.sha256 or "") == 64 for e in case.inventory if e.status != "rejected")


def test_rows_carry_provenance(tmp_path: Path) -> None:
    _make_tree(tmp_path)
    case = load_case(tmp_path)
    table.validate(case.table)
    nested = case.table[case.table["path"] == "outer.zip!sub/inner.zip!deep/three.log"]
    assert list(nested["locator"]) == ["line=1", "line=3"]
    assert set(nested["source"]) == {"test-boom"}
    assert case.hosts == ["H1"]


def test_single_file_case_and_input_untouched(tmp_path: Path) -> None:
    f = tmp_path / "one.log"
    f.write_bytes(b"BOOM single")
    before = f.stat().st_mtime_ns, f.read_bytes()
    case = load_case(f)
    assert [e.path for e in case.inventory] == ["one.log"]
    assert (f.stat().st_mtime_ns, f.read_bytes()) == before


def test_missing_input_raises_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_case(tmp_path / "nope")
