"""Sample cases: committed samples equal the generator's output, and the
analyzer's findings on each equal its expected.json and its golden report.

Golden reports (tests/golden/<scenario>.json) hold the stable part of the
JSON report (no analysis time or absolute paths). After an intended change,
regenerate them with ``EXA_UPDATE_GOLDEN=1 python -m pytest tests/test_samples.py``
and review the diff.
"""
from __future__ import annotations

import filecmp
import json
import os
from pathlib import Path

import pytest

from click.testing import CliRunner

from analyzer.cli import main
from analyzer.report import validate_report
from scenarios import all_scenarios, build

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
GOLDEN = REPO / "tests" / "golden"
SCENARIOS = {s.name: s for s in all_scenarios()}


def _tree(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_scenario_is_committed() -> None:
    committed = {p.name for p in SAMPLES.iterdir() if p.is_dir()} if SAMPLES.is_dir() else set()
    assert committed == set(SCENARIOS), "run `exchange-analyzer make-samples` and commit samples/"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_committed_sample_equals_generator(name: str, tmp_path: Path) -> None:
    fresh = _tree(build(SCENARIOS[name], tmp_path))
    committed = _tree(SAMPLES / name)
    assert sorted(fresh) == sorted(committed)
    for rel, path in fresh.items():
        assert filecmp.cmp(path, committed[rel], shallow=False), f"{name}/{rel} differs"


def stable_report(report: dict) -> dict:
    """The part of a report that must not change between runs or machines."""
    return {
        "hosts": report["case"]["hosts"],
        "inventory": [{k: e[k] for k in ("path", "kind", "status", "rows", "sha256")}
                      for e in report["inventory"]],
        "findings": [{
            "check": f["check"], "host": f["host"], "status": f["status"],
            "severity": f["severity"],
            "causes": [{"id": c["id"], "verdict": c["verdict"],
                        "evidence": [f"{e['path']} {e['locator']}" for e in c["evidence"]]}
                       for c in f["causes"]],
            "evidence": [f"{e['path']} {e['locator']}" for e in f["evidence"]],
            "collect": len(f["collect"]),
        } for f in report["findings"]],
    }


def _short(host: str | None) -> str:
    return (host or "").split(".")[0].upper()


def _expectation_mismatches(expected: dict, report: dict, exit_code: int) -> tuple[list, list]:
    """(failures, open-issue mismatches) between expected.json and a report.
    A scenario marked ``pending`` turns its failures into an expected failure."""
    failures: list[tuple[str, int | None]] = []
    open_issues: list[tuple[str, int | None]] = []
    pending = expected.get("pending")
    into = open_issues if pending else failures
    want_exit = expected.get("exit_code")
    if want_exit is None:
        # README "Command line": 1 a problem, 0 a check decided, 3 no verdict
        # (every sample holds readable files, so never 2).
        found = {f["status"] for f in report["findings"]}
        want_exit = 1 if "problem" in found else 0 if "ok" in found else 3
    if exit_code != want_exit:
        into.append((f"exit code {exit_code}, expected {want_exit}", pending))
    if "hosts" in expected:
        got_hosts = sorted(_short(h) for h in report["case"]["hosts"])
        if got_hosts != sorted(_short(h) for h in expected["hosts"]):
            into.append((f"hosts {report['case']['hosts']}, expected {expected['hosts']}", pending))
    statuses = {e["path"]: e["status"] for e in report["inventory"]}
    for path, status in expected.get("inventory", {}).items():
        if statuses.get(path) != status:
            into.append((f"inventory {path}: {statuses.get(path)}, expected {status}", pending))
    for exp in expected["findings"]:
        got = [f for f in report["findings"] if f["check"] == exp["check"]
               and (exp.get("host") is None or _short(f["host"]) == _short(exp["host"]))]
        ok = any(f["status"] == exp["status"] and (
            exp["top_cause"] is None or
            next((c["id"] for c in f["causes"] if c["verdict"] != "ruled_out"), None) == exp["top_cause"])
            for f in got)
        if not ok:
            summary = [(f["host"], f["status"], [(c["id"], c["verdict"]) for c in f["causes"]]) for f in got]
            where = f" on {exp['host']}" if exp.get("host") else ""
            msg = f"{exp['check']}{where}: expected {exp['status']}/{exp['top_cause']}, got {summary}"
            (open_issues if exp.get("issue") else into).append((msg, exp.get("issue") or pending))
    return failures, open_issues


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_sample_findings(name: str) -> None:
    """`exchange-analyzer analyze --format json` on the sample: the report
    validates, the exit code follows the findings, the expected findings hold."""
    sample = SAMPLES / name
    expected = json.loads((sample / "expected.json").read_text(encoding="utf-8"))
    res = CliRunner().invoke(main, ["analyze", str(sample / "case"), "--format", "json"])
    assert res.exit_code in (0, 1, 3), res.output
    report = json.loads(res.stdout)
    validate_report(report)
    failures, open_issues = _expectation_mismatches(expected, report, res.exit_code)
    assert not failures, "\n".join(m for m, _ in failures)
    if open_issues:
        pytest.xfail("; ".join(f"pending ({i}): {m}" for m, i in open_issues))
    if expected.get("pending"):
        pytest.fail(f"every expectation holds: remove pending ({expected['pending']}) from the scenario")
    golden_path = GOLDEN / f"{name}.json"
    stable = stable_report(report)
    if os.environ.get("EXA_UPDATE_GOLDEN") == "1":
        golden_path.parent.mkdir(parents=True, exist_ok=True)
        golden_path.write_text(json.dumps(stable, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    assert golden_path.exists(), f"no golden report for {name}; run with EXA_UPDATE_GOLDEN=1"
    assert stable == json.loads(golden_path.read_text(encoding="utf-8"))
