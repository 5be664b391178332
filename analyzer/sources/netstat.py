"""``netstat -an`` / ``-ano`` / ``-anob`` output -> ``listener`` and
``connection`` rows (reference note 12, KB 926210 step 2).

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

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from . import register
from ._textcommon import head_lines, read_lines
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

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        pending: dict[str, Any] | None = None
        n = 0
        for ln in read_lines(ctx.fs_path):
            text = ln.text
            m = _ROW.match(text)
            if m:
                if pending is not None:
                    yield pending
                pending = self._row(m, ln.no)
                n += 1
                continue
            if pending is not None and (mi := _IMAGE.match(text)):
                pending["data"]["image"] = mi["image"]
                pending["message"] += f" [{mi['image']}]"
                continue
            if pending is not None and text.startswith(" ") and text.strip() and \
                    not re.match(r"^\s*(?:TCP|UDP)", text, re.I) and "image" not in pending["data"]:
                # -b component line ("  RpcSs", "Can not obtain ownership information")
                pending["data"].setdefault("component", text.strip())
                continue
            if re.match(r"^\s*(?:TCP|UDP)(?:v6)?\s", text, re.I):
                ctx.warn("truncated last line" if ln.last_unterminated
                         else f"unreadable netstat row {text.strip()[:80]!r}", f"line={ln.no}")
        if pending is not None:
            yield pending
        if n == 0:
            ctx.warn("no netstat rows found", None)

    @staticmethod
    def _row(m: re.Match[str], no: int) -> dict[str, Any]:
        proto = m["proto"].upper().replace("V6", "v6")
        laddr, lport = split_endpoint(m["local"])
        raddr, rport = split_endpoint(m["remote"])
        state_raw = m["state"]
        state = normalize_state(state_raw) if state_raw else None
        is_udp = proto.startswith("UDP")
        kind = "listener" if (state == "LISTENING" or (is_udp and state is None)) else "connection"
        data = {"protocol": proto, "local_address": laddr, "local_port": lport,
                "remote_address": raddr, "remote_port": rport, "state": state,
                "state_raw": state_raw, "pid": int(m["pid"]) if m["pid"] else None}
        msg = f"{proto} {m['local']} {m['remote']}" + (f" {state}" if state else "") + \
              (f" pid={m['pid']}" if m["pid"] else "")
        return {"kind": kind, "message": msg, "data": data, "locator": f"line={no}",
                "level": "information", "parse_status": "ok"}
