"""Sample cases of shapes the first checks were not written from.

A support engineer acts on a verdict, so a check must first decide from the
case whether it applies to the host at all, and must never read silence
(a truncated log, a missing source, a host of another product or role) as
either health or proof. These cases hold servers of other versions and
roles, a server without Exchange, a case with two servers of which one is
broken, a log cut short, and the Operations Manager 2007 form of the MOM
script events. Their expected results were written before the checks were
changed to meet them.

- ``exchange2007-hub-healthy``: an Exchange 2007 SP1 Hub Transport server
  on Windows Server 2008 with no MOM or Operations Manager agent. The
  Exchange 2000/2003 articles (KB 911143, KB 926210 / KB 270836, KB 828938)
  do not apply to it; its message tracking names Internet mail servers,
  which are peers, not machines of the case.
- ``exchange2010-mailbox-healthy``: the same for an Exchange 2010 SP1
  Mailbox server on Windows Server 2008 R2.
- ``windows-server-no-exchange``: a Windows Server 2008 R2 file server.
- ``two-servers-one-broken``: two Exchange 2003 servers in one upload, in a
  folder each; EXCH01's static store port is taken, EXCH02 is healthy.
- ``smtp-mailbox-truncated-evtx``: the stuck SMTP mailbox case whose
  Application.evtx was cut inside its last chunk in transit: the records
  before the cut still carry the evidence, and the damage is reported.
- ``mom9986-opsmgr2007-script-publish-failed``: under Operations Manager
  2007 the Exchange 2003 pack's scripts log their outcome through the
  agent's script API, so the events come from the source "Health Service
  Script" in the "Operations Manager" log, the script name and description
  being the event's parameters.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from analyzer.synth.evt import write_evt
from analyzer.synth.evtx import write_evtx
from analyzer.synth.regf import write_hive

from . import Expect, Scenario, mom9986, noise, rpc_ports, smtp_mailbox, write_text
from .noise import EventSpec, utc

MOM, RPC, SMTP = "mom-9986", "rpc-port-conflict", "smtp-mailbox-stuck"
START = utc(2010, 4, 12, 6, 0, 0)


# ------------------------------------------------------------ registry
def _windows(product: str, version: str, build: str, csd: str) -> dict[str, Any]:
    return {"ProductName": ("REG_SZ", product), "CurrentVersion": ("REG_SZ", version),
            "CurrentBuildNumber": ("REG_SZ", build), "CSDVersion": ("REG_SZ", csd),
            "SystemRoot": ("REG_SZ", "C:\\Windows")}


def _software_2007_hub() -> dict[str, Any]:
    """Exchange 2007 SP1 (8.1.240.6) Hub Transport on Windows Server 2008:
    the version keys of 2007 live under ``Exchange\\v8.0``; no MOM agent,
    no ExMPLS key and no EMPKP helper (which belong to Exchange 2000/2003)."""
    return {
        "Microsoft\\Windows NT\\CurrentVersion": _windows(
            "Windows Server (R) 2008 Enterprise", "6.0", "6001", "Service Pack 1"),
        "Microsoft\\Exchange\\v8.0\\Setup": {
            "MsiInstallPath": ("REG_SZ", "C:\\Program Files\\Microsoft\\Exchange Server\\"),
            "MsiProductMajor": ("REG_DWORD", 8), "MsiProductMinor": ("REG_DWORD", 1),
            "MsiBuildMajor": ("REG_DWORD", 240), "MsiBuildMinor": ("REG_DWORD", 6)},
        "Microsoft\\Exchange\\v8.0\\HubTransportRole": {"ConfiguredVersion": ("REG_SZ", "8.1.240.6")},
        "Microsoft\\Exchange\\v8.0\\AdminTools": {"ConfiguredVersion": ("REG_SZ", "8.1.240.6")},
        "Microsoft\\Ole": {"EnableDCOM": ("REG_SZ", "Y")},
        "Classes\\CLSID\\{BA126AD1-2166-11D1-B1D0-00805FC1270E}": {"": ("REG_SZ", "NetworkConnections")},
    }


def _software_2010_mailbox() -> dict[str, Any]:
    """Exchange 2010 SP1 (14.1.218.15) Mailbox server on Windows Server
    2008 R2: 2010 keeps its setup values under ``ExchangeServer\\v14``."""
    return {
        "Microsoft\\Windows NT\\CurrentVersion": _windows(
            "Windows Server 2008 R2 Enterprise", "6.1", "7601", "Service Pack 1"),
        "Microsoft\\ExchangeServer\\v14\\Setup": {
            "MsiInstallPath": ("REG_SZ", "C:\\Program Files\\Microsoft\\Exchange Server\\V14\\"),
            "MsiProductMajor": ("REG_DWORD", 14), "MsiProductMinor": ("REG_DWORD", 1),
            "MsiBuildMajor": ("REG_DWORD", 218), "MsiBuildMinor": ("REG_DWORD", 15)},
        "Microsoft\\ExchangeServer\\v14\\MailboxRole": {"ConfiguredVersion": ("REG_SZ", "14.1.218.15")},
        "Microsoft\\Ole": {"EnableDCOM": ("REG_SZ", "Y")},
    }


def _software_file_server() -> dict[str, Any]:
    return {
        "Microsoft\\Windows NT\\CurrentVersion": _windows(
            "Windows Server 2008 R2 Standard", "6.1", "7601", "Service Pack 1"),
        "Microsoft\\Ole": {"EnableDCOM": ("REG_SZ", "Y")},
        "Microsoft\\Windows\\CurrentVersion\\Run": {
            "VMware User Process": ("REG_SZ", "\"C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe\"")},
    }


def _system(host: str, services: dict[str, str]) -> dict[str, Any]:
    keys = noise.system_noise(host, control_sets=(1,))
    keys["Select"] = {"Current": ("REG_DWORD", 1), "Default": ("REG_DWORD", 1),
                      "LastKnownGood": ("REG_DWORD", 1)}
    for name, display in services.items():
        keys[f"ControlSet001\\Services\\{name}"] = {"DisplayName": ("REG_SZ", display),
                                                   "Start": ("REG_DWORD", 2)}
    return keys


def _hives(folder: Path, host: str, software: dict[str, Any], services: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_hive(folder / "SOFTWARE", software, root_name="SOFTWARE",
               file_name="\\SystemRoot\\System32\\Config\\SOFTWARE", default_timestamp=START)
    write_hive(folder / "SYSTEM", _system(host, services), root_name="SYSTEM",
               file_name="\\SystemRoot\\System32\\Config\\SYSTEM", default_timestamp=START)


# ---------------------------------------------------------------- logs
def _app_events(host: str, templates: list[tuple[str, int, str, list[str]]], count: int) -> list[EventSpec]:
    """``count`` Application events cycling through ``templates``, spread
    over the days before collection."""
    out = []
    t = START
    for i in range(count):
        provider, eid, level, strings = templates[i % len(templates)]
        t += timedelta(minutes=23 + 7 * (i % 5), seconds=11 * (i % 4))
        out.append(EventSpec(provider, eid, level, t, "Application", host, list(strings)))
    return out


_HUB_APP = [
    ("MSExchange ADAccess", 2080, "information",
     ["MSEXCHANGETRANSPORT.EXE", "2260", "DC01.contoso.local CDG 1 7 7 1 0 1 1 7 1"]),
    ("ESE", 102, "information", ["EdgeTransport", "2812", "Transport Mail Database: ", "8.01.0240.006"]),
    ("MSExchange ADAccess", 2070, "information", ["EDGETRANSPORT.EXE", "2812", "DC01.contoso.local"]),
    ("ESE", 301, "information", ["EdgeTransport", "2812", "Transport Mail Database: ", "trn00005A.log"]),
]
_MAILBOX_APP = [
    ("MSExchangeIS", 9523, "information", ["First Storage Group", "Mailbox Database (MBX01)"]),
    ("MSExchangeIS Mailbox Store", 1221, "information", ["Mailbox Database (MBX01)", "2048"]),
    ("ESE", 700, "information", ["MSExchangeIS", "4410", "Mailbox Database: ", "Mailbox Database.edb"]),
    ("ESE", 701, "information", ["MSExchangeIS", "4410", "Mailbox Database: ", "Mailbox Database.edb"]),
    ("MSExchange ADAccess", 2080, "information",
     ["MSEXCHANGEIS", "4410", "DC01.contoso.local CDG 1 7 7 1 0 1 1 7 1"]),
]
_FILE_SERVER_APP = [
    ("Microsoft-Windows-Winlogon", 6000, "information", ["SessionEnv"]),
    ("VSS", 8224, "information", []),
    ("MsiInstaller", 1035, "information", ["VMware Tools", "8.6.0.6261", "1033", "0", "VMware, Inc."]),
    ("Microsoft-Windows-User Profiles Service", 1531, "information", []),
]


def _evtx_logs(folder: Path, host: str, app: list[EventSpec], seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_evtx(folder / "Application.evtx", noise.to_evtx(app))
    write_evtx(folder / "System.evtx", noise.to_evtx(noise.chatter("System", host, START, 40, seed=seed)))


def _msgtrk_2007(host: str, ip: str) -> str:
    """A Hub's message tracking log (2007 columns): Internet mail received
    from and sent to other organizations' servers, delivered locally."""
    fields = ("date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,"
              "source,event-id,internal-message-id,message-id,recipient-address,recipient-status,"
              "total-bytes,recipient-count,related-recipient-address,reference,message-subject,"
              "sender-address,return-path,message-info")
    lines = ["#Software: Microsoft Exchange Server", "#Version: 8.0.0.0", "#Log-type: Message Tracking Log",
             "#Date: 2010-04-12T08:00:00.000Z", f"#Fields: {fields}"]
    peers = [("mail.fabrikam.com", "131.107.3.20"), ("mx1.adatum.com", "198.51.100.25"),
             ("smtp.litwareinc.com", "203.0.113.7")]
    for i in range(12):
        ts = START + timedelta(hours=2, minutes=13 * i)
        peer, peer_ip = peers[i % len(peers)]
        mid = f"<2010041208{i:02d}.{4000 + i}@{peer}>"
        iid = 9100 + i
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(i * 37) % 1000:03d}Z"
        lines.append(f"{stamp},{peer_ip},{peer},{ip},{host},08CC9A1B{i:08X},{host}\\Default {host},"
                     f"SMTP,RECEIVE,{iid},{mid},user{i % 4}@contoso.com,,{4096 + 97 * i},1,,,"
                     f"Order {1000 + i},sales@{peer.split('.', 1)[1]},sales@{peer.split('.', 1)[1]},")
        lines.append(f"{stamp},{ip},{host},{ip},{host},,,STOREDRIVER,DELIVER,{iid},{mid},"
                     f"user{i % 4}@contoso.com,,{4096 + 97 * i},1,,,Order {1000 + i},"
                     f"sales@{peer.split('.', 1)[1]},sales@{peer.split('.', 1)[1]},")
        out_mid = f"<A1B2{i:04d}@{host.lower()}.contoso.local>"
        lines.append(f"{stamp},{ip},{host},{peer_ip},{peer},,Internet,SMTP,SEND,{iid + 50},{out_mid},"
                     f"buyer@{peer.split('.', 1)[1]},250 2.6.0 Queued mail for delivery,{2048 + 31 * i},1,,,"
                     f"RE: Order {1000 + i},user{i % 4}@contoso.com,user{i % 4}@contoso.com,")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------ builders
def build_exchange2007_hub(case: Path) -> None:
    host = "HUB01"
    root = case / host
    _hives(root / "registry", host, _software_2007_hub(),
           {"MSExchangeTransport": "Microsoft Exchange Transport",
            "MSExchangeADTopology": "Microsoft Exchange Active Directory Topology"})
    _evtx_logs(root / "eventlogs", host, _app_events(host, _HUB_APP, 60), seed=2007)
    write_text(root / "TransportRoles" / "Logs" / "MessageTracking" / "MSGTRK20100412-1.LOG",
               _msgtrk_2007(host, "10.0.20.11"))


def build_exchange2010_mailbox(case: Path) -> None:
    host = "MBX01"
    _hives(case / "registry", host, _software_2010_mailbox(),
           {"MSExchangeIS": "Microsoft Exchange Information Store",
            "MSExchangeSA": "Microsoft Exchange System Attendant"})
    _evtx_logs(case / "eventlogs", host, _app_events(host, _MAILBOX_APP, 60), seed=2010)


def build_file_server(case: Path) -> None:
    host = "FS02"
    _hives(case / "registry", host, _software_file_server(), {"LanmanServer": "Server"})
    _evtx_logs(case / "eventlogs", host, _app_events(host, _FILE_SERVER_APP, 40), seed=2008)


def build_two_servers(case: Path) -> None:
    """EXCH01's folder is the static-port-in-use case of KB 926210; EXCH02's
    holds the same kinds of files from a healthy server with its own static
    ports, each held by its own Exchange process."""
    rpc_ports.build_static_port_in_use(case / "EXCH01")
    host, ip = "EXCH02", "10.0.100.33"
    ex2 = case / "EXCH02"
    is_port, sa_port, nspi_port = 1043, 1041, 1042
    static = {"Services\\MSExchangeIS\\ParametersSystem": {"TCP/IP Port": ("REG_DWORD", is_port)},
              "Services\\MSExchangeSA\\Parameters": {"TCP/IP Port": ("REG_DWORD", sa_port),
                                                     "TCP/IP NSPI Port": ("REG_DWORD", nspi_port)}}
    write_text(ex2 / "rpcdump.txt", rpc_ports._full_dump(is_port, sa_port, nspi_port, host, [ip]),
               encoding="cp437")
    rpc_ports._write_system(ex2, host, static)
    rpc_ports._write_software(ex2)
    socks = rpc_ports._sockets(ip, [
        ("TCP", f"0.0.0.0:{is_port}", "0.0.0.0:0", "LISTENING", 2768),
        ("TCP", f"0.0.0.0:{sa_port}", "0.0.0.0:0", "LISTENING", 1604),
        ("TCP", f"0.0.0.0:{nspi_port}", "0.0.0.0:0", "LISTENING", 1604),
        ("TCP", "0.0.0.0:6001", "0.0.0.0:0", "LISTENING", 2768),
        ("TCP", "0.0.0.0:6002", "0.0.0.0:0", "LISTENING", 1604),
        ("TCP", "0.0.0.0:6004", "0.0.0.0:0", "LISTENING", 1604)])
    write_text(ex2 / "netstat.txt", rpc_ports.netstat_text(socks), encoding="cp437")
    write_text(ex2 / "tasklist.txt", rpc_ports.tasklist_text(rpc_ports._PROCESSES), encoding="cp437")
    rpc_ports._write_logs(ex2, host, rpc_ports.START, security=True, symptoms=False)


#: Where the Application log is cut: inside its third 64 KiB chunk.
TRUNCATE_AT = 4096 + 2 * 65536 + 23_000


def build_truncated_evtx(case: Path) -> None:
    """The stuck-mailbox evidence (326 and 1194 after the remount) is in the
    Application log's first chunk; months of chatter follow, and the file
    was cut short inside its third chunk."""
    host = smtp_mailbox.HOST
    app = noise.merge(noise.chatter("Application", host, smtp_mailbox.START, 520, seed=828938),
                      smtp_mailbox._smtp_events())
    logs = case / "eventlogs"
    logs.mkdir(parents=True, exist_ok=True)
    write_evtx(logs / "Application.evtx", noise.to_evtx(app))
    data = (logs / "Application.evtx").read_bytes()
    if len(data) <= TRUNCATE_AT:
        raise ValueError(f"Application.evtx is {len(data)} bytes: too short to cut at {TRUNCATE_AT}")
    (logs / "Application.evtx").write_bytes(data[:TRUNCATE_AT])
    write_evtx(logs / "System.evtx", noise.to_evtx(
        noise.chatter("System", host, smtp_mailbox.START, 40, seed=828938)))
    write_text(case / "Exchsrvr" / f"{smtp_mailbox.SHORT}.log" / "20070312.log",
               smtp_mailbox._tracking_log(stuck=True))


_PUBLISH = "Exchange - Publish ExMP Data"
_MAPI = "Exchange - Check mailbox store availability - MAPI logon test"


def build_opsmgr2007_script_events(root: Path) -> None:
    """Operations Manager 2007 agent on the Exchange 2003 server: the
    converted pack's publish script fails every night (event 10000 from
    "Health Service Script", parameters: script name, description) after the
    MAPI logon script found no ExMPLS key (9987). The helper is registered
    where setup put it and DCOM is silent: the publish itself fails."""
    host = mom9986.HOST
    keys = mom9986.software_hive()
    del keys["Mission Critical Software\\OnePoint"]
    keys["Microsoft\\Microsoft Operations Manager\\3.0\\Agent Management Groups\\CONTOSO_OM"] = {
        "IsSourcedFromAD": ("REG_DWORD", 0)}
    keys["Microsoft\\Microsoft Operations Manager\\3.0\\Setup"] = {
        "InstallDirectory": ("REG_SZ", "C:\\Program Files\\System Center Operations Manager 2007\\"),
        "AgentVersion": ("REG_SZ", "6.0.6278.0")}
    mom9986._write_case(root, mom=None, system=[], software=keys, setup=mom9986.setup_log())
    om: list[EventSpec] = []
    for i, r in enumerate(mom9986.RUNS):
        om.append(EventSpec("OpsMgr Connector", 21025, "information", r - timedelta(hours=5, minutes=3 * i),
                            "Operations Manager", host, ["CONTOSO_OM"]))
        om.append(EventSpec("HealthService", 1206, "information", r - timedelta(minutes=30),
                            "Operations Manager", host, ["CONTOSO_OM"]))
        om.append(EventSpec("Health Service Script", 9987, "warning", r - timedelta(minutes=15),
                            "Operations Manager", host,
                            [_MAPI, mom9986._TEXT[9987].format(h=host).split(" This event was")[0]], qualifiers=0))
        om.append(EventSpec("Health Service Script", 10000, "error", r + timedelta(seconds=2),
                            "Operations Manager", host,
                            [_PUBLISH, mom9986._TEXT[10000].format(h=host).split(" This event was")[0]],
                            qualifiers=0))
    om.sort(key=lambda e: e.ts)
    write_evt(root / "EventLogs" / "Operations Manager.Evt", noise.to_evt(om))


# ------------------------------------------------------------ scenarios
#: The analyzer does not meet these expectations yet: applicability and
#: hosts from evidence, damage reported, exit code 3 for no verdict.
_PENDING = "grounded verdicts"


def _na(host: str) -> tuple[Expect, ...]:
    return tuple(Expect(c, "not_applicable", None, host=host) for c in (MOM, RPC, SMTP))


SCENARIOS = [
    Scenario("exchange2007-hub-healthy",
             "A healthy Exchange 2007 SP1 Hub Transport (HUB01, Windows Server 2008) with no MOM or "
             "Operations Manager agent: hives, .evtx logs and a message tracking log naming Internet "
             "mail servers. The Exchange 2000/2003 checks do not apply, back pressure is ok from a complete log; the tracking peers are not hosts.",
             build=build_exchange2007_hub, hosts=("HUB01",), exit_code=0,
             expected=_na("HUB01") + (Expect("transport-back-pressure", "ok", None, host="HUB01"),)),
    Scenario("exchange2010-mailbox-healthy",
             "A healthy Exchange 2010 SP1 Mailbox server (MBX01, Windows Server 2008 R2) with no MOM: "
             "hives and .evtx logs. The Exchange 2000/2003 checks do not apply; no store crash in a complete log.",
             build=build_exchange2010_mailbox, hosts=("MBX01",), exit_code=0,
             expected=_na("MBX01") + (Expect("store-crash", "ok", None, host="MBX01"),)),
    Scenario("windows-server-no-exchange",
             "A Windows Server 2008 R2 file server (FS02) without Exchange: hives and .evtx logs. No "
             "check applies, so the case has no verdict.",
             build=build_file_server, expected=_na("FS02"), hosts=("FS02",), exit_code=3),
    Scenario("two-servers-one-broken",
             "Two Exchange 2003 servers in one upload, a folder each: EXCH01's static store port is "
             "held by the Backup Exec agent (KB 926210), EXCH02's static ports are each held by its own "
             "Exchange process. Neither server has a MOM or Operations Manager agent.",
             build=build_two_servers,
             expected=(Expect(RPC, "problem", "static-port-in-use", host="EXCH01"),
                       Expect(RPC, "ok", None, host="EXCH02"),
                       Expect(MOM, "not_applicable", None, host="EXCH01"),
                       Expect(MOM, "not_applicable", None, host="EXCH02")),
             hosts=("EXCH01", "EXCH02"), exit_code=1),
    Scenario("smtp-mailbox-truncated-evtx",
             "The stuck SMTP mailbox case (KB 828938) with its Application.evtx cut inside the third "
             "chunk: the 326/1194 records before the cut are evidence, and the file is partial.",
             build=build_truncated_evtx,
             expected=(Expect(SMTP, "problem", "smtp-mailbox-missing"),),
             hosts=("EXCH01",), inventory={"eventlogs/Application.evtx": "partial"}, exit_code=1),
    Scenario("mom9986-opsmgr2007-script-publish-failed",
             "Operations Manager 2007 on Exchange 2003: \"Health Service Script\" events in the "
             "Operations Manager log (parameters: script name, description) show the publish script "
             "failing (10000) after 9987; the helper is registered and DCOM is silent.",
             build=build_opsmgr2007_script_events,
             expected=(Expect(MOM, "problem", "publish-failed"),), hosts=("EXCH01",), exit_code=1),
]
