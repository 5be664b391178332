"""The text sources' rows, warnings and inventory notes do not change when
their parsers change (the vectorized netstat and tracking paths).

Goldens (``tests/data/text_rows_identity.json``) hold, per input, a sha256
of every column, a few full rows, every warning with its locator and the
inventory entry. They were produced by the row-at-a-time parsers the
vectorized paths replaced, on the repository's own netstat and tracking
files plus generated inputs full of odd lines (below). Regenerate only for
an intended change of the table:
``PYTHONPATH=$PWD python tests/test_text_rows_identity.py --regen``.
"""
from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "text_rows_identity.json"

#: Repository files read as they are (relative to the repository root).
REPO_FILES = [
    "tests/fixtures/text/netstat_ano.txt",
    "tests/fixtures/text/netstat_b.txt",
    "tests/fixtures/text/netstat_chinese.txt",
    "tests/fixtures/text/netstat_german.txt",
    "tests/fixtures/text/netstat_nt4.txt",
    "samples/rpc-port-conflict-german-netstat/case/netstat-ano.txt",
    "samples/two-servers-one-broken/case/EXCH01/netstat.txt",
    "samples/rpc-port-conflict-gc-nspi-duplicate/case/netstat.txt",
    "tests/fixtures/text/tracking_2003.log",
    "tests/fixtures/text/tracking_2003_real.log",
    "tests/fixtures/text/tracking_trail_kb828938.txt",
    "tests/fixtures/text/msgtrk_2007.log",
    "tests/fixtures/text/msgtrk_2010.log",
    "samples/smtp-mailbox-healthy-delivery/case/Exchsrvr/EXCH01.log/20070312.log",
    "samples/smtp-mailbox-truncated-evtx/case/Exchsrvr/EXCH01.log/20070312.log",
    "samples/transport-busy-hub-healthy/case/HUB01/TrackingLogs/MSGTRK20090121-1.LOG",
]

# ---------------------------------------------------------------------------
# generated inputs: deterministic, a few thousand lines, every odd line kind


def _netstat_text(rng: random.Random, n: int) -> str:
    states = ["LISTENING", "ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT", "ABHÖREN", "HERGESTELLT",
              "ABH™REN", "SYN_SENT", "ÉCOUTE", "FIN_WAIT_2", "LAST_ACK", "Listening"]
    out = ["", "Active Connections", "", "  Proto  Local Address          Foreign Address"
           "        State           PID"]
    for i in range(n):
        r = rng.random()
        if r < 0.04:
            out.append(rng.choice([
                "  TCP    10.0.0.1:135", "  TCP    garbage", "  UDP    [::]:5355",
                "  TCP    10.0.0.1:80    10.0.0.2:x    ESTABLISHED   12   99 extra",
                "...", "C:\\>netstat -ano", "", "   ", "\tTCP\t", "> TCP    1.2.3.4:1  5.6.7.8:2  "
                "ESTABLISHED  4", "&gt; note &amp; more;", "_ _TCP    0.0.0.0:25  0.0.0.0:0  LISTENING  7",
            ]))
            continue
        if r < 0.07:  # -b owner lines
            out.append(rng.choice(["  RpcSs", " [svchost.exe]", "  Can not obtain ownership information",
                                   " [store.exe]", "  TCP not a row", "  [weird \"name\"]"]))
            continue
        proto = rng.choice(["TCP", "TCP", "TCP", "UDP", "TCPv6", "tcp", "UDPv6"])
        v6 = rng.random() < 0.15
        if v6:
            local = rng.choice(["[::]", "[::1]", "[fe80::1%4]", "[2001:db8::5]"]) + f":{rng.randint(0, 65535)}"
        else:
            local = f"{rng.choice(['0.0.0.0', '10.0.0.5', '127.0.0.1', '192.168.1.9'])}:{rng.randint(0, 65535)}"
        if proto.upper().startswith("UDP") and rng.random() < 0.7:
            remote, state = "*:*", ""
        else:
            remote = f"10.{rng.randint(0, 9)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}:{rng.randint(1, 65535)}"
            if v6:
                remote = f"[2001:db8::{rng.randint(1, 99)}]:{rng.randint(1, 65535)}"
            state = rng.choice(states)
        pid = str(rng.randint(0, 9000)) if rng.random() < 0.9 else ""
        pad = rng.choice(["", "", "  ", "\t"])
        line = f"  {proto:<6} {local:<22} {remote:<22} {state:<15} {pid}".rstrip() + pad
        if rng.random() < 0.02:
            line = line.replace("10.", "１0.", 1)  # a full-width digit
        if rng.random() < 0.01:
            line = line.replace(":", ':"', 1)
        if rng.random() < 0.01:
            line = line.rstrip() + " ١٢"  # Arabic-Indic digits: Python's \d and int() take them
        if rng.random() < 0.005:
            line = line.replace(":", ":٣", 1)
        if rng.random() < 0.005:
            line = line.rstrip() + " 123456789012345678901234"
        out.append(line)
    return "\r\n".join(out)


_HDR_2003 = ("Date\tTime\tClient-IP\tClient-hostname\tPartner-name\tServer-hostname\tServer-IP\t"
             "Recipient-address\tEvent-ID\tMSGID\tPriority\tRecipient-report-status\tTotal-bytes\t"
             "Number-recipients\tOrigination-time\tEncryption\tService-version\tLinked-MSGID\t"
             "Message-Subject\tSender-Address")


def _tracking_line(rng: random.Random, i: int) -> str:
    y, mo, d = 2003, rng.randint(1, 12), rng.randint(1, 28)
    h, mi, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    date, time = rng.choice([
        (f"{y}-{mo}-{d}", f"{h}:{mi:02d}:{s:02d} GMT"),
        (f"{y}-{mo:02d}-{d:02d}", f"{h:02d}:{mi:02d}:{s:02d} GMT"),
        (f"{y}-{mo}-{d}", f"{h}:{mi:02d}:{s:02d}"),
        (f"{mo}/{d}/{y}", f"{h}:{mi:02d}:{s:02d} GMT"),
        (f"{y}/{mo:02d}/{d:02d}", f"{h:02d}:{mi:02d}:{s:02d} UTC"),
        (f"{mo}/{d}/{y}", f"{(h % 12) or 12}:{mi:02d}:{s:02d} {'AM' if h < 12 else 'PM'}"),
        (f"{y}-{mo}-{d}", f"{h}:{mi:02d} GMT"),
        (f"{y}-2-30", "10:00:00 GMT"), ("2003-13-1", "1:00:00 GMT"), ("yesterday", "noon"),
        (f"{y}-{mo}-{d}", f"{h}:{mi}:{s} GMT"), (f"{y}-{mo}-{d}", f"{h}:{mi:02d}:60 GMT"),
    ] if rng.random() < 0.2 else [(f"{y}-{mo}-{d}", f"{h}:{mi:02d}:{s:02d} GMT")])
    ev = rng.choice(["1019", "1020", "1028", "1031", "1033", "1034", "1030", "1027", "-", "", "9999",
                     "SEND", "0", "-7", "0042"])
    rcpt = rng.choice(["user@contoso.com", "a@x.com;b@y.com", "-", "", " spaced@x.com ",
                       "üser@exämple.com", "a@x.com; ;-", "q\"uote@x.com"])
    subj = rng.choice(["", "", "Hello", "Re: Bücher & \"Zitate\"", "back\\slash", "tab\x0bvt",
                       "ctl\x01char", " padded ", "日本語の件名", "-"])
    size = rng.choice([str(rng.randint(100, 99999)), "-", "", "12a", "-15", "007",
                       "99999999999999999999999"])
    cols = [date, time, f"10.0.0.{rng.randint(1, 254)}", rng.choice(["EXCH01", "-", "mx.fabrikam.com"]),
            rng.choice(["SMTP", "-", "MTA"]), rng.choice(["EXCH01", "EXCH02", "-", ""]),
            "10.0.0.21", rcpt, ev, f"<{i:08X}@EXCH01.contoso.local>", rng.choice(["0", "1", "-"]),
            rng.choice(["0", "", "250"]), size, rng.choice(["1", "2", "x"]), f"{date} {time}", "0",
            "Version: 6.5.7638.1", "-", subj, rng.choice(["alice@contoso.com", "-", "", "bob@x"])]
    r = rng.random()
    if r < 0.03:
        cols = cols[: rng.randint(2, 12)]  # short lines: unreadable, or partial
    elif r < 0.05:
        cols = cols + ["extra", "more"]
    return "\t".join(cols)


def _tracking_text(rng: random.Random, n: int, header: str | None) -> str:
    out = ["# Message Tracking Log File", "# Exchange System Attendant Version 6.5.7638.1"]
    if header is not None:
        out.append("# " + header)
    for i in range(n):
        r = rng.random()
        if r < 0.01:
            out.append(rng.choice(["", "   ", "# comment", "garbage line without tabs",
                                   "2003-9-12 22:53:18 SMTP: Message Delivered Locally to u@x.com"]))
            continue
        out.append(_tracking_line(rng, i))
    return "\n".join(out)


def _headers(rng: random.Random) -> list[str]:
    lower = _HDR_2003.lower()
    mixed = "\t".join(c.upper() if k % 3 == 0 else c for k, c in enumerate(_HDR_2003.split("\t")))
    return [_HDR_2003, lower, mixed]


def generated_inputs() -> dict[str, tuple[bytes, dict[str, Any]]]:
    """name -> (file bytes, load_case keywords)."""
    rng = random.Random(19)
    files: dict[str, tuple[bytes, dict[str, Any]]] = {}
    text = _netstat_text(rng, 3000)
    files["gen_netstat.txt"] = (text.encode("utf-8"), {})
    files["gen_netstat_truncated.txt"] = (text[: len(text) - 7].encode("utf-8"), {})
    files["gen_netstat_cp850.txt"] = (_netstat_text(rng, 600).replace("™", "Ö")
                                      .encode("cp850", errors="replace") + b"\r\n", {})
    files["gen_netstat_utf16.txt"] = (b"\xff\xfe" + _netstat_text(rng, 600).encode("utf-16-le"), {})
    long_text = _netstat_text(rng, 800).split("\r\n")
    for k in (5, 300, 301, 650, len(long_text) - 1):
        long_text[k] = "  TCP    " + "9" * 400
    files["gen_netstat_longlines.txt"] = ("\r\n".join(long_text).encode("utf-8"), {"max_line_chars": 200})
    for k, hdr in enumerate(_headers(rng)):
        files[f"gen_tracking_{k}.log"] = ((_tracking_text(rng, 2500, hdr) + "\n").encode("utf-8"), {})
    t = _tracking_text(rng, 1500, None)
    files["gen_tracking_noheader.log"] = (t.encode("utf-8"), {})
    t = _tracking_text(rng, 1500, _HDR_2003)
    files["gen_tracking_truncated.log"] = (t[: len(t) - 40].encode("utf-8"), {})
    t = _tracking_text(rng, 300, _HDR_2003).split("\n")
    files["gen_tracking_bare.log"] = ("\n".join(t[3:]).encode("utf-8"), {})  # no header at all
    t = _tracking_text(rng, 1200, _HDR_2003).split("\n")
    for k in (7, 500, 501, len(t) - 1):
        t[k] = "2003-1-1\t" + "x" * 600
    files["gen_tracking_longlines.log"] = ("\r\n".join(t).encode("utf-8"), {"max_line_chars": 500})
    t = _tracking_text(rng, 800, _HDR_2003).replace("\n", "\r")  # old Mac line ends
    files["gen_tracking_cr.log"] = (t.encode("cp1252", errors="replace"), {})
    clean = random.Random(2)  # long runs of plain rows: whole Arrow batches
    body = [_tracking_line(clean, i) for i in range(3000)]
    files["gen_tracking_runs.log"] = (("\n".join(["# Message Tracking Log File", "# " + _HDR_2003]
                                                  + [ln for ln in body if ln.count("\t") >= 19])
                                       + "\n").encode("utf-8"), {})
    plain = [ln for ln in body if ln.isascii() and '"' not in ln
             and "\\" not in ln and not any(ord(c) < 32 and c != "\t" for c in ln)]
    files["gen_tracking_ascii.log"] = (("\n".join(["# Message Tracking Log File", "# " + _HDR_2003]
                                                   + plain) + "\n").encode("ascii"), {})
    dup = _HDR_2003.replace("Priority", "Total-bytes")
    files["gen_tracking_dupcol.log"] = ((_tracking_text(rng, 400, dup) + "\n").encode("utf-8"), {})
    odd = _HDR_2003.replace("Message-Subject", "Event").replace("Encryption", "Server")
    files["gen_tracking_oddcols.log"] = ((_tracking_text(rng, 400, odd) + "\n").encode("utf-8"), {})
    return files


# ---------------------------------------------------------------------------
# fingerprint of a loaded file


def _value(v: Any) -> Any:
    if v is None:
        return None
    try:
        import pandas as pd
        if v is pd.NA or v is pd.NaT:
            return None
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, float) and v != v:
        return None
    if hasattr(v, "item"):
        v = v.item()
    return v


def fingerprint(path: Path, **kw: Any) -> dict[str, Any]:
    """Per-column sha256, first/middle/last rows, warnings and inventory."""
    from analyzer import archive
    from analyzer.case import load_case

    limits = archive.Limits(**kw) if kw else None
    case = load_case(path, limits=limits, name="identity")
    df = case.table
    cols: dict[str, str] = {}
    for name in df.columns:
        h = hashlib.sha256()
        for v in df[name].tolist():
            h.update(json.dumps(_value(v), ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
            h.update(b"\n")
        cols[name] = h.hexdigest()
    n = len(df)
    picks = sorted({0, n // 3, n // 2, n - 1}) if n else []
    rows = [{c: _value(df[c].iloc[i]) for c in df.columns} for i in picks]
    inv = [e.to_dict() for e in case.inventory]
    for e in inv:
        e.pop("sha256", None)
    return {"rows": n, "columns": cols, "sample_rows": rows,
            "warnings": [[w.locator, w.message] for w in case.warnings], "inventory": inv}


def all_inputs(tmp: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for rel in REPO_FILES:
        out[rel] = (ROOT / rel, {})
    for name, (data, kw) in generated_inputs().items():
        p = tmp / name
        p.write_bytes(data)
        out[name] = (p, kw)
    return out


def _cases() -> list[str]:
    return REPO_FILES + sorted(generated_inputs())


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    return all_inputs(tmp_path_factory.mktemp("identity"))


@pytest.fixture(scope="module")
def goldens() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", _cases())
def test_rows_identical(name: str, inputs: dict[str, tuple[Path, dict[str, Any]]],
                        goldens: dict[str, Any]) -> None:
    path, kw = inputs[name]
    got = fingerprint(path, **kw)
    want = goldens[name]
    assert got["rows"] == want["rows"]
    assert got["sample_rows"] == want["sample_rows"]
    bad = [c for c in want["columns"] if got["columns"][c] != want["columns"][c]]
    assert not bad, f"columns changed: {bad}"
    assert got["warnings"] == want["warnings"]
    assert got["inventory"] == want["inventory"]


def test_generated_inputs_are_odd(goldens: dict[str, Any]) -> None:
    """The generated files do exercise the bad-line paths: warnings naming
    lines, partial rows and skipped long lines are all in the goldens."""
    ws = [m for name, g in goldens.items() if name.startswith("gen_") for _loc, m in g["warnings"]]
    assert any("unreadable netstat row" in m for m in ws)
    assert any("unreadable tracking row" in m for m in ws)
    assert any("truncated last line" in m for m in ws)
    assert any("characters long" in m for m in ws)
    locs = [loc for name, g in goldens.items() if name.startswith("gen_") for loc, _m in g["warnings"]]
    assert sum(1 for loc in locs if loc and loc.startswith("line=")) > 50


if __name__ == "__main__" and "--regen" in sys.argv:
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        data = {name: fingerprint(p, **kw) for name, (p, kw) in all_inputs(Path(d)).items()}
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({len(data)} inputs)")
