"""Unrelated but realistic events and registry keys for sample cases.

A check that only works on a log holding nothing but its own evidence is not
selective. Every sample mixes its evidence into the ordinary chatter of a
Windows 2003 / Exchange 2003 server: service state changes, time sync,
browser elections, an unrelated DCOM 10016, Exchange's own informational
events (some of which share event ids with the events the checks look for,
from other providers: MSExchangeIS 9523, MSExchangeSA 9095, and an
unrelated provider's 10000).

Events are neutral :class:`EventSpec` objects, converted to the writers'
inputs by :func:`to_evt` and :func:`to_evtx`, so the same noise can go into a
legacy .evt, a .evtx or a text export.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

UTC = timezone.utc


@dataclass
class EventSpec:
    provider: str
    event_id: int
    level: str                      # error | warning | information | audit_success | audit_failure
    ts: datetime
    channel: str
    computer: str
    strings: list[str] = field(default_factory=list)
    #: Named EventData (evtx only); for .evt the values become the strings.
    named: dict[str, str] | None = None
    category: int = 0
    qualifiers: int | None = None
    user_sid: str | None = None
    binary: bytes = b""
    #: Vista+ provider name when it differs from the classic source name
    #: (DCOM -> Microsoft-Windows-DistributedCOM with EventSourceName DCOM).
    evtx_provider: str | None = None


# (provider, event id, level, [strings]) templates of ordinary server chatter.
_SYSTEM_CHATTER: list[tuple[str, int, str, list[str]]] = [
    ("Service Control Manager", 7036, "information", ["Application Experience Lookup Service", "running"]),
    ("Service Control Manager", 7036, "information", ["WinHTTP Web Proxy Auto-Discovery Service", "stopped"]),
    ("Service Control Manager", 7035, "information", ["NT AUTHORITY\\SYSTEM", "start", "Windows Installer"]),
    ("EventLog", 6013, "information", ["86400", "60", "GMT Standard Time"]),
    ("W32Time", 35, "information", ["DC01.contoso.local (ntp.d|10.0.0.10:123->10.0.0.21:123)"]),
    ("Tcpip", 4201, "information", ["Local Area Connection"]),
    ("BROWSER", 8033, "information", ["\\Device\\NetBT_Tcpip_{6E0B6F4A-6C5A-4E1B-9F3A-2A1C0C7D1E11}"]),
    ("Srv", 2013, "warning", ["\\Device\\HarddiskVolume2", "D:", "9"]),
    ("NETLOGON", 5719, "error", ["CONTOSO", "The RPC server is unavailable."]),
    ("Application Popup", 26, "information", ["Windows - Delayed Write Failed", "Windows was unable to save all the data."]),
]

_APPLICATION_CHATTER: list[tuple[str, int, str, list[str]]] = [
    ("MSExchangeIS", 9523, "information", ["First Storage Group", "Mailbox Store (EXCH01)"]),
    ("MSExchangeIS Mailbox Store", 1221, "information", ["First Storage Group\\Mailbox Store (EXCH01)", "1024"]),
    ("MSExchangeIS Mailbox Store", 1207, "information", ["First Storage Group\\Mailbox Store (EXCH01)", "0", "0", "0"]),
    ("MSExchangeSA", 9095, "information", ["EXCH01"]),
    ("MSExchangeSA", 9297, "information", ["EXCH01"]),
    ("ESE", 700, "information", ["MSExchangeIS", "2324", "First Storage Group: ", "priv1.edb"]),
    ("ESE", 701, "information", ["MSExchangeIS", "2324", "First Storage Group: ", "priv1.edb"]),
    ("MSExchangeAL", 8270, "information", ["Recipient Update Service (CONTOSO)"]),
    ("Userenv", 1517, "warning", ["CONTOSO\\svc_backup"]),
    ("SceCli", 1704, "information", []),
    ("LoadPerf", 1000, "information", ["ASP.NET", "ASP.NET_2.0.50727"]),
    ("VSS", 8224, "information", []),
    ("Winlogon", 1001, "information", []),
]

#: An unrelated DCOM 10016 (a CLSID that is not an Exchange MOM helper).
UNRELATED_DCOM_CLSID = "{BA126AD1-2166-11D1-B1D0-00805FC1270E}"


def chatter(channel: str, computer: str, start: datetime, count: int,
            seed: int = 1, spacing_minutes: int = 37) -> list[EventSpec]:
    """``count`` ordinary events for ``channel`` ("System" or "Application"),
    spread from ``start`` at roughly ``spacing_minutes`` apart."""
    rnd = random.Random(f"{seed}:{channel}:{computer}")
    table = _SYSTEM_CHATTER if channel == "System" else _APPLICATION_CHATTER
    out: list[EventSpec] = []
    t = start
    for _ in range(count):
        provider, eid, level, strings = rnd.choice(table)
        t = t + timedelta(minutes=rnd.randint(1, spacing_minutes * 2), seconds=rnd.randint(0, 59))
        out.append(EventSpec(provider, eid, level, t, channel, computer, list(strings)))
    if channel == "System":
        t = t + timedelta(minutes=11)
        out.append(EventSpec(
            "DCOM", 10016, "error", t, "System", computer,
            ["local", "Activation", UNRELATED_DCOM_CLSID, "NT AUTHORITY", "NETWORK SERVICE",
             "S-1-5-20"],
            evtx_provider="Microsoft-Windows-DistributedCOM", qualifiers=0xC000))
    else:
        # A non-Exchange provider's 10000: must not be read as Exchange MOM 10000.
        t = t + timedelta(minutes=13)
        out.append(EventSpec("LoadPerf", 10000, "information", t, "Application", computer,
                             ["rdyboost", "ReadyBoost"]))
    return out


def merge(*groups: list[EventSpec]) -> list[EventSpec]:
    """All events of the groups, oldest first (stable for equal times)."""
    merged = [e for g in groups for e in g]
    merged.sort(key=lambda e: e.ts)
    return merged


def to_evt(events: list[EventSpec]) -> list[Any]:
    """EventSpecs -> :class:`analyzer.synth.evt.EvtRecord` list."""
    from analyzer.synth.evt import EvtRecord

    recs = []
    for e in events:
        strings = list(e.named.values()) if e.named and not e.strings else e.strings
        recs.append(EvtRecord(event_id=e.event_id, source=e.provider, time_generated=e.ts,
                              event_type=e.level, computer=e.computer, category=e.category,
                              strings=strings, data=e.binary, user_sid=e.user_sid,
                              qualifiers=e.qualifiers))
    return recs


def to_evtx(events: list[EventSpec]) -> list[Any]:
    """EventSpecs -> :class:`analyzer.synth.evtx.EvtxEvent` list.

    What a Vista+ log holds for the same classic event: ``Provider Name`` is
    the Vista+ name when it differs (``evtx_provider``, with the classic
    source kept as ``EventSourceName``, as DCOM does); classic ReportEvent
    sources keep their ``Qualifiers`` (the severity bits of the 32-bit
    message id: 49152 error, 32768 warning, 16384 information, 0 for audits,
    the same defaults as :func:`to_evt`; none for events with named data,
    which manifest-based providers write without Qualifiers), ``Keywords`` Classic (or the audit
    keywords), the category number as ``Task``; named EventData stays named,
    insertion strings become unnamed ``<Data>`` items; binary data becomes
    ``<Binary>``.
    """
    from analyzer.synth import evtx as X

    levels = {"critical": X.LEVEL_CRITICAL, "error": X.LEVEL_ERROR, "warning": X.LEVEL_WARNING,
              "information": X.LEVEL_INFORMATION, "verbose": X.LEVEL_VERBOSE,
              "audit_success": X.LEVEL_LOG_ALWAYS, "audit_failure": X.LEVEL_LOG_ALWAYS}
    default_quals = {"critical": 0xC000, "error": 0xC000, "warning": 0x8000,
                     "information": 0x4000, "verbose": 0x4000}
    keywords = {"audit_success": X.KEYWORDS_AUDIT_SUCCESS, "audit_failure": X.KEYWORDS_AUDIT_FAILURE}
    out = []
    for e in events:
        level = e.level.strip().lower()
        if e.qualifiers is not None:
            quals: int | None = e.qualifiers
        elif e.named:
            # Manifest-based providers (named EventData) write no Qualifiers.
            quals = None
        else:
            quals = default_quals.get(level, 0)
        data: Any = dict(e.named) if e.named else list(e.strings)
        out.append(X.EvtxEvent(
            provider=e.evtx_provider or e.provider, event_id=e.event_id & 0xFFFF,
            time_created=e.ts, level=levels.get(level, X.LEVEL_INFORMATION), channel=e.channel,
            computer=e.computer, qualifiers=quals,
            event_source_name=e.provider if e.evtx_provider and e.evtx_provider != e.provider else None,
            task=e.category, keywords=keywords.get(level, X.KEYWORDS_CLASSIC),
            user_sid=e.user_sid, data=data, binary=e.binary or None))
    return out


#: Exchange 2003 setup registers the EMPKP DCOM helper on every server,
#: whether or not MOM is deployed (KB 911143), so an ordinary Exchange 2003
#: SOFTWARE hive has it.
EMPKP_CLSID = "{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}"


def software_noise(empkp: bool = True) -> dict[str, dict[str, Any]]:
    """Ordinary SOFTWARE hive keys of a Windows 2003 Exchange 2003 server
    (``empkp=False`` leaves out the EMPKP registration, for scenarios that
    decide it themselves)."""
    keys = {
        "Microsoft\\Windows NT\\CurrentVersion": {
            "ProductName": ("REG_SZ", "Microsoft Windows Server 2003"),
            "CurrentVersion": ("REG_SZ", "5.2"),
            "CurrentBuildNumber": ("REG_SZ", "3790"),
            "CSDVersion": ("REG_SZ", "Service Pack 2"),
            "SystemRoot": ("REG_SZ", "C:\\WINDOWS"),
        },
        "Microsoft\\Windows\\CurrentVersion\\Run": {
            "VMware Tools": ("REG_SZ", "\"C:\\Program Files\\VMware\\VMware Tools\\VMwareTray.exe\""),
        },
        "Microsoft\\Ole": {
            "EnableDCOM": ("REG_SZ", "Y"),
            "LegacyAuthenticationLevel": ("REG_DWORD", 2),
        },
        "Classes\\CLSID\\{00020906-0000-0000-C000-000000000046}\\LocalServer32": {
            "": ("REG_SZ", "C:\\PROGRA~1\\MICROS~2\\OFFICE11\\WINWORD.EXE /Automation"),
        },
        "Classes\\CLSID\\{BA126AD1-2166-11D1-B1D0-00805FC1270E}": {
            "": ("REG_SZ", "NetworkConnections"),
        },
        "Microsoft\\Exchange\\Setup": {
            "Services": ("REG_SZ", "C:\\Program Files\\Exchsrvr"),
            "ServicePackBuild": ("REG_DWORD", 7638),
            "MsiProductMajor": ("REG_DWORD", 6),
        },
        "Policies\\Microsoft\\Windows\\WindowsUpdate\\AU": {
            "NoAutoUpdate": ("REG_DWORD", 0),
            "AUOptions": ("REG_DWORD", 3),
        },
    }
    if empkp:
        keys[f"Classes\\CLSID\\{EMPKP_CLSID}"] = {"": ("REG_SZ", "PubKeyPublisher Class"),
                                                   "AppID": ("REG_SZ", EMPKP_CLSID)}
        keys[f"Classes\\CLSID\\{EMPKP_CLSID}\\ProgID"] = {"": ("REG_SZ", "EMPKP.PubKeyPublisher.1")}
        keys[f"Classes\\CLSID\\{EMPKP_CLSID}\\LocalServer32"] = {
            "": ("REG_SZ", "C:\\PROGRA~1\\Exchsrvr\\bin\\empkp.exe")}
    return keys


def system_noise(host: str = "EXCH01", control_sets: tuple[int, ...] = (1, 2)) -> dict[str, dict[str, Any]]:
    """Ordinary SYSTEM hive keys for each control set."""
    keys: dict[str, dict[str, Any]] = {}
    for n in control_sets:
        cs = f"ControlSet{n:03d}"
        keys[f"{cs}\\Services\\Tcpip\\Parameters"] = {
            "Hostname": ("REG_SZ", host), "Domain": ("REG_SZ", "contoso.local"),
            "EnableICMPRedirect": ("REG_DWORD", 0),
        }
        keys[f"{cs}\\Services\\W32Time\\Parameters"] = {"Type": ("REG_SZ", "NT5DS")}
        keys[f"{cs}\\Services\\Browser\\Parameters"] = {"MaintainServerList": ("REG_SZ", "Auto")}
        keys[f"{cs}\\Services\\Eventlog\\Application"] = {
            "MaxSize": ("REG_DWORD", 16777216), "Retention": ("REG_DWORD", 0)}
        keys[f"{cs}\\Control\\ComputerName\\ComputerName"] = {"ComputerName": ("REG_SZ", host)}
    return keys


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
