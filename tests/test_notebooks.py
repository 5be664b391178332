"""The example notebooks run top to bottom against samples/ (nbclient, a real
python3 kernel), and are committed without outputs.

They need the generated sample cases: when samples/ holds no sample with a
problem finding yet the execution tests skip, saying so. ``EXA_SAMPLES``
points them (and the notebooks, via analyzer.notebook.find_samples) at
another samples tree.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ["01-investigate-a-case.ipynb", "02-triage-a-batch.ipynb", "03-message-tracking-statistics.ipynb"]
CELL_TIMEOUT_S = 300


def _samples_dir() -> Path:
    env = os.environ.get("EXA_SAMPLES")
    return Path(env) if env else REPO / "samples"


def _has_problem_sample(samples: Path) -> bool:
    if not samples.is_dir():
        return False
    for d in samples.iterdir():
        exp = d / "expected.json"
        if d.is_dir() and exp.is_file() and (d / "case").exists():
            findings = json.loads(exp.read_text(encoding="utf-8")).get("findings", [])
            if any(f.get("status") == "problem" and "issue" not in f for f in findings):
                return True
    return False


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_without_outputs(name: str) -> None:
    nb = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    for cell in code:
        assert cell.get("outputs") == [], f"{name}: outputs not stripped"
        assert cell.get("execution_count") is None, f"{name}: execution_count not null"


@pytest.mark.parametrize("name,cwd", [(NAMES[0], "notebooks"), (NAMES[1], "repo"), (NAMES[2], "notebooks")])
def test_notebook_executes(name: str, cwd: str, tmp_path: Path) -> None:
    """Run every cell; any error fails the test with the cell's traceback.

    01 runs with the working directory of Jupyter (the notebook's folder),
    02 with the repository root (as `jupyter nbconvert --execute` from the
    root would): both must find samples/.
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    samples = _samples_dir()
    assert _has_problem_sample(samples), (
        f"{samples} holds no sample case with a problem finding "
        "(run `exchange-analyzer make-samples samples` and commit samples/)")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    workdir = NOTEBOOKS if cwd == "notebooks" else REPO
    before = {p.name for p in NOTEBOOKS.iterdir()}
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, allow_errors=False,
        resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises CellExecutionError naming the failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    # The plots were drawn (a PNG), and the finding / report rendered as HTML.
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure"
    if name == NAMES[0]:
        assert any("text/html" in o.get("data", {}) for o in outputs), "no HTML finding"
    # Running a notebook leaves nothing behind beside the notebooks (the
    # repository root is shared with other writers, so only notebooks/ is
    # compared).
    assert {p.name for p in NOTEBOOKS.iterdir()} == before


# --------------------------------------------------------------------------
# analyzer.notebook helpers the notebooks rely on

def test_find_samples_searches_upward(tmp_path: Path, monkeypatch) -> None:
    from analyzer.notebook import find_samples, sample_cases

    monkeypatch.delenv("EXA_SAMPLES", raising=False)
    sample = tmp_path / "repo" / "samples" / "demo"
    (sample / "case").mkdir(parents=True)
    (sample / "expected.json").write_text(json.dumps(
        {"scenario": "demo", "findings": [{"check": "x", "status": "problem", "top_cause": "y"}]}))
    (tmp_path / "repo" / "notebooks" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo" / "notebooks" / "deep")
    assert find_samples() == (tmp_path / "repo" / "samples").resolve()
    assert find_samples(tmp_path / "repo") == (tmp_path / "repo" / "samples").resolve()
    [s] = sample_cases()
    assert (s.name, s.case.name, s.problems[0]["top_cause"]) == ("demo", "case", "y")
    # An empty samples/ (not generated yet) is not taken.
    (tmp_path / "other" / "samples").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="make-samples"):
        find_samples(tmp_path / "other")
    monkeypatch.setenv("EXA_SAMPLES", str(tmp_path / "other" / "samples"))
    assert find_samples() == tmp_path / "other" / "samples"


def test_evidence_frame_joins_back_to_rows(tmp_path: Path) -> None:
    from analyzer import analyze, load_case
    from analyzer.notebook import evidence_frame

    case_dir = tmp_path / "c"
    case_dir.mkdir()
    (case_dir / "rpcdump.txt").write_bytes((
        "ncacn_ip_tcp(Connection-oriented TCP/IP)\r\n"
        "  10.0.100.32[3595] [38a94e72-a9bc-11d2-8faf-00c04fa378ff] MS Exchange MTA 'QAdmin' Interface :NOT_PINGED\r\n"
        "  10.0.100.32[1032] [f5cc5a18-4264-101a-8c59-08002b2f8426] MS Exchange Directory NSPI Proxy :NOT_PINGED\r\n"
    ).encode("ascii"))
    case = load_case(case_dir)
    report = analyze(case)
    finding = next(f for f in report.findings if f.evidence or any(c.evidence for c in f.causes))
    rows = evidence_frame(case, finding)
    cited = {(e.path, e.locator) for e in finding.evidence}
    cited |= {(e.path, e.locator) for c in finding.causes for e in c.evidence}
    in_table = {(str(p), str(loc)) for p, loc in zip(case.table["path"], case.table["locator"])}
    assert {(p, loc) for p, loc in zip(rows["path"], rows["locator"])} == cited & in_table
    assert len(rows) == len(cited & in_table) > 0
    for c in finding.causes:
        for e in c.evidence:
            hit = rows[(rows["path"] == e.path) & (rows["locator"] == e.locator)]
            assert not hit.empty
