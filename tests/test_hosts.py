from analyzer.hosts import display_names, host_key


def test_host_key_spellings_of_one_machine() -> None:
    assert host_key("exch01.contoso.local") == host_key("\\\\EXCH01") == host_key("Exch01") == "EXCH01"
    assert host_key("10.0.100.32") == "10.0.100.32"
    assert host_key(None) is None and host_key("  ") is None and host_key(float("nan")) is None


def test_display_names_prefer_fqdn_and_dedupe() -> None:
    assert display_names(["EXCH01", "EXCH01.contoso.local", "mom01", "\\\\EXCH01", None]) == \
        ["EXCH01.contoso.local", "mom01"]


# --------------------------------------------------------------------------
# Hosts are the machines of the case, never the peers its files name.

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer import load_case
from analyzer.cli import main
from analyzer.hosts import tracking_log_host

MSGTRK = """\ufeff#Software: Microsoft Exchange Server
#Version: 14.0.0.0
#Log-type: Message Tracking Log
#Date: 2010-04-12T08:00:00.000Z
#Fields: date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,source,event-id,internal-message-id,message-id,recipient-address,recipient-status,total-bytes,recipient-count,related-recipient-address,reference,message-subject,sender-address,return-path,message-info,directionality,tenant-id,original-client-ip,original-server-ip,custom-data
2010-04-12T08:00:00.000Z,131.107.3.20,mail.fabrikam.com,10.0.20.11,HUB01.contoso.local,08CC,HUB01\\Default HUB01,SMTP,RECEIVE,9100,<m1@fabrikam.com>,user0@contoso.com,,4096,1,,,Order,sales@fabrikam.com,sales@fabrikam.com,,Incoming,,,,
2010-04-12T08:00:01.000Z,10.0.20.11,HUB01.contoso.local,10.0.20.11,HUB01.contoso.local,,,STOREDRIVER,DELIVER,9100,<m1@fabrikam.com>,user0@contoso.com,,4096,1,,,Order,sales@fabrikam.com,sales@fabrikam.com,,Incoming,,,,
2010-04-12T08:00:02.000Z,10.0.20.11,HUB01.contoso.local,198.51.100.25,mx1.adatum.com,,Internet,SMTP,SEND,9150,<m2@contoso.local>,buyer@adatum.com,250 2.6.0 Queued,2048,1,,,RE: Order,user0@contoso.com,user0@contoso.com,,Originating,,,,
2010-04-12T08:00:03.000Z,10.0.20.11,HUB01.contoso.local,10.0.20.40,EXCH2003.contoso.local,,Routing group,SMTP,SEND,9151,<m3@contoso.local>,legacy@contoso.com,250 OK,2048,1,,,Hello,user0@contoso.com,user0@contoso.com,,Originating,,,,
"""


def test_tracking_log_host_follows_the_documented_sides() -> None:
    # 2007+: SEND/SUBMIT are logged by the submitter; everything else by the destination.
    assert tracking_log_host({"event": "SEND", "event_id": None, "client_hostname": "HUB01",
                              "server_hostname": "mx1.adatum.com"}) == "HUB01"
    assert tracking_log_host({"event": "SUBMIT", "event_id": None, "client_hostname": "MBX01",
                              "server_hostname": "HUB01"}) == "MBX01"
    assert tracking_log_host({"event": "RECEIVE", "event_id": None, "client_hostname": "mail.fabrikam.com",
                              "server_hostname": "HUB01"}) == "HUB01"
    # 2000/2003: Server-hostname is the server that created the entry (KB 246965), whatever the event.
    assert tracking_log_host({"event": "SMTP transferred outbound", "event_id": 1031,
                              "client_hostname": "OTHER", "server_hostname": "EXCH01"}) == "EXCH01"
    assert tracking_log_host({"event": "SEND", "event_id": None, "server_hostname": "mx1.adatum.com"}) is None


def test_remote_smtp_hosts_in_message_tracking_are_not_case_hosts(tmp_path: Path) -> None:
    (tmp_path / "MSGTRK20100412-1.LOG").write_text(MSGTRK, encoding="utf-8", newline="\r\n")
    case = load_case(tmp_path)
    assert case.hosts == ["HUB01.contoso.local"]
    rows = case.table[case.table["kind"] == "tracking_entry"]
    assert len(rows) == 4 and set(rows["host"].astype(str)) == {"HUB01.contoso.local"}
    # The peers are still in the rows' data, where a check can read them.
    servers = {json.loads(d)["server_hostname"] for d in rows["data"]}
    assert {"mx1.adatum.com", "EXCH2003.contoso.local"} <= servers
    res = CliRunner().invoke(main, ["analyze", str(tmp_path)])
    assert "Hosts: HUB01.contoso.local\n" in res.stdout
    assert "adatum" not in res.stdout.split("=" * 10)[0]


def _security_4625(workstation: str, ip: str, when: datetime):
    from analyzer.synth.evtx import EvtxEvent

    return EvtxEvent(
        provider="Microsoft-Windows-Security-Auditing", event_id=4625, time_created=when,
        level=0, channel="Security", computer="EXCH01.contoso.local", version=0, task=12544,
        keywords=0x8010000000000000,
        data={"SubjectUserSid": "S-1-0-0", "TargetUserName": "administrator",
              "TargetDomainName": "CONTOSO", "Status": "0xc000006d", "SubStatus": "0xc000006a",
              "LogonType": "3", "WorkstationName": workstation, "IpAddress": ip, "IpPort": "49152"})


def test_workstations_in_logon_failures_are_not_case_hosts(tmp_path: Path) -> None:
    """Security 4625 on EXCH01 naming two workstations: the case has one host."""
    from analyzer.synth.evtx import write_evtx

    Evtx = pytest.importorskip("Evtx.Evtx")
    t0 = datetime(2010, 4, 12, 8, 0, tzinfo=timezone.utc)
    path = tmp_path / "Security.evtx"
    write_evtx(path, [_security_4625("WKS042", "10.0.30.42", t0),
                      _security_4625("LAPTOP-7", "10.0.30.77", t0 + timedelta(minutes=1))])
    # An independent reader (python-evtx) sees the workstation names in the file.
    with Evtx.Evtx(str(path)) as log:
        xml = "".join(r.xml() for r in log.records())
    assert "WKS042" in xml and "LAPTOP-7" in xml and xml.count("EXCH01.contoso.local") == 2
    for backend in ("rust", "python"):
        case = load_case(tmp_path, evtx_backend=backend)
        assert case.hosts == ["EXCH01.contoso.local"], backend
        data = [json.loads(d) for d in case.table["data"]]
        assert {d["WorkstationName"] for d in data} == {"WKS042", "LAPTOP-7"}
