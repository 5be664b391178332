"""The batch store: one Parquet dataset per table, partitioned by case.

Layout (``case=<id>`` is a Hive-style partition, so DuckDB, pyarrow and
Spark all see a ``case`` column)::

    STORE/cases/case=<id>/events.parquet      the normalized table
    STORE/cases/case=<id>/findings.parquet    one row per finding
    STORE/cases/case=<id>/causes.parquet      one row per weighed cause
    STORE/cases/case=<id>/inventory.parquet   one row per file
    STORE/cases/case=<id>/report.json         the JSON report (contract v1)
    STORE/cases/case=<id>/meta.json           status, name, source, duration, reason
    STORE/summary.parquet, STORE/summary.csv  one row per case

A case's folder is written under a temporary name and renamed into place in
one step, so a killed batch never leaves a half-written case that a rerun
would take as done. ``<id>`` is the case's content hash: the same archive
under another name is the same case.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .case import Case
from .report import Report
from .table import write_parquet

SUMMARY_COLUMNS = ["case", "name", "source", "status", "hosts", "problem_checks",
                   "top_causes", "inventory_failures", "files", "rows", "duration_s", "reason"]
SUMMARY_STRING_COLUMNS = ["case", "name", "source", "status", "hosts", "problem_checks",
                          "top_causes", "reason"]


def content_hash(path: str | os.PathLike[str]) -> str:
    """Stable id of a case's content: a file's sha256, or for a folder the
    sha256 over its sorted (relative path, file sha256) pairs."""
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.is_symlink()):
            # the name's bytes: a name that is not UTF-8 (a latin-1 tar, a
            # share mounted without utf8) has no UTF-8 encoding
            h.update(os.fsencode(f.relative_to(p).as_posix()) + b"\0")
            h.update(_file_sha(f).encode("ascii") + b"\n")
    else:
        h.update(_file_sha(p).encode("ascii"))
    return h.hexdigest()[:20]


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while buf := fh.read(1 << 20):
            h.update(buf)
    return h.hexdigest()


def findings_rows(case_id: str, report: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    fcols = ["case", "check", "host", "status", "severity", "title", "summary", "top_cause",
             "evidence", "collect"]
    ccols = ["case", "check", "host", "rank", "cause", "verdict", "title", "evidence"]
    frows, crows = [], []
    for f in report["findings"]:
        live = [c for c in f["causes"] if c["verdict"] != "ruled_out"]
        frows.append([case_id, f["check"], f["host"], f["status"], f["severity"], f["title"],
                      f["summary"], live[0]["id"] if live else None,
                      len(f["evidence"]) + sum(len(c["evidence"]) for c in f["causes"]),
                      len(f["collect"])])
        for rank, c in enumerate(f["causes"], 1):
            crows.append([case_id, f["check"], f["host"], rank, c["id"], c["verdict"], c["title"],
                          len(c["evidence"])])
    return (pd.DataFrame(frows, columns=fcols).astype({"evidence": "int64", "collect": "int64"}),
            pd.DataFrame(crows, columns=ccols).astype({"rank": "int64", "evidence": "int64"}))


def inventory_rows(case_id: str, case: Case) -> pd.DataFrame:
    inv = case.inventory_frame()
    inv["warnings"] = inv["warnings"].map(lambda w: "\n".join(w) if w else None)
    inv.insert(0, "case", case_id)
    return inv.astype({"size": "int64", "rows": "int64"})


@dataclass
class Store:
    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        (self.root / "cases").mkdir(parents=True, exist_ok=True)

    def case_dir(self, case_id: str) -> Path:
        return self.root / "cases" / f"case={case_id}"

    def meta(self, case_id: str) -> dict[str, Any] | None:
        p = self.case_dir(case_id) / "meta.json"
        if not p.exists():
            return None
        return json.loads(p.read_text(encoding="utf-8"))

    def is_done(self, case_id: str) -> bool:
        m = self.meta(case_id)
        return bool(m and m.get("status") == "done")

    def _commit(self, case_id: str, staging: Path) -> None:
        final = self.case_dir(case_id)
        if final.exists():
            trash = final.with_name(f".old-{case_id}-{uuid.uuid4().hex[:8]}")
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        staging.rename(final)

    def _staging(self, case_id: str) -> Path:
        d = self.root / "cases" / f".tmp-{case_id}-{uuid.uuid4().hex[:8]}"
        d.mkdir(parents=True)
        return d

    def write_case(self, case_id: str, report: Report, meta: dict[str, Any]) -> None:
        """Write a finished case atomically."""
        staging = self._staging(case_id)
        try:
            write_parquet(report.case.table, staging / "events.parquet")
            rep = report.to_dict()
            findings, causes = findings_rows(case_id, rep)
            findings.to_parquet(staging / "findings.parquet", index=False)
            causes.to_parquet(staging / "causes.parquet", index=False)
            inventory_rows(case_id, report.case).to_parquet(staging / "inventory.parquet", index=False)
            (staging / "report.json").write_text(json.dumps(rep, indent=1, ensure_ascii=False),
                                                 encoding="utf-8")
            (staging / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            self._commit(case_id, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def write_failure(self, case_id: str, meta: dict[str, Any]) -> None:
        staging = self._staging(case_id)
        (staging / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        self._commit(case_id, staging)

    def discard_staging(self, case_id: str) -> None:
        """Remove the staging folders of one case whose worker is known dead
        (killed at its time limit, crashed): safe while other cases are
        being written, unlike :meth:`clean_staging`."""
        for d in (self.root / "cases").glob(f".tmp-{case_id}-*"):
            shutil.rmtree(d, ignore_errors=True)

    def clean_staging(self) -> None:
        """Remove leftovers of a killed batch (never taken as done)."""
        for d in (self.root / "cases").glob(".tmp-*"):
            shutil.rmtree(d, ignore_errors=True)
        for d in (self.root / "cases").glob(".old-*"):
            shutil.rmtree(d, ignore_errors=True)
        for f in self.root.glob(".summary-*"):
            f.unlink(missing_ok=True)

    def metas(self) -> list[dict[str, Any]]:
        out = []
        for d in sorted((self.root / "cases").glob("case=*")):
            p = d / "meta.json"
            if p.exists():
                out.append(json.loads(p.read_text(encoding="utf-8")))
        return out

    def write_summary(self) -> pd.DataFrame:
        rows = []
        for m in self.metas():
            rows.append({k: m.get(k) for k in SUMMARY_COLUMNS})
        df = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
        for col in ("hosts", "problem_checks", "top_causes"):
            df[col] = df[col].map(lambda v: ";".join(v) if isinstance(v, list) else v)
        df = df.sort_values(["name", "case"], kind="stable").reset_index(drop=True)
        # Fixed dtypes whatever the mix of done and failed cases (a failed case
        # has no counts): otherwise a store of only failed cases writes null
        # columns and a mixed one floats, and the DuckDB view changes type.
        df = df.astype({**{c: "string" for c in SUMMARY_STRING_COLUMNS},
                        "inventory_failures": "Int64", "files": "Int64", "rows": "Int64",
                        "duration_s": "float64"})
        tmp = self.root / f".summary-{uuid.uuid4().hex[:8]}"
        df.to_parquet(f"{tmp}.parquet", index=False)
        df.to_csv(f"{tmp}.csv", index=False)
        os.replace(f"{tmp}.parquet", self.root / "summary.parquet")
        os.replace(f"{tmp}.csv", self.root / "summary.csv")
        return df

    # -- querying -----------------------------------------------------------
    VIEWS = ("events", "findings", "causes", "inventory")

    def connect(self):
        """A DuckDB connection with views events, findings, causes,
        inventory (each with a ``case`` column) and summary."""
        import duckdb

        con = duckdb.connect()
        base = (self.root / "cases").as_posix()
        for view in self.VIEWS:
            files = list((self.root / "cases").glob(f"case=*/{view}.parquet"))
            if files:
                con.execute(
                    f"CREATE VIEW {view} AS SELECT * FROM read_parquet("
                    f"'{base}/case=*/{view}.parquet', hive_partitioning=true, union_by_name=true)")
            else:
                con.execute(f"CREATE VIEW {view} AS SELECT NULL::VARCHAR AS \"case\" WHERE false")
        summary = self.root / "summary.parquet"
        if summary.exists():
            con.execute(f"CREATE VIEW summary AS SELECT * FROM read_parquet('{summary.as_posix()}')")
        else:
            con.execute("CREATE VIEW summary AS SELECT NULL::VARCHAR AS \"case\" WHERE false")
        return con

    def sql(self, query: str) -> pd.DataFrame:
        """Run SQL over the store's views; returns a DataFrame."""
        import warnings

        con = self.connect()
        try:
            with warnings.catch_warnings():
                # duckdb's own DataFrame conversion uses a pandas keyword
                # that pandas 3.1 deprecates; not something callers can fix.
                warnings.filterwarnings("ignore", message="The inplace keyword")
                return con.execute(query).df()
        finally:
            con.close()


def open_store(path: str | os.PathLike[str]) -> Store:
    p = Path(path)
    if not (p / "cases").is_dir():
        raise FileNotFoundError(f"not a batch store (no cases/ folder): {p}")
    return Store(p)
