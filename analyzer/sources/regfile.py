"""Registry export files (``.reg``): ``REGEDIT4`` and ``Windows Registry
Editor Version 5.00``.

Format facts (samples of both kinds: tests/fixtures/reg/):

* v5 files written by regedit are UTF-16LE with a BOM and CRLF; REGEDIT4 files
  are ANSI. Files pasted from KB articles are ASCII, often indented.
* ``hex(2)`` (EXPAND_SZ) and ``hex(7)`` (MULTI_SZ) payloads are UTF-16LE in a
  v5 file but single-byte in a REGEDIT4 file; the header decides.
* ``hex...:`` lines continue with a trailing ``\\`` (indented or not).
* ``@`` is the default value; ``"name"=-`` deletes a value and ``[-KEY]`` a
  key with its subtree. Rows show the final state after applying the file in
  order (as importing it would); what was deleted is recorded in the ``data``
  of the nearest key that remains (``deleted_values`` / ``deleted_subkeys``)
  and in the inventory notes.
* Quoted strings escape only ``\\\\`` and ``\\"``.
* Hand-edited and KB-mangled input is common: ``"x"=0x00002000`` (not .reg
  syntax; regedit rejects it), several ``"name"=value`` pairs on one line
  (joined by a KB formatter), a key path wrapped over two lines. Each is a
  warning with its line number; whatever is unambiguous is still read.

Rows: one ``registry_key`` per key and one ``registry_value`` per value, as
the hive source makes them, with the same canonical key names
(:func:`analyzer.registry.normalize_key`: HKEY_CLASSES_ROOT ->
HKLM\\SOFTWARE\\Classes, HKEY_CURRENT_USER -> HKCU). A .reg file has no
timestamps: ``ts`` is null. Locators carry the line: ``line=12; key=...``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..registry import TYPE_CODES, decode_value, key_locator, normalize_key, parent_key
from ..textio import decode_head, iter_lines
from . import register
from .base import ParseContext, Source

HEADER_V5 = "windows registry editor version 5.00"
HEADER_V4 = "regedit4"
_ROOT_RE = re.compile(r"^\[-?(HKEY_(LOCAL_MACHINE|USERS|CURRENT_USER|CLASSES_ROOT|CURRENT_CONFIG|"
                      r"PERFORMANCE_DATA|DYN_DATA)|HK(LM|CU|CR|U|CC))(\\|\])", re.I)
_HEX_RE = re.compile(r"^hex(?:\(([0-9a-fA-F]{1,8})\))?:", re.I)
_PAIR_START = re.compile(r'\s*(@|")')
_HEX_BODY = re.compile(r"[0-9a-fA-F,\s]*")


def _hex_bytes(body: str) -> bytes | None:
    """Bytes of a ``hex:`` payload (``00,1f,...``; one-digit bytes and
    blank separators tolerated), or None when a group has more than two
    digits. The regular shape is decoded in one step (a multi-megabyte
    value must not become a list of millions of strings)."""
    flat = "".join(body.split()).rstrip(",")  # only hex digits and commas remain
    if (len(flat) % 3 in (0, 2) and flat.count(",") == len(flat) // 3
            and flat[2::3].count(",") == len(flat) // 3
            and not re.search(r"[0-9a-fA-F]\s+[0-9a-fA-F]", body)):
        # every third character a comma, nothing else a comma: "xx,xx,...,xx"
        # (checked without a regex repetition: sre keeps a backtracking
        # mark per repetition, hundreds of MB for a multi-megabyte value)
        return bytes.fromhex(flat.replace(",", ""))
    hexes = [h for h in re.split(r"[,\s]+", body) if h]
    if any(len(h) > 2 for h in hexes):
        return None
    return bytes(int(h, 16) for h in hexes)


def _strip_quote_prefix(line: str) -> str:
    """Blanks and KB/markdown debris before the content (``> `` quotes)."""
    s = line.strip()
    while s.startswith(">"):
        s = s[1:].lstrip()
    return s


def _read_quoted(s: str, i: int) -> tuple[str, int] | None:
    """The quoted string starting at s[i] == '"': (text, index after it)."""
    out = []
    j = i + 1
    while j < len(s):
        ch = s[j]
        if ch == "\\" and j + 1 < len(s) and s[j + 1] in '\\"':
            out.append(s[j + 1])
            j += 2
            continue
        if ch == '"':
            return "".join(out), j + 1
        out.append(ch)
        j += 1
    return None


class _State:
    """The registry as the file leaves it: keys in first-seen order."""

    def __init__(self) -> None:
        # lower key -> {"key", "line", "values": {lower name: {...}}, "deleted_values", "deleted_subkeys"}
        self.keys: dict[str, dict[str, Any]] = {}
        self.deleted_keys = 0
        self.deleted_values = 0

    def key(self, key: str, line: int) -> dict[str, Any]:
        low = key.lower()
        k = self.keys.get(low)
        if k is None:
            k = {"key": key, "line": line, "values": {}, "deleted_values": [], "deleted_subkeys": []}
            self.keys[low] = k
        return k

    def delete_key(self, key: str) -> None:
        low = key.lower()
        for k in [k for k in self.keys if k == low or k.startswith(low + "\\")]:
            del self.keys[k]
        self.deleted_keys += 1
        parent = parent_key(key)
        while parent is not None:
            pk = self.keys.get(parent.lower())
            if pk is not None:
                pk["deleted_subkeys"].append(key)
                break
            parent = parent_key(parent)


@register
class RegFileSource(Source):
    """Registry export (.reg)."""

    name = "regfile"
    kind = "reg-export"
    description = "Registry export (.reg): REGEDIT4 and Windows Registry Editor Version 5.00"

    def sniff(self, head: bytes, name: str) -> int:
        if not head:
            return 0
        text = decode_head(head[:8192])
        lines = [_strip_quote_prefix(x) for x in text.splitlines()[:40]]
        lines = [x for x in lines if x]
        if not lines:
            return 0
        first = lines[0].lower()
        if first in (HEADER_V5, HEADER_V4):
            return 95
        # A header a few lines down (a KB snippet with a title), or a bare
        # snippet of [HKEY_...] sections with "name"=value lines.
        if any(x.lower() in (HEADER_V5, HEADER_V4) for x in lines[:10]):
            return 80
        keys = sum(1 for x in lines if _ROOT_RE.match(x))
        vals = sum(1 for x in lines if re.match(r'^(@|"[^"]*")\s*=', x))
        if keys and vals and (keys + vals) >= len(lines) * 0.5:
            return 55
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        state = _State()
        ansi = False  # REGEDIT4: hex(2)/hex(7) are single-byte text
        seen_header = False
        current: dict[str, Any] | None = None
        pending_key: tuple[int, str] | None = None  # an unterminated [key
        # A value line ending with "\": its first line and its pieces so far
        # (joined once at the end: re-copying the string per line made a
        # long hex value quadratic).
        cont: tuple[int, list[str]] | None = None

        def handle_value_line(no: int, text: str) -> None:
            nonlocal current
            if current is None:
                ctx.warn(f"value outside any [key] section: {text[:60]!r}", f"line={no}")
                return
            self._values(ctx, state, current, no, text, ansi)

        for no, raw in iter_lines(ctx.fs_path):
            line = _strip_quote_prefix(raw)
            if cont is not None:
                start_no, parts = cont
                if line.endswith("\\"):
                    parts.append(line[:-1].strip())
                    continue
                cont = None
                parts.append(line)
                handle_value_line(start_no, "".join(parts))
                continue
            if pending_key is not None:
                start_no, acc = pending_key
                acc += line
                if "]" in line:
                    pending_key = None
                    ctx.warn("key path wrapped across lines; joined", f"line={start_no}")
                    current = self._section(ctx, state, start_no, acc[: acc.index("]") + 1])
                elif no - start_no >= 3 or not line:
                    pending_key = None
                    ctx.warn(f"unterminated key line: {acc[:80]!r}; section skipped", f"line={start_no}")
                    current = None
                else:
                    pending_key = (start_no, acc)
                continue
            if not line or line.startswith(";"):
                continue
            low = line.lower()
            if low in (HEADER_V5, HEADER_V4):
                if not seen_header:
                    ansi = low == HEADER_V4
                    seen_header = True
                continue
            if line.startswith("["):
                if "]" not in line:
                    pending_key = (no, line)
                    continue
                current = self._section(ctx, state, no, line[: line.index("]") + 1])
                rest = line[line.index("]") + 1:].strip()
                if rest and not rest.startswith(";"):
                    ctx.warn(f"text after the key name ignored: {rest[:60]!r}", f"line={no}")
                continue
            if line.startswith('"') or line.startswith("@"):
                if line.endswith("\\") and _HEX_RE.search(line.split("=", 1)[-1].strip() if "=" in line else ""):
                    cont = (no, [line[:-1].strip()])
                    continue
                handle_value_line(no, line)
                continue
            ctx.warn(f"unrecognized line: {line[:80]!r}", f"line={no}")
        if cont is not None:
            handle_value_line(cont[0], "".join(cont[1]))
        if pending_key is not None:
            ctx.warn(f"unterminated key line at end of file: {pending_key[1][:80]!r}", f"line={pending_key[0]}")
        if not seen_header:
            ctx.note("no REGEDIT4 / Version 5.00 header; read as a version 5 export")
        if state.deleted_keys or state.deleted_values:
            ctx.note(f"applied {state.deleted_keys} key deletion(s) and {state.deleted_values} "
                     "value deletion(s); deleted entries have no rows")
        yield from self._rows(ctx, state)

    # ---- sections and values ---------------------------------------------------
    def _section(self, ctx: ParseContext, state: _State, no: int, text: str) -> dict[str, Any] | None:
        inner = text[1:-1].strip()
        delete = inner.startswith("-")
        if delete:
            inner = inner[1:].strip()
        # A wrapped path joined from KB text may carry blanks around "\".
        inner = re.sub(r"\s*\\\s*", "\\\\", inner)
        key = normalize_key(inner)
        if not key or not _ROOT_RE.match("[" + inner + "]"):
            ctx.warn(f"key outside the known roots: {inner[:80]!r}; section skipped", f"line={no}")
            return None
        if delete:
            state.delete_key(key)
            return None
        return state.key(key, no)

    def _values(self, ctx: ParseContext, state: _State, current: dict[str, Any], no: int,
                text: str, ansi: bool) -> None:
        """One or more ``name=value`` pairs on a logical line."""
        pos = 0
        count = 0
        while pos < len(text):
            m = _PAIR_START.match(text, pos)
            if not m:
                ctx.warn(f"junk after value ignored: {text[pos:pos + 60]!r}", f"line={no}")
                return
            i = m.start(1)
            if text[i] == "@":
                name, j = "", i + 1
            else:
                q = _read_quoted(text, i)
                if q is None:
                    ctx.warn(f"unterminated value name: {text[i:i + 60]!r}", f"line={no}")
                    return
                name, j = q
            rest = text[j:].lstrip()
            if not rest.startswith("="):
                ctx.warn(f"missing '=' after value name {name!r}", f"line={no}")
                return
            rest = rest[1:].lstrip()
            consumed = len(text) - len(rest)
            parsed = self._data(rest, ansi)
            count += 1
            if count == 2:
                ctx.warn("several values on one line (joined text); each read", f"line={no}")
            if parsed is None:
                bad = re.split(r'\s+"', rest, maxsplit=1)[0]
                ctx.warn(f"invalid data for value {name or '(Default)'!r}: {bad[:60]!r} "
                         "(not .reg syntax; regedit would reject it); value skipped", f"line={no}")
                nxt = re.search(r'\s"', rest)
                if not nxt:
                    return
                pos = consumed + nxt.start()
                continue
            kind, payload, used = parsed
            low = name.lower()
            if kind == "delete":
                if low in current["values"]:
                    del current["values"][low]
                current["deleted_values"].append(name)
                state.deleted_values += 1
            else:
                code, raw, text_value = payload
                if text_value is not None:
                    tname, value, extra = "REG_SZ", text_value, {}
                else:
                    tname, value, extra = decode_value(code, raw, ansi=ansi)
                current["values"][low] = {"name": name, "type": tname, "value": value,
                                          "extra": extra, "line": no}
            pos = consumed + used
            tail = text[pos:].strip()
            if not tail or tail.startswith(";"):
                return
            pos = len(text) - len(text[pos:].lstrip())

    @staticmethod
    def _data(rest: str, ansi: bool) -> tuple[str, Any, int] | None:
        """(kind, (type code, raw bytes, text), characters used) or None if invalid."""
        if rest.startswith("-"):
            return "delete", None, 1
        if rest.startswith('"'):
            q = _read_quoted(rest, 0)
            if q is None:
                return None
            return "set", (1, b"", q[0]), q[1]
        m = re.match(r"dword:([0-9a-fA-F]{1,8})(?![0-9a-fA-F])", rest, re.I)
        if m:
            return "set", (4, int(m.group(1), 16).to_bytes(4, "little"), None), m.end()
        m = _HEX_RE.match(rest)
        if m:
            code = int(m.group(1), 16) if m.group(1) else TYPE_CODES["REG_BINARY"]
            body = _HEX_BODY.match(rest, m.end()).group(0)  # type: ignore[union-attr]
            after = rest[m.end() + len(body):].strip()
            if after and after[0] not in '";':
                return None
            raw = _hex_bytes(body)
            if raw is None:
                return None
            return "set", (code, raw, None), m.end() + len(body.rstrip())
        return None

    # ---- rows ------------------------------------------------------------------
    def _rows(self, ctx: ParseContext, state: _State) -> Iterator[dict[str, Any]]:
        for k in state.keys.values():
            key = k["key"]
            data: dict[str, Any] = {}
            if k["deleted_values"]:
                data["deleted_values"] = k["deleted_values"]
            if k["deleted_subkeys"]:
                data["deleted_subkeys"] = k["deleted_subkeys"]
            yield {"kind": "registry_key", "key": key, "locator": key_locator(key, line=k["line"]),
                   "data": data or None, "parse_status": "ok"}
            for v in k["values"].values():
                yield {"kind": "registry_value", "key": key, "value_name": v["name"],
                       "value_type": v["type"], "value": v["value"], "data": v["extra"] or None,
                       "locator": key_locator(key, v["name"], line=v["line"]), "parse_status": "ok"}
