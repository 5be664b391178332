"""rpc-port-conflict (KB 926210 / KB 270836): KB listings through the real
parsers, decision logic on hand-built rows, and every scenario end to end."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from analyzer import checks
from analyzer.case import Case, load_case
from analyzer.checks.rpc_ports import is_symptom
from scenarios import build
from scenarios import rpc_ports as scen
from analyzer.sources import Options
from analyzer.table import row_data, rows_to_frame, validate

CHECK = checks.get("rpc-port-conflict")
UTC = timezone.utc
T0 = datetime(2007, 3, 12, 9, 15, 0, tzinfo=UTC)
SEED_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "seeds"

# ---------------------------------------------------------------------------
# KB 926210's two listings, verbatim (the second line of the NSPI group keeps
# the KB's own typo "MS ExchangeDirectory NSPI Proxy").
KB_COMPLETE = """ncacn_ip_tcp(Connection-oriented TCP/IP)
  10.0.100.32[1987] [38a94e72-a9bc-11d2-8faf-00c04fa378ff] MS Exchange MTA 'QAdmin' Interface :NOT_PINGED
  10.0.100.33[1987] [38a94e72-a9bc-11d2-8faf-00c04fa378ff] MS Exchange MTA 'QAdmin' Interface :NOT_PINGED
  10.0.100.32[1987] [9e8ee830-4459-11ce-979b-00aa005ffebe] MS Exchange MTA 'Mta' Interface :NOT_PINGED
  10.0.100.33[1987] [9e8ee830-4459-11ce-979b-00aa005ffebe] MS Exchange MTA 'Mta' Interface :NOT_PINGED
  10.0.100.32[1033] [a4f1db00-ca47-1067-b31f-00dd010662da] Exchange Server STORE EMSMDB Interface :NOT_PINGED
  10.0.100.33[1033] [a4f1db00-ca47-1067-b31f-00dd010662da] Exchange Server STORE EMSMDB Interface :NOT_PINGED
  10.0.100.32[1033] [0e4a0156-dd5d-11d2-8c2f-00c04fb6bcde] Microsoft Information Store :NOT_PINGED
  10.0.100.32[1033] [1453c42c-0fa6-11d2-a910-00c04f990f3b] Microsoft Information Store :NOT_PINGED
  10.0.100.32[1033] [10f24e8e-0fa6-11d2-a910-00c04f990f3b] Microsoft Information Store :NOT_PINGED
  10.0.100.32[1033] [99e64010-b032-11d0-97a4-00c04fd6551d] Exchange Server STORE ADMIN Interface :NOT_PINGED
  10.0.100.32[1033] [99e64010-b032-11d0-97a4-00c04fd6551d] Exchange Server STORE ADMIN Interface :NOT_PINGED
  10.0.100.32[1033] [89742ace-a9ed-11cf-9c0c-08002be7ae86] Exchange Server STORE ADMIN Interface :NOT_PINGED
  10.0.100.32[1033] [a4f1db00-ca47-1067-b31e-00dd010662da] Exchange Server STORE ADMIN Interface :NOT_PINGED
  10.0.100.32[1032] [f5cc5a18-4264-101a-8c59-08002b2f8426] MS Exchange Directory NSPI Proxy :NOT_PINGED
  10.0.100.33[1032] [f5cc5a18-4264-101a-8c59-08002b2f8426] MS ExchangeDirectory NSPI Proxy :NOT_PINGED
  10.0.100.32[1031] [1544f5e0-613c-11d1-93df-00c04fd7bd09] MS Exchange Directory RFR Interface :NOT_PINGED
  10.0.100.32[1031] [f930c514-1215-11d3-99a5-00a0c9b61b04] MS Exchange System Attendant Cluster Interface :NOT_PINGED
  10.0.100.32[1031] [83d72bf0-0d89-11ce-b13f-00aa003bac6c] MS Exchange System Attendant Private Interface :NOT_PINGED
  10.0.100.32[1031] [469d6ec0-0d87-11ce-b13f-00aa003bac6c] MS Exchange System Attendant Public Interface :NOT_PINGED
"""

KB_MISSING = """ncacn_ip_tcp(Connection-oriented TCP/IP)
  10.0.100.32[3595] [38a94e72-a9bc-11d2-8faf-00c04fa378ff] MS Exchange MTA 'QAdmin' Interface :NOT_PINGED
  10.0.100.33[3595] [38a94e72-a9bc-11d2-8faf-00c04fa378ff] MS Exchange MTA 'QAdmin' Interface :NOT_PINGED
  10.0.100.34[3595] [38a94e72-a9bc-11d2-8faf-00c04fa378ff] MS Exchange MTA 'QAdmin' Interface :NOT_PINGED
  10.0.100.32[3595] [9e8ee830-4459-11ce-979b-00aa005ffebe] MS Exchange MTA 'Mta' Interface :NOT_PINGED
  10.0.100.33[3595] [9e8ee830-4459-11ce-979b-00aa005ffebe] MS Exchange MTA 'Mta' Interface :NOT_PINGED
  10.0.100.34[3595] [9e8ee830-4459-11ce-979b-00aa005ffebe] MS Exchange MTA 'Mta' Interface :NOT_PINGED
  10.0.100.32[1032] [f5cc5a18-4264-101a-8c59-08002b2f8426] MS Exchange Directory NSPI Proxy :NOT_PINGED
  10.0.100.33[1032] [f5cc5a18-4264-101a-8c59-08002b2f8426] MS Exchange Directory NSPI Proxy :NOT_PINGED
  10.0.100.34[1032] [f5cc5a18-4264-101a-8c59-08002b2f8426] MS Exchange Directory NSPI Proxy :NOT_PINGED
  10.0.100.32[3518] [1544f5e0-613c-11d1-93df-00c04fd7bd09] MS Exchange Directory RFR Interface :NOT_PINGED
  10.0.100.33[3518] [1544f5e0-613c-11d1-93df-00c04fd7bd09] MS Exchange Directory RFR Interface :NOT_PINGED
  10.0.100.34[3518] [1544f5e0-613c-11d1-93df-00c04fd7bd09] MS Exchange Directory RFR Interface :NOT_PINGED
"""

IS_UUIDS = ["a4f1db00-ca47-1067-b31f-00dd010662da", "0e4a0156-dd5d-11d2-8c2f-00c04fb6bcde",
            "1453c42c-0fa6-11d2-a910-00c04f990f3b", "10f24e8e-0fa6-11d2-a910-00c04f990f3b",
            "99e64010-b032-11d0-97a4-00c04fd6551d", "89742ace-a9ed-11cf-9c0c-08002be7ae86",
            "a4f1db00-ca47-1067-b31e-00dd010662da"]
SA_UUIDS = ["1544f5e0-613c-11d1-93df-00c04fd7bd09", "f930c514-1215-11d3-99a5-00a0c9b61b04",
            "83d72bf0-0d89-11ce-b13f-00aa003bac6c", "469d6ec0-0d87-11ce-b13f-00aa003bac6c"]
MTA_UUIDS = ["38a94e72-a9bc-11d2-8faf-00c04fa378ff", "9e8ee830-4459-11ce-979b-00aa005ffebe"]
NSPI = "f5cc5a18-4264-101a-8c59-08002b2f8426"
RFR = "1544f5e0-613c-11d1-93df-00c04fd7bd09"


def _run_dir(tmp_path: Path, files: dict[str, str | bytes]):
    for name, body in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            p.write_bytes(body)
        else:
            p.write_bytes(body.replace("\n", "\r\n").encode("cp437"))
    case = load_case(tmp_path)
    return case, CHECK.run(case)


def _one(findings):
    assert len(findings) == 1, [f.host for f in findings]
    return findings[0]


def _verdicts(f) -> dict[str, str]:
    return {c.id: c.verdict for c in f.causes}


# ---------------------------------------------------------------------------
# rows for the decision tests

def _case(rows):
    df = rows_to_frame(rows)
    validate(df)
    return Case("t", "t", inventory=[], table_=df, warnings=[], options=Options())


def ep(uuid: str, port: int, host: str | None = "EXCH01", proto: str = "ncacn_ip_tcp", n: int = 1,
       annotation: str | None = None):
    return {"kind": "endpoint", "source": "rpcdump", "host": host, "path": "rpcdump.txt",
            "locator": f"line={n}", "message": f"{proto}:10.0.100.32[{port}] {uuid}",
            "data": {"protocol": proto, "address": "10.0.100.32", "endpoint": str(port),
                     "port": port, "uuid": uuid, "annotation": annotation}}


def dump(ports: dict[str, int], host: str | None = "EXCH01"):
    return [ep(u, p, host=host, n=i + 1) for i, (u, p) in enumerate(ports.items())]


def full_ports(is_port=1033, sa_port=1031, nspi_port=1032, mta_port=3595):
    d = {u: is_port for u in IS_UUIDS}
    d.update({u: sa_port for u in SA_UUIDS})
    d.update({u: mta_port for u in MTA_UUIDS})
    d[NSPI] = nspi_port
    return d


def reg(key: str, name: str, value, vtype="REG_DWORD", host="EXCH01", path="registry/SYSTEM"):
    return {"kind": "registry_value", "source": "hive", "host": host, "path": path,
            "key": key, "value_name": name, "value_type": vtype, "value": str(value),
            "locator": f"key={key}"}


def system(current=2, cs1=None, cs2=None, host="EXCH01"):
    """SYSTEM hive rows: Select\\Current and per-control-set values
    ({relative key: {value: int}})."""
    rows = [reg("HKLM\\SYSTEM\\Select", "Current", current, host=host)]
    for n, vals in ((1, cs1), (2, cs2)):
        base = f"HKLM\\SYSTEM\\ControlSet{n:03d}\\Services"
        rows.append(reg(f"{base}\\MSExchangeIS", "Start", 2, host=host))
        rows.append(reg(f"{base}\\MSExchangeSA", "Start", 2, host=host))
        for rel, values in (vals or {}).items():
            for name, v in values.items():
                rows.append(reg(f"{base}\\{rel}", name, v, host=host))
    return rows


IS_KEY = "MSExchangeIS\\ParametersSystem"
SA_KEY = "MSExchangeSA\\Parameters"


def listener(port: int, pid: int | None, n: int = 1, state="LISTENING", kind="listener",
             local="0.0.0.0"):
    return {"kind": kind, "source": "netstat", "path": "netstat.txt", "locator": f"line={n}",
            "message": f"TCP {local}:{port}", "data": {"protocol": "TCP", "local_address": local,
                                                       "local_port": port, "state": state,
                                                       "pid": pid}}


def proc(image: str, pid: int, services: list[str], n: int = 1):
    return {"kind": "process", "source": "tasklist", "path": "tasklist.txt", "locator": f"line={n}",
            "message": f"{image} pid={pid}", "data": {"image": image, "pid": pid,
                                                       "services": services}}


EXCHANGE_PROCS = [proc("store.exe", 2768, ["MSExchangeIS"], 10), proc("mad.exe", 1604, ["MSExchangeSA"], 11),
                  proc("emsmta.exe", 1744, ["MSExchangeMTA"], 12), proc("svchost.exe", 744, ["RpcSs"], 13)]


def sec(event_id: int, strings=None, message=None, named=None, host="EXCH01", n=1):
    data = dict(named or {})
    if strings is not None:
        data["strings"] = strings
    return {"kind": "event", "source": "evt", "host": host, "channel": "Security",
            "provider": "Security", "event_id": event_id, "level": "audit_failure",
            "ts": T0, "ts_source": "utc", "path": "SecEvent.Evt", "locator": f"record={n}",
            "message": message, "data": data or None}


EV529 = ["jsmith", "WS-0142", "3", "NtLmSsp ", "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "WS-0142"]
EV681 = ["jsmith", "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "WS-0142", "3221225572"]


# ---------------------------------------------------------------------------
# KB listings through the real parsers

def test_kb_complete_listing_is_ok(tmp_path):
    case, fs = _run_dir(tmp_path, {"rpcdump.txt": KB_COMPLETE})
    f = _one(fs)
    assert f.status == "ok" and f.severity == "info"
    assert set(f.facts["groups_present"]) == {"Information Store", "MTA", "Directory (NSPI/RFR)",
                                               "System Attendant"}
    assert f.facts["groups_missing"] == [] and f.facts["interfaces_missing"] == []
    assert all(c.verdict == "ruled_out" for c in f.causes)


def test_kb_missing_listing_names_missing_groups(tmp_path):
    case, fs = _run_dir(tmp_path, {"rpcdump.txt": KB_MISSING})
    f = _one(fs)
    assert f.status == "problem"
    assert f.severity == "critical"  # every Information Store interface is gone
    assert f.facts["groups_missing"] == ["Information Store", "System Attendant"]
    assert f.facts["groups_present"] == ["MTA", "Directory (NSPI/RFR)"]
    missing = {m["uuid"] for m in f.facts["interfaces_missing"]}
    assert missing == set(IS_UUIDS) | (set(SA_UUIDS) - {RFR})
    assert "lacks Information Store, System Attendant" in f.summary
    assert "Not decided between" in f.summary  # nothing points at one cause yet
    assert f.evidence[0].locator == "protseq=ncacn_ip_tcp"
    assert "missing: Information Store, System Attendant" in f.evidence[0].excerpt
    # No registry, netstat or tasklist: nothing is decided, the collect list says what to get.
    assert set(_verdicts(f).values()) == {"possible"}
    assert any("SYSTEM registry hive" in c for c in f.collect)


def test_kb_listings_match_the_seed_article():
    """The embedded listings are the article's (when the seeds are present)."""
    seed = SEED_DIR / "002_a5b9b3c4c3d940b7.txt"
    if not seed.is_file():
        pytest.skip("shared seeds not available")
    text = seed.read_text(encoding="utf-8")
    for line in KB_MISSING.splitlines()[1:]:
        assert line.strip() in text
    for line in KB_COMPLETE.splitlines()[1:]:
        assert line.strip() in text


def test_annotation_variants_key_on_uuid(tmp_path):
    """Empty annotations, the KB typo and impacket/2010-style names still count."""
    odd = {NSPI: "MS ExchangeDirectory NSPI Proxy", RFR: "MS Exchange RFR Interface",
           IS_UUIDS[0]: "[MS-OXCRPC]: Wire Format Protocol", IS_UUIDS[1]: ""}
    lines = ["ncacn_ip_tcp(Connection-oriented TCP/IP)"]
    for u, p in full_ports().items():
        ann = odd.get(u, "Some Other Name")
        lines.append(f"  10.0.100.32[{p}] [{u.upper() if p == 1033 else u}] {ann} :NOT_PINGED")
    case, fs = _run_dir(tmp_path, {"dump.txt": "\n".join(lines) + "\n"})
    f = _one(fs)
    assert f.status == "ok", f.summary


def test_portqry_and_impacket_dumps(tmp_path):
    pq = ["Querying target system called:", "", " EXCH01", "",
          "TCP port 135 (epmap service): LISTENING", "", "Using ephemeral source port",
          "Querying Endpoint Mapper Database...", "Server's response:", ""]
    for u, p in full_ports().items():
        pq += [f"UUID: {u} Exchange", f"ncacn_ip_tcp:10.0.100.32[{p}]", ""]
    pq += [f"Total endpoints found: {len(full_ports())}", "",
           "==== End of RPC Endpoint Mapper query response ===="]
    (tmp_path / "a").mkdir()
    case, fs = _run_dir(tmp_path / "a", {"portqry.txt": "\n".join(pq) + "\n"})
    assert _one(fs).status == "ok"

    imp = ["Impacket v0.10.0 - Copyright 2022 SecureAuth Corporation", "",
           "[*] Retrieving endpoint list from 10.0.100.32"]
    for u, p in full_ports().items():
        if u == SA_UUIDS[1]:
            continue  # the System Attendant Cluster interface is gone
        imp += ["Protocol: N/A ", "Provider: N/A ", f"UUID    : {u.upper()} v1.0 ", "Bindings: ",
                f"          ncacn_ip_tcp:10.0.100.32[{p}]", ""]
    imp.append("[*] Received 13 endpoints.")
    (tmp_path / "b").mkdir()
    case, fs = _run_dir(tmp_path / "b", {"impacket.txt": "\n".join(imp) + "\n"})
    f = _one(fs)
    assert f.status == "problem" and f.severity == "error"
    assert f.facts["groups_partial"] == ["System Attendant"]


# ---------------------------------------------------------------------------
# symptoms

@pytest.mark.parametrize("row,expected", [
    (sec(529, EV529), True),
    (sec(529, ["admin", "EXCH01", "2", "User32  ", "Negotiate", "EXCH01"]), False),  # console typo
    (sec(529, ["jsmith", "WS", "3", "Kerberos", "Kerberos", "WS"]), False),
    (sec(681, EV681), True),
    (sec(681, ["jsmith", "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "WS", "3221225578"]), False),
    (sec(681, message="The logon to account: jsmith\nby: MICROSOFT_AUTHENTICATION_PACKAGE_V1_0\n"
                      "from workstation: WS-0142\nfailed. The error code was: 3221225572"), True),
    (sec(529, message="Logon Failure:\n Reason: Unknown user name or bad password\n User Name: x\n"
                      " Logon Type: 3\n Logon Process: NtLmSsp\n"), True),
    (sec(4625, named={"LogonType": "3", "Status": "0xc000006d", "SubStatus": "0xc0000064",
                      "LogonProcessName": "NtLmSsp "}), True),
    (sec(4625, named={"LogonType": "10", "Status": "0xc000006d", "SubStatus": "0xc0000064"}), False),
    (sec(4776, named={"PackageName": "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", "Status": "0xC0000064"}), True),
    (sec(4776, named={"Status": "0xc000006a"}), False),
    (sec(680, message="Logon attempt by: MICROSOFT_AUTHENTICATION_PACKAGE_V1_0\nLogon account: x\n"
                      "Source Workstation: WS\nError Code: 0xC0000064"), True),
])
def test_symptom_matching(row, expected):
    r = dict(row)
    r["_data"] = row_data(__import__("json").dumps(r["data"]) if r.get("data") else None)
    assert is_symptom(r) is expected


def test_symptoms_alone_are_inconclusive_with_collect():
    f = _one(CHECK.run(_case([sec(529, EV529, n=1), sec(681, EV681, n=2),
                              sec(529, ["a", "b", "2", "User32", "N", "b"], n=3)])))
    assert f.status == "inconclusive" and f.severity == "warning"
    assert f.host == "EXCH01"
    text = "\n".join(f.collect)
    assert "rpcdump /S EXCH01" in text and "portqry -n EXCH01 -e 135" in text
    assert "SYSTEM registry hive" in text and "netstat -ano" in text and "tasklist /svc" in text
    assert f.facts["symptom_events"] == 2
    assert {e.locator for e in f.evidence} == {"record=1", "record=2"}


def test_not_applicable_without_exchange_world():
    """A domain controller's dump (NSPI served by lsass.exe), its registry and
    a console logon typo are not Exchange's world."""
    rows = [ep(NSPI, 1025, host="DC01"), ep("12345778-1234-abcd-ef00-0123456789ac", 1025, host="DC01", n=2),
            reg("HKLM\\SYSTEM\\ControlSet001\\Services\\NTDS\\Parameters", "TCP/IP Port", 1032, host="DC01"),
            reg("HKLM\\SYSTEM\\Select", "Current", 1, host="DC01"),
            listener(1032, 488), proc("lsass.exe", 488, ["NTDS", "SamSs"]),
            sec(529, ["a", "b", "2", "User32", "N", "b"], host="DC01")]
    f = _one(CHECK.run(_case(rows)))
    assert f.status == "not_applicable" and f.host == "DC01" and not f.causes  # the only machine


# ---------------------------------------------------------------------------
# static-port-in-use

def _conflict_rows(current=2, with_tasklist=True, with_netstat=True):
    missing = {u: p for u, p in full_ports().items() if u not in IS_UUIDS}
    rows = dump(missing) + system(current=current,
                                  cs1={IS_KEY: {"TCP/IP Port": 6010}},
                                  cs2={IS_KEY: {"TCP/IP Port": 1033}})
    if with_netstat:
        rows += [listener(1033, 2412, 1), listener(135, 744, 2), listener(1032, 1604, 3),
                 listener(1031, 1604, 4)]
    if with_tasklist:
        rows += EXCHANGE_PROCS + [proc("beremote.exe", 2412, ["BackupExecAgentAgent"], 20)]
    return rows


def test_static_port_in_use_confirmed_through_select_current():
    f = _one(CHECK.run(_case(_conflict_rows())))
    assert f.status == "problem" and f.severity == "critical"
    assert f.top_cause.id == "static-port-in-use" and f.top_cause.verdict == "confirmed"
    expl = f.top_cause.explanation
    assert "1033" in expl and "PID 2412" in expl and "beremote.exe" in expl
    assert "BackupExecAgentAgent" in expl and "Microsoft Information Store" in expl
    assert f.facts["conflicts"][0]["pid"] == 2412
    assert f.facts["conflicts"][0]["image"] == "beremote.exe"
    assert f.facts["current_control_set"] == 2
    assert [s["port"] for s in f.facts["static_ports"]] == [1033]
    v = _verdicts(f)
    assert v["endpoints-missing"] == "ruled_out" and v["static-port-duplicate"] == "ruled_out"
    locs = {e.locator for e in f.top_cause.evidence}
    assert "key=HKLM\\SYSTEM\\ControlSet002\\Services\\MSExchangeIS\\ParametersSystem" in locs
    assert "beremote.exe" in f.summary and "1033" in f.summary


def test_wrong_control_set_is_not_read():
    """Select\\Current = 1: the current port is 6010, which nobody holds now;
    1033 (ControlSet002, held by beremote.exe) is not the running config."""
    f = _one(CHECK.run(_case(_conflict_rows(current=1))))
    v = _verdicts(f)
    assert [s["port"] for s in f.facts["static_ports"]] == [6010]
    assert f.facts["conflicts"] == []
    assert "beremote.exe" not in f.summary and "1033" not in f.summary
    # 6010 is free now while the store's interfaces are missing: the holder may
    # have gone since the store started, so the KB's cause stays possible.
    assert v["static-port-in-use"] == "possible"
    assert "6010" in {c.id: c for c in f.causes}["static-port-in-use"].explanation
    assert f.status == "problem"


def test_static_port_free_now_with_interfaces_missing_is_possible_not_ruled_out():
    """KB 926210: the service does not retry. A static port nobody holds when
    netstat ran, with its interfaces missing, is still a candidate, and the
    fix says to restart the service that lost it."""
    missing = {u: p for u, p in full_ports().items() if u not in IS_UUIDS}
    rows = dump(missing) + system(cs2={IS_KEY: {"TCP/IP Port": 1033}})
    rows += [listener(135, 744, 2)] + EXCHANGE_PROCS
    f = _one(CHECK.run(_case(rows)))
    c = {c.id: c for c in f.causes}["static-port-in-use"]
    assert c.verdict == "possible" and "no process holds the port" in c.explanation
    assert any("Restart MSExchangeIS on EXCH01" in r for r in c.remediation)
    assert {e.locator for e in c.evidence} == {
        "key=HKLM\\SYSTEM\\ControlSet002\\Services\\MSExchangeIS\\ParametersSystem"}
    # True negative: the same free port with the store's interfaces present.
    rows = dump(full_ports(is_port=3600)) + system(cs2={IS_KEY: {"TCP/IP Port": 1033}})
    rows += [listener(135, 744, 2)] + EXCHANGE_PROCS
    f = _one(CHECK.run(_case(rows)))
    assert {c.id: c for c in f.causes}["static-port-in-use"].verdict == "ruled_out"


def test_in_use_without_tasklist_is_likely_and_asks_for_it():
    f = _one(CHECK.run(_case(_conflict_rows(with_tasklist=False))))
    assert f.top_cause.id == "static-port-in-use" and f.top_cause.verdict == "likely"
    assert "PID 2412" in f.top_cause.explanation
    assert any("tasklist /svc" in c for c in f.collect)


def test_static_port_without_netstat_is_likely_and_asks_for_netstat():
    f = _one(CHECK.run(_case(_conflict_rows(with_tasklist=False, with_netstat=False))))
    assert f.top_cause.id == "static-port-in-use" and f.top_cause.verdict == "likely"
    text = "\n".join(f.collect)
    assert "netstat -ano" in text and "tasklist /svc" in text


@pytest.mark.parametrize("max_user_port,in_range", [(None, True), (65534, True), (1030, False)])
def test_outgoing_connection_on_static_port_in_client_range(max_user_port, in_range):
    rows = dump({u: p for u, p in full_ports().items() if u not in SA_UUIDS[1:]})
    tcpip = {"Tcpip\\Parameters": {"MaxUserPort": max_user_port}} if max_user_port else {}
    rows += system(cs2={SA_KEY: {"TCP/IP Port": 1031}, **tcpip})
    rows += [listener(1040, 1312, 1, state="ESTABLISHED", kind="connection"),
             {**listener(1031, 1312, 2, state="ESTABLISHED", kind="connection")}]
    rows += EXCHANGE_PROCS + [proc("inetinfo.exe", 1312, ["IISADMIN", "SMTPSVC", "W3SVC"], 30)]
    f = _one(CHECK.run(_case(rows)))
    assert f.top_cause.id == "static-port-in-use" and f.top_cause.verdict == "confirmed"
    assert ("client port range" in f.top_cause.explanation) is in_range
    assert f.severity == "error"
    assert f.facts["groups_missing"] == ["System Attendant"]


# ---------------------------------------------------------------------------
# healthy servers (true negatives)

def test_healthy_static_ports_held_by_own_processes_is_ok():
    rows = dump(full_ports()) + system(cs2={IS_KEY: {"TCP/IP Port": 1033},
                                            SA_KEY: {"TCP/IP Port": 1031, "TCP/IP NSPI Port": 1032}})
    rows += [listener(1033, 2768, 1), listener(1031, 1604, 2), listener(1032, 1604, 3)]
    rows += EXCHANGE_PROCS
    f = _one(CHECK.run(_case(rows)))
    assert f.status == "ok" and f.severity == "info"
    assert all(c.verdict == "ruled_out" for c in f.causes)
    assert "store.exe" in {c.id: c for c in f.causes}["static-port-in-use"].explanation


def test_same_process_sharing_a_port_is_not_a_conflict():
    rows = dump(full_ports(sa_port=1031, nspi_port=1031)) + system(
        cs2={SA_KEY: {"TCP/IP Port": 1031, "TCP/IP NSPI Port": 1031}})
    f = _one(CHECK.run(_case(rows)))
    assert f.status == "ok"
    assert "one process" in {c.id: c for c in f.causes}["static-port-duplicate"].explanation


def test_exchange_2010_profile_does_not_expect_mta_or_sa():
    rows = dump({"a4f1db00-ca47-1067-b31f-00dd010662da": 59531,
                 "5261574a-4572-206e-b268-6b199213b4e4": 59531, NSPI: 59532, RFR: 59532})
    f = _one(CHECK.run(_case(rows)))
    assert f.status == "ok" and f.facts["profile"] == "exchange-2010"


# ---------------------------------------------------------------------------
# static-port-duplicate

def test_duplicate_between_store_and_system_attendant_confirmed():
    rows = dump({u: p for u, p in full_ports(sa_port=4000).items() if u not in IS_UUIDS})
    rows += system(cs2={IS_KEY: {"TCP/IP Port": 4000}, SA_KEY: {"TCP/IP Port": 4000}})
    rows += [listener(4000, 1604, 1)] + EXCHANGE_PROCS
    f = _one(CHECK.run(_case(rows)))
    assert f.top_cause.id == "static-port-duplicate" and f.top_cause.verdict == "confirmed"
    assert _verdicts(f)["static-port-in-use"] == "ruled_out"
    assert "4000" in f.top_cause.explanation


def test_duplicate_with_global_catalog_port_latent():
    """Exchange on a DC: NSPI proxy and the GC's NTDS port are both 1032. The
    dump is complete now (latent conflict) -> likely, warning."""
    rows = dump(full_ports()) + system(cs2={SA_KEY: {"TCP/IP NSPI Port": 1032},
                                            "NTDS\\Parameters": {"TCP/IP Port": 1032}})
    f = _one(CHECK.run(_case(rows)))
    assert f.status == "problem" and f.severity == "warning"
    assert f.top_cause.id == "static-port-duplicate" and f.top_cause.verdict == "likely"
    assert "NTDS" in f.top_cause.explanation


# ---------------------------------------------------------------------------
# endpoints-missing

def test_endpoints_missing_without_static_ports_store_not_running():
    rows = dump({u: p for u, p in full_ports().items() if u not in IS_UUIDS})
    rows += system(cs2={IS_KEY: {"Working Directory": 0}})
    rows += [listener(135, 744, 1)] + [p for p in EXCHANGE_PROCS if p["data"]["image"] != "store.exe"]
    f = _one(CHECK.run(_case(rows)))
    assert f.top_cause.id == "endpoints-missing" and f.top_cause.verdict == "confirmed"
    assert "MSExchangeIS" in f.top_cause.explanation
    v = _verdicts(f)
    assert v["static-port-in-use"] == "ruled_out" and v["static-port-duplicate"] == "ruled_out"
    # tasklist /svc already answers "is it running"; the System log is what is missing.
    assert not any("sc query" in c for c in f.collect)
    assert any("System log of EXCH01" in c for c in f.collect)
    # The fix is to start the service, not the static-port advice.
    assert f.remediation[0].startswith("Start Microsoft Exchange Information Store on EXCH01")
    assert not any("static port mappings" in r for r in f.remediation)


def test_endpoints_missing_service_running_is_likely():
    rows = dump({u: p for u, p in full_ports().items() if u not in IS_UUIDS})
    rows += system(cs2={}) + EXCHANGE_PROCS
    f = _one(CHECK.run(_case(rows)))
    assert f.top_cause.id == "endpoints-missing" and f.top_cause.verdict == "likely"
    assert "store.exe" in f.top_cause.explanation


# ---------------------------------------------------------------------------
# hosts

def test_one_finding_per_server():
    rows = dump(full_ports(), host="EXCH01.contoso.local")
    rows += [dict(r, locator=f"line={100 + i}") for i, r in enumerate(
        dump({u: p for u, p in full_ports().items() if u not in IS_UUIDS}, host="EXCH02"))]
    fs = CHECK.run(_case(rows))
    by = {f.host: f for f in fs}
    assert set(by) == {"EXCH01.contoso.local", "EXCH02"}
    assert by["EXCH01.contoso.local"].status == "ok"
    assert by["EXCH02"].status == "problem"


# ---------------------------------------------------------------------------
# scenarios end to end

@pytest.mark.parametrize("sc", scen.SCENARIOS, ids=lambda s: s.name)
def test_scenarios_end_to_end(sc, tmp_path):
    target = build(sc, tmp_path)
    case = load_case(target / "case")
    validate(case.table)
    fs = CHECK.run(case)
    for exp in sc.expected:
        assert any(f.status == exp.status and (exp.top_cause is None or (
            f.top_cause is not None and f.top_cause.id == exp.top_cause)) for f in fs), \
            [(f.host, f.status, f.top_cause and f.top_cause.id, f.summary) for f in fs]


def test_german_netstat_scenario_names_the_holder(tmp_path):
    sc = next(s for s in scen.SCENARIOS if s.name == "rpc-port-conflict-german-netstat")
    case = load_case(build(sc, tmp_path) / "case")
    f = _one(CHECK.run(case))
    assert f.host == "EXCH01"
    held = {(c["port"], c["image"]) for c in f.facts["conflicts"]}
    assert held == {(1033, "beremote.exe"), (1031, "inetinfo.exe")}


def test_reg_export_scenario_reads_current_control_set(tmp_path):
    sc = next(s for s in scen.SCENARIOS if s.name == "rpc-port-conflict-reg-export-duplicate")
    case = load_case(build(sc, tmp_path) / "case")
    f = _one(CHECK.run(case))
    ports = {(s["service"], s["value"].lower(), s["port"]) for s in f.facts["static_ports"]}
    assert ("MSExchangeIS", "tcp/ip port", 4000) in ports
    assert ("MSExchangeSA", "tcp/ip port", 4000) in ports
    assert all(s["source"] == "exchange-services.reg" for s in f.facts["static_ports"])


def test_symptoms_only_scenario_counts_the_kb_pairs(tmp_path):
    sc = next(s for s in scen.SCENARIOS if s.name == "rpc-port-conflict-symptoms-only")
    case = load_case(build(sc, tmp_path) / "case")
    f = _one(CHECK.run(case))
    assert f.host == "EXCH01" and f.status == "inconclusive"
    assert f.facts["symptom_events"] == 6  # three 529/681 pairs; the console 529 is not one
    assert any("rpcdump /S EXCH01" in c for c in f.collect)


def test_conflict_scenario_reads_security_evt(tmp_path):
    """Security .evt symptoms are read by the legacy .evt source."""
    sc = next(s for s in scen.SCENARIOS if s.name == "rpc-port-conflict-static-port-in-use")
    case = load_case(build(sc, tmp_path) / "case")
    f = _one(CHECK.run(case))
    assert f.facts["symptom_events"] > 0
    assert any(e.path.endswith("SecEvent.Evt") for e in f.evidence)


# ---------------------------------------------------------------------------
# review fixes: remediation follows the cause and names the value

def test_in_use_remediation_names_value_port_holder_and_service():
    f = _one(CHECK.run(_case(_conflict_rows())))
    fix = f.top_cause.remediation[0]
    assert "EXCH01" in fix and '"TCP/IP Port"' in fix
    assert "HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchangeIS\\ParametersSystem" in fix
    assert "not 1033" in fix and "beremote.exe" in fix and "PID 2412" in fix
    assert "(MSExchangeIS)" in fix and "above 5000" in fix  # 1033 is in the client range
    assert f.remediation[0] == fix
    assert f.remediation[-1].startswith("Verify with `rpcdump /S EXCH01`")
    assert "the Information Store interfaces are back" in f.remediation[-1]
    assert "<server>" not in " ".join(f.remediation)
    # The summary names the holder briefly; the cause has the services.
    assert "held by beremote.exe (PID 2412)" in f.summary
    assert "Cause: static-port-in-use (confirmed)." in f.summary


def test_in_use_remediation_outside_client_range_has_no_range_advice():
    missing = {u: p for u, p in full_ports().items() if u not in IS_UUIDS}
    rows = dump(missing) + system(cs2={IS_KEY: {"TCP/IP Port": 6010}})
    rows += [listener(6010, 2412, 1)] + EXCHANGE_PROCS + [proc("beremote.exe", 2412, ["BackupExecAgentAgent"], 20)]
    f = _one(CHECK.run(_case(rows)))
    assert f.top_cause.id == "static-port-in-use" and f.top_cause.verdict == "confirmed"
    assert "not 6010" in f.top_cause.remediation[0]
    assert "client port range" not in f.top_cause.remediation[0]


def test_duplicate_remediation_names_both_values():
    rows = dump({u: p for u, p in full_ports(sa_port=4000).items() if u not in IS_UUIDS})
    rows += system(cs2={IS_KEY: {"TCP/IP Port": 4000}, SA_KEY: {"TCP/IP Port": 4000}})
    rows += [listener(4000, 1604, 1)] + EXCHANGE_PROCS
    f = _one(CHECK.run(_case(rows)))
    fix = f.top_cause.remediation[0]
    assert fix.startswith("Port 4000 is set for MSExchangeIS")
    assert "MSExchangeSA \"TCP/IP Port\"" in fix and "EXCH01" in fix
    assert "restart MSExchangeIS, MSExchangeSA" in fix
    assert not any("net start" in r for r in f.remediation)


# ---------------------------------------------------------------------------
# endpoints-missing reads the System log the case already has

def scm(event_id: int, first: str, host="EXCH01", n=1, named=False, provider="Service Control Manager"):
    data = {"param1": first, "param2": "1"} if named else {"strings": [first, "1", "0", "1", "Restart the service"]}
    return {"kind": "event", "source": "evt", "host": host, "channel": "System",
            "provider": provider, "event_id": event_id, "level": "error",
            "ts": datetime(2007, 3, 12, 12, 0, 0, tzinfo=UTC), "ts_source": "utc",
            "path": "SysEvent.Evt", "locator": f"record={n}", "message": None, "data": data}


def app_event(n=1):
    return {"kind": "event", "source": "evt", "host": "EXCH01", "channel": "Application",
            "provider": "MSExchangeSA", "event_id": 9095, "level": "information", "ts": T0,
            "ts_source": "utc", "path": "AppEvent.Evt", "locator": f"record={n}", "data": None}


def _store_missing(procs=True):
    rows = dump({u: p for u, p in full_ports().items() if u not in IS_UUIDS}) + system(cs2={})
    if procs:
        rows += [listener(135, 744, 1)] + [p for p in EXCHANGE_PROCS if p["data"]["image"] != "store.exe"]
    return rows


@pytest.mark.parametrize("named", [False, True])
def test_endpoints_missing_cites_scm_event_of_the_service(named):
    rows = _store_missing() + [scm(7031, "Microsoft Exchange Information Store", n=7, named=named),
                               scm(7031, "Print Spooler", n=8), app_event()]
    f = _one(CHECK.run(_case(rows)))
    c = f.top_cause
    assert c.id == "endpoints-missing" and c.verdict == "confirmed"
    locs = {e.locator for e in c.evidence}
    assert "record=7" in locs and "record=8" not in locs
    assert "Service Control Manager 7031 (2007-03-12 12:00 UTC)" in c.explanation
    assert "Service Control Manager 7031" in c.remediation[0]
    assert c.remediation[0].startswith("Start Microsoft Exchange Information Store on EXCH01")
    # Both logs are in the case and tasklist shows the state: nothing to collect.
    assert f.collect == []


def test_scm_event_of_another_provider_or_service_is_not_cited():
    rows = _store_missing() + [scm(7031, "Microsoft Exchange Information Store", n=7, provider="MyAgent"),
                               scm(7031, "Microsoft Exchange System Attendant", n=8)]
    f = _one(CHECK.run(_case(rows)))
    c = f.top_cause
    assert c.id == "endpoints-missing"
    assert not any(e.locator in ("record=7", "record=8") for e in c.evidence)
    assert "System log has" not in c.explanation
    # The System log is there (SA's 7031) but the Application log is not.
    assert not any("System log of EXCH01" in x for x in f.collect)
    assert any("Application log of EXCH01" in x for x in f.collect)


def test_scm_crash_without_tasklist_is_likely_and_asks_for_service_state():
    rows = dump({u: p for u, p in full_ports().items() if u not in IS_UUIDS})
    rows += [scm(7034, "Microsoft Exchange Information Store", n=3)]
    f = _one(CHECK.run(_case(rows)))
    c = {c.id: c for c in f.causes}["endpoints-missing"]
    assert c.verdict == "likely" and "record=3" in {e.locator for e in c.evidence}
    assert any("sc query MSExchangeIS" in x for x in f.collect)
    # Without the event and without registry, nothing makes it more than possible.
    f = _one(CHECK.run(_case(rows[:-1])))
    assert {c.id: c for c in f.causes}["endpoints-missing"].verdict == "possible"


# ---------------------------------------------------------------------------
# the provider decides what 529/681/4625 mean

def test_symptoms_need_the_security_provider():
    ok_evtx = dict(sec(4625, named={"LogonType": "3", "SubStatus": "0xc0000064"}, n=1),
                   provider="Microsoft-Windows-Security-Auditing")
    no_provider = dict(sec(529, EV529, n=2), provider=None)
    other = dict(sec(529, EV529, n=3), provider="AcmeAudit")
    other_681 = dict(sec(681, EV681, n=4), provider="AcmeAudit", channel="Application")
    f = _one(CHECK.run(_case([ok_evtx, no_provider, other, other_681])))
    assert f.facts["symptom_events"] == 2
    assert {e.locator for e in f.evidence} == {"record=1", "record=2"}
    # Only the foreign provider's events: not Exchange's world at all.
    f = _one(CHECK.run(_case([other, other_681])))
    assert f.status == "not_applicable"


# ---------------------------------------------------------------------------
# a SYSTEM hive without the Exchange service keys is not "no hive"

def test_system_hive_without_exchange_keys_says_so_and_asks_for_the_keys():
    rows = [reg("HKLM\\SYSTEM\\Select", "Current", 1),
            reg("HKLM\\SYSTEM\\ControlSet001\\Services\\Tcpip\\Parameters", "Hostname", "EXCH01"),
            reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup", "Services", "C:\\Program Files\\Exchsrvr",
                vtype="REG_SZ", path="registry/SOFTWARE")]
    f = _one(CHECK.run(_case(rows)))
    assert f.status == "inconclusive" and f.severity == "info"
    c = {c.id: c for c in f.causes}["static-port-in-use"]
    assert "registry/SYSTEM" in c.explanation and "ControlSet001" in c.explanation
    assert "no Exchange service keys" in c.explanation
    text = "\n".join(f.collect)
    assert "Services\\MSExchangeIS" in text and "SYSTEM registry hive" not in text
    assert "nothing in the case shows whether its RPC interfaces are registered" in f.summary
    # True negative: no SYSTEM data at all -> ask for the hive itself.
    f = _one(CHECK.run(_case(rows[2:])))
    c = {c.id: c for c in f.causes}["static-port-in-use"]
    assert "no SYSTEM hive" in c.explanation
    assert any("SYSTEM registry hive of EXCH01" in x for x in f.collect)


def test_no_static_port_is_a_fact_with_the_service_keys_as_evidence():
    rows = dump(full_ports()) + system(cs2={IS_KEY: {"Working Directory": "D:\\mdbdata"}})
    f = _one(CHECK.run(_case(rows)))
    assert f.status == "ok"
    c = {c.id: c for c in f.causes}["static-port-in-use"]
    assert c.verdict == "ruled_out" and "No static RPC port" in c.explanation
    assert any("ControlSet002\\Services\\MSExchangeIS\\ParametersSystem" in e.locator for e in c.evidence)


# ---------------------------------------------------------------------------
# netstat -an without PIDs: the dump says who holds a static port

def test_unidentified_listener_on_a_port_the_dump_shows_is_the_service():
    rows = dump(full_ports()) + system(cs2={IS_KEY: {"TCP/IP Port": 1033}})
    rows += [listener(1033, None, 1), listener(135, None, 2)]
    f = _one(CHECK.run(_case(rows)))
    assert f.status == "ok" and f.facts["conflicts"] == []
    c = {c.id: c for c in f.causes}["static-port-in-use"]
    assert c.verdict == "ruled_out" and "the service itself" in c.explanation


def test_unidentified_listener_on_a_port_whose_interfaces_are_missing_is_a_conflict():
    rows = dump({u: p for u, p in full_ports().items() if u not in IS_UUIDS})
    rows += system(cs2={IS_KEY: {"TCP/IP Port": 1033}}) + [listener(1033, None, 1)]
    f = _one(CHECK.run(_case(rows)))
    assert f.top_cause.id == "static-port-in-use" and f.top_cause.verdict == "likely"
    assert "unknown process" in f.top_cause.explanation
    assert any("tasklist /svc" in x for x in f.collect)


def test_scm_events_in_an_unnamed_log_count_as_the_system_log():
    rows = _store_missing() + [dict(scm(7031, "Microsoft Exchange Information Store", n=7), channel=None),
                               app_event()]
    f = _one(CHECK.run(_case(rows)))
    assert "record=7" in {e.locator for e in f.top_cause.evidence}
    assert not any("System log of EXCH01" in x for x in f.collect)


def test_gc_nspi_duplicate_scenario_reads_ntds_port_from_the_hive(tmp_path):
    """Exchange on a DC: the NTDS port comes from the same SYSTEM hive
    (current control set), lsass.exe owns 1032, the dump is complete."""
    sc = next(s for s in scen.SCENARIOS if s.name == "rpc-port-conflict-gc-nspi-duplicate")
    case = load_case(build(sc, tmp_path) / "case")
    f = _one(CHECK.run(case))
    assert f.host == "SBS01" and f.status == "problem" and f.severity == "warning"
    assert f.top_cause.id == "static-port-duplicate" and f.top_cause.verdict == "likely"
    assert "NTDS" in f.top_cause.explanation and "1032" in f.top_cause.explanation
    assert {e.locator.split(";")[0] for e in f.top_cause.evidence} == {
        "key=HKLM\\SYSTEM\\ControlSet002\\Services\\MSExchangeSA\\Parameters",
        "key=HKLM\\SYSTEM\\ControlSet002\\Services\\NTDS\\Parameters"}
    v = _verdicts(f)
    assert v["static-port-in-use"] == "ruled_out" and v["endpoints-missing"] == "ruled_out"
    assert f.facts["groups_missing"] == [] and f.facts["conflicts"] == []
    assert "every Exchange interface is still registered" in f.remediation[-1]
    assert "lsass.exe (PID 488) (NTDS) holds port 1032 now" in f.top_cause.explanation
    assert "registers the same interface UUID itself" in f.top_cause.explanation


def test_latent_duplicate_between_exchange_services_has_no_masking_note():
    rows = dump(full_ports(is_port=4000, sa_port=4000))
    rows += system(cs2={IS_KEY: {"TCP/IP Port": 4000}, SA_KEY: {"TCP/IP Port": 4000}})
    rows += [listener(4000, 1604, 1)] + EXCHANGE_PROCS
    f = _one(CHECK.run(_case(rows)))
    assert f.status == "problem" and f.severity == "warning"
    assert f.top_cause.id == "static-port-duplicate" and f.top_cause.verdict == "likely"
    assert "mad.exe (PID 1604) (MSExchangeSA) holds port 4000 now" in f.top_cause.explanation
    assert "same interface UUID" not in f.top_cause.explanation
