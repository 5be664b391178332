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
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow as pa

from . import archive, filebudget, safeio, sources, table, textio
from .tablesink import FILE_SPILL_BYTES, SPILL_BYTES, FileRows, OutputError, TableSink
from .sources import Options, ParseContext, Source, Warning_

ROW_BATCH = 50_000
#: Rows of small files are pooled and converted to Arrow this many at a time.
SMALL_ROWS = 10_000
_COLUMNS = frozenset(table.COLUMNS)


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
                 duration_s: float = 0.0, arrow: pa.Table | None = None,
                 rows_written: int | None = None) -> None:
        self.name = name
        self.source = source
        self.inventory = inventory
        self.table = table_
        #: The same table as Arrow (the frame's columns are its arrays).
        self.arrow = arrow
        self.warnings = warnings
        self.options = options
        self.duration_s = duration_s
        self._registry = None
        #: Rows the load produced: ``len(table)``, or with
        #: ``load_case(keep_table=False)`` the rows written to Parquet only.
        self.rows_written = len(table_) if rows_written is None else rows_written
        #: Facts derived from ``table`` once and shared by every check (the
        #: per-host split, the toolkit's hosts with their build and roles):
        #: a large case is split and its hosts decided once, not once per
        #: check. Keyed together with the table it was derived from, so a
        #: table replaced afterwards is never answered from the old one.
        self.memo: dict[Any, Any] = {}

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
        key = ("per_host", id(self.table), None if among is None else tuple(sorted(among)))
        found = self.memo.get(key)
        if found is None or found[0] is not self.table:
            found = self.memo[key] = (self.table, split_by_host(self.table, among))
        return list(found[1])

    def sql(self, query: str) -> pd.DataFrame:
        """Run SQL (DuckDB) over the case: ``events`` is the table, scanned
        in place (filters and the columns named are pushed into the scan,
        so a query over a memory-mapped million-row table reads what it
        asks for), ``inventory`` one row per file."""
        import duckdb

        con = duckdb.connect()
        try:
            events = self.arrow if self.arrow is not None else table.to_arrow(self.table)
            con.register("events", events)
            inv = self.inventory_frame()
            inv["warnings"] = inv["warnings"].map("\n".join)
            con.register("inventory", inv)
            rel = con.sql(query)
            if rel is None:  # a statement without a result
                return pd.DataFrame()
            res = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
            return res.to_pandas(types_mapper=pd.ArrowDtype)
        finally:
            con.close()

    @property
    def registry(self):  # -> analyzer.registry.RegistryView
        """Case-insensitive registry lookups with HKLM/HKCR/CurrentControlSet aliases."""
        if self._registry is None:
            from .registry import RegistryView
            self._registry = RegistryView(self.table)
        return self._registry


#: Files from this size on are hashed by a thread while they parse.
DIGEST_APART_BYTES = 32 * 1024 * 1024


def _read_start(path: Path) -> tuple[int, bytes, str | None, str | _Digest]:
    """(size, first bytes for sniffing, archive kind, sha256) with one open
    of the file; from :data:`DIGEST_APART_BYTES` on, a file that is not an
    archive has its sha256 computed beside its parse (a :class:`_Digest`)."""
    with safeio.open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(textio.HEAD_BYTES)
        akind = archive.detect_archive(head)
        if size >= DIGEST_APART_BYTES and not akind:
            return size, head, akind, _Digest(path)
        return size, head, akind, _sha256_rest(fh, hashlib.sha256(head))


def _sha256_rest(fh: BinaryIO, h: Any) -> str:
    """``h`` fed the rest of ``fh``, block by block, each under
    :data:`analyzer.safeio.FORK_GATE` (the .evtx reader forks, and this
    may run on a thread of its own: :class:`_Digest`)."""
    while True:
        with safeio.FORK_GATE.native():
            buf = fh.read(archive.CHUNK)
            if not buf:
                return h.hexdigest()
            h.update(buf)


class _Digest(threading.Thread):
    """The sha256 of a large file, computed beside its parse: hashing
    releases the GIL, so the parse does not wait for a pass over the whole
    file first (0.6 s of a 750 MB log, all of it before the first record
    was read). :meth:`value` waits for it; None when the file could not be
    read again (the inventory then shows no digest)."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="sha256", daemon=True)
        self.path = path
        self._value: str | None = None
        self.start()

    def run(self) -> None:
        try:
            with safeio.open_regular(self.path) as fh:
                self._value = _sha256_rest(fh, hashlib.sha256())
        except BaseException:  # noqa: BLE001 - no digest is shown as none
            self._value = None

    def value(self) -> str | None:
        self.join()
        return self._value


def _value(digest: str | _Digest) -> str | None:
    return digest.value() if isinstance(digest, _Digest) else digest


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


class _FolderFiles:
    """The regular files of one folder, listed only if a parser asks
    (a hive looking for its .LOG1): 50,000 netstat files in one folder must
    not cost 50,000 sibling lists."""

    def __init__(self, here: Path, names: list[str]) -> None:
        self.here, self.names = here, names
        self._regular: tuple[Path, ...] | None = None

    def regular(self) -> tuple[Path, ...]:
        if self._regular is None:
            self._regular = safeio.regular_files([self.here / n for n in self.names])
        return self._regular


class _Siblings(Sequence):
    """A file's siblings (regular files only, itself excluded), computed on
    first use; what :attr:`ParseContext.siblings` holds."""

    def __init__(self, folder: _FolderFiles | None, exclude: Path) -> None:
        self._folder, self._exclude = folder, exclude
        self._items: tuple[Path, ...] | None = None

    def _get(self) -> tuple[Path, ...]:
        if self._items is None:
            self._items = (tuple(p for p in self._folder.regular() if p != self._exclude)
                           if self._folder is not None else ())
        return self._items

    def __getitem__(self, i):  # type: ignore[override]
        return self._get()[i]

    def __len__(self) -> int:
        return len(self._get())

    def __iter__(self) -> Iterator[Path]:
        return iter(self._get())


def _plain_kind(head: bytes) -> str:
    if not head:
        return "empty"
    return "binary" if textio.looks_binary(head) else "text"


def _unrecognized(fs_path: Path, display: str, head: bytes, size: int,
                  digest: str | None) -> InventoryEntry:
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
                 progress: Callable[[str], None] | None, sink: TableSink) -> None:
        self.options = options
        self.budget = archive.Budget(limits)
        #: per-file parse budgets; its timer runs while the case loads
        self.guard = filebudget.Guard(limits.file_seconds, limits.file_memory_bytes)
        self.work = work
        self.inventory: list[InventoryEntry] = []
        #: the case's rows, batch by batch (memory, or a file past its limit)
        self.sink = sink
        self._small: list[tuple[str, list[dict]]] = []
        self._small_rows = 0
        #: extracted members needing a note or their real name, by disk path
        self._members: dict[str, archive.Member] = {}
        self.warnings: list[Warning_] = []
        self.progress = progress
        #: The engineer's --work-dir, when given (pruned from a case walk).
        self.work_root: str | os.PathLike[str] | None = None
        self._n = 0

    def add_input(self, real: Path, given: Path) -> None:
        """The case as given: a folder, or one file (an archive, an artifact)."""
        if real.is_dir():
            self.add_tree(real, "", 0)
            return
        try:
            folder = _FolderFiles(real.parent, sorted(os.listdir(real.parent)))
        except OSError:
            folder = None
        self.add_file(real, display_name(given.name), 0, folder)

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
            here = Path(dirpath)
            try:
                names = self._prune_dirs(here, dirnames, filenames, prune)
            except OSError as exc:  # ENAMETOOLONG, ELOOP below a very deep tree
                unlistable(exc)
                dirnames.clear()
                continue
            # Siblings (a hive's .LOG1, a SYSTEM hive beside SOFTWARE): the
            # regular files of this folder, looked up once per folder.
            siblings = _FolderFiles(here, sorted(filenames))
            for fname in names:
                fs_path = here / fname
                rel = fs_path.relative_to(root).as_posix()
                member = self._members.pop(str(fs_path), None) if self._members else None
                if member is not None and member.shown:
                    rel = member.shown
                at = len(self.inventory)
                self.add_file(fs_path, self._display(prefix, rel), depth, siblings)
                if member is not None and member.reason and at < len(self.inventory):
                    self._mark_truncated(self.inventory[at], member.reason)

    @staticmethod
    def _mark_truncated(entry: InventoryEntry, reason: str) -> None:
        """An archive member cut short: what was read of it is partial."""
        if entry.status == "parsed":
            entry.status = "partial"
        entry.detail = "; ".join(x for x in (f"archive member {reason}", entry.detail) if x)

    @staticmethod
    def _prune_dirs(here: Path, dirnames: list[str], filenames: list[str],
                    prune: set[Path]) -> list[str]:
        """Sort the walk, drop the work directory, and turn symlinked
        directories into names listed (as skipped links) with the files."""
        dirnames.sort()
        for d in list(dirnames):
            resolved = (here / d).resolve()
            if resolved in prune or prune & set(resolved.parents):
                dirnames.remove(d)
        names = sorted(filenames)
        for d in list(dirnames):
            if (here / d).is_symlink():
                dirnames.remove(d)
                names.append(d)
        return sorted(names)

    @staticmethod
    def _display(prefix: str, rel: str) -> str:
        name = display_name(rel)
        return archive.display_join(prefix, name) if prefix else name

    def add_file(self, fs_path: Path, display: str, depth: int,
                 siblings: _FolderFiles | None = None) -> None:
        """Inventory one file; only a regular file is ever opened, and a
        path the system refuses (too long, a link loop, no permission) is an
        entry of its own with the reason."""
        try:
            mode = os.lstat(fs_path).st_mode
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.inventory.append(InventoryEntry(display, None, 0, None, "failed",
                                                 detail=f"cannot read: {reason}"))
            return
        if stat.S_ISLNK(mode):
            self.inventory.append(InventoryEntry(display, "symlink", 0, None, "skipped",
                                                 detail="symbolic link not followed"))
            return
        if not stat.S_ISREG(mode):
            self.inventory.append(InventoryEntry(
                display, "special", 0, None, "skipped",
                detail=f"not a regular file ({safeio.describe_mode(mode)})"))
            return
        if self.progress:
            self.progress(display)
        try:
            size, head, akind, digest = _read_start(fs_path)
        except OSError as exc:
            self.inventory.append(InventoryEntry(display, None, 0, None, "failed",
                                                 detail=f"cannot read: {exc.strerror or exc}"))
            return
        if akind:
            self._add_archive(fs_path, display, akind, size, _value(digest), depth)
            return
        try:
            src, score = sources.sniff(head, fs_path.name)
            if src is None:
                self.inventory.append(_unrecognized(fs_path, display, head, size, _value(digest)))
                return
            self._parse(src, fs_path, display, size, digest, siblings)
        finally:
            _value(digest)  # a failed load leaves no hashing thread behind

    def _add_archive(self, fs_path: Path, display: str, akind: str, size: int,
                     digest: str | None, depth: int) -> None:
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
        cut = [m for m in extracted if m.reason]
        parts = [f"{ex.kind} archive: {len(extracted)} member(s) extracted "
                 f"of {len(ex.members)} listed"]
        if rejected:
            parts.append(f"{len(rejected)} rejected")
            status = "partial"
        if cut:
            parts.append(f"{len(cut)} truncated")
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
        # Members whose name on disk differs from their real name (a
        # component too long for the file system) or that were cut short.
        for m in extracted:
            if m.reason or (m.shown and m.shown != m.name):
                self._members[str(dest / m.name)] = m
        # Parse extracted members in name order, directory by directory, so
        # siblings (hive + .LOG1) are on disk together.
        self.add_tree(dest, display, depth + 1)

    @staticmethod
    def _collect(src: Source, ctx: ParseContext, display: str, out: FileRows,
                 check: Callable[[], None]) -> str | None:
        """Run the parser, appending its output to ``out`` in order: Arrow
        tables from fast paths, lists of row dicts otherwise (turned into
        Arrow by the loader, many small files together). The parser error
        (``Type: message``), or None."""
        pending: list[dict] = []
        try:
            for chunk in src.parse(ctx):
                check()
                if isinstance(chunk, (pa.Table, pd.DataFrame)):
                    if pending:
                        out.append(pending)
                        pending = []
                    if isinstance(chunk, pd.DataFrame):
                        chunk = pa.Table.from_pandas(chunk, preserve_index=False)
                    out.append(table.conform_arrow(chunk))
                else:
                    row = dict(chunk)
                    row.setdefault("source", src.name)
                    row.setdefault("path", display)
                    if not _COLUMNS.issuperset(row):
                        raise KeyError(f"unknown table column(s): {sorted(set(row) - _COLUMNS)}")
                    pending.append(row)
                    if len(pending) >= ROW_BATCH:
                        out.append(table.rows_to_arrow(pending))
                        pending = []
        except MemoryError as exc:
            # Out of memory is the case's budget, not one bad file: let the
            # caller (e.g. a batch worker under a memory limit) see it.
            raise MemoryError(f"while parsing {display}") from exc
        except (filebudget.BudgetExceeded, OutputError):
            raise
        except Exception as exc:  # noqa: BLE001 - bad input must never stop the case
            return f"{type(exc).__name__}: {exc}"
        finally:
            if pending:
                out.append(pending)
        return None

    def _keep(self, display: str, out: FileRows) -> int:
        """Keep a file's output; rows of small files are pooled and turned
        into one Arrow table per :data:`SMALL_ROWS` rows, so that 50,000
        small files cost their rows, not a table (and its conversion) each.
        A file whose output went to a segment of its own (a large log) is
        committed as that segment. Returns the file's row count."""
        if out.spilled:
            self.warnings.extend(Warning_(display, None, d) for d in out.dropped)
            if out.seg is None:  # written straight to Parquet (flushed before)
                return out.commit_direct()
            self.flush_small()  # keep the rows in file order
            return self.sink.add_segment(out.seg)
        n = 0
        for item in out.items:
            if isinstance(item, pa.Table):
                self.flush_small()  # keep the rows in file order
                self.sink.append(item)
                n += item.num_rows
            else:
                self._small.append((display, item))
                self._small_rows += len(item)
                n += len(item)
        if self._small_rows >= SMALL_ROWS:
            self.flush_small()
        return n

    def flush_before_direct(self) -> None:
        """Write the pooled rows of earlier files before a file's rows go
        straight to Parquet; their time is not the file's budget."""
        with self.guard.paused():
            self.flush_small()

    def flush_small(self) -> None:
        """Turn the pooled rows into one Arrow table (file by file if one
        file's rows cannot be converted: that file's rows are dropped with
        a warning naming it, the others kept)."""
        if not self._small:
            return
        groups, self._small, self._small_rows = self._small, [], 0
        try:
            pooled = table.rows_to_arrow([r for _d, rows in groups for r in rows])
        except Exception:  # noqa: BLE001 - find the file, keep the others
            pooled = None
        if pooled is not None:
            self.sink.append(pooled)
            return
        for display, rows in groups:
            try:
                one = table.rows_to_arrow(rows)
            except Exception as exc:  # noqa: BLE001
                self.warnings.append(Warning_(display, None, f"{len(rows)} row(s) dropped: "
                                              f"{type(exc).__name__}: {exc}"))
                continue
            self.sink.append(one)

    def _parse(self, src: Source, fs_path: Path, display: str, size: int, digest: str | _Digest,
               siblings: _FolderFiles | None) -> None:
        ctx = ParseContext(path=display, fs_path=fs_path, options=self.options,
                           siblings=_Siblings(siblings, fs_path),  # type: ignore[arg-type]
                           work_dir=self._subdir())
        lim = self.budget.limits

        def long_line(no: int, offset: int, length: int) -> None:
            ctx.warn(textio.long_line_message(no, offset, length, lim.max_line_chars),
                     f"line={no}")

        batches = self.sink.file_rows()
        error: str | None = None
        over: str | None = None
        try:
            with textio.line_policy(lim.max_line_chars, long_line), \
                    self.guard.file() as check:
                error = self._collect(src, ctx, display, batches, check)
        except filebudget.BudgetExceeded as exc:
            over = str(exc)
        if over:
            # Over budget: what it produced is dropped (it may be what blew
            # the budget) and the file is failed with the figure.
            batches.clear()
            error = over
        rows = self._keep(display, batches)
        self.warnings.extend(ctx.warnings)
        detail_parts = list(ctx.notes)
        if over:
            detail_parts.append(over)
            self.warnings.append(Warning_(display, None, over))
        elif error:
            detail_parts.append(f"parser error: {error}")
            self.warnings.append(Warning_(display, None, f"parser error: {error}"))
        status = "failed" if over else _status(rows, error, ctx, src.kind, detail_parts)
        if ctx.warnings:
            detail_parts.append(f"{len(ctx.warnings)} warning(s)")
        self.inventory.append(InventoryEntry(
            display, src.kind, size, _value(digest), status, rows,
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
              parquet: str | os.PathLike[str] | None = None,
              spill_bytes: int = SPILL_BYTES, keep_table: bool = True,
              **option_kw: Any) -> Case:
    """Load a case from a folder, an archive or a single artifact file.

    ``parquet``: also write the table there, batch by batch as it is
    produced; with ``keep_table=False`` write it only there (the case's
    ``table`` is then empty and ``rows_written`` says how many rows the
    file holds): a parse to a file never holds the table. ``spill_bytes``: past this many bytes of rows (or of one
    file's rows, up to 64 MiB) the table is built in files of the work
    directory and memory-mapped (see :mod:`analyzer.tablesink`).

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
        sink = TableSink(work / "table", spill_bytes=spill_bytes, parquet=parquet,
                         file_spill_bytes=min(FILE_SPILL_BYTES, spill_bytes), keep=keep_table)
        try:
            loader = _Loader(opts, limits or archive.Limits(), work, progress, sink)
            sink.before_direct = loader.flush_before_direct
            loader.work_root = work_root
            with loader.guard:
                loader.add_input(real, p)
            loader.flush_small()
            merged = sink.finish()
        finally:
            sink.close()
    frame = table.arrow_to_frame(merged)
    return Case(name or display_name(upload_name(p)), display_name(str(p)), loader.inventory, frame,
                loader.warnings, opts, duration_s=time.monotonic() - started, arrow=merged,
                rows_written=sink.rows)

