"""Disk free-space outputs -> volume_space rows."""
from __future__ import annotations

import pytest

from analyzer import sources
from analyzer.sources.diskfree import to_int
from analyzer.textio import read_text

from ._texthelp import datas, encode_variant, fixture, run

FIELDS = ("tool", "volume", "free_bytes", "total_bytes", "percent_used")


def _rows(name: str) -> list[tuple]:
    df, ctx = run("diskfree", fixture(name))
    assert not ctx.warnings, ctx.warnings
    assert set(df["kind"]) == {"volume_space"}
    return [tuple(x[k] for k in FIELDS) for x in datas(df)]


def test_fsutil_classic_with_command_lines():
    assert _rows("diskfree_fsutil.txt") == [
        ("fsutil", "C:", 2147012608, 40015757312, 94),
        ("fsutil", "D:", 524288000, 146793730048, 99)]


def test_fsutil_newer_wording_with_separators_and_suffixes():
    df, _ = run("diskfree", fixture("diskfree_fsutil_2019.txt"))
    d = datas(df)[0]
    assert (d["volume"], d["free_bytes"], d["total_bytes"]) == ("E:", 58128412672, 255465615360)
    assert d["used_bytes"] == 195971182592 and d["reserved_bytes"] == 1366020096
    assert d["avail_free_bytes"] == 58128412672 and d["percent_used"] == 77


def test_wmic_utf16_double_cr_and_empty_drive():
    assert _rows("diskfree_wmic_utf16.txt") == [
        ("wmic", "C:", 4294967296, 42947571712, 89),
        ("wmic", "D:", 1048576000, 214748364800, 99),
        ("wmic", "E:", None, None, None)]
    d = datas(run("diskfree", fixture("diskfree_wmic_utf16.txt"))[0])
    assert d[1]["volume_name"] == "Exchange Queue"


def test_wmic_columns_in_any_order(tmp_path):
    p = tmp_path / "w.txt"
    p.write_text("DeviceID  DriveType  FileSystem  FreeSpace      Size\n"
                 "C:        3          NTFS        107374182400   256060514304\n", encoding="utf-8")
    df, _ = run("diskfree", p)
    d = datas(df)[0]
    assert (d["volume"], d["free_bytes"], d["total_bytes"], d["file_system"]) == (
        "C:", 107374182400, 256060514304, "NTFS")


@pytest.mark.parametrize("name", ["diskfree_dir.txt", "diskfree_dir_german.txt"])
def test_dir_summary(name):
    assert _rows(name) == [("dir", "D:", 524288000, None, None)]


def test_powershell_forms():
    assert _rows("diskfree_win32_logicaldisk.txt") == [
        ("get-wmiobject", "C:", 4294967296, 42947571712, 89),
        ("get-wmiobject", "D:", 1048576000, 214748364800, 99)]
    df, _ = run("diskfree", fixture("diskfree_psdrive_utf16.txt"))
    d = datas(df)
    assert [x["volume"] for x in d] == ["C:", "D:"]  # Env: and HKLM: are not disks
    assert d[1]["approximate"] is True and d[1]["free_bytes"] == round(0.98 * 1024 ** 3)
    assert d[1]["percent_used"] == 99


def test_volume_from_the_file_name_only_when_unambiguous(tmp_path):
    block = "Total # of free bytes        : 212336640\r\nTotal # of bytes             : 21467942912\r\n" \
            "Total # of avail free bytes  : 212336640\r\n"
    p = tmp_path / "diskfree-D.txt"
    p.write_text(block, encoding="ascii")
    d = datas(run("diskfree", p)[0])
    assert (d[0]["volume"], d[0]["volume_from"], d[0]["percent_used"]) == ("D:", "file name", 99)
    p.write_text(block + "\r\n" + block, encoding="ascii")
    d = datas(run("diskfree", p)[0])
    assert [x["volume"] for x in d] == [None, None]
    p2 = tmp_path / "fsutil.txt"
    p2.write_text(block, encoding="ascii")
    assert datas(run("diskfree", p2)[0])[0]["volume"] is None


@pytest.mark.parametrize("variant", ["utf8", "utf8-bom", "utf16", "oem", "lf"])
def test_encodings(tmp_path, variant):
    for name, n in (("diskfree_fsutil.txt", 2), ("diskfree_dir_german.txt", 1)):
        p = tmp_path / "out.txt"
        p.write_bytes(encode_variant(read_text(fixture(name)), variant))
        assert sources.sniff(p.read_bytes(), "x.txt")[0].name == "diskfree"
        df, ctx = run("diskfree", p)
        assert len(df) == n and not ctx.warnings


def test_truncated_last_line(tmp_path):
    p = tmp_path / "out.txt"
    p.write_bytes(encode_variant(read_text(fixture("diskfree_fsutil.txt")), "truncated"))
    df, ctx = run("diskfree", p)
    assert len(df) == 2 and df["parse_status"].tolist() == ["ok", "partial"]
    assert [w.locator for w in ctx.warnings] == ["line=9"]


def test_nothing_found_is_a_warning(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text(" Volume in drive C is OS\n Directory of C:\\\n\n01/01/2009  10:00 AM  <DIR>  x\n")
    df, ctx = run("diskfree", p)
    assert len(df) == 0 and ctx.warnings[0].message == "no free-space figures found"


def test_to_int():
    assert to_int("58,128,412,672 ( 54.1 GB)") == 58128412672
    assert to_int("524.288.000") == 524288000
    assert to_int("182\u00a0431\u00a0744\u00a0000") == 182431744000
    assert to_int("") is None and to_int("n/a") is None
