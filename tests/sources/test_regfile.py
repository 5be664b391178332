""".reg exports: both versions, both encodings, deletions, KB-mangled text."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analyzer.case import load_case
from analyzer.registry import RegistryView
from analyzer.sources import Options, ParseContext, get
from analyzer.table import rows_to_frame, validate

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "reg"


def parse(path: Path) -> tuple[pd.DataFrame, ParseContext]:
    ctx = ParseContext(path=path.name, fs_path=path, options=Options())
    rows = [dict(r, source="regfile", path=ctx.path) for r in get("regfile").parse(ctx)]
    df = rows_to_frame(rows)
    validate(df)
    return df, ctx


def write(tmp_path: Path, text: str, encoding: str = "ascii", bom: bytes = b"", name: str = "x.reg") -> Path:
    p = tmp_path / name
    p.write_bytes(bom + text.replace("\n", "\r\n").encode(encoding))
    return p


def test_sniff():
    src = get("regfile")
    for f in FIX.glob("*.reg"):
        assert src.sniff(f.read_bytes()[:65536], "upload.txt") >= 90, f
    assert src.sniff(b"[HKEY_LOCAL_MACHINE\\SOFTWARE\\X]\r\n\"a\"=\"b\"\r\n", "snippet.txt") > 0
    assert src.sniff(b"hello world\r\n", "x.reg") == 0
    assert src.sniff(b"regf\x01\x00\x00\x00", "x.reg") == 0


def test_v5_utf16_export(tmp_path):
    path = FIX / "exmpls_v5_utf16.reg"
    assert path.read_bytes()[:2] == b"\xff\xfe" and b"\r\x00\n\x00" in path.read_bytes()
    df, ctx = parse(path)
    assert not ctx.warnings
    assert df["ts"].isna().all() and df["ts_source"].isna().all()
    reg = RegistryView(df)
    d0 = reg.get(r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\ExMPLS", "DATA0")
    assert (d0.type, d0.value) == ("REG_BINARY", "01000000d0c89ddf")
    assert d0.locator == r"line=5; key=HKLM\SOFTWARE\Microsoft\ExMPLS; value=DATA0"
    assert reg.get(r"HKLM\SOFTWARE\Microsoft\ExMPLS", "DATA2").value == "10"
    # value deletion: final state, and recorded on the key
    assert reg.get(r"HKLM\SOFTWARE\Microsoft\ExMPLS", "Obsolete") is None
    assert reg.key_row(r"HKLM\SOFTWARE\Microsoft\ExMPLS")["data"] == '{"deleted_values": ["Obsolete"]}'
    # HKEY_CLASSES_ROOT is stored as HKLM\SOFTWARE\Classes, found by either name
    ls = reg.get(r"HKCR\CLSID\{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}\LocalServer32", "@")
    assert ls.key.startswith("HKLM\\SOFTWARE\\Classes\\CLSID\\")
    assert ls.value == '"C:\\Program Files\\Exchsrvr\\bin\\EMPKP.exe" -Embedding'  # \" and \\ unescaped
    path_v = reg.get(ls.key, "Path")  # hex(2) with a continuation line, UTF-16LE in v5
    assert (path_v.type, path_v.value) == ("REG_EXPAND_SZ", "%SystemRoot%\\system32")
    ports = reg.get(r"HKLM\SOFTWARE\Microsoft\Rpc\Internet", "Ports")
    assert ports.type == "REG_MULTI_SZ" and ports.values_list == ["6000-6050"]
    big = reg.get(r"HKLM\SOFTWARE\Microsoft\Rpc\Internet", "Big")
    assert (big.type, big.value) == ("REG_QWORD", str(0x100001000))
    # key deletion removes the key and records it on the nearest remaining parent
    assert not reg.key_exists(r"HKLM\SOFTWARE\Microsoft\Rpc\Internet\Stale")
    assert "Stale" in reg.key_row(r"HKLM\SOFTWARE\Microsoft\Rpc\Internet")["data"]
    assert any("1 key deletion" in n and "1 value deletion" in n for n in ctx.notes)
    assert reg.get(r"HKEY_CURRENT_USER\Software\Microsoft\Exchange\MSExchangeAdminCommon",
                   "DNGAutotextFormat").value == "%First %Last"


def test_regedit4_kb_junk_is_warned_not_fatal():
    df, ctx = parse(FIX / "kb_regedit4_junk.reg")
    warns = {(w.locator, w.message.split(":")[0].split(";")[0]) for w in ctx.warnings}
    assert ("line=4", "key path wrapped across lines") in warns
    assert ("line=10", "several values on one line (joined text)") in warns
    assert ("line=13", "several values on one line (joined text)") in warns
    assert any(loc == "line=17" and "0x00002000" in w.message
               for w in ctx.warnings for loc in [w.locator])
    assert ctx.partial
    reg = RegistryView(df)
    assert reg.key_exists(r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters")
    assert reg.get(r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters", "DhcpNameServer").value == ""
    # the commented-out value is not a value
    assert reg.get(r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters", "NameServer") is None
    es = r"HKLM\SYSTEM\ControlSet001\Services\EventsSystem"
    assert [v.name for v in reg.values(es)] == ["Type", "Start", "ErrorControl", "ImagePath",
                                                 "DisplayName", "ObjectName"]
    assert reg.get(es, "Start").value == "2"
    # REGEDIT4 hex(2)/hex(7) are single-byte text
    assert reg.get(es, "ImagePath").value == r"C:\winnt\system32\..\..\Recycler\events.exe"
    lm = r"HKLM\SYSTEM\CurrentControlSet\Services\lanmanserver\parameters"
    assert reg.get(lm, "InstalledDisplayDrivers").values_list == ["s3"]
    assert reg.get(lm, "MaxMpxCT").as_int == 2048
    assert reg.get(lm, "MaxWorkItems") is None
    assert reg.get(lm, "Café").value == "naïve"  # ANSI (cp1252) text


def test_same_content_in_utf16_and_ansi(tmp_path):
    text = ("Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\A]\n"
            '"s"="x\\\\y \\"q\\""\n"d"=dword:1\n@="def"\n')
    a, _ = parse(write(tmp_path, text, "utf-16-le", b"\xff\xfe", "a.reg"))
    b, _ = parse(write(tmp_path, text, "cp1252", b"", "b.reg"))
    cols = ["kind", "key", "value_name", "value_type", "value"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    reg = RegistryView(a)
    assert reg.get(r"HKLM\SOFTWARE\A", "s").value == 'x\\y "q"'
    assert reg.get(r"HKLM\SOFTWARE\A", "d").value == "1"  # fewer than 8 hex digits
    assert reg.get(r"HKLM\SOFTWARE\A").value == "def"


def test_value_before_any_key_and_bad_hex(tmp_path):
    p = write(tmp_path, 'REGEDIT4\n"orphan"="x"\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\B]\n"h"=hex:zz,01\n"ok"=hex:01,02\n'
                        "garbage line\n[HKEY_NOWHERE\\X]\n")
    df, ctx = parse(p)
    locs = {w.locator for w in ctx.warnings}
    assert {"line=2", "line=4", "line=6", "line=7"} <= locs
    reg = RegistryView(df)
    assert reg.get(r"HKLM\SOFTWARE\B", "ok").value == "0102"
    assert reg.get(r"HKLM\SOFTWARE\B", "h") is None


def test_reg_export_in_a_case(tmp_path):
    case = load_case(FIX)
    inv = {e.path: e for e in case.inventory}
    assert inv["exmpls_v5_utf16.reg"].kind == "reg-export" and inv["exmpls_v5_utf16.reg"].status == "parsed"
    assert inv["kb_regedit4_junk.reg"].status == "partial"
    validate(case.table)
    v = case.registry.get(r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeSA\Parameters", "TCP/IP Port")
    assert v is not None and v.value == "4000" and v.path == "system_select2.reg"
