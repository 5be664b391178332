"""Event message text: the catalog, rendering, and fields read back from text.

Event log files (.evtx, .evt) carry insertion strings, not messages: the text
lives in message DLLs of the server that wrote the log, which an offline
Linux box does not have. :func:`render` fills the templates of
``knowledge/events.yaml`` (keyed on provider *and* event id: DCOM 10000 is not
Exchange MOM 10000) and otherwise builds a readable fallback from the
insertion strings, so an engineer never sees a bare id.

The other direction matters for text exports, which carry a rendered
description but no EventData: :func:`extract_fields` reads the fields of the
Security logon-failure events (529, 681, 4625, 4776) back out of the text,
under the same names the .evtx EventData uses (``TargetUserName``,
``LogonType``, ``Status`` ...), so a check reads one set of names whatever
the source was. (Fields of the transport, crash and service events are read
for every source alike, after the table is built: :mod:`analyzer.eventdata`.) :func:`status_code` normalizes NTSTATUS codes printed in hex,
unsigned decimal (681 prints 3221225572) or signed decimal.
"""
from __future__ import annotations

import re
from functools import cache
from typing import Any

from . import knowledge

#: ``data`` keys that are metadata, not insertion strings (see table conventions).
META_KEYS = frozenset({"provider_guid", "EventSourceName", "binary", "UserData",
                       "strings", "local_time", "date_text"})

_PLACEHOLDER = re.compile(r"%(\d+)")


def canonical_provider(provider: str) -> str:
    """Canonical provider name (knowledge/providers.yaml), lower-cased:
    ``Microsoft-Windows-DistributedCOM`` -> ``dcom``."""
    from .query import provider_aliases  # late import: query imports pandas
    names = provider_aliases(provider)
    low = provider.lower()
    for canon in knowledge.load("providers"):
        if canon.lower() in names:
            return canon.lower()
    return low


@cache
def _catalog() -> dict[tuple[str, int], dict[str, Any]]:
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in knowledge.load("events")["events"]:
        out[(canonical_provider(entry["provider"]), int(entry["id"]))] = entry
    return out


def lookup(provider: str | None, event_id: int | None) -> dict[str, Any] | None:
    """The catalog entry for (provider, event id), matching provider aliases
    case-insensitively (``Microsoft-Windows-DistributedCOM`` finds ``DCOM``)."""
    if not provider or event_id is None:
        return None
    return _catalog().get((canonical_provider(provider), int(event_id) & 0xFFFF))


def insertion_strings(data: dict | list | None) -> list[str]:
    """Insertion strings in slot order: an explicit ``strings`` list (classic
    .evt, unnamed ``<Data>``), else the named values in document order minus
    metadata keys (named EventData follows the manifest's slot order)."""
    if data is None:
        return []
    if isinstance(data, (list, tuple)):
        return ["" if v is None else str(v) for v in data]
    strings = data.get("strings")
    if isinstance(strings, list) and strings:
        return ["" if v is None else str(v) for v in strings]
    return ["" if v is None else str(v) for k, v in data.items()
            if k not in META_KEYS and not isinstance(v, (dict, list))]


def fill(template: str, strings: list[str]) -> str:
    """Replace %1..%n; a slot with no string stays visible as ``%n``."""
    def sub(m: re.Match[str]) -> str:
        i = int(m.group(1))
        return strings[i - 1] if 0 < i <= len(strings) else m.group(0)
    return _PLACEHOLDER.sub(sub, template)


def render(provider: str, event_id: int, data: dict | list | None) -> str | None:
    """Message text for an event from its insertion strings.

    With a catalog template: the filled template. Without one: a readable
    fallback ("DCOM event 10005: a; b; c", with named values as ``Name=value``).
    ``None`` only when there is nothing at all to say (no template, no data).
    """
    entry = lookup(provider, event_id)
    strings = insertion_strings(data)
    template = entry and ((entry.get("templates_by_count") or {}).get(len(strings))
                          or entry.get("template"))
    if template and (strings or not _PLACEHOLDER.search(template)):
        return fill(template, strings)
    parts: list[str] = []
    if isinstance(data, dict) and not (isinstance(data.get("strings"), list) and data["strings"]):
        parts = [f"{k}={v}" for k, v in data.items()
                 if k not in META_KEYS and not isinstance(v, (dict, list)) and v not in (None, "")]
    else:
        parts = [s for s in strings if s != ""]
    if isinstance(data, dict) and isinstance(data.get("UserData"), dict):
        parts.extend(f"{k}={v}" for k, v in _flatten(data["UserData"]))
    if not parts and not entry:
        return None
    head = f"{provider} event {event_id & 0xFFFF if isinstance(event_id, int) else event_id}"
    if entry and entry.get("meaning"):
        head += f" ({entry['meaning']})"
    return head + (": " + "; ".join(parts) if parts else "")


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(_flatten(v, f"{prefix}[{i}]"))
    elif obj not in (None, ""):
        out.append((prefix, obj))
    return out


# --------------------------------------------------------------------------
# NTSTATUS codes and Security event fields from rendered text

_HEX = re.compile(r"^(?:0x)?([0-9a-f]{1,8})L?$", re.I)


def status_code(text: Any) -> str | None:
    """NTSTATUS/Win32 code in canonical form ``0xC0000064``.

    Accepts ``0xC0000064``, ``0xc0000064``, ``C0000064``, unsigned decimal
    ``3221225572`` (event 681) and signed decimal ``-1073741724``. A bare
    decimal is read as decimal (``0`` -> ``0x00000000``); a bare string with
    hex letters as hex. ``None`` when the text is no code.
    """
    if text is None:
        return None
    s = str(text).strip().rstrip(".").strip()
    if not s:
        return None
    value: int | None = None
    if re.fullmatch(r"-?\d+", s):
        n = int(s)
        if -(1 << 31) <= n < (1 << 32):
            value = n & 0xFFFFFFFF
    else:
        m = _HEX.match(s)
        if m:
            value = int(m.group(1), 16)
    if value is None:
        return None
    return f"0x{value:08X}"


# Rendered-text label -> EventData name. Section-dependent names for 4625
# (``Account Name`` under Subject vs. under "Account For Which Logon Failed").
_LABELS_2003 = {
    "reason": "FailureReason", "user name": "TargetUserName", "domain": "TargetDomainName",
    "logon type": "LogonType", "logon process": "LogonProcessName",
    "authentication package": "AuthenticationPackageName",
    "workstation name": "WorkstationName", "caller user name": "SubjectUserName",
    "caller domain": "SubjectDomainName", "caller logon id": "SubjectLogonId",
    "caller process id": "ProcessId", "source network address": "IpAddress",
    "source port": "IpPort", "transited services": "TransmittedServices",
}
_SECTION_4625 = {
    "subject": {"security id": "SubjectUserSid", "account name": "SubjectUserName",
                "account domain": "SubjectDomainName", "logon id": "SubjectLogonId"},
    "account for which logon failed": {"security id": "TargetUserSid",
                                       "account name": "TargetUserName",
                                       "account domain": "TargetDomainName"},
}
_LABELS_4625 = {
    "logon type": "LogonType", "failure reason": "FailureReason", "status": "Status",
    "sub status": "SubStatus", "caller process id": "ProcessId",
    "caller process name": "ProcessName", "workstation name": "WorkstationName",
    "source network address": "IpAddress", "source port": "IpPort",
    "logon process": "LogonProcessName", "authentication package": "AuthenticationPackageName",
    "transited services": "TransmittedServices", "package name (ntlm only)": "LmPackageName",
    "key length": "KeyLength",
}
_LABELS_4776 = {"authentication package": "PackageName", "logon account": "TargetUserName",
                "source workstation": "Workstation", "error code": "Status"}
_STATUS_KEYS = ("Status", "SubStatus")

# "Label: value" pairs; a second pair on the same line after 2+ spaces or a
# TAB (the two-column layout of 529 in Q174074).
_PAIR = re.compile(r"([A-Za-z][A-Za-z ()/]*?)\s*:[ \t]*(.*?)(?=(?:\s{2,}|\t+)[A-Za-z][A-Za-z ()/]*?\s*:|$)")
_681 = re.compile(r"logon to account:\s*(?P<user>.*?)\s+by:\s*(?P<pkg>\S+)\s+from workstation:\s*"
                  r"(?P<ws>.*?)\s+failed\.\s*The error code was:\s*(?P<code>-?[0-9A-Fa-fx]+)", re.I | re.S)


def _pairs(text: str) -> list[tuple[str, str, str]]:
    """(section, label, value) for every "Label: value" in the text."""
    out: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.endswith(":") and line.count(":") == 1 and not raw[:1].isspace():
            section = line[:-1].strip().lower()
            continue
        for m in _PAIR.finditer(line):
            label = re.sub(r"\s+", " ", m.group(1)).strip().lower()
            out.append((section, label, m.group(2).strip()))
    return out


def extract_fields(provider: str | None, event_id: int | None, message: str | None) -> dict[str, str]:
    """Fields of a Security logon-failure event read from its rendered text.

    Only for Security 529 (and the 530-539 family, same layout), 681, 4625
    and 4776; empty for everything else. Status codes get a canonical
    ``0x........`` form; the text as printed is kept as ``<name>_text``.
    """
    if not message or event_id is None or not provider:
        return {}
    if canonical_provider(provider) != "security":
        return {}
    eid = int(event_id) & 0xFFFF
    out: dict[str, str] = {}
    if eid == 681:
        m = _681.search(message)
        if m:
            out = {"TargetUserName": m["user"].strip(), "PackageName": m["pkg"].strip(),
                   "Workstation": m["ws"].strip(), "Status": m["code"]}
    elif 528 <= eid <= 539:
        for _sec, label, value in _pairs(message):
            name = _LABELS_2003.get(label)
            if name and name not in out:
                out[name] = value
    elif eid == 4625:
        for sec, label, value in _pairs(message):
            name = _SECTION_4625.get(sec, {}).get(label) or _LABELS_4625.get(label)
            if name and name not in out:
                out[name] = value
    elif eid == 4776:
        for _sec, label, value in _pairs(message):
            name = _LABELS_4776.get(label)
            if name and name not in out:
                out[name] = value
    for key in _STATUS_KEYS:
        if key in out:
            code = status_code(out[key])
            if code:
                out[f"{key}_text"] = out[key]
                out[key] = code
    return out
