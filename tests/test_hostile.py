"""Hostile and huge inputs: the shapes an unlucky or hostile upload takes.

Each test is one shape: a FIFO or a device link where a parser looks for a
companion file, paths the system refuses, names that try to break out of a
report, inputs that made a parser quadratic or made it hold a whole file,
many small files, a cut zip, a batch with undecodable names and a batch
parent killed mid-case. The quadratic shapes run at a size that took more
than a minute before they were made linear; here they take seconds.
Anything that could hang runs with a bounded wait, so a regression fails
instead of stopping the suite. (Full-size figures: benchmarks/hostile_shapes.py.)
"""
from __future__ import annotations

import gc
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest

from analyzer import render
from analyzer.archive import Limits
from analyzer.case import load_case
from analyzer.report import analyze
from analyzer.sources import ParseContext, Source, _REGISTRY
from analyzer.sources.hive import regf_checksum

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
NETSTAT = (FIXTURES / "text" / "netstat_ano.txt").read_bytes()


def bounded(fn, timeout: float = 60.0):
    """fn() in a daemon thread; a hang fails the test instead of the suite."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"still running after {timeout} s (hang)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def child_json(code: str, timeout: float = 120.0) -> dict:
    """Run ``code`` in a fresh interpreter (its own peak RSS); it prints one
    JSON line last."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _dirty_hive() -> bytes:
    from analyzer.synth import hive_bytes

    raw = bytearray(hive_bytes({r"Microsoft\Exchange": {"A": ("REG_SZ", "x")}}))
    struct.pack_into("<I", raw, 4, struct.unpack_from("<I", raw, 8)[0] + 1)  # seq1 != seq2
    struct.pack_into("<I", raw, 508, regf_checksum(bytes(raw[:512])))
    return bytes(raw)


def _inv(case) -> dict:
    return {e.path: e for e in case.inventory}


# --- shapes 1-3: companion files that are not regular files -----------------

def test_fifo_named_like_the_hive_log_does_not_hang(tmp_path: Path) -> None:
    (tmp_path / "SOFTWARE").write_bytes(_dirty_hive())
    os.mkfifo(tmp_path / "SOFTWARE.LOG1")
    inv = _inv(bounded(lambda: load_case(tmp_path)))
    assert inv["SOFTWARE"].rows > 0
    fifo = inv["SOFTWARE.LOG1"]
    assert fifo.status == "skipped" and "FIFO" in fifo.detail


def test_fifo_beside_a_software_hive_does_not_hang(tmp_path: Path) -> None:
    from analyzer.synth import hive_bytes

    (tmp_path / "SOFTWARE").write_bytes(hive_bytes({r"Microsoft\X": {"A": ("REG_SZ", "x")},
                                                    r"Classes\.txt": {}}))
    os.mkfifo(tmp_path / "SYSTEM")  # the sibling-SYSTEM lookup must not open it
    os.mkfifo(tmp_path / "anything.txt")
    inv = _inv(bounded(lambda: load_case(tmp_path)))
    # (targeted load: none of the declared subtrees is in this tiny hive)
    assert inv["SOFTWARE"].status == "parsed"
    assert "SOFTWARE hive" in inv["SOFTWARE"].detail  # so the SYSTEM lookup ran
    assert inv["SYSTEM"].status == inv["anything.txt"].status == "skipped"


def test_hive_log_linked_to_dev_zero_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "SOFTWARE").write_bytes(_dirty_hive())
    os.symlink("/dev/zero", tmp_path / "SOFTWARE.LOG1")
    # in a child under an address-space cap: a regression reads /dev/zero
    # until memory runs out, and must not take the machine with it
    res = child_json(f"""
        import json, resource
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        from analyzer.case import load_case
        c = load_case({str(tmp_path)!r})
        print(json.dumps({{e.path: [e.status, e.rows, e.detail] for e in c.inventory}}))
    """, timeout=120)
    assert res["SOFTWARE"][1] > 0
    assert res["SOFTWARE.LOG1"][0] == "skipped" and "link" in res["SOFTWARE.LOG1"][2]


def test_safe_open_refuses_fifo_device_and_links_out_of_the_case(tmp_path: Path) -> None:
    from analyzer import safeio

    os.mkfifo(tmp_path / "fifo")
    os.symlink("/dev/zero", tmp_path / "zero")
    os.symlink("/etc/hostname", tmp_path / "out")
    (tmp_path / "in.txt").write_text("inside")
    os.symlink("in.txt", tmp_path / "link-in")
    for name, what in (("fifo", "FIFO"), ("zero", "link"), ("out", "link")):
        with pytest.raises(safeio.NotRegularFile, match=what):
            bounded(lambda n=name: safeio.open_regular(tmp_path / n, root=tmp_path), 10)
    with pytest.raises(safeio.NotRegularFile, match="character device"):
        safeio.open_regular("/dev/null")
    with safeio.open_regular(tmp_path / "link-in", root=tmp_path) as fh:
        assert fh.read() == b"inside"


# --- shape 4: a path the system refuses --------------------------------------

def test_case_path_longer_than_path_max_is_an_inventory_entry(tmp_path: Path) -> None:
    root = tmp_path / "case"
    root.mkdir()
    _benchmark().shape4(root)  # netstat.txt, and deep.txt below 22 x 201 characters
    case = bounded(lambda: load_case(root))
    inv = _inv(case)
    assert inv["netstat.txt"].status == "parsed"
    refused = [e for e in case.inventory if e.status == "failed"]
    assert refused and all("too long" in e.detail for e in refused), refused


# --- shape 5: names that try to leave a Markdown code span --------------------

def test_markdown_code_span_holds_any_name(tmp_path: Path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    hostile = ["`<img src=x onerror=alert(7)>`.bin", "``<script>x<\\script>``.txt",
               "a\u200fb\u202ec.bin"]
    for name in hostile:
        (tmp_path / name).write_bytes(b"\x00\x01binary")
    case = load_case(tmp_path)
    md = render.render(analyze(case).to_dict(), "markdown")
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(md)
    assert "<img" not in html and "<script" not in html
    assert "&lt;img src=x onerror=alert(7)&gt;" in html  # shown, as text
    assert "\u200f" not in md and "\\u200f" in md and "\\u202e" in md


def test_code_span_fence_is_longer_than_any_backtick_run() -> None:
    from analyzer.render.markdown import code

    assert code("a`b") == "``a`b``"
    assert code("x```y") == "````x```y````"
    assert code("`edge`") == "`` `edge` ``"


def test_every_format_character_is_escaped() -> None:
    from analyzer.textio import escape_controls

    for ch in ("\u200f", "\u200e", "\u061c", "\u2066", "\u202e", "\ufeff", "\u2028", "\u00ad"):
        assert ch not in escape_controls(f"a{ch}b"), hex(ord(ch))
    assert escape_controls("tab\tnewline\nälpha ✅") == "tab\tnewline\nälpha ✅"


# --- shapes 6-8: inputs that made a parser quadratic --------------------------

def test_reg_hex_value_continued_over_many_lines_is_linear(tmp_path: Path) -> None:
    # 7.7 MB: killed after 300 s when each continuation re-copied the value
    line = "  " + "41," * 25 + "\\"
    n = 7_700_000 // len(line)
    text = "\r\n".join(["Windows Registry Editor Version 5.00", "",
                        r"[HKEY_LOCAL_MACHINE\SOFTWARE\Big]", '"v"=hex:00,\\'] + [line] * n
                       + ["  42", ""])
    (tmp_path / "big.reg").write_text(text, encoding="ascii")
    case = bounded(lambda: load_case(tmp_path), timeout=120)
    (entry,) = case.inventory
    assert entry.status == "parsed"
    value = case.table.loc[case.table["kind"] == "registry_value", "value"].iloc[0]
    assert value.startswith("00 41 41") or value.startswith("0041") or "41" in value[:20]
    assert len(value) >= 2 * (25 * n + 2)  # every byte of every line is in the value


def test_exsetup_record_with_40k_folded_lines_is_linear(tmp_path: Path) -> None:
    lines = ["[04/11/2023 10:00:00.0000] [0] Starting Microsoft Exchange Server 2016 Setup",
             "[04/11/2023 10:00:01.0000] [1] Error: the stack trace follows"]
    lines += [f"   at Microsoft.Exchange.Frame{i:05d}.Run() in module line {i}" for i in range(40_000)]
    lines += ["[04/11/2023 10:00:02.0000] [1] Error code 0X8007200A ends", ""]
    (tmp_path / "ExchangeSetup.log").write_text("\r\n".join(lines), encoding="utf-8")
    case = bounded(lambda: load_case(tmp_path), timeout=120)
    (entry,) = case.inventory
    assert entry.status == "parsed" and entry.rows == 3
    folded = case.table["message"].iloc[1]
    assert folded.count("\n") == 40_000 and "Frame39999" in folded


def _event(body: str) -> str:
    return ('<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System>'
            '<Provider Name="MSExchangeIS"/><EventID>9646</EventID>'
            '<TimeCreated SystemTime="2023-01-01T00:00:00.000Z"/><EventRecordID>1</EventRecordID>'
            f'</System><EventData><Data>{body}</Data></EventData></Event>\n')


def test_huge_xml_event_is_skipped_in_linear_time(tmp_path: Path) -> None:
    # one <Event> of 160 MB: the buffer was rebuilt every 64 KB (26 s at 100 MB,
    # 230 s at 300 MB); now it is streamed past with a warning
    path = tmp_path / "events.xml"
    with open(path, "w", encoding="ascii") as fh:
        fh.write("<Events>" + _event("first"))
        fh.write(_event("x" * 1000).split("x")[0])
        block = ("y" * 1023 + "\n") * 1024
        for _ in range(160):
            fh.write(block)
        fh.write("</Data></EventData></Event>\n" + _event("last") + "</Events>\n")
    case = bounded(lambda: load_case(tmp_path), timeout=120)
    (entry,) = case.inventory
    assert entry.rows == 2 and entry.status == "partial"
    assert any("event=2" in w and "limit" in w for w in entry.warnings), entry.warnings
    assert list(case.table["data"].str.contains("last")) == [False, True]


def test_xml_export_with_doctype_is_read_and_its_dtd_refused(tmp_path: Path) -> None:
    laughs = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10}">' for i in range(1, 10))
    text = ('<?xml version="1.0"?>\n<!DOCTYPE Events [<!ENTITY l0 "lol">' + laughs + ']>\n'
            '<Events>' + _event("plain") + _event("&l9;") + '</Events>\n')
    (tmp_path / "export.xml").write_text(text, encoding="utf-8")
    case = bounded(lambda: load_case(tmp_path), timeout=60)
    (entry,) = case.inventory
    assert entry.source == "eventxml" and entry.rows == 2
    assert any("DTD" in w for w in entry.warnings)
    assert not case.table["data"].str.contains("lollol").any()


# --- shape 9: a huge single line ----------------------------------------------

def test_over_long_line_is_skipped_with_its_line_and_offset(tmp_path: Path) -> None:
    lines = NETSTAT.decode("ascii").splitlines()
    text = "\r\n".join(lines[:6] + ["  TCP    " + "9" * 3_000_000] + lines[6:]) + "\r\n"
    (tmp_path / "netstat.txt").write_text(text, encoding="ascii")
    (tmp_path / "alone.txt").write_bytes(NETSTAT)
    case = load_case(tmp_path, limits=Limits(max_line_chars=1 << 20))
    inv = _inv(case)
    assert inv["netstat.txt"].rows == inv["alone.txt"].rows > 0
    (warning,) = [w for w in inv["netstat.txt"].warnings if "limit" in w]
    offset = sum(len(x) + 1 for x in lines[:6])  # characters before it (CRLF read as one)
    assert warning.startswith("line=7:") and f"offset {offset}" in warning, warning


def test_one_line_file_costs_bounded_memory(tmp_path: Path) -> None:
    # 200 MB in one line after a netstat header: held whole, it cost ~5x its size
    path = tmp_path / "netstat.txt"
    with open(path, "wb") as fh:
        fh.write(NETSTAT + b"  TCP    ")
        chunk = b"9" * (1 << 20)
        for _ in range(200):
            fh.write(chunk)
    res = child_json(f"""
        import json, resource
        from analyzer.case import load_case
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        c = load_case({str(path)!r})
        e = c.inventory[0]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"grew_mb": (peak - base) / 1024, "warnings": e.warnings,
                           "rows": e.rows, "source": e.source}}))
    """)
    assert res["source"] == "netstat" and res["rows"] > 0, res
    assert any("limit" in w for w in res["warnings"]), res
    assert res["grew_mb"] < 150, res  # one 16 Mi-character line at most, not 200 MB x 5


# --- shape 10: many small files -------------------------------------------------

def test_many_small_files_keep_no_per_file_objects(tmp_path: Path) -> None:
    for i in range(300):
        (tmp_path / f"netstat_{i:04d}.txt").write_bytes(NETSTAT)
    gc.collect()
    before = sum(isinstance(o, ParseContext) for o in gc.get_objects())
    case = load_case(tmp_path)
    gc.collect()
    after = sum(isinstance(o, ParseContext) for o in gc.get_objects())
    assert after == before
    assert len(case.table) == sum(e.rows for e in case.inventory) > 300
    assert list(case.table["path"].astype(str).unique()[:2]) == ["netstat_0000.txt", "netstat_0001.txt"]


def test_many_small_files_cost_their_rows_in_memory(tmp_path: Path) -> None:
    res = child_json(f"""
        import json, os, resource
        from pathlib import Path
        from analyzer.case import load_case
        body = Path({str(FIXTURES / "text" / "netstat_ano.txt")!r}).read_bytes()
        def folder(name, n):
            d = Path({str(tmp_path)!r}) / name
            d.mkdir()
            for i in range(n):
                (d / f"netstat_{{i:05d}}.txt").write_bytes(body)
            return d
        small, big = folder("small", 200), folder("big", 4000)
        load_case(small)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        c = load_case(big)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"per_file_kb": (peak - base) / 3800, "rows": len(c.table)}}))
    """, timeout=300)
    assert res["rows"] > 4000
    assert res["per_file_kb"] < 12, res  # was ~39 KB per file


# --- per-file budgets -------------------------------------------------------------

class _Greedy(Source):
    name = "test-greedy"
    kind = "test-greedy"

    def sniff(self, head: bytes, name: str) -> int:
        return 99 if head.startswith((b"SPIN", b"HOG")) else 0

    def parse(self, ctx: ParseContext):
        head = Path(ctx.fs_path).read_bytes()[:4]
        hoard = []
        while True:  # never yields: only the timer can stop it
            if head.startswith(b"HOG"):
                hoard.append(bytearray(8 << 20))
                time.sleep(0.01)


@pytest.fixture
def greedy():
    _REGISTRY[_Greedy.name] = _Greedy()
    yield
    del _REGISTRY[_Greedy.name]


def test_file_over_its_time_or_memory_budget_fails_and_the_case_goes_on(tmp_path: Path,
                                                                      greedy) -> None:
    (tmp_path / "a-spin.bin").write_bytes(b"SPIN")
    (tmp_path / "b-hog.bin").write_bytes(b"HOG")
    (tmp_path / "c-netstat.txt").write_bytes(NETSTAT)
    lim = Limits(file_seconds=1.5, file_memory_bytes=200 << 20)
    # On the main thread (the budget's timer lives there); a watchdog turns
    # a regression into a KeyboardInterrupt instead of a hung suite.
    import _thread
    watchdog = threading.Timer(60, _thread.interrupt_main)
    watchdog.start()
    try:
        case = load_case(tmp_path, limits=lim)
    finally:
        watchdog.cancel()
    inv = _inv(case)
    assert inv["a-spin.bin"].status == "failed" and "time limit of 1.5 s" in inv["a-spin.bin"].detail
    assert inv["b-hog.bin"].status == "failed" and "memory limit of 200 MiB" in inv["b-hog.bin"].detail
    assert inv["c-netstat.txt"].status == "parsed" and inv["c-netstat.txt"].rows > 0


# --- shape 13: a zip cut in half --------------------------------------------------

def test_zip_without_central_directory_recovers_members_before_the_cut(tmp_path: Path) -> None:
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a/netstat.txt", NETSTAT, compress_type=zipfile.ZIP_STORED)
        zf.writestr("b/tasklist.txt", (FIXTURES / "text" / "tasklist_plain.txt").read_bytes(),
                    compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("c/big.txt", NETSTAT * 400, compress_type=zipfile.ZIP_STORED)
    raw = buf.getvalue()
    cut = raw.index(b"c/big.txt") + 10_000  # inside the third member's data
    (tmp_path / "upload.zip").write_bytes(raw[:cut])
    inv = _inv(load_case(tmp_path))
    top = inv["upload.zip"]
    assert top.status == "partial" and "no central directory" in top.detail
    assert "3 member(s) extracted of 3 listed" in top.detail
    assert inv["upload.zip!a/netstat.txt"].status == "parsed"
    assert inv["upload.zip!b/tasklist.txt"].status == "parsed"
    big = inv["upload.zip!c/big.txt"]
    assert big.status == "partial" and "truncated" in big.detail and big.size < len(NETSTAT) * 400


def test_long_member_names_windows_can_write_are_accepted(tmp_path: Path) -> None:
    import io

    name300 = "Exchange/" + "Logs-" * 40 + "/" + "ä" * 200 + "-netstat.txt"  # 200 x 2 UTF-8 bytes
    assert len(name300) > 300
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name300, NETSTAT)
        zf.writestr("x" * 300 + ".txt", b"too long for Windows")
    (tmp_path / "names.zip").write_bytes(buf.getvalue())
    inv = _inv(load_case(tmp_path))
    assert inv[f"names.zip!{name300}"].status == "parsed"
    refused = inv["names.zip!" + "x" * 300 + ".txt"]
    assert refused.status == "rejected" and "304 characters" in refused.detail


# --- shapes 14-15: batch ------------------------------------------------------------

def test_batch_case_with_a_non_utf8_name(tmp_path: Path) -> None:
    from analyzer.batch import run_batch

    case = tmp_path / os.fsdecode(b"caf\xe9")
    case.mkdir()
    (case / os.fsdecode(b"netstat-\xff.txt")).write_bytes(NETSTAT)
    other = tmp_path / "plain"
    other.mkdir()
    (other / "netstat.txt").write_bytes(NETSTAT)
    results = run_batch([case, other], tmp_path / "store")
    assert [r.status for r in results] == ["done", "done"], results
    # results come back as workers finish, in either order
    assert sorted(r.name for r in results) == ["caf\\xe9", "plain"]


def _benchmark():
    """benchmarks/hostile_shapes.py as a module (shared shape builders)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hostile_shapes",
                                                  REPO / "benchmarks" / "hostile_shapes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def test_batch_worker_dies_with_a_killed_parent(tmp_path: Path) -> None:
    pidfile = tmp_path / "worker.pid"
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "x.bin").write_bytes(b"HANG")
    script = _benchmark().hanging_batch_script(tmp_path / "case", tmp_path / "store", pidfile)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    parent = subprocess.Popen([sys.executable, "-c", script], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not pidfile.exists() or not pidfile.read_text():
            assert time.monotonic() < deadline and parent.poll() is None, "worker never started"
            time.sleep(0.2)
        worker = int(pidfile.read_text())
        assert _state(worker) not in (None, "Z")
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 20
        while _state(worker) not in (None, "Z", "X"):
            assert time.monotonic() < deadline, "worker outlived its killed parent"
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            parent.kill()
        if pidfile.exists() and pidfile.read_text() and _state(int(pidfile.read_text())) not in (None, "Z"):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
