"""Streaming XML for customer files that must never be trusted.

Both XML sources of PowerShell-era artifacts (EdgeTransport.exe.config,
Export-Clixml) read with the same rules: lxml ``iterparse`` with entity
resolution, DTD loading and network access off; a document that declares a
DOCTYPE (where entity bombs and external entities live) is refused with a
warning before any of it is parsed; damage is recovered from (libxml2
recover mode) so the elements before and after a broken tag still count, and
every error libxml2 reports becomes a warning with its line number.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from lxml import etree

from .. import textio
from .base import ParseContext

_DECL = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.I)
_MAX_ERRORS = 10


def local(tag: Any) -> str:
    """Local name of an element tag (comments and PIs give "")."""
    return etree.QName(tag).localname if isinstance(tag, str) else ""


class SafeXml:
    """Iterate (event, element) pairs, "start" and "end", of a file; nothing
    at all when the part before the first ``<root`` declares a DOCTYPE or
    entities. :meth:`damaged` says whether libxml2 reported an error
    between two lines (the rows read from there are ``partial``)."""

    def __init__(self, ctx: ParseContext, root: str) -> None:
        self.ctx = ctx
        self.root = root
        self.error_lines: list[int] = []

    def damaged(self, start: int | None, end: int | None = None) -> bool:
        """An error at a line in [start, end) (end None: to the end)."""
        lo = start or 0
        return any(lo <= ln and (end is None or ln < end) for ln in self.error_lines)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        ctx = self.ctx
        prolog = textio.decode_head(textio.read_head(ctx.fs_path)).split(f"<{self.root}", 1)[0]
        if _DECL.search(prolog):
            ctx.warn("refused: the file declares a DOCTYPE or entities (not read, for safety)")
            return
        it = etree.iterparse(str(ctx.fs_path), events=("start", "end"), resolve_entities=False,
                             load_dtd=False, no_network=True, huge_tree=False, remove_comments=True,
                             remove_pis=True, recover=True)
        first = True
        seen = 0
        try:
            for event, el in it:
                if first:
                    first = False
                    if el.getroottree().docinfo.doctype:
                        ctx.warn("refused: the file declares a DOCTYPE (not read, for safety)")
                        return
                seen = self._errors(it, seen)
                yield event, el
        except etree.XMLSyntaxError as exc:
            ctx.warn(f"XML error: {exc.msg}", f"line={exc.lineno}" if exc.lineno else None)
            self.error_lines.append(exc.lineno or 0)
        self._errors(it, seen)

    def _errors(self, it: Any, seen: int) -> int:
        """Record the errors libxml2 logged since the last call; warn about
        the first few."""
        log = [e for e in it.error_log if e.level >= etree.ErrorLevels.ERROR]
        for e in log[seen:]:
            self.error_lines.append(e.line)
            n = len(self.error_lines)
            if n <= _MAX_ERRORS:
                self.ctx.warn(f"XML error (recovered): {e.message}", f"line={e.line}")
            elif n == _MAX_ERRORS + 1:
                self.ctx.warn("more XML errors not listed", f"line={e.line}")
        return len(log)
