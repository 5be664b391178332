"""The ``exchange-analyzer`` command: a thin layer over the library.

Exit codes of ``analyze``: 0 when no finding is a problem, 1 when at least
one is, 2 on usage errors or unreadable input. Errors become click
exceptions here and only here; the library raises ordinary exceptions.
"""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click

from . import __version__

EXIT_USAGE = 2


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A rich status line on stderr when it is a terminal; silent otherwise."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    with console.status("loading case...") as status:
        yield lambda path: status.update(f"reading {path}")


def _load_options(evtx_backend: str, registry: str, max_depth: int | None,
                  max_bytes: int | None) -> dict[str, Any]:
    from .archive import Limits

    limits = Limits()
    if max_depth is not None:
        limits.max_depth = max_depth
    if max_bytes is not None:
        limits.max_total_bytes = max_bytes
    return {"evtx_backend": evtx_backend, "registry": registry, "limits": limits}


def _load(path: str, opts: dict[str, Any], work_dir: str | None, progress: bool):
    from .case import load_case

    with _progress(progress) as cb:
        try:
            return load_case(path, work_root=work_dir, progress=cb, **opts)
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            raise InputError(str(exc)) from None


def _write(output: str | None, text: str) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


load_flags = [
    click.option("--evtx-backend", type=click.Choice(["rust", "python"]), default="rust",
                 show_default=True, help="evtx reader: rust = the evtx package, python = python-evtx."),
    click.option("--registry", "registry", type=click.Choice(["targeted", "full"]), default="targeted",
                 show_default=True, help="Load only the registry subtrees checks need, or everything."),
    click.option("--work-dir", type=click.Path(file_okay=False), default=None,
                 help="Where archives are extracted (a private temp folder inside it; removed after)."),
    click.option("--max-depth", type=int, default=None, help="Archive nesting limit."),
    click.option("--max-bytes", type=int, default=None, help="Total extracted bytes limit."),
]


def with_load_flags(fn):
    for opt in reversed(load_flags):
        fn = opt(fn)
    return fn


class InputError(click.ClickException):
    """Unreadable input: exit 2 like a usage error (exit 1 means 'problem found')."""

    exit_code = EXIT_USAGE


@click.group()
@click.version_option(__version__, prog_name="exchange-analyzer")
def main() -> None:
    """Diagnose Microsoft Exchange problems offline from a customer's logs.

    PATH is a case: a folder or an archive (zip, tar, tar.gz, 7z, cab,
    nested) of event logs, registry hives or .reg exports, setup logs,
    rpcdump/PortQry, netstat and tasklist output, message tracking logs.
    """


@main.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "html"]),
              default="text", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the report to FILE instead of standard output.")
@click.option("--check", "check_ids", multiple=True, help="Run only this check (repeatable).")
@click.option("--attachments", "attach_dir", type=click.Path(file_okay=False), default=None,
              help="Write files that findings hand over for review (e.g. an LDIF) into DIR.")
@with_load_flags
def analyze(path: str, fmt: str, output: str | None, check_ids: tuple[str, ...],
            attach_dir: str | None, evtx_backend: str, registry: str, work_dir: str | None,
            max_depth: int | None, max_bytes: int | None) -> None:
    """Analyze a case and report findings (exit 1 when a problem is found)."""
    from .render import render
    from .report import analyze as run

    case = _load(path, _load_options(evtx_backend, registry, max_depth, max_bytes), work_dir,
                 progress=True)
    try:
        report = run(case, checks=list(check_ids) or None)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from None
    _write(output, render(report.to_dict(), fmt))
    if attach_dir:
        for written in report.write_attachments(Path(attach_dir)):
            click.echo(f"attachment: {written}", err=True)
    sys.exit(report.exit_code)


@main.command()
@click.argument("path", type=click.Path(exists=True))
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              help="Parquet file for the event table; the inventory goes beside it "
                   "as <name>.inventory.json.")
@with_load_flags
def parse(path: str, output: str, evtx_backend: str, registry: str, work_dir: str | None,
          max_depth: int | None, max_bytes: int | None) -> None:
    """Parse a case into the normalized event table (Parquet) and its inventory."""
    from .table import write_parquet

    case = _load(path, _load_options(evtx_backend, registry, max_depth, max_bytes), work_dir,
                 progress=True)
    out = Path(output)
    write_parquet(case.table, out)
    inv_path = out.with_name(out.stem + ".inventory.json")
    inv_path.write_text(json.dumps([e.to_dict() for e in case.inventory], indent=2,
                                   ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"{len(case.table)} rows from {len(case.inventory)} files -> {out}; "
               f"inventory -> {inv_path}", err=True)


@main.command("checks")
def list_checks() -> None:
    """List the diagnostic checks with their descriptions."""
    from . import checks as registry

    for chk in registry.registered():
        click.echo(f"{chk.id}: {chk.title}")
        for line in chk.description.strip().splitlines():
            click.echo(f"    {line.strip()}")
        if chk.references:
            click.echo(f"    References: {'; '.join(chk.references)}")
        click.echo()


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--store", "store_dir", required=True, type=click.Path(file_okay=False),
              help="Store folder (created): Parquet per case, reports, summary.")
@click.option("--jobs", "-j", type=int, default=None, help="Parallel cases (default: CPU count).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786); "
              "without it a LocalCluster is started.")
@click.option("--force", is_flag=True, help="Re-analyze cases already in the store.")
@click.option("--timeout", "timeout_s", type=float, default=None, help="Per-case time limit, seconds.")
@click.option("--memory-mb", type=int, default=None, help="Per-case memory limit, MiB.")
@click.option("--evtx-backend", type=click.Choice(["rust", "python"]), default="rust", show_default=True)
@click.option("--registry", type=click.Choice(["targeted", "full"]), default="targeted", show_default=True)
def batch(inputs: tuple[str, ...], store_dir: str, jobs: int | None, engine: str,
          scheduler: str | None, force: bool, timeout_s: float | None, memory_mb: int | None,
          evtx_backend: str, registry: str) -> None:
    """Analyze many cases (archives, folders, or folders of them) into a store."""
    from .batch import BatchOptions, run_batch

    opts = BatchOptions(engine=engine, scheduler=scheduler, force=force,
                        load={"evtx_backend": evtx_backend, "registry": registry})
    if jobs:
        opts.jobs = jobs
    if timeout_s:
        opts.timeout_s = timeout_s
    if memory_mb:
        opts.memory_mb = memory_mb
    try:
        with _batch_progress() as progress:
            results = run_batch(inputs, store_dir, opts, progress=progress)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from None
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.status == "failed":
            click.echo(f"failed: {r.name}: {r.reason}", err=True)
    click.echo(f"{len(results)} case(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
               + f"; summary in {Path(store_dir) / 'summary.csv'}", err=True)


@contextmanager
def _batch_progress() -> Iterator[Any]:
    """Cases done/failed with an ETA: a rich bar on a terminal, lines otherwise."""
    failed = 0
    if sys.stderr.isatty():
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("failed: {task.fields[failed]}"), TimeElapsedColumn(),
                      TimeRemainingColumn(), transient=False) as bar:
            task = bar.add_task("cases", total=None, failed=0)

            def update(res, done, total):
                nonlocal failed
                failed += res.status == "failed"
                bar.update(task, completed=done, total=total, failed=failed)
            yield update
        return

    def log(res, done, total):
        click.echo(f"[{done}/{total}] {res.status}: {res.name}", err=True)
    yield log


@main.command()
@click.argument("store_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
def query(store_dir: str, sql: str, fmt: str) -> None:
    """SQL (DuckDB) over a batch store: views events, findings, causes, inventory, summary."""
    from .store import open_store

    try:
        df = open_store(store_dir).sql(sql)
    except FileNotFoundError as exc:
        raise InputError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - duckdb raises its own error types
        raise click.UsageError(f"query failed: {exc}") from None
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records", date_format="iso", force_ascii=False))
    else:
        from rich.console import Console
        from rich.table import Table

        t = Table(show_lines=False)
        for col in df.columns:
            t.add_column(str(col))
        for row in df.itertuples(index=False):
            t.add_row(*["" if v is None else str(v) for v in row])
        Console(width=None if sys.stdout.isatty() else 240).print(t)


@main.command()
@click.argument("kind", type=click.Choice(["evtx", "evt", "hive"]))
@click.argument("description", type=click.Path(exists=True, dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
def synth(kind: str, description: str, output: str) -> None:
    """Write a real .evtx, .evt or registry hive from a JSON/YAML description
    (to reproduce a customer's case; see analyzer/synth/fromdata.py)."""
    from .synth.fromdata import DescriptionError, write_from_description

    try:
        n = write_from_description(kind, Path(description), Path(output))
    except DescriptionError as exc:
        raise InputError(str(exc)) from None
    click.echo(f"{n} {'keys' if kind == 'hive' else 'events'} -> {output}", err=True)


@main.command("make-samples")
@click.argument("out_dir", type=click.Path(file_okay=False), default="samples")
def make_samples(out_dir: str) -> None:
    """Regenerate the sample cases from their scenario descriptions."""
    from .scenarios import regenerate

    for p in regenerate(Path(out_dir)):
        click.echo(str(p))


if __name__ == "__main__":  # pragma: no cover
    main()
