"""exchange-analyzer: diagnose Microsoft Exchange problems offline from the
logs and artifacts a customer uploads.

Public API::

    from analyzer import load_case, analyze
    case = load_case("case.zip")          # inventory + normalized event table
    report = analyze(case)                # findings of every registered check
    print(report.to_text())
"""
from __future__ import annotations

__version__ = "0.1.0"

from .case import Case, InventoryEntry, load_case
from .findings import Cause, Evidence, Finding
from .sources import Options

__all__ = ["Case", "Cause", "Evidence", "Finding", "InventoryEntry", "Options",
           "analyze", "load_case", "__version__"]


def analyze(case_or_path, checks=None, **load_kw):
    """Run the checks over a case (or a path, loaded first); returns a Report."""
    from .report import analyze as _analyze
    return _analyze(case_or_path, checks=checks, **load_kw)
