"""Throughput and peak memory of the big text sources: a 1M-line
``netstat -ano`` output and a 500k-line Exchange 2003 message tracking log.

Usage: python benchmarks/text_sources.py [--runs 3] [--only netstat|tracking]
                                         [--repo PATH] [--keep DIR]

The inputs are built in a temporary directory (never committed) from the
shapes of the repository's own samples
(``samples/rpc-port-conflict-healthy-static-ports/case/netstat.txt`` and
``samples/smtp-mailbox-healthy-delivery/case/Exchsrvr/EXCH01.log/20070312.log``),
with ports, peers, times and message ids varied so values are not all alike.

Three measurements per file, each in a fresh process, median of ``--runs``
(wall time, and CPU time, which a machine shared with other work disturbs
less):

- ``source``: iterating the source's ``parse()`` alone, each batch dropped
  as it is produced (row dicts turned into Arrow per 50,000 rows, as the
  loader does) -- the part the source owns;
- ``load_case``: the library loading the single file (in-process);
- ``parse CLI``: ``python -m analyzer parse FILE -o OUT.parquet`` as a
  subprocess, peak RSS from ``wait4`` (the child's own rusage).

``--repo`` measures another checkout's code (e.g. the main branch) with the
same inputs, for before/after figures. Not part of the test run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NETSTAT_SAMPLE = REPO / "samples/rpc-port-conflict-healthy-static-ports/case/netstat.txt"
TRACKING_SAMPLE = REPO / "samples/smtp-mailbox-healthy-delivery/case/Exchsrvr/EXCH01.log/20070312.log"
GOALS = {"netstat": (150_000, 300), "tracking": (150_000, 300)}  # rows/s, MB


def build_netstat(path: Path, lines: int) -> None:
    """``lines`` netstat rows shaped like the sample's (header kept)."""
    text = NETSTAT_SAMPLE.read_text(encoding="utf-8", errors="replace").splitlines()
    head = [ln for ln in text[:5] if not ln.lstrip().startswith(("TCP", "UDP"))]
    rows = [ln for ln in text if ln.lstrip().startswith(("TCP", "UDP"))]
    rng = random.Random(150)
    with path.open("w", encoding="utf-8", newline="\r\n") as fh:
        fh.write("\n".join(head) + "\n")
        for i in range(lines):
            proto, local, remote, *rest = rows[i % len(rows)].split()
            if proto == "TCP" and rest and rest[0] != "LISTENING":
                remote = f"10.{rng.randint(0, 20)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}:{rng.randint(1024, 65535)}"
                local = f"{local.rpartition(':')[0]}:{rng.randint(1024, 65535)}"
            state = rest[0] if len(rest) == 2 else ""
            pid = rest[-1] if rest else ""
            fh.write(f"  {proto:<6} {local:<22} {remote:<22} {state:<15} {pid}".rstrip() + "\n")


def build_tracking(path: Path, lines: int) -> None:
    """``lines`` 2003 tracking rows shaped like the sample's (header kept)."""
    text = TRACKING_SAMPLE.read_text(encoding="utf-8", errors="replace").splitlines()
    head = [ln for ln in text if ln.startswith("#")]
    rows = [ln.split("\t") for ln in text if ln and not ln.startswith("#")]
    rng = random.Random(2003)
    with path.open("w", encoding="utf-8", newline="\r\n") as fh:
        fh.write("\n".join(head) + "\n")
        for i in range(lines):
            f = list(rows[i % len(rows)])
            sec = i // 4
            f[0] = f"2007-3-{12 + sec // 86400 % 15}"
            f[1] = f"{sec // 3600 % 24}:{sec // 60 % 60:02d}:{sec % 60:02d} GMT"
            f[9] = f"<{i // 5:08X}{rng.randint(0, 9999):04d}@EXCH01.contoso.local>"
            f[12] = str(rng.randint(800, 90000))
            if len(f) > 14:
                f[14] = f"{f[0]} {f[1]}"
            fh.write("\t".join(f) + "\n")


# -- child processes -----------------------------------------------------------

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import pyarrow as pa
from analyzer import table
from analyzer.case import load_case
from analyzer.sources import Options, ParseContext, get
mode, path = sys.argv[1], Path(sys.argv[2])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t0, c0 = time.perf_counter(), cpu()  # imports excluded: the parse CLI figure includes them
if mode == "source":
    name = sys.argv[3]
    ctx = ParseContext(path=path.name, fs_path=path, options=Options())
    n, pending = 0, []
    for chunk in get(name).parse(ctx):
        if isinstance(chunk, pa.Table):
            n += table.conform_arrow(chunk).num_rows
        else:
            row = dict(chunk); row.setdefault("source", name); row.setdefault("path", path.name)
            pending.append(row)
            if len(pending) >= 50_000:
                n += table.rows_to_arrow(pending).num_rows; pending = []
    if pending:
        n += table.rows_to_arrow(pending).num_rows
    warnings = len(ctx.warnings)
else:
    case = load_case(path)
    n, warnings = len(case.table), len(case.warnings)
secs = time.perf_counter() - t0
print(json.dumps({"rows": n, "secs": secs, "cpu": cpu() - c0, "warnings": warnings,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _env(repo: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(repo)}


def run_child(repo: Path, mode: str, path: Path, source: str) -> dict[str, float]:
    # cwd is the measured checkout too: ``python -c``/``-m`` put it first on sys.path
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), source], env=_env(repo),
                         cwd=repo, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(repo: Path, path: Path, work: Path) -> dict[str, float]:
    out = work / "out.parquet"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "analyzer", "parse", str(path), "-o", str(out)],
                            env=_env(repo), cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1, 2):
        raise RuntimeError(f"parse exited {proc.returncode}: {err[-500:]}")
    import pyarrow.parquet as pq
    rows = pq.ParquetFile(out).metadata.num_rows
    out.unlink()
    return {"rows": rows, "secs": secs, "cpu": usage.ru_utime + usage.ru_stime,
            "rss_mb": usage.ru_maxrss / 1024}


def measure(label: str, runs: int, fn) -> dict[str, float]:
    results = [fn() for _ in range(runs)]
    secs = statistics.median(r["secs"] for r in results)
    rss = statistics.median(r["rss_mb"] for r in results)
    cpu = statistics.median(r["cpu"] for r in results)
    rows = results[0]["rows"]
    print(f"  {label:<10} {rows:>9,} rows  {secs:7.2f} s  {rows / secs:>9,.0f} rows/s  "
          f"(CPU {cpu:6.2f} s, {rows / cpu:>9,.0f} rows/CPU-s)  peak RSS {rss:6.0f} MB", flush=True)
    return {"rows": rows, "secs": secs, "cpu": cpu, "rss_mb": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", choices=("netstat", "tracking"))
    ap.add_argument("--repo", type=Path, default=REPO, help="checkout whose code is measured")
    ap.add_argument("--netstat-lines", type=int, default=1_000_000)
    ap.add_argument("--tracking-lines", type=int, default=500_000)
    ap.add_argument("--keep", type=Path, help="build the inputs here and keep them")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="text_sources_") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        plan = [("netstat", work / "netstat-ano.txt", build_netstat, args.netstat_lines),
                ("tracking", work / "20070312.log", build_tracking, args.tracking_lines)]
        print(f"code measured: {args.repo}  (median of {args.runs}; each run a fresh process)")
        for source, path, build, lines in plan:
            if args.only and source != args.only:
                continue
            if not path.exists():
                build(path, lines)
            print(f"{source}: {path.name}, {lines:,} lines, {path.stat().st_size / 1e6:.0f} MB")
            src = measure("source", args.runs, lambda: run_child(args.repo, "source", path, source))
            measure("load_case", args.runs, lambda: run_child(args.repo, "load_case", path, source))
            cli = measure("parse CLI", args.runs, lambda: run_cli(args.repo, path, work))
            goal_rate, goal_mb = GOALS[source]
            print(f"  goal >= {goal_rate:,} rows/s and < {goal_mb} MB: parse CLI "
                  f"{cli['rows'] / cli['secs'] / goal_rate:.2f}x the rate goal, "
                  f"source alone {src['rss_mb']:.0f} MB, whole parse {cli['rss_mb']:.0f} MB", flush=True)
    print(f"benchmark process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
