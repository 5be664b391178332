"""Throughput of the .evtx source (not a test; run by hand).

Builds a >= 20 MB .evtx from the chunks of real corpus files (file header's
chunk count and CRC rewritten) in a temp dir, then measures in one run:
(a) bare ``evtx`` records_json iteration, (b) our source's parse into Arrow
tables (the Rust path), (c) our python-evtx backend on a subset of chunks,
extrapolated; plus peak RSS and the ratios (b)/(a) and (b)/(c).

The machine is shared, so (a) and (b) are measured alternately ``--rounds``
times and the median ratio is reported (each round's figures are printed);
(b)'s CPU seconds (this process plus its helper process) are printed too,
since wall time on a loaded box mostly measures the neighbours.

    python benchmarks/evtx_throughput.py [--mb 24] [--rounds 5]
"""
from __future__ import annotations

import argparse
import resource
import statistics
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CORPUS = REPO.parent / "shared" / "corpus" / "evtx"
#: The forwarded-events (WEC) file is in the mix on purpose: its record's
#: SystemTime has 9 fractional digits, as every forwarded log's records do,
#: and the timestamp cast of every batch holding one must stay vectorized.
CLEAN = ["security.evtx", "plaso-System.evtx", "deepblue-many-events-application.evtx",
         "system.evtx", "MSExchange_Management_wec.evtx",
         "deepblue-smb-password-guessing-security.evtx"]


def build(target: Path, mb: int) -> int:
    chunks: list[bytes] = []
    for name in CLEAN:
        raw = (CORPUS / name).read_bytes()
        for off in range(0x1000, len(raw) - 0xFFFF, 0x10000):
            if raw[off:off + 8] == b"ElfChnk\x00":
                chunks.append(raw[off:off + 0x10000])
    header = bytearray((CORPUS / CLEAN[0]).read_bytes()[:0x1000])
    out = []
    while len(out) * 0x10000 < mb * 1024 * 1024:
        out.extend(chunks)
    n = len(out)
    struct.pack_into("<QQ", header, 8, 0, n - 1)          # first / last chunk
    struct.pack_into("<H", header, 0x2A, n & 0xFFFF)       # chunk count
    struct.pack_into("<I", header, 0x78, 0)                # flags: clean
    struct.pack_into("<I", header, 0x7C, zlib.crc32(bytes(header[:0x78])) & 0xFFFFFFFF)
    target.write_bytes(bytes(header) + b"".join(out))
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=24)
    ap.add_argument("--py-chunks", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"corpus not found at {CORPUS}")
    from evtx import PyEvtxParser

    from analyzer import table
    from analyzer.sources import Options, ParseContext, get
    from analyzer.sources.evtx import _threads

    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.evtx"
        nchunks = build(big, args.mb)
        size = big.stat().st_size
        print(f"file: {size / 1e6:.1f} MB, {nchunks} chunks, threads={_threads()}")

        ratios: list[float] = []
        rates_a: list[float] = []
        rates_b: list[float] = []
        for rnd in range(1, args.rounds + 1):
            t = time.perf_counter()
            n_a = 0
            for _ in PyEvtxParser(str(big), number_of_threads=_threads()).records_json():
                n_a += 1
            a = n_a / (time.perf_counter() - t)

            ctx = ParseContext(path="big.evtx", fs_path=big, options=Options())
            cpu0 = time.process_time()
            kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            batches = list(get("evtx").parse(ctx))
            n_b = sum(x.num_rows for x in batches)
            b = n_b / (time.perf_counter() - t)
            kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = time.process_time() - cpu0
            kid_cpu = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
            conformed = [table.conform_arrow(x) for x in batches]
            msgs = sum(x.column("message").null_count for x in batches)
            del batches, conformed
            ratios.append(b / a)
            rates_a.append(a)
            rates_b.append(b)
            print(f"round {rnd}: (a) {n_a} records, {a:,.0f} records/s | (b) {n_b} records, "
                  f"{b:,.0f} records/s, {n_b - msgs} messages, cpu {cpu:.2f} s + helper "
                  f"{kid_cpu:.2f} s | (b)/(a) = {b / a:.2f}")
        a, b = statistics.median(rates_a), statistics.median(rates_b)
        print(f"(a) bare evtx records_json:  {n_a} records, {a:,.0f} records/s (median)")
        print(f"(b) our .evtx -> table:      {n_b} records, {b:,.0f} records/s (median)")

        small = Path(tmp) / "subset.evtx"
        raw = big.read_bytes()
        small.write_bytes(raw[:0x1000 + args.py_chunks * 0x10000])
        del raw
        ctx = ParseContext(path="subset.evtx", fs_path=small, options=Options(evtx_backend="python"))
        t = time.perf_counter()
        n_c = sum(x.num_rows for x in get("evtx").parse(ctx))
        c = n_c / (time.perf_counter() - t)
        print(f"(c) our python-evtx backend: {n_c} records ({args.py_chunks} chunks), "
              f"{c:,.0f} records/s -> {n_a / c:,.0f} s extrapolated for the whole file")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:,.0f} MB")
    print(f"(b)/(a) = {statistics.median(ratios):.2f} median of {len(ratios)} rounds "
          f"{[round(r, 2) for r in ratios]}  (target >= 0.5)")
    print(f"(b)/(c) = {b / c:,.0f}  (target >= 50)")


if __name__ == "__main__":
    main()
