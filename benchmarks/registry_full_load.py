"""Full load (``registry="full"``) of a real hive vs a bare libregf walk,
whole process, in one run.

Usage: python benchmarks/registry_full_load.py [HIVE] [--runs N]
(default: ../shared/corpus/hives/regipy-SYSTEM, 3 runs)

Each measurement is a fresh Python process, so the figures include the
interpreter start, the imports and the whole process's peak RSS (from
``wait4``): what a user waits for. The two are run alternately, ``N`` times
each, after one untimed run of each (bytecode compiled into a temporary
``PYTHONPYCACHEPREFIX``, as an installed package has it; file in the page
cache), and the medians are compared: ratio = bare time / our time (1.0 = as
fast as the bare walk; the goal is >= 0.5). CPU time (user + system, from
``wait4``) is printed too: on a machine shared with other work it moves less
than wall time.

* **bare**: libregf (``pyregf``) alone reads every key's name and last-written
  time and every value's name, type and data bytes (``value.data``, big data
  included): everything a row is made of, read, and nothing more (no key
  paths, no decoding of the data to text, no table).
* **ours**: the hive source's ``parse`` with ``registry="full"`` (the hive
  module and what it imports: pyarrow, pandas through analyzer's table): the
  same reading, plus hive checks, key paths, value decoding (text, ``data``
  JSON, locators) and the Arrow batches of the event table, conformed to the
  table schema.

Not part of the test run.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_HIVE = REPO.parent / "shared" / "corpus" / "hives" / "regipy-SYSTEM"


def child_bare(path: str) -> str:
    """The bare libregf walk (runs in the child process)."""
    import pyregf  # type: ignore[import-not-found]

    f = pyregf.file()
    f.open(path)
    keys = values = nbytes = 0
    stack = [f.get_root_key()]
    while stack:
        key = stack.pop()
        keys += 1
        _ = (key.name, key.get_last_written_time_as_integer())
        for v in key.values:
            _ = (v.name, v.type)
            data = v.data
            values += 1
            nbytes += len(data) if data else 0
        stack.extend(key.sub_keys)
    f.close()
    return f"{keys} keys, {values} values, {nbytes} data bytes"


def child_ours(path: str) -> str:
    """Our full load of the hive (runs in the child process)."""
    sys.path.insert(0, str(REPO))
    from analyzer.sources import Options, ParseContext
    from analyzer.sources.hive import HiveSource

    with tempfile.TemporaryDirectory() as work:
        ctx = ParseContext(path=Path(path).name, fs_path=Path(path), options=Options(registry="full"),
                           work_dir=Path(work))
        rows = batches = 0
        for tab in HiveSource().parse(ctx):
            rows += tab.num_rows
            batches += 1
    return f"{rows} rows in {batches} batches, {len(ctx.warnings)} warnings"


def run(which: str, path: Path, pycache: str) -> tuple[float, float, str, float]:
    """(wall seconds, peak RSS MB, what the child printed, CPU seconds) of
    one fresh process. Bytecode is cached in ``pycache`` (as an installed
    package has it), not recompiled from source in every process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(REPO), PYTHONPYCACHEPREFIX=pycache)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--child", which, str(path)],
                            stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    secs = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{which} child failed ({proc.returncode})")
    return secs, usage.ru_maxrss / 1024, out.strip(), usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print((child_bare if argv[1] == "bare" else child_ours)(argv[2]))
        return
    runs = 3
    if "--runs" in argv:
        i = argv.index("--runs")
        runs = int(argv[i + 1])
        del argv[i:i + 2]
    path = Path(argv[0]) if argv else DEFAULT_HIVE
    print(f"hive: {path} ({path.stat().st_size / 1e6:.1f} MB); {runs} alternating runs each, "
          f"fresh process per run, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    res: dict[str, list[tuple[float, float, str, float]]] = {"bare": [], "ours": []}
    with tempfile.TemporaryDirectory() as pycache:
        for which in ("bare", "ours"):  # untimed: compiles the bytecode, warms the page cache
            run(which, path, pycache)
        for _ in range(runs):
            for which in ("bare", "ours"):
                res[which].append(run(which, path, pycache))
    med, cpu = {}, {}
    for which, label in (("bare", "bare libregf walk (names, types, data bytes)"),
                         ("ours", "our full load (hive source, registry=full)")):
        secs = [r[0] for r in res[which]]
        med[which] = statistics.median(secs)
        cpu[which] = statistics.median(r[3] for r in res[which])
        print(f"{label}: median {med[which]:.2f} s (runs {', '.join(f'{s:.2f}' for s in secs)}), "
              f"CPU {cpu[which]:.2f} s, peak RSS {max(r[1] for r in res[which]):.0f} MB; {res[which][-1][2]}")
    print(f"ratio bare/ours (whole process, median of {runs}): {med['bare'] / med['ours']:.2f}x  (goal >= 0.5x); "
          f"CPU time ratio {cpu['bare'] / cpu['ours']:.2f}x (less sensitive to other load)")


if __name__ == "__main__":
    main(sys.argv[1:])
