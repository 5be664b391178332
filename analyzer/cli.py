"""The ``exchange-analyzer`` command: a thin layer over the library.

Exit codes of ``analyze`` are the report's verdict (analyzer/report.py
decides them): 0 no problem and a check decided, 1 a problem, 2 nothing
readable (and usage errors), 3 no verdict. Errors become click exceptions
here and only here; the library raises ordinary exceptions.
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click

from . import __version__
from .batch import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S

#: Usage errors share the "nothing readable" code: neither is a verdict.
EXIT_USAGE = 2


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A rich status line on stderr when it is a terminal; silent otherwise."""
    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True)
    with console.status("loading case...") as status:
        # File names come from the customer: never interpret them as markup.
        yield lambda path: status.update(f"reading {escape(path)}")


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


def _output_path(output: str | None) -> Path | None:
    """Check an output path before the (long) load: its folder is created,
    and a path that cannot be written is an input error (exit 2), not a
    traceback after minutes of parsing."""
    if output is None:
        return None
    out = Path(output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
    if out.is_dir():
        raise InputError(f"cannot write {output}: it is a folder")
    return out


def _report_options(fmt: str, verbose: bool, max_depth: int | None,
                    max_bytes: int | None) -> dict[str, Any]:
    """The command-line options a report records (beside the loader's)."""
    opts: dict[str, Any] = {"format": fmt}
    if verbose:
        opts["verbose"] = True
    if max_depth is not None:
        opts["max_depth"] = max_depth
    if max_bytes is not None:
        opts["max_bytes"] = max_bytes
    return opts


def _redactor(redact: bool, key: str | None, table: Any) -> Any:
    """A Redactor that has learnt the case's names, or None without --redact."""
    if not redact:
        if key:
            raise click.UsageError("--redact-key needs --redact")
        return None
    from .redact import Redactor

    redactor = Redactor(key)
    redactor.learn_table(table)
    return redactor


def _print_colored(text: str) -> None:
    """The text report on a terminal: status labels in colour (rich)."""
    from rich.console import Console

    from .render.text import colorize

    Console(highlight=False, soft_wrap=True).print(colorize(text), end="")


def _write(output: Path | None, text: str) -> None:
    try:
        if output:
            output.write_text(text, encoding="utf-8", errors="backslashreplace")
        else:
            click.echo(text, nl=False)
    except OSError as exc:
        raise InputError(f"cannot write {output or 'standard output'}: {exc.strerror or exc}") from None


#: How files are parsed: shared by every command that loads a case.
parser_flags = [
    click.option("--evtx-backend", type=click.Choice(["rust", "python"]), default="rust",
                 show_default=True, help="evtx reader: rust = the evtx package, python = python-evtx."),
    click.option("--registry", "registry", type=click.Choice(["targeted", "full"]), default="targeted",
                 show_default=True, help="Load only the registry subtrees checks need, or everything."),
]

#: Parser flags plus where and how far archives are extracted (commands
#: that load one case in this process).
load_flags = parser_flags + [
    click.option("--work-dir", type=click.Path(file_okay=False), default=None,
                 help="Where archives are extracted (a private temp folder inside it; removed after)."),
    click.option("--max-depth", type=click.IntRange(min=0), default=None,
                 help="Archive nesting limit (default 5)."),
    click.option("--max-bytes", type=click.IntRange(min=1), default=None,
                 help="Total extracted bytes limit (default 8 GiB)."),
]


def _with(flags):
    def decorate(fn):
        for opt in reversed(flags):
            fn = opt(fn)
        return fn
    return decorate


with_parser_flags = _with(parser_flags)
with_load_flags = _with(load_flags)


def with_redact_flags(fn):
    """--redact and --redact-key (analyze, timeline)."""
    fn = click.option("--redact-key", default=None, metavar="KEY", envvar="EXA_REDACT_KEY",
                      help="With --redact: keyed pseudonyms, the same in every report "
                           "redacted with KEY (also from $EXA_REDACT_KEY).")(fn)
    return click.option("--redact", is_flag=True,
                         help="Replace user names, e-mail addresses, SIDs, IPs, host and domain "
                              "names with consistent pseudonyms (for reports handed to third "
                              "parties).")(fn)


class InputError(click.ClickException):
    """Unreadable input: exit 2 like a usage error (exit 1 means 'problem found')."""

    exit_code = EXIT_USAGE


@click.group()
@click.version_option(__version__, prog_name="exchange-analyzer")
def main() -> None:
    """Diagnose Microsoft Exchange problems offline from a customer's logs.

    Commands take a case PATH: a folder or an archive (zip, tar, tar.gz, 7z,
    cab, nested) of event logs, registry hives or .reg exports, setup logs,
    rpcdump/PortQry, netstat and tasklist output, message tracking logs.

    analyze exits 0 when no problem is found and a check could decide, 1
    when a problem is found, 2 on a usage error or when nothing in the input
    can be read, 3 when no check found evidence to decide on.
    """


@main.command(short_help="Analyze a case; exit 1 when a problem is found, 3 on no verdict.")
@click.argument("path", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json", "html"]),
              default="text", show_default=True,
              help="text fits 80 columns; json is the report/v1 contract.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the report to FILE instead of standard output.")
@click.option("--check", "check_ids", multiple=True, metavar="ID",
              help="Run only this check (repeatable; see `exchange-analyzer checks`).")
@click.option("--attachments", "attach_dir", type=click.Path(file_okay=False), default=None,
              metavar="DIR",
              help="Write files that findings hand over for review (e.g. an LDIF) into DIR.")
@click.option("--verbose", "-v", is_flag=True,
              help="Text report: every cause with its evidence and fixes, every finding in full.")
@with_redact_flags
@with_load_flags
def analyze(path: str, fmt: str, output: str | None, check_ids: tuple[str, ...],
            attach_dir: str | None, verbose: bool, redact: bool, redact_key: str | None,
            evtx_backend: str, registry: str, work_dir: str | None, max_depth: int | None,
            max_bytes: int | None) -> None:
    """Analyze a case and report findings.

    Exit 0 when no problem is found and at least one check could decide, 1
    when a problem is found, 2 on a usage error or when nothing in PATH
    could be read, 3 when no check found evidence to decide on (no verdict).
    """
    from .render import render
    from .report import UnknownCheckError, select_checks
    from .report import analyze as run
    from .report import write_report_attachments

    try:
        select_checks(check_ids)  # before the (long) load
    except UnknownCheckError as exc:
        raise click.UsageError(str(exc)) from None
    out = _output_path(output)
    case = _load(path, _load_options(evtx_backend, registry, max_depth, max_bytes), work_dir,
                 progress=True)
    report = run(case, checks=list(check_ids) or None)
    report.options.update(_report_options(fmt, verbose, max_depth, max_bytes))
    if redact:
        report.options["redact"] = "keyed" if redact_key else "per-report"
    redactor = _redactor(redact, redact_key, case.table)
    result = report.to_dict() if redactor is None else redactor.report(report.to_dict())
    text = render(result, fmt, verbose=verbose)
    if out is None and fmt == "text" and sys.stdout.isatty():
        _print_colored(text)
    else:
        _write(out, text)
    if attach_dir:
        try:
            for written in write_report_attachments(result, Path(attach_dir)):
                click.echo(f"attachment: {written}", err=True)
        except OSError as exc:
            raise InputError(f"cannot write attachments to {attach_dir}: {exc.strerror or exc}") from None
    verdict = result["verdict"]  # as rendered (redacted with --redact)
    if verdict["status"] in ("unreadable", "no_verdict"):
        # A script reading only the exit code and stderr still learns why.
        click.echo(f"exchange-analyzer: {verdict['summary']}", err=True)
    sys.exit(verdict["exit_code"])


def _export_path(output: str) -> Path:
    """An export file whose extension names its format (.parquet, .csv,
    .jsonl), checked before the load: anything else is a usage error."""
    from .timeline import ExportFormatError, export_format

    try:
        export_format(output)
    except ExportFormatError as exc:
        raise click.UsageError(str(exc)) from None
    out = _output_path(output)
    assert out is not None
    return out


@main.command(short_help="Parse a case into the event table (Parquet, CSV, JSONL).")
@click.argument("path", type=click.Path(exists=True))
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              help="File for the event table: .parquet, .csv or .jsonl (by extension); "
                   "the inventory goes beside it as <name>.inventory.json.")
@with_load_flags
def parse(path: str, output: str, evtx_backend: str, registry: str, work_dir: str | None,
          max_depth: int | None, max_bytes: int | None) -> None:
    """Parse a case into the normalized event table and its inventory. The
    format follows the output's extension: .parquet, .csv or .jsonl."""
    from .timeline import export_format, write_table

    out = _export_path(output)
    opts = _load_options(evtx_backend, registry, max_depth, max_bytes)
    # Parquet is written batch by batch while the case loads (a large log
    # never has to be written from the whole table); under a temporary name
    # until the load has ended, so a failed parse leaves no half file.
    part = out.with_name(f".{out.name}.part") if export_format(out) == "parquet" else None
    if part is not None:
        opts["parquet"] = part
        opts["keep_table"] = False  # nothing here reads the table back
    from .tablesink import OutputError

    try:
        case = _load(path, opts, work_dir, progress=True)
    except BaseException as exc:
        if part is not None:
            part.unlink(missing_ok=True)
        if isinstance(exc, OutputError):
            raise InputError(f"{output}: {exc}") from None
        raise
    inv_path = out.with_name(out.stem + ".inventory.json")
    try:
        if part is not None:
            os.replace(part, out)
        else:
            write_table(case.table, out)
        inv_path.write_text(json.dumps([e.to_dict() for e in case.inventory], indent=2,
                                       ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {exc.filename or output}: {exc.strerror or exc}") from None
    click.echo(f"{case.rows_written} rows from {len(case.inventory)} files -> {out}; "
               f"inventory -> {inv_path}", err=True)


@main.command(short_help="Export a case's timeline (Timesketch CSV/JSONL, or Parquet).")
@click.argument("path", type=click.Path(exists=True))
@click.option("--output", "-o", type=click.Path(dir_okay=False), required=True,
              help="Timeline file: .csv, .jsonl (Timesketch imports both) or .parquet.")
@click.option("--checks-only", is_flag=True,
              help="Keep only the rows the checks cite as evidence.")
@with_redact_flags
@with_load_flags
def timeline(path: str, output: str, checks_only: bool, redact: bool, redact_key: str | None,
             evtx_backend: str, registry: str, work_dir: str | None, max_depth: int | None,
             max_bytes: int | None) -> None:
    """Every row of the case in time order with Timesketch's columns
    (message, datetime, timestamp, timestamp_desc) in front of the table's
    own (its message column is event_message); rows without a time last."""
    from .timeline import cited_rows, timeline_table, write_table

    out = _export_path(output)
    case = _load(path, _load_options(evtx_backend, registry, max_depth, max_bytes), work_dir,
                 progress=True)
    df = case.table
    if checks_only:
        from .report import analyze as run
        df = cited_rows(df, run(case).to_dict())
    redactor = _redactor(redact, redact_key, case.table)
    if redactor is not None:
        df = redactor.table(df)
    try:
        write_table(timeline_table(df), out)
    except OSError as exc:
        raise InputError(f"cannot write {exc.filename or output}: {exc.strerror or exc}") from None
    click.echo(f"{len(df)} of {len(case.table)} rows -> {out}", err=True)


@main.command("checks", short_help="List the diagnostic checks.")
def list_checks() -> None:
    """List the diagnostic checks with their descriptions."""
    from . import checks

    def para(text: str) -> None:
        click.echo(click.wrap_text(" ".join(text.split()), 80, initial_indent="    ",
                                   subsequent_indent="    "))

    for chk in checks.registered():
        click.echo(click.wrap_text(f"{chk.id}: {chk.title}", 80, subsequent_indent="    "))
        for block in chk.description.strip().split("\n\n"):
            para(block)
        if chk.references:
            para(f"References: {'; '.join(chk.references)}")
        click.echo()


@main.command(short_help="Analyze many cases into a store.")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--store", "store_dir", required=True, type=click.Path(file_okay=False),
              help="Store folder (created): Parquet per case, reports, summary.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Parallel cases (default: CPU count).")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: a process per case on this machine; dask: dask.distributed.")
@click.option("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786); "
              "without it a LocalCluster is started.")
@click.option("--force", is_flag=True, help="Re-analyze cases already in the store.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_TIMEOUT_S, show_default=True, help="Per-case time limit, seconds.")
@click.option("--memory-mb", type=click.IntRange(min=1), default=DEFAULT_MEMORY_MB,
              show_default=True, help="Per-case memory limit (address space), MiB.")
@with_parser_flags
def batch(inputs: tuple[str, ...], store_dir: str, jobs: int | None, engine: str,
          scheduler: str | None, force: bool, timeout_s: float, memory_mb: int,
          evtx_backend: str, registry: str) -> None:
    """Analyze many cases (archives, case folders, or folders of archives)
    into a store. Exit 0 when every case was analyzed, 1 when any failed."""
    from .batch import BatchOptions, run_batch

    opts = BatchOptions(engine=engine, scheduler=scheduler, force=force,
                        load={"evtx_backend": evtx_backend, "registry": registry},
                        timeout_s=timeout_s, memory_mb=memory_mb)
    if jobs:
        opts.jobs = jobs
    try:
        with _batch_progress() as progress:
            results = run_batch(inputs, store_dir, opts, progress=progress)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from None
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
        if r.status == "failed":
            click.echo(f"failed: {r.source}: {r.reason}", err=True)
        elif r.status == "done" and r.reason:
            click.echo(f"warning: {r.source}: {r.reason}", err=True)
    click.echo(f"{len(results)} case(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
               + f"; summary in {Path(store_dir) / 'summary.csv'}", err=True)
    sys.exit(1 if counts.get("failed") else 0)


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
        click.echo(f"[{done}/{total}] {res.status}: {res.source}", err=True)
    yield log


@main.command(short_help="SQL (DuckDB) over a batch store.")
@click.argument("store_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("sql")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output as a table, CSV or JSON records.")
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


@main.command(short_help="Write a real .evtx/.evt/hive from a description.")
@click.argument("kind", type=click.Choice(["evtx", "evt", "hive"]))
@click.argument("description", type=click.Path(exists=True, dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
def synth(kind: str, description: str, output: str) -> None:
    """Write a real .evtx, .evt or registry hive from a JSON/YAML description
    (to reproduce a customer's case; see analyzer/synth/fromdata.py)."""
    from .synth.fromdata import DescriptionError, write_from_description

    out = _output_path(output)
    assert out is not None
    try:
        n = write_from_description(kind, Path(description), out)
    except DescriptionError as exc:
        raise InputError(str(exc)) from None
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"{n} {'keys' if kind == 'hive' else 'events'} -> {output}", err=True)


@main.command(short_help="Message tracking statistics of a case.")
@click.argument("path", type=click.Path(exists=True))
@click.option("--by", type=click.Choice(["server", "day", "hour", "sender", "recipient"]),
              default="server", show_default=True,
              help="One row per server, per server and day/hour (UTC), or per address.")
@click.option("--start", default=None, metavar="TIME",
              help="Count only events at or after TIME (ISO 8601; no zone = UTC).")
@click.option("--end", default=None, metavar="TIME",
              help="Count only events before TIME (ISO 8601; no zone = UTC).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@with_load_flags
def stats(path: str, by: str, start: str | None, end: str | None, fmt: str, evtx_backend: str,
          registry: str, work_dir: str | None, max_depth: int | None, max_bytes: int | None) -> None:
    """Messages received, sent, delivered, failed and deferred, from the
    message tracking logs in PATH (Exchange 2000/2003 and 2007/2010 alike):
    the "Hub server stats" of Get-MessageTrackingLog | Measure-Object,
    counted as distinct messages."""
    import pandas as pd

    from . import stats as tracking_stats

    for label, value in (("--start", start), ("--end", end)):
        if value is not None:
            try:
                pd.Timestamp(value)
            except ValueError:
                raise click.BadParameter(f"not a time: {value!r}", param_hint=label) from None
    case = _load(path, _load_options(evtx_backend, registry, max_depth, max_bytes), work_dir,
                 progress=True)
    frame = tracking_stats.message_stats(case.table, by=by, start=start, end=end)
    if frame.empty:
        click.echo(f"no message tracking events in {path}", err=True)
    if "period" in frame:
        frame["period"] = frame["period"].map(lambda t: t.isoformat())
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(frame.to_json(orient="records", indent=1))
    else:
        click.echo(frame.to_string(index=False) if not frame.empty else "(no rows)")


def _scenarios_of_checkout() -> Any:
    """The ``scenarios`` package of the repository clone around the working
    directory: sample descriptions are development data, not part of the
    installed package, so make-samples works from a clone only."""
    import importlib

    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "scenarios" / "__init__.py").is_file() and (folder / "pyproject.toml").is_file():
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
            return importlib.import_module("scenarios")
    raise InputError("make-samples runs inside a clone of the repository "
                     "(no scenarios/ package found here or in a parent folder)")


@main.command("make-samples", short_help="Regenerate the sample cases.")
@click.argument("out_dir", type=click.Path(file_okay=False), default="samples")
def make_samples(out_dir: str) -> None:
    """Regenerate the sample cases from their scenario descriptions into
    OUT_DIR (default: ./samples, relative to the working directory; its
    scenario folders are replaced)."""
    regenerate = _scenarios_of_checkout().regenerate
    for p in regenerate(Path(out_dir)):
        click.echo(str(p))


#: Commands that run in this process only (no worker processes or cluster
#: whose shutdown an exit handler may do): they end with ``os._exit``.
_FAST_EXIT = frozenset({"analyze", "parse", "timeline", "checks"})


def run() -> None:
    """The ``exchange-analyzer`` entry point: :func:`main`, then, for the
    single-process commands, an exit that skips the interpreter's teardown.
    Every output file is closed and every helper thread and process joined
    by then; what is left is freeing pandas, Arrow and the case's memory
    object by object, 0.15-0.2 s of a one-second command (a SYSTEM hive's
    full load), for nothing the operating system does not do at exit."""
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if command not in _FAST_EXIT:
        sys.exit(code)
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    run()
