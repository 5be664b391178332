"""Writer for Windows NT registry hive files (``regf``).

Format (libyal "Windows NT Registry File (REGF) format"), little-endian:

* a 4096-byte base block: ``regf``, primary/secondary sequence numbers (equal
  = clean hive), last-written FILETIME, version 1.x, type 0 (primary), format
  1, root cell offset, size of the hive-bins data, clustering factor 1, a
  64-byte UTF-16 file name and, at 508, the XOR-32 checksum of the first 508
  bytes (0 -> 1, 0xFFFFFFFF -> 0xFFFFFFFE).
* hive bins (``hbin``), each a multiple of 4096 bytes with a 32-byte header;
  all cell offsets are relative to the start of the first hbin (file offset
  4096). Cells never straddle bins; a cell is a signed int32 size (negative =
  allocated, 8-byte aligned) followed by its payload. Unused space at the end
  of a bin is one free cell (positive size).
* ``nk`` key nodes, ``vk`` value keys, value lists (plain offset arrays),
  subkey lists (``lh`` with name hashes for 1.5, ``lf`` with 4-char hints for
  1.3, ``ri`` index roots above them for very large key counts), ``sk``
  security cells (one shared, self-linked descriptor here), class-name cells,
  and ``db`` big-data cells for values over 16344 bytes (version >= 1.4).

Facts readers rely on:

* regipy assumes the root key is the first cell of the first hbin (offset
  0x20); this writer always puts it there.
* Subkey lists must be sorted case-insensitively by the upper-cased name (as
  RtlCompareUnicodeString does); lookups by binary search fail otherwise.
* Data of 4 bytes or less is stored inside the vk's data-offset field with
  the top bit of the data size set.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence, Union

from ._util import PathOrFile, TimeLike, emit, sid_to_bytes, to_filetime

__all__ = [
    "REG_NONE", "REG_SZ", "REG_EXPAND_SZ", "REG_BINARY", "REG_DWORD", "REG_DWORD_LITTLE_ENDIAN",
    "REG_DWORD_BIG_ENDIAN", "REG_LINK", "REG_MULTI_SZ", "REG_RESOURCE_LIST",
    "REG_FULL_RESOURCE_DESCRIPTOR", "REG_RESOURCE_REQUIREMENTS_LIST", "REG_QWORD", "REG_QWORD_LITTLE_ENDIAN",
    "RegValue", "RegKey", "hive_bytes", "write_hive", "encode_value", "lh_hash", "regf_checksum",
    "DEFAULT_TIMESTAMP",
]

REG_NONE = 0
REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = REG_DWORD_LITTLE_ENDIAN = 4
REG_DWORD_BIG_ENDIAN = 5
REG_LINK = 6
REG_MULTI_SZ = 7
REG_RESOURCE_LIST = 8
REG_FULL_RESOURCE_DESCRIPTOR = 9
REG_RESOURCE_REQUIREMENTS_LIST = 10
REG_QWORD = REG_QWORD_LITTLE_ENDIAN = 11

_TYPE_NAMES = {
    name: value for name, value in globals().items() if name.startswith("REG_") and isinstance(value, int)
}

#: Used for every key without an explicit timestamp (determinism).
DEFAULT_TIMESTAMP = datetime(2005, 6, 1, 0, 0, 0, tzinfo=timezone.utc)

HBIN_SIZE = 0x1000
HBIN_HEADER = 0x20
#: Values larger than this go to "db" big-data cells (hive version >= 1.4).
BIG_DATA_THRESHOLD = 16344
BIG_DATA_SEGMENT = 16344
#: Windows splits subkey lists above ~1012 entries into an ri index root.
MAX_LIST_ENTRIES = 1012

KEY_VOLATILE = 0x0001
KEY_HIVE_EXIT = 0x0002
KEY_HIVE_ENTRY = 0x0004
KEY_NO_DELETE = 0x0008
KEY_SYM_LINK = 0x0010
KEY_COMP_NAME = 0x0020
VALUE_COMP_NAME = 0x0001


def _type_code(t: Union[int, str]) -> int:
    if isinstance(t, str):
        key = t.strip().upper()
        if not key.startswith("REG_"):
            key = "REG_" + key
        try:
            return _TYPE_NAMES[key]
        except KeyError:
            raise ValueError(f"unknown registry value type {t!r}") from None
    return int(t)


def encode_value(vtype: Union[int, str], data: Any) -> bytes:
    """Encode Python ``data`` the way Windows stores a value of ``vtype``.

    ``bytes`` are always stored verbatim (any type, e.g. odd or truncated
    data). ``str`` for REG_SZ/REG_EXPAND_SZ gets a UTF-16LE NUL terminator
    (REG_LINK does not: symbolic link targets are stored unterminated);
    REG_MULTI_SZ takes a list of strings and ends with an empty string;
    REG_DWORD/REG_DWORD_BIG_ENDIAN/REG_QWORD take ints; None is empty data.
    """
    code = _type_code(vtype)
    if data is None:
        return b""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if code in (REG_SZ, REG_EXPAND_SZ):
        return str(data).encode("utf-16-le") + b"\x00\x00"
    if code == REG_LINK:
        return str(data).encode("utf-16-le")
    if code == REG_MULTI_SZ:
        items = [data] if isinstance(data, str) else list(data)
        return b"".join(s.encode("utf-16-le") + b"\x00\x00" for s in items) + b"\x00\x00"
    if code == REG_DWORD:
        return struct.pack("<I", int(data) & 0xFFFFFFFF)
    if code == REG_DWORD_BIG_ENDIAN:
        return struct.pack(">I", int(data) & 0xFFFFFFFF)
    if code == REG_QWORD:
        return struct.pack("<Q", int(data) & 0xFFFFFFFFFFFFFFFF)
    if isinstance(data, int):
        return struct.pack("<I", data & 0xFFFFFFFF)
    if isinstance(data, str):
        return data.encode("utf-16-le") + b"\x00\x00"
    raise TypeError(f"cannot encode {type(data).__name__} as registry type {code}")


@dataclass
class RegValue:
    """One value. ``name=""`` is the key's default ("(Default)") value."""

    name: str
    type: Union[int, str]
    data: Any


@dataclass
class RegKey:
    """One key, addressed by its path relative to the hive root.

    ``values`` maps value name -> ``(type, data)`` (or a :class:`RegValue`);
    value order is kept as given (Windows does not sort value lists).
    """

    path: str
    values: Mapping[str, Any] | Sequence[RegValue] = field(default_factory=dict)
    last_written: TimeLike | None = None
    class_name: str | None = None


def lh_hash(name: str) -> int:
    """Name hash of an ``lh`` subkey-list entry: h = h*37 + upper(char)."""
    h = 0
    for ch in name.upper():
        h = (h * 37 + ord(ch)) & 0xFFFFFFFF
    return h


def regf_checksum(base_block: bytes) -> int:
    """XOR-32 of the first 508 bytes of the base block, with the two reserved results remapped."""
    x = 0
    for (word,) in struct.iter_unpack("<I", base_block[:508]):
        x ^= word
    if x == 0xFFFFFFFF:
        return 0xFFFFFFFE
    if x == 0:
        return 1
    return x


def _sort_key(name: str) -> tuple[int, ...]:
    # Windows compares upper-cased UTF-16 code units.
    u = name.upper().encode("utf-16-le")
    return tuple(struct.unpack(f"<{len(u) // 2}H", u))


def _encode_name(name: str, latin1: bool = False) -> tuple[bytes, bool]:
    """Encode a key/value name; returns (bytes, compressed?).

    Windows stores a name "compressed" (1 byte per char, flag 0x20) when every
    UTF-16 unit is below 0x100, i.e. Latin-1. regipy decodes compressed names
    as ASCII (a Latin-1 "é" becomes U+FFFD), so by default only pure-ASCII
    names are compressed and the rest are stored as UTF-16LE, which every
    reader handles; ``latin1=True`` reproduces the Windows behaviour.
    """
    limit = 0x100 if latin1 else 0x80
    if all(ord(ch) < limit for ch in name):
        return name.encode("latin-1"), True
    return name.encode("utf-16-le"), False


def default_security_descriptor() -> bytes:
    """A self-relative SD: owner Administrators, group SYSTEM, and a DACL granting
    Administrators/SYSTEM full control and Users read (container-inherit)."""
    owner = sid_to_bytes("S-1-5-32-544")
    group = sid_to_bytes("S-1-5-18")
    aces = b""
    for sid, mask in (("S-1-5-32-544", 0x000F003F), ("S-1-5-18", 0x000F003F), ("S-1-5-32-545", 0x00020019)):
        s = sid_to_bytes(sid)
        aces += struct.pack("<BBHI", 0x00, 0x02, 8 + len(s), mask) + s
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(aces), 3, 0) + aces
    control = 0x8004  # SE_SELF_RELATIVE | SE_DACL_PRESENT
    dacl_off = 20
    owner_off = dacl_off + len(acl)
    group_off = owner_off + len(owner)
    return struct.pack("<BBHIIII", 1, 0, control, owner_off, group_off, 0, dacl_off) + acl + owner + group


class _Node:
    __slots__ = ("name", "children", "values", "last_written", "class_name", "offset")

    def __init__(self, name: str) -> None:
        self.name = name
        self.children: dict[str, _Node] = {}  # keyed by upper-cased name
        self.values: list[tuple[str, int, bytes]] = []
        self.last_written: TimeLike | None = None
        self.class_name: str | None = None
        self.offset = -1


def _normalize_values(values: Any) -> list[tuple[str, int, bytes]]:
    out: list[tuple[str, int, bytes]] = []
    if isinstance(values, Mapping):
        items: Iterable = (
            (v.name, v.type, v.data) if isinstance(v, RegValue) else (name, v[0], v[1]) for name, v in values.items()
        )
    else:
        items = ((v.name, v.type, v.data) if isinstance(v, RegValue) else tuple(v) for v in values)
    seen: set[str] = set()
    for name, vtype, data in items:
        if name.upper() in seen:
            raise ValueError(f"duplicate value name {name!r}")
        seen.add(name.upper())
        out.append((name, _type_code(vtype), encode_value(vtype, data)))
    return out


class _Allocator:
    """Places cells into hbins in allocation order; returns hbin-relative offsets."""

    def __init__(self) -> None:
        self.bins: list[tuple[int, int]] = []  # (start, size)
        self.cursor = 0  # next free byte (relative)
        self.end = 0  # end of current bin
        self.free: list[tuple[int, int]] = []  # (offset, size) of unused bin tails

    def free_regions(self) -> list[tuple[int, int]]:
        tail = [(self.cursor, self.end - self.cursor)] if self.end > self.cursor else []
        return self.free + tail

    def alloc(self, payload_len: int) -> int:
        size = (payload_len + 4 + 7) & ~7
        if self.cursor + size > self.end:
            if self.end > self.cursor:
                self.free.append((self.cursor, self.end - self.cursor))
            start = self.end
            bin_size = max(HBIN_SIZE, (size + HBIN_HEADER + HBIN_SIZE - 1) // HBIN_SIZE * HBIN_SIZE)
            self.bins.append((start, bin_size))
            self.cursor = start + HBIN_HEADER
            self.end = start + bin_size
        off = self.cursor
        self.cursor += size
        return off

    def cell_size(self, payload_len: int) -> int:
        return (payload_len + 4 + 7) & ~7


def _build_tree(keys: Mapping[str, Any] | Sequence[RegKey], timestamps: Mapping[str, TimeLike] | None) -> _Node:
    root = _Node("")
    entries: list[RegKey] = []
    if isinstance(keys, Mapping):
        for path, vals in keys.items():
            entries.append(vals if isinstance(vals, RegKey) else RegKey(path, vals if vals is not None else {}))
    else:
        entries = list(keys)
    stamps = {k.strip("\\").upper(): v for k, v in (timestamps or {}).items()}

    def node_for(path: str) -> _Node:
        node = root
        for part in [p for p in path.strip("\\").split("\\") if p]:
            child = node.children.get(part.upper())
            if child is None:
                child = node.children[part.upper()] = _Node(part)
            node = child
        return node

    for entry in entries:
        node = node_for(entry.path)
        node.values.extend(_normalize_values(entry.values))
        if entry.last_written is not None:
            node.last_written = entry.last_written
        if entry.class_name is not None:
            node.class_name = entry.class_name
    for path, ts in stamps.items():
        node_for(path).last_written = ts
    return root


def hive_bytes(
    keys: Mapping[str, Any] | Sequence[RegKey],
    *,
    root_name: str = "ROOT",
    timestamps: Mapping[str, TimeLike] | None = None,
    default_timestamp: TimeLike = DEFAULT_TIMESTAMP,
    root_timestamp: TimeLike | None = None,
    root_class_name: str | None = None,
    root_values: Mapping[str, Any] | None = None,
    file_name: str = "",
    minor_version: int = 5,
    sequence: int = 1,
    dirty: bool = False,
    security_descriptor: bytes | None = None,
    compress_latin1: bool = False,
) -> bytes:
    """Return the bytes of a registry hive.

    ``keys``: mapping of key path (relative to the root, ``\\``-separated,
    e.g. ``ControlSet002\\Services\\MSExchangeIS\\ParametersSystem``) to a
    mapping ``{value name: (type, data)}`` (``""`` = default value), or a list
    of :class:`RegKey`. Intermediate keys are created. Key paths match
    case-insensitively; the first spelling wins.

    ``timestamps`` maps key paths (``""`` = root) to last-written times; keys
    without one get ``default_timestamp``. The base block's timestamp is the
    newest key time.

    ``root_name`` is the root key's name: Windows uses
    ``CMI-CreateHive{GUID}`` for system hives, ``ROOT`` appears in hives
    created by some tools. ``minor_version`` 5 (XP and later) uses ``lh``
    lists, 3 (NT4/2000-style) uses ``lf``; big-data cells need >= 4.
    ``dirty=True`` writes mismatching sequence numbers (a hive whose last
    write was not completed; readers may want transaction logs).
    ``compress_latin1=True`` stores Latin-1 names in 1 byte/char as Windows
    does (regipy then misreads non-ASCII characters; see ``_encode_name``).
    """
    tree = _build_tree(keys, timestamps)
    tree.name = root_name
    if root_values:
        tree.values[:0] = _normalize_values(root_values)
    if root_timestamp is not None:
        tree.last_written = root_timestamp
    if root_class_name is not None:
        tree.class_name = root_class_name
    use_lh = minor_version >= 5
    big_data_ok = minor_version >= 4
    sd = security_descriptor if security_descriptor is not None else default_security_descriptor()

    alloc = _Allocator()
    writes: list[tuple[int, bytes]] = []  # (offset, payload) – cell size is prepended later

    # Count nodes for the sk reference count.
    all_nodes: list[_Node] = []

    def walk(n: _Node) -> None:
        all_nodes.append(n)
        for c in sorted(n.children.values(), key=lambda x: _sort_key(x.name)):
            walk(c)

    walk(tree)

    # --- pass 1: allocate offsets (root nk first, then sk) -------------------
    def nk_len(n: _Node) -> int:
        return 76 + len(_encode_name(n.name, compress_latin1)[0])

    tree.offset = alloc.alloc(nk_len(tree))
    sk_payload_len = 20 + len(sd)
    sk_off = alloc.alloc(sk_payload_len)
    writes.append(
        (sk_off, b"sk" + struct.pack("<HIIII", 0, sk_off, sk_off, len(all_nodes), len(sd)) + sd)
    )

    def emit_key(n: _Node, parent_off: int, is_root: bool) -> None:
        if not is_root:
            n.offset = alloc.alloc(nk_len(n))
        # class name
        class_off, class_len = 0xFFFFFFFF, 0
        if n.class_name:
            cb = n.class_name.encode("utf-16-le")
            class_off = alloc.alloc(len(cb))
            class_len = len(cb)
            writes.append((class_off, cb))
        # values
        vlist_off = 0xFFFFFFFF
        max_vname = max_vdata = 0
        if n.values:
            vk_offsets = []
            vlist_off = alloc.alloc(4 * len(n.values))
            for vname, vtype, vdata in n.values:
                name_b, comp = _encode_name(vname, compress_latin1)
                vk_off = alloc.alloc(20 + len(name_b))
                vk_offsets.append(vk_off)
                max_vname = max(max_vname, len(vname) * 2)
                max_vdata = max(max_vdata, len(vdata))
                if len(vdata) <= 4:
                    size_field = 0x80000000 | len(vdata)
                    data_field = struct.unpack("<I", vdata.ljust(4, b"\x00"))[0]
                elif len(vdata) > BIG_DATA_THRESHOLD and big_data_ok:
                    segs = [vdata[i : i + BIG_DATA_SEGMENT] for i in range(0, len(vdata), BIG_DATA_SEGMENT)]
                    db_off = alloc.alloc(8)
                    seglist_off = alloc.alloc(4 * len(segs))
                    seg_offs = []
                    for seg in segs:
                        # Windows allocates 4 bytes of slack per segment (a full
                        # 16344-byte segment sits in a 16352-byte cell);
                        # libregf reads cell size - 8 bytes per segment and
                        # truncates the value without that slack.
                        so = alloc.alloc(len(seg) + 4)
                        writes.append((so, seg + b"\x00\x00\x00\x00"))
                        seg_offs.append(so)
                    writes.append((db_off, b"db" + struct.pack("<HI", len(segs), seglist_off)))
                    writes.append((seglist_off, struct.pack(f"<{len(seg_offs)}I", *seg_offs)))
                    size_field, data_field = len(vdata), db_off
                else:
                    data_field = alloc.alloc(len(vdata))
                    writes.append((data_field, vdata))
                    size_field = len(vdata)
                writes.append(
                    (
                        vk_off,
                        b"vk"
                        + struct.pack("<HIIIHH", len(name_b), size_field, data_field, vtype,
                                      VALUE_COMP_NAME if comp and name_b else 0, 0)
                        + name_b,
                    )
                )
            writes.append((vlist_off, struct.pack(f"<{len(vk_offsets)}I", *vk_offsets)))
        # subkeys: allocate the list(s) now, children after
        children = sorted(n.children.values(), key=lambda x: _sort_key(x.name))
        list_off = 0xFFFFFFFF
        list_cells: list[tuple[int, list[_Node]]] = []
        if children:
            chunks = [children[i : i + MAX_LIST_ENTRIES] for i in range(0, len(children), MAX_LIST_ENTRIES)]
            if len(chunks) > 1:
                list_off = alloc.alloc(4 + 4 * len(chunks))
                sub_offs = []
                for ch in chunks:
                    o = alloc.alloc(4 + 8 * len(ch))
                    sub_offs.append(o)
                    list_cells.append((o, ch))
                writes.append((list_off, b"ri" + struct.pack(f"<H{len(sub_offs)}I", len(sub_offs), *sub_offs)))
            else:
                list_off = alloc.alloc(4 + 8 * len(children))
                list_cells.append((list_off, children))
        for c in children:
            emit_key(c, n.offset, False)
        for o, ch in list_cells:
            body = b"".join(
                struct.pack("<II", c.offset, lh_hash(c.name))
                if use_lh
                else struct.pack("<I", c.offset) + c.name.encode("latin-1", "replace")[:4].ljust(4, b"\x00")
                for c in ch
            )
            writes.append((o, (b"lh" if use_lh else b"lf") + struct.pack("<H", len(ch)) + body))
        name_b, comp = _encode_name(n.name, compress_latin1)
        flags = (KEY_COMP_NAME if comp else 0) | ((KEY_HIVE_ENTRY | KEY_NO_DELETE) if is_root else 0)
        ts = to_filetime(n.last_written if n.last_written is not None else default_timestamp)
        max_sub_name = max((len(c.name) * 2 for c in children), default=0)
        max_sub_class = max((len((c.class_name or "").encode("utf-16-le")) for c in children), default=0)
        nk = b"nk" + struct.pack(
            "<HQIIIIIIIIIIIIIIIHH",
            flags,
            ts,
            0,  # access bits
            0xFFFFFFFF if is_root else parent_off,
            len(children),
            0,  # volatile subkeys
            list_off,
            0xFFFFFFFF,  # volatile subkey list
            len(n.values),
            vlist_off,
            sk_off,
            class_off,
            max_sub_name,
            max_sub_class,
            max_vname,
            max_vdata,
            0,  # work var
            len(name_b),
            class_len,
        ) + name_b
        writes.append((n.offset, nk))

    emit_key(tree, 0xFFFFFFFF, True)

    # --- pass 2: lay out bytes -------------------------------------------------
    total = alloc.end
    data = bytearray(total)
    for start, size in alloc.bins:
        data[start : start + HBIN_HEADER] = b"hbin" + struct.pack("<IIIIQI", start, size, 0, 0, 0, 0)
    for off, payload in writes:
        csize = alloc.cell_size(len(payload))
        data[off : off + 4] = struct.pack("<i", -csize)
        data[off + 4 : off + 4 + len(payload)] = payload
    # the unused tail of each bin is one free cell (positive size)
    for off, size in alloc.free_regions():
        data[off : off + 4] = struct.pack("<i", size)

    newest = max(
        to_filetime(n.last_written if n.last_written is not None else default_timestamp) for n in all_nodes
    )
    secondary = sequence - 1 if dirty else sequence
    base = bytearray(HBIN_SIZE)
    struct.pack_into(
        "<4sIIQIIIIIII", base, 0, b"regf", sequence, secondary, newest, 1, minor_version, 0, 1, tree.offset, total, 1
    )
    fname = file_name.encode("utf-16-le")[-64:]
    base[48 : 48 + len(fname)] = fname
    struct.pack_into("<I", base, 508, regf_checksum(bytes(base)))
    return bytes(base) + bytes(data)


def write_hive(target: PathOrFile, keys: Mapping[str, Any] | Sequence[RegKey], **options: Any) -> None:
    """Write a hive to a path or binary file object. See :func:`hive_bytes`."""
    emit(target, hive_bytes(keys, **options))
