"""CLI exit codes, outputs and the JSON report contract."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from analyzer import checks, load_case
from analyzer.cli import main
from analyzer.findings import Cause, Evidence, Finding
from analyzer.report import Report, validate_report

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def plain_case(tmp_path: Path) -> Path:
    case = tmp_path / "case"
    case.mkdir()
    (case / "unknown.bin").write_bytes(b"\x00\x01garbage" * 100)
    (case / "readme.txt").write_text("hello\r\n")
    with zipfile.ZipFile(case / "evil.zip", "w") as zf:
        zf.writestr("../../escape.txt", "x")
    return case


def test_analyze_json_validates_and_lists_everything(plain_case: Path) -> None:
    res = CliRunner().invoke(main, ["analyze", str(plain_case), "--format", "json"])
    assert res.exit_code in (0, 1), res.output
    report = json.loads(res.output)
    validate_report(report)
    paths = {e["path"]: e["status"] for e in report["inventory"]}
    assert paths == {"evil.zip": "partial", "evil.zip!../../escape.txt": "rejected",
                     "readme.txt": "skipped", "unknown.bin": "skipped"}


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_formats_render(plain_case: Path, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"report.{fmt}"
    res = CliRunner().invoke(main, ["analyze", str(plain_case), "--format", fmt, "-o", str(out)])
    assert res.exit_code in (0, 1), res.output
    text = out.read_text()
    assert "escape.txt" in text
    if fmt == "text":
        assert max(len(line) for line in text.splitlines()) <= 80


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["analyze", str(tmp_path / "missing")]).exit_code == 2
    assert runner.invoke(main, ["analyze"]).exit_code == 2
    assert runner.invoke(main, ["analyze", str(tmp_path), "--format", "pdf"]).exit_code == 2
    assert runner.invoke(main, ["analyze", str(tmp_path), "--check", "no-such-check"]).exit_code == 2


def test_exit_1_when_a_problem_is_found(tmp_path: Path, monkeypatch) -> None:
    """Exit code follows the findings: a registered check reporting a problem -> 1."""
    class Always(checks.Check):
        id = "test-always-problem"
        title = "test"
        description = "test"

        def run(self, case):
            return [Finding(self.id, self.title, "problem", "error", "boom")]

    monkeypatch.setitem(checks._REGISTRY, Always.id, Always())
    res = CliRunner().invoke(main, ["analyze", str(tmp_path), "--check", Always.id])
    assert res.exit_code == 1
    assert "[PROBLEM] test-always-problem" in res.output


def test_crashing_check_becomes_inconclusive(tmp_path: Path, monkeypatch) -> None:
    class Crash(checks.Check):
        id = "test-crash"
        title = "crash"
        description = "crash"

        def run(self, case):
            raise RuntimeError("bad day")

    monkeypatch.setitem(checks._REGISTRY, Crash.id, Crash())
    res = CliRunner().invoke(main, ["analyze", str(tmp_path), "--check", Crash.id, "--format", "json"])
    assert res.exit_code == 0
    (f,) = json.loads(res.output)["findings"]
    assert f["status"] == "inconclusive" and "bad day" in f["summary"]


def test_parse_writes_parquet_and_inventory(plain_case: Path, tmp_path: Path) -> None:
    out = tmp_path / "events.parquet"
    res = CliRunner().invoke(main, ["parse", str(plain_case), "--output", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert "event_id" in df.columns
    inv = json.loads((tmp_path / "events.inventory.json").read_text())
    assert len(inv) == 4


def test_checks_command_lists_every_check() -> None:
    res = CliRunner().invoke(main, ["checks"])
    assert res.exit_code == 0
    flat = " ".join(res.output.split())
    for chk in checks.registered():
        assert chk.id in flat and " ".join(chk.title.split()) in flat
    assert max(len(line) for line in res.output.splitlines()) <= 80


def test_every_command_and_check_is_documented() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in main.commands:
        assert f"exchange-analyzer {name}" in readme, f"README does not document `{name}`"
    for chk in checks.registered():
        assert chk.id in readme, f"README does not document check {chk.id}"


def test_python_m_entry_point(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(tmp_path),
                          "--format", "json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    validate_report(json.loads(res.stdout))


def test_schema_rejects_a_renamed_field(tmp_path: Path) -> None:
    import jsonschema

    case = load_case(tmp_path)
    f = Finding("x", "t", "problem", "error", "s",
                causes=[Cause("c", "t", "likely", "e", [Evidence("p", "line=1", None, "x")])])
    report = Report(case, [f]).to_dict()
    validate_report(report)
    report["findings"][0]["causes"][0]["verdict"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(report)
    report = Report(case, [f]).to_dict()
    report["findings"][0]["cause"] = report["findings"][0].pop("causes")
    with pytest.raises(jsonschema.ValidationError):
        validate_report(report)


def test_readme_quickstart_is_two_true_commands() -> None:
    """The Quickstart has exactly two commands; the sample it analyzes exists
    and the test command is the one .ci/run runs."""
    import re
    import shlex

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quick, flags=re.S)
    commands = [line for b in blocks for line in b.strip().splitlines() if line.strip()]
    assert len(commands) == 2, commands
    install_and_analyze, test_command = commands
    words = shlex.split(install_and_analyze)
    sample = Path(words[words.index("analyze") + 1])
    assert (REPO / sample).is_dir(), f"Quickstart sample {sample} does not exist"
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines(), ".ci/run must run exactly the README's test command"


def test_attachments_are_written_only_where_asked(tmp_path: Path, monkeypatch) -> None:
    class Attach(checks.Check):
        id = "test-attach"
        title = "attach"
        description = "attach"

        def run(self, case):
            return [Finding(self.id, self.title, "problem", "error", "s", host="EXCH01",
                            attachments={"new-object.ldf": "dn: CN=x\r\nchangetype: add\r\n"})]

    monkeypatch.setitem(checks._REGISTRY, Attach.id, Attach())
    case = tmp_path / "case"
    case.mkdir()
    out = tmp_path / "attach"
    res = CliRunner().invoke(main, ["analyze", str(case), "--check", Attach.id, "--format", "json",
                                    "--attachments", str(out)])
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    validate_report(report)
    assert report["findings"][0]["attachments"] == {"new-object.ldf": "dn: CN=x\r\nchangetype: add\r\n"}
    assert (out / "test-attach-EXCH01-new-object.ldf").read_bytes() == b"dn: CN=x\r\nchangetype: add\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attach", "case"]


def test_text_report_of_every_sample_fits_80_columns() -> None:
    samples = sorted((REPO / "samples").glob("*/case"))
    assert samples
    for case in samples:
        res = CliRunner().invoke(main, ["analyze", str(case)])
        assert res.exit_code in (0, 1), res.output
        too_long = [line for line in res.stdout.splitlines() if len(line) > 80]
        assert not too_long, (case, too_long[:3])


def test_text_wrap_cuts_long_keys_at_separators() -> None:
    from analyzer.render.text import _wrap

    key = r"HKLM\SOFTWARE\Classes\CLSID\{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}\LocalServer32"
    lines = _wrap(f"key={key} done", 60, "  ")
    assert all(len(line) <= 60 for line in lines)
    assert " ".join(line.strip() for line in lines).replace("\\ ", "\\") == f"key={key} done"
    assert lines[0].endswith("\\")  # cut after a backslash, not inside the GUID


def test_output_paths_are_checked_before_loading(tmp_path: Path, plain_case: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["analyze", str(plain_case), "-o", str(tmp_path / "new" / "r.txt")])
    assert res.exit_code in (0, 1) and (tmp_path / "new" / "r.txt").is_file()
    (tmp_path / "adir").mkdir()
    res = runner.invoke(main, ["analyze", str(plain_case), "-o", str(tmp_path / "adir")])
    assert res.exit_code == 2 and "is a directory" in res.output
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = runner.invoke(main, ["parse", str(plain_case), "-o", str(blocker / "e.parquet")])
    assert res.exit_code == 2 and "cannot write" in res.output and "Traceback" not in res.output


def test_unreadable_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    res = CliRunner().invoke(main, ["analyze", str(bad), "--format", "json"])
    assert res.exit_code == 2
    report = json.loads(res.stdout)
    validate_report(report)
    assert report["inventory"][0]["status"] == "failed"
    assert "could be read" in res.stderr


def test_markup_like_names_do_not_break_progress(tmp_path: Path) -> None:
    from analyzer.cli import _progress

    class TTY:
        def isatty(self) -> bool:
            return True

        def write(self, s: str) -> int:
            return len(s)

        def flush(self) -> None:
            pass

    import sys as _sys
    old = _sys.stderr
    _sys.stderr = TTY()
    try:
        with _progress(True) as cb:
            cb("evil.zip![/oops]")
    finally:
        _sys.stderr = old


def test_silent_check_and_evidence_free_ok_are_not_reported_as_ok(tmp_path: Path, monkeypatch) -> None:
    """The framework enforces 'never a silent ok': a check returning nothing
    is not_applicable, an ok without evidence is inconclusive."""
    class Silent(checks.Check):
        id = "test-silent"
        title = description = "silent"

        def run(self, case):
            return []

    class BareOk(checks.Check):
        id = "test-bare-ok"
        title = description = "bare ok"

        def run(self, case):
            return [Finding(self.id, self.title, "ok", "info", "fine")]

    monkeypatch.setitem(checks._REGISTRY, Silent.id, Silent())
    monkeypatch.setitem(checks._REGISTRY, BareOk.id, BareOk())
    res = CliRunner().invoke(main, ["analyze", str(tmp_path), "--check", Silent.id,
                                    "--check", BareOk.id, "--format", "json"])
    got = {f["check"]: f["status"] for f in json.loads(res.stdout)["findings"]}
    assert got == {"test-silent": "not_applicable", "test-bare-ok": "inconclusive"}


def test_text_report_escapes_controls_and_counts_wide_characters(tmp_path: Path, monkeypatch) -> None:
    from analyzer.render.text import _cols

    class Loud(checks.Check):
        id = "test-loud"
        title = description = "loud"

        def run(self, case):
            return [Finding(self.id, self.title, "problem", "error",
                            "evil\x1b]0;PWNED\x07 " + "イベントログ" * 12 + " \u202eevil")]

    monkeypatch.setitem(checks._REGISTRY, Loud.id, Loud())
    res = CliRunner().invoke(main, ["analyze", str(tmp_path), "--check", Loud.id])
    assert "\x1b" not in res.stdout and "\u202e" not in res.stdout
    assert "\\x1b]0;PWNED\\x07" in res.stdout
    assert max(_cols(line) for line in res.stdout.splitlines()) <= 80
