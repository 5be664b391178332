"""analyzer.builds: the build table and host_build() on every build of the
table and on each form of evidence (registry .reg and hive, Get-ExchangeServer,
ExSetup file version, ExchangeSetup.log, store.exe in event 1000)."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from analyzer import builds, load_case
from analyzer.builds import host_build, lookup, parse_build, releases
from analyzer.synth.regf import write_hive
from analyzer.table import concat_frames

from ._texthelp import fixture, run

RELEASES = [r for r in releases() if r.version not in ("5.5",)]
NEW = [r for r in RELEASES if r.key[0] >= 8]
OLD = [r for r in RELEASES if r.key[0] == 6]
PACKED = {"8": "461C2B4266EDEF444B864AD6D9E5B613", "14": "AE1D439464EB1B8488741FFA028E291C"}


def _id(r: builds.Release) -> str:
    return r.build


def _frame(tmp_path, source: str, name: str, text: str) -> pd.DataFrame:
    p = tmp_path / name
    p.write_bytes(text.replace("\n", "\r\n").encode("utf-16-le").join([b"\xff\xfe", b""])
                  if source == "regfile" else text.encode("utf-8"))
    df, ctx = run(source, p)
    assert not [w for w in ctx.warnings if w.message != "no PowerShell objects found"], ctx.warnings
    return df


def _sp(r: builds.Release) -> builds.Release:
    sp = builds.service_pack_release(r.version)
    assert sp is not None
    return sp


def _reg_2007_2010(r: builds.Release) -> str:
    """A .reg export of the service pack's Msi* values and, for a rollup, the
    Windows Installer patch entry naming it."""
    sp = _sp(r).key
    key = (r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Exchange\Setup" if sp[0] == 8
           else r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\ExchangeServer\v14\Setup")
    lines = ["Windows Registry Editor Version 5.00", "", f"[{key}]"]
    lines += [f'"{n}"=dword:{v:08x}' for n, v in zip(
        ("MsiProductMajor", "MsiProductMinor", "MsiBuildMajor", "MsiBuildMinor"), sp)]
    if r.rollup:
        rev = re.search(r"v(\d)\b", r.label)
        year = "2007" if sp[0] == 8 else "2010"
        name = (f"Update Rollup {r.rollup}{'-v' + rev.group(1) if rev else ''} for Exchange Server {year}"
                + (f" Service Pack {r.sp}" if r.sp else "") + " (KB000000)")
        lines += ["", r"[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Installer\UserData"
                      rf"\S-1-5-18\Products\{PACKED[str(sp[0])]}\Patches\0123456789ABCDEF0123456789ABCDEF]",
                  f'"DisplayName"="{name}"', '"Installed"="20090301"']
    return "\n".join(lines) + "\n"


def test_table_lookup_and_long_forms():
    assert len(RELEASES) >= 100
    for r in releases():
        assert lookup(r.build) == r, r
        long = ".".join(f"{x:02d}" if i < 2 else f"{x:04d}" if i == 2 else f"{x:03d}"
                        for i, x in enumerate(r.key))
        assert lookup(long) == r, long
    ur6 = lookup("8.1.340.1")
    assert (ur6.sp, ur6.rollup, ur6.kb, ur6.date) == (1, 6, 959241, "2009-02-10")
    # the published table's misprints resolve to the real builds
    assert lookup("6.5.7683").build == "6.5.7638" and lookup("14.3.328.5").build == "14.2.328.5"
    assert lookup("6.5.7226.3").label == "Exchange Server 2003 SP1"  # a file version of SP1
    assert parse_build("Version 8.1 (Build 240.6)") == (8, 1, 240, 6)
    assert parse_build("Version 6.5 (Build 7638.2: Service Pack 2)") == (6, 5, 7638, 2)
    assert lookup("9.9.9.9") is None and parse_build("no build") is None


def test_required_rollups_are_in_the_table():
    have = {(r.version, r.rollup) for r in releases()}
    for version, n in [("8.1", 10), ("8.2", 5), ("8.3", 1), ("14.0", 5), ("14.1", 8)]:
        assert {(version, i) for i in range(1, n + 1)} <= have
    for version in ("6.0", "6.5", "8.0", "8.1", "8.2", "8.3", "14.0", "14.1", "14.2", "14.3"):
        assert builds.service_pack_release(version) is not None


@pytest.mark.parametrize("r", NEW, ids=_id)
def test_reg_export_sp_and_installed_rollup(tmp_path, r):
    info = host_build(_frame(tmp_path, "regfile", "ex.reg", _reg_2007_2010(r)))
    assert info.build == r.build and info.product == r.product and info.sp == r.sp
    if r.rollup:
        assert info.certainty == "exact" and info.rollup == r.rollup and info.release == r
        assert any("DisplayName" == e["value_name"] for e in info.evidence)
    else:
        assert info.certainty == "at_least" and info.rollup is None
    assert info.family == "2007+"


@pytest.mark.parametrize("r", OLD, ids=_id)
def test_reg_export_exchange_2000_2003(tmp_path, r):
    sp = _sp(r) if r.rollup else r
    text = ("Windows Registry Editor Version 5.00\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Exchange\\Setup]\n"
            f'"ServicePackBuild"=dword:{sp.key[2]:08x}\n"Services"="C:\\\\Program Files\\\\Exchsrvr"\n')
    info = host_build(_frame(tmp_path, "regfile", "ex.reg", text))
    assert info.certainty == "at_least" and info.build == sp.build and info.product == r.product
    assert info.family == "2000/2003" and info.at_least("6.0.4417") is True


@pytest.mark.parametrize("r", NEW, ids=_id)
def test_exsetup_file_version_and_admin_display_version(tmp_path, r):
    long = ".".join(f"{x:02d}" if i < 2 else f"{x:04d}" if i == 2 else f"{x:03d}" for i, x in enumerate(r.key))
    ft = ("ProductVersion   FileVersion      FileName\n--------------   -----------      --------\n"
          f"{long}   {long}   C:\\Program Files\\Microsoft\\Exchange Server\\bin\\ExSetup.exe\n")
    info = host_build(_frame(tmp_path, "powershell", "exsetup.txt", ft))
    assert (info.build, info.certainty, info.release) == (r.build, "exact", r)
    sp = _sp(r).key
    fl = (f"Name                : EXCH01\nServerRole          : Mailbox, HubTransport\n"
          f"AdminDisplayVersion : Version {sp[0]}.{sp[1]} (Build {sp[2]}.{sp[3]})\n")
    adv = _frame(tmp_path, "powershell", "srv.txt", fl)
    info = host_build(adv, "EXCH01")
    assert (info.build, info.certainty, info.rollup) == (_sp(r).build, "at_least", None)
    # AdminDisplayVersion ignores rollups; with the rollup entry the build is exact
    both = host_build(concat_frames([adv, _frame(tmp_path, "regfile", "ex.reg", _reg_2007_2010(r))]), "EXCH01")
    assert both.build == r.build and both.certainty == ("exact" if r.rollup else "at_least")


@pytest.mark.parametrize("r", RELEASES, ids=_id)
def test_store_exe_version_in_application_error_1000(tmp_path, r):
    text = ("Event Type:\tError\nEvent Source:\tApplication Error\nEvent Category:\tNone\nEvent ID:\t1000\n"
            "Date:\t\t11/12/2008\nTime:\t\t10:14:03 AM\nUser:\t\tN/A\nComputer:\tEXCH01\nDescription:\n"
            f"Faulting application store.exe, version {r.build}, faulting module excdo.dll, version "
            f"{r.build}, fault address 0x000b1c2f.\n")
    info = host_build(_frame(tmp_path, "eventtext", "app.txt", text), "EXCH01")
    assert (info.build, info.certainty) == (r.build, "at_least") and info.release == r
    assert info.evidence[0]["event_id"] == 1000


def test_exchange_setup_log_2007():
    df, _ = run("exsetuplog", fixture("exsetup_2007_sp1_upgrade.txt"))
    info = host_build(df)
    assert (info.build, info.certainty, info.sp) == ("8.1.240.6", "at_least", 1)
    assert info.evidence[0]["locator"] == "line=5"
    assert any("older versions also seen (8.0)" in n for n in info.notes)


def test_setup_log_run_with_errors_does_not_count(tmp_path):
    text = fixture("exsetup_2007_sp1_upgrade.txt").read_text(encoding="utf-8").replace(
        "The Microsoft Exchange Server setup operation completed successfully.",
        "[ERROR] The operation couldn't be performed because of an error.")
    info = host_build(_frame(tmp_path, "exsetuplog", "ExchangeSetup.log", text))
    assert info.build == "8.0.685.24" and info.release.label == "Exchange Server 2007 RTM"


def _hives(tmp_path, host: str, software: dict) -> None:
    write_hive(tmp_path / "SYSTEM", {
        "Select": {"Current": ("REG_DWORD", 1)},
        r"ControlSet001\Control\ComputerName\ComputerName": {"ComputerName": ("REG_SZ", host)},
    }, root_name="SYSTEM")
    write_hive(tmp_path / "SOFTWARE", software, root_name="SOFTWARE")


@pytest.mark.parametrize("setup_key", [r"Microsoft\Exchange\Setup", r"Microsoft\Exchange\v8.0\Setup"])
def test_hives_exchange_2007_sp1_ur6(tmp_path, setup_key):
    _hives(tmp_path, "EXCH07", {
        setup_key: {"MsiProductMajor": ("REG_DWORD", 8), "MsiProductMinor": ("REG_DWORD", 1),
                                      "MsiBuildMajor": ("REG_DWORD", 240), "MsiBuildMinor": ("REG_DWORD", 6)},
        r"Microsoft\Exchange\v8.0\HubTransportRole": {"ConfiguredVersion": ("REG_SZ", "8.1.240.6")},
        rf"Microsoft\Windows\CurrentVersion\Installer\UserData\S-1-5-18\Products\{PACKED['8']}\Patches"
        r"\A1B2C3D4E5F60718293A4B5C6D7E8F90": {
            "DisplayName": ("REG_SZ", "Update Rollup 6 for Exchange Server 2007 Service Pack 1 (KB959241)")},
        r"Microsoft\Windows\CurrentVersion\Uninstall\{24B2C164-DE66-44FE-B468-A46D9D5E6B31}": {
            "DisplayName": ("REG_SZ", "Microsoft Exchange Server 2007")},
    })
    info = host_build(load_case(tmp_path), "EXCH07")
    assert (info.build, info.certainty, info.rollup, info.release.kb) == ("8.1.340.1", "exact", 6, 959241)
    assert {e["path"] for e in info.evidence} == {"SOFTWARE"}
    assert info.at_least("8.1.340.1") is True and info.at_least("8.1.359.2") is False


def test_hives_exchange_2010_sp1_uninstall_entry(tmp_path):
    _hives(tmp_path, "EXCH10", {
        r"Microsoft\ExchangeServer\v14\Setup": {
            "MsiProductMajor": ("REG_DWORD", 14), "MsiProductMinor": ("REG_DWORD", 1),
            "MsiBuildMajor": ("REG_DWORD", 218), "MsiBuildMinor": ("REG_DWORD", 15)},
        r"Microsoft\ExchangeServer\v14\MailboxRole": {"ConfiguredVersion": ("REG_SZ", "14.1.218.15")},
        r"Microsoft\Windows\CurrentVersion\Uninstall\{4934D1EA-BE46-48B1-8847-F1AF20E892C1}_x": {
            "DisplayName": ("REG_SZ", "Update Rollup 3 for Exchange Server 2010 Service Pack 1 (KB2529939)")},
    })
    case = load_case(tmp_path)  # targeted: analyzer/knowledge/registry_paths.yaml loads these keys
    info = host_build(case, "EXCH10")
    assert (info.build, info.certainty, info.rollup, info.sp) == ("14.1.289.7", "exact", 3, 1)


def test_hives_exchange_2003(tmp_path):
    _hives(tmp_path, "EXCH03", {r"Microsoft\Exchange\Setup": {
        "ServicePackBuild": ("REG_DWORD", 7638), "NewestBuild": ("REG_DWORD", 6944)}})
    info = host_build(load_case(tmp_path), "exch03.contoso.local")
    assert (info.product, info.build, info.certainty, info.family) == (
        "Exchange Server 2003", "6.5.7638", "at_least", "2000/2003")
    # a later SP is never installed by a rollup; the same SP may have one
    assert info.at_least("8.1.240.6") is False and info.at_least("6.5.7654.4") is None


def test_unknown_says_what_to_collect(tmp_path):
    info = host_build(_frame(tmp_path, "powershell", "q.txt", fixture("ps_getqueue_fl.txt").read_text()), "EXCH01")
    assert info.certainty == "unknown" and info.build is None and info.collect
    assert info.at_least("6.0.4417") is None and info.family is None


def test_hostless_rows_need_a_one_host_case(tmp_path):
    csv = _frame(tmp_path, "powershell", "s.csv", fixture("ps_exchangeserver_type.csv").read_text())
    log = run("exsetuplog", fixture("exsetup_2007_sp1_upgrade.txt"))[0]
    both = concat_frames([csv, log])
    # EDGE01 is in the case too: the host-less setup log cannot be EXCH01's
    assert host_build(both, "EDGE01").build == "8.0.685.24"
    assert host_build(both, "EXCH01").evidence[0]["path"] == "s.csv"
    assert host_build(log, "EXCH01").build == "8.1.240.6"  # one machine: the log is its


def test_empty_patches_key_means_no_rollup(tmp_path):
    _hives(tmp_path, "EXCH07", {
        r"Microsoft\Exchange\v8.0\Setup": {"MsiProductMajor": ("REG_DWORD", 8), "MsiProductMinor": ("REG_DWORD", 2),
                                           "MsiBuildMajor": ("REG_DWORD", 176), "MsiBuildMinor": ("REG_DWORD", 2)},
        rf"Microsoft\Windows\CurrentVersion\Installer\UserData\S-1-5-18\Products\{PACKED['8']}\Patches": {},
    })
    info = host_build(load_case(tmp_path), "EXCH07")
    assert (info.build, info.certainty, info.rollup) == ("8.2.176.2", "exact", 0)
    assert info.at_least("8.2.217.3") is False
    # without the Patches key nobody can tell whether a rollup is installed
    (tmp_path / "SOFTWARE").unlink()
    write_hive(tmp_path / "SOFTWARE", {r"Microsoft\Exchange\v8.0\Setup": {
        "MsiProductMajor": ("REG_DWORD", 8), "MsiProductMinor": ("REG_DWORD", 2),
        "MsiBuildMajor": ("REG_DWORD", 176), "MsiBuildMinor": ("REG_DWORD", 2)}}, root_name="SOFTWARE")
    info = host_build(load_case(tmp_path), "EXCH07")
    assert (info.certainty, info.rollup) == ("at_least", None) and info.at_least("8.2.217.3") is None


def test_get_itemproperty_of_the_setup_key(tmp_path):
    """Get-ItemProperty HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v14\\Setup | fl, as support notes show it."""
    text = ("\n\nMsiInstallPath  : C:\\Program Files\\Microsoft\\Exchange Server\\V14\\\n"
            "MsiProductMajor : 14\nMsiProductMinor : 3\nMsiBuildMajor   : 123\nMsiBuildMinor   : 4\n\n")
    df = _frame(tmp_path, "powershell", "setup.txt", text)
    assert json_object(df) == "exchange_setup_registry"
    info = host_build(df)
    assert (info.build, info.certainty, info.product, info.sp) == ("14.3.123.4", "at_least", "Exchange Server 2010", 3)


def json_object(df: pd.DataFrame) -> str:
    from analyzer.table import row_data
    return row_data(df["data"].iloc[0])["object"]
