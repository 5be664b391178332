"""Findings: what a check concludes, in the shape of the JSON report contract.

A finding is a differential diagnosis, not a first-match verdict: it carries
every cause the check weighed, ranked, each with a verdict (confirmed, likely,
possible, ruled_out), its own evidence and remediation. Evidence always points
back to a file and a locator in it, so an engineer can open the customer's
file at the right line.
"""
from __future__ import annotations

import html
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

Status = Literal["problem", "ok", "inconclusive", "not_applicable"]
Severity = Literal["critical", "error", "warning", "info"]
Verdict = Literal["confirmed", "likely", "possible", "ruled_out"]

STATUSES: tuple[str, ...] = ("problem", "inconclusive", "ok", "not_applicable")
VERDICT_RANK = {"confirmed": 0, "likely": 1, "possible": 2, "ruled_out": 3}
SEVERITY_RANK = {"critical": 0, "error": 1, "warning": 2, "info": 3}
EXCERPT_MAX = 400


@dataclass
class Evidence:
    path: str
    locator: str
    ts: str | None
    excerpt: str

    @classmethod
    def from_row(cls, row: Any, excerpt: str | None = None) -> Evidence:
        """Evidence pointing at one table row (a Series or a row mapping)."""
        get = row.get if hasattr(row, "get") else (lambda k: getattr(row, k, None))
        ts = get("ts")
        ts_text = None
        if ts is not None and not (isinstance(ts, float) or ts is pd.NaT or ts is pd.NA):
            ts_text = pd.Timestamp(ts).isoformat()
        if excerpt is None:
            excerpt = default_excerpt(row)
        return cls(path=str(get("path")), locator=str(get("locator")), ts=ts_text,
                   excerpt=_clip(excerpt))


def _clip(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= EXCERPT_MAX else text[: EXCERPT_MAX - 1] + "…"


def _val(row: Any, key: str) -> Any:
    v = row.get(key) if hasattr(row, "get") else getattr(row, key, None)
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    return v


def default_excerpt(row: Any) -> str:
    """A one-line human summary of a table row, per row kind."""
    kind = _val(row, "kind")
    if kind in ("registry_value", "registry_key"):
        key = _val(row, "key") or ""
        if kind == "registry_key":
            return key
        name = _val(row, "value_name")
        return f"{key}\\{name or '(Default)'} = {_val(row, 'value_type') or ''} {_val(row, 'value') or ''}".strip()
    if kind == "event":
        head = " ".join(str(x) for x in (
            _val(row, "provider"), _val(row, "event_id"), _val(row, "level")) if x is not None)
        msg = _val(row, "message") or _val(row, "data") or ""
        return f"{head}: {msg}" if msg else head
    return str(_val(row, "message") or _val(row, "data") or "")


@dataclass
class Cause:
    id: str
    title: str
    verdict: Verdict
    explanation: str
    evidence: list[Evidence] = field(default_factory=list)
    remediation: list[str] = field(default_factory=list)


@dataclass
class Finding:
    check: str
    title: str
    status: Status
    severity: Severity
    summary: str
    host: str | None = None
    causes: list[Cause] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    remediation: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    collect: list[str] = field(default_factory=list)
    #: Extra machine-readable facts (allowed by the contract: extra fields).
    facts: dict[str, Any] = field(default_factory=dict)
    #: Files a remediation hands to the engineer for review (file name ->
    #: text), e.g. an LDIF of the object to recreate. In the JSON report as
    #: an extra field; ``analyze --attachments DIR`` writes them as files.
    attachments: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Causes are always ranked: most likely first, ruled out last.
        self.causes.sort(key=lambda c: VERDICT_RANK[c.verdict])

    @property
    def top_cause(self) -> Cause | None:
        live = [c for c in self.causes if c.verdict != "ruled_out"]
        return live[0] if live else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for extra in ("facts", "attachments"):
            if not d[extra]:
                d.pop(extra)
        return d

    def _repr_html_(self) -> str:
        """Rich display in Jupyter."""
        from .render.html import finding_html
        return finding_html(self)


def attachment_file_name(check: str, host: str | None, name: str) -> str:
    """The file name ``analyze --attachments DIR`` gives an attachment, so a
    finding's text can name the file the engineer will find."""
    parts = [check] + ([host] if host else []) + [name]
    return "-".join(re.sub(r"[^A-Za-z0-9._-]+", "_", p) for p in parts)


def escape(text: Any) -> str:
    return html.escape(str(text))
