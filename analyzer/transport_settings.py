"""The transport settings Exchange actually uses: what EdgeTransport.exe.config
says, else the default of that Exchange version.

A back-pressure check must know whether a threshold was changed by an admin
(``explicit``) or is the product default, and the default differs between
Exchange 2007 RTM, 2007 SP1+ and 2010 (version buckets 100 vs 200, batch
point and submission queue only on 2010). The defaults are knowledge
(``analyzer/knowledge/transport_config.yaml``), the explicit values are the
``config`` rows of :mod:`analyzer.sources.transport_config`.

Rules applied, as .NET applies them to ``appSettings``: entries in file order,
``<remove>`` drops a key, ``<clear/>`` drops all, a key added twice keeps the
last value; key names are case sensitive (a differently cased key does not
set the setting and is reported in ``notes``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import knowledge
from .hosts import host_key
from .table import of_kind, row_data


@dataclass
class Setting:
    """One effective setting. ``value`` is typed (bool/int/str) when the
    text could be read as the setting's type, else the text."""

    name: str
    value: Any
    explicit: bool
    default: Any
    raw: str | None = None
    row: dict[str, Any] | None = None
    computed: str | None = None
    note: str | None = None


@dataclass
class TransportSettings:
    """Effective settings of one EdgeTransport.exe.config (or of none)."""

    version: str | None
    path: str | None
    settings: dict[str, Setting] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Setting:
        return self.settings[name]

    def value(self, name: str) -> Any:
        return self.settings[name].value


def version_key(version: Any) -> str | None:
    """``"2007 RTM"``/``"2007"``/``"2010"`` from a key, a build text
    (``8.1.240.6``), or a :class:`analyzer.builds.BuildInfo`."""
    if version is None:
        return None
    versions = knowledge.load("transport_config")["versions"]
    text = str(getattr(version, "version", None) or version)
    if text in versions:
        return text
    parts = text.split(".")
    mm = ".".join(parts[:2]) if len(parts) >= 2 else text
    for key, spec in versions.items():
        if mm in spec["match"]:
            return key
    return None


def _convert(kind: str, raw: str | None) -> Any:
    if raw is None:
        return None
    text = raw.strip()
    if kind == "bool" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            return raw
    return raw


def _default(spec: dict[str, Any], vkey: str | None, install: str | None) -> tuple[Any, str | None]:
    """(default value, note)."""
    d = spec.get("default") or {}
    if "all" in d:
        val = d["all"]
    elif vkey is None:
        return None, "default depends on the Exchange version, which is not known"
    elif vkey in d:
        val = d[vkey]
    else:
        return None, f"not a setting of Exchange {vkey}"
    if isinstance(val, str) and "{install_path}" in val:
        if install is None:
            return None, "default is under the Exchange install path; version not known"
        val = val.replace("{install_path}", install)
    return val, None


def _config_rows(case_or_table: Any, path: str | None,
                 host: str | None = None) -> tuple[list[dict[str, Any]], list[str], str | None]:
    df = case_or_table.table if hasattr(case_or_table, "table") else case_or_table
    rows = of_kind(df, "config")
    notes: list[str] = []
    recs = []
    for r in rows.to_dict("records"):
        d = row_data(r["data"])
        if d.get("application") == "EdgeTransport" or path is not None:
            recs.append({**r, "_data": d})
    paths = list(dict.fromkeys(str(r["path"]) for r in recs))
    if host is not None and len(paths) > 1:
        # a config file has no host of its own; case folders are usually named after the server
        want = host_key(host)
        mine = [p for p in paths if want in {host_key(c) for c in re.split(r"[/\\!]", p) if c}]
        paths = mine or paths
        recs = [r for r in recs if str(r["path"]) in paths]
    if path is not None:
        recs = [r for r in recs if str(r["path"]) == path]
        chosen = path if recs else None
    elif len(paths) > 1:
        chosen = paths[-1]
        notes.append(f"{len(paths)} EdgeTransport.exe.config files in the case; using {chosen}")
        recs = [r for r in recs if str(r["path"]) == chosen]
    else:
        chosen = paths[0] if paths else None
    if chosen is None:
        notes.append("no EdgeTransport.exe.config in the case: every setting is the default")
    return recs, notes, chosen


def effective_settings(case_or_table: Any, version: Any = None, path: str | None = None,
                       host: str | None = None) -> TransportSettings:
    """Every known transport setting with its effective value for
    ``version`` (``"2007"``, ``"2010"``, a build, or a BuildInfo; None when
    unknown: version-dependent defaults are then None with a note).

    With several EdgeTransport.exe.config files in the case, ``path`` picks
    one, or ``host`` the one below a folder named after the server."""
    kn = knowledge.load("transport_config")
    vkey = version_key(version)
    install = kn["versions"][vkey]["install_path"] if vkey else None
    recs, notes, chosen = _config_rows(case_or_table, path, host)
    out = TransportSettings(vkey, chosen, notes=notes)
    explicit: dict[str, dict[str, Any]] = {}
    for r in recs:
        d = r["_data"]
        action, key = d.get("action"), d.get("key")
        if action == "clear":
            explicit.clear()
        elif action == "remove":
            explicit.pop(key, None)
        elif action == "add" and key is not None:
            explicit[key] = r
    for name, spec in kn["settings"].items():
        default, note = _default(spec, vkey, install)
        kind = spec.get("type", "string")
        if name in explicit:
            r = explicit[name]
            raw = r["_data"].get("value")
            row = {k: v for k, v in r.items() if k != "_data"}
            out.settings[name] = Setting(name, _convert(kind, raw), True, default, raw, row,
                                         spec.get("computed"))
        else:
            out.settings[name] = Setting(name, default, False, default, computed=spec.get("computed"),
                                         note=note)
    for key, r in explicit.items():
        canon = r["_data"].get("case_mismatch")
        if canon:
            out.notes.append(f"{key!r} (line {r['locator'][5:]}) differs from {canon!r} only in case: "
                             "Exchange reads key names case-sensitively and ignores it")
    return out

