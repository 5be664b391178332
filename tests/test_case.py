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


def test_non_utf8_and_control_character_names_are_escaped(tmp_path: Path) -> None:
    """A tar made with latin-1 names, and a name with an ESC sequence: the
    inventory shows escapes, the JSON report is valid UTF-8, nothing raises."""
    import io
    import json
    import tarfile

    from analyzer.report import analyze, validate_report

    data = b"hello\r\n"
    with tarfile.open(tmp_path / "n.tar", "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tf:
        for name in ("netst\xe4t.txt", "ok\x1b]0;PWNED\x07.txt"):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    case = load_case(tmp_path)
    paths = [e.path for e in case.inventory]
    assert "n.tar!netst\\xe4t.txt" in paths
    assert "n.tar!ok\\x1b]0;PWNED\\x07.txt" in paths
    report = analyze(case).to_dict()
    validate_report(report)
    json.dumps(report, ensure_ascii=False).encode("utf-8")


def test_symlinked_input_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.log"
    target.write_bytes(b"BOOM linked")
    link = tmp_path / "link.log"
    link.symlink_to(target)
    case = load_case(link)
    (entry,) = case.inventory
    assert entry.path == "link.log" and entry.source == "test-boom" and entry.rows == 2


def test_work_dir_inside_the_case_is_not_part_of_the_case(tmp_path: Path) -> None:
    import zipfile

    (tmp_path / "a.log").write_bytes(b"BOOM a")
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as zf:
        zf.writestr("inner.log", b"BOOM z")
    work = tmp_path / "work"
    work.mkdir()
    (work / "leftover.log").write_bytes(b"BOOM from an earlier run")
    case = load_case(tmp_path, work_root=work)
    assert sorted(e.path for e in case.inventory) == ["a.log", "z.zip", "z.zip!inner.log"]


def test_unlistable_folder_is_an_inventory_entry(tmp_path: Path, monkeypatch) -> None:
    import os as _os

    (tmp_path / "a.log").write_bytes(b"BOOM a")
    (tmp_path / "secret").mkdir()
    real_walk = _os.walk

    def walk(top, *args, **kwargs):
        onerror = kwargs.get("onerror")
        for item in real_walk(top, *args, **kwargs):
            if Path(item[0]).name == "secret":
                onerror(PermissionError(13, "Permission denied", str(item[0])))
                continue
            yield item

    monkeypatch.setattr("analyzer.case.os.walk", walk)
    inv = {e.path: e for e in load_case(tmp_path).inventory}
    assert inv["secret/"].status == "failed" and "Permission denied" in inv["secret/"].detail


def test_damaged_file_with_no_rows_is_failed_not_partial(tmp_path: Path) -> None:
    from analyzer.synth.evt import EvtRecord, evt_bytes

    raw = evt_bytes([EvtRecord(1, "S", 1_000_000_000)])
    (tmp_path / "x.evt").write_bytes(raw[:0x30] + b"\xff" * 64)
    (entry,) = load_case(tmp_path).inventory
    assert entry.rows == 0 and entry.status == "failed", (entry.status, entry.detail)


def test_large_files_are_hashed_beside_their_parse(monkeypatch) -> None:
    """A file from ``DIGEST_APART_BYTES`` on is hashed by a thread while it
    parses; the inventory's digests are the files' sha256 either way."""
    import hashlib

    from analyzer import case as case_module
    from test_samples import SAMPLES

    case_dir = SAMPLES / "smtp-mailbox-stuck-evtx" / "case"
    inline = load_case(case_dir)
    monkeypatch.setattr(case_module, "DIGEST_APART_BYTES", 1)
    started: list[str] = []
    real_init = case_module._Digest.__init__

    def init(self, path):
        started.append(str(path))
        real_init(self, path)

    monkeypatch.setattr(case_module._Digest, "__init__", init)
    apart = load_case(case_dir)
    assert len(started) == len(apart.inventory)  # every file hashed on a thread
    assert [e.to_dict() for e in apart.inventory] == [e.to_dict() for e in inline.inventory]
    for e in apart.inventory:
        assert e.sha256 == hashlib.sha256((case_dir / e.path).read_bytes()).hexdigest()
    assert len(apart.inventory) >= 3


def test_knowledge_files_read_the_same_with_either_yaml_parser() -> None:
    """The knowledge loader takes LibYAML's parser when there is one: every
    knowledge file must give what the pure-Python safe loader gives."""
    from importlib import resources

    import yaml

    from analyzer import knowledge

    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without LibYAML: the pure-Python loader is the only one")
    assert knowledge._LOADER is yaml.CSafeLoader
    files = sorted(p for p in resources.files("analyzer.knowledge").iterdir() if p.name.endswith(".yaml"))
    assert len(files) >= 10
    for f in files:
        text = f.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=yaml.CSafeLoader) == yaml.load(text, Loader=yaml.SafeLoader), f.name


def test_what_the_checks_share_is_released_after_them(monkeypatch) -> None:
    """The per-host split and the toolkit hosts are shared by the checks of
    one run and dropped after it (a host refers back to its case)."""
    from analyzer.checks.toolkit import host as host_module
    from analyzer.report import run_checks
    from test_samples import SAMPLES

    case = load_case(SAMPLES / "smtp-mailbox-stuck-evtx" / "case")
    seen: list[int] = []
    original = host_module.Host.of.__func__

    def spy(cls, c, part):
        seen.append(len(c.memo))
        return original(cls, c, part)

    monkeypatch.setattr(host_module.Host, "of", classmethod(spy))
    run_checks(case)
    assert seen and max(seen) > 0  # shared while the checks ran
    assert case.memo == {}
