"""What a source module is, and the context it parses in.

A source recognises its format from content (customers rename files:
``rpc.txt``, ``output (2).log``), then streams rows for the event table. It
never raises for bad input: it reports warnings with a locator (offset, line)
through :class:`ParseContext` and keeps going; the case marks the file
``partial``. An exception that escapes anyway is caught by the case and turns
the file into ``failed`` with the message, never a traceback for the user.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pyarrow as pa

from ..table import Row


@dataclass
class Options:
    """Per-case parse options (CLI flags and API keywords)."""

    #: ``rust`` (the ``evtx`` package, default) or ``python`` (python-evtx).
    evtx_backend: str = "rust"
    #: ``targeted`` loads only the registry subtrees the checks declare;
    #: ``full`` loads every key and value.
    registry: str = "targeted"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Warning_:
    path: str
    locator: str | None
    message: str

    def __str__(self) -> str:
        loc = f" ({self.locator})" if self.locator else ""
        return f"{self.path}{loc}: {self.message}"


@dataclass
class ParseContext:
    """Everything a source needs besides the file itself.

    ``path`` is the case-relative display path (``outer.zip!dir/file``) that
    goes into every row's provenance; ``fs_path`` is where the bytes are.
    """

    path: str
    fs_path: Path
    options: Options
    #: Other files of the same directory (real paths), for sources that read
    #: a companion file (a hive's .LOG1/.LOG2).
    siblings: tuple[Path, ...] = ()
    warnings: list[Warning_] = field(default_factory=list)
    #: Set by the source when it could not read everything.
    partial: bool = False
    #: Human-readable notes that end up in the inventory's ``detail``.
    notes: list[str] = field(default_factory=list)
    #: Work directory private to this case (copies for replaying hive logs).
    work_dir: Path | None = None
    #: Why a file that was read holds no rows (an empty log), set through
    #: :meth:`empty`. A file that yields no rows without one is ``failed``:
    #: silence is never reported as a clean read.
    empty_reason: str | None = None

    def warn(self, message: str, locator: str | None = None, partial: bool = True) -> None:
        """Record a problem with the input; by default the file becomes partial."""
        self.warnings.append(Warning_(self.path, locator, message))
        if partial:
            self.partial = True

    def note(self, text: str) -> None:
        self.notes.append(text)

    def empty(self, reason: str) -> None:
        """Say why the file holds no rows ("empty log: header says 0 records")."""
        self.empty_reason = reason


#: What :meth:`Source.parse` may yield: single rows, or ready-made batches
#: (an Arrow table or DataFrame with table columns) from a fast path.
Chunk = Row | pa.Table | pd.DataFrame


class Source:
    """Base class of source modules. Subclass, set the class attributes,
    implement :meth:`sniff` and :meth:`parse`, and decorate with
    :func:`analyzer.sources.register`."""

    #: Unique registry name, also the ``source`` column value.
    name: ClassVar[str]
    #: The inventory ``kind`` of a file this source claims.
    kind: ClassVar[str]
    description: ClassVar[str] = ""

    def sniff(self, head: bytes, name: str) -> int:
        """Confidence 0..100 that the file is ours, from its first bytes
        (up to 64 KiB) and its file name. Content decides; the name may only
        break ties (keep name-only evidence below 20)."""
        raise NotImplementedError

    def parse(self, ctx: ParseContext) -> Iterator[Chunk] | Iterable[Chunk]:
        raise NotImplementedError
