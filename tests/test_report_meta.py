"""Report metadata: the tool version and the options a report was made
with, and the case named after the upload."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from analyzer import __version__
from analyzer.case import upload_name
from analyzer.cli import main
from analyzer.report import analyze, validate_report

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "smtp-mailbox-stuck-nested-zip"


def test_case_is_named_after_the_upload(tmp_path: Path, monkeypatch) -> None:
    archive = SAMPLE / "case" / "case-0412-828938.zip"
    assert upload_name(archive) == "case-0412-828938.zip"
    assert upload_name(SAMPLE / "case") == "smtp-mailbox-stuck-nested-zip"
    own = tmp_path / "ticket-4711"
    shutil.copytree(SAMPLE / "case", own)
    assert upload_name(own) == "ticket-4711"
    (own / "Case").mkdir()
    assert upload_name(own / "Case") == "ticket-4711"  # generic names, any case
    monkeypatch.chdir(own)
    assert upload_name(".") == "ticket-4711"
    assert analyze(archive).to_dict()["case"]["name"] == "case-0412-828938.zip"


def test_json_report_records_tool_and_options(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["analyze", str(SAMPLE / "case"), "--format", "json",
                                    "--check", "smtp-mailbox-stuck", "--registry", "full",
                                    "--max-depth", "3"])
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    validate_report(report)
    assert report["case"]["name"] == "smtp-mailbox-stuck-nested-zip"
    assert report["tool"] == {"name": "exchange-analyzer", "version": __version__}
    assert report["run"]["options"] == {"evtx_backend": "rust", "registry": "full",
                                        "checks": ["smtp-mailbox-stuck"], "format": "json",
                                        "max_depth": 3}
    assert report["run"]["files"] == {"parsed": 5, "skipped": 2}
    assert report["run"]["rows"] > 0
    # The renderings say the same.
    for fmt, needle in (("text", f"exchange-analyzer {__version__}"),
                        ("markdown", f"by exchange-analyzer {__version__}"),
                        ("html", f"exchange-analyzer {__version__}")):
        out = CliRunner().invoke(main, ["analyze", str(SAMPLE / "case"), "--format", fmt]).stdout
        assert needle in out and "smtp-mailbox-stuck-nested-zip" in out
