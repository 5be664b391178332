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
@with_load_flags
def analyze(path: str, fmt: str, output: str | None, check_ids: tuple[str, ...],
            evtx_backend: str, registry: str, work_dir: str | None,
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


@main.command("make-samples")
@click.argument("out_dir", type=click.Path(file_okay=False), default="samples")
def make_samples(out_dir: str) -> None:
    """Regenerate the sample cases from their scenario descriptions."""
    from .scenarios import regenerate

    for p in regenerate(Path(out_dir)):
        click.echo(str(p))


if __name__ == "__main__":  # pragma: no cover
    main()
