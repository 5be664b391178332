"""mom-9986 on shapes outside its world, and Operations Manager 2007 script
events (KB 911143; "Missing 9986 Events in Operations Manager 2007").

Inputs are real files written by the project's writers (analyzer/synth) and
read through the normal case loader; the hive is read back by
python-registry as a second, independent reader.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from analyzer.case import load_case
from analyzer.checks import get
from analyzer.synth import EvtRecord, evt_bytes, hive_bytes

T0 = datetime(2008, 6, 3, 2, 0, tzinfo=timezone.utc)
EMPKP = "{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _independent_keys(hive: Path) -> set[str]:
    from Registry import Registry
    out: set[str] = set()

    def walk(k, prefix):
        for sk in k.subkeys():
            name = f"{prefix}\\{sk.name()}" if prefix else sk.name()
            out.add(name.lower())
            walk(sk, name)
    walk(Registry.Registry(str(hive)).root(), "")
    return out


def _run(case_dir: Path):
    case = load_case(case_dir)
    return case, get("mom-9986").run(case)


def test_exchange_2007_hub_without_mom_is_not_applicable(tmp_path: Path) -> None:
    """An Exchange 2007 hub whose SOFTWARE hive lacks the EMPKP CLSID and
    holds no MOM evidence: the helper's absence proves nothing there."""
    sw = _write(tmp_path / "HUB01" / "SOFTWARE", hive_bytes({
        r"Microsoft\Exchange\v8.0\HubTransportRole": {"ConfiguredVersion": ("REG_SZ", "8.1.240.6")},
        r"Microsoft\Exchange\v8.0\Setup": {"MsiInstallPath": ("REG_SZ", r"C:\Program Files\Microsoft\Exchange Server\\")},
        r"Microsoft\Exchange\Setup": {"Services": ("REG_SZ", r"C:\Program Files\Microsoft\Exchange Server")},
        r"Microsoft\Windows NT\CurrentVersion": {"CurrentVersion": ("REG_SZ", "6.0")},
        r"Classes\CLSID\{BA126AD1-2166-11D1-B1D0-00805FC1270E}": {"": ("REG_SZ", "other")},
    }, file_name="SOFTWARE"))
    assert "microsoft\\exchange\\v8.0\\hubtransportrole" in _independent_keys(sw)
    assert f"classes\\clsid\\{EMPKP.lower()}" not in _independent_keys(sw)
    _write(tmp_path / "HUB01" / "AppEvent.Evt", evt_bytes([
        EvtRecord(1000 + i, "MSExchangeTransport", T0 + timedelta(minutes=i), "information",
                  computer="HUB01", strings=["hub"]) for i in range(3)]))
    case, findings = _run(tmp_path)
    assert [(f.host, f.status) for f in findings] == [("HUB01", "not_applicable")]
    f = findings[0]
    assert "Exchange 2007" in f.summary and "do not apply" in f.summary
    assert not f.causes
    assert any("v8.0" in e.locator for e in f.evidence)


def test_unknown_version_and_no_mom_is_never_confirmed(tmp_path: Path) -> None:
    """A SOFTWARE hive with Exchange\\Setup but no build, no EMPKP CLSID and
    nothing showing MOM: the world is unknown, so nothing is confirmed."""
    _write(tmp_path / "SOFTWARE", hive_bytes({
        r"Microsoft\Exchange\Setup": {"Services": ("REG_SZ", r"C:\Program Files\Exchsrvr")},
        r"Classes\CLSID\{BA126AD1-2166-11D1-B1D0-00805FC1270E}": {"": ("REG_SZ", "other")},
    }, file_name="SOFTWARE"))
    _, findings = _run(tmp_path)
    assert len(findings) == 1
    f = findings[0]
    assert f.status == "inconclusive"
    assert all(c.verdict != "confirmed" for c in f.causes)


def _opsmgr_case(tmp_path: Path, script_ids: list[int]) -> Path:
    """Exchange 2003 (ServicePackBuild 7638) monitored by OpsMgr 2007: the
    agent logs the Exchange pack's script events as "Health Service Script"
    in the Operations Manager log, script name then description."""
    clsid = rf"Classes\CLSID\{EMPKP}"
    _write(tmp_path / "Registry" / "SOFTWARE", hive_bytes({
        r"Microsoft\Exchange\Setup": {"Services": ("REG_SZ", r"C:\Program Files\Exchsrvr"),
                                      "ServicePackBuild": ("REG_DWORD", 7638)},
        r"Microsoft\Windows NT\CurrentVersion": {"CurrentVersion": ("REG_SZ", "5.2")},
        clsid + r"\LocalServer32": {"": ("REG_SZ", r"C:\PROGRA~1\Exchsrvr\bin\empkp.exe")},
    }, file_name="SOFTWARE"))
    texts = {9987: ("Exchange - Check mailbox store availability - MAPI logon test",
                    'The MAPI logon test could not be run on Exchange server "EXCH01": the registry '
                    "key HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\ExMPLS was not found."),
             10000: ("Exchange - Publish ExMP Data",
                     "Failed to publish Exchange Management Pack data required for performing MAPI "
                     'logon on Exchange server:"EXCH01".')}
    recs = [EvtRecord(21025, "OpsMgr Connector", T0, "information", computer="EXCH01",
                      strings=["CONTOSO_OM"])]
    recs += [EvtRecord(eid, "Health Service Script", T0 + timedelta(minutes=i + 1),
                       "information" if eid == 9987 else "error", computer="EXCH01",
                       strings=list(texts[eid])) for i, eid in enumerate(script_ids)]
    _write(tmp_path / "EventLogs" / "Operations Manager.Evt", evt_bytes(recs))
    _write(tmp_path / "EventLogs" / "SysEvent.Evt", evt_bytes([
        EvtRecord(7036, "Service Control Manager", T0, "information", computer="EXCH01",
                  strings=["Microsoft Exchange Information Store", "running"])]))
    return tmp_path


def test_opsmgr_2007_health_service_script_publish_failure(tmp_path: Path) -> None:
    """The publish failure logged by the OpsMgr 2007 agent is a publish
    failure, not "the script is not running"."""
    _, findings = _run(_opsmgr_case(tmp_path, [9987, 10000]))
    f = next(x for x in findings if x.host == "EXCH01")
    assert f.status == "problem"
    assert f.top_cause.id == "publish-failed" and f.top_cause.verdict == "confirmed"
    assert next(c for c in f.causes if c.id == "publish-not-running").verdict == "ruled_out"
    assert f.facts["mom_version"] == "2007"
    assert any("Operations Manager.Evt" in e.path for e in f.top_cause.evidence)


def test_opsmgr_2007_other_health_service_script_is_not_ours(tmp_path: Path) -> None:
    """A Health Service Script event of another management pack with the
    same number is not the publish script's outcome."""
    root = _opsmgr_case(tmp_path, [9987])
    other = EvtRecord(10000, "Health Service Script", T0 + timedelta(hours=1), "error",
                      computer="EXCH01", strings=["Windows - Disk Space Script", "Disk C: is low"])
    _write(root / "EventLogs" / "Other.Evt", evt_bytes([other]))
    _, findings = _run(root)
    f = next(x for x in findings if x.host == "EXCH01")
    assert next(c for c in f.causes if c.id == "publish-failed").verdict == "ruled_out"
    assert f.top_cause.id == "publish-not-running"
