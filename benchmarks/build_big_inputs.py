"""Build the big inputs of ``benchmarks/big_logs.py`` from ../shared/corpus.

Usage::

    python benchmarks/build_big_inputs.py [DIR] [--scale 1.0] [--force]

DIR defaults to /tmp/exa-bench and must lie outside the repository (the
files are large and never committed). At ``--scale 1`` it writes, about
2.2 GB in all:

- ``BIG.evtx``: 750 MiB (12,000 chunks) of real records: the chunks of every
  corpus .evtx that is not a named defect sample and reads cleanly, repeated;
  the forwarded-events (WEC) file is among them, so a record with nine
  fractional digits in its SystemTime sits in every batch.
- ``sec-case/SEC.evtx``: 1 GiB (16,384 chunks) of chunks from the corpus
  files whose every record is in the Security channel; the DeepBlueCLI SMB
  password-guessing log brings ~57% 4625 (failed logon) events, about the
  share of a real log of a server under a password attack.
- ``sec-case/SYSTEM``: the corpus SYSTEM hive (regipy), so the case has the
  registry a real upload carries.
- ``netstat.txt``: 1,000,000 lines of ``netstat -ano`` run at an interval
  (``netstat -ano 30 > netstat.txt``): a header block before each snapshot.
- ``tracking.log``: 500,000 lines of an Exchange 2003 message tracking log
  (one busy day; the header and columns of tests/fixtures/text/tracking_2003_real.log).
- ``SYSTEM``: the corpus SYSTEM hive as is (scale does not apply).

Stitched .evtx files are renumbered: a repeated chunk would repeat its
record identifiers, and records are cited by ``record=<id>`` (the row's
locator), so duplicates would make provenance ambiguous and the header's
next-record-id check meaningless. Each record's identifier is rewritten
where both readers take it: the record header and the EventRecordID
substitution value of its BinXml template instance; the chunk header's
ranges and both CRC32s and the file header (chunk count, next record id,
clean flag, CRC32) are rewritten to match. (A forwarded event's BinXml has
no template instance: its XML keeps the id it was written with.) Timestamps are kept as written,
so time runs backwards where a cycle of chunks starts again.

``--scale`` shrinks every size (a 0.001 build takes a second, for the smoke
test). A ``manifest.json`` records what was built; a second run with the
same scale reuses the files. The free space of DIR is checked first.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import struct
import sys
import tempfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
DEFAULT_DIR = Path("/tmp/exa-bench")
#: Bumped when what is built changes, so old builds are not reused.
BUILD_VERSION = 1

FILE_HEADER = 0x1000
CHUNK = 0x10000
CHUNK_MAGIC = b"ElfChnk\x00"
#: Corpus files whose README entry says they are defect samples (their name
#: says which defect): kept out of the stitched logs.
DEFECTS = {"Application_no_crc32.evtx", "Security_with_size_t.evtx", "python-evtx-issue_43.evtx",
           "sample-with-irregular-bool-values.evtx", "sample-with-zero-data-size-event.evtx",
           "sample_with_a_bad_chunk_magic.evtx", "security_bad_string_cache.evtx"}
#: The Security-only corpus files (each checked to hold Security records only).
SECURITY = ["security.evtx", "deepblue-smb-password-guessing-security.evtx",
            "deepblue-password-spray.evtx", "post-Security.evtx", "Security_short_selected.evtx",
            "Security_with_size_t.evtx", "new-user-security.evtx"]

#: Full-scale sizes.
BIG_CHUNKS = 12_000          # 750 MiB
SEC_CHUNKS = 16_384          # 1 GiB
NETSTAT_LINES = 1_000_000
TRACKING_LINES = 500_000


# --- .evtx stitching ---------------------------------------------------------

@dataclass
class SourceChunk:
    """One clean 64 KiB chunk of a corpus file and where its record ids sit:
    per record, the offset of the id in the record header and in the BinXml
    substitution values (None when the template instance could not be
    followed; that record's XML keeps its old id)."""

    name: str
    raw: bytes
    ids: list[tuple[int, int | None]]


def _binxml_rid_offset(c: bytes, rec: int, rid: int) -> int | None:
    """Offset in chunk ``c`` of the EventRecordID substitution value of the
    record at ``rec`` (libyal "Windows XML Event Log" and MS-EVEN6: fragment
    header, template instance, inline template definition, substitution
    array of (size, type) descriptors then values). The value is the
    UInt64 (type 0x0A) that equals the header's record id, or the one the
    Windows System template uses."""
    p = rec + 0x18
    if c[p] == 0x0F:                     # fragment header token
        p += 4
    if c[p] != 0x0C or p + 24 > len(c):  # not a template instance
        return None
    def_off = struct.unpack_from("<I", c, p + 6)[0]
    p += 10
    if def_off == p:                     # template definition inline
        p += 24 + struct.unpack_from("<I", c, p + 20)[0]
    if p + 4 > len(c):
        return None
    n = struct.unpack_from("<I", c, p)[0]
    p += 4
    if n > 512 or p + 4 * n > len(c):
        return None
    desc = [struct.unpack_from("<HBx", c, p + 4 * i) for i in range(n)]
    v = p + 4 * n
    uint64: dict[int, int] = {}               # substitution index -> offset
    for i, (size, vtype) in enumerate(desc):
        if vtype == 0x0A and size == 8 and v + 8 <= len(c):
            uint64[i] = v
        v += size
    same = [at for at in uint64.values() if struct.unpack_from("<Q", c, at)[0] == rid]
    if len(same) == 1:
        return same[0]
    # An exported log renumbers the record headers but not the XML: the
    # System template's EventRecordID is substitution 10, else the only UInt64.
    if 10 in uint64:
        return uint64[10]
    return next(iter(uint64.values())) if len(uint64) == 1 else None


def _chunk_ok(c: bytes) -> bool:
    free = struct.unpack_from("<I", c, 0x30)[0]
    return (c[:8] == CHUNK_MAGIC and 0x200 < free <= CHUNK
            and zlib.crc32(c[0x200:free]) == struct.unpack_from("<I", c, 0x34)[0]
            and zlib.crc32(c[:0x78] + c[0x80:0x200]) == struct.unpack_from("<I", c, 0x7C)[0])


def _records(c: bytes) -> list[tuple[int, int]]:
    """(offset, record id) of every record of a chunk."""
    out, pos, free = [], 0x200, struct.unpack_from("<I", c, 0x30)[0]
    while pos + 0x1C <= free and c[pos:pos + 4] == b"**\x00\x00":
        size, rid = struct.unpack_from("<IQ", c, pos + 4)
        if size < 0x1C or pos + size > free:
            break
        out.append((pos, rid))
        pos += size
    return out


def _crate_reads(c: bytes, header: bytes) -> tuple[int, set[str]] | None:
    """(records, channels) the evtx crate reads from a file of this one
    chunk, or None when it reports an error."""
    from evtx import PyEvtxParser

    with tempfile.NamedTemporaryFile(suffix=".evtx") as fh:
        fh.write(header + c)
        fh.flush()
        n, channels = 0, set()
        try:
            for r in PyEvtxParser(fh.name).records_json():
                n += 1
                event = json.loads(r["data"]).get("Event", {})
                channels.add(str((event.get("System") or {}).get("Channel")))
        except (RuntimeError, ValueError):
            return None
    return n, channels


def load_chunks(names: list[str], channel: str | None = None) -> tuple[list[SourceChunk], list[str]]:
    """The clean chunks of the named corpus files (CRC32s valid, every record
    read by the evtx crate, in ``channel`` when given) and what was left out."""
    chunks: list[SourceChunk] = []
    skipped: list[str] = []
    for name in names:
        raw = (CORPUS / "evtx" / name).read_bytes()
        header = _header(raw[:FILE_HEADER], 1, 1)
        for idx, off in enumerate(range(FILE_HEADER, len(raw) - CHUNK + 1, CHUNK)):
            c = raw[off:off + CHUNK]
            if c[:8] != CHUNK_MAGIC:
                continue
            recs = _records(c)
            read = _crate_reads(c, header) if _chunk_ok(c) and recs else None
            if read is None or read[0] != len(recs) or (channel and read[1] != {channel}):
                skipped.append(f"{name} chunk {idx}")
                continue
            chunks.append(SourceChunk(name, c, [(off_ + 8, _binxml_rid_offset(c, off_, rid))
                                                for off_, rid in recs]))
    return chunks, skipped


def _header(template: bytes, n_chunks: int, next_id: int) -> bytes:
    """A clean file header for ``n_chunks`` chunks (fields as in libyal's
    format notes: first/last chunk, next record id, chunk count, flags, CRC32)."""
    h = bytearray(template)
    struct.pack_into("<QQQ", h, 8, 0, n_chunks - 1, next_id)
    struct.pack_into("<H", h, 0x2A, n_chunks & 0xFFFF)
    struct.pack_into("<I", h, 0x78, 0)
    struct.pack_into("<I", h, 0x7C, zlib.crc32(bytes(h[:0x78])))
    return bytes(h)


def _renumbered(src: SourceChunk, first: int) -> bytes:
    c = bytearray(src.raw)
    for i, (hdr_at, xml_at) in enumerate(src.ids):
        struct.pack_into("<Q", c, hdr_at, first + i)
        if xml_at is not None:
            struct.pack_into("<Q", c, xml_at, first + i)
    last = first + len(src.ids) - 1
    struct.pack_into("<QQQQ", c, 8, first, last, first, last)
    free = struct.unpack_from("<I", c, 0x30)[0]
    struct.pack_into("<I", c, 0x34, zlib.crc32(bytes(c[0x200:free])))
    struct.pack_into("<I", c, 0x7C, zlib.crc32(bytes(c[:0x78]) + bytes(c[0x80:0x200])))
    return bytes(c)


def stitch(target: Path, pool: list[SourceChunk], n_chunks: int) -> dict:
    """Write ``n_chunks`` chunks cycling through ``pool``, renumbered from 1."""
    if not pool:
        raise SystemExit(f"no clean chunk to build {target.name} from")
    n_chunks = max(1, min(n_chunks, 0xFFFF))
    template = (CORPUS / "evtx" / pool[0].name).read_bytes()[:FILE_HEADER]
    next_id, unmapped = 1, 0
    with open(target, "wb") as fh:
        fh.write(bytes(FILE_HEADER))
        for i in range(n_chunks):
            src = pool[i % len(pool)]
            fh.write(_renumbered(src, next_id))
            next_id += len(src.ids)
            unmapped += sum(1 for _, x in src.ids if x is None)
        fh.seek(0)
        fh.write(_header(template, n_chunks, next_id))
    return {"bytes": target.stat().st_size, "chunks": n_chunks, "records": next_id - 1,
            "records_without_xml_id": unmapped}


def evtx_sources() -> list[str]:
    """Every corpus .evtx that is not a named defect sample."""
    return sorted(p.name for p in (CORPUS / "evtx").glob("*.evtx") if p.name not in DEFECTS)


# --- text logs -----------------------------------------------------------------

NETSTAT_HEADER = ("\r\nActive Connections\r\n\r\n  Proto  Local Address          Foreign Address"
                  "        State           PID\r\n")


def _netstat_row(rnd: random.Random) -> str:
    """One ``netstat -ano`` row in its fixed-width columns: a busy Exchange
    server's mix of client connections, listeners, IPv6 and UDP."""
    x = rnd.random()
    pid = rnd.choice((4, 672, 744, 1312, 1604, 1744, 2412, 2768, 3120))
    if x < 0.06:
        port = rnd.choice((25, 80, 135, 443, 445, 691, 3268, 6001, 6002, 6004))
        return f"  TCP    {'0.0.0.0:' + str(port):<23}{'0.0.0.0:0':<23}{'LISTENING':<16}{pid}"
    if x < 0.09:
        port = rnd.choice((135, 445, 593, 6001))
        return f"  TCP    {f'[::]:{port}':<23}{'[::]:0':<23}{'LISTENING':<16}{pid}"
    if x < 0.13:
        port = rnd.randint(1024, 65535)
        return f"  UDP    {'0.0.0.0:' + str(port):<23}{'*:*':<23}{'':<16}{pid}"
    if x < 0.15:
        local = f"[fe80::5efe:a00:{rnd.randint(1, 254):x}%{rnd.randint(2, 12)}]:{rnd.randint(1024, 65535)}"
        return f"  TCP    {local:<23} {'[fe80::1%4]:135':<23}{'ESTABLISHED':<16}{pid}"
    state = rnd.choices(("ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT", "SYN_SENT", "FIN_WAIT_2"),
                        (70, 22, 4, 2, 2))[0]
    local = f"10.0.100.32:{rnd.choice((135, 443, 6001, rnd.randint(1024, 65535)))}"
    remote = f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}:{rnd.randint(1024, 65535)}"
    return f"  TCP    {local:<23}{remote:<23}{state:<16}{pid}"


def write_netstat(target: Path, lines: int) -> dict:
    """``lines`` lines of interval ``netstat -ano`` output (CRLF), a header
    block (4 lines) before each snapshot of up to 5,000 rows."""
    rnd = random.Random(19)
    written = rows = 0
    with open(target, "w", encoding="ascii", newline="") as fh:
        while written < lines:
            block = [NETSTAT_HEADER]
            written += 4
            take = min(5000, max(0, lines - written))
            block.extend(_netstat_row(rnd) + "\r\n" for _ in range(take))
            written += take
            rows += take
            fh.write("".join(block))
    return {"bytes": target.stat().st_size, "lines": written, "rows": rows}


TRACKING_HEADER = (
    "# Message Tracking Log File\r\n# Exchange System Attendant Version 6.5.7638.1\r\n"
    "# Date\tTime\tClient-IP\tClient-hostname\tPartner-name\tServer-hostname\tServer-IP\t"
    "Recipient-address\tEvent-ID\tMSGID\tPriority\tRecipient-report-status\tTotal-bytes\t"
    "Number-recipients\tOrigination-time\tEncryption\tService-version\tLinked-MSGID\t"
    "Message-Subject\tSender-Address\r\n")
#: Event sequences of one message (as in the repository's Exchange 2003
#: samples): SMTP submit, categorized, routed/queued, then delivered locally
#: (1028) or handed over to a remote MTA (1031), or an NDR (1030).
_SEQUENCES = [((1019, 1033, 1036, 1028, 1023), 60), ((1019, 1033, 1034, 1020, 1031), 35),
              ((1019, 1033, 1030), 5)]
_PEOPLE = [f"{n}@contoso.com" for n in ("alice", "bob", "carol", "dave", "erin", "frank", "grace",
                                        "heidi", "ivan", "judy", "mallory", "oscar")]
_REMOTE = ["orders@fabrikam.com", "j.doe@litwareinc.com", "info@adatum.com", "news@wingtiptoys.com",
           "sales@northwindtraders.com"]
_SUBJECTS = ["", "", "", "Quarterly report", "RE: meeting", "Invoice 4711", "FW: schedule"]


def write_tracking(target: Path, lines: int) -> dict:
    """``lines`` lines of one busy day's Exchange 2003 tracking log (CRLF, TAB)."""
    rnd = random.Random(2003)
    start = datetime(2007, 3, 12)
    step = 86_000 / max(lines, 1)
    written, msg = 3, 0
    with open(target, "w", encoding="ascii", newline="") as fh:
        fh.write(TRACKING_HEADER)
        out: list[str] = []
        while written < lines:
            seq = rnd.choices([s for s, _ in _SEQUENCES], [w for _, w in _SEQUENCES])[0]
            inbound = seq[-1] == 1023
            sender = rnd.choice(_REMOTE) if inbound else rnd.choice(_PEOPLE)
            rcpt = rnd.choice(_PEOPLE) if inbound else rnd.choice(_REMOTE)
            msgid = f"<{msg:08X}@{'mail.fabrikam.com' if inbound else 'EXCH01.contoso.local'}>"
            size, subject, origin = rnd.randint(900, 250_000), rnd.choice(_SUBJECTS), None
            client = f"10.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
            for event in seq:
                if written >= lines:
                    break
                t = start + timedelta(seconds=written * step)
                stamp = f"{t.year}-{t.month}-{t.day}\t{t.hour}:{t.minute:02d}:{t.second:02d} GMT"
                origin = origin or stamp.replace("\t", " ")
                out.append(f"{stamp}\t{client}\t{'EXCH01' if event != 1019 else '-'}\tSMTP\tEXCH01\t"
                           f"10.0.0.21\t{rcpt}\t{event}\t{msgid}\t0\t{0 if event == 1030 else ''}\t"
                           f"{size}\t1\t{origin}\t0\tVersion: 6.5.7638.1\t-\t{subject}\t{sender}\r\n")
                written += 1
            msg += 1
            if len(out) >= 10_000:
                fh.write("".join(out))
                out = []
        fh.write("".join(out))
    return {"bytes": target.stat().st_size, "lines": written, "rows": written - 3}


# --- driver --------------------------------------------------------------------

def _inside_repo(path: Path) -> bool:
    try:
        path.resolve().relative_to(REPO)
        return True
    except ValueError:
        return False


def needed_bytes(scale: float) -> int:
    hive = (CORPUS / "hives" / "regipy-SYSTEM").stat().st_size
    return int((BIG_CHUNKS + SEC_CHUNKS) * CHUNK * scale + NETSTAT_LINES * 70 * scale
               + TRACKING_LINES * 190 * scale) + 2 * hive + (64 << 20)


def build(out: Path, scale: float = 1.0, force: bool = False, log=print) -> dict:
    """Build every input into ``out`` (reused when a build of this scale is
    there); returns the manifest."""
    if _inside_repo(out):
        raise SystemExit(f"{out} is inside the repository; pick a folder outside it")
    if not (CORPUS / "evtx").is_dir():
        raise SystemExit(f"corpus not found at {CORPUS}")
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if manifest_path.is_file() and not force:
        old = json.loads(manifest_path.read_text())
        if old.get("version") == BUILD_VERSION and old.get("scale") == scale and \
                all((out / f).is_file() for f in old.get("files", {})):
            log(f"reusing the inputs of scale {scale} in {out}")
            return old
    manifest_path.unlink(missing_ok=True)
    need, free = needed_bytes(scale), shutil.disk_usage(out).free
    if need > free * 0.9:
        fits = math.floor(scale * free * 0.9 / need * 1000) / 1000
        raise SystemExit(f"{out}: {free / 1e9:.1f} GB free, scale {scale} needs about "
                         f"{need / 1e9:.1f} GB; try --scale {fits}")
    files: dict[str, dict] = {}
    pool, skipped = load_chunks(evtx_sources())
    log(f"BIG.evtx: {len(pool)} clean chunks from {len(evtx_sources())} corpus files"
        + (f" ({len(skipped)} left out: {', '.join(skipped[:6])}{' ...' if len(skipped) > 6 else ''})"
           if skipped else ""))
    files["BIG.evtx"] = stitch(out / "BIG.evtx", pool, math.ceil(BIG_CHUNKS * scale))
    sec_pool, skipped = load_chunks(SECURITY, channel="Security")
    (out / "sec-case").mkdir(exist_ok=True)
    files["sec-case/SEC.evtx"] = stitch(out / "sec-case" / "SEC.evtx", sec_pool,
                                        math.ceil(SEC_CHUNKS * scale))
    files["sec-case/SEC.evtx"]["4625_share"] = _share_4625(sec_pool)
    log(f"SEC.evtx: {len(sec_pool)} Security chunks" + (f" ({len(skipped)} left out)" if skipped else ""))
    hive = CORPUS / "hives" / "regipy-SYSTEM"
    for name in ("SYSTEM", "sec-case/SYSTEM"):
        shutil.copyfile(hive, out / name)
        files[name] = {"bytes": hive.stat().st_size}
    files["netstat.txt"] = write_netstat(out / "netstat.txt", max(10, round(NETSTAT_LINES * scale)))
    files["tracking.log"] = write_tracking(out / "tracking.log", max(10, round(TRACKING_LINES * scale)))
    manifest = {"version": BUILD_VERSION, "scale": scale, "files": files}
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def _share_4625(pool: list[SourceChunk]) -> float:
    """Share of 4625 events in one cycle of the pool (EventID read by the crate)."""
    from evtx import PyEvtxParser

    total = hits = 0
    with tempfile.NamedTemporaryFile(suffix=".evtx") as fh:
        stitch(Path(fh.name), pool, len(pool))
        for r in PyEvtxParser(fh.name).records_json():
            total += 1
            eid = json.loads(r["data"])["Event"]["System"].get("EventID")
            hits += (eid.get("#text") if isinstance(eid, dict) else eid) == 4625
    return round(hits / total, 3) if total else 0.0


def describe(manifest: dict) -> str:
    lines = [f"inputs (scale {manifest['scale']}):"]
    for name, info in manifest["files"].items():
        extra = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                          for k, v in info.items() if k != "bytes")
        lines.append(f"  {name:<20} {info['bytes'] / 1e6:9.1f} MB  {extra}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", default=str(DEFAULT_DIR))
    ap.add_argument("--scale", type=float, default=1.0, help="shrink every size (default 1.0)")
    ap.add_argument("--force", action="store_true", help="rebuild even if a build of this scale is there")
    args = ap.parse_args()
    manifest = build(Path(args.dir), args.scale, args.force)
    print(describe(manifest))


if __name__ == "__main__":
    sys.exit(main())
