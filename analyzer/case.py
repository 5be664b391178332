"""A case: every file the customer sent, inventoried, and one event table.

:func:`load_case` takes a folder or an archive, extracts archives (nested, up
to a depth limit) into a private work directory, sniffs every file by content,
lets the best-matching source parse it and builds the normalized table. Every
file appears in the inventory exactly once, including the ones nobody could
read and the archive members that were rejected, so nothing is silently
ignored. Inputs are opened read-only; the work directory is removed when
loading ends.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from . import archive, eventdata, sources, table, textio
from .sources import Options, ParseContext, Source, Warning_

ROW_BATCH = 50_000


@dataclass
class InventoryEntry:
    """One file of the case (the contract's ``inventory`` item)."""

    path: str
    kind: str | None
    size: int
    sha256: str | None
    status: str  # parsed | partial | skipped | failed | rejected
    rows: int = 0
    detail: str | None = None
    #: Extra fields (allowed by the contract): the source that read it and
    #: its warnings, each naming a locator.
    source: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Case:
    """The loaded case: inventory, event table and warnings.

    ``table`` is the whole normalized table; :meth:`events`, :meth:`registry`
    and :meth:`endpoints` are the query helpers checks and notebooks use.
    """

    def __init__(self, name: str, source: str, inventory: list[InventoryEntry],
                 table_: pd.DataFrame, warnings: list[Warning_], options: Options,
                 duration_s: float = 0.0) -> None:
        self.name = name
        self.source = source
        self.inventory = inventory
        self.table = table_
        self.warnings = warnings
        self.options = options
        self.duration_s = duration_s
        self._registry = None

    def __repr__(self) -> str:
        return (f"<Case {self.name!r}: {len(self.inventory)} files, "
                f"{len(self.table)} rows, hosts={self.hosts}>")

    @property
    def hosts(self) -> list[str]:
        """The machines whose artifacts are in the case, one name each (FQDN
        when seen): the rows' hosts, which never name a peer (a remote SMTP
        host, a logon's workstation; see analyzer/hosts.py)."""
        from .hosts import display_names
        return display_names(self.table["host"].dropna().unique())

    def inventory_frame(self) -> pd.DataFrame:
        return pd.DataFrame([e.to_dict() for e in self.inventory],
                            columns=list(InventoryEntry.__dataclass_fields__))

    # Query helpers (thin wrappers over analyzer.query, shared with the accessor)
    def events(self, **filters: Any) -> pd.DataFrame:
        """Event rows matching the filters; see :func:`analyzer.query.select`."""
        from .query import select
        filters.setdefault("kind", "event")
        return select(self.table, **filters)

    def rows(self, **filters: Any) -> pd.DataFrame:
        """Rows of any kind matching the filters."""
        from .query import select
        return select(self.table, **filters)

    def endpoints(self, **filters: Any) -> pd.DataFrame:
        from .query import endpoints
        return endpoints(self.table, **filters)

    def per_host(self, among: Any = None) -> list:  # -> list[analyzer.query.HostRows]
        """The table split per machine (see :func:`analyzer.query.split_by_host`
        for where rows without a host go)."""
        from .query import split_by_host
        return split_by_host(self.table, among)

    @property
    def registry(self):  # -> analyzer.registry.RegistryView
        """Case-insensitive registry lookups with HKLM/HKCR/CurrentControlSet aliases."""
        if self._registry is None:
            from .registry import RegistryView
            self._registry = RegistryView(self.table)
        return self._registry


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while buf := fh.read(archive.CHUNK):
            h.update(buf)
    return h.hexdigest()


def display_name(name: str) -> str:
    """A file name as it may be shown and written to JSON: bytes that are
    not UTF-8 (a tar made with latin-1 names, a share mounted without utf8,
    decoded by Python with surrogateescape) become ``\\xNN``; control and
    bidi characters become escapes too."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = os.fsencode(name).decode("utf-8", "backslashreplace")
    return textio.escape_controls(name)


def _plain_kind(head: bytes) -> str:
    if not head:
        return "empty"
    return "binary" if textio.looks_binary(head) else "text"


def _unrecognized(fs_path: Path, display: str, head: bytes, size: int,
                  digest: str) -> InventoryEntry:
    """The inventory entry of a file no parser reads, named by what it is
    (a PDF, an image, an e-mail...) when the file-type database knows it."""
    from .filekinds import identify

    found = identify(fs_path) if head else None
    if found is not None:
        return InventoryEntry(display, found.kind, size, digest, "skipped",
                              detail=f"{found.description}: not an artifact any parser reads")
    kind = _plain_kind(head)
    detail = {"empty": "empty file",
              "binary": f"no parser recognizes this binary content (starts {head[:8].hex(' ')})",
              "text": "no parser recognizes this text"}[kind]
    return InventoryEntry(display, kind, size, digest, "skipped", detail=detail)


class _Loader:
    def __init__(self, options: Options, limits: archive.Limits, work: Path,
                 progress: Callable[[str], None] | None) -> None:
        self.options = options
        self.budget = archive.Budget(limits)
        self.work = work
        self.inventory: list[InventoryEntry] = []
        self.frames: list[pa.Table] = []
        self.warnings: list[Warning_] = []
        self.progress = progress
        #: The engineer's --work-dir, when given (pruned from a case walk).
        self.work_root: str | os.PathLike[str] | None = None
        self._n = 0

    def _subdir(self) -> Path:
        self._n += 1
        return self.work / f"x{self._n}"

    def add_tree(self, root: Path, prefix: str, depth: int) -> None:
        """Every file below root, in sorted order (deterministic inventory).

        A folder that cannot be listed is an inventory entry of its own
        (failed, with the reason); the work directory, when the engineer put
        it inside the case folder, is never walked as part of the case.
        """
        prune = {self.work.resolve()} | ({Path(self.work_root).resolve()} if self.work_root else set())
        top = root.resolve()
        if top in prune or prune & set(top.parents):
            prune = set()  # walking extracted members inside the work dir itself

        def unlistable(exc: OSError) -> None:
            where = Path(exc.filename) if exc.filename else root
            rel = where.relative_to(root).as_posix() if where != root else "."
            self.inventory.append(InventoryEntry(
                self._display(prefix, rel + "/"), "folder", 0, None, "failed",
                detail=f"cannot list folder: {exc.strerror or exc}"))

        for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=unlistable):
            dirnames.sort()
            here = Path(dirpath)
            for d in list(dirnames):
                resolved = (here / d).resolve()
                if resolved in prune or prune & set(resolved.parents):
                    dirnames.remove(d)
            names = sorted(filenames)
            # Symlinked directories are not followed; list them as skipped.
            for d in list(dirnames):
                if (here / d).is_symlink():
                    dirnames.remove(d)
                    names.append(d)
            siblings = tuple(here / n for n in sorted(filenames))
            for fname in sorted(names):
                fs_path = here / fname
                rel = fs_path.relative_to(root).as_posix()
                self.add_file(fs_path, self._display(prefix, rel), depth, siblings)

    @staticmethod
    def _display(prefix: str, rel: str) -> str:
        name = display_name(rel)
        return archive.display_join(prefix, name) if prefix else name

    def add_file(self, fs_path: Path, display: str, depth: int,
                 siblings: tuple[Path, ...] = ()) -> None:
        if fs_path.is_symlink():
            self.inventory.append(InventoryEntry(display, "symlink", 0, None, "skipped",
                                                 detail="symbolic link not followed"))
            return
        if not fs_path.is_file():
            self.inventory.append(InventoryEntry(display, "special", 0, None, "skipped",
                                                 detail="not a regular file"))
            return
        if self.progress:
            self.progress(display)
        size = fs_path.stat().st_size
        try:
            digest = _sha256(fs_path)
            head = textio.read_head(fs_path)
        except OSError as exc:
            self.inventory.append(InventoryEntry(display, None, size, None, "failed",
                                                 detail=f"cannot read: {exc.strerror or exc}"))
            return
        akind = archive.detect_archive(head)
        if akind:
            self._add_archive(fs_path, display, akind, size, digest, depth)
            return
        src, score = sources.sniff(head, fs_path.name)
        if src is None:
            self.inventory.append(_unrecognized(fs_path, display, head, size, digest))
            return
        self._parse(src, fs_path, display, size, digest, siblings)

    def _add_archive(self, fs_path: Path, display: str, akind: str, size: int,
                     digest: str, depth: int) -> None:
        lim = self.budget.limits
        if depth >= lim.max_depth:
            self.inventory.append(InventoryEntry(
                display, akind, size, digest, "rejected",
                detail=f"archive nesting deeper than {lim.max_depth} levels; not extracted"))
            return
        dest = self._subdir()
        ex = archive.extract(fs_path, akind, dest, self.budget)
        extracted = [m for m in ex.members if m.status == "extracted"]
        rejected = [m for m in ex.members if m.status != "extracted"]
        status = "parsed"
        parts = [f"{ex.kind} archive: {len(extracted)} member(s) extracted"]
        if rejected:
            parts.append(f"{len(rejected)} rejected")
            status = "partial"
        if ex.error:
            parts.append(f"error: {ex.error}")
            status = "partial" if extracted else "failed"
        self.inventory.append(InventoryEntry(display, ex.kind, size, digest, status,
                                             detail="; ".join(parts), source="archive"))
        for m in rejected:
            self.inventory.append(InventoryEntry(
                self._display(display, m.name.replace("\\", "/")), None, m.size or 0,
                None, "rejected", detail=m.reason))
        # Parse extracted members in name order, directory by directory, so
        # siblings (hive + .LOG1) are on disk together.
        self.add_tree(dest, display, depth + 1)

    def _parse(self, src: Source, fs_path: Path, display: str, size: int, digest: str,
               siblings: tuple[Path, ...]) -> None:
        ctx = ParseContext(path=display, fs_path=fs_path, options=self.options,
                           siblings=tuple(s for s in siblings if s != fs_path),
                           work_dir=self._subdir())
        batches: list[pa.Table] = []
        pending: list[dict] = []
        error: str | None = None
        try:
            for chunk in src.parse(ctx):
                if isinstance(chunk, pa.Table):
                    batches.append(table.conform_arrow(chunk))
                elif isinstance(chunk, pd.DataFrame):
                    batches.append(table.conform_arrow(
                        pa.Table.from_pandas(chunk, preserve_index=False)))
                else:
                    row = dict(chunk)
                    row.setdefault("source", src.name)
                    row.setdefault("path", display)
                    pending.append(row)
                    if len(pending) >= ROW_BATCH:
                        batches.append(table.rows_to_arrow(pending))
                        pending = []
            if pending:
                batches.append(table.rows_to_arrow(pending))
        except MemoryError as exc:
            # Out of memory is the case's budget, not one bad file: let the
            # caller (e.g. a batch worker under a memory limit) see it.
            raise MemoryError(f"while parsing {display}") from exc
        except Exception as exc:  # noqa: BLE001 - bad input must never stop the case
            error = f"{type(exc).__name__}: {exc}"
            if pending:
                try:
                    batches.append(table.rows_to_arrow(pending))
                except Exception:  # noqa: BLE001
                    pass
        rows = sum(b.num_rows for b in batches)
        self.frames.extend(batches)
        self.warnings.extend(ctx.warnings)
        detail_parts = list(ctx.notes)
        if error:
            detail_parts.append(f"parser error: {error}")
            self.warnings.append(Warning_(display, None, f"parser error: {error}"))
        status = _status(rows, error, ctx, src.kind, detail_parts)
        if ctx.warnings:
            detail_parts.append(f"{len(ctx.warnings)} warning(s)")
        self.inventory.append(InventoryEntry(
            display, src.kind, size, digest, status, rows,
            detail="; ".join(detail_parts) or None, source=src.name,
            warnings=[f"{w.locator}: {w.message}" if w.locator else w.message
                      for w in ctx.warnings[:50]]))


def _status(rows: int, error: str | None, ctx: ParseContext, kind: str,
            detail_parts: list[str]) -> str:
    """A parsed file's inventory status. Damage (or a parser error) that
    left nothing readable is a failure, not a partial read; a clean read
    that yields no rows must say why (``ctx.empty_reason``: an empty log),
    or it is a failure too: silence is never reported as health."""
    if error or ctx.partial:
        return "partial" if rows else "failed"
    if rows:
        return "parsed"
    if ctx.empty_reason:
        detail_parts.append(ctx.empty_reason)
        return "parsed"
    detail_parts.append(f"no rows: read as {kind} but the parser found nothing it could "
                        "read and gave no reason")
    return "failed"


#: Folder names that say nothing about the case: a folder so named takes
#: its parent's name (``samples/smtp-mailbox-stuck-evtx/case`` is
#: "smtp-mailbox-stuck-evtx", as the user who picked it expects).
GENERIC_FOLDER_NAMES = frozenset({"case", "cases", "upload", "uploads", "files", "data", "input"})


def upload_name(path: str | os.PathLike[str]) -> str:
    """The name of a case as the user uploaded it: an archive's or a file's
    name (``case-0412.zip``), a folder's name, or for a folder with a
    generic name (see :data:`GENERIC_FOLDER_NAMES`) its parent's name."""
    p = Path(os.path.abspath(path))
    if p.is_dir() and p.name.lower() in GENERIC_FOLDER_NAMES and p.parent.name:
        return p.parent.name
    return p.name or str(p)


def load_case(path: str | os.PathLike[str], *, options: Options | None = None,
              limits: archive.Limits | None = None,
              work_root: str | os.PathLike[str] | None = None,
              name: str | None = None,
              progress: Callable[[str], None] | None = None,
              **option_kw: Any) -> Case:
    """Load a case from a folder, an archive or a single artifact file.

    ``option_kw`` are :class:`~analyzer.sources.Options` fields, e.g.
    ``evtx_backend="python"`` or ``registry="full"``.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such file or folder: {p}")
    # The input itself may be a link (a case archive linked into a triage
    # folder): follow it; links *inside* the case are never followed.
    real = p.resolve() if p.is_symlink() else p
    opts = options or Options(**option_kw)
    started = time.monotonic()
    with archive.work_directory(work_root) as work:
        loader = _Loader(opts, limits or archive.Limits(), work, progress)
        loader.work_root = work_root
        if real.is_dir():
            loader.add_tree(real, "", 0)
        else:
            try:
                siblings = tuple(x for x in real.parent.iterdir() if x.is_file())
            except OSError:
                siblings = ()
            loader.add_file(real, display_name(p.name), 0, siblings)
        merged = (pa.concat_tables(loader.frames).unify_dictionaries().combine_chunks()
                  if loader.frames else table.rows_to_arrow([]))
    # Structured fields (back-pressure resources, crash module, service name)
    # for the few rows whose event has them, whatever export they came from.
    merged = eventdata.enrich(merged)
    frame = table.arrow_to_frame(merged)
    return Case(name or upload_name(p), str(p), loader.inventory, frame, loader.warnings, opts,
                duration_s=time.monotonic() - started)

