"""Full load (``registry="full"``) of the largest real hive available.

Usage: python benchmarks/registry_full_load.py [HIVE]   (default: corpus regipy-SYSTEM)

Prints rows, wall time and peak RSS of the hive source's full walk, and the
time of a bare libregf walk of the same hive in the same run for comparison.
Not part of the test run.
"""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import pyarrow as pa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analyzer.sources import Options, ParseContext, get  # noqa: E402
from analyzer.sources import hive as hive_mod  # noqa: E402


def load(path: Path, use_pyregf: bool) -> tuple[int, float]:
    saved = hive_mod.pyregf
    if not use_pyregf:
        hive_mod.pyregf = None
    try:
        ctx = ParseContext(path=path.name, fs_path=path, options=Options(registry="full"),
                           work_dir=Path("/tmp/registry_bench"))
        t0 = time.perf_counter()
        rows = sum(t.num_rows for t in get("hive").parse(ctx) if isinstance(t, pa.Table))
        return rows, time.perf_counter() - t0
    finally:
        hive_mod.pyregf = saved


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "corpus" / "hives" / "regipy-SYSTEM"
    print(f"hive: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    rows2, secs2 = load(path, False)
    print(f"full load (regipy key nodes + own list/value reader): {rows2} rows in {secs2:.2f} s "
          f"({rows2 / secs2:,.0f} rows/s)")
    if hive_mod.pyregf is not None:
        # the libregf walker (used only when regipy cannot parse the root), for comparison
        f, root = hive_mod.open_pyregf(path)
        t0 = time.perf_counter()
        n, stack = 0, [root]
        while stack:
            node = stack.pop()
            n += 1 + sum(1 for _ in node.values())
            stack.extend(sk for sk in node.subkeys() if not isinstance(sk, hive_mod._Failed))
        f.close()
        print(f"bare libregf walk (keys + values, no rows): {n} items in {time.perf_counter() - t0:.2f} s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS (whole run): {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
