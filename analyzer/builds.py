"""Which Exchange build a host runs, from whatever the case holds.

One function, :func:`host_build`, answers "which Exchange does this host run,
and how sure are we?" for the checks (applicability: "is this Exchange
2000/2003 or 2007+?", "is Update Rollup 6 for Exchange 2007 SP1 installed?").
The build table itself is data: ``analyzer/knowledge/exchange_builds.yaml``.

Where a build is visible offline, and what each form can tell:

==============================================  ==========================  =========
evidence                                        shows                       certainty
==============================================  ==========================  =========
``ExSetup.exe`` file version (``Get-Command     the build with the rollup   exact
ExSetup | % {$_.FileVersionInfo}``)
service pack (registry, below) + the highest   the build with the rollup   exact
installed update rollup of that service pack
(Windows Installer ``Patches`` / ``Uninstall``
``DisplayName``)
``SOFTWARE\\Microsoft\\Exchange\\Setup``,       the service pack only       at_least
``Exchange\\v8.0\\Setup``,
``ExchangeServer\\v14\\Setup`` ``MsiProduct*``/
``MsiBuild*`` (also as ``Get-ItemProperty``
output); ``Exchange\\v8.0\\<Role>`` /
``ExchangeServer\\v14\\<Role>``
``ConfiguredVersion``
Exchange 2000/2003 ``Exchange\\Setup``          the service pack only       at_least
``ServicePackBuild`` / ``NewestBuild``
``Get-ExchangeServer`` ``AdminDisplayVersion``  the service pack only (2007 at_least
(``Version 8.1 (Build 240.6)``)                 and 2010 ignore rollups;
                                                an Edge server keeps its
                                                subscription-time version)
``ExchangeSetup.log`` ``Setup version:`` of a   the service pack installed  at_least
run without errors / ``The locally installed    by setup
version is``
``store.exe`` version in an Application Error   a file version: not every   at_least
1000 event                                      rollup replaces store.exe
==============================================  ==========================  =========

``at_least`` means: this service pack, and possibly a later rollup of it;
``exact`` means the build including its rollup. A case with no evidence gives
``unknown`` and says what to collect: a check must then say ``inconclusive``.

Rows without a host (an ExchangeSetup.log, an ``ExSetup`` export, a
``.reg`` export) are attributed to a host only when the case is about one
machine: with two servers in the case nobody can tell whose they are.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from . import knowledge
from .hosts import host_key
from .table import filter_rows, map_values, row_data

Build = tuple[int, ...]
#: Rows of evidence a BuildInfo lists at most (the deciding ones first).
MAX_EVIDENCE = 20

#: What to collect when the build cannot be told from the case.
COLLECT = (
    "Exchange 2007/2010: Get-Command ExSetup | ForEach {$_.FileVersionInfo} | Format-List "
    "(the build including rollups) and Get-ExchangeServer | Format-List Name,AdminDisplayVersion",
    "the SOFTWARE registry hive (HKLM\\SOFTWARE\\Microsoft\\Exchange, ...\\ExchangeServer\\v14, "
    "the Windows Installer patch entries of Exchange)",
    "Exchange 2000/2003: the server object's Properties page in System Manager (build number), "
    "or a .reg export of HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup",
)

_LONG_OR_SHORT = re.compile(r"(?<![\d.])(\d{1,2})\.(\d{1,2})\.(\d{1,5})(?:\.(\d{1,5}))?(?![\d])")
_ADMIN = re.compile(r"Version\s+(\d{1,2})\.(\d{1,2})\s*\(\s*Build\s+(\d{1,5})(?:\.(\d{1,5}))?", re.I)
_ROLLUP = re.compile(
    r"Update Rollup\s+(?P<n>\d+)(?:\s*-?\s*v(?P<v>\d+))?\s+for\s+(?:Microsoft\s+)?Exchange\s+Server\s+"
    r"(?P<year>2007|2010)(?:\s+(?:Service\s+Pack\s+|SP)(?P<sp>\d))?", re.I)
_SETUP_VERSION = re.compile(r"^Setup version:\s*(?P<v>[\d.]+?)\.?\s*$", re.I)
_INSTALLED_VERSION = re.compile(r"^The locally installed version is\s*(?P<v>[\d.]+?)\.?\s*$", re.I)
_STORE = re.compile(r"(?:Faulting application(?: name)?:?|application)\s*store\.exe,\s*version:?\s*"
                    r"(?P<v>\d+\.\d+\.\d+(?:\.\d+)?)", re.I)

_EXSETUP_KEY = "hklm\\software\\microsoft\\exchange\\setup"
_V8_SETUP_KEY = "hklm\\software\\microsoft\\exchange\\v8.0\\setup"
_V14_SETUP_KEY = "hklm\\software\\microsoft\\exchangeserver\\v14\\setup"
_ROLE_KEY = re.compile(r"^hklm\\software\\microsoft\\(?:exchange\\v8\.0|exchangeserver\\v14)\\[^\\]+$")
_PATCH_KEY = re.compile(
    r"^hklm\\software\\microsoft\\windows\\currentversion\\(?:installer\\userdata\\[^\\]+\\products\\"
    r"[0-9a-f]{32}\\patches\\[^\\]+|uninstall\\[^\\]+)$")


# --------------------------------------------------------------------------
# The build table


@dataclass(frozen=True)
class Release:
    """One row of the build table."""

    build: str
    product: str
    version: str
    sp: int
    rollup: int | None
    label: str
    date: str | None
    kb: int | None

    @property
    def key(self) -> Build:
        return parse_build(self.build) or ()


@cache
def _table() -> tuple[tuple[Release, ...], dict[Build, Build]]:
    data = knowledge.load("exchange_builds")
    out: list[Release] = []
    aliases: dict[Build, Build] = {}
    for e in data["builds"]:
        b = parse_build(str(e["build"]))
        if b is None:
            raise ValueError(f"exchange_builds.yaml: bad build {e['build']!r}")
        if "alias_of" in e:
            target = parse_build(str(e["alias_of"]))
            assert target is not None
            aliases[b] = target
            continue
        out.append(Release(str(e["build"]), e["product"], str(e["version"]), int(e["sp"]),
                           e.get("rollup"), e["label"], str(e["date"]) if e.get("date") else None,
                           e.get("kb")))
    return tuple(out), aliases


def releases() -> tuple[Release, ...]:
    """Every release of the build table, in file order (oldest first per product)."""
    return _table()[0]


def parse_build(text: Any) -> Build | None:
    """``8.1.240.6``, ``08.01.0240.006``, ``Version 8.1 (Build 240.6)`` or
    ``6.5.7638`` -> an integer tuple; None when the text holds no build."""
    if text is None:
        return None
    s = str(text)
    m = _ADMIN.search(s) or _LONG_OR_SHORT.search(s)
    if not m:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def format_build(b: Build) -> str:
    return ".".join(str(x) for x in b)


def lookup(build: Any) -> Release | None:
    """The release a build belongs to: the exact entry, else the entry with
    the same first three parts (a file version ``6.5.7226.3`` is SP1
    ``6.5.7226``; a re-release ``-v2`` differs only in the fourth part),
    else None. Known misprints of the published table resolve too."""
    b = build if isinstance(build, tuple) else parse_build(build)
    if not b:
        return None
    rels, aliases = _table()
    b = aliases.get(b, b)
    if len(b) >= 3:
        b3 = aliases.get(b[:3], b[:3])
        if b3 != b[:3]:
            b = b3
    same3 = [r for r in rels if r.key[:3] == b[:3]]
    for r in same3:
        if r.key == b:
            return r
    if not same3:
        return None
    # Same three parts: the entry with the highest fourth part not above ours.
    fourth = b[3] if len(b) > 3 else 0
    below = [r for r in same3 if (r.key[3] if len(r.key) > 3 else 0) <= fourth]
    return max(below or same3, key=lambda r: r.key)


def service_pack_release(version: str, sp: int | None = None) -> Release | None:
    """The service pack (or RTM) entry of a major.minor version."""
    for r in releases():
        if r.version == version and r.rollup is None and (sp is None or r.sp == sp):
            return r
    return None


def rollup_release(version: str, rollup: int, revision: int | None = None) -> Release | None:
    """Update rollup ``rollup`` of a version; ``revision`` 2, 3 picks a
    re-release (``-v2``, ``v3``), None the first release."""
    cands = sorted((r for r in releases() if r.version == version and r.rollup == rollup),
                   key=lambda r: r.key)
    if revision and revision > 1:
        tagged = [r for r in cands if re.search(rf"-?v{revision}\b", r.label)]
        return tagged[0] if tagged else (cands[-1] if cands else None)
    return cands[0] if cands else None


def version_of(b: Build) -> str | None:
    """The table's ``version`` (``6.5``, ``8.1``, ``14.0``) of a build."""
    if len(b) < 2:
        return None
    return f"{b[0]}.{b[1]}"


# --------------------------------------------------------------------------
# What the case says


@dataclass
class Observation:
    """One piece of build evidence."""

    build: Build
    certainty: str  # exact | at_least
    how: str
    rows: list[dict[str, Any]]
    rollup: int | None = None


@dataclass
class BuildInfo:
    """The answer of :func:`host_build`.

    ``certainty``: ``exact`` (the build including its rollup), ``at_least``
    (this service pack; a later rollup of it may be installed), ``unknown``
    (no evidence; ``collect`` says what to ask for). ``rollup`` is None when
    unknown, 0 when known to be none. ``evidence`` holds the table rows that
    gave the answer (for findings), ``notes`` explain choices and conflicts.
    """

    host: str | None
    product: str | None = None
    version: str | None = None
    build: str | None = None
    sp: int | None = None
    rollup: int | None = None
    certainty: str = "unknown"
    release: Release | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    collect: tuple[str, ...] = ()

    @property
    def major(self) -> int | None:
        return int(self.version.split(".")[0]) if self.version else None

    @property
    def family(self) -> str | None:
        """``5.5``, ``2000/2003`` or ``2007+``; None when unknown."""
        m = self.major
        if m is None:
            return None
        return "5.5" if m == 5 else "2000/2003" if m == 6 else "2007+"

    def at_least(self, build: Any) -> bool | None:
        """True/False when the case proves the host is / is not at ``build``
        or later; None when it cannot tell (unknown, or an ``at_least``
        answer below ``build`` whose rollups are not known)."""
        want = build if isinstance(build, tuple) else parse_build(build)
        have = parse_build(self.build) if self.build else None
        if not want or not have or self.certainty == "unknown":
            return None
        if have >= want:
            return True
        if self.certainty == "exact" or have[:2] < want[:2]:
            return False  # a later service pack is never installed by a rollup
        return None  # same service pack, rollups not known


def _frame(case_or_table: Any) -> pd.DataFrame:
    return case_or_table.table if hasattr(case_or_table, "table") else case_or_table


def _rows_for(df: pd.DataFrame, host: str | None) -> pd.DataFrame:
    """The rows about ``host``; host-less rows count when the case holds
    at most one machine. Host names are compared once per distinct name."""
    if host is None or df.empty:
        return df
    want = host_key(host)
    names = {str(h): host_key(h) for h in df["host"].dropna().unique()}
    mine = [h for h, k in names.items() if k == want]
    hostless_too = all(k == want for k in names.values())
    mine_set = set(mine)
    return filter_rows(df, map_values(df["host"], lambda h: h in mine_set if h is not None
                                      else hostless_too, bool))


#: Row kinds any build evidence comes from (events: only Application Error
#: 1000 naming store.exe).
_EVIDENCE_KINDS = frozenset({"registry_key", "registry_value", "ps_object", "setup_line"})


def evidence_mask(df: pd.DataFrame) -> np.ndarray:
    """The rows build evidence can come from: a server's event logs are most
    of its table, and every step of :func:`host_build` filters again."""
    kinds = map_values(df["kind"], lambda k: 1 if k in _EVIDENCE_KINDS else 2 if k == "event" else 0,
                       np.int8)
    ids = df["event_id"].to_numpy(dtype="float64", na_value=np.nan)
    return (kinds == 1) | ((kinds == 2) & (ids == 1000))


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if v is pd.NA or (isinstance(v, float) and v != v) else v)
             for k, v in r.items()} for r in df.to_dict("records")]


def _int(v: Any) -> int | None:
    try:
        return int(str(v).strip(), 0)
    except (TypeError, ValueError):
        return None


def _registry(df: pd.DataFrame) -> list[Observation]:
    vals = df[df["kind"] == "registry_value"]
    if vals.empty:
        return []
    low = vals["key"].astype("string").str.lower()
    out: list[Observation] = []
    for key in (_EXSETUP_KEY, _V8_SETUP_KEY, _V14_SETUP_KEY):
        rows = _records(vals[low == key])
        by = {str(r["value_name"]).lower(): r for r in rows}
        parts = [_int(by[n]["value"]) if n in by else None
                 for n in ("msiproductmajor", "msiproductminor", "msibuildmajor", "msibuildminor")]
        if None not in parts:
            b = tuple(parts)
            out.append(Observation(b, "at_least", f"{rows[0]['key']} MsiProductMajor/Minor, MsiBuildMajor/Minor",
                                   [by[n] for n in ("msiproductmajor", "msiproductminor",
                                                    "msibuildmajor", "msibuildminor")]))
        elif key == _EXSETUP_KEY:
            out.extend(_legacy_setup(by))
    for r in _records(vals[low.str.match(_ROLE_KEY.pattern)
                           & (vals["value_name"].astype("string").str.lower() == "configuredversion")]):
        b = parse_build(r["value"])
        if b:
            out.append(Observation(b, "at_least", f"{r['key']} ConfiguredVersion", [r]))
    return out


def _legacy_setup(by: dict[str, dict[str, Any]]) -> list[Observation]:
    """Exchange 2000/2003: ``ServicePackBuild`` (the service pack's build)
    or ``NewestBuild``; 2000 (6.0) and 2003 (6.5) builds do not overlap."""
    for name in ("servicepackbuild", "newestbuild"):
        n = _int(by[name]["value"]) if name in by else None
        if not n:
            continue
        version = (6, 5) if 6944 <= n < 8000 else (6, 0) if 4417 <= n < 6944 else None
        if version:
            return [Observation(version + (n,), "at_least",
                                f"HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup {by[name]['value_name']}",
                                [by[name]])]
    return []


def _rollups(df: pd.DataFrame) -> list[tuple[str, tuple[int, int], dict[str, Any]]]:
    """(version, (rollup number, re-release), row) of every installed update
    rollup entry."""
    vals = df[(df["kind"] == "registry_value")
              & (df["value_name"].astype("string").str.lower() == "displayname")]
    if vals.empty:
        return []
    vals = vals[vals["key"].astype("string").str.lower().str.match(_PATCH_KEY.pattern)]
    out = []
    for r in _records(vals):
        m = _ROLLUP.search(str(r["value"] or ""))
        if not m:
            continue
        year = m["year"]
        sp = int(m["sp"] or 0)
        version = f"8.{sp}" if year == "2007" else f"14.{sp}"
        out.append((version, (int(m["n"]), int(m["v"] or 1)), r))
    return out


def _powershell(df: pd.DataFrame, host: str | None) -> list[Observation]:
    rows = df[df["kind"] == "ps_object"]
    out: list[Observation] = []
    for r in _records(rows):
        d = row_data(r["data"])
        obj = d.get("object")
        if obj == "exchange_server":
            name = d.get("Name") or d.get("Fqdn")
            if host is not None and name and host_key(name) != host_key(host):
                continue
            b = parse_build(d.get("AdminDisplayVersion"))
            if b:
                out.append(Observation(b, "at_least", "Get-ExchangeServer AdminDisplayVersion", [r]))
        elif obj == "exchange_setup_registry":
            parts = [_int(d.get(n)) for n in
                     ("MsiProductMajor", "MsiProductMinor", "MsiBuildMajor", "MsiBuildMinor")]
            if None not in parts:
                out.append(Observation(tuple(parts), "at_least", "Get-ItemProperty of the Exchange Setup key", [r]))
        elif obj == "file_version":
            fname = str(d.get("FileName") or d.get("OriginalFilename") or "").lower()
            b = parse_build(d.get("ProductVersion") or d.get("FileVersion"))
            if b and fname.endswith("exsetup.exe"):
                out.append(Observation(b, "exact", "ExSetup.exe file version", [r]))
            elif b and fname.endswith("store.exe"):
                out.append(Observation(b, "at_least", "store.exe file version", [r]))
    return out


def _setup_log(df: pd.DataFrame) -> list[Observation]:
    """The last ExchangeSetup.log run without errors that names its setup
    version; else the installed version a later run found."""
    lines = df[(df["kind"] == "setup_line") & (df["source"] == "exsetuplog")]
    if lines.empty:
        return []
    runs: dict[tuple[str, int], dict[str, Any]] = {}
    for r in _records(lines):
        d = row_data(r["data"])
        run = runs.setdefault((str(r["path"]), int(d.get("run") or 0)),
                              {"setup": None, "installed": None, "error": False})
        msg = str(r["message"] or "").strip()
        if m := _SETUP_VERSION.match(msg):
            run["setup"] = (parse_build(m["v"]), r)
        elif m := _INSTALLED_VERSION.match(msg):
            run["installed"] = (parse_build(m["v"]), r)
        if r["level"] == "error":
            run["error"] = True
    out: list[Observation] = []
    for (_path, _n), run in sorted(runs.items()):
        if run["setup"] and run["setup"][0] and not run["error"]:
            out.append(Observation(run["setup"][0], "at_least",
                                   "ExchangeSetup.log: setup version of a run without errors",
                                   [run["setup"][1]]))
        if run["installed"] and run["installed"][0]:
            out.append(Observation(run["installed"][0], "at_least",
                                   "ExchangeSetup.log: locally installed version", [run["installed"][1]]))
    return out


def _crash_events(df: pd.DataFrame) -> list[Observation]:
    ev = df[(df["kind"] == "event") & (df["event_id"] == 1000)]
    if ev.empty:
        return []
    ev = ev[ev["message"].astype("string").str.contains("store.exe", case=False, na=False)]
    out = []
    for r in _records(ev):
        m = _STORE.search(str(r["message"]))
        b = parse_build(m["v"]) if m else None
        if b and b[0] in (6, 8, 14):
            out.append(Observation(b, "at_least", "store.exe version in Application Error 1000", [r]))
    return out


def host_build(case_or_table: Any, host: str | None = None) -> BuildInfo:
    """Which Exchange build ``host`` runs, from a :class:`~analyzer.case.Case`
    (or its table), and with what certainty (see the module docstring).

    ``host=None`` uses every row (a one-server case). The answer never
    guesses: with no evidence, ``certainty`` is ``unknown`` and ``collect``
    lists what would tell.
    """
    df = _rows_for(_frame(case_or_table), host)
    df = filter_rows(df, evidence_mask(df))
    obs = _registry(df) + _powershell(df, host) + _setup_log(df) + _crash_events(df)
    info = BuildInfo(host=host)
    obs = [o for o in obs if version_of(o.build) is not None]
    rollups = _rollups(df)
    patch_keys = _patch_keys(df)
    if not obs and not rollups:
        info.collect = COLLECT
        info.notes.append("no build evidence for this host in the case")
        return info
    obs.extend(_with_rollups(obs, rollups, patch_keys, info))
    if not obs:
        info.collect = COLLECT
        return info
    best = _choose(obs, info)
    _fill(info, best, obs)
    return info


def _with_rollups(obs: list[Observation], rollups: list[tuple[str, tuple[int, int], dict[str, Any]]],
                  patch_keys: dict[int, dict[str, Any]], info: BuildInfo) -> list[Observation]:
    """Service pack observations plus the highest installed rollup of that
    service pack -> exact observations. Rollup entries of another service
    pack (left behind by an upgrade) do not count. When the product's
    Windows Installer ``Patches`` key is in the case and lists no rollup of
    the service pack, none is installed: exact, rollup 0."""
    if not rollups and not patch_keys:
        return []
    versions = {version_of(o.build) for o in obs} or {
        max((v for v, _n, _r in rollups), key=lambda v: tuple(map(int, v.split("."))))}
    out = []
    for version in sorted(v for v in versions if v):
        base = [o for o in obs if version_of(o.build) == version]
        mine = [(n, r) for v, n, r in rollups if v == version]
        if not mine:
            sp = service_pack_release(version)
            key_row = patch_keys.get(int(version.split(".")[0]))
            if sp is not None and key_row is not None and all(o.build[:4] <= sp.key for o in base):
                out.append(Observation(sp.key, "exact", "service pack; its Patches key lists no update rollup",
                                       [key_row] + [r for o in base[:1] for r in o.rows], rollup=0))
            continue
        (n, rev), row = max(mine, key=lambda t: t[0])
        rel = rollup_release(version, n, rev)
        if rel is None:
            info.notes.append(f"installed {row['value']!r} is not in the build table")
            continue
        out.append(Observation(rel.key, "exact", "service pack + installed update rollup entry",
                               [row] + [r for o in base[:1] for r in o.rows], rollup=n))
    if not obs and out:
        info.notes.append("service pack known from the update rollup entry alone")
    return out


def _patch_keys(df: pd.DataFrame) -> dict[int, dict[str, Any]]:
    """Major version -> the row of the Exchange product's ``Patches`` key,
    when the case holds it (the list of installed patches is then known)."""
    keys = df[df["kind"] == "registry_key"]
    if keys.empty:
        return {}
    prods = knowledge.load("exchange_builds")["installer_products"]
    low = keys["key"].astype("string").str.lower()
    out = {}
    for name, spec in prods.items():
        major = 8 if "2007" in name else 14
        want = ("hklm\\software\\microsoft\\windows\\currentversion\\installer\\userdata\\s-1-5-18"
                f"\\products\\{spec['packed'].lower()}\\patches")
        rows = _records(keys[low == want])
        if rows:
            out[major] = rows[0]
    return out


def _choose(obs: list[Observation], info: BuildInfo) -> Observation:
    """Exact beats at_least unless an at_least observation proves a later
    service pack (the exact one is then stale); otherwise the highest."""
    top_version = max(o.build[:2] for o in obs)
    exact = [o for o in obs if o.certainty == "exact" and o.build[:2] == top_version]
    pool = exact or [o for o in obs if o.build[:2] == top_version]
    best = max(pool, key=lambda o: o.build)
    others = sorted({format_build(o.build[:2]) for o in obs} - {format_build(top_version)})
    if others:
        info.notes.append(f"older versions also seen ({', '.join(others)}): an upgrade, "
                          "or evidence of different ages; the newest is reported")
    return best


def _fill(info: BuildInfo, best: Observation, obs: Iterable[Observation]) -> None:
    rel = lookup(best.build)
    info.build = format_build(best.build)
    info.version = version_of(best.build)
    info.certainty = best.certainty
    info.release = rel
    info.evidence = list(best.rows)
    info.notes.append(f"from {best.how}")
    if rel is not None:
        info.product, info.sp = rel.product, rel.sp
        info.rollup = rel.rollup if best.certainty == "exact" else None
        if best.certainty == "exact" and rel.rollup is None:
            info.rollup = 0
    else:
        prods = knowledge.load("exchange_builds")["products"]
        info.product = prods.get(info.version) or prods.get(str(best.build[0]))
        info.notes.append(f"build {info.build} is not in the build table")
    for o in obs:
        if o is not best and o.build[:2] == best.build[:2]:
            info.evidence.extend(r for r in o.rows if r not in info.evidence)
    if len(info.evidence) > MAX_EVIDENCE:
        info.notes.append(f"{len(info.evidence) - MAX_EVIDENCE} more rows agree (not listed)")
        del info.evidence[MAX_EVIDENCE:]
