"""Big logs at the speed of the parser and in bounded memory: every figure of
the table in one run (not a test; tests never assert timings).

Usage::

    python benchmarks/big_logs.py [--dir /tmp/exa-bench] [--scale 1.0] [--rounds 3]
                                  [--only 1,5] [--cap-gb 12] [--timeout 1800]

The inputs are built first by benchmarks/build_big_inputs.py into ``--dir``
(reused when a build of the same scale is there). Every measurement is a
fresh process of the command line tool of the checkout this script lives in
(``python -m analyzer ...`` with PYTHONPATH set to it), or of a bare library
loop, started by a small wrapper process that samples the whole process
tree (the command and every process it starts, e.g. the evtx source's helper
process) every 50 ms and kills it above ``--cap-gb``. For each
measurement it reports wall seconds, CPU seconds of the tree, the peak of
the tree's summed RSS (sampled; at least the largest process's peak) and the
largest single process's peak RSS (``RUSAGE_CHILDREN`` of the wrapper: a
maximum over processes, not a sum).
The goals are judged on the summed RSS.

The rows (goals of the "big logs" work):

1. ``parse BIG.evtx -o OUT.parquet`` vs a bare ``evtx`` records_json loop
   (number_of_threads = cores) in its own process: records/s, ratio >= 0.5.
2. ``analyze BIG.evtx --format json -o /dev/null``: seconds, RSS, and the
   ratio to the parse time of row 1 <= 1.3.
3. ``parse sec-case/SEC.evtx`` (1 GiB Security-only): peak RSS < 1.5 GB.
4. ``analyze sec-case`` (SEC.evtx and a SYSTEM hive): < 2 GB and < 60 s.
5. ``parse netstat.txt`` (1M lines): >= 150k rows/s and < 300 MB.
6. ``parse tracking.log`` (500k lines of Exchange 2003): >= 150k rows/s, < 300 MB.
7. ``parse SYSTEM -o OUT.parquet --registry full`` vs a bare libregf
   (pyregf) walk of the same hive (keys, values and their data) in its own
   process: bare time / our time >= 0.5.

Rows/s of a parse = rows in the written Parquet (its metadata) / wall
seconds of the whole process. Commands on the same input alternate (bare,
ours, bare, ours, ...), ``--rounds`` times; figures are medians (ratios: the
median of each round's ratio). The machine may be shared: the load average
is printed, and CPU seconds beside wall seconds. Exit status is 0 always.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import build_big_inputs  # noqa: E402

GB = 1 << 30
MB = 1 << 20

#: The measuring wrapper (run as ``python -c``): starts the command, sums
#: VmRSS over its process tree every 50 ms (the tree re-read from /proc
#: every 250 ms), kills the tree above the cap or after the timeout, and
#: prints one JSON line. argv: command (JSON), cap bytes, timeout s, stdout file.
WRAPPER = r"""
import json, os, resource, signal, subprocess, sys, time
cmd, cap, timeout, out = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]

def tree(root):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", "rb") as fh:
                    ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    pids, i = [root], 0
    while i < len(pids):
        pids.extend(kids.get(pids[i], ()))
        i += 1
    return pids

def rss(pid):
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0

def stop(*_):
    raise SystemExit(1)

signal.signal(signal.SIGTERM, stop)
with open(out, "wb") as so, open(out + ".err", "wb") as se:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=so, stderr=se, start_new_session=True)
    peak, pids, tick, killed = 0, [p.pid], 0, None
    try:
        while p.poll() is None:
            if tick % 5 == 0:
                pids = tree(p.pid)
            tick += 1
            total = sum(rss(x) for x in pids)
            peak = max(peak, total)
            if total > cap or time.perf_counter() - t0 > timeout:
                killed = f"killed at {total / 2**30:.1f} GB" if total > cap else f"killed after {timeout:.0f} s"
                break
            time.sleep(0.05)
    finally:  # the command runs in its own session: never leave it behind
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
# the tree held at least its largest process's peak, which sampling can miss
print(json.dumps({"rc": p.returncode, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "sampled": peak,
                  "tree_peak": max(peak, ru.ru_maxrss * 1024), "max_rss": ru.ru_maxrss * 1024,
                  "killed": killed}))
"""

#: A bare evtx loop: the Rust library alone, as many threads as cores.
BARE_EVTX = """
import os, sys
from evtx import PyEvtxParser
n = 0
for _ in PyEvtxParser(sys.argv[1], number_of_threads=os.cpu_count() or 1).records_json():
    n += 1
print(n)
"""

#: A bare libregf walk: every key (name, last written time) and value
#: (name, type, data bytes).
BARE_REGF = """
import sys
import pyregf
f = pyregf.file()
f.open(sys.argv[1])
stack, n, nbytes = [f.get_root_key()], 0, 0
while stack:
    key = stack.pop()
    n += 1
    key.name, key.get_last_written_time_as_integer()
    for v in key.values:
        n += 1
        v.name, v.type
        data = v.data
        nbytes += len(data) if data else 0
    stack.extend(key.sub_keys)
f.close()
print(n)
"""


@dataclass
class Command:
    """One measured command line; ``rows`` says how its row count is read."""

    key: str
    label: str
    argv: list[str]
    rows: str = "none"            # "parquet" (the -o file), "stdout" (printed), "none"
    ok_codes: tuple[int, ...] = (0,)
    results: list[dict] = field(default_factory=list)


def analyzer(*args: str) -> list[str]:
    return [sys.executable, "-m", "analyzer", *args]


def commands(d: Path, out: Path) -> dict[str, Command]:
    """Every command, keyed; each parse writes to ``out`` (removed after)."""
    pq = str(out / "OUT.parquet")
    report_codes = (0, 1, 3)      # analyze: no problem, problem found, no verdict
    cmds = [
        Command("bare_evtx", "bare evtx loop BIG.evtx", [sys.executable, "-c", BARE_EVTX, str(d / "BIG.evtx")],
                "stdout"),
        Command("parse_big", "parse BIG.evtx", analyzer("parse", str(d / "BIG.evtx"), "-o", pq), "parquet"),
        Command("analyze_big", "analyze BIG.evtx",
                analyzer("analyze", str(d / "BIG.evtx"), "--format", "json", "-o", os.devnull),
                ok_codes=report_codes),
        Command("parse_sec", "parse SEC.evtx", analyzer("parse", str(d / "sec-case" / "SEC.evtx"), "-o", pq),
                "parquet"),
        Command("analyze_sec", "analyze sec-case",
                analyzer("analyze", str(d / "sec-case"), "--format", "json", "-o", os.devnull),
                ok_codes=report_codes),
        Command("parse_netstat", "parse netstat.txt", analyzer("parse", str(d / "netstat.txt"), "-o", pq),
                "parquet"),
        Command("parse_tracking", "parse tracking.log", analyzer("parse", str(d / "tracking.log"), "-o", pq),
                "parquet"),
        Command("bare_regf", "bare libregf walk SYSTEM", [sys.executable, "-c", BARE_REGF, str(d / "SYSTEM")],
                "stdout"),
        Command("parse_hive", "parse SYSTEM --registry full",
                analyzer("parse", str(d / "SYSTEM"), "-o", pq, "--registry", "full"), "parquet"),
    ]
    return {c.key: c for c in cmds}


#: Commands on one input run together, alternating within each round.
GROUPS = [["bare_evtx", "parse_big", "analyze_big"], ["parse_sec", "analyze_sec"], ["parse_netstat"],
          ["parse_tracking"], ["bare_regf", "parse_hive"]]


def parquet_rows(path: Path) -> int | None:
    """Rows written: the Parquet footer's count (a folder of Parquet files,
    a dataset, is summed)."""
    import pyarrow.parquet as pq

    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path] if path.is_file() else []
    if not files:
        return None
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def inventory_warnings(out: Path) -> int | None:
    inv = out / "OUT.inventory.json"
    try:
        return sum(len(e.get("warnings") or []) for e in json.loads(inv.read_text()))
    except (OSError, ValueError, AttributeError):
        return None


def measured_env(d: Path) -> dict[str, str]:
    """The environment of every measured process: this checkout first on
    the path, and Python's bytecode cache on (in ``d``, never in the
    checkout). Where ``PYTHONDONTWRITEBYTECODE`` is set, every ``python -m
    analyzer`` compiled the package's ~100 modules again (0.2-0.3 s of a
    one-second hive load), which an installed package never does and the
    bare loops, C extensions, never pay."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
               PYTHONPYCACHEPREFIX=str(d / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_checkout(d: Path) -> None:
    """Fill the bytecode cache of :func:`measured_env` before the first run."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "analyzer")],
                   env=measured_env(d), capture_output=True)


def measure(cmd: Command, out: Path, cap: int, timeout: float) -> dict:
    """Run ``cmd`` once under the wrapper; its figures and rows."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    log = out.parent / "last.stdout"
    env = measured_env(out.parent)
    wrap = subprocess.run([sys.executable, "-c", WRAPPER, json.dumps(cmd.argv), str(cap), str(timeout), str(log)],
                          capture_output=True, text=True, env=env)
    try:
        res = json.loads(wrap.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"wrapper failed: {wrap.stderr.strip()[-300:]}"}
    stdout = log.read_text(errors="replace")
    stderr = Path(f"{log}.err").read_text(errors="replace")
    if res["killed"] or res["rc"] not in cmd.ok_codes:
        res["error"] = res["killed"] or f"exit {res['rc']}: {(stderr.strip().splitlines() or [''])[-1][:200]}"
    if cmd.rows == "parquet":
        res["rows"] = parquet_rows(out / "OUT.parquet")
        res["warnings"] = inventory_warnings(out)
    elif cmd.rows == "stdout":
        lines = stdout.strip().splitlines()
        res["rows"] = int(lines[-1]) if lines and lines[-1].isdigit() else None
    shutil.rmtree(out, ignore_errors=True)
    return res


def describe(cmd: Command, res: dict) -> str:
    if "error" in res and "wall" not in res:
        return f"{cmd.label}: {res['error']}"
    parts = [f"{res['wall']:7.2f} s", f"cpu {res['cpu']:6.1f} s", f"tree {res['tree_peak'] / MB:6.0f} MB",
             f"max proc {res['max_rss'] / MB:6.0f} MB"]
    if res.get("rows"):
        parts.append(f"{res['rows']:,} rows, {res['rows'] / res['wall']:,.0f}/s")
    if res.get("warnings"):
        parts.append(f"{res['warnings']} warning(s)")
    if res.get("error"):
        parts.append(f"FAILED ({res['error']})")
    return f"{cmd.label:<30} " + " | ".join(parts)


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ok_runs(cmd: Command) -> list[dict]:
    return [r for r in cmd.results if "error" not in r]


def fig(cmd: Command, what: str) -> float | None:
    runs = ok_runs(cmd)
    if what == "rate":
        return median([r["rows"] / r["wall"] for r in runs if r.get("rows")])
    return median([r[what] for r in runs])


def paired(a: Command, b: Command, f) -> float | None:
    """Median over rounds of f(a's run, b's run), rounds where both succeeded."""
    return median([f(x, y) for x, y in zip(a.results, b.results) if "error" not in x and "error" not in y
                   and (x.get("rows") is not None or a.rows == "none")
                   and (y.get("rows") is not None or b.rows == "none")])


def _gb(v: float | None) -> str:
    return "?" if v is None else f"{v / GB:.2f} GB" if v >= GB else f"{v / MB:.0f} MB"


def _rate(v: float) -> str:
    return f"{v / 1e3:.1f}k" if v >= 1e4 else f"{v:,.0f}"


def _failed(*cmds: Command) -> str | None:
    for c in cmds:
        if not ok_runs(c):
            errs = [r.get("error") for r in c.results]
            return f"{c.label} failed: {errs[-1] if errs else 'not run'}"
    return None


def _evtx_vs_bare(bare: Command, ours: Command) -> tuple[str, bool] | None:
    ratio = paired(ours, bare, lambda o, b: (o["rows"] / o["wall"]) / (b["rows"] / b["wall"]))
    if ratio is None:
        return None
    today = (f"{ratio:.2f}x ({_rate(fig(ours, 'rate'))} vs {_rate(fig(bare, 'rate'))} rec/s; "
             f"{_gb(fig(ours, 'tree_peak'))})")
    wrote, read = ok_runs(ours)[-1]["rows"], ok_runs(bare)[-1]["rows"]
    if wrote != read:
        today += f"; wrote {wrote:,} rows of {read:,} records"
    return today, ratio >= 0.5


def _analyze_vs_parse(parse: Command, an: Command) -> tuple[str, bool]:
    ratio = paired(an, parse, lambda a, p: a["wall"] / p["wall"])
    return f"{fig(an, 'wall'):.1f} s, {_gb(fig(an, 'tree_peak'))}; {ratio:.2f}x parse", ratio <= 1.3


def _parse_memory(p: Command) -> tuple[str, bool]:
    rss = fig(p, "tree_peak")
    return f"{_gb(rss)} peak RSS, {fig(p, 'wall'):.1f} s", rss < 1.5 * GB


def _analyze_memory(a: Command) -> tuple[str, bool]:
    rss, secs = fig(a, "tree_peak"), fig(a, "wall")
    return f"{_gb(rss)} peak RSS, {secs:.1f} s", rss < 2 * GB and secs < 60


def _text_rate(p: Command) -> tuple[str, bool] | None:
    rate, rss = fig(p, "rate"), fig(p, "tree_peak")
    if rate is None:
        return None
    return f"{_rate(rate)} rows/s, {_gb(rss)}", rate >= 150e3 and rss < 300 * MB


def _hive_vs_bare(bare: Command, ours: Command) -> tuple[str, bool]:
    ratio = paired(bare, ours, lambda b, o: b["wall"] / o["wall"])
    return (f"{ratio:.2f}x ({fig(ours, 'wall'):.2f} s vs {fig(bare, 'wall'):.2f} s; "
            f"{_gb(fig(ours, 'tree_peak'))})", ratio >= 0.5)


@dataclass
class Row:
    """One row of the table: the commands it needs (in the order they
    alternate) and how their runs give today's figure and the verdict
    (None: no rows were counted)."""

    what: str
    goal: str
    needs: list[str]
    judge: Callable[..., tuple[str, bool] | None]


ROWS: dict[int, Row] = {
    1: Row("parse BIG.evtx vs bare evtx loop", ">= 0.5x", ["bare_evtx", "parse_big"], _evtx_vs_bare),
    2: Row("analyze BIG.evtx", "<= 1.3x parse time", ["parse_big", "analyze_big"], _analyze_vs_parse),
    3: Row("parse SEC.evtx (Security-only)", "< 1.5 GB", ["parse_sec"], _parse_memory),
    4: Row("analyze sec-case (SEC.evtx + SYSTEM)", "< 2 GB, < 60 s", ["analyze_sec"], _analyze_memory),
    5: Row("parse netstat.txt (netstat -ano)", ">= 150k rows/s, < 300 MB", ["parse_netstat"], _text_rate),
    6: Row("parse tracking.log (Exchange 2003)", ">= 150k rows/s, < 300 MB", ["parse_tracking"], _text_rate),
    7: Row("full load of SYSTEM hive vs bare libregf", ">= 0.5x", ["bare_regf", "parse_hive"], _hive_vs_bare),
}


def row_figures(n: int, c: dict[str, Command]) -> tuple[str, str, str, str]:
    """(what, today's figure, goal, met) of row ``n``."""
    row = ROWS[n]
    cmds = [c[k] for k in row.needs]
    if (err := _failed(*cmds)):
        return row.what, err, row.goal, "no"
    judged = row.judge(*cmds)
    if judged is None:
        return row.what, "no rows counted", row.goal, "no"
    return row.what, judged[0], row.goal, "yes" if judged[1] else "no"


def print_table(rows: list[int], cmds: dict[str, Command], scale: float) -> None:
    figures = [(n, *row_figures(n, cmds)) for n in rows]
    w = [max(len(str(f[i])) for f in figures) for i in range(5)]
    heads = ("row", "what", "today", "goal", "met")
    w = [max(a, len(h)) for a, h in zip(w, heads)]
    print()
    print("  ".join(h.ljust(x) for h, x in zip(heads, w)))
    print("  ".join("-" * x for x in w))
    for f in figures:
        print("  ".join(str(v).ljust(x) for v, x in zip(f, w)))
    if scale != 1:
        print(f"(scale {scale}: the goals are set for scale 1; sizes, seconds and start-up shares differ)")


def _commit() -> str:
    """The measured checkout's commit (``+changes`` when its files differ)."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""
    head = git("rev-parse", "--short", "HEAD") or "unknown commit"
    return head + (" +changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def run(args: argparse.Namespace) -> None:
    rows = sorted({int(x) for x in args.only.split(",") if x.strip()} or ROWS)
    rows = [r for r in rows if r in ROWS]
    if not rows:
        print(f"no row to run: --only takes row numbers among {', '.join(map(str, ROWS))}")
        return
    started = time.monotonic()
    d = Path(args.dir)
    try:
        manifest = build_big_inputs.build(d, args.scale, log=print)
    except SystemExit as exc:
        print(f"inputs not built: {exc}")
        return
    print(build_big_inputs.describe(manifest))
    print(f"build/check of inputs: {time.monotonic() - started:.0f} s")
    cmds = commands(d, d / "out")
    compile_checkout(d)
    needed = {k for r in rows for k in ROWS[r].needs}
    cap, timeout = int(args.cap_gb * GB), args.timeout
    print(f"command: python {' '.join(sys.argv)}")
    print(f"checkout {REPO} at {_commit()}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}; "
          f"{args.rounds} round(s); tree capped at {args.cap_gb} GB, {timeout:.0f} s")
    for group in GROUPS:
        todo = [cmds[k] for k in group if k in needed]
        for rnd in range(1, args.rounds + 1):
            for cmd in todo:
                res = measure(cmd, d / "out", cap, timeout)
                cmd.results.append(res)
                print(f"round {rnd}  {describe(cmd, res)}  (load {os.getloadavg()[0]:.1f})", flush=True)
    print_table(rows, cmds, args.scale)
    print(f"total run time {time.monotonic() - started:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=str(build_big_inputs.DEFAULT_DIR), help="where the inputs are built")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink every input (default 1.0)")
    ap.add_argument("--rounds", type=int, default=3, help="measurements per command (default 3)")
    ap.add_argument("--only", default="", help="comma-separated row numbers, e.g. 1,5 (default: all)")
    ap.add_argument("--cap-gb", type=float, default=12.0,
                    help="kill a measurement whose process tree passes this RSS (default 12)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per measurement (default 1800)")
    args = ap.parse_args()
    try:
        run(args)
    except Exception as exc:  # a benchmark reports, it does not fail
        print(f"benchmark stopped: {type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
