"""The terminal report: a summary table first, each problem once with its
top cause, de-duplicated evidence with times and its fixes; short lines for
ok / n/a; colour only on a terminal; --verbose prints everything."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.render import render
from analyzer.render.text import MARK, colorize, render_text, render_text_full
from analyzer.report import analyze

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "samples" / "smtp-mailbox-stuck-nested-zip" / "case"
SAMPLES = ["smtp-mailbox-stuck-nested-zip", "rpc-port-conflict-static-port-in-use",
           "mom9986-helper-path-invalid", "smtp-mailbox-healthy-delivery"]


@pytest.fixture(scope="module")
def quickstart() -> dict:
    return analyze(QUICKSTART).to_dict()


def _blocks(text: str) -> dict[str, str]:
    """Finding blocks of the short report, by their ``[STATUS] check`` head."""
    body = text.split("=" * 80, 1)[1]
    out: dict[str, str] = {}
    key = None
    for line in body.splitlines():
        m = re.match(r"\[(PROBLEM|INCONCLUSIVE|OK|N/A)\] ([\w-]+)", line)
        if m:
            key = m.group(2)
            out[key] = ""
        elif not line.strip():
            key = None
        if key:
            out[key] += line + "\n"
    return out


def test_quickstart_fits_a_screen_and_leads_with_the_summary(quickstart) -> None:
    text = render_text(quickstart)
    lines = text.splitlines()
    full = render_text_full(quickstart).splitlines()
    print(f"quickstart text report: {len(lines)} lines (--verbose: {len(full)})")
    assert len(lines) <= 120 < len(full)
    assert all(len(x) <= 80 for x in lines)
    table_at = next(i for i, x in enumerate(lines) if x.startswith("HOST") and "TOP CAUSE" in x)
    assert table_at < 12
    head = lines[table_at: lines.index("=" * 80)]
    for f in quickstart["findings"]:
        row = next(x for x in head if f" {f['check']} " in x)
        assert MARK[f["status"]] in row
    problem = next(f for f in quickstart["findings"] if f["status"] == "problem")
    top = problem["causes"][0]
    assert top["id"] in "".join("".join(head).split())  # the column wraps long ids


def test_problem_evidence_once_with_times_and_fixes_once(quickstart) -> None:
    blocks = _blocks(render_text(quickstart))
    problem = next(f for f in quickstart["findings"] if f["status"] == "problem")
    block = blocks[problem["check"]]
    top = problem["causes"][0]
    for ev in top["evidence"] + problem["evidence"]:
        # Every cited record appears, once, with its time.
        assert block.count(ev["locator"] + " ") + block.count(ev["locator"] + ":") == 1, ev["locator"]
        if ev["ts"]:
            stamp = ev["ts"][:19].replace("T", " ")
            assert f"{ev['locator']} {stamp}" in block
    assert block.count("Fix:") == 1 and "What to do" not in block
    firsts = [str(r).splitlines()[0] for r in top["remediation"]]
    for first in firsts:
        assert " ".join(block.split()).count(" ".join(first.split())) == 1, first
    for c in problem["causes"][1:]:
        if c["verdict"] != "ruled_out":
            assert c["id"] in block and c["title"] not in block


@pytest.mark.parametrize("name", SAMPLES)
def test_ok_and_na_are_one_line_and_only_problems_have_fixes(name: str) -> None:
    report = analyze(REPO / "samples" / name / "case").to_dict()
    blocks = _blocks(render_text(report))
    for f in report["findings"]:
        block = blocks[f["check"]]
        if f["status"] in ("ok", "not_applicable"):
            assert block.count("\n") == 1, block
        if f["status"] != "problem":
            assert "Fix:" not in block
        if f["status"] == "inconclusive":
            assert all(" ".join(c.split())[:40] in " ".join(block.split()) for c in f["collect"])


def test_verbose_shows_every_cause_and_step(quickstart) -> None:
    text = render(quickstart, "text", verbose=True)
    flat = "".join(text.split())  # long words are cut across lines
    for f in quickstart["findings"]:
        if f["status"] == "not_applicable":  # one line: the check's world is not this host's
            assert f["check"] in flat
            continue
        for c in f["causes"]:
            assert c["id"] in flat
            if c["verdict"] == "ruled_out":  # its fix is no action to take
                continue
            for r in c["remediation"]:
                assert "".join(str(r).split()[:6]) in flat


def test_cli_plain_without_a_terminal_and_verbose_flag(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["analyze", str(QUICKSTART)])
    assert res.exit_code == 1
    assert "\x1b[" not in res.stdout and res.stdout.startswith("Problem found: ")
    assert res.stdout.splitlines()[2].startswith("exchange-analyzer report: ")
    res_v = CliRunner().invoke(main, ["analyze", str(QUICKSTART), "--verbose"])
    assert len(res_v.stdout.splitlines()) > len(res.stdout.splitlines())
    assert "version: 1" in res_v.stdout and "version: 1" not in res.stdout  # the LDIF
    res_j = CliRunner().invoke(main, ["analyze", str(QUICKSTART), "--format", "json", "--verbose"])
    assert json.loads(res_j.stdout)["run"]["options"]["verbose"] is True


def test_colour_marks_status_labels_only() -> None:
    text = "HOST  CHECK  PROBLEM  x\n[OK] a: OK/NOT here NOTOK\n[N/A] b"
    styled = colorize(text)
    assert styled.plain == text
    spans = {text[s.start:s.end]: str(s.style) for s in styled.spans}
    assert spans == {"PROBLEM": "bold red", "OK": "bold green", "N/A": "dim"}
    assert len(styled.spans) == 3
    verdict = colorize("No verdict: no check could decide\nrest")
    assert [(verdict.plain[x.start:x.end], str(x.style)) for x in verdict.spans] == \
        [("No verdict:", "bold yellow")]
