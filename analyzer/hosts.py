"""One name per machine, and only the machines of the case.

A host is a machine whose artifacts are in the case: an event log's
Computer, a hive's ComputerName, the server an rpcdump or PortQry output
describes, the server that wrote a message tracking log. Names that only
appear as peers (the remote SMTP host or MX a message was sent to, the
server that connected in, the workstation named in a logon event) stay in
the row's ``data`` and are never a row's ``host``; :func:`tracking_log_host`
is that rule for message tracking, where both sides are columns of one line.

The same server is ``EXCH01`` in a message tracking log and a hive's
ComputerName, ``exch01.contoso.local`` in an event's Computer field and
``\\\\EXCH01`` in an rpcdump ``/S`` argument. Checks group evidence per
machine with :func:`host_key`; reports show :func:`display_names`.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any


def is_ip(text: str) -> bool:
    """True for an IPv4/IPv6 address (brackets allowed)."""
    try:
        ipaddress.ip_address(text.strip("[]"))
        return True
    except ValueError:
        return False


def host_key(host: Any) -> str | None:
    """The comparable key of a host name: the upper-case NetBIOS-style first
    label (IP addresses are kept whole); None for a missing name."""
    if host is None or (isinstance(host, float) and host != host):
        return None
    try:
        if host != host:  # pd.NA and NaN
            return None
    except TypeError:
        return None
    text = str(host).strip().lstrip("\\").strip()
    if not text:
        return None
    if is_ip(text):
        return text.strip("[]")
    return text.split(".")[0].upper()


def display_names(hosts: Iterable[Any]) -> list[str]:
    """One display name per machine, the most specific spelling seen
    (``EXCH01.contoso.local`` over ``EXCH01``), sorted."""
    best: dict[str, str] = {}
    for h in hosts:
        key = host_key(h)
        if key is None:
            continue
        name = str(h).strip().lstrip("\\").strip()
        cur = best.get(key)
        if cur is None or (name.count("."), len(name), name) > (cur.count("."), len(cur), cur):
            best[key] = name
    return sorted(best.values(), key=str.upper)


def tracking_log_host(entry: Mapping[str, Any]) -> str | None:
    """The server that wrote a message tracking entry (the row's host), from
    its raw fields ``server_hostname``/``client_hostname`` and its ``event``:
    knowledge/tracking.yaml (``own_server``) says which side is the log's own
    server for each 2007+ event; 2000/2003 entries (numeric ``event_id``)
    always name it in Server-hostname (KB 246965). None when the entry does
    not name it."""
    from .knowledge import load

    own = load("tracking")["own_server"]
    event = entry.get("event")
    side = own.get(event.upper()) if isinstance(event, str) and entry.get("event_id") is None else None
    return entry.get(side or own["default"]) or None
