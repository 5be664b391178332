"""Turn a JSON or YAML description into a real .evtx, .evt or registry hive.

An engineer reproducing a customer's case writes the events or keys by hand
(or pastes them from an export) and gets a binary file that Windows' own
tools and every reader accept. Text documents cannot carry bytes or
datetimes, so:

- times (``time_created``, ``time_generated``, ``time_written``) are ISO 8601
  strings (``2007-03-12T22:53:18Z``; no zone means UTC) or POSIX seconds;
- bytes (evtx ``binary``, evt ``data``, registry REG_BINARY / REG_NONE /
  other binary types) are hex strings (spaces and commas allowed);
- registry values are ``[type, data]`` pairs under their key path, e.g.
  ``{"Microsoft\\\\ExMPLS": {"DATA0": ["REG_BINARY", "0602..."]}}``; a hive
  document may also be ``{"root_name": ..., "keys": {...}}``.

Event documents are a list of events, or ``{"events": [...], ...options}``
where the options are the writer's keyword options (``dirty``, ...).
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from .evt import EvtRecord, write_evt
from .evtx import EvtxEvent, write_evtx
from .regf import write_hive

_TIME_FIELDS = ("time_created", "time_generated", "time_written")
_STRING_TYPES = {"REG_SZ", "REG_EXPAND_SZ", "REG_MULTI_SZ", "REG_LINK", "SZ", "EXPAND_SZ",
                 "MULTI_SZ", "LINK"}
_INT_TYPES = {"REG_DWORD", "REG_QWORD", "REG_DWORD_BIG_ENDIAN", "DWORD", "QWORD",
              "DWORD_BIG_ENDIAN", "REG_DWORD_LITTLE_ENDIAN"}


class DescriptionError(ValueError):
    """The description is not of the expected shape; the message says where."""


def _time(value: Any, where: str) -> Any:
    if isinstance(value, (int, float, datetime)):
        return value
    if isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise DescriptionError(f"{where}: not an ISO 8601 time: {value!r}") from None
        return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)
    raise DescriptionError(f"{where}: a time must be an ISO 8601 string or POSIX seconds")


def _bytes(value: Any, where: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return bytes.fromhex(value.replace(",", " "))
        except ValueError:
            raise DescriptionError(f"{where}: not a hex string: {value[:40]!r}") from None
    raise DescriptionError(f"{where}: bytes must be given as a hex string")


def _events(doc: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if isinstance(doc, list):
        return doc, {}
    if isinstance(doc, dict) and isinstance(doc.get("events"), list):
        opts = {k: v for k, v in doc.items() if k != "events"}
        return doc["events"], opts
    raise DescriptionError("expected a list of events or {'events': [...]}")


def _records(doc: Any, cls: Any, bytes_field: str) -> tuple[list[Any], dict[str, Any]]:
    """Events of a description as writer inputs (times and bytes decoded)."""
    events, opts = _events(doc)
    out = []
    for i, ev in enumerate(events):
        d = dict(ev)
        for f in _TIME_FIELDS:
            if f in d and d[f] is not None:
                d[f] = _time(d[f], f"event {i}: {f}")
        if d.get(bytes_field) is not None:
            d[bytes_field] = _bytes(d[bytes_field], f"event {i}: {bytes_field}")
        try:
            out.append(cls.from_dict(d))
        except TypeError as exc:
            raise DescriptionError(f"event {i}: {exc}") from None
    return out, opts


def evtx_events(doc: Any) -> tuple[list[EvtxEvent], dict[str, Any]]:
    return _records(doc, EvtxEvent, "binary")


def evt_records(doc: Any) -> tuple[list[EvtRecord], dict[str, Any]]:
    return _records(doc, EvtRecord, "data")


def hive_keys(doc: Any) -> tuple[dict[str, dict[str, tuple[str, Any]]], dict[str, Any]]:
    if not isinstance(doc, dict):
        raise DescriptionError("expected a mapping of key paths to values")
    opts: dict[str, Any] = {}
    keys_doc = doc
    if isinstance(doc.get("keys"), dict):
        keys_doc = doc["keys"]
        opts = {k: v for k, v in doc.items() if k != "keys"}
    keys: dict[str, dict[str, tuple[str, Any]]] = {}
    for path, values in keys_doc.items():
        if str(path).upper().startswith(("HKLM\\", "HKEY_", "HKCU\\", "HKCR\\", "HKU\\")):
            raise DescriptionError(f"key {path!r}: key paths are relative to the hive root "
                                   "(e.g. 'Microsoft\\ExMPLS', not 'HKLM\\SOFTWARE\\...')")
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise DescriptionError(f"key {path!r}: values must be a mapping")
        out: dict[str, tuple[str, Any]] = {}
        for name, spec in values.items():
            if not (isinstance(spec, (list, tuple)) and len(spec) == 2):
                raise DescriptionError(f"key {path!r} value {name!r}: expected [type, data]")
            vtype, data = str(spec[0]), spec[1]
            upper = vtype.upper()
            if upper not in _STRING_TYPES and upper not in _INT_TYPES:
                data = _bytes(data, f"key {path!r} value {name!r}")
            out[str(name)] = (vtype, data)
        keys[str(path)] = out
    return keys, opts


def write_from_description(kind: str, source: Path, target: Path) -> int:
    """Write ``target`` from the description in ``source``; returns the
    number of events or keys written."""
    try:
        doc = yaml.safe_load(source.read_text(encoding="utf-8-sig"))
    except yaml.YAMLError as exc:
        raise DescriptionError(f"{source}: not JSON or YAML: {exc}") from None
    if kind == "evtx":
        events, opts = evtx_events(doc)
        write_evtx(target, events, **opts)
        return len(events)
    if kind == "evt":
        records, opts = evt_records(doc)
        write_evt(target, records, **opts)
        return len(records)
    if kind == "hive":
        keys, opts = hive_keys(doc)
        write_hive(target, keys, **opts)
        return len(keys)
    raise DescriptionError(f"unknown kind {kind!r} (evtx, evt or hive)")
