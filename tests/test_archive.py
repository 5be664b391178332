"""Archive safety: hostile members are rejected with a reason, nothing is
written outside the work directory, limits hold, nested archives are read."""
from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import re
import shutil
import struct
import tarfile
import warnings
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
    entry = c.inventory[0]
    assert entry.status in ("failed", "partial") and entry.detail
    # the member stored before the cut is recovered from its local header
    assert [(e.path, e.size) for e in c.inventory[1:]] == [("broken.zip!a.txt", 1000)]


# ---------------------------------------------------------------------------
# Review findings: ratio on compressed streams, cab bombs, broken archives,
# inventory exactly once, reasons, limits
# ---------------------------------------------------------------------------

class _Zeros(io.RawIOBase):
    """``n`` zero bytes, streamed (a bomb is built without holding it)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def _tar_gz(path: Path, members: list[tuple[str, int | bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, int):
                info.size = data
                tf.addfile(info, io.BufferedReader(_Zeros(data)))
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return path


def _files_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_tar_gz_bomb_is_stopped_by_the_ratio(tmp_path: Path) -> None:
    """H1: 64 MiB of zeros in a ~64 KiB tar.gz (1000:1) was extracted whole."""
    tpath = _tar_gz(tmp_path / "bomb.tar.gz", [("first.txt", b"hello\n" * 100),
                                              ("zeros.bin", 64 << 20),
                                              ("after.txt", b"later\n")])
    assert tpath.stat().st_size < (1 << 20)
    dest = tmp_path / "out"
    ex = extract(tpath, "gzip", dest, Budget(Limits()))
    assert ex.kind == "tar+gzip"
    by = {m.name: m for m in ex.members}
    assert by["first.txt"].status == "extracted"
    assert by["zeros.bin"].status == "rejected" and "ratio" in by["zeros.bin"].reason
    assert "after.txt" not in by  # the rest of the stream is not inflated
    assert ex.error and "ratio" in ex.error
    assert _files_bytes(dest) < (2 << 20)
    assert sorted(p.name for p in dest.rglob("*") if p.is_file()) == ["first.txt"]


def test_tar_xz_bomb_and_inventory(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    _tar_gz(case / "bomb.tar.xz", [("zeros.bin", 48 << 20)], mode="w:xz")
    c = load_case(case, limits=Limits(max_ratio=50))
    inv = {e.path: e for e in c.inventory}
    assert inv["bomb.tar.xz"].status in ("partial", "failed")
    assert inv["bomb.tar.xz!zeros.bin"].status == "rejected"
    assert "ratio" in inv["bomb.tar.xz!zeros.bin"].detail


def test_bare_gz_bomb_stops_early(tmp_path: Path) -> None:
    """A single compressed file is measured against what it consumed, so the
    bomb is stopped after about ratio_min_bytes, not after max_ratio x file."""
    gz = tmp_path / "zeros.bin.gz"
    with gzip.open(gz, "wb") as out:
        shutil.copyfileobj(io.BufferedReader(_Zeros(64 << 20)), out)
    ex = extract(gz, "gzip", tmp_path / "out", Budget(Limits()))
    (m,) = ex.members
    assert m.status == "rejected" and "ratio" in m.reason
    written = int(re.search(r"\((\d+) bytes from", m.reason).group(1))
    assert written < (4 << 20), m.reason
    assert _files_bytes(tmp_path / "out") == 0


def _cab_bytes(members: dict[str, bytes], compress: bool = True) -> bytes:
    import cabarchive

    arc = cabarchive.CabArchive()
    for name, data in members.items():
        arc[name] = cabarchive.CabFile(data)
    return arc.save(compress=compress)


def test_cab_bomb_refused_before_inflating(tmp_path: Path, monkeypatch) -> None:
    """H2: cabarchive inflates everything in memory: the headers decide first."""
    import cabarchive

    cab = tmp_path / "bomb.cab"
    cab.write_bytes(_cab_bytes({"zeros.bin": bytes(24 << 20), "ok.txt": b"fine"}))
    assert cab.stat().st_size < (1 << 20)

    def no_parse(self, buf):  # pragma: no cover - the test fails if reached
        raise AssertionError("cabarchive.parse called on a cabinet bomb")

    monkeypatch.setattr(cabarchive.CabArchive, "parse", no_parse)
    dest = tmp_path / "out"
    ex = extract(cab, "cab", dest, Budget(Limits()))
    assert ex.error and "ratio" in ex.error and "not extracted" in ex.error
    assert ex.members == [] and _files_bytes(dest) == 0
    # the case-wide budget is checked from the headers too
    ex = extract(cab, "cab", dest, Budget(Limits(max_total_bytes=1 << 20, max_ratio=1e6)))
    assert ex.error and "case size limit" in ex.error


def test_cab_sizes_from_headers_match_contents(tmp_path: Path) -> None:
    data = {"a.txt": b"tasklist\r\n" * 5000, "b.bin": os.urandom(70000), "c.txt": b"x"}
    for compress in (False, True):
        cab = tmp_path / f"c{compress}.cab"
        cab.write_bytes(_cab_bytes(data, compress))
        lay = archive._cab_layout(cab)
        assert lay.content == sum(len(v) for v in data.values())
        assert lay.inflated == lay.content
        assert [f[0] for f in lay.files] == sorted(data)
        ex = extract(cab, "cab", tmp_path / f"o{compress}", Budget(Limits()))
        assert ex.error is None
        assert {m.name: m.status for m in ex.members} == dict.fromkeys(data, "extracted")


def test_cab_per_member_ratio_applies(tmp_path: Path) -> None:
    """A member's compressed size is the CFDATA bytes holding it, so the
    per-member check runs even when the cabinet as a whole is harmless."""
    cab = tmp_path / "c.cab"
    cab.write_bytes(_cab_bytes({"zeros.bin": bytes(3 << 20), "rand.bin": os.urandom(3 << 20)}))
    ex = extract(cab, "cab", tmp_path / "o", Budget(Limits(max_ratio=50)))
    assert ex.error is None
    by = {m.name: m for m in ex.members}
    assert by["zeros.bin"].status == "rejected" and "ratio" in by["zeros.bin"].reason
    assert by["rand.bin"].status == "extracted"


def test_cab_repeated_name_is_listed(tmp_path: Path) -> None:
    """cabarchive keeps the last file of a name; the other copy is listed."""
    cab = bytearray(_cab_bytes({"a.txt": b"first\r\n", "b.txt": b"second\r\n"}, compress=False))
    i = cab.find(b"b.txt\x00")
    cab[i:i + 5] = b"a.txt"
    (tmp_path / "d.cab").write_bytes(bytes(cab))
    ex = extract(tmp_path / "d.cab", "cab", tmp_path / "o", Budget(Limits()))
    assert sorted((m.name, m.status) for m in ex.members) == [
        ("a.txt", "extracted"), ("a.txt (copy 2)", "rejected")]


def test_truncated_tar_gz_keeps_what_was_read(tmp_path: Path) -> None:
    """M3: the member extracted before the break stays extracted, the one cut
    mid-way is rejected, and the inventory agrees with the work directory."""
    full = _tar_gz(tmp_path / "full.tar.gz", [("first.txt", b"netstat\r\n" * 50),
                                               ("second.bin", os.urandom(400_000)),
                                               ("third.txt", b"x")])
    case = tmp_path / "case"
    case.mkdir()
    raw = full.read_bytes()
    (case / "cut.tar.gz").write_bytes(raw[: len(raw) // 2])
    ex = extract(case / "cut.tar.gz", "gzip", tmp_path / "out", Budget(Limits()))
    by = {m.name: m for m in ex.members}
    assert by["first.txt"].status == "extracted"
    assert by["second.bin"].status == "rejected" and "EOFError" in by["second.bin"].reason
    assert ex.error
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == ["first.txt"]

    c = load_case(case)
    inv = {e.path: e for e in c.inventory}
    assert len(inv) == len(c.inventory)
    top = inv["cut.tar.gz"]
    assert top.status == "partial"
    assert "1 member(s) extracted" in top.detail and "error" in top.detail
    assert "cut.tar.gz!first.txt" in inv
    assert inv["cut.tar.gz!second.bin"].status == "rejected"


def test_truncated_single_stream_keeps_the_prefix(tmp_path: Path) -> None:
    text = b"".join(b"line %06d of a log\r\n" % i for i in range(100_000))
    for kind, suffix, mod in (("gzip", ".gz", gzip), ("bzip2", ".bz2", bz2), ("xz", ".xz", lzma)):
        packed = mod.compress(text)
        cut = tmp_path / f"app.log{suffix}"
        cut.write_bytes(packed[: len(packed) * 2 // 3])
        dest = tmp_path / f"out-{kind}"
        ex = extract(cut, kind, dest, Budget(Limits()))
        (m,) = ex.members
        assert m.status == "extracted" and m.name == "app.log", (kind, m)
        got = (dest / "app.log").read_bytes()
        assert 0 < len(got) < len(text) and text.startswith(got), kind
        assert m.size == len(got)
        assert ex.error and ex.error.startswith(f"truncated compressed stream after {len(got)} bytes")


def _7z_corrupt(path: Path) -> Path:
    import py7zr

    with py7zr.SevenZipFile(path, "w") as z:
        z.writestr(b"hello first\r\n", "one.txt")
        z.writestr(os.urandom(300_000), "two.bin")
        z.writestr(b"third\r\n", "three.txt")
    raw = bytearray(path.read_bytes())
    for k in range(2000, 200_000, 7):
        raw[k] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


def test_7z_corrupt_data_keeps_members_and_no_staging(tmp_path: Path) -> None:
    """M3/M4: a 7z breaking half-way keeps what verified, lists the rest as
    rejected, and its staging directory never shows in the inventory."""
    case = tmp_path / "case"
    case.mkdir()
    _7z_corrupt(case / "broken.7z")
    dest = tmp_path / "w" / "x1"
    ex = extract(case / "broken.7z", "7z", dest, Budget(Limits()))
    by = {m.name: m for m in ex.members}
    assert ex.error
    assert by["one.txt"].status == "extracted"
    assert by["two.bin"].status == "rejected" and by["two.bin"].reason.startswith("cannot extract")
    assert set(by) == {"one.txt", "two.bin", "three.txt"}
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["x1"], "staging left behind"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["one.txt"]

    c = load_case(case)
    paths = [e.path for e in c.inventory]
    assert len(paths) == len(set(paths))
    assert not any("staging" in p for p in paths), paths
    assert "broken.7z!one.txt" in paths
    assert c.inventory[0].status == "partial" and "1 member(s) extracted" in c.inventory[0].detail


def test_7z_member_named_like_the_staging_dir(tmp_path: Path) -> None:
    import py7zr

    case = tmp_path / "case"
    case.mkdir()
    with py7zr.SevenZipFile(case / "s.7z", "w") as z:
        z.writestr(b"staged?\r\n", ".7z-staging/x.txt")
        z.writestr(b"plain\r\n", "y.txt")
    c = load_case(case)
    inv = {e.path: e for e in c.inventory}
    assert "s.7z!.7z-staging/x.txt" in inv and "s.7z!y.txt" in inv
    assert inv["s.7z"].status == "parsed"


def test_7z_repeated_name_is_listed_not_dropped(tmp_path: Path) -> None:
    import py7zr

    z7 = tmp_path / "dup.7z"
    with py7zr.SevenZipFile(z7, "w") as z:
        z.writestr(b"first", "a.txt")
        z.writestr(b"second!", "a.txt")
    dest = tmp_path / "out"
    ex = extract(z7, "7z", dest, Budget(Limits()))
    assert sorted((m.name, m.status) for m in ex.members) == [("a.txt", "extracted"),
                                                              ("a.txt (copy 2)", "rejected")]
    assert (dest / "a.txt").read_bytes() == b"first"
    rej = next(m for m in ex.members if m.status == "rejected")
    assert "duplicate member name" in rej.reason


def test_duplicate_zip_member_listed_once_each(tmp_path: Path) -> None:
    """4: the second copy of a name gets its own inventory path."""
    case = tmp_path / "case"
    case.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(case / "dup.zip", "w") as zf:
            zf.writestr("a.txt", b"first copy\r\n")
            zf.writestr("a.txt", b"second copy\r\n")
            zf.writestr("a/b/../c", b"climbs\r\n")
            zf.writestr("a/c", b"real\r\n")
    c = load_case(case)
    paths = [e.path for e in c.inventory]
    assert len(paths) == len(set(paths)), paths
    inv = {e.path: e for e in c.inventory}
    assert inv["dup.zip!a.txt"].status != "rejected"
    assert inv["dup.zip!a.txt (copy 2)"].status == "rejected"
    assert "duplicate member name" in inv["dup.zip!a.txt (copy 2)"].detail
    assert inv["dup.zip!a/b/../c"].status == "rejected"  # shown raw, not as a/c
    assert inv["dup.zip!a/c"].status != "rejected"
    assert "2 rejected" in inv["dup.zip"].detail


def test_display_join_keeps_names_raw() -> None:
    assert archive.display_join("x.zip", "a/b/../c") == "x.zip!a/b/../c"
    assert archive.display_join("", "a.txt") == "a.txt"


def test_reasons_name_the_error_and_hide_the_work_dir(tmp_path: Path) -> None:
    """5: a bare EOFError says so; a file/dir clash does not show our path."""
    raw = bytearray(_zip_bytes_stored({"a.txt": b"x" * 100}))
    cd = raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, cd + 20, 1 << 20)  # compressed size
    struct.pack_into("<I", raw, cd + 24, 1 << 20)  # uncompressed size
    z = tmp_path / "short.zip"
    z.write_bytes(bytes(raw))
    ex = extract(z, "zip", tmp_path / "o1", Budget(Limits()))
    (m,) = ex.members
    assert m.status == "rejected" and m.reason.startswith("cannot extract: EOFError"), m.reason

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clash = _zip(tmp_path / "clash.zip", {"a": b"file", "a/b": b"under a file", "c/d": b"x",
                                              "c": b"file over a directory"})
    dest = tmp_path / "o2"
    ex = extract(clash, "zip", dest, Budget(Limits()))
    by = {m.name: m for m in ex.members}
    assert by["a"].status == "extracted" and by["c/d"].status == "extracted"
    for name in ("a/b", "c"):
        assert by[name].status == "rejected" and "conflicts" in by[name].reason
        assert str(tmp_path) not in by[name].reason


def _zip_bytes_stored(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("field_,value", [
    ("max_total_bytes", 0), ("max_entries", -1), ("max_ratio", 0.0), ("max_depth", 0),
    ("ratio_min_bytes", -5), ("max_ratio", float("nan")), ("max_entries", "10"),
])
def test_limits_must_be_positive(field_: str, value) -> None:
    with pytest.raises(ValueError, match=field_):
        Limits(**{field_: value})
    lim = Limits()
    with pytest.raises(ValueError, match=field_):
        setattr(lim, field_, value)
    assert Limits(max_ratio=1.5, max_depth=1).max_depth == 1
