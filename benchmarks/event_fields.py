"""Cost of the structured event fields step (analyzer/eventdata.enrich); not a test.

Writes a System/Application .evtx with analyzer/synth: ``--events`` records,
of which ``--share`` (a fraction) have a fields parser (Service Control
Manager 7031, Application Error 1000, MSExchangeTransport 15004) and the
rest are Service Control Manager 7036 chatter (no parser: the common case
of a System log). Then, in one run: the whole ``load_case`` time, the
``enrich`` time on the finished table, the same on a table without any
candidate row, and the cost per enriched row. The ratio enrich / load is
what matters: the step must stay a small part of a load.

    python benchmarks/event_fields.py [--events 40000] [--share 0.02] [--rounds 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from analyzer import eventdata, table  # noqa: E402
from analyzer.case import load_case  # noqa: E402
from analyzer.synth.evtx import EvtxEvent, write_evtx  # noqa: E402

T0 = datetime(2009, 1, 19, tzinfo=timezone.utc)
BODY = ("\r\n\r\nThe following resources are under pressure:\r\n"
        "Version buckets = 200 [High] [Normal=80 Medium=120 High=200]\r\n"
        "The following components are disabled due to back pressure:\r\n"
        "Inbound mail submission from the Internet\r\nMail submission from Pickup directory")


def events(n: int, share: float) -> list[EvtxEvent]:
    every = max(1, round(1 / share)) if share > 0 else 0
    out = []
    for i in range(n):
        ts = T0 + timedelta(seconds=i)
        k = (i // every) % 3 if every and i % every == 0 else None
        if k == 0:
            out.append(EvtxEvent("Service Control Manager", 7031, ts, channel="System", level=2,
                                 data={"param1": "Microsoft Exchange Information Store", "param2": "1",
                                       "param3": "60000", "param4": "1", "param5": "Restart the service"}))
        elif k == 1:
            out.append(EvtxEvent("Application Error", 1000, ts, level=2, qualifiers=0,
                                 data=["store.exe", "8.1.336.1", "48ea3d4f", "EXCDO.DLL", "8.1.336.0", "48ea3c12",
                                       "c0000005", "00000000001ed390", f"{i:x}", "01c97b2d5e7f3a10"]))
        elif k == 2:
            out.append(EvtxEvent("MSExchangeTransport", 15004, ts, level=3, qualifiers=32772,
                                 data=["Normal", "High", BODY]))
        else:
            out.append(EvtxEvent("Service Control Manager", 7036, ts, channel="System",
                                 data={"param1": f"Service {i % 97}", "param2": "running"}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=40000)
    ap.add_argument("--share", type=float, default=0.02)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case" / "System.evtx"
        path.parent.mkdir()
        write_evtx(path, events(args.events, args.share))
        loads, enrich, empty = [], [], []
        for r in range(args.rounds):
            t = time.perf_counter()
            case = load_case(path.parent)
            loads.append(time.perf_counter() - t)
            arrow = table.to_arrow(case.table)
            t = time.perf_counter()
            eventdata.enrich(arrow)
            enrich.append(time.perf_counter() - t)
            plain = arrow.filter(arrow.column("event_id").to_numpy(zero_copy_only=False) == 7036)
            t = time.perf_counter()
            eventdata.enrich(plain)
            empty.append(time.perf_counter() - t)
            print(f"round {r + 1}: load {loads[-1]:.3f} s, enrich {enrich[-1] * 1000:.1f} ms, "
                  f"enrich without candidates {empty[-1] * 1000:.2f} ms")
        hits = int(sum(1 for p in case.table["event_id"] if p in (7031, 1000, 15004)))
        load, enr = statistics.median(loads), statistics.median(enrich)
        print(f"rows {len(case.table)}, rows with a parser {hits}")
        print(f"median load_case {load:.3f} s (includes enrich), enrich {enr * 1000:.1f} ms "
              f"= {enr / load:.1%} of the load, {enr / max(hits, 1) * 1e6:.1f} us per enriched row; "
              f"enrich on {plain.num_rows} rows without candidates {statistics.median(empty) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
