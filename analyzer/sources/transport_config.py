"""``EdgeTransport.exe.config`` (and any .NET application configuration file)
-> one ``config`` row per ``appSettings`` entry.

Exchange 2007/2010 transport reads its back-pressure thresholds, queue
database paths and DNS tolerance from ``<appSettings><add key=.. value=..>``
in ``<install path>\\Bin\\EdgeTransport.exe.config``. A missing key means the
default (``analyzer/knowledge/transport_config.yaml``;
:mod:`analyzer.transport_settings` computes the effective values).

Safety: the file is customer input. It is parsed with lxml with entity
resolution, DTD loading and network access off; a file that declares a
DOCTYPE or entities is refused with a warning (entity-expansion bombs and
external entities never get a chance). Key names are case sensitive for
Exchange: a key that matches a known setting only when case is ignored is
flagged (``data.case_mismatch``), since Exchange ignores it.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from .. import knowledge, textio
from . import register
from ._xmlsafe import SafeXml, local
from .base import ParseContext, Source

_ADD = re.compile(r"<add\s+key\s*=", re.I)


@cache
def _knowledge() -> tuple[frozenset[str], dict[str, str]]:
    """(signature keys, lower-cased setting name -> setting name)."""
    kn = knowledge.load("transport_config")
    names = {n.lower(): n for n in kn["settings"]}
    return frozenset(kn["signature_keys"]), names


@register
class TransportConfigSource(Source):
    name = "transport-config"
    kind = "dotnet-config"
    description = "EdgeTransport.exe.config and other .NET application configuration files (appSettings)"

    def sniff(self, head: bytes, name: str) -> int:
        if not head or textio.looks_binary(head):
            return 0
        text = textio.decode_head(head).lstrip("\ufeff \t\r\n")
        if not text.startswith("<") or not re.search(r"<configuration[\s>]", text):
            return 0
        if not re.search(r"<appSettings[\s>/]", text, re.I):
            return 0
        sig, _ = _knowledge()
        if any(f'"{k}"' in text or f"'{k}'" in text for k in sig):
            return 92
        return 60 if _ADD.search(text) else 45

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        application = "EdgeTransport" if "edgetransport" in ctx.path.lower() else None
        sig, names = _knowledge()
        rows: list[dict[str, Any]] = []
        depth_in_app = 0
        xml = SafeXml(ctx, "configuration")
        for event, el in xml:
            tag = local(el.tag)
            if tag == "appSettings":
                depth_in_app += 1 if event == "start" else -1
                continue
            if event != "end" or depth_in_app <= 0:
                continue
            row = self._row(ctx, el, tag, names)
            if row is not None:
                if row["data"].get("key") in sig:
                    application = "EdgeTransport"
                rows.append(row)
        seen: dict[str, int] = {}
        for i, row in enumerate(rows):
            nxt = int(rows[i + 1]["locator"][5:]) if i + 1 < len(rows) else None
            if xml.damaged(int(row["locator"][5:]), nxt):
                row["parse_status"] = "partial"
            row["data"]["application"] = application
            key = row["data"].get("key")
            if key is not None and row["data"]["action"] == "add":
                if key in seen:
                    ctx.warn(f"key {key!r} added again (first at line {seen[key]}); the last one applies",
                             row["locator"], partial=False)
                seen.setdefault(key, int(row["locator"][5:]))
            yield row
        if rows:
            ctx.note(f"appSettings: {len(rows)} entries ({application or 'not EdgeTransport'})")
        else:
            ctx.warn("no appSettings entries found", None, partial=False)

    @staticmethod
    def _row(ctx: ParseContext, el: Any, tag: str, names: dict[str, str]) -> dict[str, Any] | None:
        line = el.sourceline
        loc = f"line={line}"
        if tag not in ("add", "remove", "clear"):
            if tag:
                ctx.warn(f"unexpected <{tag}> in appSettings ignored", loc, partial=False)
            return None
        key = el.get("key")
        value = el.get("value")
        if tag != "clear" and key is None:
            ctx.warn(f"<{tag}> without a key attribute ignored", loc)
            return None
        data: dict[str, Any] = {"section": "appSettings", "action": tag, "key": key, "value": value}
        canonical = names.get(key.lower()) if key else None
        data["known"] = canonical == key
        if canonical is not None and canonical != key:
            data["case_mismatch"] = canonical
        msg = {"add": f"{key} = {value}", "remove": f"remove {key}", "clear": "clear"}[tag]
        return {"kind": "config", "message": msg, "value_name": key, "value": value,
                "data": data, "locator": loc, "level": "information", "parse_status": "ok"}
