"""``netstat -an`` / ``-ano`` / ``-anob`` output -> ``listener`` and
``connection`` rows (KB 926210 step 2; examples:
tests/fixtures/text/netstat_*.txt).

Row shape: ``Proto Local Foreign [State] [PID]``. Pitfalls this parser
handles:

- the PID column exists from XP/2003 on (``-o``) and is absent on NT4/2000;
- UDP rows have no state (``UDP 0.0.0.0:123 *:* 848``): they are listeners;
- IPv6 addresses are bracketed (``[::]:135``, ``[fe80::1%4]:135``), so the
  port is what follows the *last* colon;
- header and state words are localized (German ``ABHÖREN``/``ABHOEREN``,
  ``HERGESTELLT``; Chinese headers with English states), so rows are found
  by their shape, never by the header text, and states are normalized to the
  English words (``state_raw`` keeps what was written);
- cmd.exe redirection writes the OEM code page: ``ABHÖREN`` read as cp1252
  becomes ``ABH™REN``; textio usually detects cp850, and the state lookup
  also accepts ``ABH?REN`` / mojibake forms;
- ``-b`` puts the owning component and ``[image.exe]`` on lines after each
  row (``Can not obtain ownership information`` when not elevated);
- prompts, ``...`` elisions and blank lines are mixed in by whoever pasted.
"""
from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _columnar, register
from ._textcommon import clean_scraped, head_lines
from .base import ParseContext, Source

_ROW = re.compile(
    r"^\s*(?P<proto>TCP|UDP|TCPv6|UDPv6)\s+(?P<local>\S+:\S+)\s+(?P<remote>\S+:\S+|\*:\*)"
    r"(?:\s+(?P<state>[^\d\s][^\s]*(?:\s[^\d\s][^\s]*)?))?(?:\s+(?P<pid>\d+))?\s*$", re.I)
_IMAGE = re.compile(r"^\s*\[(?P<image>[^\]]+)\]\s*$")
_HEADER = re.compile(r"^\s*(?:Active Connections|Aktive Verbindungen|Connexions actives|"
                     r"Conexiones activas|Connessioni attive|Conexões ativas|活动连接)\s*$", re.I)

#: Localized TCP state words -> the English names Windows prints. Keys are
#: upper-case, accent-free (ABHÖREN -> ABHOREN and ABHOEREN both listed).
STATES: dict[str, str] = {
    # German
    "ABHOREN": "LISTENING", "ABHOEREN": "LISTENING", "HERGESTELLT": "ESTABLISHED",
    "WARTEND": "TIME_WAIT", "SCHLIESSEN_WARTEN": "CLOSE_WAIT", "SYN_GESENDET": "SYN_SENT",
    "SYN_EMPFANGEN": "SYN_RECEIVED", "FIN_WARTEN_1": "FIN_WAIT_1", "FIN_WARTEN_2": "FIN_WAIT_2",
    "LETZTE_BESTATIGUNG": "LAST_ACK", "SCHLIESSEND": "CLOSING", "GESCHLOSSEN": "CLOSED",
    # French
    "ECOUTE": "LISTENING", "ETABLIE": "ESTABLISHED", "ATTENTE_FERMETURE": "CLOSE_WAIT",
    "FERME": "CLOSED",
    # Spanish / Portuguese / Italian
    "ESCUCHANDO": "LISTENING", "ESTABLECIDO": "ESTABLISHED", "ESCUTANDO": "LISTENING",
    "OUVINDO": "LISTENING", "ESTABELECIDA": "ESTABLISHED", "IN ASCOLTO": "LISTENING",
    "STABILITA": "ESTABLISHED",
    # English spellings seen on old systems
    "LISTEN": "LISTENING", "SYN_RCVD": "SYN_RECEIVED",
}
_ENGLISH = frozenset({"LISTENING", "ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT", "SYN_SENT",
                      "SYN_RECEIVED", "FIN_WAIT_1", "FIN_WAIT_2", "LAST_ACK", "CLOSING",
                      "CLOSED", "BOUND", "DELETE_TCB"})
_MOJIBAKE_LISTEN = re.compile(r"^ABH.{1,2}REN$")


def normalize_state(raw: str) -> str:
    """Localized or mojibake state word -> English netstat state."""
    up = raw.strip().upper()
    if up in _ENGLISH:
        return up
    plain = "".join(c for c in unicodedata.normalize("NFKD", up) if not unicodedata.combining(c))
    if plain in STATES:
        return STATES[plain]
    if _MOJIBAKE_LISTEN.match(plain):
        return "LISTENING"
    return plain


def split_endpoint(text: str) -> tuple[str, int | None]:
    """``[::]:135`` -> ("::", 135); ``*:*`` -> ("*", None)."""
    addr, _, port = text.rpartition(":")
    if addr.startswith("[") and addr.endswith("]"):
        addr = addr[1:-1]
    return addr, int(port) if port.isdecimal() else None


@register
class NetstatSource(Source):
    name = "netstat"
    kind = "netstat"
    description = "netstat -an / -ano / -anob output"

    def sniff(self, head: bytes, name: str) -> int:
        lines = head_lines(head)
        rows = sum(1 for ln in lines if _ROW.match(ln))
        header = any(_HEADER.match(ln) for ln in lines)
        if rows >= 3 or (rows and header):
            return 90
        if rows:
            return 50
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[pa.Table | dict[str, Any]]:
        """Rows in Arrow batches of about :data:`_columnar.BATCH_ROWS`.

        Every line is matched with the row regex (it alone decides what a
        row is); runs of matching lines go to the batch in bulk, the other
        lines one by one through :meth:`_line`. The columns of a batch are
        built by :func:`_netstat_table`. The newest row stays out of a
        flushed batch: a ``-b`` owner line after it may still belong to it.
        """
        batch = _Batch()
        match = _ROW.match
        for block in _columnar.line_blocks(ctx.fs_path):
            lines, start = block.lines, block.start
            # A plain block (see _plain_block) is matched on its raw lines;
            # otherwise every line is cleaned first, one by one.
            found = list(map(match, lines)) if _plain_block(lines) else [None] * len(lines)
            pos, end = 0, len(lines)
            while pos < end:
                try:
                    j = found.index(None, pos)
                except ValueError:
                    j = end
                if j > pos:
                    batch.extend(start + pos, lines[pos:j])
                if j < end:
                    self._line(ctx, batch, lines[j], start + j,
                               block.last_unterminated and j == end - 1)
                pos = j + 1
            if len(batch) > _columnar.BATCH_ROWS:
                yield batch.flush(ctx.path, keep_last=True)
        if len(batch):
            yield from _columnar.handed_on(batch.flush(ctx.path, keep_last=False))
        if batch.total == 0:
            ctx.warn("no netstat rows found", None)

    def _line(self, ctx: ParseContext, batch: _Batch, raw: str, no: int, last: bool) -> None:
        """One line the bulk path did not take: cleaned of scraping debris,
        then a row (built the row-at-a-time way) or :meth:`_other`."""
        text = clean_scraped(raw)
        if _ROW.match(text):
            batch.add_slow(no, text)
        else:
            self._other(ctx, batch, text, no, last)

    @staticmethod
    def _other(ctx: ParseContext, batch: _Batch, text: str, no: int, last: bool) -> None:
        """A line that is not a row: a ``-b`` owner line of the newest row,
        a damaged row (warned with its line), or anything else (ignored)."""
        if batch.total and (mi := _IMAGE.match(text)):
            batch.extra("image", mi["image"])
            return
        if batch.total and text.startswith(" ") and text.strip() and not _ROWISH.match(text) \
                and not batch.has_image():
            # -b component line ("  RpcSs", "Can not obtain ownership information")
            batch.extra("component", text.strip())
            return
        if _TCPUDP.match(text):
            ctx.warn("truncated last line" if last else f"unreadable netstat row {text.strip()[:80]!r}",
                     f"line={no}")


_ROWISH = re.compile(r"^\s*(?:TCP|UDP)", re.I)
_TCPUDP = re.compile(r"^\s*(?:TCP|UDP)(?:v6)?\s", re.I)
#: A trailing ``_`` (after trailing blanks), which :func:`clean_scraped` removes.
_TRAILING_UNDERSCORE = re.compile(r"_[\t ]*$", re.M)


def _plain_block(lines: list[str]) -> bool:
    """Whether the block can be matched on its raw lines and its rows built
    by Arrow kernels: printable ASCII (no Unicode digits, case folding or
    NFKD state words), no JSON specials, nothing :func:`clean_scraped`
    rewrites (``&`` entities, NULs, a trailing ``_``)."""
    text = "\n".join(lines)
    return (text.isascii() and '"' not in text and "\\" not in text and "&" not in text
            and text.replace("\n", "").replace("\t", "").isprintable()
            and _TRAILING_UNDERSCORE.search(text) is None)


class _Batch:
    """Row lines waiting to become a table: their numbers and text, the
    rows left to the row-at-a-time builder (cleaned or non-plain lines, rows
    followed by ``-b`` lines: rare) and those ``-b`` lines."""

    def __init__(self) -> None:
        self.nos: list[int] = []
        self.lines: list[str] = []
        self.slow: set[int] = set()
        self.extras: dict[int, list[tuple[str, str]]] = {}
        self.total = 0

    def __len__(self) -> int:
        return len(self.nos)

    def extend(self, start: int, lines: list[str]) -> None:
        """Consecutive plain row lines, the first numbered ``start``."""
        self.nos.extend(range(start, start + len(lines)))
        self.lines.extend(lines)
        self.total += len(lines)

    def add_slow(self, no: int, text: str) -> None:
        self.slow.add(len(self.nos))
        self.nos.append(no)
        self.lines.append(text)
        self.total += 1

    def extra(self, what: str, value: str) -> None:
        got = self.extras.setdefault(len(self.nos) - 1, [])
        if what == "component" and any(w == "component" for w, _v in got):
            return  # only the first is kept (a flood of them costs nothing)
        got.append((what, value))

    def has_image(self) -> bool:
        return any(w == "image" for w, _v in self.extras.get(len(self.nos) - 1, ()))

    def flush(self, path: str, keep_last: bool) -> pa.Table:
        """The batch's table; with ``keep_last`` the newest row stays."""
        cut = len(self.nos) - 1 if keep_last else len(self.nos)
        extras = {i: e for i, e in self.extras.items() if i < cut}
        slow = {i for i in self.slow if i < cut} | set(extras)
        out = _netstat_table(self.nos[:cut], self.lines[:cut], slow, extras, path)
        self.nos, self.lines = self.nos[cut:], self.lines[cut:]
        self.extras = {i - cut: e for i, e in self.extras.items() if i >= cut}
        self.slow = {i - cut for i in self.slow if i >= cut}
        return out


def _row(groups: tuple[str | None, ...], extras: list[tuple[str, str]]) -> tuple[str, str, str]:
    """(kind, message, data JSON) of one row, the row-at-a-time way: rows
    with ``-b`` lines or with values the vectorized path leaves to Python."""
    proto_s, local, remote, state_raw, pid = groups
    proto = proto_s.upper().replace("V6", "v6")
    laddr, lport = split_endpoint(local)
    raddr, rport = split_endpoint(remote)
    state = normalize_state(state_raw) if state_raw else None
    is_udp = proto.startswith("UDP")
    kind = "listener" if (state == "LISTENING" or (is_udp and state is None)) else "connection"
    data: dict[str, Any] = {"protocol": proto, "local_address": laddr, "local_port": lport,
                            "remote_address": raddr, "remote_port": rport, "state": state,
                            "state_raw": state_raw, "pid": int(pid) if pid else None}
    msg = f"{proto} {local} {remote}" + (f" {state}" if state else "") + (f" pid={pid}" if pid else "")
    for what, value in extras:
        if what == "image":
            data["image"] = value
            msg += f" [{value}]"
        else:
            data.setdefault("component", value)
    return kind, msg, json.dumps(data, ensure_ascii=False)


def _endpoint(arr: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(address JSON, port JSON, too long for int64) of plain ``addr:port``
    strings, split as :func:`split_endpoint` splits them."""
    parts = pc.split_pattern(arr, ":", max_splits=1, reverse=True)
    addr, port = pc.list_element(parts, 0), pc.list_element(parts, 1)
    bracketed = pc.and_(pc.starts_with(addr, "["), pc.ends_with(addr, "]"))
    addr = pc.if_else(bracketed, pc.utf8_slice_codeunits(addr, 1, -1), addr)
    too_long = pc.greater(pc.utf8_length(port), 18)
    digits = pc.and_(pc.ascii_is_decimal(port), pc.invert(too_long))
    port_json = _columnar.json_int(pc.cast(pc.if_else(digits, port, None), pa.int64()))
    return _columnar.concat(['"', addr, '"']), port_json, too_long


def _state_columns(state_raw: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(normalized state, its JSON, state_raw JSON), computed once per
    distinct state word."""
    enc = pc.dictionary_encode(state_raw, null_encoding="encode")
    words = enc.dictionary.to_pylist()
    states = [normalize_state(w) if w else None for w in words]
    state = pa.array(states, pa.string()).take(enc.indices)
    state_json = pa.array([json.dumps(x, ensure_ascii=False) for x in states]).take(enc.indices)
    raw_json = pa.array([json.dumps(w, ensure_ascii=False) for w in words]).take(enc.indices)
    return state, state_json, raw_json


def _tokens(lines: pa.Array) -> tuple[pa.Array, ...]:
    """(proto, local, remote, state_raw, pid, needs Python) of plain row
    lines, from their blank-separated words: what the row regex captures
    when the state is one word (a two-word state such as ``IN ASCOLTO`` is
    left to Python: the regex keeps the blank between the words as written)."""
    # two stand-in words at the end, so that words 3 and 4 always exist
    words = pc.ascii_split_whitespace(_columnar.concat([pc.ascii_trim_whitespace(lines), " ~ ~"]))
    count = pc.subtract(pc.list_value_length(words), 2)
    w = [pc.list_element(words, k) for k in range(5)]
    w3_digit = pc.ascii_is_decimal(pc.utf8_slice_codeunits(w[3], 0, 1))
    w4_digit = pc.ascii_is_decimal(pc.utf8_slice_codeunits(w[4], 0, 1))
    four, five = pc.equal(count, 4), pc.equal(count, 5)
    state = pc.if_else(pc.or_(pc.and_(four, pc.invert(w3_digit)), five), w[3], None)
    pid = pc.if_else(pc.and_(four, w3_digit), w[3], pc.if_else(five, w[4], None))
    slow = pc.or_(pc.greater(count, 5), pc.and_(five, pc.invert(w4_digit)))
    return w[0], w[1], w[2], state, pid, slow


def _netstat_table(nos: list[int], lines: list[str], slow: set[int],
                   extras: dict[int, list[tuple[str, str]]], path: str) -> pa.Table:
    """The batch's table, column by column (see :func:`_row` for one row);
    rows in ``slow`` are built by :func:`_row`."""
    n = len(nos)
    plain = lines
    if slow:  # their words need not split as a plain row's do: a stand-in
        plain = list(lines)
        for i in slow:
            plain[i] = "TCP 0:0 0:0"
    proto_s, local, remote, state_raw, pid, two_words = _tokens(pa.array(plain, pa.string()))
    proto = _columnar.map_unique(proto_s, lambda v: v.upper().replace("V6", "v6"))
    laddr, lport, long_l = _endpoint(local)
    raddr, rport, long_r = _endpoint(remote)
    state, state_json, raw_json = _state_columns(state_raw)
    listener = pc.or_(pc.fill_null(pc.equal(state, "LISTENING"), False),
                      pc.and_(pc.starts_with(proto, "UDP"), pc.is_null(state)))
    kind = pc.if_else(listener, "listener", "connection")
    long_pid = pc.fill_null(pc.greater(pc.utf8_length(pid), 18), False)
    pid_ok = pc.and_(pc.ascii_is_decimal(pid), pc.invert(long_pid))  # else a slow row
    pid_json = _columnar.json_int(pc.cast(pc.if_else(pid_ok, pid, None), pa.int64()))
    msg = pc.binary_join_element_wise(proto, local, remote, state, _columnar.concat(["pid=", pid]), " ",
                                      null_handling="skip")
    data = _columnar.concat([
        '{"protocol": "', proto, '", "local_address": ', laddr, ', "local_port": ', lport,
        ', "remote_address": ', raddr, ', "remote_port": ', rport, ', "state": ', state_json,
        ', "state_raw": ', raw_json, ', "pid": ', pid_json, "}"])
    longs = pc.or_(pc.or_(pc.or_(long_l, long_r), long_pid), two_words)
    if pc.any(longs).as_py():
        slow = slow | set(np.flatnonzero(longs.to_numpy(zero_copy_only=False)).tolist())
    if slow:
        idx = sorted(slow)
        mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        built = [_row(_ROW.match(lines[i]).groups(), extras.get(i, [])) for i in idx]
        kind, msg, data = (pc.replace_with_mask(arr, pa.array(mask), pa.array([b[k] for b in built]))
                           for k, arr in enumerate((kind, msg, data)))
    return _columnar.batch_table({
        "kind": kind, "message": msg, "data": data, "locator": _columnar.locators(nos),
        "level": _columnar.constant("information", n), "parse_status": _columnar.constant("ok", n),
    }, n, "netstat", path)
