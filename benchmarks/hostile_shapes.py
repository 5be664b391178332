"""Hostile and huge inputs at full size: time and peak RSS per shape.

Not a test (tests never assert timings; tests/test_hostile.py runs the same
shapes small). Usage::

    python benchmarks/hostile_shapes.py [--only 6,8,9] [--work DIR] [--cap-gb 8]

Each shape's input is built first (not timed), then loaded in a fresh child
interpreter; the script prints the wall time, the peak resident memory of
the whole process tree (the child and any workers it starts, summed, sampled
every 50 ms with psutil), the CPU seconds of the tree (on a shared machine
wall time depends on the others' load; CPU time does not) and what the case
said about the file. Targets:
every shape under 60 s and under 1 GB. The child runs under an address-space
cap (``--cap-gb``) and a 600 s timeout, so a regression fails the shape
instead of taking a shared machine's memory.

Shapes (the sizes of the report that found them):

 1  a FIFO named <hive>.LOG1 beside a dirty hive
 2  a FIFO beside a SOFTWARE hive (the sibling-SYSTEM lookup)
 3  a link <hive>.LOG1 -> /dev/zero
 4  a case path longer than 4,096 characters
 5  a file named `<img src=x onerror=alert(7)>`.bin, rendered as Markdown
 6  a .reg hex value continued over many lines (7.7 MB)
 7  an ExchangeSetup.log record followed by 40,000 undated lines (4 MB)
 8  one <Event> of 300 MB in an XML export
 9  a 1 GB text file that is one line (after a netstat header)
10  a folder of 50,000 small netstat files (8 MB)
11  a 2 GB sparse .evt with a valid header
12  a 2 GB sparse .evtx whose header claims 65,535 chunks
13  a zip cut in half (no central directory)
14  batch with a case holding a non-UTF-8 file name
15  SIGKILL of the batch parent while a case hangs (time until the worker is gone)
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
NETSTAT = (REPO / "tests" / "fixtures" / "text" / "netstat_ano.txt").read_bytes()
#: A complete netstat -an of 160 bytes: 50,000 of them make the 8 MB folder.
SMALL_NETSTAT = (b"\r\nActive Connections\r\n\r\n  Proto  Local Address          Foreign Address"
                 b"        State\r\n  TCP    0.0.0.0:135            0.0.0.0:0              LISTENING\r\n")

LOAD = """
import json, sys
from analyzer.case import load_case
c = load_case(sys.argv[1])
bad = [e for e in c.inventory if e.status != "parsed"]
print(json.dumps({"files": len(c.inventory), "rows": len(c.table),
                  "not parsed": [f"{e.path[:40]}: {e.status}: {(e.detail or '')[:90]}" for e in bad[:3]]}))
"""


def run_child(code: str, args: list[str], cap_gb: float, timeout: float = 600.0) -> dict:
    """Run code in a child interpreter; wall time, sampled peak RSS of its
    process tree, and the JSON it printed last."""
    cap = int(cap_gb * (1 << 30))
    pre = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))\n"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    started = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen([sys.executable, "-c", pre + textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    peak = 0
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        if time.monotonic() - started > timeout:
            proc.kill()
            break
        total = 0
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    out, err = proc.communicate()
    elapsed = time.monotonic() - started
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    try:
        result = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = {"error": (err.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:200]}
    return {"seconds": elapsed, "cpu": cpu, "peak_mb": peak / (1 << 20), "result": result}


# --- shape builders: each returns (code, args) for run_child -------------------

def _dirty_hive() -> bytes:
    sys.path.insert(0, str(REPO))
    from analyzer.sources.hive import regf_checksum
    from analyzer.synth import hive_bytes

    raw = bytearray(hive_bytes({r"Microsoft\Exchange": {"A": ("REG_SZ", "x")},
                                r"Classes\.txt": {}}))
    struct.pack_into("<I", raw, 4, struct.unpack_from("<I", raw, 8)[0] + 1)
    struct.pack_into("<I", raw, 508, regf_checksum(bytes(raw[:512])))
    return bytes(raw)


def shape1(d: Path):
    (d / "SOFTWARE").write_bytes(_dirty_hive())
    os.mkfifo(d / "SOFTWARE.LOG1")
    return LOAD, [str(d)]


def shape2(d: Path):
    (d / "SOFTWARE").write_bytes(_dirty_hive())
    os.mkfifo(d / "SYSTEM")
    os.mkfifo(d / "notes.txt")
    return LOAD, [str(d)]


def shape3(d: Path):
    (d / "SOFTWARE").write_bytes(_dirty_hive())
    os.symlink("/dev/zero", d / "SOFTWARE.LOG1")
    return LOAD, [str(d)]


def shape4(d: Path):
    """netstat.txt, and deep.txt below 22 folders of 200 characters (beyond
    PATH_MAX: only reachable relative to an open folder)."""
    (d / "netstat.txt").write_bytes(NETSTAT)
    fd = os.open(d, os.O_RDONLY)
    for _ in range(22):
        os.mkdir("d" * 200, dir_fd=fd)
        nfd = os.open("d" * 200, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    with open(os.open("deep.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "wb") as fh:
        fh.write(NETSTAT)
    os.close(fd)
    return LOAD, [str(d)]


def shape5(d: Path):
    (d / "`<img src=x onerror=alert(7)>`.bin").write_bytes(b"\x00\x01")
    code = """
        import json, sys
        from markdown_it import MarkdownIt
        from analyzer import render
        from analyzer.report import analyze
        md = render.render(analyze(sys.argv[1]).to_dict(), "markdown")
        html = MarkdownIt("commonmark").enable("table").render(md)
        print(json.dumps({"live <img> in the rendered Markdown": "<img" in html}))
    """
    return code, [str(d)]


def shape6(d: Path):
    line = "  " + "41," * 25 + "\\"
    n = 7_700_000 // len(line)
    (d / "big.reg").write_text("\r\n".join(
        ["Windows Registry Editor Version 5.00", "", r"[HKEY_LOCAL_MACHINE\SOFTWARE\Big]",
         '"v"=hex:00,\\'] + [line] * n + ["  42", ""]), encoding="ascii")
    return LOAD, [str(d)]


def shape7(d: Path):
    lines = ["[04/11/2023 10:00:00.0000] [0] Starting Microsoft Exchange Server 2016 Setup",
             "[04/11/2023 10:00:01.0000] [1] Error: the stack trace follows"]
    lines += [f"   at Microsoft.Exchange.Management.Frame{i:05d}.Run() in module, line {i}"
              for i in range(40_000)]
    lines += ["[04/11/2023 10:00:02.0000] [1] End of Setup", ""]
    (d / "ExchangeSetup.log").write_text("\r\n".join(lines), encoding="utf-8")
    return LOAD, [str(d)]


def _event(body: str) -> str:
    return ('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
            '<Provider Name="MSExchangeIS"/><EventID>9646</EventID>'
            '<TimeCreated SystemTime="2023-01-01T00:00:00.000Z"/></System>'
            f'<EventData><Data>{body}</Data></EventData></Event>\n')


def shape8(d: Path):
    with open(d / "events.xml", "w", encoding="ascii") as fh:
        fh.write("<Events>" + _event("first") + _event("").split("</Data>")[0])
        block = ("y" * 1023 + "\n") * 1024
        for _ in range(300):
            fh.write(block)
        fh.write("</Data></EventData></Event>\n" + _event("last") + "</Events>\n")
    return LOAD, [str(d)]


def shape9(d: Path):
    with open(d / "netstat.txt", "wb") as fh:
        fh.write(NETSTAT + b"  TCP    ")
        chunk = b"9" * (1 << 20)
        for _ in range(1024):
            fh.write(chunk)
    return LOAD, [str(d)]


def shape10(d: Path):
    for i in range(50_000):
        (d / f"netstat_{i:05d}.txt").write_bytes(SMALL_NETSTAT)
    return LOAD, [str(d)]


def shape11(d: Path):
    with open(d / "AppEvent.Evt", "wb") as fh:
        # ELF_LOGFILE_HEADER: size, LfLe, 1.1, start/end offsets, record numbers, max size
        fh.write(struct.pack("<I4sIIIIIIIIII", 0x30, b"LfLe", 1, 1, 0x30, 0x30, 1, 1, 0,
                             2 << 30, 0, 0x30))
        fh.truncate(2 << 30)
    return LOAD, [str(d)]


def shape12(d: Path):
    with open(d / "Application.evtx", "wb") as fh:
        head = bytearray(4096)
        # magic, first and last chunk, next record id, header size, minor,
        # major, header block size, chunk count
        struct.pack_into("<8sQQQIHHHH", head, 0, b"ElfFile\x00", 0, 65534, 1, 128, 1, 3, 4096, 65535)
        import zlib
        struct.pack_into("<I", head, 124, zlib.crc32(bytes(head[:120])))
        fh.write(head)
        fh.truncate(2 << 30)
    return LOAD, [str(d)]


def shape13(d: Path):
    path = d / "upload.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i in range(20):  # 100 MB: a netstat and a 5 MB memory dump per server
            zf.writestr(f"SRV{i:02d}/netstat.txt", NETSTAT)
            zf.writestr(f"SRV{i:02d}/store.dmp", b"MDMP" + os.urandom(5 << 20))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return LOAD, [str(d)]


def shape14(d: Path):
    case = d / os.fsdecode(b"caf\xe9")
    case.mkdir()
    (case / os.fsdecode(b"netstat-\xff.txt")).write_bytes(NETSTAT)
    code = """
        import json, sys
        from analyzer.batch import run_batch
        r = run_batch([sys.argv[1]], sys.argv[2])
        print(json.dumps({"statuses": [x.status for x in r]}))
    """
    return code, [os.fsdecode(os.fsencode(str(case))), str(d / "store")]


def hanging_batch_script(case: Path, store: Path, pidfile: Path) -> str:
    """Python code that batches ``case`` with a source that hangs on a file
    starting ``HANG`` (it writes its worker's pid to ``pidfile`` first): the
    parent to kill in shape 15 and in tests/test_hostile.py."""
    return textwrap.dedent(f"""
        import os, time
        from analyzer.sources import Source, _REGISTRY
        class Hang(Source):
            name = kind = "test-hang"
            def sniff(self, head, name):
                return 99 if head.startswith(b"HANG") else 0
            def parse(self, ctx):
                open({str(pidfile)!r}, "w").write(str(os.getpid()))
                while True:
                    time.sleep(1)
                yield from ()
        _REGISTRY["test-hang"] = Hang()
        from analyzer.batch import BatchOptions, run_batch
        run_batch([{str(case)!r}], {str(store)!r}, BatchOptions(timeout_s=3600))
    """)


def shape15(d: Path):
    (d / "case").mkdir()
    (d / "case" / "x.bin").write_bytes(b"HANG")
    pidfile = d / "worker.pid"
    code = f"""
        import json, os, signal, subprocess, sys, textwrap, time
        inner = {hanging_batch_script(d / "case", d / "store", pidfile)!r}
        parent = subprocess.Popen([sys.executable, "-c", inner])
        while not os.path.exists({str(pidfile)!r}) or not open({str(pidfile)!r}).read():
            time.sleep(0.1)
        worker = int(open({str(pidfile)!r}).read())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        t0 = time.monotonic()
        def alive():
            try:
                return open(f"/proc/{{worker}}/stat").read().rsplit(")", 1)[1].split()[0] not in "ZX"
            except OSError:
                return False
        while alive() and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        gone = not alive()
        if not gone:
            os.kill(worker, signal.SIGKILL)
        print(json.dumps({{"worker gone after parent SIGKILL": gone,
                          "seconds to go": round(time.monotonic() - t0, 2)}}))
    """
    return code, []


SHAPES = {i: globals()[f"shape{i}"] for i in range(1, 16)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated shape numbers (default: all)")
    ap.add_argument("--work", default=None, help="where inputs are built (default: a temp dir)")
    ap.add_argument("--cap-gb", type=float, default=8.0, help="address-space cap of each child")
    args = ap.parse_args()
    todo = [int(x) for x in args.only.split(",") if x] or list(SHAPES)
    root = Path(tempfile.mkdtemp(prefix="exa-hostile-", dir=args.work))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall time is shared; "
          "CPU seconds are this run's own)")
    print(f"{'shape':>5}  {'seconds':>8}  {'cpu s':>6}  {'peak MB':>8}  result")
    try:
        for i in todo:
            d = root / f"shape{i}"
            d.mkdir()
            code, cargs = SHAPES[i](d)
            # the sparse event logs are read by the evt/evtx sources; cap
            # them lower so a whole-file read fails fast instead of paging
            cap = min(args.cap_gb, 3.0) if i in (11, 12) else args.cap_gb
            res = run_child(code, cargs, cap)
            verdict = "ok" if res["seconds"] < 60 and res["peak_mb"] < 1024 else "OVER TARGET"
            print(f"{i:>5}  {res['seconds']:8.1f}  {res['cpu']:6.1f}  {res['peak_mb']:8.0f}  {verdict}  "
                  f"{json.dumps(res['result'], ensure_ascii=False)[:300]}", flush=True)
            shutil.rmtree(d, ignore_errors=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
