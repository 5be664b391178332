"""Hand-built table rows of an Exchange 2007 server, for the transport and
store check tests: registry role keys, events with the structured fields
the event reader gives, tasklist, disk-free, tracking, nslookup, ipconfig
and PowerShell rows."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from analyzer.case import Case
from analyzer.sources import Options
from analyzer.table import rows_to_frame, validate

UTC = timezone.utc
T0 = datetime(2009, 1, 21, 8, 12, tzinfo=UTC)
SW = "HKLM\\SOFTWARE\\Microsoft"


def case(rows: list[dict[str, Any]]) -> Case:
    df = rows_to_frame(rows)
    validate(df)
    return Case("t", "t", inventory=[], table_=df, warnings=[], options=Options())


def regkey(key: str, host: str, path: str = "Registry/SOFTWARE") -> dict[str, Any]:
    return dict(kind="registry_key", source="hive", path=path, locator=f"key={key}", key=key, host=host,
                ts=T0 - timedelta(days=300), ts_source="utc")


def regval(key: str, name: str, vtype: str, value: str, host: str, path: str = "Registry/SOFTWARE") -> dict:
    return dict(kind="registry_value", source="hive", path=path, locator=f"key={key}", key=key, host=host,
                value_name=name, value_type=vtype, value=value)


PATCHES = (f"{SW}\\Windows\\CurrentVersion\\Installer\\UserData\\S-1-5-18\\Products\\"
           "461C2B4266EDEF444B864AD6D9E5B613\\Patches")


def exchange2007(host: str, roles: tuple[str, ...], build: str = "8.1.240.6", winver: str = "6.0",
                 rollups: tuple[str, ...] = ()) -> list[dict]:
    """SOFTWARE rows of an Exchange 2007 server: role keys with their
    ConfiguredVersion, the Windows version, installed update rollups."""
    rows = [regkey(f"{SW}\\Exchange\\v8.0", host),
            regkey(f"{SW}\\Windows NT\\CurrentVersion", host),
            regval(f"{SW}\\Windows NT\\CurrentVersion", "CurrentVersion", "REG_SZ", winver, host)]
    for role in roles:
        rows += [regkey(f"{SW}\\Exchange\\v8.0\\{role}", host),
                 regval(f"{SW}\\Exchange\\v8.0\\{role}", "ConfiguredVersion", "REG_SZ", build, host)]
    if rollups:
        rows.append(regkey(PATCHES, host))
    for n, title in enumerate(rollups):
        key = f"{PATCHES}\\{n + 1:02d}A7C3E9F1B2D4C6E8A0B1C2D3E4F5A6B7"
        rows += [regkey(key, host), regval(key, "DisplayName", "REG_SZ", title, host)]
    return rows


def event(host: str, provider: str, eid: int, ts: datetime, data: dict | None = None, level: str = "warning",
          channel: str = "Application", n: int = 1, message: str | None = None) -> dict[str, Any]:
    return dict(kind="event", source="evtx", host=host, channel=channel, provider=provider, event_id=eid,
                level=level, ts=ts, ts_source="utc", path=f"EventLogs/{channel}.evtx", locator=f"record={n}",
                data=data or {}, message=message)


def chatter(host: str, n: int = 3, channel: str = "Application") -> list[dict]:
    """Unrelated events that show the log is in the case."""
    return [event(host, "MSExchange ADAccess", 2080, T0 - timedelta(hours=30 - i), level="information",
                  channel=channel, n=900 + i) for i in range(n)]


def process(image: str, pid: int, line: int) -> dict[str, Any]:
    return dict(kind="process", source="tasklist", path="Output/tasklist.txt", locator=f"line={line}",
                data={"image": image, "pid": pid, "services": [], "truncated": False})


def volume(drive: str, free: int, total: int) -> dict[str, Any]:
    return dict(kind="volume_space", source="diskfree", path=f"Output/diskfree-{drive}.txt", locator="line=1",
                data={"tool": "fsutil", "volume": f"{drive}:", "free_bytes": free, "total_bytes": total,
                      "percent_used": (total - free) * 100 // total})


def tracked(host: str, ts: datetime, event_name: str, sender: str, rcpt: str, size: int, subject: str,
            mid: str, line: int, status: list[str] | None = None) -> dict[str, Any]:
    return dict(kind="tracking_entry", source="tracking", host=host, ts=ts, ts_source="utc",
                path="TrackingLogs/MSGTRK20090121-1.LOG", locator=f"line={line}",
                data={"event": event_name, "sender": sender, "recipients": [rcpt], "total_bytes": str(size),
                      "message_subject": subject, "subject": subject, "message_id": mid,
                      "recipient_status": status or []})


def ps_object(obj: str, props: dict[str, Any], host: str, line: int, path: str = "Output/Get-Queue.txt") -> dict:
    return dict(kind="ps_object", source="powershell", host=host, path=path, locator=f"line={line}",
                data={"object": obj, "format": "list", **props})
