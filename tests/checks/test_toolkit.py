"""The checks toolkit: one host policy, absence as proof in one place,
applicability, the finding builder, check-declared registry subtrees, and
the "add a check" guide of CONTRIBUTING.md, run as written."""
from __future__ import annotations

import re
import sys
import types
from datetime import datetime, timezone
from pathlib import Path

import pytest

from analyzer import knowledge
from analyzer.case import Case, InventoryEntry
from analyzer.checks import registered
from analyzer.checks.toolkit import (Absence, CauseTable, FindingParts, Host, build_finding, confirmed,
                                     likely, possible, ruled_out)
from analyzer.findings import Evidence
from analyzer.query import split_by_host
from analyzer.registry import declared_paths, in_targeted_scope
from analyzer.sources import Options
from analyzer.table import rows_to_frame

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2008, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
_n = 0


def row(**kw) -> dict:
    global _n
    _n += 1
    base = dict(kind="event", source="evt", path="AppEvent.Evt", locator=f"record={_n}", ts=T0,
                ts_source="utc", provider="MSExchangeTransport", event_id=1000, level="information")
    base.update(kw)
    return base


def reg(key: str, name: str | None = None, value: str = "", path: str = "config/SOFTWARE",
        source: str = "hive", host: str | None = None) -> dict:
    r = dict(kind="registry_key" if name is None else "registry_value", source=source, path=path,
             locator=f"key={key}", key=key, host=host)
    if name is not None:
        r.update(value_name=name, value_type="REG_SZ", value=value)
    return r


def case(rows: list[dict], inventory=(), registry: str = "targeted") -> Case:
    return Case("t", "t", list(inventory), rows_to_frame(rows), [], Options(registry=registry))


def host_of(c: Case) -> Host:
    (part,) = c.per_host()
    return Host(c, part)


# ------------------------------------------------------------------ hosts
def test_hostless_rows_go_to_the_only_machine_and_ip_rows_join_it() -> None:
    df = rows_to_frame([row(host="EXCH01.contoso.local"), row(host="EXCH01"), row(host="10.0.0.5"),
                        reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup")])
    (part,) = split_by_host(df)
    assert part.name == "EXCH01.contoso.local" and part.key == "EXCH01"
    assert len(part.rows) == 4 and not part.shared


def test_hostless_rows_go_to_the_machine_the_system_hive_names() -> None:
    sysrow = reg("HKLM\\SYSTEM\\ControlSet001\\Control\\ComputerName\\ComputerName", "ComputerName",
                 "EXCH02", path="config/SYSTEM", host="EXCH02")
    df = rows_to_frame([row(host="EXCH01"), row(host="EXCH02"), sysrow, reg("HKLM\\SOFTWARE\\X")])
    parts = {p.key: p for p in split_by_host(df)}
    assert len(parts["EXCH01"].rows) == 1 and len(parts["EXCH02"].rows) == 3
    assert not parts["EXCH01"].shared and not parts["EXCH02"].shared


def test_unclaimed_hostless_rows_are_shared_and_prove_no_absence() -> None:
    rows = [row(host="EXCH01"), row(host="EXCH02"), reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup")]
    c = case(rows)
    parts = c.per_host()
    assert [p.key for p in parts] == ["EXCH01", "EXCH02"] and all(p.shared for p in parts)
    h = Host(c, parts[0])
    assert h.absent("HKLM\\SOFTWARE\\Microsoft\\ExMPLS", "absent") is None


# --------------------------------------------------------------- absence
EXMPLS = "HKLM\\SOFTWARE\\Microsoft\\ExMPLS"


def test_a_sound_hive_proves_a_declared_key_absent() -> None:
    h = host_of(case([reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup")]))
    gone = h.absent(EXMPLS, "key absent")
    assert isinstance(gone, Absence) and gone.path == "config/SOFTWARE" and gone.locator == f"key={EXMPLS}"
    assert h.absent(EXMPLS, "key absent", expected=False) is None   # not expected in this world
    assert h.absent("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup", "x") is None  # present


def test_targeted_load_proves_nothing_outside_the_declared_subtrees() -> None:
    undeclared = "HKLM\\SOFTWARE\\Contoso\\NotDeclared"
    assert not in_targeted_scope(undeclared) and in_targeted_scope(EXMPLS)
    rows = [reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup")]
    assert host_of(case(rows)).absent(undeclared, "absent") is None
    assert host_of(case(rows, registry="full")).absent(undeclared, "absent") is not None


def test_damaged_hive_and_unrelated_export_prove_nothing() -> None:
    rows = [reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup")]
    inv = [InventoryEntry("config/SOFTWARE", "regf", 4096, None, "partial")]
    assert host_of(case(rows, inv)).absent(EXMPLS, "absent") is None
    export = [reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup", source="regfile", path="x.reg")]
    assert host_of(case(export)).absent(EXMPLS, "absent") is None
    parent = [reg("HKLM\\SOFTWARE\\Microsoft", source="regfile", path="ms.reg")]
    assert host_of(case(parent)).absent(EXMPLS, "absent").path == "ms.reg"


def test_a_verdict_resting_only_on_absence_is_at_most_likely() -> None:
    table = CauseTable()
    gone = Absence("config/SOFTWARE", f"key={EXMPLS}", None, "absent")
    seen = Evidence("AppEvent.Evt", "record=1", None, "9987")

    @table("only-absent", "Only absent")
    def _a(f):
        return confirmed("The key is missing.", gone)

    @table("corroborated", "Absent and seen")
    def _b(f):
        return confirmed("The key is missing and 9987 says so.", gone, seen, seen)

    a, b = table.weigh(object())
    assert a.verdict == "likely" and "absence" in a.explanation
    assert b.verdict == "confirmed" and len(b.evidence) == 2   # cited once


# ----------------------------------------------------------------- world
def test_exchange_generation_from_the_registry(monkeypatch) -> None:
    """The fallback used when the build function cannot tell."""
    from analyzer.checks.toolkit import world
    monkeypatch.setattr(world, "_from_builds", lambda rows: None)
    h = host_of(case([reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\v8.0\\HubTransportRole")]))
    assert h.generation.generation == "2007+" and h.generation.product == "Exchange 2007"
    h = host_of(case([reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup", "ServicePackBuild", "7638")]))
    assert h.generation.generation == "2000/2003"
    both = [reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\v8.0"),
            reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup", "ServicePackBuild", "7638")]
    assert host_of(case(both)).generation.generation is None   # conflicting: unknown


def test_exchange_generation_from_the_build_function() -> None:
    h = host_of(case([reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup", "ServicePackBuild", "7638")]))
    assert h.generation.generation == "2000/2003" and "2003" in (h.generation.product or "")


# --------------------------------------------------------------- finding
class _Check:
    id, title = "t-check", "T"

    def reference_list(self):
        return ["KB 1"]


def test_finding_builder_ranks_dedupes_and_never_says_ok_undecided() -> None:
    table = CauseTable()
    e = Evidence("a", "line=1", None, "x")

    @table("b", "B", remediation=lambda f: ["fix b", "verify"])
    def _b(f):
        return possible("maybe", e)   # cites the record the better cause cites

    @table("a", "A", remediation=lambda f: ["fix a", "verify"])
    def _a(f):
        return likely("probably", e)

    causes = table.weigh(object())
    f = build_finding(_Check(), "H", FindingParts(summary="s", causes=causes, evidence=[e, e],
                                                   collect=["c", "c"]))
    assert f.status == "problem" and f.severity == "error"
    assert [c.id for c in f.causes] == ["a", "b"]
    assert len(f.causes[0].evidence) == 1 and f.causes[1].evidence == []   # cited once per finding
    assert len(f.evidence) == 1 and f.collect == ["c"] and f.remediation == ["fix a", "verify"]
    table2 = CauseTable()

    @table2("x", "X")
    def _x(f):
        return ruled_out("no")
    assert build_finding(_Check(), "H", FindingParts("s", table2.weigh(None))).status == "inconclusive"
    assert build_finding(_Check(), "H", FindingParts("s", table2.weigh(None), decided=True)).status == "ok"


# ------------------------------------------------------- registry subtrees
def test_check_declared_subtrees_are_loaded_and_not_repeated() -> None:
    merged = declared_paths()
    soft = {e["path"].lower() for e in merged["SOFTWARE"]}
    system = {e["path"].lower() for e in merged["SYSTEM"]}
    assert "microsoft\\exmpls" in soft and "classes\\clsid\\{94a6dcd0-b6f5-40e8-8c9d-cee2c7796380}" in soft
    assert "controlset???\\services\\msexchange*" in system
    shared = {e["path"].lower() for v in (knowledge.load("registry_paths") or {}).values() for e in v or []}
    for check in registered():
        for spec in getattr(check, "registry_keys", ()):
            rel = spec.path.split("\\", 2)[-1].lower().replace("currentcontrolset", "controlset???")
            assert rel not in shared, f"{check.id}: {spec.path} repeated in registry_paths.yaml"


# ------------------------------------------------------------ the guide
@pytest.fixture(scope="module")
def guide():
    """The skeleton of CONTRIBUTING.md as a module of analyzer.checks (not
    registered: the check list stays the real one)."""
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "from . import register\n" in code
    code = code.replace("from . import register\n", "register = lambda cls: cls  # not registered\n")
    name = "analyzer.checks._guide_example"
    mod = types.ModuleType(name)
    mod.__package__ = "analyzer.checks"
    sys.modules[name] = mod
    try:
        exec(compile(code, "CONTRIBUTING.md", "exec"), mod.__dict__)
        yield mod.MyCheck()
    finally:
        del sys.modules[name]


def test_guide_check_finds_its_cause(guide) -> None:
    rows = [row(host="HUB01", channel="Application", event_id=15004),
            reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\v8.0\\HubTransportRole")]
    (f,) = guide.run(case(rows))
    assert f.status == "problem" and f.top_cause.id == "queue-disk-full"
    assert f.top_cause.verdict == "confirmed" and f.host == "HUB01"


def test_guide_check_is_not_applicable_elsewhere(guide) -> None:
    rows = [row(host="EXCH01", channel="Application"),
            reg("HKLM\\SOFTWARE\\Microsoft\\Exchange\\Setup", "ServicePackBuild", "7638")]
    (f,) = guide.run(case(rows))
    assert f.status == "not_applicable" and "back pressure does not exist" in f.summary
    (f,) = guide.run(case([reg("HKLM\\SOFTWARE\\X")]))
    assert f.status == "not_applicable" and "kinds" in f.summary


def test_guide_check_with_unknown_world_is_never_ok_or_confirmed(guide) -> None:
    (f,) = guide.run(case([row(host="HUB01", channel="Application")]))
    assert f.status == "inconclusive"
