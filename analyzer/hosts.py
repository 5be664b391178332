"""One name per machine.

The same server is ``EXCH01`` in a message tracking log and a hive's
ComputerName, ``exch01.contoso.local`` in an event's Computer field and
``\\\\EXCH01`` in an rpcdump ``/S`` argument. Checks group evidence per
machine with :func:`host_key`; reports show :func:`display_names`.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
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
