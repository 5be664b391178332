"""Sample cases for ``rpc-port-conflict`` (KB 926210 / KB 270836).

Each case is what a customer would upload from an Exchange 2003 server whose
Outlook users are prompted for credentials and cannot log on while OWA
works: an ``rpcdump /S`` transcript, the SYSTEM hive (or a ``reg export``),
``netstat -ano``, ``tasklist /svc`` and the event logs — mixed with the
ordinary chatter of the machine, so the check has to pick the Exchange
interfaces, the KB 270836 values of the *current* control set and the one
socket that matters out of everything else.

Facts the builders keep realistic:

* the SYSTEM hive's ``Select\\Current`` is 2, and ControlSet001 (the last
  known good set) holds an older, harmless port: reading the wrong control
  set gives the wrong answer;
* rpcdump lists every interface once per IP address, plus many non-Exchange
  interfaces and the ncacn_np / ncalrpc / ncacn_http sections;
* netstat shows dozens of sockets; tasklist wraps long service lists;
* Security events are the Windows 2000/2003 audit forms (529 with 13
  insertion strings, 681 with the decimal NTSTATUS), among successful logons
  and a console 529 (Logon Type 2) that is not the symptom.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from analyzer.synth.evt import EvtRecord, write_evt
from analyzer.synth.regf import write_hive
from . import Expect, Scenario, noise, write_text
from .noise import utc

CHECK = "rpc-port-conflict"

# Exchange interfaces, in the order rpcdump printed them in KB 926210, with the
# annotation each registers (KB spelling; the typo form is used on one IP).
_MTA = [("38a94e72-a9bc-11d2-8faf-00c04fa378ff", "MS Exchange MTA 'QAdmin' Interface"),
        ("9e8ee830-4459-11ce-979b-00aa005ffebe", "MS Exchange MTA 'Mta' Interface")]
_STORE = [("a4f1db00-ca47-1067-b31f-00dd010662da", "Exchange Server STORE EMSMDB Interface"),
          ("0e4a0156-dd5d-11d2-8c2f-00c04fb6bcde", "Microsoft Information Store"),
          ("1453c42c-0fa6-11d2-a910-00c04f990f3b", "Microsoft Information Store"),
          ("10f24e8e-0fa6-11d2-a910-00c04f990f3b", "Microsoft Information Store"),
          ("99e64010-b032-11d0-97a4-00c04fd6551d", "Exchange Server STORE ADMIN Interface"),
          ("89742ace-a9ed-11cf-9c0c-08002be7ae86", "Exchange Server STORE ADMIN Interface"),
          ("a4f1db00-ca47-1067-b31e-00dd010662da", "Exchange Server STORE ADMIN Interface")]
_NSPI = [("f5cc5a18-4264-101a-8c59-08002b2f8426", "MS Exchange Directory NSPI Proxy")]
_RFR = [("1544f5e0-613c-11d1-93df-00c04fd7bd09", "MS Exchange Directory RFR Interface")]
_SA = [("f930c514-1215-11d3-99a5-00a0c9b61b04", "MS Exchange System Attendant Cluster Interface"),
       ("83d72bf0-0d89-11ce-b13f-00aa003bac6c", "MS Exchange System Attendant Private Interface"),
       ("469d6ec0-0d87-11ce-b13f-00aa003bac6c", "MS Exchange System Attendant Public Interface")]

# Windows' own interfaces on a member server (noise in the dump).
_WINDOWS_TCP = [("12345778-1234-abcd-ef00-0123456789ac", ""),
                ("1ff70682-0a51-30e8-076d-740be8cee98b", ""),
                ("378e52b0-c0a9-11cf-822d-00aa0051e40f", ""),
                ("906b0ce0-c70b-1067-b317-00dd010662da", ""),
                ("4b324fc8-1670-01d3-1278-5a47bf6ee188", ""),
                ("12345678-1234-abcd-ef00-0123456789ab", "IPSec Policy agent endpoint"),
                ("8d0ffe72-d252-11d0-bf8f-00c04fd9126b", "")]
_WINDOWS_LOCAL = [("ncalrpc", "[OLE7]", "3473dd4d-2e88-4006-9cba-22570909dd10", "WinHttp Auto-Proxy Service"),
                  ("ncalrpc", "[senssvc]", "63fbe424-2029-11d1-8db8-00aa004abd5e", ""),
                  ("ncalrpc", "[wzcsvc]", "621dff68-3c39-4c6c-aae3-e68e2c6503ad", "Wireless Configuration"),
                  ("ncacn_np", "\\\\{host}[\\PIPE\\lsass]", "12345778-1234-abcd-ef00-0123456789ac", ""),
                  ("ncacn_np", "\\\\{host}[\\pipe\\keysvc]", "8d0ffe72-d252-11d0-bf8f-00c04fd9126b", ""),
                  ("ncalrpc", "[OLE5]", "3c4728c5-f0ab-448b-bda1-6ce01eb0a6d5", "DHCP Client LRPC Endpoint")]

_PROTSEQ_TITLES = {
    "ncacn_ip_tcp": "ncacn_ip_tcp(Connection-oriented TCP/IP)",
    "ncacn_np": "ncacn_np(Connection-oriented named pipes)",
    "ncalrpc": "ncalrpc(Local Rpc)",
    "ncacn_http": "ncacn_http(Connection-oriented TCP/IP using Microsoft Internet Information "
                  "Server as HTTP proxy.)",
}


def rpcdump_text(host: str, ips: list[str], tcp: list[tuple[list[tuple[str, str]], int]],
                 http: list[tuple[list[tuple[str, str]], int]] = (), typo: bool = True) -> str:
    """An rpcdump.exe (Resource Kit) transcript: ``tcp`` is a list of
    (interfaces, port) groups registered on ncacn_ip_tcp."""
    lines = [f"C:\\RPCdump>rpcdump /S {host}", "Querying Endpoint Mapper Database...",
             f"{sum(len(i) for i, _ in tcp) * len(ips) + 20} registered endpoints found.", ""]
    lines.append(_PROTSEQ_TITLES["ncalrpc"])
    for proto, ep, uuid, ann in _WINDOWS_LOCAL:
        if proto == "ncalrpc":
            lines.append(f"  {ep} [{uuid}] {ann} :NOT_PINGED")
    lines.append(_PROTSEQ_TITLES["ncacn_np"])
    for proto, ep, uuid, ann in _WINDOWS_LOCAL:
        if proto == "ncacn_np":
            lines.append(f"  {ep.format(host=host)} [{uuid}] {ann} :NOT_PINGED")
    lines.append(_PROTSEQ_TITLES["ncacn_ip_tcp"])
    for n, (uuid, ann) in enumerate(_WINDOWS_TCP):
        for ip in ips:
            lines.append(f"  {ip}[{1025 + n}] [{uuid}] {ann} :NOT_PINGED")
    for ifaces, port in tcp:
        for uuid, ann in ifaces:
            for k, ip in enumerate(ips):
                shown = ann
                if typo and k == 1 and ann == "MS Exchange Directory NSPI Proxy":
                    shown = "MS ExchangeDirectory NSPI Proxy"  # KB 926210's own spelling
                lines.append(f"  {ip}[{port}] [{uuid}] {shown} :NOT_PINGED")
    if http:
        lines.append(_PROTSEQ_TITLES["ncacn_http"])
        for ifaces, port in http:
            for uuid, ann in ifaces:
                lines.append(f"  {ips[0]}[{port}] [{uuid}] {ann} :NOT_PINGED")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# netstat / tasklist

#: (image, pid, services) of an Exchange 2003 server; wrapped lists as tasklist prints them.
_PROCESSES: list[tuple[str, int, list[str]]] = [
    ("System Idle Process", 0, []), ("System", 4, []), ("smss.exe", 356, []),
    ("csrss.exe", 404, []), ("winlogon.exe", 428, []),
    ("services.exe", 476, ["Eventlog", "PlugPlay"]),
    ("lsass.exe", 488, ["HTTPFilter", "kdc", "Netlogon", "PolicyAgent", "ProtectedStorage", "SamSs"]),
    ("svchost.exe", 688, ["DcomLaunch", "TermService"]),
    ("svchost.exe", 744, ["RpcSs"]),
    ("svchost.exe", 820, ["Dhcp", "Dnscache"]),
    ("svchost.exe", 864, ["AeLookupSvc", "Browser", "CryptSvc", "dmserver", "EventSystem",
                          "helpsvc", "lanmanserver", "lanmanworkstation", "Netman", "Nla",
                          "Schedule", "seclogon", "SENS", "SharedAccess", "ShellHWDetection",
                          "TrkWks", "W32Time", "winmgmt", "wuauserv", "WZCSVC"]),
    ("spoolsv.exe", 1056, ["Spooler"]),
    ("msdtc.exe", 1084, ["MSDTC"]),
    ("inetinfo.exe", 1312, ["IISADMIN", "MSExchangeES", "NntpSvc", "POP3Svc", "RESvc", "SMTPSVC",
                            "W3SVC"]),
    ("VMwareService.exe", 1480, ["VMTools"]),
    ("mad.exe", 1604, ["MSExchangeSA"]),
    ("emsmta.exe", 1744, ["MSExchangeMTA"]),
    ("beremote.exe", 2412, ["BackupExecAgentAgent"]),
    ("store.exe", 2768, ["MSExchangeIS"]),
    ("w3wp.exe", 3120, []),
    ("csrss.exe", 3356, []),
    ("explorer.exe", 3488, []),
    ("cmd.exe", 3720, []),
    ("tasklist.exe", 3804, []),
]


def tasklist_text(processes: list[tuple[str, int, list[str]]], german: bool = False) -> str:
    head = ("Abbildname                     PID Dienste" if german
            else "Image Name                     PID Services")
    lines = ["", head, "========================= ======== ============================================"]
    none = "Nicht zutreffend" if german else "N/A"
    for image, pid, svcs in processes:
        text = ", ".join(svcs) if svcs else none
        first, rest = text, ""
        if len(text) > 44:
            cut = text.rfind(",", 0, 44) + 1
            first, rest = text[:cut], text[cut:].strip()
        lines.append(f"{image[:25]:<25} {pid:>8} {first}")
        while rest:
            chunk = rest
            if len(rest) > 44:
                cut = rest.rfind(",", 0, 44) + 1
                chunk, rest = rest[:cut], rest[cut:].strip()
            else:
                rest = ""
            lines.append(f"{'':<34} {chunk}")
    return "\n".join(lines) + "\n"


def netstat_text(sockets: list[tuple[str, str, str, str, int]], german: bool = False) -> str:
    """``netstat -ano``: (proto, local, remote, state, pid); German states
    when asked (ABHÖREN / HERGESTELLT / WARTEND, as cmd.exe prints them)."""
    states = {"LISTENING": "ABHÖREN", "ESTABLISHED": "HERGESTELLT", "TIME_WAIT": "WARTEND",
              "CLOSE_WAIT": "SCHLIESSEN_WARTEN"}
    if german:
        lines = ["", "Aktive Verbindungen", "",
                 "  Proto  Lokale Adresse         Remoteadresse          Status           PID"]
    else:
        lines = ["", "Active Connections", "",
                 "  Proto  Local Address          Foreign Address        State           PID"]
    for proto, local, remote, state, pid in sockets:
        st = states.get(state, state) if german else state
        if proto == "UDP":
            lines.append(f"  {proto:<6} {local:<22} {remote:<22} {'':<15} {pid}")
        else:
            lines.append(f"  {proto:<6} {local:<22} {remote:<22} {st:<15} {pid}")
    return "\n".join(lines) + "\n"


def _sockets(ip: str, extra: list[tuple[str, str, str, str, int]]) -> list[tuple[str, str, str, str, int]]:
    base = [
        ("TCP", "0.0.0.0:25", "0.0.0.0:0", "LISTENING", 1312),
        ("TCP", "0.0.0.0:80", "0.0.0.0:0", "LISTENING", 1312),
        ("TCP", "0.0.0.0:102", "0.0.0.0:0", "LISTENING", 1744),
        ("TCP", "0.0.0.0:110", "0.0.0.0:0", "LISTENING", 1312),
        ("TCP", "0.0.0.0:119", "0.0.0.0:0", "LISTENING", 1312),
        ("TCP", "0.0.0.0:135", "0.0.0.0:0", "LISTENING", 744),
        ("TCP", "0.0.0.0:143", "0.0.0.0:0", "LISTENING", 1312),
        ("TCP", "0.0.0.0:443", "0.0.0.0:0", "LISTENING", 1312),
        ("TCP", "0.0.0.0:445", "0.0.0.0:0", "LISTENING", 4),
        ("TCP", "0.0.0.0:691", "0.0.0.0:0", "LISTENING", 1312),
        ("TCP", "0.0.0.0:1025", "0.0.0.0:0", "LISTENING", 488),
        ("TCP", "0.0.0.0:1026", "0.0.0.0:0", "LISTENING", 864),
        ("TCP", "0.0.0.0:1029", "0.0.0.0:0", "LISTENING", 1084),
        ("TCP", "0.0.0.0:3389", "0.0.0.0:0", "LISTENING", 688),
        ("TCP", "0.0.0.0:3595", "0.0.0.0:0", "LISTENING", 1744),
        ("TCP", "0.0.0.0:10000", "0.0.0.0:0", "LISTENING", 2412),
        ("TCP", f"{ip}:139", "0.0.0.0:0", "LISTENING", 4),
        ("TCP", f"{ip}:1221", "10.0.0.10:389", "ESTABLISHED", 1604),
        ("TCP", f"{ip}:1224", "10.0.0.10:3268", "ESTABLISHED", 1604),
        ("TCP", f"{ip}:1290", "10.0.0.10:389", "ESTABLISHED", 2768),
        ("TCP", f"{ip}:3389", "10.0.50.14:2711", "ESTABLISHED", 688),
        ("TCP", f"{ip}:1310", "10.0.0.10:135", "TIME_WAIT", 0),
        ("UDP", "0.0.0.0:445", "*:*", "", 4),
        ("UDP", "0.0.0.0:500", "*:*", "", 488),
        ("UDP", f"{ip}:123", "*:*", "", 864),
        ("UDP", f"{ip}:137", "*:*", "", 4),
    ]
    out = base + extra
    out.sort(key=lambda s: (s[0], [int(x) if x.isdigit() else 0 for x in
                                  s[1].rsplit(":", 1)[0].split(".")], int(s[1].rsplit(":", 1)[1])))
    return out


# ---------------------------------------------------------------------------
# registry

def system_hive_keys(host: str, current: dict[str, dict[str, Any]],
                     last_known_good: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """SYSTEM hive: Select\\Current = 2; ``current`` goes to ControlSet002,
    ``last_known_good`` (older values) to ControlSet001. Keys are relative
    to ``ControlSet00N`` (``Services\\MSExchangeIS\\ParametersSystem``)."""
    keys = noise.system_noise(host, control_sets=(1, 2))
    keys["Select"] = {"Current": ("REG_DWORD", 2), "Default": ("REG_DWORD", 2),
                      "Failed": ("REG_DWORD", 0), "LastKnownGood": ("REG_DWORD", 1)}
    base_services = {
        "Services\\MSExchangeIS": {"DisplayName": ("REG_SZ", "Microsoft Exchange Information Store"),
                                   "ImagePath": ("REG_EXPAND_SZ", "\"C:\\Program Files\\Exchsrvr\\bin\\store.exe\""),
                                   "Start": ("REG_DWORD", 2)},
        "Services\\MSExchangeIS\\ParametersSystem": {
            "Working Directory": ("REG_SZ", "C:\\Program Files\\Exchsrvr\\mdbdata"),
            "Rpc/HTTP Port": ("REG_DWORD", 6001)},
        "Services\\MSExchangeSA": {"DisplayName": ("REG_SZ", "Microsoft Exchange System Attendant"),
                                   "ImagePath": ("REG_EXPAND_SZ", "\"C:\\Program Files\\Exchsrvr\\bin\\mad.exe\""),
                                   "Start": ("REG_DWORD", 2)},
        "Services\\MSExchangeSA\\Parameters": {"HTTP Port": ("REG_DWORD", 6002),
                                               "Rpc/HTTP NSPI Port": ("REG_DWORD", 6004)},
        "Services\\MSExchangeMTA": {"DisplayName": ("REG_SZ", "Microsoft Exchange MTA Stacks"),
                                    "Start": ("REG_DWORD", 2)},
        "Services\\MSExchangeMTA\\Parameters": {"RFC1006 Port Number": ("REG_DWORD", 102)},
        "Services\\Tcpip\\Parameters": {"Hostname": ("REG_SZ", host),
                                        "Domain": ("REG_SZ", "contoso.local")},
    }
    for n, extra in ((1, last_known_good or {}), (2, current)):
        cs = f"ControlSet{n:03d}"
        for rel, vals in base_services.items():
            keys.setdefault(f"{cs}\\{rel}", {}).update(vals)
        for rel, vals in extra.items():
            keys.setdefault(f"{cs}\\{rel}", {}).update(vals)
    return keys


def _write_system(case: Path, host: str, current: dict, lkg: dict | None = None) -> None:
    (case / "registry").mkdir(parents=True, exist_ok=True)
    write_hive(case / "registry" / "SYSTEM", system_hive_keys(host, current, lkg), root_name="SYSTEM",
               file_name="\\SystemRoot\\System32\\Config\\SYSTEM",
               default_timestamp=utc(2007, 3, 12, 6, 40, 0))


def _write_software(case: Path) -> None:
    (case / "registry").mkdir(parents=True, exist_ok=True)
    write_hive(case / "registry" / "SOFTWARE", noise.software_noise(), root_name="SOFTWARE",
               file_name="\\SystemRoot\\System32\\Config\\SOFTWARE",
               default_timestamp=utc(2007, 3, 12, 6, 40, 0))


def reg_export(keys: dict[str, dict[str, tuple[str, Any]]]) -> str:
    """``reg export`` / regedit v5 text for DWORD and string values."""
    lines = ["Windows Registry Editor Version 5.00", ""]
    for key, vals in keys.items():
        lines.append(f"[{key}]")
        for name, (typ, val) in vals.items():
            label = "@" if name == "" else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            if typ == "REG_DWORD":
                lines.append(f"{label}=dword:{int(val):08x}")
            else:
                lines.append(f"{label}=\"{str(val).replace(chr(92), chr(92) * 2)}\"")
        lines.append("")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# event logs

_WORKSTATIONS = ["WS-0142", "WS-0157", "WS-0210", "LT-0033", "WS-0188"]
_USERS = ["jsmith", "mgarcia", "tnguyen", "akowalski", "rpatel"]


def security_events(host: str, start, count: int, symptoms: bool) -> list[EvtRecord]:
    """Security log of a Windows 2000/2003 server: successful logons and
    logoffs, one console typo (529, Logon Type 2), and — when ``symptoms`` —
    KB 926210's network 529 (type 3, NtLmSsp) + 681 (3221225572) pairs."""
    recs: list[EvtRecord] = []
    t = start
    for n in range(count):
        t = t + timedelta(minutes=7, seconds=13 * (n % 5))
        user = _USERS[n % len(_USERS)]
        ws = _WORKSTATIONS[n % len(_WORKSTATIONS)]
        recs.append(EvtRecord(540, "Security", t, "audit_success", host, category=2,
                              strings=[user, "CONTOSO", f"(0x0,0x{0x3E7A0 + n:X})", "3", "Kerberos",
                                       "Kerberos", ws, f"{{{n:08x}-5c1a-4f3e-9a44-3b0e5d2c1f7a}}", "-",
                                       "-", "-", f"10.0.50.{14 + n % 9}", str(1100 + n)],
                              user_sid="S-1-5-18"))
        recs.append(EvtRecord(538, "Security", t + timedelta(seconds=40), "audit_success", host,
                              category=2, strings=[user, "CONTOSO", f"(0x0,0x{0x3E7A0 + n:X})", "3"],
                              user_sid="S-1-5-18"))
        if n == 3:
            recs.append(EvtRecord(529, "Security", t + timedelta(minutes=2), "audit_failure", host,
                                  category=2,
                                  strings=["administrator", host, "2", "User32  ", "Negotiate", host,
                                           f"{host}$", "CONTOSO", "(0x0,0x3E7)", "428", "-",
                                           "127.0.0.1", "0"], user_sid="S-1-5-18"))
        if symptoms and n % 3 == 1:
            f = t + timedelta(minutes=3)
            recs.append(EvtRecord(529, "Security", f, "audit_failure", host, category=2,
                                  strings=[user, ws, "3", "NtLmSsp ",
                                           "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", ws, "-", "-",
                                           "-", "-", "-", f"10.0.50.{14 + n % 9}", "0"],
                                  user_sid="S-1-5-18"))
            recs.append(EvtRecord(681, "Security", f, "audit_failure", host, category=9,
                                  strings=[user, "MICROSOFT_AUTHENTICATION_PACKAGE_V1_0", ws,
                                           "3221225572"], user_sid="S-1-5-18"))
    return recs


def _write_logs(case: Path, host: str, start, security: bool, symptoms: bool,
                extra_system: list | None = None) -> None:
    logs = case / "eventlogs"
    logs.mkdir(parents=True, exist_ok=True)
    sys_events = noise.chatter("System", host, start, 60, seed=926210)
    app_events = noise.chatter("Application", host, start, 60, seed=270836)
    write_evt(logs / "SysEvent.Evt", noise.to_evt(noise.merge(sys_events, extra_system or [])))
    write_evt(logs / "AppEvent.Evt", noise.to_evt(app_events))
    if security:
        write_evt(logs / "SecEvent.Evt", security_events(host, start, 40, symptoms))


# ---------------------------------------------------------------------------
# scenarios

HOST = "EXCH01"
IPS = ["10.0.100.32", "192.168.10.32"]
START = utc(2007, 3, 12, 7, 0, 0)

_IS_PORT, _SA_PORT, _NSPI_PORT = 1033, 1031, 1032
_STATIC = {"Services\\MSExchangeIS\\ParametersSystem": {"TCP/IP Port": ("REG_DWORD", _IS_PORT)},
           "Services\\MSExchangeSA\\Parameters": {"TCP/IP Port": ("REG_DWORD", _SA_PORT),
                                                  "TCP/IP NSPI Port": ("REG_DWORD", _NSPI_PORT)}}
# Last known good control set: the ports the admin used before (free ones).
_STATIC_OLD = {"Services\\MSExchangeIS\\ParametersSystem": {"TCP/IP Port": ("REG_DWORD", 6010)},
               "Services\\MSExchangeSA\\Parameters": {"TCP/IP Port": ("REG_DWORD", 6011),
                                                      "TCP/IP NSPI Port": ("REG_DWORD", 6012)}}


def _missing_dump() -> str:
    """KB 926210's second listing: MTA and the directory interfaces only."""
    return rpcdump_text(HOST, IPS, [(_MTA, 3595), (_NSPI, _NSPI_PORT), (_RFR, 3518)])


def _full_dump(is_port: int, sa_port: int, nspi_port: int, host: str = HOST,
               ips: list[str] | None = None) -> str:
    return rpcdump_text(host, ips or IPS, [(_MTA, 3595), (_STORE, is_port), (_NSPI, nspi_port),
                                    (_RFR + _SA, sa_port)],
                        http=[(_STORE[:1], 6001), (_NSPI, 6004)])


def _conflict_sockets(ip: str) -> list:
    """Port 1033 (the store's) held by the Backup Exec remote agent, port
    1031 (the System Attendant's) taken as the source port of an outgoing
    connection by inetinfo.exe; mad.exe still got its NSPI port 1032."""
    return _sockets(ip, [
        ("TCP", f"0.0.0.0:{_IS_PORT}", "0.0.0.0:0", "LISTENING", 2412),
        ("TCP", f"{ip}:{_SA_PORT}", "10.0.0.10:3268", "ESTABLISHED", 1312),
        ("TCP", f"0.0.0.0:{_NSPI_PORT}", "0.0.0.0:0", "LISTENING", 1604),
        ("TCP", "0.0.0.0:6001", "0.0.0.0:0", "LISTENING", 2768),
        ("TCP", "0.0.0.0:6002", "0.0.0.0:0", "LISTENING", 1604),
        ("TCP", "0.0.0.0:6004", "0.0.0.0:0", "LISTENING", 1604),
    ])


def build_static_port_in_use(case: Path) -> None:
    write_text(case / "rpcdump.txt", _missing_dump(), encoding="cp437")
    _write_system(case, HOST, _STATIC, _STATIC_OLD)
    _write_software(case)
    enc = "cp850"
    write_text(case / "netstat.txt", netstat_text(_conflict_sockets(IPS[0])), encoding=enc)
    write_text(case / "tasklist.txt", tasklist_text(_PROCESSES), encoding=enc)
    _write_logs(case, HOST, START, security=True, symptoms=True)


def build_german(case: Path) -> None:
    """German Windows: netstat says ABHÖREN/HERGESTELLT (cp850), tasklist's
    header is Abbildname/PID/Dienste; no Security log this time."""
    write_text(case / "rpcdump.txt", _missing_dump(), encoding="cp437")
    _write_system(case, HOST, _STATIC, _STATIC_OLD)
    write_text(case / "netstat-ano.txt", netstat_text(_conflict_sockets(IPS[0]), german=True),
               encoding="cp850")
    write_text(case / "tasklist-svc.txt", tasklist_text(_PROCESSES, german=True), encoding="cp850")
    _write_logs(case, HOST, START, security=False, symptoms=False)


def build_healthy(case: Path) -> None:
    """Static ports configured, each held by its own Exchange process; the
    dump lists every interface of KB 926210's complete listing."""
    write_text(case / "rpcdump.txt", _full_dump(_IS_PORT, _SA_PORT, _NSPI_PORT), encoding="cp437")
    _write_system(case, HOST, _STATIC, _STATIC_OLD)
    _write_software(case)
    socks = _sockets(IPS[0], [
        ("TCP", f"0.0.0.0:{_IS_PORT}", "0.0.0.0:0", "LISTENING", 2768),
        ("TCP", f"0.0.0.0:{_SA_PORT}", "0.0.0.0:0", "LISTENING", 1604),
        ("TCP", f"0.0.0.0:{_NSPI_PORT}", "0.0.0.0:0", "LISTENING", 1604),
        ("TCP", "0.0.0.0:6001", "0.0.0.0:0", "LISTENING", 2768),
        ("TCP", "0.0.0.0:6002", "0.0.0.0:0", "LISTENING", 1604),
        ("TCP", "0.0.0.0:6004", "0.0.0.0:0", "LISTENING", 1604),
    ])
    write_text(case / "netstat.txt", netstat_text(socks), encoding="cp437")
    write_text(case / "tasklist.txt", tasklist_text(_PROCESSES), encoding="cp437")
    _write_logs(case, HOST, START, security=True, symptoms=False)


def build_reg_export_duplicate(case: Path) -> None:
    """A firewall guide copied twice: the store and the System Attendant are
    both pinned to 4000 in a `reg export` (UTF-16LE, CurrentControlSet).
    mad.exe started first and owns 4000; the store's interfaces are missing."""
    ccs = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services"
    text = reg_export({
        f"{ccs}\\MSExchangeIS": {"DisplayName": ("REG_SZ", "Microsoft Exchange Information Store"),
                                 "Start": ("REG_DWORD", 2)},
        f"{ccs}\\MSExchangeIS\\ParametersSystem": {
            "Working Directory": ("REG_SZ", "C:\\Program Files\\Exchsrvr\\mdbdata"),
            "TCP/IP port": ("REG_DWORD", 4000)},
        f"{ccs}\\MSExchangeSA": {"DisplayName": ("REG_SZ", "Microsoft Exchange System Attendant"),
                                 "Start": ("REG_DWORD", 2)},
        f"{ccs}\\MSExchangeSA\\Parameters": {"TCP/IP Port": ("REG_DWORD", 4000),
                                             "TCP/IP NSPI Port": ("REG_DWORD", 4001)},
    })
    write_text(case / "exchange-services.reg", text, encoding="utf-16-le", bom=True)
    write_text(case / "rpcdump.txt",
               rpcdump_text(HOST, IPS, [(_MTA, 3595), (_NSPI, 4001), (_RFR + _SA, 4000)]),
               encoding="cp437")
    socks = _sockets(IPS[0], [("TCP", "0.0.0.0:4000", "0.0.0.0:0", "LISTENING", 1604),
                              ("TCP", "0.0.0.0:4001", "0.0.0.0:0", "LISTENING", 1604)])
    write_text(case / "netstat.txt", netstat_text(socks), encoding="cp437")
    write_text(case / "tasklist.txt", tasklist_text(_PROCESSES), encoding="cp437")
    _write_logs(case, HOST, START, security=False, symptoms=False)


def build_store_stopped(case: Path) -> None:
    """No static port anywhere; the store is not running (SCM 7031 in the
    System log), so its interfaces are missing from the dump."""
    write_text(case / "rpcdump.txt",
               rpcdump_text(HOST, IPS, [(_MTA, 3595), (_NSPI, 3521), (_RFR + _SA, 3518)]),
               encoding="cp437")
    _write_system(case, HOST, {}, {})
    procs = [p for p in _PROCESSES if p[0] != "store.exe"]
    write_text(case / "tasklist.txt", tasklist_text(procs), encoding="cp437")
    write_text(case / "netstat.txt", netstat_text(_sockets(IPS[0], [])), encoding="cp437")
    crash = noise.EventSpec("Service Control Manager", 7031, "error", START + timedelta(hours=5),
                            "System", HOST, ["Microsoft Exchange Information Store", "1", "0", "1",
                                             "Restart the service"])
    _write_logs(case, HOST, START, security=False, symptoms=False, extra_system=[crash])


def build_gc_nspi_duplicate(case: Path) -> None:
    """Exchange 2003 on a domain controller (Small Business Server style):
    the admin pinned the System Attendant's NSPI proxy to 1032, the same port
    the Global Catalog's NTDS "TCP/IP Port" uses (KB 298369). lsass.exe starts
    first and owns 1032; the dump is still complete because the GC registers
    the NSPI interface itself on that port — a latent clash, not yet an outage."""
    host = "SBS01"
    ips = ["10.0.100.5"]
    current = {"Services\\MSExchangeSA\\Parameters": {"TCP/IP NSPI Port": ("REG_DWORD", 1032)},
               "Services\\NTDS\\Parameters": {"TCP/IP Port": ("REG_DWORD", 1032),
                                               "DSA Working Directory": ("REG_SZ", "C:\\WINDOWS\\NTDS")}}
    lkg = {"Services\\NTDS\\Parameters": {"TCP/IP Port": ("REG_DWORD", 1032),
                                           "DSA Working Directory": ("REG_SZ", "C:\\WINDOWS\\NTDS")}}
    _write_system(case, host, current, lkg)
    _write_software(case)
    write_text(case / "rpcdump.txt",
               rpcdump_text(host, ips, [(_MTA, 3595), (_STORE, 3520), (_NSPI, 1032), (_RFR + _SA, 3518)],
                            typo=False),
               encoding="cp437")
    socks = _sockets(ips[0], [("TCP", "0.0.0.0:1032", "0.0.0.0:0", "LISTENING", 488),
                              ("TCP", "0.0.0.0:389", "0.0.0.0:0", "LISTENING", 488),
                              ("TCP", "0.0.0.0:3268", "0.0.0.0:0", "LISTENING", 488),
                              ("TCP", "0.0.0.0:3520", "0.0.0.0:0", "LISTENING", 2768),
                              ("TCP", "0.0.0.0:3518", "0.0.0.0:0", "LISTENING", 1604),
                              ("TCP", "0.0.0.0:6001", "0.0.0.0:0", "LISTENING", 2768),
                              ("TCP", "0.0.0.0:6002", "0.0.0.0:0", "LISTENING", 1604),
                              ("TCP", "0.0.0.0:6004", "0.0.0.0:0", "LISTENING", 1604)])
    write_text(case / "netstat.txt", netstat_text(socks), encoding="cp437")
    write_text(case / "tasklist.txt", tasklist_text(_PROCESSES), encoding="cp437")
    _write_logs(case, host, START, security=True, symptoms=False)


def security_text_export(host: str, start) -> str:
    """Security events copied from Event Viewer (Windows 2000/2003 "copy to
    clipboard" blocks, TAB-aligned as in KB 926210): KB 926210's 529/681
    pairs, a successful network logon and a console typo (529, type 2)."""
    blocks: list[str] = []

    def block(t, etype, cat, eid, desc: list[str]) -> None:
        hour = t.hour % 12 or 12
        blocks.append("\n".join([
            f"Event Type:\t{etype}", "Event Source:\tSecurity", f"Event Category:\t{cat} ",
            f"Event ID:\t{eid}", f"Date:\t\t{t.month}/{t.day}/{t.year}",
            f"Time:\t\t{hour}:{t.minute:02d}:{t.second:02d} {'AM' if t.hour < 12 else 'PM'}",
            "User:\t\tNT AUTHORITY\\SYSTEM", f"Computer:\t{host}", "Description:", *desc, "", ""]))

    t = start
    for n in range(6):
        t = t + timedelta(minutes=11, seconds=7 * n)
        user, ws = _USERS[n % len(_USERS)], _WORKSTATIONS[n % len(_WORKSTATIONS)]
        block(t, "Success Audit", "Logon/Logoff", 540, [
            "Successful Network Logon:", f" \tUser Name:\t{user}", " \tDomain:\t\tCONTOSO",
            " \tLogon Type:\t3", " \tLogon Process:\tKerberos",
            " \tAuthentication Package:\tKerberos", f" \tWorkstation Name:\t{ws}"])
        if n == 2:
            block(t + timedelta(seconds=30), "Failure Audit", "Logon/Logoff", 529, [
                "Logon Failure:", " \tReason:\t\tUnknown user name or bad password",
                " \tUser Name:\tadministrator", f" \tDomain:\t\t{host}", " \tLogon Type:\t2",
                " \tLogon Process:\tUser32  ", " \tAuthentication Package:\tNegotiate",
                f" \tWorkstation Name:\t{host}"])
        if n % 2 == 1:
            f = t + timedelta(minutes=1)
            block(f, "Failure Audit", "Logon/Logoff", 529, [
                "Logon Failure:", " \tReason:\t\tUnknown user name or bad password",
                f" \tUser Name:\t{user}", f" \tDomain:\t\t{ws}", " \tLogon Type:\t3",
                " \tLogon Process:\tNtLmSsp ",
                " \tAuthentication Package:\tMICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                f" \tWorkstation Name:\t{ws}"])
            block(f, "Failure Audit", "Account Logon", 681, [
                f"The logon to account: {user}", " by: MICROSOFT_AUTHENTICATION_PACKAGE_V1_0",
                f" from workstation: {ws}", " failed. The error code was: 3221225572"])
    return "\n".join(blocks)


def build_symptoms_only(case: Path) -> None:
    """Only event logs were sent: System/Application .evt noise and the
    Security events the admin copied out of Event Viewer as text."""
    _write_logs(case, HOST, START, security=False, symptoms=False)
    write_text(case / "security-events.txt", security_text_export(HOST, START))


def build_not_exchange(case: Path) -> None:
    """A file server: its own endpoints, SYSTEM hive, netstat and tasklist,
    and a Security log with ordinary logons and one console typo."""
    host = "FS01"
    write_text(case / "rpcdump.txt", rpcdump_text(host, ["10.0.100.40"], []), encoding="cp437")
    keys = noise.system_noise(host, control_sets=(1,))
    keys["Select"] = {"Current": ("REG_DWORD", 1), "LastKnownGood": ("REG_DWORD", 1)}
    keys["ControlSet001\\Services\\LanmanServer\\Parameters"] = {"AutoShareServer": ("REG_DWORD", 1)}
    (case / "registry").mkdir(parents=True, exist_ok=True)
    write_hive(case / "registry" / "SYSTEM", keys, root_name="SYSTEM",
               default_timestamp=utc(2007, 3, 12, 6, 40, 0))
    procs = [p for p in _PROCESSES if p[0] not in ("store.exe", "mad.exe", "emsmta.exe",
                                                   "inetinfo.exe", "beremote.exe")]
    write_text(case / "tasklist.txt", tasklist_text(procs), encoding="cp437")
    socks = [s for s in _sockets("10.0.100.40", []) if s[4] not in (1312, 1604, 1744, 2412, 2768)]
    write_text(case / "netstat.txt", netstat_text(socks), encoding="cp437")
    logs = case / "eventlogs"
    logs.mkdir(parents=True, exist_ok=True)
    write_evt(logs / "SysEvent.Evt", noise.to_evt(noise.chatter("System", host, START, 50, seed=40)))
    write_evt(logs / "SecEvent.Evt", security_events(host, START, 30, symptoms=False))


SCENARIOS = [
    Scenario("rpc-port-conflict-static-port-in-use",
             "KB 926210: the store's static port 1033 is held by beremote.exe and the System "
             "Attendant's 1031 by an outgoing inetinfo.exe connection; rpcdump lacks the Information "
             "Store and System Attendant interfaces; SYSTEM hive with Select\\Current = 2; "
             "Security 529/681 with 3221225572.",
             build=build_static_port_in_use,
             expected=(Expect(CHECK, "problem", "static-port-in-use"),)),
    Scenario("rpc-port-conflict-german-netstat",
             "The same conflict captured on a German server (netstat ABHÖREN/HERGESTELLT in cp850, "
             "tasklist Abbildname/Dienste), without a Security log.",
             build=build_german,
             expected=(Expect(CHECK, "problem", "static-port-in-use"),)),
    Scenario("rpc-port-conflict-healthy-static-ports",
             "Healthy Exchange 2003 server with static ports 1031/1032/1033, each held by its own "
             "process; the dump has every KB 926210 interface.",
             build=build_healthy,
             expected=(Expect(CHECK, "ok", None),)),
    Scenario("rpc-port-conflict-reg-export-duplicate",
             "A .reg export (UTF-16LE, CurrentControlSet) instead of the hive: the store and the "
             "System Attendant are both pinned to port 4000; mad.exe holds it, the store's "
             "interfaces are missing.",
             build=build_reg_export_duplicate,
             expected=(Expect(CHECK, "problem", "static-port-duplicate"),)),
    Scenario("rpc-port-conflict-store-stopped",
             "No static ports; the Information Store is not running (SCM 7031), so its interfaces "
             "are missing from the dump.",
             build=build_store_stopped,
             expected=(Expect(CHECK, "problem", "endpoints-missing"),)),
    Scenario("rpc-port-conflict-gc-nspi-duplicate",
             "Exchange 2003 on a domain controller: the System Attendant's \"TCP/IP NSPI Port\" and "
             "the Global Catalog's NTDS \"TCP/IP Port\" are both 1032 in the SYSTEM hive; lsass.exe "
             "owns the port and the dump is still complete -> a latent duplicate (warning).",
             build=build_gc_nspi_duplicate,
             expected=(Expect(CHECK, "problem", "static-port-duplicate"),)),
    Scenario("rpc-port-conflict-symptoms-only",
             "Only event logs: Security 529 (Logon Type 3, NtLmSsp) and 681 (3221225572) copied out "
             "of Event Viewer as text; no dump, hive, netstat or tasklist -> inconclusive with what "
             "to collect.",
             build=build_symptoms_only,
             expected=(Expect(CHECK, "inconclusive", None),)),
    Scenario("rpc-port-conflict-not-exchange",
             "A file server with its own endpoints, SYSTEM hive, netstat, tasklist and ordinary "
             "Security events: not an Exchange server.",
             build=build_not_exchange,
             expected=(Expect(CHECK, "not_applicable", None),)),
]
