"""LDAP Data Interchange Format (RFC 2849), as written by ``ldifde -f``.

Customers export Active Directory objects with ``ldifde`` (the Exchange
configuration partition: ``CN=Connections``, the server's storage groups, the
MTA) so that an engineer can check attributes such as a mailGateway object's
``homeMTA``, ``homeMDB`` and ``legacyExchangeDN`` offline (KB 828938).

Format facts this parser handles:

* records are separated by blank lines; an optional ``version: 1`` line
  comes first;
* a line that starts with exactly one space continues the previous line
  (ldifde folds long DNs at 80 columns, mid-token); the space is dropped;
* ``#`` lines are comments, and they can be folded too;
* ``attr:: <base64>`` carries binary or non-ASCII values (ldifde writes
  ``objectGUID``, ``objectSid`` and any DN with accents this way);
  ``attr:< URL`` references an external file (we keep the URL);
* ``changetype: add|modify|delete|modrdn|moddn`` records; a ``modify``
  record is a list of ``add:``/``replace:``/``delete:`` groups ended by
  ``-`` lines;
* attribute options: ``member;range=0-1499`` (ranged retrieval of large
  multi-valued attributes) — the range option is dropped so all chunks merge
  into ``member``; other options (``;binary``, ``;lang-de``) stay in the name.
* ldifde ``-u`` writes UTF-16LE; without it the file is ANSI or UTF-8:
  :mod:`analyzer.textio` decides.

One row per entry: kind ``ldap_entry``, ``key`` = the DN, ``data`` = the
attributes as ``{lower-case name: [values]}`` in document order, ``category``
= the entry's most specific objectClass (the last one ldifde lists, e.g.
``mailGateway``) so a check can select entries by class, ``locator`` =
``line=N`` of the ``dn:`` line. Binary values are lowercase hex, except
``objectGUID`` which becomes the braced GUID text Windows shows (the first
three fields little-endian), because that is how event 326 and ADSI Edit
name a store.
"""
from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Iterator
from typing import Any

from .. import textio
from . import register
from .base import ParseContext, Source

_ATTR_LINE = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9-]*(?:;[A-Za-z0-9=_.*-]+)*|\d+(?:\.\d+)+)"
                        r"(?P<sep>::?|:<)\s?(?P<value>.*)$")
_RANGE_OPT = re.compile(r";range=[^;]*", re.I)
#: Binary attributes that hold a GUID, shown as Windows shows GUIDs.
_GUID_ATTRS = frozenset({"objectguid", "msexchmailboxguid"})


def _decode_b64(name: str, text: str) -> tuple[str, bool]:
    """Value of a ``name:: base64`` line -> (text, ok)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return text, False
    if name in _GUID_ATTRS and len(raw) == 16:
        return "{" + str(uuid.UUID(bytes_le=raw)).upper() + "}", True
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex(), True
    if any(ord(c) < 32 and c not in "\t\r\n" for c in decoded):
        return raw.hex(), True
    return decoded, True


def _logical_lines(path: Any) -> Iterator[tuple[int, str]]:
    """Unfold RFC 2849 continuation lines: yields (first line number, text).

    Blank lines are yielded as ``""`` (they end a record)."""
    cur: list[str] | None = None  # pieces, joined once (a long folded value stays linear)
    cur_no = 0
    for no, line in textio.iter_lines(path):
        if line.startswith(" ") and cur:
            cur.append(line[1:])
            continue
        if cur is not None:
            yield cur_no, "".join(cur)
        cur, cur_no = ([line] if line.strip() else []), no
    if cur is not None:
        yield cur_no, "".join(cur)


@register
class LdifSource(Source):
    name = "ldif"
    kind = "ldif"
    description = "LDIF export of directory objects (ldifde -f, RFC 2849)"

    def sniff(self, head: bytes, name: str) -> int:
        if textio.looks_binary(head):
            return 0
        lines = [ln.rstrip() for ln in textio.decode_head(head).splitlines()]
        first = next((ln for ln in lines if ln.strip() and not ln.startswith("#")), "")
        dn_lines = sum(1 for ln in lines if ln.lower().startswith(("dn:", "dn::")))
        attr_lines = sum(1 for ln in lines if _ATTR_LINE.match(ln))
        if first.lower().replace(" ", "") == "version:1" and (dn_lines or len(lines) < 3):
            return 90
        if first.lower().startswith(("dn:", "dn::")):
            return 90 if attr_lines >= 2 else 60
        if dn_lines >= 2 and attr_lines >= dn_lines * 2:
            # dn: records after a preamble (a pasted command line, a comment).
            return 60
        if name.lower().endswith((".ldf", ".ldif")) and dn_lines:
            return 15
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        entry: dict[str, Any] | None = None
        seen_any = False
        mod_op: dict[str, Any] | None = None

        def finish() -> dict[str, Any] | None:
            nonlocal entry, mod_op
            if entry is None:
                return None
            e, entry, mod_op = entry, None, None
            attrs: dict[str, list[str]] = e["attrs"]
            classes = attrs.get("objectclass") or []
            data: dict[str, Any] = dict(attrs)
            if e["changetype"]:
                data["changetype"] = e["changetype"]
            if e["changes"]:
                data["changes"] = e["changes"]
            return {
                "kind": "ldap_entry",
                "key": e["dn"],
                "category": classes[-1] if classes else None,
                "data": data,
                "locator": f"line={e['line']}",
                "parse_status": "partial" if e["bad"] else "ok",
            }

        for no, line in _logical_lines(ctx.fs_path):
            if line == "":
                row = finish()
                if row:
                    yield row
                continue
            if line.startswith("#"):
                continue
            if entry is not None and line.strip() == "-":
                mod_op = None
                continue
            m = _ATTR_LINE.match(line)
            if not m:
                ctx.warn(f"not an LDIF attribute line: {line[:60]!r}", f"line={no}")
                if entry is not None:
                    entry["bad"] = True
                continue
            name = _RANGE_OPT.sub("", m.group("name")).lower()
            sep, raw = m.group("sep"), m.group("value")
            value = raw
            if sep == "::":
                value, ok = _decode_b64(name, raw)
                if not ok:
                    ctx.warn(f"invalid base64 value of {name}", f"line={no}")
                    if entry is not None:
                        entry["bad"] = True
            if name == "version" and entry is None:
                if value.strip() != "1":
                    ctx.warn(f"unknown LDIF version {value.strip()!r}", f"line={no}", partial=False)
                continue
            if name == "dn":
                if entry is not None:
                    # A new dn: without a blank line: tolerate (hand-edited files).
                    row = finish()
                    if row:
                        yield row
                entry = {"dn": value.strip(), "line": no, "attrs": {}, "changetype": None,
                         "changes": [], "bad": False}
                seen_any = True
                continue
            if entry is None:
                ctx.warn(f"attribute {name!r} outside of an entry (no dn: line)", f"line={no}")
                continue
            if name == "changetype" and not entry["attrs"] and entry["changetype"] is None:
                entry["changetype"] = value.strip().lower()
                continue
            if entry["changetype"] == "modify":
                if mod_op is None and name in ("add", "replace", "delete", "increment"):
                    mod_op = {"op": name, "attr": value.strip().lower(), "values": []}
                    entry["changes"].append(mod_op)
                    continue
                if mod_op is not None:
                    mod_op["values"].append(value)
                    # The values a modify record sets are also what the
                    # object will hold: expose them like an add's attributes.
                    if mod_op["op"] in ("add", "replace"):
                        entry["attrs"].setdefault(name, []).append(value)
                    continue
            entry["attrs"].setdefault(name, []).append(value)
        row = finish()
        if row:
            yield row
        if not seen_any:
            ctx.warn("no LDIF entries (dn: lines) found", None)
