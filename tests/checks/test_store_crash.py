"""store-crash: each cause true and false on hand-built rows (Application
Error 1000 with the structured crash fields, SCM 7031), severity by crash
count, applicability per host; the samples run end to end in
tests/test_samples.py."""
from __future__ import annotations

from datetime import timedelta

from analyzer import checks

from .exrows import T0, case, chatter, event, exchange2007, regkey, regval

CHECK = checks.get("store-crash")
MBX = "MBX01"
UR5 = "Update Rollup 5 for Exchange Server 2007 Service Pack 1 (KB953467)"
UR6 = "Update Rollup 6 for Exchange Server 2007 Service Pack 1 (KB959241)"
BLOG_OFFSET = "0x00000000001ed390"


def crash(n: int, app="store.exe", app_version="8.1.336.1", module="EXCDO.DLL", module_version="8.1.336.0",
          offset=BLOG_OFFSET) -> dict:
    return event(MBX, "Application Error", 1000, T0 + timedelta(hours=15 * n), level="error", n=100 + n,
                 data={"app": app, "app_version": app_version, "module": module, "module_version": module_version,
                       "exception_code": "0xC0000005", "offset": offset, "pid": 8136 + n, "layout": "2008"})


def scm(n: int) -> dict:
    return event(MBX, "Service Control Manager", 7031, T0 + timedelta(hours=15 * n, seconds=3), level="error",
                 channel="System", n=200 + n,
                 data={"service": "Microsoft Exchange Information Store", "crash_count": n + 1,
                       "action": "Restart the service"})


def mailbox(*extra: dict, build="8.1.336.1", rollups=(UR5,)) -> list[dict]:
    return (exchange2007(MBX, ("MailboxRole", "ClientAccessRole"), build=build, rollups=rollups)
            + chatter(MBX) + chatter(MBX, channel="System") + list(extra))


def run(rows: list[dict]):
    (f,) = CHECK.run(case(rows))
    return f, {c.id: c for c in f.causes}


def test_excdo_on_a_build_before_ur6_is_confirmed():
    f, c = run(mailbox(*[crash(i) for i in range(4)], *[scm(i) for i in range(4)]))
    assert f.status == "problem" and f.severity == "error"
    assert f.causes[0].id == "excdo-calendar-bug" and c["excdo-calendar-bug"].verdict == "confirmed"
    assert "8.1.336.1" in c["excdo-calendar-bug"].explanation and "4 time(s)" in c["excdo-calendar-bug"].explanation
    assert c["faulting-module"].verdict == "ruled_out"
    assert any("Update Rollup 6" in r and "confirm" in r for r in f.remediation)
    assert not any("fixes" in r and "KB 959241 fixes" in r for r in f.remediation)


def test_excdo_on_a_build_with_ur6_is_at_most_possible():
    rows = mailbox(*[crash(i, app_version="8.1.359.2", module_version="8.1.359.0", offset="0x1f0a44")
                     for i in range(2)], build="8.1.359.2", rollups=(UR6,
                     "Update Rollup 7 for Exchange Server 2007 Service Pack 1 (KB960384)"))
    f, c = run(rows)
    assert c["excdo-calendar-bug"].verdict == "possible"
    assert "already has" in c["excdo-calendar-bug"].explanation
    assert f.causes[0].id == "faulting-module" and c["faulting-module"].verdict == "confirmed"
    assert "EXCDO.DLL 8.1.359.0" in c["faulting-module"].explanation
    assert any("crash dump" in x for x in f.collect)


def test_excdo_with_the_build_unknown_is_likely():
    rows = [r for r in mailbox(*[crash(i, offset="0x1") for i in range(2)], rollups=())
            if "ConfiguredVersion" != r.get("value_name")]
    f, c = run(rows)
    assert c["excdo-calendar-bug"].verdict == "likely"


def test_other_module_named_with_count_and_span():
    f, c = run(mailbox(*[crash(i, module="EVMAPIFLT.DLL", module_version="9.0.1.1102", offset="0xc1d4")
                         for i in range(3)], build="8.1.340.1", rollups=(UR6,)))
    assert f.causes[0].id == "faulting-module" and c["faulting-module"].verdict == "confirmed"
    assert "EVMAPIFLT.DLL 9.0.1.1102: 3 times" in c["faulting-module"].explanation
    assert c["excdo-calendar-bug"].verdict == "ruled_out"
    assert "EVMAPIFLT.DLL" in c["faulting-module"].title


def test_severity_grows_with_the_crash_count():
    sev = [run(mailbox(*[crash(i, module="X.DLL") for i in range(n)]))[0].severity for n in (1, 3, 6)]
    assert sev == ["warning", "error", "critical"]


def test_service_terminations_without_1000_are_likely_a_module():
    f, c = run(mailbox(*[scm(i) for i in range(2)]))
    assert f.status == "problem" and c["faulting-module"].verdict == "likely"


def test_other_process_crashes_are_not_the_store():
    f, c = run(mailbox(*[crash(i, app="w3wp.exe", module="ntdll.dll") for i in range(3)]))
    assert f.status == "ok" and all(x.verdict == "ruled_out" for x in f.causes)
    assert "w3wp.exe (3)" in f.summary and f.evidence


def test_unread_crash_fields_are_inconclusive():
    rows = mailbox(event(MBX, "Application Error", 1000, T0, level="error", data={"strings": ["?"]}))
    f, c = run(rows)
    assert f.status == "inconclusive" and c["excdo-calendar-bug"].verdict == "possible"


def test_hub_transport_server_is_not_applicable():
    rows = exchange2007("HUB01", ("HubTransportRole",)) + chatter("HUB01")
    (f,) = CHECK.run(case(rows))
    assert f.status == "not_applicable" and "not a Mailbox server" in f.summary


def test_without_the_application_log_nothing_is_ruled_out():
    rows = [r for r in mailbox() if r.get("channel") != "Application"]
    f, c = run(rows)
    assert f.status == "inconclusive" and all(x.verdict == "possible" for x in f.causes)
    assert any("Application" in x for x in f.collect)


def test_real_windows_crashes_of_other_processes(corpus_dir):
    """A real Windows 7 Application log (shared corpus): Application Error
    1000 and WER 1001 of rundll32.exe and others, LoadPerf 1000 (another
    provider, not a crash). On a host that is given the Mailbox role, none
    of it is a store.exe crash: ok, naming the other processes."""
    from analyzer.case import load_case
    table = load_case(corpus_dir / "evtx" / "deepblue-many-events-application.evtx").table
    crash_hosts = table[(table["provider"] == "Application Error") & (table["event_id"] == 1000)]["host"]
    host = str(crash_hosts.iloc[0])
    rows = [{k: v for k, v in r.items() if v is not None and v == v}
            for r in table[table["host"] == host].to_dict("records")]
    findings = CHECK.run(case(rows + exchange2007(host, ("MailboxRole",))))
    (f,) = [x for x in findings if x.host == host]
    assert f.status == "ok", f.summary
    assert "rundll32.exe" in f.summary and all(c.verdict == "ruled_out" for c in f.causes)


def test_excdo_on_exchange_2003_is_another_module():
    rows = [regkey("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup", MBX),
            regval("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup", "ServicePackBuild", "REG_DWORD", "7638", MBX),
            event(MBX, "MSExchangeIS", 9523, T0, level="information", n=5)]
    rows += chatter(MBX) + [crash(i, app_version="6.5.7638.1", module="EXCDO.DLL", module_version="6.5.7638.1",
                                  offset="0x2f1c") for i in range(2)]
    f, c = run(rows)
    assert c["excdo-calendar-bug"].verdict == "ruled_out" and "Exchange 2007" in c["excdo-calendar-bug"].explanation
    assert f.causes[0].id == "faulting-module" and c["faulting-module"].verdict == "confirmed"
