"""Small helpers for the example notebooks (and anyone working in Jupyter).

- :func:`find_samples` locates the ``samples/`` tree whatever the notebook's
  working directory is (Jupyter starts kernels in the notebook's folder,
  nbclient and ``jupyter nbconvert`` wherever they are told), so notebooks do
  not hard-code ``../samples``.
- :func:`sample_cases` lists the sample cases with their expected findings.
- :func:`evidence_frame` turns a finding's evidence (path + locator, the
  report's provenance) back into the table rows it points at, so they can be
  plotted, filtered or joined like any other rows.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

#: Environment variable that points the notebooks at another samples tree.
SAMPLES_ENV = "EXA_SAMPLES"


def find_samples(start: str | os.PathLike[str] | None = None) -> Path:
    """The samples folder: ``$EXA_SAMPLES`` if set, else the first
    ``samples/`` holding a sample (a folder with expected.json) found in
    ``start`` (default: the working directory) or any parent of it.

    Raises FileNotFoundError naming where it looked.
    """
    env = os.environ.get(SAMPLES_ENV)
    if env:
        p = Path(env)
        if not p.is_dir():
            raise FileNotFoundError(f"${SAMPLES_ENV} is not a folder: {p}")
        return p
    here = Path(start or Path.cwd()).resolve()
    looked = []
    for d in (here, *here.parents):
        cand = d / "samples"
        looked.append(str(cand))
        if cand.is_dir() and any((x / "expected.json").is_file() for x in cand.iterdir()):
            return cand
    raise FileNotFoundError("no samples/ folder with sample cases in "
                            + ", ".join(looked[:4]) + (" ..." if len(looked) > 4 else "")
                            + " (run `exchange-analyzer make-samples samples`)")


@dataclass(frozen=True)
class Sample:
    name: str
    #: The case itself (what a customer would upload).
    case: Path
    #: expected.json: {"scenario", "description", "findings": [{check, status, top_cause}]}
    expected: dict[str, Any]

    @property
    def problems(self) -> list[dict[str, Any]]:
        return [f for f in self.expected.get("findings", []) if f.get("status") == "problem"]


def sample_cases(samples: str | os.PathLike[str] | None = None) -> list[Sample]:
    """Every sample (a folder with ``case/`` and ``expected.json``), by name."""
    root = Path(samples) if samples else find_samples()
    out = []
    for d in sorted(root.iterdir()):
        exp = d / "expected.json"
        if d.is_dir() and exp.is_file() and (d / "case").exists():
            out.append(Sample(d.name, d / "case", json.loads(exp.read_text(encoding="utf-8"))))
    return out


def evidence_frame(case: Any, finding: Any) -> pd.DataFrame:
    """The table rows a finding's evidence points at (every cause's and its
    own), with the cause id and verdict that cited them (None: the finding).

    Evidence is (path, locator) — the same pair every table row carries —
    so this is a join, not a search. ``finding`` is a Finding or its dict.
    """
    f = finding.to_dict() if hasattr(finding, "to_dict") else finding
    # Causes first, in rank order, so a row cited by a cause and by the
    # finding itself keeps the (more specific) cause and its verdict.
    cited = [(e["path"], e["locator"], c["id"], c["verdict"])
             for c in f["causes"] for e in c["evidence"]]
    cited += [(e["path"], e["locator"], None, None) for e in f["evidence"]]
    refs = pd.DataFrame(cited, columns=["path", "locator", "cause", "verdict"])
    if refs.empty:
        return case.table.iloc[0:0].assign(cause=pd.Series(dtype="object"),
                                           verdict=pd.Series(dtype="object"))
    refs = refs.drop_duplicates(["path", "locator"])
    table = case.table.assign(path=case.table["path"].astype(str),
                              locator=case.table["locator"].astype(str))
    rows = table.merge(refs, on=["path", "locator"], how="inner")
    return rows.sort_values("ts", na_position="last", kind="stable").reset_index(drop=True)
