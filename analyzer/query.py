"""Query helpers over the event table, for checks and notebooks.

The same helpers back :class:`analyzer.case.Case` methods and the ``exa``
DataFrame accessor (``df.exa.events(provider="DCOM", event_id=10000)``).

Events are always selected on (provider, event id): DCOM 10000 ("Unable to
start a DCOM Server") is not Exchange MOM 10000 ("Failed to publish ...").
A provider is matched through its known aliases (knowledge/providers.yaml),
because the same classic source is "DCOM" in a .evt and
"Microsoft-Windows-DistributedCOM" in a .evtx.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import knowledge
from .hosts import display_names, host_key, is_ip
from .table import distinct, filter_rows, map_values, of_kind, row_data, search_any


def provider_aliases(name: str) -> set[str]:
    """Lower-cased names a provider is known by (itself included)."""
    low = name.lower()
    for canon, aliases in knowledge.load("providers").items():
        names = {canon.lower(), *(a.lower() for a in aliases)}
        if low in names:
            return names
    return {low}


def _as_list(v: Any) -> list[Any]:
    if isinstance(v, (str, bytes, int)) or not isinstance(v, Iterable):
        return [v]
    return list(v)


class _MaskCache:
    """Masks of a large table's columns, by (column, test, values asked).

    Every check asks the same questions of the same columns, once per
    machine (``kind`` is ``event``, ``provider`` is one of a provider's
    aliases): on a million-row table each answer is a pass over the column,
    and 22 machines times six checks made them most of the checks' time.
    An entry holds its column weakly (a case's table is never kept alive
    by it) and its mask read-only; the oldest go past :attr:`SIZE`.
    """

    SIZE = 48
    #: Columns shorter than this are mapped every time (cheap enough).
    MIN_ROWS = 50_000

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[int, Any, frozenset[Any]], tuple[Any, np.ndarray]] = \
            OrderedDict()
        self._lock = threading.Lock()

    def mask(self, col: pd.Series, values: frozenset[Any],
             test: Callable[[pd.Series, frozenset[Any]], np.ndarray]) -> np.ndarray:
        """``test(col, values)``, answered from the cache when it was asked
        before of this very column."""
        arrow = col.array.__arrow_array__() if isinstance(col.dtype, pd.ArrowDtype) else None
        if arrow is None or len(col) < self.MIN_ROWS:
            return test(col, values)
        key = (id(arrow), test, values)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0]() is arrow:
                self._entries.move_to_end(key)
                return hit[1]
        found = test(col, values)
        found.setflags(write=False)
        with self._lock:
            # Masks of columns that are gone go first (no weakref callback:
            # it could run in the middle of this very dict's update).
            for k in [k for k, (ref, _m) in self._entries.items() if ref() is None]:
                del self._entries[k]
            self._entries[key] = (weakref.ref(arrow), found)
            while len(self._entries) > self.SIZE:
                self._entries.popitem(last=False)
        return found


def _ci_map(col: pd.Series, values: frozenset[str]) -> np.ndarray:
    return map_values(col, lambda v: v is not None and v.lower() in values, bool)


def _numbers_in(col: pd.Series, values: frozenset[int]) -> np.ndarray:
    return _bools(col.isin(sorted(values)))


_MASKS = _MaskCache()


def text_in(col: pd.Series, values: Iterable[str]) -> np.ndarray:
    """Where a text column holds one of ``values``, compared case-
    insensitively, as a numpy mask (read-only: combine it into a mask of
    your own). Answers for a large table's columns are kept
    (:class:`_MaskCache`)."""
    return _MASKS.mask(col, frozenset(v.lower() for v in values), _ci_map)


def select(df: pd.DataFrame, **filters: Any) -> pd.DataFrame:
    """Rows matching every given filter (strings match case-insensitively);
    the filters are those of :func:`select_mask`.

    ``contains`` searches ``message`` and ``data`` for a substring
    (case-insensitive), e.g. a CLSID in a DCOM event's insertion strings.
    ``within`` is a mask of the rows to search (one machine's, see
    :class:`HostRows`). Every filter is a mask over the cheap columns; only
    the rows that pass all of them are copied out of the table.
    """
    return filter_rows(df, select_mask(df, **filters))


def select_mask(df: pd.DataFrame, *, kind: str | Iterable[str] | None = None,
                provider: str | Iterable[str] | None = None,
                event_id: int | Iterable[int] | None = None,
                channel: str | Iterable[str] | None = None,
                host: str | Iterable[str] | None = None,
                source: str | Iterable[str] | None = None,
                level: str | Iterable[str] | None = None,
                since: Any = None, until: Any = None,
                contains: str | None = None, within: np.ndarray | None = None) -> np.ndarray:
    """The rows :func:`select` keeps, as a numpy mask over ``df``."""
    mask = np.ones(len(df), dtype=bool) if within is None else np.array(within, dtype=bool)
    if kind is not None:
        mask &= text_in(df["kind"], _as_list(kind))
    if provider is not None:
        names: set[str] = set()
        for p in _as_list(provider):
            names |= provider_aliases(p)
        mask &= text_in(df["provider"], names)
    if event_id is not None:
        # Kept like the text masks: every check asks for its event ids once
        # per machine, and each answer is a pass over the whole column.
        mask &= _MASKS.mask(df["event_id"], frozenset(int(i) for i in _as_list(event_id)),
                            _numbers_in)
    for col, val in (("channel", channel), ("host", host), ("source", source), ("level", level)):
        if val is not None:
            mask &= text_in(df[col], [str(v) for v in _as_list(val)])
    if since is not None:
        mask &= _bools(df["ts"] >= _utc(since))
    if until is not None:
        mask &= _bools(df["ts"] <= _utc(until))
    if contains is not None and mask.any():
        # Text is searched only in the rows the other filters kept: message
        # and data are most of a large table.
        mask &= search_any(df, [contains], mask, ("message", "data"))
    return mask


def _bools(s: pd.Series) -> np.ndarray:
    """A nullable boolean Series as a numpy mask (missing = False)."""
    return s.fillna(False).to_numpy(dtype=bool)


def _utc(value: Any) -> pd.Timestamp:
    """A time bound as UTC: naive values are taken as UTC, aware ones converted."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


#: Columns of :func:`endpoints` (table provenance + endpoint fields).
ENDPOINT_COLUMNS = ["ts", "host", "source", "path", "locator", "protocol", "address", "endpoint",
                    "port", "uuid", "version", "annotation", "state", "interface", "exchange_group"]


def expand_data(df: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """The ``data`` JSON of the given rows as columns (only for these rows).

    Meant for small selections: expanding a whole million-row table would
    rebuild exactly the wide table the schema avoids.
    """
    records = [row_data(v) for v in df["data"]]
    wide = pd.DataFrame.from_records(records, index=df.index)
    if prefix:
        wide = wide.add_prefix(prefix)
    return wide


def endpoints(df: pd.DataFrame, **filters: Any) -> pd.DataFrame:
    """Endpoint-mapper rows with their fields as columns (protocol, address,
    port, uuid, annotation, ...)."""
    rows = select(df, kind="endpoint", **filters)
    if rows.empty:
        return pd.DataFrame(columns=ENDPOINT_COLUMNS)
    base = rows[["ts", "host", "source", "path", "locator"]]
    return base.join(expand_data(rows), rsuffix="_data")


@pd.api.extensions.register_dataframe_accessor("exa")
class ExaAccessor:
    """``df.exa.events(...)``, ``df.exa.data()``, ``df.exa.endpoints()``."""

    def __init__(self, df: pd.DataFrame) -> None:
        self._df = df

    def events(self, **filters: Any) -> pd.DataFrame:
        filters.setdefault("kind", "event")
        return select(self._df, **filters)

    def rows(self, **filters: Any) -> pd.DataFrame:
        return select(self._df, **filters)

    def data(self) -> pd.DataFrame:
        return expand_data(self._df)

    def endpoints(self, **filters: Any) -> pd.DataFrame:
        return endpoints(self._df, **filters)

    def registry(self):
        from .registry import RegistryView
        return RegistryView(self._df)

    def timeline(self) -> pd.DataFrame:
        """Rows with a timestamp, oldest first (for plotting evidence)."""
        return self._df[self._df["ts"].notna()].sort_values("ts")


# --------------------------------------------------------------------------
# One machine at a time


@dataclass
class HostRows:
    """The rows of one machine of the case, as a check judges it.

    ``name`` is the display name (the most specific spelling seen, e.g. the
    FQDN), ``key`` the comparable :func:`analyzer.hosts.host_key`; both are
    None for a case whose rows name no machine. ``shared`` is True when
    host-less rows (a hive, a setup log) were handed to several machines
    because nothing says whose they are: a key or line missing from them may
    be another machine's, so their absence proves nothing.

    The machine's rows are ``table`` where ``mask`` holds (every row when it
    is None): a question about them (:meth:`select`, :meth:`of_kind`) is
    answered from the whole table's cheap columns with the machine's mask
    added, and only the answer's rows are copied. :attr:`rows` copies all
    of the machine's rows, once, for code that wants them as one frame.
    """

    name: str | None
    key: str | None
    table: pd.DataFrame
    shared: bool = False
    mask: np.ndarray | None = None

    @property
    def rows(self) -> pd.DataFrame:
        """Every row of the machine, copied at each call (a case keeps its
        split for all checks: a cached copy would live as long as it)."""
        return self.table if self.mask is None else filter_rows(self.table, self.mask)

    def __len__(self) -> int:
        return len(self.table) if self.mask is None else int(self.mask.sum())

    def select(self, **filters: Any) -> pd.DataFrame:
        """This machine's rows matching :func:`select` filters."""
        return select(self.table, within=self.mask, **filters)

    def where(self, mask: np.ndarray) -> pd.DataFrame:
        """This machine's rows where ``mask`` (over the whole table) holds."""
        return filter_rows(self.table, mask if self.mask is None else mask & self.mask)

    def count(self, mask: np.ndarray) -> int:
        """How many of this machine's rows ``mask`` (over the whole table) holds for."""
        return int((mask if self.mask is None else mask & self.mask).sum())

    def of_kind(self, *kinds: str) -> pd.DataFrame:
        return self.where(text_in(self.table["kind"], kinds))


def host_codes(df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Every row's machine as a small integer (-1: the row names none) and
    the host keys the integers stand for. Host names are compared once per
    distinct spelling; a million-row table's masks are then integer compares."""
    index: dict[str, int] = {}

    def code(h: Any) -> int:
        k = None if h is None else host_key(h)
        return -1 if k is None else index.setdefault(k, len(index))

    return map_values(df["host"], code, np.int32), list(index)


def host_keys(df: pd.DataFrame) -> pd.Series:
    """The comparable host key of every row (None where the row names no host)."""
    codes, keys = host_codes(df)
    return pd.Series(np.array(keys + [None], dtype=object)[codes], index=df.index, dtype=object)


def _system_names(df: pd.DataFrame) -> set[str]:
    """Machines a SYSTEM hive or export names (its rows' host, ComputerName)."""
    regs = of_kind(df, "registry_key", "registry_value")
    if regs.empty:
        return set()
    names = {host_key(h) for h in regs["host"].dropna().astype(str)}
    vals = regs[(regs["kind"].astype("string") == "registry_value").fillna(False).to_numpy()]
    vn = vals["value_name"].astype("string").str.lower().fillna("")
    sel = vals[vn.isin(["computername", "hostname"]).to_numpy()]
    names |= {host_key(v) for v in sel["value"].dropna().astype(str)}
    return {n for n in names if n}


def split_by_host(df: pd.DataFrame, among: Iterable[str] | None = None) -> list[HostRows]:
    """The table split per machine, with one policy for rows without a host.

    ``among`` are the host keys to judge (default: every named host; a name
    that is only an IP address counts when no machine is named). Rows without
    a host — a hive, a setup log, a tracking log without a server column —
    and rows named only by an IP address that is not judged belong to the
    only judged machine; with several, to the one a SYSTEM
    hive names; otherwise to every one of them, marked ``shared``. With no
    judged machine the whole table is one host-less group.
    """
    codes, keys = host_codes(df)
    present = {keys[c] for c in np.unique(codes) if c >= 0}
    named = sorted(k for k in present if not is_ip(k))
    subjects = sorted(set(among)) if among is not None else (named or sorted(present))
    # A name that is only an IP address (``rpcdump /s 10.0.0.5``) is no
    # machine of its own when machines are named: such rows are host-less.
    ip_only = [i for i, k in enumerate(keys) if is_ip(k) and k not in subjects]
    hostless = (codes < 0) | np.isin(codes, ip_only)
    if not subjects:
        return [HostRows(None, None, df)]
    owner: str | None = subjects[0] if len(subjects) == 1 else None
    if owner is None:
        claimed = [s for s in subjects if s in _system_names(df)]
        owner = claimed[0] if len(claimed) == 1 else None
    spellings = {h: host_key(h) for h in distinct(df["host"])}
    out = []
    for k in subjects:
        own = codes == keys.index(k) if k in keys else np.zeros(len(df), dtype=bool)
        mine = own | hostless if owner is None or owner == k else own
        names = [h for h, hk in spellings.items() if hk == k]
        name = display_names(names)[0] if names else k
        out.append(HostRows(name, k, df, shared=owner is None and bool(hostless.any()),
                            mask=None if mine.all() else mine))
    return out
