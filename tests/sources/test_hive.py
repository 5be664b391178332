"""Offline hives: real corpus hives (clean, corrupt, dirty with logs) and
hives made by analyzer.synth.regf, read back by this source (regipy) and by
an independent reader (python-registry)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from analyzer.case import load_case
from analyzer.registry import RegistryView
from analyzer.sources import Options, ParseContext, get
from analyzer.sources.hive import (
    classify_log, identify_hive, marvin32, parse_base_block, replay_logs,
)
from analyzer.synth import regf as synth
from analyzer.table import arrow_to_frame, validate

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
HIVES = CORPUS / "hives"
DIRTY = CORPUS / "hives-dirty"


def corpus(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"corpus file absent: {path}")
    return path


def parse(path: Path, tmp_path: Path, registry: str = "targeted",
          display: str | None = None) -> tuple[pd.DataFrame, ParseContext]:
    ctx = ParseContext(path=display or path.name, fs_path=path, options=Options(registry=registry),
                       siblings=tuple(p for p in path.parent.iterdir() if p != path),
                       work_dir=tmp_path / "work")
    tabs = list(get("hive").parse(ctx))
    df = arrow_to_frame(pa.concat_tables(tabs).unify_dictionaries()) if tabs else None
    if df is not None:
        validate(df)
    return df, ctx


def content(df: pd.DataFrame) -> set[tuple]:
    """Hive content independent of where it is mounted: (kind, key below
    the mount point, value name, type, value, key last-write time)."""
    out = set()
    for r in df.itertuples():
        rel = r.key.split("\\", 2)[2].lower() if r.key.count("\\") >= 2 else ""
        out.add((r.kind, rel, r.value_name, r.value_type, r.value,
                 str(r.ts) if r.kind == "registry_key" else None))
    return out


# --------------------------------------------------------------------------
# sniffing


def test_sniff_claims_hives_and_logs_by_content(tmp_path):
    hive, log = get("hive"), get("regf-log")
    sysh = corpus(HIVES / "regipy-SYSTEM").read_bytes()[:65536]
    assert hive.sniff(sysh, "renamed.txt") >= 90
    assert log.sniff(sysh, "SYSTEM.LOG1") == 0
    for lp in (DIRTY / "yarp_OldDirtyHive" / "OldDirtyHive.LOG1",
               DIRTY / "yarp_NewDirtyHive1" / "NewDirtyHive.LOG2"):
        head = corpus(lp).read_bytes()[:65536]
        assert log.sniff(head, "x.bin") > hive.sniff(head, "x.bin") > 0
    not_a_hive = corpus(HIVES / "zimmerman-NotAHive").read_bytes()[:65536]
    assert hive.sniff(not_a_hive, "SYSTEM") == 0 and log.sniff(not_a_hive, "SYSTEM.LOG1") == 0
    # an empty .LOG2 is claimed on its name alone, below the name-only limit
    assert 0 < log.sniff(b"", "NTUSER.DAT.LOG2") < 20
    assert log.sniff(b"", "notes.txt") == 0


def test_identify_hive_from_content_not_name():
    assert identify_hive({"controlset001", "select", "setup"}, "") == "SYSTEM"
    assert identify_hive({"microsoft", "classes", "policies"}, "") == "SOFTWARE"
    assert identify_hive({"sam"}, "") == "SAM"
    assert identify_hive({"policy", "rxact"}, "") == "SECURITY"
    assert identify_hive({"software", "control panel", "environment"}, "") == "NTUSER"
    assert identify_hive({"local settings", "clsid"}, "") == "USRCLASS"
    # base block name only breaks the tie when the root says nothing
    assert identify_hive({"foo"}, "\\SystemRoot\\System32\\Config\\SAM") == "SAM"
    assert identify_hive({"foo"}, "") == "UNKNOWN"


# --------------------------------------------------------------------------
# real hives


def test_real_system_hive_targeted(tmp_path):
    df, ctx = parse(corpus(HIVES / "regipy-SYSTEM"), tmp_path)
    assert not ctx.partial and not ctx.warnings
    assert any("SYSTEM hive" in n for n in ctx.notes)
    assert (df["source"] == "hive").all() and (df["parse_status"] == "ok").all()
    keys = set(df["key"].str.lower())
    assert "hklm\\system\\select" in keys
    # only the declared subtrees: nothing from e.g. MountedDevices or Enum
    assert not any(k.startswith("hklm\\system\\mounteddevices") for k in keys)
    assert not any("\\enum\\" in k for k in keys)
    reg = RegistryView(df)
    cur = reg.get(r"HKLM\SYSTEM\Select", "Current")
    assert cur.type == "REG_DWORD" and cur.value == "1" and cur.locator.startswith("key=HKLM\\SYSTEM\\Select")
    # the host comes from ControlSet001\Control\ComputerName\ComputerName
    host = reg.get(r"HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName", "ComputerName")
    assert host is not None and host.value
    assert set(df["host"].dropna().unique()) == {host.value}
    tcpip = reg.get(r"HKEY_LOCAL_MACHINE\System\CurrentControlSet\Services\Tcpip\Parameters", "Hostname")
    assert tcpip is not None and tcpip.key.startswith("HKLM\\SYSTEM\\ControlSet001\\")
    keyrows = df[df["kind"] == "registry_key"]
    assert keyrows["ts"].notna().all() and (keyrows["ts_source"] == "utc").all()
    assert keyrows["ts"].min().year >= 2000


def test_real_system_hive_full_matches_python_registry(tmp_path):
    """Full load, cross-checked key by key against python-registry."""
    from Registry import Registry
    path = corpus(HIVES / "regipy-SYSTEM")
    df, ctx = parse(path, tmp_path, registry="full")
    assert not ctx.partial
    ours_keys = set(df.loc[df["kind"] == "registry_key", "key"].str.lower())
    theirs: set[str] = set()
    n_values = 0

    def walk(k, prefix):
        nonlocal n_values
        theirs.add(prefix.lower())
        n_values += len(k.values())
        for sk in k.subkeys():
            walk(sk, prefix + "\\" + sk.name())
    walk(Registry.Registry(str(path)).root(), "HKLM\\SYSTEM")
    assert ours_keys == theirs
    assert (df["kind"] == "registry_value").sum() == n_values
    # a value decoded the same way by both readers
    r = Registry.Registry(str(path)).open("Select")
    assert RegistryView(df).get(r"HKLM\SYSTEM\Select", "LastKnownGood").value == str(r.value("LastKnownGood").value())


def test_real_ntuser_is_mounted_under_hku_user(tmp_path):
    df, ctx = parse(corpus(HIVES / "regipy-NTUSER.DAT"), tmp_path, registry="full")
    assert any("NTUSER hive" in n for n in ctx.notes)
    assert df["key"].str.startswith("HKU\\vibranium").all()
    reg = RegistryView(df)
    assert reg.key_exists(r"HKCU\Control Panel")
    assert "Control Panel" in reg.subkeys("HKCU")


@pytest.mark.parametrize("name, warning", [
    ("regipy-corrupted_system_hive", "hive bin"),
    ("zimmerman-SAMBadHBinHeader", "hive bin"),
    ("zimmerman-SECURITYNoRoot", "root"),
    ("plaso-corrupt_sub_key_list.hiv", "subkey #8 unreadable"),
])
@pytest.mark.parametrize("mode", ["targeted", "full"])
def test_corrupt_hives_are_partial_with_warnings(tmp_path, name, warning, mode):
    df, ctx = parse(corpus(HIVES / name), tmp_path, registry=mode)
    assert ctx.partial
    assert any(warning in w.message for w in ctx.warnings), [str(w) for w in ctx.warnings]
    assert all(w.locator for w in ctx.warnings)
    assert df is not None and len(df) > 0  # what could be read is kept


def test_corrupt_sub_key_list_keeps_the_other_99_keys(tmp_path):
    df, _ = parse(corpus(HIVES / "plaso-corrupt_sub_key_list.hiv"), tmp_path, registry="full")
    ok, _ = parse(corpus(HIVES / "plaso-100_sub_keys.hiv"), tmp_path, registry="full")
    sub = lambda d: {k.rsplit("\\", 1)[1] for k in d.loc[d["kind"] == "registry_key", "key"] if k.count("\\") == 2}
    assert len(sub(ok)) == 100
    assert len(sub(df)) == 99 and sub(df) < sub(ok)  # only subkey #8 of the list is lost


def test_not_a_hive_fails_cleanly(tmp_path):
    df, ctx = parse(corpus(HIVES / "zimmerman-NotAHive"), tmp_path)
    assert df is None and ctx.warnings


# --------------------------------------------------------------------------
# dirty hives and transaction logs


def _copy_dirty(folder: str, tmp_path: Path) -> Path:
    src = corpus(DIRTY / folder)
    dst = tmp_path / folder
    shutil.copytree(src, dst)
    for p in dst.iterdir():
        p.chmod(0o644)
    return dst


@pytest.mark.parametrize("folder, hive, reference, fmt", [
    ("yarp_OldDirtyHive", "OldDirtyHive", "RecoveredHive_Windows7", "old"),
    ("yarp_BadBaseBlockHive", "BadBaseBlockHive", "../yarp_OldDirtyHive/RecoveredHive_Windows7", "old"),
    ("yarp_NewDirtyHive1", "NewDirtyHive", "RecoveredHive_Windows10", "new"),
])
def test_dirty_hive_recovery_matches_windows(tmp_path, folder, hive, reference, fmt):
    """Our replay gives the same keys, values and key timestamps as Windows'
    own recovery. (regipy 6.5's replay does not on the new format: it applies
    LOG2 before LOG1 and every HvLE entry whatever its sequence number.)"""
    before = (corpus(DIRTY / folder / hive)).read_bytes()
    df, ctx = parse(DIRTY / folder / hive, tmp_path, registry="full")
    ref, _ = parse(corpus((DIRTY / folder / reference).resolve()), tmp_path, registry="full")
    assert (DIRTY / folder / hive).read_bytes() == before  # input untouched
    assert any(n.startswith("recovered from transaction logs") and f"{fmt} format" in n for n in ctx.notes)
    assert (df["parse_status"] == "recovered").all()
    assert content(df) == content(ref)
    assert (tmp_path / "work" / f"{hive}.recovered").exists()


def test_dirty_hive_without_logs_is_read_as_is_with_warning(tmp_path):
    d = _copy_dirty("yarp_NewDirtyHive1", tmp_path)
    for p in d.glob("*.LOG*"):
        p.unlink()
    df, ctx = parse(d / "NewDirtyHive", tmp_path)
    ref, _ = parse(d / "RecoveredHive_Windows10", tmp_path)
    assert any("dirty" in w.message and "LOG1" in w.message for w in ctx.warnings)
    assert (df["parse_status"] == "ok").all()
    assert content(df) != content(ref)


def test_rejected_log_leaves_the_hive_dirty(tmp_path):
    df, ctx = parse(corpus(DIRTY / "yarp_BadLogHive1" / "BadLogHive"), tmp_path, registry="full")
    assert ctx.partial
    assert any("could not be applied" in w.message and "checksum" in w.message for w in ctx.warnings)
    assert not any(n.startswith("recovered") for n in ctx.notes)
    assert (df["parse_status"] == "ok").all()


def test_regipy_transactions_ntuser_new_format(tmp_path):
    d = corpus(DIRTY / "regipy_transactions_NTUSER")
    df, ctx = parse(d / "transactions_NTUSER.DAT", tmp_path, registry="full")
    notes = " ".join(ctx.notes)
    assert "transactions_ntuser.dat.log1" in notes and "new format" in notes
    # LOG2 holds an older cycle (sequence 562 < hive 566): Windows skips it
    assert "log2 not applied" in notes.lower()
    assert df["key"].str.startswith("HKU\\tony").all()
    recovered = parse_base_block((tmp_path / "work" / "transactions_NTUSER.DAT.recovered").read_bytes())
    assert recovered.valid and not recovered.dirty


def test_replay_unit_rules():
    old = corpus(DIRTY / "yarp_OldDirtyHive" / "OldDirtyHive").read_bytes()
    log1 = classify_log("x.LOG1", (DIRTY / "yarp_OldDirtyHive" / "OldDirtyHive.LOG1").read_bytes())
    assert log1.fmt == "old"
    assert classify_log("x.LOG2", b"").fmt is None
    bad = classify_log("b.LOG1", corpus(DIRTY / "yarp_BadLogHive1" / "BadLogHive.LOG1").read_bytes())
    assert bad.fmt is None and "checksum" in bad.reason
    res = replay_logs(old, [log1])
    out = parse_base_block(bytes(res.data))
    assert out.valid and out.seq1 == out.seq2 and out.file_type == 0
    assert res.fmt == "old" and res.pages > 0
    # a clean hive needs nothing
    clean = corpus(HIVES / "regipy-NTUSER.DAT").read_bytes()
    assert replay_logs(clean, [log1]).data is None
    # new-format entries carry Marvin32 hashes: hash-2 covers the first 32 bytes
    new = (DIRTY / "yarp_NewDirtyHive1" / "NewDirtyHive.LOG1").read_bytes()
    import struct
    assert struct.unpack_from("<Q", new, 512 + 32)[0] == marvin32(new[512:544])


def test_log_files_are_claimed_in_a_case(tmp_path):
    d = _copy_dirty("yarp_NewDirtyHive1", tmp_path)
    (d / "RecoveredHive_Windows10").unlink()
    case = load_case(d)
    inv = {e.path: e for e in case.inventory}
    assert inv["NewDirtyHive"].kind == "regf" and inv["NewDirtyHive"].status == "parsed"
    assert "recovered from transaction logs" in inv["NewDirtyHive"].detail
    for log in ("NewDirtyHive.LOG1", "NewDirtyHive.LOG2"):
        assert inv[log].kind == "regf-log" and inv[log].status == "parsed"
        assert "transaction log of NewDirtyHive" in inv[log].detail
    validate(case.table)
    assert (case.table["parse_status"] == "recovered").all()


# --------------------------------------------------------------------------
# synthesized hives (analyzer.synth.regf), read back by two readers

SYSTEM_KEYS = {
    "Select": {"Current": ("REG_DWORD", 2), "Default": ("REG_DWORD", 2), "LastKnownGood": ("REG_DWORD", 1)},
    r"ControlSet001\Services\MSExchangeSA\Parameters": {"TCP/IP Port": ("REG_DWORD", 3000)},
    r"ControlSet002\Services\MSExchangeSA\Parameters": {
        "TCP/IP Port": ("REG_DWORD", 4000), "TCP/IP NSPI Port": ("REG_DWORD", 4001)},
    r"ControlSet002\Services\MSExchangeIS\ParametersSystem": {"TCP/IP Port": ("REG_DWORD", 4002)},
    r"ControlSet002\Services\Unrelated": {"Start": ("REG_DWORD", 4)},
    r"ControlSet002\Control\ComputerName\ComputerName": {"ComputerName": ("REG_SZ", "EXCH01")},
    r"ControlSet002\Services\NTDS\Parameters": {
        "NSPI interface protocol sequences": ("REG_MULTI_SZ", ["ncacn_http:6004", "ncacn_ip_tcp"]),
        "Blob": ("REG_BINARY", b"\x00\xffAB"),
        "Big": ("REG_QWORD", 2**40 + 5),
        "Path": ("REG_EXPAND_SZ", "%SystemRoot%\\ntds"),
        "": ("REG_SZ", "default text")},
    r"MountedDevices": {"x": ("REG_BINARY", b"\x01")},
}


@pytest.fixture
def synth_system(tmp_path) -> Path:
    p = tmp_path / "renamed_upload.bin"
    synth.write_hive(p, SYSTEM_KEYS, root_name="CMI-CreateHive{F10156BE-0E87-4EFB-969E-5DA29D131144}",
                     file_name="\\REGISTRY\\MACHINE\\SYSTEM")
    return p


def test_synth_system_hive_current_control_set_2(tmp_path, synth_system):
    df, ctx = parse(synth_system, tmp_path)
    assert any("SYSTEM hive" in n for n in ctx.notes) and not ctx.warnings
    assert any("ControlSet002 (Select\\Current)" in n for n in ctx.notes)
    assert set(df["host"].unique()) == {"EXCH01"}
    # targeted: Services\Unrelated and MountedDevices are not loaded
    assert not df["key"].str.contains("Unrelated|MountedDevices").any()
    reg = RegistryView(df)
    v = reg.get(r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchangeSA\Parameters", "tcp/ip port")
    assert v.value == "4000" and v.key == r"HKLM\SYSTEM\ControlSet002\Services\MSExchangeSA\Parameters"
    assert v.path == ctx.path and v.locator == rf"key={v.key}; value=TCP/IP Port"
    assert reg.get(r"HKLM\SYSTEM\ControlSet001\Services\MSExchangeSA\Parameters", "TCP/IP Port").value == "3000"
    assert reg.find_keys(r"HKLM\SYSTEM\CurrentControlSet\Services\MSExchange*") == [
        r"HKLM\SYSTEM\ControlSet002\Services\MSExchangeIS", r"HKLM\SYSTEM\ControlSet002\Services\MSExchangeSA"]
    assert reg.subkeys(r"HKLM\SYSTEM\CurrentControlSet\Services") == ["MSExchangeIS", "MSExchangeSA", "NTDS"]


def test_synth_value_types_read_back_by_two_readers(tmp_path, synth_system):
    from Registry import Registry
    df, _ = parse(synth_system, tmp_path, registry="full")
    reg = RegistryView(df)
    key = r"HKLM\SYSTEM\ControlSet002\Services\NTDS\Parameters"
    other = Registry.Registry(str(synth_system)).open(r"ControlSet002\Services\NTDS\Parameters")
    theirs = {v.name(): v for v in other.values()}
    ms = reg.get(key, "NSPI interface protocol sequences")
    assert ms.type == "REG_MULTI_SZ" and ms.value == "ncacn_http:6004\nncacn_ip_tcp"
    # python-registry keeps the empty strings of the terminator; Windows shows none
    assert ms.data["values"] == [x for x in theirs["NSPI interface protocol sequences"].value() if x]
    assert reg.get(key, "Blob").value == "00ff4142" == theirs["Blob"].value().hex()
    assert reg.get(key, "Big").value == str(2**40 + 5) == str(theirs["Big"].value())
    assert reg.get(key, "Path").type == "REG_EXPAND_SZ"
    assert reg.get(key, "Path").value == theirs["Path"].value() == "%SystemRoot%\\ntds"
    dflt = reg.get(key, "")
    assert dflt.value == "default text" and dflt.locator.endswith("value=(Default)")
    assert reg.get(key, "(Default)").value == "default text"
    # full load: every key python-registry sees
    assert reg.key_exists(r"HKLM\SYSTEM\MountedDevices")
    assert reg.key_exists(r"HKLM\SYSTEM\CurrentControlSet\Services\Unrelated")


def test_synth_software_hive_hkcr_alias(tmp_path):
    p = tmp_path / "soft"
    clsid = r"Classes\CLSID\{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}"
    synth.write_hive(p, {
        r"Microsoft\ExMPLS": {"DATA0": ("REG_BINARY", b"\x01\x02")},
        clsid + r"\LocalServer32": {"": ("REG_SZ", r"C:\Program Files\Exchsrvr\bin\EMPKP.exe")},
        r"Microsoft\Windows NT\CurrentVersion": {"CurrentBuild": ("REG_SZ", "3790")},
        r"Microsoft\Windows NT\CurrentVersion\Fonts": {"Arial": ("REG_SZ", "arial.ttf")},
        r"Policies\Microsoft": {},
    }, root_name="CMI-CreateHive{199DAFC2-6F16-4946-BF90-5A3FC3A60902}")
    df, ctx = parse(p, tmp_path)
    assert any("SOFTWARE hive" in n for n in ctx.notes)
    reg = RegistryView(df)
    ls = reg.get(r"HKCR\CLSID\{94a6dcd0-b6f5-40e8-8c9d-cee2c7796380}\LocalServer32", "")
    assert ls is not None and ls.value.endswith("EMPKP.exe")
    assert ls.key == r"HKLM\SOFTWARE\Classes\CLSID\{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}\LocalServer32"
    assert reg.key_exists(r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\ExMPLS")
    assert reg.get(r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion", "CurrentBuild").value == "3790"
    # CurrentVersion is declared values-only: its Fonts subkey is not loaded
    assert not reg.key_exists(r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Fonts")


def test_software_hive_takes_host_of_sibling_system_hive(tmp_path):
    """SOFTWARE has no computer name; the SYSTEM hive copied beside it does."""
    from analyzer import load_case
    from analyzer.synth.regf import write_hive

    write_hive(tmp_path / "SYSTEM", {
        "Select": {"Current": ("REG_DWORD", 2)},
        r"ControlSet001\Control\ComputerName\ComputerName": {"ComputerName": ("REG_SZ", "OLDNAME")},
        r"ControlSet002\Control\ComputerName\ComputerName": {"ComputerName": ("REG_SZ", "EXCH07")},
        r"ControlSet002\Services\Tcpip\Parameters": {"Hostname": ("REG_SZ", "EXCH07")},
    }, root_name="SYSTEM")
    write_hive(tmp_path / "SOFTWARE", {
        r"Microsoft\Windows NT\CurrentVersion": {"CurrentVersion": ("REG_SZ", "5.2")},
        r"Classes\CLSID\{00000000-0000-0000-0000-000000000001}": {"": ("REG_SZ", "x")},
    }, root_name="SOFTWARE")
    case = load_case(tmp_path)
    t = case.table
    assert set(t[t["path"] == "SYSTEM"]["host"]) == {"EXCH07"}
    assert set(t[t["path"] == "SOFTWARE"]["host"]) == {"EXCH07"}
    # Alone, a SOFTWARE hive has no host.
    solo = tmp_path / "solo"
    solo.mkdir()
    (solo / "SOFTWARE").write_bytes((tmp_path / "SOFTWARE").read_bytes())
    assert load_case(solo).table["host"].isna().all()


# --------------------------------------------------------------------------
# truncation: never silent

def _cut_points(size: int) -> list[int]:
    """Ten cuts: inside the base block, at and inside the first hive bin,
    and spread over the rest of the file."""
    fixed = [300, 3000, 4096 + 100]
    return fixed + [4096 + (size - 4096) * k // 8 + 0x123 for k in range(7)]


@pytest.mark.parametrize("name", ["plaso-100_sub_keys.hiv", "regipy-NTUSER.DAT", "synth-SYSTEM"])
def test_hive_cut_at_ten_points_is_partial_or_failed_with_figures(tmp_path, name):
    """A hive (corpus, and one written by analyzer.synth.regf) cut at ten
    points: partial when keys before the cut are read, failed when nothing
    is; the warning names the byte the file ends at and the hive-bin bytes
    the base block declares; never more keys than the whole hive."""
    if name == "synth-SYSTEM":
        raw = synth.hive_bytes(SYSTEM_KEYS)
    else:
        raw = corpus(HIVES / name).read_bytes()
    whole, _ = parse(_write(tmp_path / "whole", "NTUSER.DAT", raw), tmp_path, registry="full")
    declared = int.from_bytes(raw[0x28:0x2C], "little")
    for cut in _cut_points(len(raw)):
        if cut >= 4096 + declared:
            continue  # slack after the declared bins: nothing lost
        d = tmp_path / f"cut{cut}"
        path = _write(d, "NTUSER.DAT", raw[:cut])
        df, ctx = parse(path, tmp_path, registry="full")
        rows = 0 if df is None else len(df)
        assert rows <= len(whole), cut  # a cut in free space loses no key
        assert ctx.partial, cut
        if cut >= 512:
            text = " ".join(w.message for w in ctx.warnings)
            assert f"file ends at byte {cut}" in text and f"declares {declared} bytes" in text, text
        entry = load_case(d, registry="full").inventory[0]
        assert entry.status == ("partial" if rows else "failed"), (cut, entry)
        assert entry.rows == rows


def _write(folder: Path, name: str, raw: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(raw)
    return folder / name


def test_targeted_load_without_declared_subtrees_says_why(tmp_path):
    """A sound NTUSER hive holding none of the subtrees the checks read is
    parsed (not failed), with the reason it has no rows."""
    d = tmp_path / "case"
    d.mkdir()
    shutil.copy(corpus(HIVES / "regipy-NTUSER.DAT"), d / "NTUSER.DAT")
    entry = load_case(d).inventory[0]
    if entry.rows:
        pytest.skip("the declared NTUSER subtrees now include keys of this hive")
    assert entry.status == "parsed" and "targeted load: none of the" in entry.detail
