"""The facts step: one host's rows, read once, through one API.

:class:`Host` wraps the rows :meth:`analyzer.case.Case.per_host` gives a
machine and answers the questions every check asks: its events by provider
(through the provider aliases of ``knowledge/providers.yaml``), its rows of a
kind, its registry (:class:`~analyzer.registry.RegistryView`, which knows
whether a key's absence is proof), its Exchange generation, and
:meth:`Host.absent` — the one place where "not in the case" becomes
evidence.
"""
from __future__ import annotations

from functools import cached_property
from typing import Any

import pandas as pd

from ...builds import BuildInfo, evidence_mask, host_build
from ...query import HostRows, select_mask
from ...registry import RegistryView
from ...table import row_data
from ...transport_settings import effective_settings
from .causes import Absence
from .world import Generation, exchange_generation


def clean(v: Any) -> Any:
    """None for every spelling of a missing value (NA, NaT, NaN)."""
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v):
        return None
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts (missing values None), ``_data`` = the parsed
    ``data`` JSON; ready for ``Evidence.from_row``."""
    out = []
    for rec in df.to_dict("records"):
        r = {k: clean(v) for k, v in rec.items()}
        r["_data"] = row_data(r.get("data"))
        out.append(r)
    return out


class Host:
    """One machine of the case, as a check sees it."""

    def __init__(self, case: Any, part: HostRows) -> None:
        self.case = case
        self.name = part.name
        self.key = part.key
        self.part = part
        self.shared = part.shared

    @classmethod
    def of(cls, case: Any, part: HostRows) -> "Host":
        """The one :class:`Host` of ``part`` in ``case``: every check asks
        the same machine's build, generation, registry and roles, so they
        are decided once per case (kept in ``case.memo`` while ``part``,
        which the case's per-host split keeps, is alive)."""
        key = ("toolkit_host", id(part))
        found = case.memo.get(key)
        if found is None or found.part is not part:
            found = case.memo[key] = cls(case, part)
        return found

    def __repr__(self) -> str:
        return f"<Host {self.name!r}: {len(self.part)} rows>"

    @property
    def rows(self) -> pd.DataFrame:
        """Every row of this host as one frame, copied at each call: the
        questions below read only the rows they answer with."""
        return self.part.rows

    # ---- rows ----------------------------------------------------------------
    def kind(self, *kinds: str) -> pd.DataFrame:
        """This host's rows of the given kinds."""
        return self.part.of_kind(*kinds)

    def events(self, **filters: Any) -> pd.DataFrame:
        """Event rows matching :func:`analyzer.query.select` filters; the
        provider matches through its aliases (DCOM = DistributedCOM)."""
        return self.part.select(kind="event", **filters)

    def has_channel(self, *names: str) -> bool:
        return self.part.count(select_mask(self.part.table, channel=list(names))) > 0

    # ---- registry -----------------------------------------------------------
    @cached_property
    def registry(self) -> RegistryView:
        """This host's registry, knowing which sources are complete: files the
        inventory marks partial or failed, targeted hive loads and host-less
        hives shared by several machines prove no absence."""
        damaged = frozenset(str(e.path) for e in (getattr(self.case, "inventory", None) or [])
                            if getattr(e, "status", None) in ("partial", "failed"))
        opts = getattr(self.case, "options", None)
        targeted = getattr(opts, "registry", "targeted") != "full"
        regs = self.kind("registry_key", "registry_value")
        shared = self.shared and bool(len(regs)) and bool(regs["host"].isna().all())
        return RegistryView(regs, damaged=damaged, targeted=targeted, shared=shared)

    def absent(self, key: str, what: str, expected: bool = True) -> Absence | None:
        """Absence as proof, in one place: evidence that ``key`` is not in
        this host's registry, or None when that proves nothing — because the
        key (or one of its values) is there, because no complete source that
        would hold it is in the case (:meth:`RegistryView.covers`), or because
        the thing is not ``expected`` in this host's world. A verdict resting
        only on the returned evidence is capped at ``likely``."""
        if not expected or self.registry.key_exists(key):
            return None
        path = self.registry.covers(key)
        if path is None:
            return None
        return Absence(path=path, locator=f"key={key}", ts=None, excerpt=f"{key}: {what}")

    # ---- world --------------------------------------------------------------
    @cached_property
    def build(self) -> BuildInfo:
        """The host's Exchange build and its certainty
        (:func:`analyzer.builds.host_build` on this host's rows)."""
        return host_build(self.part.where(evidence_mask(self.part.table)))

    @cached_property
    def transport_settings(self) -> Any:
        """The effective EdgeTransport.exe.config settings of this host
        (:func:`analyzer.transport_settings.effective_settings`, defaults of
        its Exchange version); None without the file in the case."""
        if not len(self.kind("config")):
            return None
        found = effective_settings(self.kind("config"), version=self.build, host=self.name)
        return found if found.path else None

    @cached_property
    def generation(self) -> Generation:
        """The host's Exchange generation (see :mod:`.world`)."""
        return exchange_generation(self)
