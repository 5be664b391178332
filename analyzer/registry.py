"""The registry as checks see it: key names, value decoding and lookups.

Two sources feed registry rows into the event table — offline hives
(:mod:`analyzer.sources.hive`) and ``.reg`` exports
(:mod:`analyzer.sources.regfile`) — and both use the helpers here, so a value
reads the same whichever way the customer sent it.

Canonical key form (the ``key`` column)
---------------------------------------
* Short root names as ``reg.exe`` prints them: ``HKLM``, ``HKU``, ``HKCU``.
  ``HKEY_LOCAL_MACHINE`` etc. are rewritten on input.
* ``HKCR`` / ``HKEY_CLASSES_ROOT`` is stored as ``HKLM\\SOFTWARE\\Classes``:
  an offline SOFTWARE hive holds the machine classes under ``Classes``, and
  HKCR is only a merged *view* of that key (plus the user's classes) on a
  running system. One canonical form keeps hive rows and .reg rows together.
* A SYSTEM hive has no ``CurrentControlSet`` (the kernel creates that link at
  boot from ``Select\\Current``), so hive rows carry the real
  ``HKLM\\SYSTEM\\ControlSet00N\\...`` names, and ``.reg`` rows carry whatever
  the export wrote (usually ``CurrentControlSet``). We do **not** duplicate
  rows: :class:`RegistryView` resolves ``CurrentControlSet`` <->
  ``ControlSet00N`` in lookups, per hive file (or per host) from the
  ``HKLM\\SYSTEM\\Select`` value ``Current``. Duplicating would double every
  count and every piece of evidence drawn from the table.
* A user hive (NTUSER.DAT) is mounted as ``HKU\\<user>`` (the user name from
  the hive's base block, e.g. ``\\??\\C:\\Users\\tony\\ntuser.dat`` -> ``tony``),
  UsrClass.dat as ``HKU\\<user>_Classes``; lookups of ``HKCU\\...`` match any
  loaded user hive (and ``HKCU`` rows from .reg exports, which stay ``HKCU``).
* The rest of the path keeps the case Windows stored; every comparison is
  case-insensitive, as in Windows.
"""
from __future__ import annotations

import fnmatch
import re
import struct
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .table import of_kind, row_data

# --------------------------------------------------------------------------
# Key names

#: Long and short root names -> canonical prefix.
ROOT_ALIASES: dict[str, str] = {
    "HKEY_LOCAL_MACHINE": "HKLM",
    "HKLM": "HKLM",
    "HKEY_USERS": "HKU",
    "HKU": "HKU",
    "HKEY_CURRENT_USER": "HKCU",
    "HKCU": "HKCU",
    "HKEY_CLASSES_ROOT": "HKLM\\SOFTWARE\\Classes",
    "HKCR": "HKLM\\SOFTWARE\\Classes",
    # HKCC is a link to the current hardware profile of the current control set.
    "HKEY_CURRENT_CONFIG": "HKLM\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current",
    "HKCC": "HKLM\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current",
}

_CCS_RE = re.compile(r"^hklm\\system\\(currentcontrolset|controlset(\d{3}))(\\|$)", re.I)


def normalize_key(key: str) -> str:
    """Canonical form of a key path as written by a user, a KB or a .reg file.

    ``HKEY_CLASSES_ROOT\\CLSID\\{..}`` -> ``HKLM\\SOFTWARE\\Classes\\CLSID\\{..}``;
    surrounding brackets, blanks and doubled / trailing backslashes go away.
    The case of the path is kept (lookups compare case-insensitively).
    """
    k = key.strip()
    if k.startswith("[") and k.endswith("]"):
        k = k[1:-1].strip()
    k = k.replace("/", "\\") if "\\" not in k and k.upper().startswith("HK") else k
    parts = [p for p in k.split("\\") if p != ""]
    if not parts:
        return ""
    root = ROOT_ALIASES.get(parts[0].upper())
    if root is not None:
        parts = root.split("\\") + parts[1:]
    return "\\".join(parts)


def parent_key(key: str) -> str | None:
    i = key.rfind("\\")
    return key[:i] if i > 0 else None


def key_locator(key: str, value_name: str | None = None, line: int | None = None) -> str:
    """Provenance text of a registry row: ``[line=N; ]key=<key>[; value=<name>]``."""
    loc = f"line={line}; key={key}" if line is not None else f"key={key}"
    if value_name is not None:
        loc += f"; value={value_name or '(Default)'}"
    return loc


# --------------------------------------------------------------------------
# Value types and decoding

#: Registry value type code -> name (winnt.h).
VALUE_TYPES: dict[int, str] = {
    0: "REG_NONE",
    1: "REG_SZ",
    2: "REG_EXPAND_SZ",
    3: "REG_BINARY",
    4: "REG_DWORD",
    5: "REG_DWORD_BIG_ENDIAN",
    6: "REG_LINK",
    7: "REG_MULTI_SZ",
    8: "REG_RESOURCE_LIST",
    9: "REG_FULL_RESOURCE_DESCRIPTOR",
    10: "REG_RESOURCE_REQUIREMENTS_LIST",
    11: "REG_QWORD",
}
TYPE_CODES: dict[str, int] = {v: k for k, v in VALUE_TYPES.items()}


def type_name(code: int) -> str:
    """Name of a value type; unknown codes (device-property types above
    0xFFFF0000, application-private types) as ``REG_0x<hex>``."""
    return VALUE_TYPES.get(code, f"REG_0x{code:X}")


def _cut_utf16(raw: bytes) -> bytes:
    """Bytes of a UTF-16LE string up to its first NUL character (Windows
    strings are NUL-terminated; the data often carries garbage after it)."""
    if len(raw) % 2:
        raw = raw[:-1]
    for i in range(0, len(raw), 2):
        if raw[i] == 0 and raw[i + 1] == 0:
            return raw[:i]
    return raw


def decode_value(code: int, raw: bytes, *, ansi: bool = False) -> tuple[str, str, dict[str, Any]]:
    """(type name, value text, extra data) for one value's raw bytes.

    Text rules (the ``value`` column): strings as is; DWORD/QWORD as decimal;
    MULTI_SZ joined with ``\\n`` (the list in extra ``values``); binary and
    every other type as lowercase hex. ``ansi`` decodes string types as
    cp1252 single-byte text: REGEDIT4 files write ``hex(2)``/``hex(7)`` that way
    (a v5 export or a hive always has UTF-16LE). A size that does not fit the
    type (a 2-byte DWORD in a damaged hive) falls back to hex with
    ``extra["invalid"]``.
    """
    name = type_name(code)
    extra: dict[str, Any] = {}
    if code in (1, 2, 6):
        if ansi:
            text = raw.split(b"\x00", 1)[0].decode("cp1252", errors="replace")
        else:
            text = _cut_utf16(raw).decode("utf-16-le", errors="replace")
        return name, text, extra
    if code == 7:
        if ansi:
            parts = raw.decode("cp1252", errors="replace").split("\x00")
        else:
            if len(raw) % 2:
                raw = raw[:-1]
            parts = raw.decode("utf-16-le", errors="replace").split("\x00")
        while parts and parts[-1] == "":
            parts.pop()
        extra["values"] = parts
        return name, "\n".join(parts), extra
    if code in (4, 5):
        if len(raw) >= 4:
            if len(raw) > 4:
                extra["size"] = len(raw)
            return name, str(struct.unpack("<I" if code == 4 else ">I", raw[:4])[0]), extra
        extra["invalid"] = f"{len(raw)}-byte data for a 4-byte type"
        return name, raw.hex(), extra
    if code == 11:
        if len(raw) >= 8:
            if len(raw) > 8:
                extra["size"] = len(raw)
            return name, str(struct.unpack("<Q", raw[:8])[0]), extra
        extra["invalid"] = f"{len(raw)}-byte data for an 8-byte type"
        return name, raw.hex(), extra
    return name, raw.hex(), extra


# --------------------------------------------------------------------------
# Lookups


@dataclass
class RegValue:
    """One registry value found by a lookup, with its provenance.

    ``row`` is the table row (a plain dict of every column), ready for
    ``analyzer.findings.Evidence.from_row(v.row)``.
    """

    key: str
    name: str
    type: str | None
    value: str | None
    path: str
    locator: str
    host: str | None = None
    ts: Any = None
    data: dict[str, Any] = field(default_factory=dict)
    row: dict[str, Any] = field(default_factory=dict)

    @property
    def as_int(self) -> int | None:
        """The value as an integer (DWORD/QWORD, or a decimal/hex string as
        some guides tell admins to store ports as REG_SZ), else None."""
        if self.value is None:
            return None
        text = self.value.strip()
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            return None

    @property
    def values_list(self) -> list[str]:
        """REG_MULTI_SZ items (a one-item list for other types)."""
        if "values" in self.data:
            return list(self.data["values"])
        return [] if self.value is None else [self.value]


def _clean(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and v != v:
        return None
    return v


class RegistryView:
    """Case-insensitive registry lookups over the registry rows of a table.

    Accepts every spelling checks and engineers use: ``HKEY_LOCAL_MACHINE``
    or ``HKLM``, ``HKCR\\CLSID\\..`` (= ``HKLM\\SOFTWARE\\Classes\\CLSID\\..``),
    ``HKLM\\SYSTEM\\CurrentControlSet\\..`` (resolved to ``ControlSet00N`` of the
    same hive file or host through ``HKLM\\SYSTEM\\Select`` ``Current``, and
    the other way round for .reg exports that only have ``CurrentControlSet``),
    ``HKCU\\..`` (any loaded user hive ``HKU\\<user>\\..``).

    The index (lower-cased key -> row positions) is built on first use, so
    every lookup after that is a dict access. Keys whose descendants were
    loaded exist implicitly: in a targeted load ``HKLM\\SOFTWARE\\Microsoft``
    has no row of its own, but it exists because ``...\\Microsoft\\Exchange``
    was read.
    """

    def __init__(self, df: pd.DataFrame, *, damaged: frozenset[str] = frozenset(),
                 targeted: bool = False, shared: bool = False) -> None:
        self._df = of_kind(df, "registry_key", "registry_value").reset_index(drop=True)
        self._built = False
        #: Files the inventory marks partial/failed: a key missing from them proves nothing.
        self.damaged = damaged
        #: Hives were read with ``--registry targeted`` (only the declared subtrees).
        self.targeted = targeted
        #: Host-less rows handed to several machines: absence in them proves nothing.
        self.shared = shared

    def for_host(self, host: str | None, *, hostless: bool = True,
                 shared: bool = False) -> "RegistryView":
        """The view of one machine's registry (``host`` compared by
        :func:`analyzer.hosts.host_key`), with the host-less rows when
        ``hostless``; completeness settings are kept so :meth:`covers` can
        tell whether a key's absence is proof."""
        from .hosts import host_key
        from .query import host_keys
        want = host_key(host)
        hk = host_keys(self._df)
        mask = (hk == want) if want is not None else hk.isna()
        if hostless:
            mask = mask | hk.isna()
        only_hostless = bool(len(self._df)) and not bool((hk[mask.fillna(False)].notna()).any())
        return RegistryView(self._df[mask.fillna(False).to_numpy()], damaged=self.damaged,
                            targeted=self.targeted, shared=shared and only_hostless)

    def __len__(self) -> int:
        return len(self._df)

    # ---- index -----------------------------------------------------------
    def _build(self) -> None:
        if self._built:
            return
        df = self._df
        n = len(df)
        keys = df["key"].astype("string").fillna("").tolist()
        lower = [k.lower() for k in keys]
        kinds = df["kind"].astype("string").fillna("").tolist()
        names = df["value_name"].astype("string").fillna("").tolist()
        paths = df["path"].astype("string").fillna("").tolist()
        hosts = df["host"].astype("string").tolist()
        self._names, self._paths = names, paths
        self._hosts = [None if h is pd.NA else h for h in hosts]
        self._key_rows: dict[str, list[int]] = {}
        self._value_rows: dict[str, list[int]] = {}
        for i in range(n):
            target = self._key_rows if kinds[i] == "registry_key" else self._value_rows
            target.setdefault(lower[i], []).append(i)
        # Every key (explicit or implied by a descendant) -> {child lower: child name}.
        self._children: dict[str, dict[str, str]] = {}
        self._all_keys: dict[str, str] = {}
        for low, idx in list(self._key_rows.items()) + list(self._value_rows.items()):
            if low in self._all_keys:
                continue
            key = keys[idx[0]]
            while True:
                if low in self._all_keys:
                    break
                self._all_keys[low] = key
                p = key.rfind("\\")
                if p <= 0:
                    break
                parent, child = key[:p], key[p + 1:]
                plow = low[:p]
                self._children.setdefault(plow, {})[child.lower()] = child
                key, low = parent, plow
        # Current control set per hive file and per host, from Select\Current.
        self._ccs_by_path: dict[str, int] = {}
        self._ccs_by_host: dict[str, int] = {}
        for i in self._value_rows.get("hklm\\system\\select", []):
            if names[i].lower() != "current":
                continue
            try:
                cur = int(str(df.at[i, "value"]).strip())
            except ValueError:
                continue
            self._ccs_by_path.setdefault(paths[i], cur)
            if self._hosts[i]:
                self._ccs_by_host.setdefault(self._hosts[i].lower(), cur)
        self._ccs_all = set(self._ccs_by_path.values())
        self._users = sorted({low.split("\\")[1] for low in self._all_keys
                              if low.startswith("hku\\") and low.count("\\") >= 1
                              and not low.split("\\")[1].endswith("_classes")})
        self._built = True

    def _current_for(self, i: int) -> int | None:
        cur = self._ccs_by_path.get(self._paths[i])
        if cur is None and self._hosts[i]:
            cur = self._ccs_by_host.get(self._hosts[i].lower())
        if cur is None and len(self._ccs_all) == 1 and not self._ccs_by_host:
            cur = next(iter(self._ccs_all))
        return cur

    def _candidates(self, key: str) -> list[tuple[str, int | None, str | None]]:
        """Lower-cased keys to try for a query, in order, each with the
        control-set number its rows must have as current (or None) and the
        kind of alias (for the CurrentControlSet direction)."""
        self._build()
        low = normalize_key(key).lower()
        out: list[tuple[str, int | None, str | None]] = [(low, None, None)]
        m = _CCS_RE.match(low)
        if m:
            rest = low[m.end(1):]
            if m.group(2) is None:  # CurrentControlSet -> ControlSet00N
                for cur in sorted(self._ccs_all | set(self._ccs_by_host.values())):
                    out.append((f"hklm\\system\\controlset{cur:03d}{rest}", cur, "ccs"))
            else:  # ControlSet00N -> CurrentControlSet rows of a hive whose current is N
                out.append((f"hklm\\system\\currentcontrolset{rest}", int(m.group(2)), "ccs"))
        if low == "hkcu" or low.startswith("hkcu\\"):
            rest = low[4:]
            for user in self._users:
                out.append((f"hku\\{user}{rest}", None, None))
        return out

    def _rows(self, which: str, key: str, host: str | None) -> list[int]:
        self._build()
        table: dict[str, list[int]] = getattr(self, which)
        found: list[int] = []
        for low, cur, _ in self._candidates(key):
            for i in table.get(low, ()):
                if cur is not None and self._current_for(i) != cur:
                    continue
                if host is not None and (self._hosts[i] or "").lower() != host.lower():
                    continue
                found.append(i)
        return found

    def _row(self, i: int) -> dict[str, Any]:
        rec = {c: _clean(self._df.at[i, c]) for c in self._df.columns}
        return rec

    def _value(self, i: int) -> RegValue:
        row = self._row(i)
        return RegValue(key=row["key"], name=row["value_name"] or "", type=row["value_type"],
                        value=row["value"], path=row["path"], locator=row["locator"],
                        host=row["host"], ts=row["ts"], data=row_data(row["data"]), row=row)

    # ---- public API --------------------------------------------------------
    def get(self, key: str, value_name: str = "", host: str | None = None) -> RegValue | None:
        """The value ``value_name`` ("" = the default value) of ``key``, or None.

        With several hives or exports holding it, the first found wins (literal
        key before alias, then table order); pass ``host`` to pick a server.
        """
        want = value_name.lower()
        if want == "(default)" or want == "@":
            want = ""
        for i in self._rows("_value_rows", key, host):
            if self._names[i].lower() == want:
                return self._value(i)
        return None

    def get_all(self, key: str, value_name: str = "", host: str | None = None) -> list[RegValue]:
        """Every occurrence of a value (one per hive/export/host that has it)."""
        want = value_name.lower()
        return [self._value(i) for i in self._rows("_value_rows", key, host)
                if self._names[i].lower() == want]

    def values(self, key: str, host: str | None = None) -> list[RegValue]:
        """Every value of ``key`` (first occurrence of each name)."""
        seen: set[str] = set()
        out = []
        for i in self._rows("_value_rows", key, host):
            n = self._names[i].lower()
            if n not in seen:
                seen.add(n)
                out.append(self._value(i))
        return out

    def key_row(self, key: str, host: str | None = None) -> dict[str, Any] | None:
        """The ``registry_key`` row of a key (last-write time in ``ts``), if loaded."""
        rows = self._rows("_key_rows", key, host)
        return self._row(rows[0]) if rows else None

    def key_exists(self, key: str, host: str | None = None) -> bool:
        """True when the key, one of its values or one of its descendants was read."""
        self._build()
        if host is None:
            for low, cur, _ in self._candidates(key):
                if low in self._all_keys and cur is None:
                    return True
                if low in self._all_keys and cur is not None:
                    if self._descendant_rows_match(low, cur, None):
                        return True
            return False
        return any(self._descendant_rows_match(low, cur, host)
                   for low, cur, _ in self._candidates(key) if low in self._all_keys)

    def _descendant_rows_match(self, low: str, cur: int | None, host: str | None) -> bool:
        prefix = low + "\\"
        for table in (self._key_rows, self._value_rows):
            for k, idx in table.items():
                if k == low or k.startswith(prefix):
                    for i in idx:
                        if cur is not None and self._current_for(i) != cur:
                            continue
                        if host is not None and (self._hosts[i] or "").lower() != host.lower():
                            continue
                        return True
        return False

    def subkeys(self, key: str, host: str | None = None) -> list[str]:
        """Names of the immediate subkeys of ``key`` that were read (sorted,
        case-insensitively unique)."""
        self._build()
        names: dict[str, str] = {}
        for low, cur, _ in self._candidates(key):
            for clow, cname in self._children.get(low, {}).items():
                if host is not None or cur is not None:
                    if not self._descendant_rows_match(f"{low}\\{clow}", cur, host):
                        continue
                names.setdefault(clow, cname)
        return sorted(names.values(), key=str.lower)

    def find_keys(self, pattern: str, host: str | None = None) -> list[str]:
        """Keys (as stored) matching a glob such as
        ``HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchange*``; ``*`` and
        ``?`` do not cross a backslash."""
        self._build()
        out: dict[str, str] = {}
        for low, cur, _ in self._candidates(pattern):
            rx = _glob_re(low)
            for k, name in self._all_keys.items():
                if rx.match(k) and k not in out:
                    if (cur is not None or host is not None) and not self._descendant_rows_match(k, cur, host):
                        continue
                    out[k] = name
        return sorted(out.values(), key=str.lower)

    def control_set(self, host: str | None = None) -> int | None:
        """``Select\\Current`` of the (only or given) host's SYSTEM hive."""
        self._build()
        if host is not None:
            return self._ccs_by_host.get(host.lower())
        vals = set(self._ccs_by_path.values())
        return next(iter(vals)) if len(vals) == 1 else None

    def frame(self) -> pd.DataFrame:
        """The registry rows this view was built from."""
        return self._df

    def under(self, key: str) -> list[dict[str, Any]]:
        """Every row of ``key`` and its descendants (table order)."""
        self._build()
        out: list[int] = []
        for low, cur, _ in self._candidates(key):
            prefix = low + "\\"
            for table in (self._key_rows, self._value_rows):
                for k, idx in table.items():
                    if k == low or k.startswith(prefix):
                        out += [i for i in idx if cur is None or self._current_for(i) == cur]
        return [self._row(i) for i in sorted(set(out))]

    def any_row(self, key: str) -> dict[str, Any] | None:
        """The key's ``registry_key`` row, else the row of one of its values."""
        row = self.key_row(key)
        if row is None:
            vals = self._rows("_value_rows", key, None)
            row = self._row(vals[0]) if vals else None
        return row

    # ---- absence as proof --------------------------------------------------
    def covers(self, key: str) -> str | None:
        """The file whose rows prove ``key`` absent when it holds no row of it,
        or None when the case holds no such complete source.

        A hive covers the keys of its root (HKLM\\SOFTWARE, HKLM\\SYSTEM) when
        the inventory does not mark it damaged and, for a targeted load, the
        key lies in a declared subtree (:func:`declared_paths`). A ``.reg``
        export covers a key only when it exported the key's parent: regedit
        writes every key of an exported subtree as its own section, so an
        export of ``HKCR\\CLSID`` lists every class, and an export of one
        unrelated CLSID says nothing about another.
        """
        if self.shared or self._df.empty:
            return None
        low = normalize_key(key).lower()
        root = "\\".join(low.split("\\")[:2]) + "\\"
        keys = self._df["key"].astype("string").fillna("").map(normalize_key).str.lower()
        src = self._df["source"].astype("string").fillna("").str.lower()
        paths = self._df["path"].astype("string").fillna("")
        export = src.isin(EXPORT_SOURCES)
        hive = (~export & keys.str.startswith(root)).to_numpy()
        for p in sorted(set(paths[hive])):
            if p not in self.damaged and (not self.targeted or in_targeted_scope(key)):
                return p
        parent = low.rsplit("\\", 1)[0]
        hit = paths[((keys == parent) & export).to_numpy()]
        return str(hit.iloc[0]) if len(hit) else None


def _glob_re(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(r"[^\\]*")
        elif ch == "?":
            out.append(r"[^\\]")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.I)


def segment_match(name: str, pattern: str) -> bool:
    """Case-insensitive glob match of one key-name segment (hive walkers)."""
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


# --------------------------------------------------------------------------
# Which subtrees a targeted load reads

#: Registry sources that are exports of chosen keys (every other registry
#: source is a whole hive, read in full or in declared subtrees).
EXPORT_SOURCES = frozenset({"regfile", "reg"})

#: Hive type and root-relative path of a full key path.
_HIVE_ROOTS = (("hklm\\software\\", "SOFTWARE"), ("hklm\\system\\", "SYSTEM"),
               ("hkcu\\software\\classes\\", "USRCLASS"), ("hkcu\\", "NTUSER"))


def hive_relative(key: str) -> tuple[str, str] | None:
    """(hive type, path relative to the hive root) of a full key path:
    ``HKLM\\SYSTEM\\CurrentControlSet\\X`` -> (SYSTEM, ``ControlSet???\\X``),
    ``HKCR\\CLSID\\{..}`` -> (SOFTWARE, ``Classes\\CLSID\\{..}``)."""
    k = normalize_key(key)
    low = k.lower()
    for prefix, hive in _HIVE_ROOTS:
        if low.startswith(prefix):
            rel = k[len(prefix):]
            if hive == "SYSTEM" and rel.lower().startswith("currentcontrolset"):
                rel = "ControlSet???" + rel[len("CurrentControlSet"):]
            return hive, rel
    return None


def declared_paths() -> dict[str, list[dict[str, Any]]]:
    """What a targeted hive load reads, per hive type: the subtrees of
    ``knowledge/registry_paths.yaml`` every check shares (Exchange version,
    computer name, control set) plus the ones each registered check declares
    in its ``registry_keys`` attribute."""
    from . import knowledge
    from .checks import registered
    out = {h: list(v or []) for h, v in (knowledge.load("registry_paths") or {}).items()}
    for check in registered():
        for spec in getattr(check, "registry_keys", ()) or ():
            where = hive_relative(spec.path)
            if where is None:
                continue
            hive, rel = where
            entry = {"path": rel, "subtree": spec.subtree, "why": f"{check.id}: {spec.why}"}
            if not any(e["path"].lower() == rel.lower() for e in out.setdefault(hive, [])):
                out[hive].append(entry)
    return out


@dataclass(frozen=True)
class KeySpec:
    """A registry subtree a check reads (declared on the check, loaded by
    the targeted hive load)."""

    path: str
    why: str
    subtree: bool = True


def in_targeted_scope(key: str) -> bool:
    """True when a targeted load reads ``key`` (it lies in a declared subtree,
    or is a declared key itself)."""
    where = hive_relative(key)
    if where is None:
        return False
    hive, rel = where
    parts = [p for p in rel.split("\\") if p]
    for entry in declared_paths().get(hive, []):
        segs = [p for p in entry["path"].split("\\") if p]
        if len(parts) < len(segs) or (len(parts) > len(segs) and not entry.get("subtree")):
            continue
        if all(segment_match(a, b) for a, b in zip(parts, segs)):
            return True
    return False
