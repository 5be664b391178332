"""Archive safety: hostile members are rejected with a reason, nothing is
written outside the work directory, limits hold, nested archives are read."""
from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from analyzer import archive, load_case
from analyzer.archive import Budget, Limits, detect_archive, extract, safe_member_name


def _zip(path: Path, members: dict[str, bytes], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data,
                        compress_type=zipfile.ZIP_DEFLATED)
        if symlink:
            info = zipfile.ZipInfo("link", date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, symlink)
    return path


def _snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("name,reason", [
    ("../evil.txt", "path traversal"),
    ("a/../../evil.txt", "path traversal"),
    ("/etc/evil", "absolute path"),
    ("C:\\Windows\\evil.dll", "drive letter"),
    ("c:evil", "drive letter"),
    ("..\\..\\evil.txt", "path traversal"),
    ("", "empty member name"),
])
def test_unsafe_names_rejected(name: str, reason: str) -> None:
    rel, why = safe_member_name(name)
    assert rel is None and reason in why


def test_safe_names_normalized() -> None:
    assert safe_member_name("logs\\System.evtx") == ("logs/System.evtx", None)
    assert safe_member_name("./a//b.txt") == ("a/b.txt", None)


def test_magic_detection() -> None:
    assert detect_archive(b"PK\x03\x04rest") == "zip"
    assert detect_archive(b"7z\xbc\xaf\x27\x1c\x00") == "7z"
    assert detect_archive(b"MSCF\x00\x00") == "cab"
    assert detect_archive(b"\x1f\x8b\x08") == "gzip"
    assert detect_archive(b"ElfFile\x00") is None


def test_hostile_zip_case(tmp_path: Path) -> None:
    """The issue's acceptance case: unknown binary, a text file and a hostile
    zip; the run writes nothing outside its work area and lists everything."""
    case = tmp_path / "case"
    case.mkdir()
    (case / "blob.bin").write_bytes(bytes(range(256)) * 8)
    (case / "notes.txt").write_text("customer notes\r\nnothing to parse here\r\n")
    _zip(case / "hostile.zip", {
        "../evil.txt": b"escape", "/abs/evil.txt": b"abs", "C:/evil.txt": b"drive",
        "bomb.bin": b"\x00" * (30 << 20), "ok/readme.txt": b"fine",
    }, symlink="/etc/passwd")
    work = tmp_path / "work"
    work.mkdir()
    before = _snapshot(tmp_path)
    c = load_case(case, work_root=work)
    after = _snapshot(tmp_path)
    assert after == before, "nothing may be written outside the (cleaned) work area"
    assert list(work.iterdir()) == []
    inv = {e.path: e for e in c.inventory}
    assert inv["blob.bin"].status == "skipped" and inv["blob.bin"].kind == "binary"
    assert inv["notes.txt"].status == "skipped" and inv["notes.txt"].kind == "text"
    assert inv["hostile.zip"].status == "partial" and inv["hostile.zip"].kind == "zip"
    assert "traversal" in inv["hostile.zip!../evil.txt"].detail
    assert inv["hostile.zip!../evil.txt"].status == "rejected"
    assert "absolute" in inv["hostile.zip!/abs/evil.txt"].detail
    assert "drive letter" in inv["hostile.zip!C:/evil.txt"].detail
    assert "ratio" in inv["hostile.zip!bomb.bin"].detail
    assert "symbolic link" in inv["hostile.zip!link"].detail
    assert inv["hostile.zip!ok/readme.txt"].status == "skipped"
    assert not (tmp_path / "evil.txt").exists()
    assert len(c.inventory) == len(inv) == 9


def test_tar_links_and_devices_rejected(tmp_path: Path) -> None:
    tpath = tmp_path / "case.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        data = b"hello"
        ti = tarfile.TarInfo("dir/file.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
        sym = tarfile.TarInfo("dir/sym")
        sym.type, sym.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tf.addfile(sym)
        hard = tarfile.TarInfo("dir/hard")
        hard.type, hard.linkname = tarfile.LNKTYPE, "/etc/shadow"
        tf.addfile(hard)
        dev = tarfile.TarInfo("dir/dev")
        dev.type = tarfile.CHRTYPE
        tf.addfile(dev)
    dest = tmp_path / "out"
    ex = extract(tpath, "gzip", dest, Budget(Limits()))
    assert ex.kind == "tar+gzip"
    by = {m.name: m for m in ex.members}
    assert by["dir/file.txt"].status == "extracted"
    assert "symbolic link" in by["dir/sym"].reason
    assert "hard link" in by["dir/hard"].reason
    assert "special file" in by["dir/dev"].reason
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()) == ["file.txt"]


def test_nested_archives_and_depth_limit(tmp_path: Path) -> None:
    inner = _zip(tmp_path / "inner.zip", {"deep/note.txt": b"x"})
    middle = _zip(tmp_path / "middle.zip", {"inner.zip": inner.read_bytes()})
    case = tmp_path / "case"
    case.mkdir()
    _zip(case / "outer.zip", {"sub/middle.zip": middle.read_bytes()})
    c = load_case(case)
    paths = [e.path for e in c.inventory]
    assert "outer.zip!sub/middle.zip!inner.zip!deep/note.txt" in paths
    c2 = load_case(case, limits=Limits(max_depth=2))
    inv = {e.path: e for e in c2.inventory}
    assert inv["outer.zip!sub/middle.zip!inner.zip"].status == "rejected"
    assert "nesting" in inv["outer.zip!sub/middle.zip!inner.zip"].detail


def test_entry_and_size_limits(tmp_path: Path) -> None:
    z = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"abc" for i in range(10)})
    ex = extract(z, "zip", tmp_path / "o1", Budget(Limits(max_entries=4)))
    assert sum(m.status == "extracted" for m in ex.members) == 4
    assert all("entry count" in m.reason for m in ex.members if m.status == "rejected")
    ex = extract(z, "zip", tmp_path / "o2", Budget(Limits(max_total_bytes=10)))
    assert sum(m.status == "extracted" for m in ex.members) == 3


def test_lying_header_is_caught_while_writing(tmp_path: Path) -> None:
    """A bomb whose header under-declares its size is stopped by the streamed ratio check."""
    budget = Budget(Limits(max_ratio=10, ratio_min_bytes=1024))
    src = io.BytesIO(b"\x00" * (5 << 20))
    with pytest.raises(archive.LimitExceeded):
        archive._copy_limited(src, tmp_path / "x", None, 1000, budget)
    assert not (tmp_path / "x").exists()


def test_7z_and_cab(tmp_path: Path) -> None:
    import cabarchive
    import py7zr

    case = tmp_path / "case"
    case.mkdir()
    with py7zr.SevenZipFile(case / "logs.7z", "w") as z:
        z.writestr(b"netstat output\r\n", "inner/a.txt")
    arc = cabarchive.CabArchive()
    arc["b.txt"] = cabarchive.CabFile(b"tasklist\r\n")
    (case / "more.cab").write_bytes(arc.save())
    c = load_case(case)
    inv = {e.path: e for e in c.inventory}
    assert inv["logs.7z"].kind == "7z" and inv["logs.7z"].status == "parsed"
    assert "logs.7z!inner/a.txt" in inv
    assert inv["more.cab"].kind == "cab" and "more.cab!b.txt" in inv


def test_corrupt_archive_is_reported_not_raised(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    good = _zip(tmp_path / "g.zip", {"a.txt": b"a" * 1000})
    (case / "broken.zip").write_bytes(good.read_bytes()[:60])
    c = load_case(case)
    (entry,) = c.inventory
    assert entry.status in ("failed", "partial") and entry.detail
