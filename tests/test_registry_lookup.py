"""RegistryView: aliases, case-insensitivity, CurrentControlSet resolution
per hive file / host, implicit parent keys, provenance for evidence."""
from __future__ import annotations

from pathlib import Path


from analyzer.findings import Evidence
from analyzer.registry import RegistryView, decode_value, normalize_key
from analyzer.sources import Options, ParseContext, get
from analyzer.table import concat_frames, rows_to_frame

FIX = Path(__file__).resolve().parent / "fixtures" / "reg"


def reg_rows(path: Path, display: str | None = None, host: str | None = None):
    ctx = ParseContext(path=display or path.name, fs_path=path, options=Options())
    return [dict(r, source="regfile", path=ctx.path, host=host) for r in get("regfile").parse(ctx)]


def test_normalize_key():
    assert normalize_key(r"HKEY_LOCAL_MACHINE\Software\Microsoft\ExMPLS\\") == r"HKLM\Software\Microsoft\ExMPLS"
    assert normalize_key(r"[HKEY_CLASSES_ROOT\CLSID\{X}]") == r"HKLM\SOFTWARE\Classes\CLSID\{X}"
    assert normalize_key(r"hkcr\CLSID") == r"HKLM\SOFTWARE\Classes\CLSID"
    assert normalize_key(r"HKEY_CURRENT_USER\Software") == r"HKCU\Software"
    assert normalize_key(r"HKEY_USERS\S-1-5-18") == r"HKU\S-1-5-18"


def test_decode_value_rules():
    assert decode_value(4, b"\x88\x13\x00\x00") == ("REG_DWORD", "5000", {})
    assert decode_value(5, b"\x00\x00\x13\x88")[1] == "5000"
    assert decode_value(1, "abc\x00junk".encode("utf-16-le"))[1] == "abc"
    assert decode_value(7, "a\x00b\x00\x00".encode("utf-16-le")) == ("REG_MULTI_SZ", "a\nb", {"values": ["a", "b"]})
    assert decode_value(3, b"\xAB\x01") == ("REG_BINARY", "ab01", {})
    t, v, extra = decode_value(4, b"\x01\x02")
    assert v == "0102" and "invalid" in extra
    assert decode_value(0x12345, b"\x01")[0] == "REG_0x12345"


def test_current_control_set_from_reg_export_select_2():
    reg = RegistryView(rows_to_frame(reg_rows(FIX / "system_select2.reg")))
    assert reg.control_set() == 2
    v = reg.get(r"hklm\system\currentcontrolset\services\msexchangesa\parameters", "TCP/IP PORT")
    assert v.value == "4000" and v.as_int == 4000
    assert v.key == r"HKLM\SYSTEM\ControlSet002\Services\MSExchangeSA\Parameters"
    assert v.locator == r"line=12; key=HKLM\SYSTEM\ControlSet002\Services\MSExchangeSA\Parameters; value=TCP/IP Port"
    assert reg.get(r"HKLM\SYSTEM\ControlSet001\Services\MSExchangeSA\Parameters", "TCP/IP Port").value == "3000"
    assert reg.key_exists(r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem")
    assert not reg.key_exists(r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeDS")
    assert reg.find_keys(r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchange*") == [
        r"HKLM\SYSTEM\ControlSet002\Services\MSExchangeIS", r"HKLM\SYSTEM\ControlSet002\Services\MSExchangeSA"]
    assert [v.name for v in reg.values(r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeSA\Parameters")] == [
        "TCP/IP Port", "TCP/IP NSPI Port"]
    # implicit parents exist and list their children
    assert reg.key_exists(r"HKEY_LOCAL_MACHINE\SYSTEM")
    assert reg.subkeys(r"HKLM\SYSTEM") == ["ControlSet001", "ControlSet002", "Select"]
    assert reg.subkeys(r"HKLM\SYSTEM\CurrentControlSet\Services") == ["MSExchangeIS", "MSExchangeSA"]
    assert reg.get(r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeSA\Parameters", "nope") is None


def test_controlset_query_finds_currentcontrolset_rows_of_the_same_host(tmp_path):
    """A .reg export that only has CurrentControlSet answers a ControlSet00N
    query when the same host's SYSTEM data says that N is current."""
    p = tmp_path / "ccs.reg"
    p.write_text("Windows Registry Editor Version 5.00\r\n\r\n"
                 "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem]\r\n"
                 "\"TCP/IP Port\"=dword:00001771\r\n", encoding="ascii")
    rows = reg_rows(p, host="EXCH01") + reg_rows(FIX / "system_select2.reg", host="EXCH01")
    other = reg_rows(p, display="other/ccs.reg", host="EXCH02")
    reg = RegistryView(rows_to_frame(rows + other))
    hit = reg.get(r"HKLM\SYSTEM\ControlSet002\Services\MSExchangeIS\ParametersSystem", "TCP/IP Port", host="exch01")
    # the literal ControlSet002 row of the select2 export comes first ...
    assert hit.value == "4002"
    every = reg.get_all(r"HKLM\SYSTEM\ControlSet002\Services\MSExchangeIS\ParametersSystem", "TCP/IP Port")
    # ... and the CurrentControlSet row of EXCH01 is the same key; EXCH02 has no Select, so not resolved
    assert sorted((v.value, v.host) for v in every) == [("4002", "EXCH01"), ("6001", "EXCH01")]
    assert reg.get(r"HKLM\SYSTEM\ControlSet001\Services\MSExchangeIS\ParametersSystem", "TCP/IP Port") is None
    assert reg.get(r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeIS\ParametersSystem",
                   "TCP/IP Port", host="EXCH02").value == "6001"


def test_hkcu_matches_user_hives_and_hkcu_exports():
    rows = [
        {"kind": "registry_value", "key": r"HKU\tony\Software\Microsoft\Exchange", "value_name": "A",
         "value_type": "REG_SZ", "value": "1", "locator": r"key=HKU\tony\Software\Microsoft\Exchange; value=A",
         "source": "hive", "path": "NTUSER.DAT"},
    ]
    reg = RegistryView(rows_to_frame(rows + reg_rows(FIX / "exmpls_v5_utf16.reg")))
    assert reg.get(r"HKCU\Software\Microsoft\Exchange", "a").value == "1"
    assert reg.get(r"HKEY_CURRENT_USER\Software\Microsoft\Exchange\MSExchangeAdminCommon",
                   "DNGAutotextFormat").path == "exmpls_v5_utf16.reg"
    assert set(reg.subkeys(r"HKCU\Software\Microsoft\Exchange")) == {"MSExchangeAdminCommon"}


def test_provenance_feeds_evidence():
    reg = RegistryView(rows_to_frame(reg_rows(FIX / "exmpls_v5_utf16.reg")))
    v = reg.get(r"HKLM\SOFTWARE\Microsoft\ExMPLS", "DATA1")
    ev = Evidence.from_row(v.row)
    assert ev.path == "exmpls_v5_utf16.reg" and ev.locator == v.locator
    assert "ExMPLS\\DATA1" in ev.excerpt and "EXCH01" in ev.excerpt
    kr = reg.key_row(r"hkcr\clsid\{94a6dcd0-b6f5-40e8-8c9d-cee2c7796380}")
    assert kr["kind"] == "registry_key" and kr["locator"].startswith("line=11;")


def test_view_ignores_non_registry_rows_and_empty_tables():
    rows = [{"kind": "event", "source": "evtx", "path": "System.evtx", "locator": "record=1",
             "key": r"HKLM\SOFTWARE\X", "provider": "DCOM", "event_id": 10000}]
    reg = RegistryView(rows_to_frame(rows))
    assert len(reg) == 0 and not reg.key_exists(r"HKLM\SOFTWARE\X")
    assert RegistryView(concat_frames([])).get(r"HKLM\SOFTWARE\X", "") is None
