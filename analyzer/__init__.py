"""exchange-analyzer: diagnose Microsoft Exchange problems offline from the
logs and artifacts a customer uploads.

Public API::

    from analyzer import load_case, analyze
    case = load_case("case.zip")          # inventory + normalized event table
    report = analyze(case)                # findings of every registered check
    print(report.to_text())
"""
from __future__ import annotations

import os as _os

# Arrow's allocator (mimalloc) gives freed pages back to the kernel a few
# milliseconds after they are freed. A batch of a large .evtx file frees
# and allocates tens of MB, so every batch faulted its pages in again:
# parsing a 750 MB log took 410k page faults and 2.2-3.0 s of system time;
# with the pages kept for reuse, 240k and 1.3-1.5 s, for ~110 MB more peak
# memory a process (benchmarks/README.md). Read when pyarrow loads, so set
# before any import below; a value already in the environment is kept.
_os.environ.setdefault("MIMALLOC_PURGE_DELAY", "-1")

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
