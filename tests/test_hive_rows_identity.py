"""The hive source's rows do not change when its reader is rewritten.

Every real hive of the corpus (clean, damaged, dirty with its transaction
logs) and a set of hives written by analyzer.synth.regf (every value type,
odd data sizes, big data, ri index lists, old lf lists, Latin-1 and Unicode
names, out-of-range key times, a truncated hive, machine hives with their
SYSTEM sibling) are parsed in ``registry="full"`` and the default targeted
mode. The rows are compared column by column (a SHA-256 of each column's
values, in row order) with goldens recorded from the reader before the
rewrite, together with a few whole rows, the row count, the schema, the
warnings, the notes, the partial flag and the empty reason.

Regenerate (only when a change of content is intended, and say why in the
commit): ``PYTHONPATH=$PWD python tests/test_hive_rows_identity.py``.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import struct
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # run as a script to regenerate the goldens
    sys.path.insert(0, str(REPO))

from analyzer.sources import Options, ParseContext, get  # noqa: E402
from analyzer.synth import regf as synth  # noqa: E402
from analyzer.table import ARROW_SCHEMA  # noqa: E402

GOLDEN = REPO / "tests" / "data" / "hive_rows_identity.json"
CORPUS = REPO.parent / "shared" / "corpus"
MODES = ("full", "targeted")

# ---------------------------------------------------------------------------
# The hives

#: (case name, corpus-relative path); siblings (transaction logs, a SYSTEM
#: beside a SOFTWARE) are the other files of the same folder.
CORPUS_HIVES = [
    ("regipy-SYSTEM", "hives/regipy-SYSTEM"),
    ("regipy-NTUSER.DAT", "hives/regipy-NTUSER.DAT"),
    ("plaso-100_sub_keys", "hives/plaso-100_sub_keys.hiv"),
    ("plaso-corrupt_sub_key_list", "hives/plaso-corrupt_sub_key_list.hiv"),
    ("regipy-corrupted_system_hive", "hives/regipy-corrupted_system_hive"),
    ("zimmerman-NotAHive", "hives/zimmerman-NotAHive"),
    ("zimmerman-SAMBadHBinHeader", "hives/zimmerman-SAMBadHBinHeader"),
    ("zimmerman-SECURITYNoRoot", "hives/zimmerman-SECURITYNoRoot"),
    ("dirty-transactions_NTUSER", "hives-dirty/regipy_transactions_NTUSER/transactions_NTUSER.DAT"),
    ("dirty-BadBaseBlockHive", "hives-dirty/yarp_BadBaseBlockHive/BadBaseBlockHive"),
    ("dirty-BadLogHive", "hives-dirty/yarp_BadLogHive1/BadLogHive"),
    ("dirty-NewDirtyHive", "hives-dirty/yarp_NewDirtyHive1/NewDirtyHive"),
    ("dirty-RecoveredHive_Windows10", "hives-dirty/yarp_NewDirtyHive1/RecoveredHive_Windows10"),
    ("dirty-OldDirtyHive", "hives-dirty/yarp_OldDirtyHive/OldDirtyHive"),
    ("dirty-RecoveredHive_Windows7", "hives-dirty/yarp_OldDirtyHive/RecoveredHive_Windows7"),
]

_ODD = {
    # Windows-written shapes and damage a reader must decode the same way
    "sz": ("REG_SZ", "plain text"),
    "sz-garbage-after-nul": ("REG_SZ", "abc\x00".encode("utf-16-le") + b"Z\x00Z\x00"),
    "sz-odd-length": ("REG_SZ", b"a\x00b\x00c"),
    "sz-unterminated": ("REG_SZ", "no terminator".encode("utf-16-le")),
    "sz-lone-surrogate": ("REG_SZ", b"\x00\xd8a\x00\x00\x00"),
    "sz-empty": ("REG_SZ", b""),
    "expand": ("REG_EXPAND_SZ", "%SystemRoot%\\system32"),
    "link": ("REG_LINK", "\\Registry\\Machine\\System\\ControlSet001"),
    "multi": ("REG_MULTI_SZ", ["one", "", "three"]),
    "multi-odd": ("REG_MULTI_SZ", b"a\x00\x00\x00b"),
    "multi-empty": ("REG_MULTI_SZ", b""),
    "dword": ("REG_DWORD", 0xDEADBEEF),
    "dword-short": ("REG_DWORD", b"\x01\x02"),
    "dword-long": ("REG_DWORD", b"\x01\x00\x00\x00\x09\x09"),
    "dword-be": ("REG_DWORD_BIG_ENDIAN", 0x01020304),
    "qword": ("REG_QWORD", 2**63 + 7),
    "qword-short": ("REG_QWORD", b"\x01\x02\x03\x04\x05"),
    "qword-long": ("REG_QWORD", b"\x02" * 12),
    "binary": ("REG_BINARY", bytes(range(256))),
    "binary-empty": ("REG_BINARY", b""),
    "none": ("REG_NONE", b"\x00\x01"),
    "resource-list": ("REG_RESOURCE_LIST", b"\x01\x00\x00\x00" * 5),
    "device-type": (0xFFFF0012, b"\x07\x00"),
    "private-type": (0x12345, b"\xaa"),
    "big-data": ("REG_BINARY", bytes(i % 251 for i in range(40_000))),
    "big-sz": ("REG_SZ", "x" * 9000),
    "Ünïcödé wert ✓": ("REG_SZ", "Grüße ✓"),
    "": ("REG_SZ", "default value"),
}

_SYSTEM = {
    "Select": {"Current": ("REG_DWORD", 2), "Default": ("REG_DWORD", 2), "LastKnownGood": ("REG_DWORD", 1)},
    r"ControlSet001\Control\ComputerName\ComputerName": {"ComputerName": ("REG_SZ", "OLDNAME")},
    r"ControlSet002\Control\ComputerName\ComputerName": {"ComputerName": ("REG_SZ", "EXCH01")},
    r"ControlSet002\Services\MSExchangeSA\Parameters": {
        "TCP/IP Port": ("REG_DWORD", 4000), "TCP/IP NSPI Port": ("REG_DWORD", 4001)},
    r"ControlSet002\Services\MSExchangeIS\ParametersSystem": {"TCP/IP Port": ("REG_DWORD", 4002)},
    r"ControlSet002\Services\NTDS\Parameters": _ODD,
    r"ControlSet002\Services\Tcpip\Parameters": {"Hostname": ("REG_SZ", "EXCH01")},
    r"ControlSet002\Services\Unrelated": {"Start": ("REG_DWORD", 4)},
    r"ControlSet002\Services\Ünïcödé": {"x": ("REG_DWORD", 1)},
    "MountedDevices": {"\\DosDevices\\C:": ("REG_BINARY", b"\x01" * 12)},
}


#: Key times, two of them outside what a real key can hold (ts = null).
TIMES = {"": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
         "Select": datetime(1850, 1, 1, tzinfo=timezone.utc),
         "MountedDevices": datetime(2200, 1, 1, tzinfo=timezone.utc),
         r"ControlSet002\Services\Unrelated": datetime(2010, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)}


def _wide() -> dict[str, Any]:
    """1500 sibling keys (an ri index over lh lists) with values of every type."""
    keys: dict[str, Any] = {f"Wide\\Key{i:05d}": {"v": ("REG_DWORD", i), "s": ("REG_SZ", f"s{i}")}
                            for i in range(1500)}
    keys["Odd"] = _ODD
    return keys


def _deep() -> dict[str, Any]:
    return {"\\".join(f"L{i}" for i in range(40)): {"leaf": ("REG_SZ", "bottom")}}


def _synth(name: str, folder: Path) -> Path:
    """Write the synthesized hive ``name`` (and its siblings) into ``folder``."""
    times = TIMES
    if name == "synth-SYSTEM":
        return _put(folder, "renamed.bin", synth.hive_bytes(
            _SYSTEM, timestamps=times, root_name="CMI-CreateHive{F10156BE}",
            file_name="\\REGISTRY\\MACHINE\\SYSTEM"))
    if name == "synth-SYSTEM-v1.3-latin1":
        return _put(folder, "SYSTEM", synth.hive_bytes(_SYSTEM, minor_version=3, compress_latin1=True))
    if name == "synth-SOFTWARE-with-SYSTEM":
        _put(folder, "SYSTEM", synth.hive_bytes(_SYSTEM, root_name="SYSTEM"))
        return _put(folder, "SOFTWARE", synth.hive_bytes({
            r"Microsoft\Windows NT\CurrentVersion": {"CurrentBuild": ("REG_SZ", "3790"), **_ODD},
            r"Microsoft\Windows NT\CurrentVersion\Fonts": {"Arial": ("REG_SZ", "arial.ttf")},
            r"Microsoft\ExMPLS": {"DATA0": ("REG_BINARY", b"\x01\x02")},
            r"Classes\CLSID\{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}\LocalServer32": {
                "": ("REG_SZ", r"C:\Program Files\Exchsrvr\bin\EMPKP.exe")},
            r"Policies\Microsoft": {},
        }, root_name="SOFTWARE"))
    if name == "synth-NTUSER-wide":
        return _put(folder, "NTUSER.DAT", synth.hive_bytes(
            {**_wide(), r"Control Panel\Desktop": {"Wallpaper": ("REG_SZ", "")},
             "Environment": {"TEMP": ("REG_EXPAND_SZ", "%USERPROFILE%\\Temp")}},
            file_name="\\??\\C:\\Users\\tony\\ntuser.dat"))
    if name == "synth-unknown-deep":
        return _put(folder, "export.hiv", synth.hive_bytes({**_deep(), "Odd": _ODD}))
    if name == "synth-dirty-no-logs":
        return _put(folder, "SYSTEM", synth.hive_bytes(_SYSTEM, dirty=True))
    if name == "synth-SYSTEM-truncated":
        raw = synth.hive_bytes({**_SYSTEM, **_wide()})
        return _put(folder, "SYSTEM", raw[:len(raw) * 2 // 3 + 0x123])
    raise KeyError(name)


#: Mutants: one aligned 32-bit field near a cell or bin signature set to a
#: hostile value (a count, length or offset a reader trusts), seeded.
MUTANTS = [f"mutant-synth-{k}" for k in range(30)] + [f"mutant-ntuser-{k}" for k in range(12)]
_MAGICS = (b"nk", b"vk", b"lh", b"lf", b"li", b"ri", b"db", b"hbin")
_HOSTILE = (0, 1, 2, 0x7FFFFFFF, 0x80000000, 0x80000004, 0xFFFFFFFF, 0xFFFFFFF8, 0x10000, 0x1000, 0x20)


def _mutant(name: str, folder: Path) -> Path:
    k = int(name.rsplit("-", 1)[1])
    if name.startswith("mutant-synth"):
        raw = synth.hive_bytes({**_SYSTEM, **_deep()}, timestamps=TIMES, root_name="SYSTEM")
    else:
        src = CORPUS / "hives" / "regipy-NTUSER.DAT"
        if not src.exists():
            pytest.skip("corpus file absent: hives/regipy-NTUSER.DAT")
        raw = src.read_bytes()
    rnd = random.Random(f"{name}")
    spots = [m.start() for mag in _MAGICS for m in re.finditer(re.escape(mag), raw[4096:])]
    buf = bytearray(raw)
    for _ in range(1 + k % 3):
        pos = 4096 + rnd.choice(spots) + 2 + 4 * rnd.randrange(12)
        val = (pos - 4096) & ~7 if rnd.random() < 0.2 else rnd.choice(_HOSTILE)
        if pos + 4 <= len(buf):
            struct.pack_into("<I", buf, pos, val)
    return _put(folder, "SYSTEM" if "synth" in name else "NTUSER.DAT", bytes(buf))


SYNTH_HIVES = ["synth-SYSTEM", "synth-SYSTEM-v1.3-latin1", "synth-SOFTWARE-with-SYSTEM",
               "synth-NTUSER-wide", "synth-unknown-deep", "synth-dirty-no-logs", "synth-SYSTEM-truncated"]


def _put(folder: Path, name: str, raw: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(raw)
    return folder / name


# ---------------------------------------------------------------------------
# What is compared


def _column_values(table: pa.Table, name: str) -> list[Any]:
    col = table.column(name)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    elif pa.types.is_timestamp(col.type):
        col = col.cast(pa.int64())
    return col.to_pylist()


def _digest(values: list[Any]) -> str:
    text = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def summarize(path: Path, mode: str, work: Path, sample: bool = True) -> dict[str, Any]:
    """Everything the hive source produces for one file, compactly."""
    ctx = ParseContext(path=path.name, fs_path=path, options=Options(registry=mode),
                       siblings=tuple(sorted(p for p in path.parent.iterdir() if p != path)),
                       work_dir=work)
    tabs = list(get("hive").parse(ctx))
    assert all(isinstance(t, pa.Table) and t.schema.equals(ARROW_SCHEMA) for t in tabs)
    table = pa.concat_tables(tabs) if tabs else ARROW_SCHEMA.empty_table()
    cols = {name: _column_values(table, name) for name in table.column_names}
    n = table.num_rows
    picks = sorted({i for i in (0, 1, 2, n // 3, n // 2, n - 1) if 0 <= i < n}) if sample else []
    return {
        "rows": n,
        "columns": {name: _digest(vals) for name, vals in cols.items()},
        "sample": {str(i): {name: cols[name][i] for name in cols} for i in picks},
        "warnings": [[w.locator, w.message] for w in ctx.warnings],
        "notes": list(ctx.notes),
        "partial": ctx.partial,
        "empty": ctx.empty_reason,
    }


def _hive_path(name: str, tmp: Path) -> Path:
    if name in MUTANTS:
        return _mutant(name, tmp / "in" / name)
    if name in SYNTH_HIVES:
        return _synth(name, tmp / "in" / name)
    rel = dict(CORPUS_HIVES)[name]
    if not (CORPUS / rel).exists():
        pytest.skip(f"corpus file absent: {rel}")
    return CORPUS / rel


def _all_cases() -> list[str]:
    return [n for n, _ in CORPUS_HIVES] + SYNTH_HIVES + MUTANTS


# ---------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def goldens() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", _all_cases())
def test_hive_rows_are_unchanged(name: str, goldens: dict[str, Any], tmp_path: Path) -> None:
    if (name in dict(CORPUS_HIVES) or name.startswith("mutant-ntuser")) and not CORPUS.is_dir():
        pytest.skip("../shared/corpus is not present (real Windows sample files)")
    path = _hive_path(name, tmp_path)
    for mode in MODES:
        want = goldens[f"{name}|{mode}"]
        got = summarize(path, mode, tmp_path / f"work-{mode}", sample=name not in MUTANTS)
        assert got["rows"] == want["rows"], (mode, got["rows"], want["rows"])
        differ = [c for c in want["columns"] if got["columns"].get(c) != want["columns"][c]]
        assert not differ, (mode, "columns differ", differ,
                            {i: {c: r[c] for c in differ} for i, r in got["sample"].items()})
        assert got["columns"].keys() == want["columns"].keys()
        assert got["sample"] == want["sample"], mode
        assert got["warnings"] == want["warnings"], mode
        assert got["notes"] == want["notes"], mode
        assert (got["partial"], got["empty"]) == (want["partial"], want["empty"]), mode


def test_goldens_cover_every_case(goldens: dict[str, Any]) -> None:
    """A case added here without a golden (or a golden without its case)
    fails instead of being silently skipped."""
    assert set(goldens) == {f"{n}|{m}" for n in _all_cases() for m in MODES}


def test_the_comparison_sees_a_one_value_change(tmp_path: Path) -> None:
    """The digest is sensitive to one changed value and to row order."""
    path = _synth("synth-SYSTEM", tmp_path / "a")
    base = summarize(path, "full", tmp_path / "w1")
    keys = dict(_SYSTEM)
    keys["Select"] = {**keys["Select"], "LastKnownGood": ("REG_DWORD", 3)}
    other = _put(tmp_path / "b", path.name, synth.hive_bytes(
        keys, timestamps=TIMES,
        root_name="CMI-CreateHive{F10156BE}", file_name="\\REGISTRY\\MACHINE\\SYSTEM"))
    changed = summarize(other, "full", tmp_path / "w2")
    assert base["rows"] == changed["rows"]
    assert [c for c in base["columns"] if base["columns"][c] != changed["columns"][c]] == ["value"]
    assert _digest([1, 2]) != _digest([2, 1])


def regenerate(cases: list[str] | None = None) -> None:
    """Record the goldens from the current reader (script entry point)."""
    if not CORPUS.is_dir():
        raise SystemExit("../shared/corpus is absent: the goldens need every corpus hive")
    out: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8")) if cases and GOLDEN.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in cases or _all_cases():
            path = _hive_path(name, Path(tmp))
            for mode in MODES:
                out[f"{name}|{mode}"] = summarize(path, mode, Path(tmp) / f"work-{name}-{mode}",
                                                  sample=name not in MUTANTS)
                print(f"{name} {mode}: {out[f'{name}|{mode}']['rows']} rows")
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(out, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    regenerate(sys.argv[1:] or None)


# ---------------------------------------------------------------------------
# The fast paths against the plain ones they replace


def test_utf16_text_is_decode_value_on_odd_strings() -> None:
    """One decode then a cut at the first NUL gives what cutting at the
    first NUL code unit then decoding gives (analyzer.registry), broken
    surrogates and odd lengths included."""
    from analyzer.registry import decode_value
    from analyzer.sources.hivecells import utf16_text

    rnd = random.Random(7)
    units = [b"\x00\x00", b"A\x00", b"\x00\xd8", b"\x00\xdc", b"\xe9\x00", b"\x3d\xd8", b"\x00"]
    for _ in range(3000):
        raw = b"".join(rnd.choice(units) for _ in range(rnd.randrange(8)))
        for code in (1, 2, 6):
            assert utf16_text(raw) == decode_value(code, raw)[1], raw


def test_value_batch_reads_what_the_value_reader_reads(tmp_path: Path) -> None:
    """read_value_batch (numpy over the value cells of many keys) against
    the per-value reader, key by key, over seeded damage of a synthesized
    hive holding every value shape: texts, types, data, counts, errors."""
    from analyzer.sources.hivecells import Failed, Hive, _one_value, read_value_batch

    raw = synth.hive_bytes({**_SYSTEM, "Odd2": _ODD}, compress_latin1=True)
    rnd = random.Random(11)
    for k in range(60):
        buf = bytearray(raw)
        for _ in range(k % 6):
            pos = rnd.randrange(4096, len(buf) - 4) & ~3
            struct.pack_into("<I", buf, pos, rnd.choice(_HOSTILE + (3, 7, 11, 0x80000003)))
        hive = Hive(bytes(buf), 5)
        try:
            stack = [hive.root()]
        except Exception:  # noqa: BLE001 - no root: nothing to compare
            continue
        nodes, seen = [], set()
        while stack:
            node = stack.pop()
            if node.ident not in seen:
                seen.add(node.ident)
                nodes.append(node)
                stack.extend(sk for sk in node.subkeys() if not isinstance(sk, Failed))
        want: list[Any] = []
        errors: list[tuple[int, str]] = []
        for i, node in enumerate(nodes):
            offs = node._value_offsets()
            if isinstance(offs, BaseException):
                errors.append((i, str(offs)))
                continue
            for vrel in offs:
                try:
                    want.append(_one_value(hive.buf, hive.minor, vrel))
                except Exception as exc:  # noqa: BLE001
                    errors.append((i, str(exc)))
        vb = read_value_batch(hive, [n.v_list for n in nodes], [n.nvalues for n in nodes])
        got = list(zip(vb.names.to_pylist(), vb.codes.tolist(), vb.texts.to_pylist(), vb.extras.to_pylist()))
        assert got == want, k
        assert [(i, str(e)) for i, e in vb.errors] == errors, k
        assert int(vb.per_key.sum()) == len(want)


def test_hive_and_logs_are_mapped_not_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dirty hive, its logs and a machine hive's SYSTEM sibling are
    memory-mapped: no read of more than a header's worth of bytes."""
    from analyzer import safeio

    sw = _synth("synth-SOFTWARE-with-SYSTEM", tmp_path / "sw")
    hives = [sw]
    logs = CORPUS / "hives-dirty" / "yarp_NewDirtyHive1"
    if logs.is_dir():  # a dirty hive whose logs are replayed
        for name in ("NewDirtyHive", "NewDirtyHive.LOG1", "NewDirtyHive.LOG2"):
            _put(tmp_path / "dirty", name, (logs / name).read_bytes())
        hives.append(tmp_path / "dirty" / "NewDirtyHive")
    real_open = safeio.open_regular
    reads: list[int] = []

    class Counted:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __enter__(self) -> Counted:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.fh.close()

        def read(self, n: int = -1) -> bytes:
            data = self.fh.read(n)
            reads.append(len(data))
            return data

        def fileno(self) -> int:
            return self.fh.fileno()

    monkeypatch.setattr(safeio, "open_regular", lambda *a, **k: Counted(real_open(*a, **k)))
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"read whole: {self}"))
    for path in hives:
        got = summarize(path, "full", tmp_path / "work")
        assert got["rows"] > 0 and not got["warnings"], got["warnings"]
    assert sum(reads) <= 4096 * 4, reads
