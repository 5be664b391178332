"""Querying a batch store: DuckDB views over the per-case Parquet files
(``events``, ``findings``, ``causes``, ``inventory``, each with the Hive
partition column ``case``; ``summary``), from Python (``open_store(DIR).sql``)
and from the CLI (``exchange-analyzer query STORE "SQL"``).

The store is built once per module by a real local batch over small cases
made in a temporary folder; every expectation is computed from the same
cases analyzed directly.
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from casetexts import RPCDUMP_MISSING, netstat_text
from click.testing import CliRunner

from analyzer.batch import BatchOptions, run_batch
from analyzer.case import load_case
from analyzer.cli import main
from analyzer.report import analyze
from analyzer.store import Store, content_hash, open_store
from analyzer.synth.evt import EvtRecord, write_evt
from analyzer.table import COLUMNS


def _case(folder: Path, ports: list[int], problem: bool, host: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "netstat.txt").write_bytes(netstat_text(ports, pid_base=900).encode("ascii"))
    t0 = datetime(2007, 3, 12, 2, 0, 5, tzinfo=timezone.utc)
    write_evt(folder / "SysEvent.Evt", [EvtRecord(7036, "Service Control Manager",
                                                  t0 + timedelta(minutes=i), computer=host,
                                                  strings=[f"svc{i}", "running"])
                                        for i in range(4)])
    if problem:
        (folder / "rpcdump.txt").write_bytes(RPCDUMP_MISSING.encode("ascii"))
    (folder / "unreadable.bin").write_bytes(b"\x00\x01\x02garbage")
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("storeq")
    inbox = root / "inbox"
    inbox.mkdir()
    problem = _case(root / "src_problem", [135, 25, 6001], True, "EXCH01")
    with zipfile.ZipFile(inbox / "problem.zip", "w") as zf:
        for p in sorted(problem.iterdir()):
            zf.write(p, p.name)
    _case(inbox / "quiet", [135, 443], False, "EXCH02")
    results = run_batch([inbox], root / "store", BatchOptions(jobs=2, timeout_s=300))
    assert all(r.status == "done" for r in results), [(r.name, r.reason) for r in results]
    cases = {"problem.zip": inbox / "problem.zip", "quiet": inbox / "quiet"}
    direct = {}
    for name, path in cases.items():
        case = load_case(path)
        direct[name] = (case, analyze(case).to_dict())
    return {"store": root / "store", "ids": {n: content_hash(p) for n, p in cases.items()},
            "direct": direct, "root": root}


# --------------------------------------------------------------------------
# Python API

def test_events_view_has_case_column_and_table_columns(built) -> None:
    store = open_store(built["store"])
    df = store.sql('select * from events')
    assert "case" in df.columns
    assert set(COLUMNS) <= set(df.columns)
    counts = store.sql('select "case", count(*) as n from events group by 1').set_index("case")["n"]
    for name, (case, _) in built["direct"].items():
        assert counts.get(built["ids"][name], 0) == len(case.table), name
    # The rows are the table's rows: same locators per kind.
    for name, (case, _) in built["direct"].items():
        got = store.sql(f"select kind, path, locator from events where \"case\" = '{built['ids'][name]}' "
                        "order by kind, path, locator")
        want = case.table[["kind", "path", "locator"]].astype(str).sort_values(
            ["kind", "path", "locator"]).reset_index(drop=True)
        assert got.astype(str).values.tolist() == want.values.tolist()


def test_findings_and_causes_views(built) -> None:
    store = open_store(built["store"])
    f = store.sql('select * from findings order by "case", "check"')
    c = store.sql('select * from causes order by "case", "check", rank')
    for name, (_, rep) in built["direct"].items():
        cid = built["ids"][name]
        mine = f[f["case"] == cid]
        assert sorted(mine["check"]) == sorted(x["check"] for x in rep["findings"])
        for finding in rep["findings"]:
            row = mine[mine["check"] == finding["check"]].iloc[0]
            assert row["status"] == finding["status"]
            assert row["severity"] == finding["severity"]
            live = [x["id"] for x in finding["causes"] if x["verdict"] != "ruled_out"]
            assert (row["top_cause"] if isinstance(row["top_cause"], str) else None) == (
                live[0] if live else None)
            ranked = c[(c["case"] == cid) & (c["check"] == finding["check"])]
            assert list(ranked["cause"]) == [x["id"] for x in finding["causes"]]
            assert list(ranked["verdict"]) == [x["verdict"] for x in finding["causes"]]
            assert list(ranked["rank"]) == list(range(1, len(finding["causes"]) + 1))
    problems = store.sql("select s.name, f.\"check\", f.top_cause from findings f "
                         "join summary s using (\"case\") where f.status = 'problem'")
    assert problems.values.tolist() == [["problem.zip", "rpc-port-conflict", "static-port-in-use"]]


def test_inventory_and_summary_views(built) -> None:
    store = open_store(built["store"])
    inv = store.sql('select "case", path, status, rows, sha256 from inventory order by "case", path')
    for name, (case, _) in built["direct"].items():
        mine = inv[inv["case"] == built["ids"][name]]
        want = sorted((e.path, e.status, e.rows, e.sha256) for e in case.inventory)
        got = sorted((r.path, r.status, int(r.rows),
                      r.sha256 if isinstance(r.sha256, str) else None)
                     for r in mine.itertuples())
        assert got == want
    assert {"problem.zip!unreadable.bin", "unreadable.bin"} <= set(inv["path"])
    summary = store.sql("select name, status, files, rows from summary order by name")
    assert summary["name"].tolist() == ["problem.zip", "quiet"]
    assert summary["status"].tolist() == ["done", "done"]
    assert summary["files"].tolist() == [len(built["direct"][n][0].inventory)
                                         for n in ("problem.zip", "quiet")]


def test_sql_returns_dataframe_and_joins_across_views(built) -> None:
    df = open_store(built["store"]).sql(
        "select s.name, count(e.locator) as listeners from summary s "
        "left join events e on e.\"case\" = s.\"case\" and e.kind = 'listener' "
        "group by s.name order by s.name")
    assert isinstance(df, pd.DataFrame)
    want = [int((built["direct"][n][0].table["kind"] == "listener").sum())
            for n in ("problem.zip", "quiet")]
    assert df["listeners"].tolist() == want and want == [3, 2]


def test_empty_store_has_every_view(tmp_path: Path) -> None:
    Store(tmp_path / "empty")
    store = open_store(tmp_path / "empty")
    for view in ("events", "findings", "causes", "inventory", "summary"):
        df = store.sql(f'select * from {view}')
        assert len(df) == 0 and "case" in df.columns, view


def test_open_store_refuses_a_plain_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a batch store"):
        open_store(tmp_path)


# --------------------------------------------------------------------------
# CLI

SQL = ("select s.name, f.\"check\", f.status from findings f join summary s using (\"case\") "
       "where f.status = 'problem' order by 1, 2")


def test_cli_query_csv(built) -> None:
    res = CliRunner().invoke(main, ["query", str(built["store"]), SQL, "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.reader(io.StringIO(res.stdout)))
    assert rows == [["name", "check", "status"], ["problem.zip", "rpc-port-conflict", "problem"]]


def test_cli_query_json(built) -> None:
    res = CliRunner().invoke(main, ["query", str(built["store"]),
                                    "select name, files from summary order by name",
                                    "--format", "json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data == [{"name": n, "files": len(built["direct"][n][0].inventory)}
                    for n in ("problem.zip", "quiet")]


def test_cli_query_table(built) -> None:
    res = CliRunner().invoke(main, ["query", str(built["store"]), SQL])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    header = next(line for line in lines if "name" in line)
    assert "check" in header and "status" in header
    body = [line for line in lines if "problem.zip" in line]
    assert len(body) == 1 and "rpc-port-conflict" in body[0] and "problem" in body[0]


def test_cli_query_not_a_store(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["query", str(tmp_path), "select 1"])
    assert res.exit_code == 2
    assert "not a batch store" in res.output


def test_cli_query_bad_sql(built) -> None:
    res = CliRunner().invoke(main, ["query", str(built["store"]), "selec nonsense frm nowhere"])
    assert res.exit_code == 2
    assert "query failed" in res.output
    res = CliRunner().invoke(main, ["query", str(built["store"]), "select nope from findings"])
    assert res.exit_code == 2
    assert "query failed" in res.output
