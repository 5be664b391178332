"""Test helpers for the text-artifact sources: run a source on a file and get
a validated frame, and re-encode fixtures the ways Windows writes them."""
from __future__ import annotations

import codecs
from pathlib import Path

import pandas as pd
import pyarrow as pa

from analyzer import sources
from analyzer.sources import Options, ParseContext
from analyzer.table import arrow_to_frame, conform_arrow, row_data, rows_to_arrow, validate
from analyzer.textio import read_head

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "text"
REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO.parent / "shared" / "seeds"


def fixture(name: str) -> Path:
    return FIXTURES / name


def run(source_name: str, path: Path) -> tuple[pd.DataFrame, ParseContext]:
    """Parse ``path`` with the named source; the frame is validated. Row
    dicts and Arrow batches (netstat, tracking) are kept in the order yielded."""
    src = sources.get(source_name)
    ctx = ParseContext(path=path.name, fs_path=path, options=Options())
    parts: list[pa.Table] = []
    rows: list[dict] = []
    for chunk in src.parse(ctx):
        if isinstance(chunk, pa.Table):
            if rows:
                parts.append(rows_to_arrow(rows))
                rows = []
            parts.append(conform_arrow(chunk))
            continue
        assert isinstance(chunk, dict)
        row = dict(chunk)
        row.setdefault("source", src.name)
        row.setdefault("path", ctx.path)
        rows.append(row)
    if rows or not parts:
        parts.append(rows_to_arrow(rows))
    df = arrow_to_frame(pa.concat_tables(parts).unify_dictionaries().combine_chunks())
    validate(df)
    return df, ctx


def datas(df: pd.DataFrame) -> list[dict]:
    return [row_data(v) for v in df["data"]]


def sniff_scores(path: Path) -> dict[str, int]:
    head = read_head(path)
    return {s.name: int(s.sniff(head, path.name)) for s in sources.registered()}


def encode_variant(text: str, variant: str) -> bytes:
    """The same text as Windows tools would have written it.

    utf8 / utf8-bom / utf16 (PowerShell 5.1 ``>``: UTF-16LE with BOM) /
    oem (cmd.exe redirection: cp850) / lf (Unix line ends) / truncated (last
    line cut in the middle, no end of line).
    """
    crlf = text.replace("\r\n", "\n").replace("\n", "\r\n")
    if variant == "utf8":
        return crlf.encode("utf-8")
    if variant == "utf8-bom":
        return codecs.BOM_UTF8 + crlf.encode("utf-8")
    if variant == "utf16":
        return codecs.BOM_UTF16_LE + crlf.encode("utf-16-le")
    if variant == "oem":
        return crlf.encode("cp850", errors="replace")
    if variant == "lf":
        return text.replace("\r\n", "\n").encode("utf-8")
    if variant == "truncated":
        body = crlf.rstrip("\r\n")
        last = body.rsplit("\r\n", 1)[-1]
        return body[: len(body) - len(last) // 2].encode("utf-8")
    raise ValueError(variant)


ENCODINGS = ("utf8", "utf8-bom", "utf16", "oem", "lf")
