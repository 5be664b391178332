"""Batch engine (analyzer/batch.py) and its store (analyzer/store.py).

What is pinned here: resumability by content hash (a rerun skips, --force
reruns, the same archive under another name is the same case), failure
isolation (a parser that raises, a worker that crashes, a case over its time
or memory limit: recorded as failed with the reason while the other cases
finish), atomic commits (leftover staging folders of a killed run are never
taken as done), the summary table, the rules that turn inputs into cases, and
the dask engine on a real LocalCluster producing the same store as the local
engine.

Cases are built in tmp_path from small text files, tiny .evt files
(analyzer.synth.evt) and zips. The failure cases use test-only sources
registered in this process: the local engine forks its workers, so they
inherit the registration (the dask engine starts fresh interpreters, which do
not, so the dask comparison uses only real formats).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from casetexts import RPCDUMP_MISSING, netstat_text

from analyzer import sources
from analyzer.batch import BatchOptions, discover_cases, run_batch
from analyzer.case import load_case
from analyzer.report import analyze
from analyzer.sources import Source
from analyzer.store import SUMMARY_COLUMNS, Store, content_hash, open_store
from analyzer.synth.evt import EvtRecord, write_evt
from analyzer.table import read_parquet, validate

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------
# case builders

def evt_file(path: Path, host: str, count: int) -> None:
    t0 = datetime(2007, 3, 12, 2, 0, 5, tzinfo=timezone.utc)
    write_evt(path, [EvtRecord(7036, "Service Control Manager", t0 + timedelta(minutes=i),
                               computer=host, strings=[f"Service {i}", "running"])
                     for i in range(count)])


def make_case(folder: Path, ports: list[int], host: str = "EXCH01", evt: int = 3,
              problem: bool = False) -> Path:
    """A small case folder: netstat output, a tiny System .evt, optionally
    the rpcdump listing that makes rpc-port-conflict report a problem."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "netstat.txt").write_bytes(netstat_text(ports).encode("ascii"))
    evt_file(folder / "SysEvent.Evt", host, evt)
    if problem:
        (folder / "rpcdump.txt").write_bytes(RPCDUMP_MISSING.encode("ascii"))
    return folder


def zip_case(folder: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return dest


def by_name(results) -> dict[str, object]:
    return {r.name: r for r in results}


# --------------------------------------------------------------------------
# test-only sources (inherited by forked workers)

class _TestSource(Source):
    kind = "test"
    description = "test-only source"
    magic = b""

    def sniff(self, head: bytes, name: str) -> int:
        return 100 if head.startswith(self.magic) else 0


class BoomSource(_TestSource):
    """Its parser raises: the file must become failed, the case still done."""
    name = "exa-test-boom"
    magic = b"EXA-TEST-BOOM"

    def parse(self, ctx):
        yield {"kind": "event", "locator": "line=1", "message": "before the crash"}
        raise RuntimeError("parser exploded")


class AbortSource(_TestSource):
    """Kills its own worker the way a crashing native parser would."""
    name = "exa-test-abort"
    magic = b"EXA-TEST-ABORT"

    def parse(self, ctx):
        os.kill(os.getpid(), signal.SIGKILL)
        yield {}


class SlowSource(_TestSource):
    """Never finishes in time."""
    name = "exa-test-slow"
    magic = b"EXA-TEST-SLOW"

    def parse(self, ctx):
        time.sleep(300)
        yield {}


class HogSource(_TestSource):
    """Asks for more memory than the case's limit (size given in the file)."""
    name = "exa-test-hog"
    magic = b"EXA-TEST-HOG"

    def parse(self, ctx):
        size = int(ctx.fs_path.read_bytes().split()[1])
        buf = bytearray(size)
        yield {"kind": "event", "locator": "line=1", "message": str(len(buf))}


class HostSource(_TestSource):
    """One event row for the host named in the file (for the summary's hosts)."""
    name = "exa-test-host"
    magic = b"EXA-TEST-HOST"

    def parse(self, ctx):
        for n, host in enumerate(ctx.fs_path.read_text().split()[1:], 1):
            yield {"kind": "event", "host": host, "locator": f"word={n}", "provider": "Test",
                   "event_id": n, "level": "information"}


TEST_SOURCES = (BoomSource, AbortSource, SlowSource, HogSource, HostSource)


@pytest.fixture
def test_sources():
    sources.registered()  # load the real ones first (registration order)
    for cls in TEST_SOURCES:
        sources.register(cls)
    try:
        yield
    finally:
        for cls in TEST_SOURCES:
            sources._REGISTRY.pop(cls.name, None)


def marker_case(folder: Path, text: str, ports: tuple[int, ...] = (135,)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "marker.txt").write_text(text)
    (folder / "netstat.txt").write_bytes(netstat_text(list(ports)).encode("ascii"))
    return folder


def opts(**kw) -> BatchOptions:
    kw.setdefault("jobs", 2)
    kw.setdefault("timeout_s", 120.0)
    return BatchOptions(**kw)


# --------------------------------------------------------------------------
# discover_cases

def test_discover_cases_rules(tmp_path: Path) -> None:
    # A folder of archives (and case folders beside them) is a folder of cases.
    many = tmp_path / "inbox"
    many.mkdir()
    a = zip_case(make_case(tmp_path / "src_a", [135]), many / "a.zip")
    b = make_case(many / "b_folder", [25])
    (many / ".DS_Store").write_text("hidden files are ignored")
    assert discover_cases([many]) == [a, b]

    # A folder with loose files is one case, even if it also holds an archive.
    single = make_case(tmp_path / "single", [135])
    shutil.copy(a, single / "nested.zip")
    assert discover_cases([single]) == [single]

    # A folder of folders only (no archive) is one case: its subfolders are
    # the customer's own layout (Logs/, Registry/), not separate cases.
    layout = tmp_path / "layout"
    make_case(layout / "Logs", [135])
    make_case(layout / "Registry", [25])
    assert discover_cases([layout]) == [layout]

    # An archive given directly is a case; a plain file is a one-file case.
    txt = tmp_path / "netstat_only.txt"
    txt.write_text(netstat_text([135]))
    assert discover_cases([a, txt]) == [a, txt]

    with pytest.raises(FileNotFoundError):
        discover_cases([tmp_path / "missing"])


def test_content_hash_folder_vs_archive(tmp_path: Path) -> None:
    c = make_case(tmp_path / "c", [135, 25])
    h1 = content_hash(c)
    # Same content elsewhere under another name: same id.
    shutil.copytree(c, tmp_path / "copy")
    assert content_hash(tmp_path / "copy") == h1
    # A renamed member changes the id (paths are part of a folder's content).
    (tmp_path / "copy" / "netstat.txt").rename(tmp_path / "copy" / "netstat2.txt")
    assert content_hash(tmp_path / "copy") != h1
    # A changed byte changes the id.
    with open(c / "netstat.txt", "ab") as fh:
        fh.write(b"\r\n")
    assert content_hash(c) != h1
    z = zip_case(c, tmp_path / "c.zip")
    shutil.copy(z, tmp_path / "renamed.zip")
    assert content_hash(z) == content_hash(tmp_path / "renamed.zip")


# --------------------------------------------------------------------------
# resumability

def test_resumable_skip_force_and_renamed_archive(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    zip_case(make_case(tmp_path / "src1", [135, 25], host="EXCH01"), inbox / "case1.zip")
    zip_case(make_case(tmp_path / "src2", [135, 443], host="EXCH02"), inbox / "case2.zip")

    first = by_name(run_batch([inbox], store_dir, opts()))
    assert {n: r.status for n, r in first.items()} == {"case1.zip": "done", "case2.zip": "done"}
    store = Store(store_dir)
    ids = {n: r.case for n, r in first.items()}
    assert ids["case1.zip"] == content_hash(inbox / "case1.zip")
    metas = {n: (store.case_dir(cid) / "meta.json").read_bytes() for n, cid in ids.items()}

    # Second run: nothing to do, nothing rewritten.
    second = by_name(run_batch([inbox], store_dir, opts()))
    assert {n: (r.status, r.reason) for n, r in second.items()} == {
        "case1.zip": ("skipped", "already in the store"),
        "case2.zip": ("skipped", "already in the store")}
    assert {n: (store.case_dir(cid) / "meta.json").read_bytes()
            for n, cid in ids.items()} == metas

    # --force reruns every case (fresh meta with a new duration/time).
    forced = by_name(run_batch([inbox], store_dir, opts(force=True)))
    assert {n: r.status for n, r in forced.items()} == {"case1.zip": "done", "case2.zip": "done"}
    assert sorted(p.name for p in (store_dir / "cases").iterdir()) == sorted(
        f"case={cid}" for cid in ids.values())

    # The same archive under another name is the same case: skipped.
    renamed = tmp_path / "other" / "ticket-4711.zip"
    renamed.parent.mkdir()
    shutil.copy(inbox / "case1.zip", renamed)
    again = run_batch([renamed], store_dir, opts())
    assert [(r.status, r.case, r.reason) for r in again] == [
        ("skipped", ids["case1.zip"], "already in the store")]

    # Both names in one fresh run: analyzed once, the second is a duplicate.
    fresh = by_name(run_batch([inbox / "case1.zip", renamed], tmp_path / "store2", opts()))
    assert fresh["case1.zip"].status == "done"
    assert (fresh["ticket-4711.zip"].status, fresh["ticket-4711.zip"].reason) == (
        "skipped", "duplicate input")
    assert len(open_store(tmp_path / "store2").sql("select * from summary")) == 1

    # Changed content is a new case, the old one stays.
    make_case(tmp_path / "src1", [135, 25, 993], host="EXCH01")
    zip_case(tmp_path / "src1", inbox / "case1.zip")
    third = by_name(run_batch([inbox], store_dir, opts()))
    assert third["case1.zip"].status == "done" and third["case1.zip"].case != ids["case1.zip"]
    assert third["case2.zip"].status == "skipped"
    assert len(open_store(store_dir).sql("select * from summary")) == 3


def test_failed_case_is_retried_on_the_next_run(tmp_path: Path, test_sources) -> None:
    store_dir = tmp_path / "store"
    bad = marker_case(tmp_path / "bad", "EXA-TEST-ABORT")
    first = run_batch([bad], store_dir, opts())
    assert first[0].status == "failed"
    # A failure is recorded but is not "done": the next run tries again.
    assert Store(store_dir).meta(first[0].case)["status"] == "failed"
    second = run_batch([bad], store_dir, opts())
    assert (second[0].status, second[0].case) == ("failed", first[0].case)


# --------------------------------------------------------------------------
# failure isolation

def test_parser_error_crash_and_good_cases(tmp_path: Path, test_sources) -> None:
    good = make_case(tmp_path / "good", [135, 25])
    boom = marker_case(tmp_path / "boom", "EXA-TEST-BOOM")
    abort = marker_case(tmp_path / "abort", "EXA-TEST-ABORT")
    good2 = make_case(tmp_path / "good2", [135, 80], host="EXCH09")
    res = by_name(run_batch([good, boom, abort, good2], tmp_path / "store", opts()))

    assert {n: r.status for n, r in res.items()} == {
        "good": "done", "boom": "done", "abort": "failed", "good2": "done"}
    # A worker killed by a signal (a native crash, the OOM killer) names it.
    assert "worker died" in res["abort"].reason and "SIGKILL" in res["abort"].reason

    store = open_store(tmp_path / "store")
    # The raising parser only cost its own file: the row it yielded before
    # raising is kept, the file is failed/partial with the error.
    inv = store.sql("select path, status, detail, rows from inventory "
                    f"where \"case\" = '{res['boom'].case}' order by path")
    marker = inv[inv.path == "marker.txt"].iloc[0]
    assert marker.status == "partial" and "RuntimeError: parser exploded" in marker.detail
    assert marker.rows == 1
    assert (inv[inv.path == "netstat.txt"].status == "parsed").all()

    summary = store.sql("select name, status, inventory_failures, reason from summary order by name")
    row = summary.set_index("name")
    assert row.loc["boom", "inventory_failures"] == 1
    assert row.loc["good", "inventory_failures"] == 0
    assert row.loc["abort", "status"] == "failed" and "SIGKILL" in row.loc["abort", "reason"]
    assert pd.isna(row.loc["good", "reason"])
    # The failed case has a meta.json but no tables.
    adir = Store(tmp_path / "store").case_dir(res["abort"].case)
    assert sorted(p.name for p in adir.iterdir()) == ["meta.json"]


def test_time_limit(tmp_path: Path, test_sources) -> None:
    slow = marker_case(tmp_path / "slow", "EXA-TEST-SLOW")
    good = make_case(tmp_path / "good", [135])
    started = time.monotonic()
    res = by_name(run_batch([slow, good], tmp_path / "store", opts(timeout_s=6)))
    assert time.monotonic() - started < 120  # the 300 s sleeper was killed, not awaited
    assert res["slow"].status == "failed"
    assert res["slow"].reason == "time limit of 6 s exceeded"
    assert res["good"].status == "done"
    meta = Store(tmp_path / "store").meta(res["slow"].case)
    assert meta["status"] == "failed" and meta["reason"] == "time limit of 6 s exceeded"


def test_memory_limit(tmp_path: Path, test_sources) -> None:
    psutil = pytest.importorskip("psutil")
    # RLIMIT_AS caps address space; a forked worker starts with this
    # process's mappings, so the limit is set relative to them.
    base_mb = psutil.Process().memory_info().vms >> 20
    limit_mb = base_mb + 2048
    hog = tmp_path / "hog"
    hog.mkdir()
    (hog / "marker.txt").write_text(f"EXA-TEST-HOG {(limit_mb + 1024) << 20}")
    good = make_case(tmp_path / "good", [135, 25])
    res = by_name(run_batch([hog, good], tmp_path / "store", opts(memory_mb=limit_mb)))
    assert res["hog"].status == "failed"
    assert res["hog"].reason.startswith(f"memory limit of {limit_mb} MiB exceeded")
    assert "marker.txt" in res["hog"].reason
    assert res["good"].status == "done"
    summary = pq.read_table(tmp_path / "store" / "summary.parquet").to_pandas().set_index("name")
    assert summary.loc["hog", "status"] == "failed"
    assert summary.loc["good", "status"] == "done"


# --------------------------------------------------------------------------
# atomic writes

def test_leftover_staging_is_never_done_and_is_cleaned(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    case = make_case(tmp_path / "c", [135, 25])
    cid = content_hash(case)
    cases_dir = store_dir / "cases"
    cases_dir.mkdir(parents=True)
    # What a run killed between writing and renaming leaves behind: a staging
    # folder complete down to a meta.json saying "done".
    staging = cases_dir / f".tmp-{cid}-0badc0de"
    staging.mkdir()
    (staging / "events.parquet").write_bytes(b"PAR1 half-written")
    (staging / "meta.json").write_text(json.dumps({"case": cid, "status": "done"}))
    old = cases_dir / f".old-{cid}-12345678"
    old.mkdir()
    (old / "meta.json").write_text("{}")
    (store_dir / ".summary-0badc0de.parquet").write_bytes(b"half")

    other = cases_dir / ".tmp-ffffffffffffffffffff-00000000"
    other.mkdir()

    store = Store(store_dir)
    assert not store.is_done(cid)
    # Staging folders are not partitions: the views do not see them.
    assert len(store.sql("select * from events")) == 0
    # Discarding a dead worker's staging touches only that case.
    store.discard_staging("ffffffffffffffffffff")
    assert not other.exists() and staging.exists()

    res = run_batch([case], store_dir, opts())
    assert [(r.status, r.case) for r in res] == [("done", cid)]
    assert sorted(p.name for p in cases_dir.iterdir()) == [f"case={cid}"]
    assert not list(store_dir.glob(".summary-*"))
    assert store.is_done(cid)
    events = read_parquet(store.case_dir(cid) / "events.parquet")
    validate(events)
    assert len(events) == len(load_case(case).table)


def test_killed_batch_leaves_no_case_behind(tmp_path: Path) -> None:
    """Kill a real batch (parent and worker) mid-case; the rerun redoes it."""
    store_dir = tmp_path / "store"
    slow = marker_case(tmp_path / "slow", "EXA-TEST-SLOW")
    quick = make_case(tmp_path / "quick", [135])
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from analyzer import sources
        from test_batch import SlowSource
        sources.registered(); sources.register(SlowSource)
        from analyzer.batch import BatchOptions, run_batch
        run_batch([{str(quick)!r}, {str(slow)!r}], {str(store_dir)!r},
                  BatchOptions(jobs=1, timeout_s=600),
                  progress=lambda r, d, t: print(r.status, r.name, flush=True))
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()  # the quick case is done, the slow one is running
        assert line.split() == ["done", "quick"], proc.stderr.read() if not line else line
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    store = Store(store_dir)
    assert store.is_done(content_hash(quick))
    assert not store.is_done(content_hash(slow))
    assert not store.case_dir(content_hash(slow)).exists()

    # Rerun here, where the slow source is not registered: the marker file is
    # then plain text and the case finishes; the quick case is skipped.
    res = by_name(run_batch([quick, slow], store_dir, opts()))
    assert (res["quick"].status, res["slow"].status) == ("skipped", "done")
    assert not list((store_dir / "cases").glob(".tmp-*"))


# --------------------------------------------------------------------------
# summary

def test_summary_columns_and_values(tmp_path: Path, test_sources) -> None:
    problem = make_case(tmp_path / "problem", [135, 25], problem=True)
    hosts = marker_case(tmp_path / "hosts", "EXA-TEST-HOST EXCH02 EXCH01 EXCH02")
    boom = marker_case(tmp_path / "boom", "EXA-TEST-BOOM")
    abort = marker_case(tmp_path / "abort", "EXA-TEST-ABORT")
    zipped = zip_case(make_case(tmp_path / "zsrc", [135]), tmp_path / "zipped.zip")
    run_batch([problem, hosts, boom, abort, zipped], tmp_path / "store", opts())

    pq_df = pq.read_table(tmp_path / "store" / "summary.parquet").to_pandas()
    csv_df = pd.read_csv(tmp_path / "store" / "summary.csv", keep_default_na=False, dtype=str)
    assert list(pq_df.columns) == SUMMARY_COLUMNS
    assert list(csv_df.columns) == SUMMARY_COLUMNS
    assert list(pq_df["name"]) == ["abort", "boom", "hosts", "problem", "zipped.zip"]
    s = pq_df.set_index("name")

    # Every value of a done case equals what analyzing the case directly gives.
    for name, path in [("problem", problem), ("hosts", hosts), ("boom", boom),
                       ("zipped.zip", zipped)]:
        case = load_case(path)
        rep = analyze(case).to_dict()
        problems = sorted({f["check"] for f in rep["findings"] if f["status"] == "problem"})
        row = s.loc[name]
        assert row["case"] == content_hash(path)
        assert row["source"] == str(path)
        assert row["status"] == "done"
        assert row["hosts"] == ";".join(case.hosts)
        assert row["problem_checks"] == ";".join(problems)
        assert row["files"] == len(case.inventory)
        assert row["rows"] == len(case.table)
        assert row["inventory_failures"] == sum(
            e.status in ("failed", "partial", "rejected") for e in case.inventory)
        assert row["duration_s"] > 0
        if name == "hosts":  # a done case's reason is a warning about merged machines
            assert row["reason"] == "the case spans 2 hosts (EXCH01, EXCH02)"
        else:
            assert pd.isna(row["reason"])

    assert s.loc["hosts", "hosts"] == "EXCH01;EXCH02"
    assert s.loc["problem", "problem_checks"] == "rpc-port-conflict"
    assert s.loc["problem", "top_causes"] == "static-port-in-use"
    assert s.loc["zipped.zip", "problem_checks"] == ""
    assert s.loc["boom", "inventory_failures"] == 1
    # zip + its 2 members (netstat, .evt)
    assert s.loc["zipped.zip", "files"] == 3
    a = s.loc["abort"]
    assert a["status"] == "failed" and "SIGKILL" in a["reason"]
    assert pd.isna(a["files"]) and pd.isna(a["rows"]) and pd.isna(a["hosts"])

    # Fixed types whatever the mix of done and failed cases.
    schema = pq.read_schema(tmp_path / "store" / "summary.parquet")
    assert {n: str(schema.field(n).type) for n in ("files", "rows", "inventory_failures",
                                                   "duration_s")} == {
        "files": "int64", "rows": "int64", "inventory_failures": "int64", "duration_s": "double"}

    # The CSV says the same as the Parquet file (CSV cannot tell an empty
    # list, "", from a failed case's null: both are an empty field).
    pq_cmp = pq_df.astype({c: object for c in pq_df.columns}).where(pq_df.notna(), None)
    csv_cmp = csv_df.astype({c: object for c in csv_df.columns}).where(csv_df.notna(), None)
    for col in SUMMARY_COLUMNS:
        left = [None if v is None or v == "" else str(v) for v in pq_cmp[col]]
        right = [None if v is None or v == "" else str(v) for v in csv_cmp[col]]
        assert left == right, col


def test_summary_of_only_failed_cases(tmp_path: Path, test_sources) -> None:
    abort = marker_case(tmp_path / "abort", "EXA-TEST-ABORT")
    run_batch([abort], tmp_path / "store", opts())
    df = open_store(tmp_path / "store").sql("select status, files, rows from summary")
    assert list(df["status"]) == ["failed"]
    schema = pq.read_schema(tmp_path / "store" / "summary.parquet")
    assert str(schema.field("rows").type) == "int64"
    assert str(schema.field("problem_checks").type) in ("string", "large_string")


def test_progress_callback_counts(tmp_path: Path) -> None:
    a = make_case(tmp_path / "a", [135])
    b = make_case(tmp_path / "b", [25])
    run_batch([a], tmp_path / "store", opts())
    seen: list[tuple[str, str, int, int]] = []
    run_batch([a, b], tmp_path / "store", opts(),
              progress=lambda r, done, total: seen.append((r.name, r.status, done, total)))
    assert seen == [("a", "skipped", 1, 2), ("b", "done", 2, 2)]


def test_unknown_engine(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown engine"):
        run_batch([make_case(tmp_path / "a", [135])], tmp_path / "store", opts(engine="spark"))


# --------------------------------------------------------------------------
# dask engine on a real LocalCluster

def _store_tables(store_dir: Path) -> dict[str, object]:
    """Everything in a store that must not depend on the engine."""
    store = Store(store_dir)
    out: dict[str, object] = {}
    for d in sorted((store_dir / "cases").glob("case=*")):
        cid = d.name.split("=", 1)[1]
        meta = store.meta(cid)
        out[f"{cid}/meta"] = {k: v for k, v in meta.items() if k != "duration_s"}
        for table in ("events", "findings", "causes", "inventory"):
            p = d / f"{table}.parquet"
            out[f"{cid}/{table}"] = pq.read_table(p) if p.exists() else None
        rep = d / "report.json"
        if rep.exists():
            r = json.loads(rep.read_text(encoding="utf-8"))
            r["case"].pop("analyzed_at")
            out[f"{cid}/report"] = r
    summary = pq.read_table(store_dir / "summary.parquet").to_pandas().drop(columns=["duration_s"])
    out["summary"] = summary
    return out


def test_dask_engine_equals_local_engine(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    zip_case(make_case(tmp_path / "s1", [135, 25], host="EXCH01", problem=True), inbox / "one.zip")
    zip_case(make_case(tmp_path / "s2", [135, 443, 993], host="EXCH02", evt=5), inbox / "two.zip")
    make_case(inbox / "three", [135], host="EXCH03", evt=1)
    (inbox / "broken.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 40)  # truncated archive

    local = run_batch([inbox], tmp_path / "local", opts(engine="local"))
    dask = run_batch([inbox], tmp_path / "dask", opts(engine="dask", jobs=2))
    assert sorted((r.name, r.status) for r in local) == sorted((r.name, r.status) for r in dask)
    assert all(r.status == "done" for r in dask), [(r.name, r.reason) for r in dask]
    assert len(dask) == 4

    left, right = _store_tables(tmp_path / "local"), _store_tables(tmp_path / "dask")
    assert sorted(left) == sorted(right)
    for key in left:
        if key == "summary":
            pd.testing.assert_frame_equal(left[key], right[key])
        elif hasattr(left[key], "equals"):
            assert left[key].equals(right[key]), key
        else:
            assert left[key] == right[key], key
    # The store is not trivially empty.
    events = open_store(tmp_path / "dask").sql("select count(*) as n from events")
    assert int(events["n"].iloc[0]) > 0

    # Resumable with dask too.
    again = run_batch([inbox], tmp_path / "dask", opts(engine="dask", jobs=2))
    assert {r.status for r in again} == {"skipped"}


def test_dask_engine_on_an_existing_cluster(tmp_path: Path) -> None:
    """``--scheduler tcp://...``: submit to a cluster someone else started
    (here a real LocalCluster with 2 worker processes); same store."""
    distributed = pytest.importorskip("distributed")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    zip_case(make_case(tmp_path / "s1", [135, 25], host="EXCH01", problem=True), inbox / "one.zip")
    zip_case(make_case(tmp_path / "s2", [135, 443], host="EXCH02", evt=2), inbox / "two.zip")
    local = run_batch([inbox], tmp_path / "local", opts(engine="local"))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = run_batch([inbox], tmp_path / "remote",
                           opts(engine="dask", scheduler=cluster.scheduler_address))
        # The batch closed its client, not the cluster: it still serves.
        with distributed.Client(cluster.scheduler_address) as client:
            assert len(client.scheduler_info()["workers"]) == 2
    assert sorted((r.name, r.status) for r in remote) == sorted((r.name, r.status) for r in local)
    left, right = _store_tables(tmp_path / "local"), _store_tables(tmp_path / "remote")
    assert sorted(left) == sorted(right)
    pd.testing.assert_frame_equal(left.pop("summary"), right.pop("summary"))
    for key in left:
        same = left[key].equals(right[key]) if hasattr(left[key], "equals") else left[key] == right[key]
        assert same, key


# --------------------------------------------------------------------------
# the child-interpreter path the dask engine runs (limits without fork)

def test_case_subprocess_limits_and_success(tmp_path: Path) -> None:
    from analyzer.batch import run_case_subprocess

    case = make_case(tmp_path / "c", [135, 25])
    cid = content_hash(case)
    store = Store(tmp_path / "store")
    meta = run_case_subprocess(str(case), str(store.root), cid, {}, timeout_s=0.05, memory_mb=None)
    assert (meta["status"], meta["reason"]) == ("failed", "time limit of 0.05 s exceeded")
    assert store.meta(cid)["status"] == "failed"

    # The limit is set once the batch module is imported; 64 MiB of address
    # space then cannot hold the parsers' libraries.
    meta = run_case_subprocess(str(case), str(store.root), cid, {}, timeout_s=120, memory_mb=64)
    assert meta["status"] == "failed"
    assert meta["reason"].startswith("memory limit of 64 MiB exceeded"), meta["reason"]

    meta = run_case_subprocess(str(case), str(store.root), cid, {}, timeout_s=120, memory_mb=None)
    assert meta["status"] == "done", meta
    assert store.is_done(cid)
    assert meta["rows"] == len(load_case(case).table)


# --------------------------------------------------------------------------
# CLI

def test_cli_batch(tmp_path: Path, test_sources) -> None:
    from click.testing import CliRunner

    from analyzer.cli import main

    good = make_case(tmp_path / "good", [135, 25])
    slow = marker_case(tmp_path / "slow", "EXA-TEST-SLOW")
    store_dir = tmp_path / "store"
    res = CliRunner().invoke(main, ["batch", str(good), str(slow), "--store", str(store_dir),
                                    "--jobs", "2", "--timeout", "5"])
    assert res.exit_code == 1, res.output  # a case failed
    assert f"failed: {slow}: time limit of 5 s exceeded" in res.stderr
    assert "2 case(s): 1 done, 1 failed" in res.stderr
    assert (store_dir / "summary.csv").is_file()
    res = CliRunner().invoke(main, ["batch", str(good), "--store", str(store_dir)])
    assert res.exit_code == 0 and "1 case(s): 1 skipped" in res.stderr


def test_killed_case_leaves_no_work_directory(tmp_path: Path, test_sources, monkeypatch) -> None:
    """A case killed for its time limit must not leave its extracted files."""
    import tempfile

    work_root = tmp_path / "tmp"
    work_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work_root))
    slow = marker_case(tmp_path / "slow", "EXA-TEST-SLOW")
    import zipfile
    with zipfile.ZipFile(slow / "extra.zip", "w") as zf:
        zf.writestr("big.txt", "x" * 100_000)
    results = run_batch([slow], tmp_path / "store", BatchOptions(jobs=1, timeout_s=3))
    assert [r.status for r in results] == ["failed"]
    assert list(work_root.iterdir()) == []
