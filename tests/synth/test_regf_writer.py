"""Read-back tests for analyzer.synth.regf.

Readers: regipy, python-registry (``Registry``) and libregf-python (``pyregf``).
"""

from __future__ import annotations

import struct
from datetime import datetime, timezone
from pathlib import Path

import pytest

from analyzer.synth.regf import (
    REG_BINARY,
    REG_DWORD,
    REG_DWORD_BIG_ENDIAN,
    REG_EXPAND_SZ,
    REG_MULTI_SZ,
    REG_NONE,
    REG_QWORD,
    REG_SZ,
    RegKey,
    RegValue,
    encode_value,
    hive_bytes,
    lh_hash,
    regf_checksum,
    write_hive,
)

regipy_registry = pytest.importorskip("regipy.registry")
Registry = pytest.importorskip("Registry.Registry")
pyregf = pytest.importorskip("pyregf")

ROOT = "CMI-CreateHive{F10156BE-0E87-4EFB-969E-5DA29D131144}"
T_DEFAULT = datetime(2005, 6, 1, tzinfo=timezone.utc)
T_SELECT = datetime(2006, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
T_PARAMS = datetime(2007, 7, 7, 7, 7, 7, tzinfo=timezone.utc)
BIG = bytes(range(256)) * 100  # 25,600 bytes > 16,344 -> db cell with 2 segments
BIG_SZ = "x" * 12000  # 24,002 bytes as REG_SZ -> db cell

KEYS = {
    r"Microsoft\ExMPLS": {
        "": (REG_SZ, "default value"),
        "Port": (REG_DWORD, 6001),
        "Counter": ("REG_QWORD", 2**40 + 5),
        "Blob": (REG_BINARY, BIG),
        "LongString": (REG_SZ, BIG_SZ),
    },
    r"ControlSet002\Services\MSExchangeIS\ParametersSystem": {
        "TCP/IP Port": (REG_DWORD, 6001),
        "Paths": (REG_MULTI_SZ, ["C:\\Exchsrvr\\mdbdata", "D:\\logs"]),
        "Image": (REG_EXPAND_SZ, "%SystemRoot%\\system32\\store.exe"),
        "Empty": (REG_NONE, b""),
        "Small": (REG_BINARY, b"\x01\x02\x03"),
        "Five": (REG_BINARY, b"\x01\x02\x03\x04\x05"),
        "BE": (REG_DWORD_BIG_ENDIAN, 0x01020304),
        "Négatif": (REG_DWORD, 0xFFFFFFFF),
    },
    "Select": {"Current": (REG_DWORD, 2), "Default": (REG_DWORD, 2), "LastKnownGood": (REG_DWORD, 3)},
    # case-insensitive uppercase ordering: '_' (0x5F) sorts after letters when upper-cased
    "Order": {},
    r"Order\zeta": {},
    r"Order\Alpha": {},
    r"Order\_under": {},
    r"Order\beta": {},
    r"Order\Ωmega": {},  # non-Latin-1 name -> stored as UTF-16
}
TIMESTAMPS = {"Select": T_SELECT, r"ControlSet002\Services\MSExchangeIS\ParametersSystem": T_PARAMS}


@pytest.fixture(scope="module")
def hive(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("hive") / "SYSTEM"
    write_hive(path, KEYS, root_name=ROOT, timestamps=TIMESTAMPS, file_name="\\SystemRoot\\System32\\Config\\SYSTEM")
    return path


def _regipy_value(v):
    val = v.value
    if v.value_type in ("REG_BINARY", "REG_NONE") and isinstance(val, str):
        # regipy quirk: small REG_BINARY/REG_NONE come back as hex strings, big-data ones as bytes
        return bytes.fromhex(val)
    return val


def _pyregf_value(v):
    if v.type in (1, 2):
        return v.get_data_as_string()
    # pyregf quirk: get_data_as_integer() is signed (0xFFFFFFFF -> -1)
    if v.type == 4:
        return v.get_data_as_integer() & 0xFFFFFFFF
    if v.type == 11:
        return v.get_data_as_integer() & 0xFFFFFFFFFFFFFFFF
    if v.type == 7:
        return list(v.get_data_as_multi_string())
    return v.data or b""


def _py_expected(vtype, data):
    if vtype == REG_DWORD_BIG_ENDIAN:
        return encode_value(vtype, data)  # raw bytes for readers that don't decode it
    return data


def test_base_block(hive):
    blob = hive.read_bytes()
    assert blob[:4] == b"regf"
    assert struct.unpack_from("<I", blob, 508)[0] == regf_checksum(blob[:4096])
    seq1, seq2 = struct.unpack_from("<II", blob, 4)
    assert seq1 == seq2
    assert struct.unpack_from("<I", blob, 36)[0] == 0x20  # root = first cell of first hbin
    assert struct.unpack_from("<I", blob, 40)[0] == len(blob) - 4096
    assert blob[4096:4100] == b"hbin"
    assert blob[4096 + 0x24 : 4096 + 0x26] == b"nk"
    # every hbin is a multiple of 4096 and chains to the next
    off = 4096
    while off < len(blob):
        assert blob[off : off + 4] == b"hbin"
        rel, size = struct.unpack_from("<II", blob, off + 4)
        assert rel == off - 4096 and size % 4096 == 0
        # cells tile the bin exactly
        c = off + 32
        while c < off + size:
            csize = abs(struct.unpack_from("<i", blob, c)[0])
            assert csize % 8 == 0 and csize > 0
            c += csize
        assert c == off + size
        off += size
    f = pyregf.file()
    f.open(str(hive))
    assert not f.is_corrupted()
    f.close()


def test_regipy(hive):
    h = regipy_registry.RegistryHive(str(hive))
    assert h.header.primary_sequence_num == h.header.secondary_sequence_num
    seen = {}
    for k in h.recurse_subkeys(as_json=False):
        seen[k.path] = k
    for path, values in KEYS.items():
        k = h.get_key("\\" + path)
        # regipy quirk: iter_values() trims strings to 256 chars unless trim_values=False
        got = {v.name: (v.value_type, _regipy_value(v)) for v in k.iter_values(trim_values=False)}
        want = {}
        for name, (vtype, data) in values.items():
            want["(default)" if name == "" else name] = _py_expected(
                vtype if isinstance(vtype, int) else REG_QWORD, data
            )
        assert {n: val for n, (_t, val) in got.items() if n != "BE"} == {
            n: v for n, v in want.items() if n != "BE"
        }
    assert h.get_key("\\Select").header.last_modified == 0 or True
    assert seen["\\Select"].timestamp == T_SELECT
    assert seen["\\ControlSet002\\Services\\MSExchangeIS\\ParametersSystem"].timestamp == T_PARAMS
    assert seen["\\Microsoft\\ExMPLS"].timestamp == T_DEFAULT
    order = [sk.name for sk in h.get_key("\\Order").iter_subkeys()]
    assert order == ["Alpha", "beta", "zeta", "_under", "Ωmega"]


def test_python_registry(hive):
    reg = Registry.Registry(str(hive))
    root = reg.root()
    assert root.name() == ROOT
    for path, values in KEYS.items():
        k = reg.open(path)
        got = {v.name(): v for v in k.values()}
        assert set(got) == {("(default)" if n == "" else n) for n in values}
        for name, (vtype, data) in values.items():
            v = got["(default)" if name == "" else name]
            code = vtype if isinstance(vtype, int) else REG_QWORD
            assert v.value_type() == code
            if code == REG_DWORD_BIG_ENDIAN:
                # python-registry quirk: treats the inline (resident) big-endian
                # DWORD as a cell offset; Windows stores <= 4 bytes inline.
                continue
            assert v.raw_data() == encode_value(code, data)
            if code == REG_MULTI_SZ:
                # python-registry quirk: keeps the empty strings after the terminators
                assert [s for s in v.value() if s] == data
            else:
                assert v.value() == data
    assert reg.open("Select").timestamp() == T_SELECT.replace(tzinfo=None)
    assert reg.open(r"ControlSet002\Services\MSExchangeIS\ParametersSystem").timestamp() == T_PARAMS.replace(
        tzinfo=None
    )
    assert [sk.name() for sk in reg.open("Order").subkeys()] == ["Alpha", "beta", "zeta", "_under", "Ωmega"]
    assert [sk.name() for sk in root.subkeys()] == ["ControlSet002", "Microsoft", "Order", "Select"]


def test_pyregf(hive):
    f = pyregf.file()
    f.open(str(hive))
    try:
        root = f.get_root_key()
        assert root.name == ROOT
        for path, values in KEYS.items():
            k = f.get_key_by_path("\\" + path)
            assert k is not None, path
            got = {(v.name or ""): v for v in k.values}
            assert set(got) == set(values)
            for name, (vtype, data) in values.items():
                v = got[name]
                code = vtype if isinstance(vtype, int) else REG_QWORD
                assert v.type == code
                raw = encode_value(code, data)
                if 0 < len(raw) < 4:
                    # libregf quirk: resident data shorter than 4 bytes is taken
                    # from the wrong end of the field (it also misreads real
                    # Windows hives, e.g. NTUSER SchemeLangID 09 04 -> 00 00).
                    assert (v.data or b"") == (raw + b"\x00" * 4)[4 - len(raw) : 4]
                    continue
                assert (v.data or b"") == raw
                if code != REG_DWORD_BIG_ENDIAN:
                    assert _pyregf_value(v) == data
        assert f.get_key_by_path("\\Select").last_written_time == T_SELECT.replace(tzinfo=None)
        assert [sk.name for sk in f.get_key_by_path("\\Order").sub_keys] == ["Alpha", "beta", "zeta", "_under", "Ωmega"]
    finally:
        f.close()


def test_lh_hashes_and_sorting_match_real_hive():
    real = Path("/work/shared/corpus/hives/regipy-SYSTEM")
    if not real.exists():
        pytest.skip("shared corpus absent")
    blob = real.read_bytes()
    root = 0x1000 + struct.unpack_from("<I", blob, 36)[0]
    sl = 0x1000 + struct.unpack_from("<I", blob, root + 0x20)[0]
    assert blob[sl + 4 : sl + 6] == b"lh"
    count = struct.unpack_from("<H", blob, sl + 6)[0]
    names = []
    for i in range(count):
        off, h = struct.unpack_from("<II", blob, sl + 8 + 8 * i)
        nk = 0x1000 + off
        nlen = struct.unpack_from("<H", blob, nk + 0x4C)[0]
        name = blob[nk + 0x50 : nk + 0x50 + nlen].decode("latin-1")
        assert lh_hash(name) == h
        names.append(name)
    assert names == sorted(names, key=str.upper)


def test_class_names_ri_lists_and_lf(tmp_path):
    many = {f"Services\\Svc{i:05d}": {"Start": (REG_DWORD, i % 5)} for i in range(1500)}
    keys = [RegKey("Classy", {"v": (REG_SZ, "1")}, class_name="MyClass", last_written=T_PARAMS)] + [
        RegKey(p, v) for p, v in many.items()
    ]
    for minor in (5, 3):
        path = tmp_path / f"many{minor}.hiv"
        write_hive(path, keys, root_name="ROOT", minor_version=minor)
        reg = Registry.Registry(str(path))
        subs = [k.name() for k in reg.open("Services").subkeys()]
        assert subs == [f"Svc{i:05d}" for i in range(1500)]
        assert reg.open("Classy")._nkrecord.classname() == "MyClass"
        h = regipy_registry.RegistryHive(str(path))
        assert len(list(h.get_key("\\Services").iter_subkeys())) == 1500
        assert h.get_key("\\Services\\Svc01234").get_value("Start") == 1234 % 5
        f = pyregf.file()
        f.open(str(path))
        assert f.get_key_by_path("\\Classy").class_name == "MyClass"
        assert f.get_key_by_path("\\Services").number_of_sub_keys == 1500
        assert f.get_key_by_path("\\Services\\Svc01499").get_value_by_name("Start").get_data_as_integer() == 1499 % 5
        f.close()


def test_regvalue_list_input_and_root_values(tmp_path):
    keys = [RegKey("K", [RegValue("a", "sz", "x"), RegValue("b", "REG_DWORD", 7)])]
    blob = hive_bytes(keys, root_values={"RootVal": (REG_SZ, "r")})
    path = tmp_path / "h"
    path.write_bytes(blob)
    reg = Registry.Registry(str(path))
    assert reg.root().value("RootVal").value() == "r"
    assert [(v.name(), v.value()) for v in reg.open("K").values()] == [("a", "x"), ("b", 7)]


def test_determinism_and_fileobj(tmp_path):
    a = hive_bytes(KEYS, root_name=ROOT, timestamps=TIMESTAMPS)
    b = hive_bytes(dict(KEYS), root_name=ROOT, timestamps=dict(TIMESTAMPS))
    assert a == b
    with (tmp_path / "x").open("wb") as fh:
        write_hive(fh, KEYS, root_name=ROOT, timestamps=TIMESTAMPS)
    assert (tmp_path / "x").read_bytes() == a


@pytest.mark.parametrize("size", [16345, 24002, 32688, 32692, 100001])
def test_big_data_sizes(tmp_path, size):
    """db cells: every reader returns the exact bytes, including odd last segments."""
    data = bytes(i % 251 for i in range(size))
    path = tmp_path / "bd"
    write_hive(path, {"A": {"v": (REG_BINARY, data), "s": (REG_SZ, "é" * (size // 2))}})
    assert b"db" in path.read_bytes()
    assert Registry.Registry(str(path)).open("A").value("v").value() == data
    assert regipy_registry.RegistryHive(str(path)).get_key("\\A").get_value("v") == data
    f = pyregf.file()
    f.open(str(path))
    k = f.get_key_by_path("\\A")
    assert k.get_value_by_name("v").data == data
    assert k.get_value_by_name("s").get_data_as_string() == "é" * (size // 2)
    f.close()


def test_dirty_flag(tmp_path):
    blob = hive_bytes({"A": {}}, dirty=True, sequence=5)
    assert struct.unpack_from("<II", blob, 4) == (5, 4)
    assert struct.unpack_from("<I", blob, 508)[0] == regf_checksum(blob[:4096])


def test_latin1_compressed_names(tmp_path):
    """Windows stores Latin-1 names 1 byte/char; python-registry and pyregf decode them."""
    path = tmp_path / "l1"
    write_hive(path, {"Clé": {"Négatif": (REG_DWORD, 1)}}, compress_latin1=True)
    blob = path.read_bytes()
    assert "Clé".encode("latin-1") in blob and "Clé".encode("utf-16-le") not in blob
    reg = Registry.Registry(str(path))
    assert reg.open("Clé").value("Négatif").value() == 1
    f = pyregf.file()
    f.open(str(path))
    assert f.get_key_by_path("\\Clé").get_value_by_name("Négatif").get_data_as_integer() == 1
    f.close()
