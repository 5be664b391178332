"""Sample cases for the Exchange 2007/2010 transport and store diagnoses:
``transport-back-pressure``, ``dns-query-failed`` and ``store-crash``.

Each case is what a collection script gathers from an Exchange 2007 SP1
server on Windows Server 2008 (or 2003 x64 where stated): the Application
and System logs, the SOFTWARE and SYSTEM hives, the transport's
``EdgeTransport.exe.config``, Exchange Management Shell output redirected
with ``>`` (UTF-16LE with a byte order mark), cmd.exe output (``ipconfig
/all``, ``nslookup``, ``fsutil volume diskfree``, ``tasklist``) in the OEM
code page, and the message tracking logs.

The event texts follow the shapes Windows and Exchange write: MSExchange
Transport 15004/15005 with the resource lines ``Version buckets = 200 [High]
[Normal=80 Medium=120 High=200]``, "Application Error" 1000 in the Windows
Server 2008 sentence form (ten insertion strings) and the Windows Server 2003
form (eight). Traps sit beside the true positives: pressure that returned to
Normal, a crash of another process, a 451 with another enhanced status, an
EXCDO crash on a build that already has Exchange 2007 SP1 Update Rollup 6.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from analyzer.synth.evt import write_evt
from analyzer.synth.evtx import write_evtx
from analyzer.synth.regf import write_hive

from . import Expect, Scenario, noise, write_text
from .noise import EventSpec, utc

BP, DNS, STORE = "transport-back-pressure", "dns-query-failed", "store-crash"
START = utc(2009, 1, 19, 6, 0, 0)
EXBIN = "C:\\Program Files\\Microsoft\\Exchange Server\\Bin"
QUEUE = "C:\\Program Files\\Microsoft\\Exchange Server\\TransportRoles\\data\\Queue"
#: The checks these cases are written for do not exist yet.
_PENDING = "transport checks"


# ------------------------------------------------------------ registry
def _software(build: tuple[int, int, int, int], roles: tuple[str, ...],
              windows: tuple[str, str, str, str] = ("Windows Server (R) 2008 Enterprise", "6.0", "6001",
                                                    "Service Pack 1"),
              rollups: tuple[str, ...] = ()) -> dict[str, Any]:
    """SOFTWARE hive keys of an Exchange 2007 server of ``build`` with the
    given role keys (``HubTransportRole``, ``MailboxRole``...) and installed
    update rollups (their Windows Installer patch entries)."""
    version = ".".join(str(n) for n in build)
    product, major, csd_build, csd = windows
    keys: dict[str, Any] = {
        "Microsoft\\Windows NT\\CurrentVersion": {
            "ProductName": ("REG_SZ", product), "CurrentVersion": ("REG_SZ", major),
            "CurrentBuildNumber": ("REG_SZ", csd_build), "CSDVersion": ("REG_SZ", csd),
            "SystemRoot": ("REG_SZ", "C:\\Windows")},
        "Microsoft\\Exchange\\v8.0\\Setup": {
            "MsiInstallPath": ("REG_SZ", "C:\\Program Files\\Microsoft\\Exchange Server\\"),
            "MsiProductMajor": ("REG_DWORD", build[0]), "MsiProductMinor": ("REG_DWORD", build[1]),
            "MsiBuildMajor": ("REG_DWORD", build[2]), "MsiBuildMinor": ("REG_DWORD", build[3])},
        "Microsoft\\Ole": {"EnableDCOM": ("REG_SZ", "Y")},
    }
    for role in roles:
        keys[f"Microsoft\\Exchange\\v8.0\\{role}"] = {"ConfiguredVersion": ("REG_SZ", version)}
    products = ("Microsoft\\Windows\\CurrentVersion\\Installer\\UserData\\S-1-5-18\\Products\\"
                "461C2B4266EDEF444B864AD6D9E5B613")
    keys[f"{products}\\InstallProperties"] = {
        "DisplayName": ("REG_SZ", "Microsoft Exchange Server 2007"),
        "DisplayVersion": ("REG_SZ", f"{build[0]}.{build[1]}.{build[2]}.{build[3]}")}
    for n, title in enumerate(rollups):
        keys[f"{products}\\Patches\\{n + 1:02d}A7C3E9F1B2D4C6E8A0B1C2D3E4F5A6B7"] = {
            "DisplayName": ("REG_SZ", title), "Installed": ("REG_SZ", "20090214"), "State": ("REG_DWORD", 1)}
    return keys


def _system(host: str, services: dict[str, str], disabled_components: int | None = None) -> dict[str, Any]:
    keys = noise.system_noise(host, control_sets=(1,))
    keys["Select"] = {"Current": ("REG_DWORD", 1), "Default": ("REG_DWORD", 1),
                      "LastKnownGood": ("REG_DWORD", 1)}
    for name, display in services.items():
        keys[f"ControlSet001\\Services\\{name}"] = {"DisplayName": ("REG_SZ", display),
                                                   "Start": ("REG_DWORD", 2)}
    tcpip6: dict[str, Any] = {"Dhcpv6DUID": ("REG_BINARY", bytes.fromhex("000100011172f1a2000c29b3c4d5"))}
    if disabled_components is not None:
        tcpip6["DisabledComponents"] = ("REG_DWORD", disabled_components)
    keys["ControlSet001\\Services\\Tcpip6\\Parameters"] = tcpip6
    return keys


def _hives(root: Path, host: str, software: dict[str, Any], services: dict[str, str],
           disabled_components: int | None = None) -> None:
    folder = root / "Registry"
    folder.mkdir(parents=True, exist_ok=True)
    write_hive(folder / "SOFTWARE", software, root_name="SOFTWARE",
               file_name="\\SystemRoot\\System32\\Config\\SOFTWARE", default_timestamp=START)
    write_hive(folder / "SYSTEM", _system(host, services, disabled_components), root_name="SYSTEM",
               file_name="\\SystemRoot\\System32\\Config\\SYSTEM", default_timestamp=START)


_HUB_SERVICES = {"MSExchangeTransport": "Microsoft Exchange Transport",
                 "MSExchangeADTopology": "Microsoft Exchange Active Directory Topology"}
_MBX_SERVICES = {"MSExchangeIS": "Microsoft Exchange Information Store",
                 "MSExchangeSA": "Microsoft Exchange System Attendant"}


# ---------------------------------------------------------------- logs
_HUB_CHATTER = [
    ("MSExchange ADAccess", 2080, "information",
     ["MSEXCHANGETRANSPORT.EXE", "2260", "DC01.contoso.local CDG 1 7 7 1 0 1 1 7 1"]),
    ("ESE", 102, "information", ["EdgeTransport", "2812", "Transport Mail Database: ", "8.01.0240.006"]),
    ("ESE", 301, "information", ["EdgeTransport", "2812", "Transport Mail Database: ", "trn00005A.log"]),
    ("MSExchange ADAccess", 2070, "information", ["EDGETRANSPORT.EXE", "2812", "DC01.contoso.local"]),
]
_MBX_CHATTER = [
    ("MSExchangeIS", 9523, "information", ["First Storage Group", "Mailbox Database (MBX01)"]),
    ("MSExchangeIS Mailbox Store", 1221, "information", ["First Storage Group\\Mailbox Database", "2048"]),
    ("ESE", 700, "information", ["MSExchangeIS", "4410", "First Storage Group: ", "Mailbox Database.edb"]),
    ("MSExchange ADAccess", 2080, "information",
     ["MSEXCHANGEIS", "4410", "DC01.contoso.local CDG 1 7 7 1 0 1 1 7 1"]),
    ("MSExchangeTransport", 12014, "warning", ["MBX01.contoso.local", "*", "Default MBX01"]),
]


def _chatter(host: str, templates: list, count: int, hours: int = 70) -> list[EventSpec]:
    out = []
    step = timedelta(hours=hours) / count
    for i in range(count):
        provider, eid, level, strings = templates[i % len(templates)]
        out.append(EventSpec(provider, eid, level, START + step * (i + 1) + timedelta(seconds=7 * (i % 9)),
                             "Application", host, list(strings)))
    return out


def _write_evtx(root: Path, host: str, app: list[EventSpec], system_extra: list[EventSpec] = (),
                seed: int = 2007) -> None:
    logs = root / "EventLogs"
    logs.mkdir(parents=True, exist_ok=True)
    write_evtx(logs / "Application.evtx", noise.to_evtx(noise.merge(app)))
    system = noise.merge(noise.chatter("System", host, START, 40, seed=seed), list(system_extra))
    write_evtx(logs / "System.evtx", noise.to_evtx(system))


# ------------------------------------------------------- back pressure
_COMPONENTS_MEDIUM = ["Inbound mail submission from the Internet", "Mail submission from the Pickup directory",
                      "Mail submission from the Replay directory", "Mail delivery to remote domains"]
_COMPONENTS_HIGH = ["Inbound mail submission from Hub Transport servers"] + _COMPONENTS_MEDIUM[:3] + [
    "Mail submission from Mailbox servers", "Loading of e-mail from the queuing database (if available)"]


def _resource_lines(buckets: int, bucket_level: str, db_pct: int, db_level: str,
                    queue_path: str = QUEUE) -> dict[str, str]:
    return {
        "buckets": f"Version buckets = {buckets} [{bucket_level}] [Normal=80 Medium=120 High=200]",
        "db": f"Queue database and disk space (\"{queue_path}\\mail.que\") = {db_pct}% [{db_level}] "
              f"[Normal=95% Medium=97% High=99%]",
        "log": f"Queue database logging disk space (\"{queue_path}\\\") = {max(db_pct - 2, 1)}% [Normal] "
               f"[Normal=95% Medium=97% High=99%]",
        "private": "Private bytes = 18% [Normal] [Normal=71% Medium=73% High=75%]",
        "memory": "Physical memory load = 61% [limit is 94% to start dehydrating messages.]",
    }


def ev_15004(ts: datetime, host: str, frm: str, to: str, pressured: list[str], normal: list[str],
             components: list[str]) -> EventSpec:
    """MSExchangeTransport 15004 as Exchange 2007 SP1 logs it: %1 and %2 the
    levels, %3 the resource and component lists."""
    body = ("\r\n\r\nResource utilization of the following resources exceed the normal level:\r\n"
            + "\r\n".join(pressured)
            + "\r\n\r\nBack pressure caused the following components to be disabled:\r\n"
            + "\r\n".join(components)
            + "\r\n\r\nThe following resources are in the normal state:\r\n" + "\r\n".join(normal))
    return EventSpec("MSExchangeTransport", 15004, "warning", ts, "Application", host, [frm, to, body],
                     category=15)


def ev_15005(ts: datetime, host: str, frm: str, to: str, lines: list[str]) -> EventSpec:
    body = "\r\n\r\nThe following resources are in the normal state:\r\n" + "\r\n".join(lines)
    return EventSpec("MSExchangeTransport", 15005, "information", ts, "Application", host, [frm, to, body],
                     category=15)


def edge_config(overrides: dict[str, str] | None = None, monitoring: bool = True) -> str:
    """EdgeTransport.exe.config of Exchange 2007 SP1: the shipped appSettings
    (most thresholds absent, so the defaults apply) plus ``overrides``."""
    settings = {"AgentLogEnabled": "true", "ResourceMonitoringInterval": "00:00:02",
                "EnableResourceMonitoring": "true" if monitoring else "false",
                "DnsFaultTolerance": "Strict"}
    settings.update(overrides or {})
    body = "\n".join(f'    <add key="{k}" value="{v}" />' for k, v in settings.items())
    return ('<?xml version="1.0" encoding="utf-8" ?>\n<configuration>\n  <runtime>\n'
            '    <gcServer enabled="true" />\n    <generatePublisherEvidence enabled="false" />\n'
            '  </runtime>\n  <appSettings>\n' + body + '\n  </appSettings>\n</configuration>\n')


def fsutil(free: int, total: int) -> str:
    return (f"Total # of free bytes        : {free}\nTotal # of bytes             : {total}\n"
            f"Total # of avail free bytes  : {free}\n")


_TASKS = [("System Idle Process", 0, "N/A"), ("System", 4, "N/A"), ("smss.exe", 312, "N/A"),
          ("csrss.exe", 388, "N/A"), ("services.exe", 496, "N/A"), ("lsass.exe", 508, "KeyIso, Netlogon, SamSs"),
          ("svchost.exe", 692, "DcomLaunch, PlugPlay"), ("svchost.exe", 760, "RpcSs"),
          ("Microsoft.Exchange.ServiceHost.exe", 1880, "MSExchangeServiceHost"),
          ("MSExchangeTransport.exe", 2260, "MSExchangeTransport"),
          ("Microsoft.Exchange.AntispamUpdateSvc.exe", 2380, "MSExchangeAntispamUpdate"),
          ("EdgeTransport.exe", 2812, "N/A"), ("vmtoolsd.exe", 1412, "VMTools")]


def tasklist_svc(extra: list[tuple[str, int, str]] = ()) -> str:
    rows = _TASKS + list(extra)
    out = ["", "Image Name                     PID Services",
           "========================= ======== ============================================"]
    for name, pid, svc in rows:
        out.append(f"{name[:25]:<25} {pid:>8} {svc}")
    return "\n".join(out) + "\n"


def msgtrk(host: str, entries: list[tuple[datetime, str, str, str, str, int, str, str]]) -> str:
    """A 2007 message tracking log (21 fields): (time, event-id, source,
    sender, recipient, total-bytes, subject, message-id) rows."""
    fields = ("date-time,client-ip,client-hostname,server-ip,server-hostname,source-context,connector-id,"
              "source,event-id,internal-message-id,message-id,recipient-address,recipient-status,"
              "total-bytes,recipient-count,related-recipient-address,reference,message-subject,"
              "sender-address,return-path,message-info")
    lines = ["#Software: Microsoft Exchange Server", "#Version: 8.0.0.0", "#Log-type: Message Tracking Log",
             f"#Date: {entries[0][0].strftime('%Y-%m-%dT%H:%M:%S.000Z')}", f"#Fields: {fields}"]
    for n, (ts, event, source, sender, rcpt, size, subject, mid) in enumerate(entries):
        stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{(n * 53) % 1000:03d}Z"
        status = "250 2.6.0 Queued mail for delivery" if event == "SEND" else ""
        lines.append(f"{stamp},10.0.20.11,{host},10.0.20.11,{host},,,{source},{event},{7000 + n},{mid},{rcpt},"
                     f"{status},{size},1,,,\"{subject}\",{sender},{sender},")
    return "\n".join(lines) + "\n"


def _traffic(start: datetime, count: int, minutes: int = 9) -> list[tuple]:
    users = ["alice", "bob", "carol", "dave", "erin"]
    out = []
    for i in range(count):
        t = start + timedelta(minutes=minutes * i)
        mid = f"<{t.strftime('%Y%m%d%H%M%S')}.{i}@hub01.contoso.local>"
        s, r = users[i % 5], users[(i + 2) % 5]
        size = 18_000 + 1_337 * (i % 11)
        out.append((t, "RECEIVE", "STOREDRIVER", f"{s}@contoso.com", f"{r}@contoso.com", size, f"Status {i}", mid))
        out.append((t + timedelta(seconds=2), "DELIVER", "STOREDRIVER", f"{s}@contoso.com", f"{r}@contoso.com",
                    size, f"Status {i}", mid))
    return out


HUB = "HUB01"
PRESSURE = START + timedelta(hours=50, minutes=12)


def _hub_case(root: Path, app_extra: list[EventSpec], tracking: list[tuple], config: str,
              diskfree: dict[str, tuple[int, int]], tasks: list[tuple[str, int, str]] = ()) -> None:
    _hives(root, HUB, _software((8, 1, 240, 6), ("HubTransportRole",)), _HUB_SERVICES)
    _write_evtx(root, HUB, _chatter(HUB, _HUB_CHATTER, 80) + app_extra)
    write_text(root / "Config" / "EdgeTransport.exe.config", config)
    for drive, (free, total) in diskfree.items():
        write_text(root / "Output" / f"diskfree-{drive}.txt", fsutil(free, total), encoding="cp437")
    write_text(root / "Output" / "tasklist-svc.txt", tasklist_svc(list(tasks)), encoding="cp437")
    write_text(root / "TrackingLogs" / "MSGTRK20090121-1.LOG", msgtrk(HUB, sorted(tracking)))


def build_bp_large_message(case: Path) -> None:
    """A 148 MB message submitted from a mailbox five minutes before version
    buckets went High; pressure never came back to Normal."""
    big = PRESSURE - timedelta(minutes=5)
    tracking = _traffic(START + timedelta(hours=48), 20) + [
        (big, "RECEIVE", "STOREDRIVER", "frank@contoso.com", "partners@fabrikam.com", 155_189_248,
         "Site survey photos (all)", "<7F3A0C@MBX01.contoso.local>"),
        (big + timedelta(seconds=1), "SUBMIT", "STOREDRIVER", "frank@contoso.com", "partners@fabrikam.com",
         155_189_248, "Site survey photos (all)", "<7F3A0C@MBX01.contoso.local>")]
    lines = _resource_lines(140, "Medium", 41, "Normal")
    lines_high = _resource_lines(200, "High", 41, "Normal")
    events = [ev_15004(PRESSURE, HUB, "Normal", "Medium", [lines["buckets"]],
                       [lines["db"], lines["log"], lines["private"], lines["memory"]], _COMPONENTS_MEDIUM),
              ev_15004(PRESSURE + timedelta(minutes=3), HUB, "Medium", "High", [lines_high["buckets"]],
                       [lines_high["db"], lines_high["log"], lines_high["private"], lines_high["memory"]],
                       _COMPONENTS_HIGH)]
    _hub_case(case / HUB, events, tracking, edge_config(), {"C": (61_203_456_000, 104_726_818_816)})


def build_bp_queue_disk_full(case: Path) -> None:
    """The queue database was moved to a small D: volume that filled up:
    15004 names ``D:\\Queue\\mail.que`` at 99% and fsutil shows 212 MB free."""
    lines = _resource_lines(12, "Normal", 99, "High", queue_path="D:\\Queue")
    events = [ev_15004(PRESSURE, HUB, "Normal", "High", [lines["db"]],
                       [lines["log"], lines["buckets"], lines["private"], lines["memory"]], _COMPONENTS_HIGH)]
    config = edge_config({"QueueDatabasePath": "D:\\Queue", "QueueDatabaseLoggingPath": "D:\\Queue"})
    _hub_case(case / HUB, events, _traffic(START + timedelta(hours=48), 20), config,
              {"C": (61_203_456_000, 104_726_818_816), "D": (212_336_640, 21_467_942_912)})


def build_bp_recovered(case: Path) -> None:
    """Version buckets rose to Medium during a backup window and came back
    to Normal 25 minutes later: an episode, not a current problem."""
    lines = _resource_lines(131, "Medium", 40, "Normal")
    back = _resource_lines(22, "Normal", 40, "Normal")
    events = [ev_15004(PRESSURE, HUB, "Normal", "Medium", [lines["buckets"]],
                       [lines["db"], lines["log"], lines["private"], lines["memory"]], _COMPONENTS_MEDIUM),
              ev_15005(PRESSURE + timedelta(minutes=25), HUB, "Medium", "Normal",
                       [back["db"], back["log"], back["buckets"], back["private"], back["memory"]])]
    _hub_case(case / HUB, events, _traffic(START + timedelta(hours=48), 30), edge_config(),
              {"C": (61_203_456_000, 104_726_818_816)})


def build_busy_hub(case: Path) -> None:
    """A busy, healthy Hub: 400 messages received and delivered, no back
    pressure events, no store on this server."""
    _hub_case(case / HUB, [], _traffic(START + timedelta(hours=20), 400, minutes=7), edge_config(),
              {"C": (61_203_456_000, 104_726_818_816)})


# ---------------------------------------------------------- 451 DNS
def get_queue_fl(queues: list[dict[str, str]]) -> str:
    """``Get-Queue | fl > queues.txt`` from the Exchange 2007 shell: objects
    padded to the longest property name, separated by blank lines."""
    blocks = []
    for q in queues:
        width = max(len(k) for k in q)
        blocks.append("\n".join(f"{k:<{width}} : {v}" for k, v in q.items()))
    return "\n\n" + "\n\n".join(blocks) + "\n\n\n"


def _queue(host: str, n: int, domain: str, status: str, count: int, last_error: str) -> dict[str, str]:
    return {"Identity": f"{host}\\{n}", "DeliveryType": "DnsConnectorDelivery", "NextHopDomain": domain,
            "NextHopConnector": "6b2c8e47-3f0d-4a7e-9a51-1f2c3d4e5f60", "Status": status,
            "MessageCount": str(count), "LastError": last_error,
            "LastRetryTime": "1/21/2009 8:14:02 AM" if last_error else "",
            "NextRetryTime": "1/21/2009 8:24:02 AM" if last_error else "",
            "IsValid": "True", "ObjectState": "Unchanged"}


_DNS_FAIL = "451 4.4.0 DNS query failed"


def ipconfig_2008(host: str, ipv6: bool = True) -> str:
    lines = ["", "Windows IP Configuration", "",
             f"   Host Name . . . . . . . . . . . . : {host}",
             "   Primary Dns Suffix  . . . . . . . : contoso.local",
             "   Node Type . . . . . . . . . . . . : Hybrid",
             "   IP Routing Enabled. . . . . . . . : No",
             "   WINS Proxy Enabled. . . . . . . . : No",
             "   DNS Suffix Search List. . . . . . : contoso.local", "",
             "Ethernet adapter Local Area Connection:", "",
             "   Connection-specific DNS Suffix  . : ",
             "   Description . . . . . . . . . . . : Intel(R) PRO/1000 MT Network Connection",
             "   Physical Address. . . . . . . . . : 00-0C-29-B3-C4-D5",
             "   DHCP Enabled. . . . . . . . . . . : No",
             "   Autoconfiguration Enabled . . . . : Yes"]
    if ipv6:
        lines.append("   Link-local IPv6 Address . . . . . : fe80::5d1c:8f2a:e41b:7c3d%10(Preferred) ")
    lines += ["   IPv4 Address. . . . . . . . . . . : 10.0.20.11(Preferred) ",
              "   Subnet Mask . . . . . . . . . . . : 255.255.255.0",
              "   Default Gateway . . . . . . . . . : 10.0.20.1"]
    if ipv6:
        lines += ["   DHCPv6 IAID . . . . . . . . . . . : 234884137",
                  "   DHCPv6 Client DUID. . . . . . . . : 00-01-00-01-11-72-F1-A2-00-0C-29-B3-C4-D5"]
    lines += ["   DNS Servers . . . . . . . . . . . : 10.0.0.10", "                                       10.0.0.11",
              "   NetBIOS over Tcpip. . . . . . . . : Enabled", ""]
    if ipv6:
        lines += ["Tunnel adapter Local Area Connection* 8:", "",
                  "   Media State . . . . . . . . . . . : Media disconnected",
                  "   Connection-specific DNS Suffix  . : ",
                  "   Description . . . . . . . . . . . : isatap.{6E0B6F4A-6C5A-4E1B-9F3A-2A1C0C7D1E11}",
                  "   Physical Address. . . . . . . . . : 00-00-00-00-00-00-00-E0",
                  "   DHCP Enabled. . . . . . . . . . . : No",
                  "   Autoconfiguration Enabled . . . . : Yes", ""]
    return "\n".join(lines) + "\n"


def nslookup_mx(answers: dict[str, list[tuple[int, str]] | str]) -> str:
    """An interactive nslookup transcript: ``set q=mx`` then each domain;
    a string answer is a failure line."""
    out = ["Default Server:  dc01.contoso.local", "Address:  10.0.0.10", "", "> set q=mx"]
    for domain, ans in answers.items():
        out += [f"> {domain}", "Server:  dc01.contoso.local", "Address:  10.0.0.10", ""]
        if isinstance(ans, str):
            out.append(f"*** dc01.contoso.local can't find {domain}: {ans}")
        else:
            out.append("Non-authoritative answer:")
            out += [f"{domain}\tMX preference = {pref}, mail exchanger = {mx}" for pref, mx in ans]
        out.append("")
    out.append("> exit")
    return "\n".join(out) + "\n"


def _dns_case(root: Path, queues: list[dict[str, str]], lookups: dict, ipv6: bool = True) -> None:
    _hives(root, HUB, _software((8, 1, 240, 6), ("HubTransportRole",)), _HUB_SERVICES,
           disabled_components=None if ipv6 else 0xFF)
    _write_evtx(root, HUB, _chatter(HUB, _HUB_CHATTER, 60))
    write_text(root / "Config" / "EdgeTransport.exe.config", edge_config())
    write_text(root / "Output" / "Get-Queue.txt", get_queue_fl(queues), encoding="utf-16-le", bom=True)
    write_text(root / "Output" / "ipconfig-all.txt", ipconfig_2008(HUB, ipv6), encoding="cp437")
    write_text(root / "Output" / "nslookup.txt", nslookup_mx(lookups), encoding="cp437")


def build_dns_ipv6(case: Path) -> None:
    """The blog's case: mail to fabrikam.com and adatum.com sits in Retry
    with 451 4.4.0 DNS query failed, while nslookup from the same server
    resolves both domains' MX records; IPv6 is bound and not preferred off."""
    queues = [_queue(HUB, 7, "fabrikam.com", "Retry", 14, _DNS_FAIL),
              _queue(HUB, 9, "adatum.com", "Retry", 3, _DNS_FAIL),
              _queue(HUB, 11, "litwareinc.com", "Ready", 0, ""),
              _queue(HUB, 12, "contoso.local", "Ready", 0, "")]
    _dns_case(case / HUB, queues, {"fabrikam.com": [(10, "mail.fabrikam.com")],
                                   "adatum.com": [(10, "mx1.adatum.com"), (20, "mx2.adatum.com")]})


def build_dns_nxdomain(case: Path) -> None:
    """451 4.4.0 for one domain that really does not exist (a typo of the
    customer's partner): nslookup says Non-existent domain; IPv6 is off."""
    queues = [_queue(HUB, 7, "fabrikm.com", "Retry", 2, _DNS_FAIL),
              _queue(HUB, 11, "litwareinc.com", "Ready", 0, "")]
    _dns_case(case / HUB, queues, {"fabrikm.com": "Non-existent domain",
                                   "litwareinc.com": [(10, "mail.litwareinc.com")]}, ipv6=False)


def build_dns_other_451(case: Path) -> None:
    """A queue in Retry with 451 4.7.0 (the remote server's temporary
    rejection, greylisting), not a DNS failure."""
    queues = [_queue(HUB, 7, "fabrikam.com", "Retry", 4,
                     "451 4.7.0 Temporary server error. Please try again later. PRX2"),
              _queue(HUB, 11, "litwareinc.com", "Ready", 0, "")]
    _dns_case(case / HUB, queues, {"fabrikam.com": [(10, "mail.fabrikam.com")]})


# ------------------------------------------------------- store crash
MBX = "MBX01"
UR6 = "Update Rollup 6 for Exchange Server 2007 Service Pack 1 (KB959241)"
UR7 = "Update Rollup 7 for Exchange Server 2007 Service Pack 1 (KB960384)"


def app_error_2008(ts: datetime, host: str, app: str, app_ver: str, module: str, mod_ver: str,
                   code: str, offset: str, pid: int) -> EventSpec:
    """"Application Error" 1000 on Windows Server 2008: ten insertion
    strings for "Faulting application %1, version %2, time stamp 0x%3,
    faulting module %4, version %5, time stamp 0x%6, exception code 0x%7,
    fault offset 0x%8, process id 0x%9, application start time 0x%10."."""
    return EventSpec("Application Error", 1000, "error", ts, "Application", host,
                     [app, app_ver, "48ea3d4f", module, mod_ver, "48ea3c12", code, offset, f"{pid:x}",
                      "01c97b2d5e7f3a10"], category=100, qualifiers=0)


def scm_crash(ts: datetime, host: str, count: int) -> EventSpec:
    return EventSpec("Service Control Manager", 7031, "error", ts + timedelta(seconds=3), "System", host,
                     ["Microsoft Exchange Information Store", str(count), "60000", "1",
                      "Restart the service"], qualifiers=0xC000)


def _store_case(root: Path, build: tuple[int, int, int, int], rollups: tuple[str, ...],
                crashes: list[tuple[str, str, str, str, str]]) -> None:
    """Mailbox server with store.exe/other crashes: (app, app version,
    module, module version, offset) per crash, a day apart."""
    _hives(root, MBX, _software(build, ("MailboxRole", "ClientAccessRole"), rollups=rollups), _MBX_SERVICES)
    app, system = _chatter(MBX, _MBX_CHATTER, 80), []
    for n, (exe, ver, module, mver, offset) in enumerate(crashes):
        ts = START + timedelta(hours=9 + 15 * n, minutes=7 * n)
        app.append(app_error_2008(ts, MBX, exe, ver, module, mver, "c0000005", offset, 0x1fc8 + 16 * n))
        if exe.lower() == "store.exe":
            system.append(scm_crash(ts, MBX, n + 1))
    _write_evtx(root, MBX, app, system, seed=959241)


def build_store_excdo(case: Path) -> None:
    """store.exe crashes four times in EXCDO.DLL on Exchange 2007 SP1 with
    Update Rollup 5 (8.1.336.1): the Entourage/ICS calendar crash the blog
    reports fixed by SP1 Update Rollup 6."""
    crash = ("store.exe", "8.1.336.1", "EXCDO.DLL", "8.1.336.0", "00000000001ed390")
    _store_case(case / MBX, (8, 1, 336, 1), ("Update Rollup 5 for Exchange Server 2007 Service Pack 1 (KB953467)",),
                [crash] * 4)


def build_store_excdo_fixed(case: Path) -> None:
    """The same EXCDO.DLL crash on a server that has SP1 Update Rollup 7
    (8.1.359.2): the rollup the blog names is installed, so that cause is
    not it; the module is reported with what to collect."""
    crash = ("store.exe", "8.1.359.2", "EXCDO.DLL", "8.1.359.0", "00000000001f0a44")
    _store_case(case / MBX, (8, 1, 359, 2), (UR6, UR7), [crash] * 2)


def build_store_other_module(case: Path) -> None:
    """store.exe crashing in a third-party MAPI filter (an archiving
    product's module), three times."""
    crash = ("store.exe", "8.1.340.1", "EVMAPIFLT.DLL", "9.0.1.1102", "000000000000c1d4")
    _store_case(case / MBX, (8, 1, 340, 1), (UR6,), [crash] * 3)


def build_store_w3wp(case: Path) -> None:
    """Only IIS crashes (w3wp.exe in KERNELBASE/ntdll) on the mailbox
    server's Client Access role; the store never stopped."""
    crash = ("w3wp.exe", "7.0.6001.18000", "ntdll.dll", "6.0.6001.18000", "0000000000047f3a")
    _store_case(case / MBX, (8, 1, 340, 1), (UR6,), [crash] * 3)


#: The Exchange 2000/2003 diagnoses (KB 911143, KB 926210, KB 828938) do not
#: apply to an Exchange 2007 server.
_LEGACY = tuple(Expect(c, "not_applicable") for c in ("mom-9986", "rpc-port-conflict", "smtp-mailbox-stuck"))


def _s(name: str, build, expected: tuple[Expect, ...], doc: str | None = None, exit_code: int | None = None,
       hosts: tuple[str, ...] | None = None) -> Scenario:
    return Scenario(name, " ".join((doc or build.__doc__ or "").split()), build=build, expected=expected + _LEGACY,
                    hosts=hosts, exit_code=exit_code, pending=_PENDING)


SCENARIOS = [
    _s("transport-back-pressure-large-message", build_bp_large_message,
       (Expect(BP, "problem", "large-message"), Expect(STORE, "not_applicable")), exit_code=1, hosts=(HUB,)),
    _s("transport-back-pressure-queue-disk-full", build_bp_queue_disk_full,
       (Expect(BP, "problem", "queue-disk-full"),), exit_code=1, hosts=(HUB,)),
    _s("transport-back-pressure-recovered", build_bp_recovered, (Expect(BP, "ok"),), hosts=(HUB,)),
    _s("transport-busy-hub-healthy", build_busy_hub,
       (Expect(BP, "ok"), Expect(STORE, "not_applicable")), exit_code=0, hosts=(HUB,)),
    _s("dns-query-failed-ipv6", build_dns_ipv6, (Expect(DNS, "problem", "ipv6-dns-bug"),), exit_code=1,
       hosts=(HUB,)),
    _s("dns-query-failed-nxdomain", build_dns_nxdomain, (Expect(DNS, "problem", "dns-resolution-failure"),),
       exit_code=1, hosts=(HUB,)),
    _s("dns-query-failed-other-451", build_dns_other_451, (Expect(DNS, "ok"),), hosts=(HUB,)),
    _s("store-crash-excdo", build_store_excdo, (Expect(STORE, "problem", "excdo-calendar-bug"),), exit_code=1,
       hosts=(MBX,)),
    _s("store-crash-excdo-fixed-build", build_store_excdo_fixed,
       (Expect(STORE, "problem", "faulting-module"),), exit_code=1, hosts=(MBX,)),
    _s("store-crash-other-module", build_store_other_module, (Expect(STORE, "problem", "faulting-module"),),
       exit_code=1, hosts=(MBX,)),
    _s("store-crash-w3wp-only", build_store_w3wp, (Expect(STORE, "ok"),), hosts=(MBX,)),
]
