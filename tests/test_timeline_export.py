"""Table and timeline exports: the format follows the extension; CSV and
JSONL rows read back (by readers other than the writer) equal the table's
rows; Timesketch's columns are there; --checks-only keeps the cited rows."""
from __future__ import annotations

import csv
import json
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow.csv as pcsv
import pytest
from click.testing import CliRunner

from analyzer import load_case
from analyzer.cli import main
from analyzer.report import analyze
from analyzer.table import COLUMNS, read_parquet
from analyzer.timeline import RENAMED, TIMESKETCH

REPO = Path(__file__).resolve().parents[1]
CASES = [REPO / "samples" / n / "case" for n in (
    "rpc-port-conflict-static-port-in-use", "smtp-mailbox-stuck-nested-zip",
    "mom9986-helper-path-invalid")]


def _records(df: pd.DataFrame) -> list[tuple]:
    """The table's rows as plain values (times as aware datetimes)."""
    out = []
    for row in df.itertuples(index=False):
        vals = []
        for col, v in zip(df.columns, row):
            if v is None or v is pd.NA or v is pd.NaT:
                vals.append(None)
            elif col == "ts":
                vals.append(pd.Timestamp(v).to_pydatetime())
            elif isinstance(v, (int, float)) and col in ("event_id", "qualifiers", "record_id"):
                vals.append(int(v))
            else:
                vals.append(str(v))
        out.append(tuple(vals))
    return out


def _from_text(rows: list[dict], names=COLUMNS) -> list[tuple]:
    """Exported rows (JSON values or CSV text) as the same plain values."""
    out = []
    for r in rows:
        vals = []
        for col in names:
            v = r[RENAMED.get(col, col)]
            if v is None:
                vals.append(None)
            elif col == "ts":
                vals.append(datetime.fromisoformat(v))
            elif col in ("event_id", "qualifiers", "record_id"):
                vals.append(int(v))
            else:
                vals.append(str(v))
        out.append(tuple(vals))
    return out


def _sorted(recs: list[tuple]) -> list[tuple]:
    return sorted(recs, key=lambda r: tuple("" if v is None else str(v) for v in r))


@pytest.mark.parametrize("case_path", CASES, ids=lambda p: p.parent.name)
def test_timeline_csv_and_jsonl_round_trip(case_path: Path, tmp_path: Path) -> None:
    table = load_case(case_path).table
    want = _records(table)
    for ext in ("csv", "jsonl"):
        out = tmp_path / f"timeline.{ext}"
        res = CliRunner().invoke(main, ["timeline", str(case_path), "-o", str(out)])
        assert res.exit_code == 0, res.output
        if ext == "jsonl":
            rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        else:
            # pyarrow's reader tells a null (empty field) from "" (quoted).
            t = pcsv.read_csv(out, convert_options=pcsv.ConvertOptions(
                strings_can_be_null=True, quoted_strings_can_be_null=False,
                column_types={c: "string" for c in ("datetime", "ts", "data", "value", "key",
                                                    "event_message", "message", "user", "category")}))
            rows = t.to_pylist()
            with open(out, newline="", encoding="utf-8") as fh:  # the standard library agrees
                assert sum(1 for _ in csv.DictReader(fh)) == len(table)
        assert len(rows) == len(table)
        assert list(rows[0])[:4] == list(TIMESKETCH)
        assert _sorted(_from_text(rows)) == _sorted(want)
        # Timesketch: a message for every row, an ISO time for every timed row.
        assert all(r["message"] is not None for r in rows)
        timed = [r for r in rows if r["ts"] is not None]
        assert all(r["datetime"] == r["ts"] and r["timestamp_desc"] != "No time" for r in timed)
        stamps = [datetime.fromisoformat(r["datetime"]) for r in timed]
        assert stamps == sorted(stamps)
        assert all(int(r["timestamp"]) == int(datetime.fromisoformat(r["datetime"]).timestamp() * 1e6)
                   for r in timed)


def test_parse_chooses_the_format_from_the_extension(tmp_path: Path) -> None:
    case_path = CASES[0]
    table = load_case(case_path).table
    for ext in ("parquet", "csv", "jsonl"):
        out = tmp_path / f"events.{ext}"
        res = CliRunner().invoke(main, ["parse", str(case_path), "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert (tmp_path / "events.inventory.json").exists()
        if ext == "parquet":
            assert out.read_bytes()[:4] == b"PAR1"
            assert _records(read_parquet(out)) == _records(table)
        elif ext == "jsonl":
            rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
            assert list(rows[0]) == list(COLUMNS)
            assert _from_text([{RENAMED.get(k, k): v for k, v in r.items()} for r in rows]) \
                == _records(table)
        else:
            assert out.read_text(encoding="utf-8").splitlines()[0].replace('"', "").split(",") \
                == list(COLUMNS)


@pytest.mark.parametrize("cmd", ["parse", "timeline"])
def test_unknown_extension_is_refused(cmd: str, tmp_path: Path) -> None:
    out = tmp_path / "events.xlsx"
    res = CliRunner().invoke(main, [cmd, str(CASES[0]), "-o", str(out)])
    assert res.exit_code == 2
    assert "events.xlsx" in res.output and ".csv" in res.output
    assert not out.exists()


def test_checks_only_keeps_the_cited_rows(tmp_path: Path) -> None:
    case_path = CASES[1]
    report = analyze(case_path).to_dict()
    cited = {(e["path"], e["locator"]) for f in report["findings"]
             for e in f["evidence"] + [x for c in f["causes"] for x in c["evidence"]]}
    out = tmp_path / "cited.jsonl"
    res = CliRunner().invoke(main, ["timeline", str(case_path), "-o", str(out), "--checks-only"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    got = {(r["path"], r["locator"]) for r in rows}
    # Every cited record that is a table row (a finding may cite a whole
    # file, e.g. an rpcdump's protocol sequence) and nothing else.
    table = load_case(case_path).table
    rows_keys = set(zip(table["path"].astype(str), table["locator"].astype(str)))
    assert got == cited & rows_keys and got
    assert len(rows) == sum(1 for k in zip(table["path"].astype(str), table["locator"].astype(str))
                            if k in cited)
