"""Robustness: corrupt and hostile inputs never crash, hang or stop the case.

The project's standard: bad input gets a warning naming the file and an
offset/line, never a traceback, and never stops the rest of the case.

Mutation tests
    Every fixture under tests/fixtures/, three small real .evtx files and
    regipy's NTUSER.DAT from ../shared/corpus (skipped when absent), and an
    .evt, an .evtx and a hive written by analyzer.synth are mutated with a
    seeded RNG (truncation at structural points, bit flips, zeroed 4 KiB
    blocks, random splices, duplicated chunks, UTF-16 cut at an odd byte).
    Each mutant goes through the real path, ``load_case`` on a folder holding
    it (same sniffing as a real case), in a watchdog worker process: a mutant
    that takes longer than ``MUTANT_TIMEOUT_S`` is a hang (a loop trusting a
    corrupt count), a dead worker is a crash in native code, an exception out
    of ``load_case`` is a crash. Every mutant's label is its exact recipe
    (offsets, bits, lengths), so a failure can be rebuilt by hand.

    The worker is a separate interpreter under an address-space limit: a
    parser that allocates from a corrupt length fails with MemoryError there
    instead of taking the shared machine's memory.

Hostile archives
    What tests/test_archive.py does not already cover: a zip whose central
    directory lies about sizes, nested bombs, tar member names with a NUL or
    4,000 characters, 7z and cab members with traversal names, nesting deeper
    than the limit across mixed archive kinds. Nothing may be written outside
    the work directory, every member is in the inventory with a reason.

Survey
    ``python tests/test_robustness.py`` runs the same mutants and prints how
    often the case's safety net fired ("parser error:" in the inventory: an
    exception escaped a parser) per source, with the raising line and a
    reproducer written to /tmp/robustness-repro/. Firings are not failures
    (the case survives), but each is a parser that did not warn with a
    locator as it should.
"""
from __future__ import annotations

import io
import json
import os
import random
import re
import selectors
import shutil
import struct
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
FIXTURES = REPO / "tests" / "fixtures"

#: A mutant answering later than this is a hang. Normal mutants take well
#: under a second; the margin covers a loaded 2-core machine.
MUTANT_TIMEOUT_S = 20.0
#: Address-space limit of the worker: pyarrow and pandas start in ~1 GiB of
#: virtual memory; a parser trusting a corrupt 32-bit length can ask for 4 GiB.
WORKER_MEMORY_LIMIT = 6 << 30
STATUSES_OK = {"parsed", "partial", "failed", "skipped"}

# ---------------------------------------------------------------------------
# The watchdog worker
# ---------------------------------------------------------------------------

_WORKER_CODE = r"""
import json, os, resource, sys, time, traceback
out = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # anything a library prints must not corrupt the protocol
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from analyzer.case import load_case
from analyzer.table import validate
out.write(json.dumps({"ready": True}) + "\n")
for line in sys.stdin:
    req = json.loads(line)
    t0 = time.monotonic()
    res = {}
    selftest = req.get("selftest") or {}  # the harness's own tests: a hang, a crash
    if "sleep" in selftest:
        time.sleep(selftest["sleep"])
    if "exit" in selftest:
        os._exit(selftest["exit"])
    try:
        case = load_case(req["dir"], work_root=req.get("work_root"), **req["options"])
    except BaseException:
        res["error"] = traceback.format_exc(limit=-8)
    else:
        res["entries"] = [e.to_dict() for e in case.inventory]
        res["rows"] = len(case.table)
        try:
            validate(case.table)
            res["invalid"] = None
        except Exception as exc:
            res["invalid"] = f"{type(exc).__name__}: {exc}"[:2000]
        try:
            res["row_paths"] = sorted({str(p) for p in case.table["path"].dropna().unique()})
        except Exception as exc:
            res["row_paths"] = [f"<unreadable path column: {exc}>"]
    res["seconds"] = time.monotonic() - t0
    out.write(json.dumps(res, default=str) + "\n")
"""


class Worker:
    """A long-lived interpreter that runs load_case on request, killed and
    restarted when a request exceeds its time limit or the process dies."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self._buf = b""

    def _start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE, str(WORKER_MEMORY_LIMIT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd=REPO, env=env, bufsize=0)
        self._buf = b""
        ready = self._readline(120.0)
        if ready is None or not ready.get("ready"):
            self.close()
            raise RuntimeError("robustness worker did not start")

    def _readline(self, timeout: float) -> dict | None:
        assert self.proc and self.proc.stdout
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in self._buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    return {"died": self.proc.wait()}
                self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def run(self, case_dir: Path, options: dict, timeout: float = MUTANT_TIMEOUT_S,
            work_root: Path | None = None, selftest: dict | None = None) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc and self.proc.stdin
        req = {"dir": str(case_dir), "options": options,
               "work_root": str(work_root) if work_root else None, "selftest": selftest}
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
        except BrokenPipeError:
            self.close()
            return {"died": "broken pipe"}
        res = self._readline(timeout)
        if res is None:
            self.close()
            return {"hang": timeout}
        if "died" in res:
            self.close()
        return res

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # type: ignore[union-attr]
                self.proc.wait(timeout=5)
            except Exception:  # noqa: BLE001 - a hung worker is killed below
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

@dataclass
class Input:
    """One file to mutate: how to get its bytes, its layout and options."""

    id: str
    name: str                       # file name the mutant gets in its case folder
    load: Callable[[], bytes]
    layout: str                     # text | evtx | evt | hive
    options: dict = field(default_factory=dict)
    corpus: bool = False
    #: mutation families to run and a scale (binary inputs get more mutants)
    families: tuple[str, ...] = ()


def _synth_evt() -> bytes:
    from analyzer.synth import EvtRecord, evt_bytes

    t0 = datetime(2006, 5, 1, 10, 0, tzinfo=timezone.utc)
    recs = [
        EvtRecord(10000, "DCOM", t0, "error", computer="EXCH01",
                  strings=["{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}", "5", "C:\\empkp.exe"],
                  user_sid="S-1-5-21-1004336348-1177238915-682003330-500"),
        EvtRecord(9986, "Exchange MOM", t0 + timedelta(minutes=5), "information",
                  computer="EXCH01", strings=["EXCH01"], data=b"\x01\x02\xab"),
        EvtRecord(529, "Security", t0 + timedelta(hours=1), "audit_failure", computer="EXCH01",
                  category=2, strings=["bob", "CORP", "2"], user_sid="S-1-5-18"),
        EvtRecord(1022, "MSExchangeIS Mailbox Store", t0 + timedelta(hours=2), "warning",
                  strings=["Ünïcödé ✓"]),
    ] + [EvtRecord(7036, "Service Control Manager", t0 + timedelta(hours=3, seconds=i),
                   strings=[f"Service {i}", "running"]) for i in range(12)]
    return evt_bytes(recs, pad_to=0x2000)


def _synth_evtx() -> bytes:
    """Two chunks, so truncation and zeroing can hit the second one."""
    from analyzer.synth import EvtxEvent, evtx_bytes

    t0 = datetime(2021, 3, 1, 8, 0, tzinfo=timezone.utc)
    events = []
    for i in range(260):
        if i % 3 == 0:
            events.append(EvtxEvent("Microsoft-Windows-DistributedCOM", 10016, t0 + timedelta(seconds=i),
                                    level=2, channel="System", qualifiers=0, event_source_name="DCOM",
                                    provider_guid="{1B562E86-B7AA-4131-BADC-B6F3A001407E}",
                                    data={"param1": "application-specific", "param2": "Local",
                                          "param3": "Activation", "param4": f"{{D63B10C5-{i:04d}}}"}))
        else:
            events.append(EvtxEvent("MSExchangeIS", 9646, t0 + timedelta(seconds=i), level=3,
                                    channel="Application", qualifiers=32768,
                                    data=[f"/o=Org/cn=user{i}", "Objects", str(500 + i)],
                                    binary=bytes(range(i % 16))))
    raw = evtx_bytes(events)
    assert len(raw) > 0x1000 + 0x10000, "the synth evtx should span two chunks"
    return raw


def _synth_hive() -> bytes:
    from analyzer.synth import hive_bytes

    clsid = r"Classes\CLSID\{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}"
    keys = {
        r"Microsoft\ExMPLS": {"DATA0": ("REG_BINARY", b"\x01\x02" * 40),
                              "Name": ("REG_SZ", "Exchange MOM"),
                              "Big": ("REG_BINARY", bytes(range(256)) * 80)},
        clsid + r"\LocalServer32": {"": ("REG_SZ", r"C:\Program Files\Exchsrvr\bin\EMPKP.exe")},
        r"Microsoft\Windows NT\CurrentVersion": {"CurrentBuild": ("REG_SZ", "3790"),
                                                "InstallDate": ("REG_DWORD", 1136073600),
                                                "Paths": ("REG_MULTI_SZ", ["C:\\a", "C:\\b"])},
        r"Microsoft\Rpc\Internet": {"Ports": ("REG_MULTI_SZ", ["6001-6002", "6004"]),
                                   "PortsInternetAvailable": ("REG_SZ", "Y")},
    }
    for i in range(40):
        keys[rf"Microsoft\Exchange\Key{i:02d}"] = {f"V{j}": ("REG_DWORD", i * j) for j in range(4)}
    return hive_bytes(keys, root_name="CMI-CreateHive{199DAFC2-6F16-4946-BF90-5A3FC3A60902}")


def _corpus_file(rel: str) -> Callable[[], bytes]:
    def load() -> bytes:
        p = CORPUS / rel
        if not p.is_file():
            pytest.skip(f"../shared/corpus/{rel} is not present (real Windows sample files)")
        return p.read_bytes()
    return load


TEXT_FAMILIES = ("truncate", "bitflip", "zero4k", "splice", "dup", "utf16", "digits")
BINARY_FAMILIES = ("truncate", "bitflip", "zero4k", "splice", "dup", "fields")


def _inputs() -> list[Input]:
    out: list[Input] = []
    for p in sorted(FIXTURES.rglob("*")):
        if p.is_file():
            rel = p.relative_to(FIXTURES).as_posix()
            out.append(Input(f"fixture:{rel}", p.name, p.read_bytes, "text",
                             families=TEXT_FAMILIES))
    for rel in ("evtx/Application_no_crc32.evtx", "evtx/MSExchange_Management_wec.evtx",
                "evtx/new-user-security.evtx"):
        out.append(Input(f"corpus:{rel}", Path(rel).name, _corpus_file(rel), "evtx",
                         corpus=True, families=BINARY_FAMILIES))
    out.append(Input("corpus:evtx/new-user-security.evtx[python]", "new-user-security.evtx",
                     _corpus_file("evtx/new-user-security.evtx"), "evtx",
                     {"evtx_backend": "python"}, corpus=True, families=("truncate", "bitflip", "dup")))
    out.append(Input("corpus:hives/regipy-NTUSER.DAT[full]", "NTUSER.DAT",
                     _corpus_file("hives/regipy-NTUSER.DAT"), "hive", {"registry": "full"},
                     corpus=True, families=BINARY_FAMILIES))
    out.append(Input("synth:SysEvent.Evt", "SysEvent.Evt", _synth_evt, "evt",
                     families=BINARY_FAMILIES))
    out.append(Input("synth:Application.evtx", "Application.evtx", _synth_evtx, "evtx",
                     families=BINARY_FAMILIES))
    out.append(Input("synth:Application.evtx[python]", "Application.evtx", _synth_evtx, "evtx",
                     {"evtx_backend": "python"}, families=("truncate", "bitflip", "zero4k", "dup")))
    out.append(Input("synth:SOFTWARE[targeted]", "SOFTWARE", _synth_hive, "hive",
                     families=BINARY_FAMILIES))
    out.append(Input("synth:SOFTWARE[full]", "SOFTWARE", _synth_hive, "hive", {"registry": "full"},
                     families=("truncate", "bitflip", "zero4k")))
    return out


INPUTS = {i.id: i for i in _inputs()}

# ---------------------------------------------------------------------------
# Mutations: each returns (label, bytes); the label is the exact recipe
# ---------------------------------------------------------------------------

Mutant = tuple[str, bytes]

#: Record/cell magics whose neighbourhoods hold the lengths and counts a
#: parser trusts: evtx chunk and record headers, evt records, hive bins/cells.
_MAGICS = {
    "evtx": (b"ElfChnk\x00", b"**\x00\x00"),
    "evt": (b"LfLe",),
    "hive": (b"regf", b"hbin", b"nk", b"vk", b"lh", b"lf", b"sk", b"db"),
    "text": (),
}

#: Mutant counts per family: (text, binary). Chosen so the file runs in
#: well under a minute on two shared cores.
_COUNTS = {"bitflip": (3, 18), "zero4k": (2, 5), "splice": (3, 8), "dup": (2, 3), "utf16": (2, 0),
           "fields": (0, 10)}
#: The survey (``python tests/test_robustness.py --scale N``) multiplies the
#: counts and draws other mutants; the tests always run at scale 1.
SCALE = 1


def _count(family: str, inp: Input) -> int:
    return _COUNTS[family][inp.layout != "text"] * SCALE


def _rng(inp: Input, family: str) -> random.Random:
    salt = "" if SCALE == 1 else f":x{SCALE}"
    return random.Random(f"robustness:{inp.id}:{family}{salt}")  # str seeds hash with sha512: stable


def _magic_offsets(data: bytes, layout: str, limit: int = 400) -> list[int]:
    hits: list[int] = []
    for magic in _MAGICS[layout]:
        start = 0
        while len(hits) < limit:
            i = data.find(magic, start)
            if i < 0:
                break
            hits.append(i)
            start = i + 1
    return sorted(hits)


def _line_starts(data: bytes) -> list[int]:
    return [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A and i + 1 < len(data)]


def _is_utf16(data: bytes) -> bool:
    return data[:2] in (b"\xff\xfe", b"\xfe\xff")


def _truncations(inp: Input, data: bytes) -> list[Mutant]:
    n = len(data)
    points: dict[int, str] = {1: "first byte only", n // 2: "half", n - 1: "last byte dropped"}
    if inp.layout == "text":
        lines = _line_starts(data)
        for frac in (0.3, 0.7):
            ln = lines[int(len(lines) * frac)] if lines else 0
            nxt = next((s for s in lines if s > ln), n)
            points.setdefault(ln + max(1, (nxt - ln) // 2), f"mid-line {lines.index(ln) + 1}")
        if _is_utf16(data):
            points.setdefault((n // 2) | 1, "UTF-16 odd byte")
        else:  # inside a multi-byte UTF-8 (or cp125x) character, when there is one
            hi = next((i for i in range(1, n) if 0x80 <= data[i] <= 0xBF and data[i - 1] >= 0xC2), None)
            if hi is not None:
                points.setdefault(hi, "mid-multibyte char")
    else:
        mags = _magic_offsets(data, inp.layout)
        rnd = _rng(inp, "truncate")
        for off in rnd.sample(mags, min(4, len(mags))):
            points.setdefault(off + 9, "mid-record header")
            points.setdefault(off + 60, "inside record")
        header = {"evtx": 0x80, "evt": 0x18, "hive": 0x200}[inp.layout]
        points.setdefault(header, "inside file header")
        if inp.layout == "evtx" and n > 0x11000:
            points.setdefault(0x11000 + 0x300, "inside second chunk")
        if inp.layout == "hive":
            points.setdefault(0x1000 + 0x10, "inside first hbin header")
    return [(f"truncate@{p:#x} ({why})", data[:p]) for p, why in sorted(points.items()) if 0 < p < n]


def _bitflips(inp: Input, data: bytes) -> list[Mutant]:
    rnd = _rng(inp, "bitflip")
    count = _count("bitflip", inp)
    hot = [o + d for o in _magic_offsets(data, inp.layout) for d in range(0, 48)]
    hot = [h for h in hot if h < len(data)]
    out = []
    for k in range(count):
        buf = bytearray(data)
        flips = []
        for _ in range(rnd.randint(1, 12)):
            # half of the flips land where the lengths and counts are
            pos = rnd.choice(hot) if hot and rnd.random() < 0.5 else rnd.randrange(len(data))
            bit = rnd.randrange(8)
            buf[pos] ^= 1 << bit
            flips.append(f"{pos:#x}:{bit}")
        out.append((f"bitflip#{k} [{' '.join(flips)}]", bytes(buf)))
    return out


def _zero4k(inp: Input, data: bytes) -> list[Mutant]:
    rnd = _rng(inp, "zero4k")
    n = len(data)
    if inp.layout == "text":
        offs = [0, n // 2] if n > 1 else [0]
    else:
        blocks = n // 4096
        fixed = [0, 1] if inp.layout in ("evtx", "hive") else [0]
        offs = fixed + rnd.sample(range(blocks), min(_count("zero4k", inp) - len(fixed), blocks))
        offs = [b * 4096 for b in sorted(set(offs))]
    out = []
    for off in offs:
        buf = bytearray(data)
        end = min(off + 4096, n)
        buf[off:end] = bytes(end - off)
        out.append((f"zero[{off:#x}:{end:#x}]", bytes(buf)))
    return out


def _splices(inp: Input, data: bytes) -> list[Mutant]:
    rnd = _rng(inp, "splice")
    n = len(data)
    out = []
    for k in range(_count("splice", inp)):
        op = ("replace", "insert", "delete", "copy")[k % 4]
        pos = rnd.randrange(n)
        ln = rnd.randint(1, 64 if inp.layout == "text" else 512)
        if op == "replace":
            junk = rnd.randbytes(ln)
            mut = data[:pos] + junk + data[pos + ln:]
            label = f"splice#{k} replace {ln} random bytes at {pos:#x} (seed-derived)"
        elif op == "insert":
            junk = rnd.randbytes(ln)
            mut = data[:pos] + junk + data[pos:]
            label = f"splice#{k} insert {ln} random bytes at {pos:#x}"
        elif op == "delete":
            mut = data[:pos] + data[pos + ln:]
            label = f"splice#{k} delete [{pos:#x}:{pos + ln:#x}]"
        else:
            src = rnd.randrange(n)
            piece = data[src:src + ln]
            mut = data[:pos] + piece + data[pos + len(piece):]
            label = f"splice#{k} copy [{src:#x}:{src + len(piece):#x}] over {pos:#x}"
        out.append((label, mut))
    return out


def _dups(inp: Input, data: bytes) -> list[Mutant]:
    rnd = _rng(inp, "dup")
    n = len(data)
    out = []
    if inp.layout == "text":
        lines = _line_starts(data)
        a = lines[len(lines) // 3]
        b = lines[min(len(lines) - 1, len(lines) // 3 + 3)]
        b = b if b > a else n
        out.append((f"dup lines [{a:#x}:{b:#x}] inserted after themselves",
                    data[:b] + data[a:b] + data[b:]))
        out.append((f"dup whole file appended", data + data))
        return out
    if inp.layout == "evtx" and n >= 0x11000:
        chunk = data[0x1000:0x11000]
        out.append(("dup first 64 KiB chunk appended", data + chunk))
        out.append(("dup first chunk inserted after itself", data[:0x11000] + chunk + data[0x11000:]))
    mags = _magic_offsets(data, inp.layout)
    while len(out) < _count("dup", inp):
        a = rnd.choice(mags) if mags else rnd.randrange(n)
        ln = rnd.randint(16, 1024)
        b = rnd.randrange(n)
        out.append((f"dup [{a:#x}:{a + ln:#x}] inserted at {b:#x}", data[:b] + data[a:a + ln] + data[b:]))
    return out


def _utf16(inp: Input, data: bytes) -> list[Mutant]:
    from analyzer import textio

    if _is_utf16(data):
        u16 = data
        how = "original UTF-16"
    else:
        enc = textio.detect_encoding(data[:65536])
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            text = data.decode("latin-1")
        u16 = b"\xff\xfe" + text.lstrip("\ufeff").encode("utf-16-le")
        how = f"re-encoded UTF-16LE+BOM from {enc}"
    n = len(u16)
    return [(f"utf16 cut at odd byte {(n // 2) | 1:#x} ({how})", u16[:(n // 2) | 1]),
            (f"utf16 last byte dropped ({how})", u16[:n - 1 if n % 2 == 0 else n - 2])]


#: Values a corrupt length, count or offset field typically takes.
_HOSTILE_U32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF8, 0x10000, 0x1000)


def _fields(inp: Input, data: bytes) -> list[Mutant]:
    """Overwrite one aligned 32-bit field near a record/cell magic with a
    hostile value (0, -1, huge, a self-pointer): the counts and lengths a
    parser loops on. Binary formats only."""
    rnd = _rng(inp, "fields")
    mags = _magic_offsets(data, inp.layout)
    out = []
    for k in range(_count("fields", inp)):
        base = rnd.choice(mags) if mags else 0
        pos = base + 4 * rnd.randrange(12)
        if pos + 4 > len(data):
            pos = base
        if rnd.random() < 0.25:  # point an offset field at its own cell (hive: offsets from 0x1000)
            val = (pos - (0x1000 if inp.layout == "hive" else 0)) & 0xFFFFFFFF
            why = "self-pointer"
        else:
            val = rnd.choice(_HOSTILE_U32)
            why = "value"
        buf = bytearray(data)
        struct.pack_into("<I", buf, pos, val)
        out.append((f"fields#{k} u32 at {pos:#x} := {val:#x} ({why})", bytes(buf)))
    return out


def _digits(inp: Input, data: bytes) -> list[Mutant]:
    """Survey only: one ASCII digit 1/2/3 turned into its superscript ('¹²³',
    in UTF-8; in cp1252 it is one flipped top bit: '2' 0x32 -> '²' 0xB2).
    ``str.isdigit()`` accepts '²' but ``int()`` refuses it, so
    ``int(x) if x.isdigit()`` raises. Not in the test run until the sources
    guard those ints (see the report)."""
    if inp.layout != "text" or _is_utf16(data):
        return []
    rnd = _rng(inp, "digits")
    spots = [i for i, b in enumerate(data) if b in b"123"]
    out = []
    for i in sorted(rnd.sample(spots, min(3 * SCALE, len(spots)))):
        sup = {0x31: "\u00b9", 0x32: "\u00b2", 0x33: "\u00b3"}[data[i]].encode()
        out.append((f"digit at {i:#x} {chr(data[i])!r} -> UTF-8 {sup.hex()}",
                    data[:i] + sup + data[i + 1:]))
    return out


FAMILIES: dict[str, Callable[[Input, bytes], list[Mutant]]] = {
    "truncate": _truncations, "bitflip": _bitflips, "zero4k": _zero4k,
    "splice": _splices, "dup": _dups, "utf16": _utf16, "fields": _fields,
    "digits": _digits,
}
#: Families the survey adds to each input's own (they find known, reported bugs).
SURVEY_ONLY_FAMILIES: tuple[str, ...] = ()


def mutants(inp: Input, family: str) -> list[Mutant]:
    data = inp.load()
    return [(label, m) for label, m in FAMILIES[family](inp, data) if m != data]


# ---------------------------------------------------------------------------
# What every mutant must satisfy
# ---------------------------------------------------------------------------

def problems_of(name: str, label: str, res: dict) -> list[str]:
    """Everything wrong with one load_case answer (empty list = fine)."""
    tag = f"{label}:"
    if "hang" in res:
        return [f"{tag} HANG: load_case did not return within {res['hang']:.0f} s"]
    if "died" in res:
        return [f"{tag} CRASH: worker process died (exit {res['died']})"]
    if res.get("error"):
        return [f"{tag} exception escaped load_case:\n{res['error']}"]
    out = []
    entries = res["entries"]
    mine = [e for e in entries if e["path"] == name]
    if len(mine) != 1:
        out.append(f"{tag} inventory has {len(mine)} entries for {name!r}: {entries}")
    for e in entries:
        archive_member = "!" in e["path"]
        allowed = STATUSES_OK | ({"rejected"} if archive_member else set())
        if e["status"] not in allowed:
            out.append(f"{tag} {e['path']}: status {e['status']!r}")
        if e["status"] in ("failed", "partial", "rejected") and not (e["detail"] or e["warnings"]):
            out.append(f"{tag} {e['path']}: status {e['status']} with no detail and no warnings")
    if res["invalid"]:
        out.append(f"{tag} table does not validate: {res['invalid']}")
    stray = [p for p in res["row_paths"] if p != name and not p.startswith(name + "!")]
    if stray:
        out.append(f"{tag} rows carry paths of no input file: {stray[:3]}")
    return out


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


def _cases() -> list:
    params = []
    for inp in INPUTS.values():
        marks = [pytest.mark.corpus] if inp.corpus else []
        for fam in inp.families:
            if fam == "digits" and not mutants(inp, fam):
                continue  # UTF-16 text, or no digit 1-3 to replace
            params.append(pytest.param(inp.id, fam, id=f"{inp.id}-{fam}", marks=marks))
    return params


@pytest.mark.parametrize("input_id,family", _cases())
def test_mutants_survive_load_case(input_id: str, family: str, worker: Worker, tmp_path: Path) -> None:
    inp = INPUTS[input_id]
    muts = mutants(inp, family)
    assert muts, f"{input_id}/{family}: no mutant generated"
    problems: list[str] = []
    for i, (label, data) in enumerate(muts):
        case = tmp_path / f"m{i}"
        case.mkdir()
        (case / inp.name).write_bytes(data)
        res = worker.run(case, inp.options)
        problems += problems_of(inp.name, label, res)
        shutil.rmtree(case)
    assert not problems, f"{input_id} ({len(problems)} of {len(muts)} mutants):\n" + "\n".join(problems)


def test_watchdog_catches_hang_crash_and_escaping_exception(tmp_path: Path) -> None:
    """The harness itself: a request that sleeps past its limit is a HANG, a
    worker that dies is a CRASH, an exception out of load_case is reported."""
    w = Worker()
    try:
        (tmp_path / "a.txt").write_text("x")
        hang = w.run(tmp_path, {}, timeout=1.0, selftest={"sleep": 60})
        assert any("HANG" in p for p in problems_of("a.txt", "selftest", hang))
        crash = w.run(tmp_path, {}, selftest={"exit": 3})
        assert crash == {"died": 3}
        assert any("CRASH" in p for p in problems_of("a.txt", "selftest", crash))
        escaped = w.run(tmp_path / "missing", {})
        assert "FileNotFoundError" in escaped["error"]
        fine = w.run(tmp_path, {})
        assert problems_of("a.txt", "selftest", fine) == [] and fine["entries"][0]["status"] == "skipped"
    finally:
        w.close()


# ---------------------------------------------------------------------------
# Damaged files keep what was read before the damage, and say where
# ---------------------------------------------------------------------------

def _load_one(tmp_path: Path, name: str, data: bytes, worker: Worker, **options) -> dict:
    case = tmp_path / "case"
    case.mkdir(parents=True)
    (case / name).write_bytes(data)
    res = worker.run(case, options)
    assert not problems_of(name, "load", res), problems_of(name, "load", res)
    (entry,) = [e for e in res["entries"] if e["path"] == name]
    return entry


#: A warning as the inventory shows it, "<locator>: <message>"; locators are
#: ``name=value`` (``offset=0x1200``, ``line=42``, ``event=3;line=17``).
_LOCATED = re.compile(r"^[a-z_]+=[^\s:]+", re.I)


def test_truncated_evt_keeps_records_before_the_cut(tmp_path: Path, worker: Worker) -> None:
    raw = _synth_evt()
    cut = 0x30
    for _ in range(5):  # cut 20 bytes into the sixth record
        cut += struct.unpack_from("<I", raw, cut)[0]
    entry = _load_one(tmp_path, "SysEvent.Evt", raw[:cut + 20], worker)
    assert entry["rows"] == 5 and entry["status"] == "partial"
    # the damaged record is named by its offset
    assert any(w.startswith(f"offset={cut:#x}") for w in entry["warnings"]), entry


def test_evtx_second_chunk_zeroed_keeps_first(tmp_path: Path, worker: Worker) -> None:
    raw = bytearray(_synth_evtx())
    first = struct.unpack_from("<Q", raw, 0x1000 + 0x10)[0]  # last record number of chunk 0
    raw[0x11000:0x12000] = bytes(0x1000)
    entry = _load_one(tmp_path, "Application.evtx", bytes(raw), worker)
    assert entry["rows"] >= first and entry["status"] == "partial", entry
    assert entry["warnings"] or entry["detail"]


def test_truncated_hive_keeps_keys_read_before_the_cut(tmp_path: Path, worker: Worker) -> None:
    raw = _synth_hive()
    whole = _load_one(tmp_path / "a", "SOFTWARE", raw, worker, registry="full")
    cut = _load_one(tmp_path / "b", "SOFTWARE", raw[: len(raw) * 3 // 4], worker, registry="full")
    assert whole["status"] == "parsed" and whole["rows"] > 0
    assert 0 < cut["rows"] < whole["rows"], (whole["rows"], cut)
    assert cut["status"] == "partial" and (cut["warnings"] or cut["detail"])


def test_one_bad_file_does_not_stop_the_case(tmp_path: Path, worker: Worker) -> None:
    """Mutants next to good files: the good files are read in full."""
    case = tmp_path / "case"
    case.mkdir()
    good = FIXTURES / "text" / "netstat_ano.txt"
    shutil.copy(good, case / "netstat.txt")
    raw = _synth_evtx()
    (case / "broken.evtx").write_bytes(raw[:0x1000 + 0x300])
    (case / "zeros.evt").write_bytes(b"\x30\x00\x00\x00LfLe" + bytes(4096))
    (case / "garbage.reg").write_bytes(b"\xff\xfeW\x00i\x00n\x00" + random.Random(7).randbytes(3001))
    res = worker.run(case, {})
    assert not problems_of("netstat.txt", "mixed case", res)
    inv = {e["path"]: e for e in res["entries"]}
    assert set(inv) == {"netstat.txt", "broken.evtx", "zeros.evt", "garbage.reg"}
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(good, alone / "netstat.txt")
    ref = {e["path"]: e for e in worker.run(alone, {})["entries"]}
    assert inv["netstat.txt"]["rows"] == ref["netstat.txt"]["rows"] > 0
    assert inv["netstat.txt"]["status"] == "parsed"


# ---------------------------------------------------------------------------
# Hostile archives (beyond tests/test_archive.py)
# ---------------------------------------------------------------------------

def _snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def _load_hostile(tmp_path: Path, worker: Worker, build: Callable[[Path], None],
                  **options) -> dict[str, dict]:
    """Build the case, load it with the work directory deep inside tmp_path
    (so a ``../../..`` escape would land where the snapshot sees it) and
    check nothing outside the (removed) work directory changed."""
    case = tmp_path / "case"
    case.mkdir()
    build(case)
    work = tmp_path / "w1" / "w2" / "w3" / "work"
    work.mkdir(parents=True)
    before = _snapshot(tmp_path)
    res = worker.run(case, options, timeout=120.0, work_root=work)
    after = _snapshot(tmp_path)
    assert "hang" not in res and "died" not in res and not res.get("error"), res
    assert after == before, f"written outside the work directory: {sorted(after ^ before)}"
    assert list(work.iterdir()) == [], "work directory not cleaned"
    assert res["invalid"] is None, res["invalid"]
    inv = {e["path"]: e for e in res["entries"]}
    assert len(inv) == len(res["entries"]), "a path is inventoried twice"
    for e in res["entries"]:
        assert e["status"] in STATUSES_OK | {"rejected"}, e
        if e["status"] in ("rejected", "failed", "partial"):
            assert e["detail"], e
    return inv


def _zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data,
                        compress_type=method, compresslevel=9)
    return buf.getvalue()


def _patch_central_sizes(raw: bytes, name: bytes, *, compressed: int | None = None,
                         uncompressed: int | None = None, local_too: bool = False) -> bytes:
    """Rewrite the sizes a zip's central directory (and optionally the local
    header) declares for one member."""
    buf = bytearray(raw)
    cd = buf.find(b"PK\x01\x02")
    while cd >= 0:
        nlen = struct.unpack_from("<H", buf, cd + 28)[0]
        if bytes(buf[cd + 46:cd + 46 + nlen]) == name:
            if compressed is not None:
                struct.pack_into("<I", buf, cd + 20, compressed)
            if uncompressed is not None:
                struct.pack_into("<I", buf, cd + 24, uncompressed)
            if local_too:
                lh = struct.unpack_from("<I", buf, cd + 42)[0]
                if compressed is not None:
                    struct.pack_into("<I", buf, lh + 18, compressed)
                if uncompressed is not None:
                    struct.pack_into("<I", buf, lh + 22, uncompressed)
        cd = buf.find(b"PK\x01\x02", cd + 4)
    return bytes(buf)


def test_zip_central_directory_lies_about_sizes(tmp_path: Path, worker: Worker) -> None:
    netstat = (FIXTURES / "text" / "netstat_ano.txt").read_bytes()
    bomb = b"\x00" * (48 << 20)  # deflates ~1000:1

    def build(case: Path) -> None:
        raw = _zip_bytes({"small-bomb.bin": bomb, "netstat.txt": netstat, "short.txt": netstat,
                          "huge-claim.txt": netstat})
        # the bomb claims 64 KiB (ratio looks harmless): stopped while writing
        raw = _patch_central_sizes(raw, b"small-bomb.bin", uncompressed=64 << 10, local_too=True)
        # claims fewer bytes than it holds: the CRC cannot match
        raw = _patch_central_sizes(raw, b"short.txt", uncompressed=100)
        # claims 4 GiB - 1 from a few hundred bytes: ratio/size refused up front
        raw = _patch_central_sizes(raw, b"huge-claim.txt", uncompressed=0xFFFFFFFF)
        (case / "lying.zip").write_bytes(raw)

    inv = _load_hostile(tmp_path, worker, build)
    assert inv["lying.zip"]["status"] == "partial"
    for member in ("small-bomb.bin", "short.txt", "huge-claim.txt"):
        e = inv[f"lying.zip!{member}"]
        assert e["status"] == "rejected" and e["detail"], e
    assert inv["lying.zip!netstat.txt"]["rows"] > 0  # the honest member is read


def test_nested_zip_bombs(tmp_path: Path, worker: Worker) -> None:
    """Zip in zip, each level at a high ratio (deflated zeros deflate again)."""
    level0 = _zip_bytes({f"zeros{i}.bin": b"\x00" * (40 << 20) for i in range(4)})
    level1 = _zip_bytes({f"l0_{i}.zip": level0 for i in range(8)})
    level2 = _zip_bytes({f"l1_{i}.zip": level1 for i in range(8)})
    ratios = [(40 << 22) / len(level0), (len(level0) * 8) / len(level1)]
    assert all(r > 20 for r in ratios), ratios

    def build(case: Path) -> None:
        (case / "bomb.zip").write_bytes(level2)

    inv = _load_hostile(tmp_path, worker, build)
    leaves = [e for p, e in inv.items() if p.endswith(".bin")]
    assert leaves and all(e["status"] == "rejected" and "ratio" in e["detail"] for e in leaves)
    # nothing of the 10 GiB it would expand to was kept as a file
    assert all(e["size"] < (40 << 20) or e["status"] == "rejected" for e in inv.values())


def _tar_with_names(names: list[str]) -> bytes:
    """A pax tar: names go into the pax ``path`` record, which (unlike the
    NUL-terminated ustar field) can carry a NUL byte and any length."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for i, n in enumerate(names):
            info = tarfile.TarInfo(f"placeholder{i}.txt")
            info.pax_headers = {"path": n}
            data = (FIXTURES / "text" / "tasklist_plain.txt").read_bytes()
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_tar_member_names_nul_and_4000_chars(tmp_path: Path, worker: Worker) -> None:
    long_flat = "a" * 4000 + ".txt"       # one component far over NAME_MAX
    long_deep = "/".join(["d" * 200] * 19) + "/" + "e" * 181  # 4,000 chars in 20 legal parts
    names = ["bad\x00name.txt", long_flat, long_deep, "ok.txt"]
    assert len(long_deep) == 4000

    def build(case: Path) -> None:
        (case / "names.tar").write_bytes(_tar_with_names(names))

    inv = _load_hostile(tmp_path, worker, build)
    members = {p.split("!", 1)[1]: e for p, e in inv.items() if p.startswith("names.tar!")}
    # every stored name is in the inventory: extracted and read, or rejected with a reason
    assert len(members) == len(names), sorted(m[:40] for m in members)
    assert members["ok.txt"]["rows"] > 0
    nul = members["bad\\x00name.txt"]  # shown escaped: control characters never reach a terminal
    assert nul["status"] == "rejected" and "NUL" in nul["detail"]
    flat = members[long_flat]
    assert flat["status"] == "rejected" and flat["detail"], flat
    # the deep path is legal on Linux below the work directory (or refused with a reason)
    deep = members[long_deep]
    assert (deep["status"] == "parsed" and deep["rows"] > 0) or \
        (deep["status"] == "rejected" and deep["detail"]), deep
    assert inv["names.tar"]["status"] == "partial"


def test_7z_traversal_names(tmp_path: Path, worker: Worker, monkeypatch) -> None:
    py7zr = pytest.importorskip("py7zr")
    # py7zr refuses to *write* such names; a hostile archive is not made by py7zr
    monkeypatch.setattr(py7zr.py7zr, "check_archive_path", lambda name: True)

    def build(case: Path) -> None:
        with py7zr.SevenZipFile(case / "logs.7z", "w") as z:
            z.writestr(b"escape\r\n", "../../../../evil.txt")
            z.writestr(b"escape\r\n", "inner/../../../../evil2.txt")
            z.writestr(b"escape\r\n", "/tmp/evil3.txt")
            z.writestr((FIXTURES / "text" / "tasklist_plain.txt").read_bytes(), "ok/tasklist.txt")

    inv = _load_hostile(tmp_path, worker, build)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path.parent / "evil.txt").exists()
    rejected = {p: e for p, e in inv.items() if "evil" in p}
    assert len(rejected) == 3 and all(e["status"] == "rejected" for e in rejected.values()), rejected
    assert "traversal" in rejected["logs.7z!../../../../evil.txt"]["detail"]
    assert "absolute" in rejected["logs.7z!/tmp/evil3.txt"]["detail"]
    assert inv["logs.7z!ok/tasklist.txt"]["rows"] > 0


def test_cab_traversal_names(tmp_path: Path, worker: Worker) -> None:
    cabarchive = pytest.importorskip("cabarchive")

    def build(case: Path) -> None:
        arc = cabarchive.CabArchive()
        arc["..\\..\\..\\..\\evil.txt"] = cabarchive.CabFile(b"escape\r\n")
        arc["C:\\Windows\\evil.dll"] = cabarchive.CabFile(b"MZ")
        arc["logs\\tasklist.txt"] = cabarchive.CabFile(
            (FIXTURES / "text" / "tasklist_plain.txt").read_bytes())
        (case / "more.cab").write_bytes(arc.save())

    inv = _load_hostile(tmp_path, worker, build)
    by_reason = {p: e["detail"] for p, e in inv.items() if e["status"] == "rejected"}
    assert any("traversal" in d for d in by_reason.values()), by_reason
    assert any("drive letter" in d for d in by_reason.values()), by_reason
    assert inv["more.cab!logs/tasklist.txt"]["rows"] > 0


def test_mixed_kind_nesting_deeper_than_limit(tmp_path: Path, worker: Worker) -> None:
    """zip > tar.gz > 7z > cab > zip > zip > zip: the default limit (5)
    rejects the sixth archive level; every level above is read."""
    py7zr = pytest.importorskip("py7zr")
    cabarchive = pytest.importorskip("cabarchive")
    from analyzer.archive import Limits

    leaf = (FIXTURES / "text" / "tasklist_plain.txt").read_bytes()
    blob = _zip_bytes({"l6.zip": _zip_bytes({"l7.zip": _zip_bytes({"deep/tasklist.txt": leaf})})})
    arc = cabarchive.CabArchive()
    arc["l4.zip"] = cabarchive.CabFile(blob)
    arc["tasklist.txt"] = cabarchive.CabFile(leaf)
    cab = arc.save()
    seven = io.BytesIO()
    with py7zr.SevenZipFile(seven, "w") as z:
        z.writestr(cab, "l3.cab")
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tf:
        info = tarfile.TarInfo("l2.7z")
        info.size = len(seven.getvalue())
        tf.addfile(info, io.BytesIO(seven.getvalue()))

    def build(case: Path) -> None:
        (case / "outer.zip").write_bytes(_zip_bytes({"l1.tar.gz": tgz.getvalue()}))

    inv = _load_hostile(tmp_path, worker, build)
    limit = Limits().max_depth
    chain = ["outer.zip", "l1.tar.gz", "l2.7z", "l3.cab", "l4.zip", "l6.zip", "l7.zip"]
    paths = ["!".join(chain[:k + 1]) for k in range(len(chain))]
    for depth, p in enumerate(paths[:limit]):
        assert inv[p]["status"] == "parsed", (depth, p, inv.get(p))
    assert inv[paths[limit]]["status"] == "rejected" and "nesting" in inv[paths[limit]]["detail"]
    assert not any(p.startswith(paths[limit] + "!") for p in inv)
    assert inv["outer.zip!l1.tar.gz!l2.7z!l3.cab!tasklist.txt"]["rows"] > 0


# ---------------------------------------------------------------------------
# Survey: how often the safety net fires (python tests/test_robustness.py)
# ---------------------------------------------------------------------------

def _raising_line(source_name: str, path: Path, display: str, options: dict) -> str:
    """Call the source's parse directly and name the frame that raised."""
    import traceback

    from analyzer.sources import Options, ParseContext, get

    ctx = ParseContext(path=display, fs_path=path, options=Options(**options),
                       work_dir=path.parent / "work")
    try:
        for _ in get(source_name).parse(ctx):
            pass
    except Exception as exc:  # noqa: BLE001 - that is what we are looking for
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if "/analyzer/" in f.filename]
        deepest = frames[-1]
        where = ours[-1] if ours else deepest
        rel = where.filename.split("/analyzer/", 1)[-1]
        lib = "" if deepest is where else f" (raised in {Path(deepest.filename).name}:{deepest.lineno})"
        return f"analyzer/{rel}:{where.lineno} `{(where.line or '').strip()}`{lib}"
    return "(did not raise when called directly)"


def survey(out_dir: Path = Path("/tmp/robustness-repro")) -> None:
    """Run every mutant through load_case; tabulate statuses and safety-net firings."""
    from collections import Counter, defaultdict

    from analyzer.sources import registered

    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / "cases"
    shutil.rmtree(work, ignore_errors=True)
    w = Worker()
    per_source: dict[str, Counter] = defaultdict(Counter)
    firings: dict[tuple[str, str], list[str]] = defaultdict(list)
    repro: dict[tuple[str, str], str] = {}
    failures, unlocated = [], Counter()
    sniff_errors: dict[tuple[str, str], str] = {}
    total, t0 = 0, time.monotonic()
    for inp in INPUTS.values():
        try:
            inp.load()
        except BaseException:  # noqa: BLE001 - pytest.skip outside pytest: corpus absent
            print(f"skip {inp.id}: not present", file=sys.stderr)
            continue
        for fam in inp.families + SURVEY_ONLY_FAMILIES:
            for i, (label, data) in enumerate(mutants(inp, fam)):
                total += 1
                for src in registered():
                    try:
                        src.sniff(data[:65536], inp.name)
                    except Exception as exc:  # noqa: BLE001
                        sniff_errors.setdefault((src.name, type(exc).__name__),
                                                f"{inp.id} {label}: {exc}")
                case = work / f"{len(repro)}-{total}"
                case.mkdir(parents=True)
                (case / inp.name).write_bytes(data)
                res = w.run(case, inp.options)
                probs = problems_of(inp.name, f"{inp.id} {label}", res)
                failures += probs
                keep = bool(probs)
                for e in res.get("entries", []):
                    src = e["source"] or "(none)"
                    per_source[src][e["status"]] += 1
                    unlocated[src] += sum(1 for x in e["warnings"] if not _LOCATED.match(x))
                    m = re.search(r"parser error: (\w+): ?(.*)", e["detail"] or "")
                    if m:
                        per_source[src]["safety net"] += 1
                        msg = re.sub(r"'[^']*'", "'…'", re.sub(r"0x[0-9a-f]+|\d+", "N", m.group(2)))[:90]
                        key = (src, f"{m.group(1)}: {msg}")
                        firings[key].append(f"{inp.id} {label}")
                        if key not in repro:
                            repro[key] = _raising_line(src, case / inp.name, inp.name, inp.options)
                            keep = True
                if not keep:
                    shutil.rmtree(case)
                else:
                    (case / "RECIPE.txt").write_text(f"{inp.id}\n{label}\noptions={inp.options}\n")
    w.close()
    print(f"# {total} mutants in {time.monotonic() - t0:.0f} s\n")
    print("| source | parsed | partial | failed | skipped | safety net | warnings w/o locator |")
    print("|---|---|---|---|---|---|---|")
    for src, c in sorted(per_source.items()):
        print(f"| {src} | {c['parsed']} | {c['partial']} | {c['failed']} | {c['skipped']} "
              f"| {c['safety net']} | {unlocated[src]} |")
    print("\n## Safety-net firings\n")
    for (src, err), where in sorted(firings.items(), key=lambda kv: -len(kv[1])):
        print(f"- **{src}** x{len(where)} `{err}`\n  - at {repro[(src, err)]}\n"
              f"  - e.g. {where[0]}" + (f"\n  - and {where[1]}" if len(where) > 1 else ""))
    print("\n## Sniffer exceptions (swallowed by sources.sniff)\n")
    for (src, typ), ex in sorted(sniff_errors.items()):
        print(f"- {src}: {typ}: {ex}")
    print("\n## Failures (hangs, crashes, invalid tables)\n")
    for f in failures:
        print(f"- {f}")
    print(f"\nmutant folders kept in {work}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    if "--scale" in sys.argv:
        SCALE = int(sys.argv[sys.argv.index("--scale") + 1])
    survey()


@pytest.mark.parametrize("name,line,col", [
    ("netstat_ano.txt", 8, 20), ("impacket_htb.txt", 8, 37), ("portqry_udp.txt", 6, 29),
    ("tasklist_plain.txt", 6, 31), ("setup55.txt", 6, 84), ("tracking_2003.log", 4, 85),
])
def test_superscript_digit_is_not_a_parser_error(tmp_path: Path, name: str, line: int, col: int) -> None:
    """``'²'.isdigit()`` is True but ``int('²')`` raises: one flipped bit in a
    cp1252 number must cost that value, not the rest of the file."""
    src = REPO / "tests" / "fixtures" / "text" / name
    lines = src.read_bytes().split(b"\n")
    target = lines[line - 1]
    assert target[col - 1:col].isdigit(), (name, target)
    lines[line - 1] = target[:col - 1] + "\u00b2".encode("utf-8") + target[col:]
    (tmp_path / name).write_bytes(b"\n".join(lines))
    from analyzer import load_case

    case = load_case(tmp_path)
    (entry,) = case.inventory
    assert "parser error" not in (entry.detail or ""), entry.detail
    assert entry.rows > 0
