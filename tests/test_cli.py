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
    assert res.exit_code == 2, res.output  # nothing a parser reads
    report = json.loads(res.stdout)
    validate_report(report)
    assert report["verdict"]["exit_code"] == 2 and report["verdict"]["status"] == "unreadable"
    paths = {e["path"]: e["status"] for e in report["inventory"]}
    assert paths == {"evil.zip": "partial", "evil.zip!../../escape.txt": "rejected",
                     "readme.txt": "skipped", "unknown.bin": "skipped"}


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_formats_render(plain_case: Path, fmt: str, tmp_path: Path) -> None:
    out = tmp_path / f"report.{fmt}"
    res = CliRunner().invoke(main, ["analyze", str(plain_case), "--format", fmt, "-o", str(out)])
    assert res.exit_code == 2, res.output
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
    assert res.exit_code == 2  # an empty folder: nothing readable
    (f,) = json.loads(res.stdout)["findings"]
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
    assert res.returncode == 2, res.stderr  # an empty folder is never "healthy"
    assert "Nothing readable: the case holds no files" in res.stderr
    validate_report(json.loads(res.stdout))


def test_commands_end_without_teardown_yet_write_everything(tmp_path: Path) -> None:
    """``parse`` and ``analyze`` leave with ``os._exit`` (no interpreter
    teardown): the Parquet file, the inventory, the report and their exit
    codes are complete all the same."""
    from analyzer import table

    case_dir = REPO / "samples" / "smtp-mailbox-stuck-evtx" / "case"
    out = tmp_path / "t.parquet"
    res = subprocess.run([sys.executable, "-m", "analyzer", "parse", str(case_dir), "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert len(table.read_parquet(out)) == len(load_case(case_dir).table) > 0
    assert json.loads((tmp_path / "t.inventory.json").read_text(encoding="utf-8"))
    res = subprocess.run([sys.executable, "-m", "analyzer", "analyze", str(case_dir), "--format", "json"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stderr  # a problem found
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
        assert res.exit_code in (0, 1, 3), res.output
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
    assert res.exit_code == 2 and (tmp_path / "new" / "r.txt").is_file()
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


# --------------------------------------------------------------------------
# Exit codes and the verdict line: 0 decided, 1 problem, 2 nothing readable,
# 3 no verdict. Never 0 for an upload a check could not use.

def _first_lines(case: Path) -> dict[str, str]:
    """The verdict line of each format (JSON: its verdict field)."""
    import re

    out = {}
    for fmt in ("text", "markdown", "html", "json"):
        res = CliRunner().invoke(main, ["analyze", str(case), "--format", fmt])
        if fmt == "json":
            report = json.loads(res.stdout)
            validate_report(report)
            out[fmt] = report["verdict"]["summary"]
            out["exit"] = res.exit_code
            assert report["verdict"]["exit_code"] == res.exit_code
        elif fmt == "html":
            body = res.stdout.split("<body", 1)[1].split(">", 1)[1]
            out[fmt] = re.sub(r"<[^>]+>", "", body.split("</p>", 1)[0])
        elif fmt == "markdown":
            first = res.stdout.splitlines()[0]
            assert first.startswith("**") and first.endswith("**")
            out[fmt] = first.strip("*")
        else:
            out[fmt] = res.stdout.splitlines()[0]
    return out


def _write_documents(folder: Path) -> None:
    """Real documents written by real writers: matplotlib (PDF, PNG), the
    standard library's e-mail package, zipfile (an Office Open XML file),
    and a copy of this interpreter (an executable)."""
    import shutil
    from email.message import EmailMessage

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(folder / "queue-graph.pdf", format="pdf")
    fig.savefig(folder / "screenshot.png", format="png")
    plt.close(fig)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "admin@contoso.com", "support@example.com", "logs"
    msg.set_content("The logs you asked for.")
    (folder / "mail.eml").write_bytes(bytes(msg))
    with zipfile.ZipFile(folder / "notes.docx", "w") as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.'
                    'openxmlformats.org/package/2006/content-types"/>')
        zf.writestr("word/document.xml", '<?xml version="1.0"?><w:document xmlns:w="http://schemas.'
                    'openxmlformats.org/wordprocessingml/2006/main"/>')
    shutil.copyfile(sys.executable, folder / "tool")


def test_empty_folder_exits_2_in_every_format(tmp_path: Path) -> None:
    lines = _first_lines(tmp_path)
    assert lines.pop("exit") == 2
    assert set(lines.values()) == {"Nothing readable: the case holds no files"}, lines


def test_pdf_renamed_netstat_txt_is_named_and_exits_2(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    _write_documents(docs)
    case = tmp_path / "case"
    case.mkdir()
    (docs / "queue-graph.pdf").rename(case / "netstat.txt")
    res = CliRunner().invoke(main, ["analyze", str(case), "--format", "json"])
    assert res.exit_code == 2, res.output
    (entry,) = json.loads(res.stdout)["inventory"]
    assert entry["kind"] == "pdf" and entry["status"] == "skipped"
    assert entry["detail"].startswith("PDF document")
    assert "could be read" in res.stderr


def test_folder_of_unrelated_documents_exits_2_naming_each(tmp_path: Path) -> None:
    _write_documents(tmp_path)
    lines = _first_lines(tmp_path)
    assert lines.pop("exit") == 2
    assert all(v.startswith("Nothing readable: none of the ") for v in lines.values()), lines
    res = CliRunner().invoke(main, ["analyze", str(tmp_path), "--format", "json"])
    kinds = {e["path"]: e["kind"] for e in json.loads(res.stdout)["inventory"]}
    assert kinds["queue-graph.pdf"] == "pdf" and kinds["screenshot.png"] == "image"
    assert kinds["mail.eml"] == "e-mail" and kinds["tool"] == "executable"
    # The text report groups what it could not read, by reason, near the top.
    text = CliRunner().invoke(main, ["analyze", str(tmp_path)]).stdout
    head = text.split("=" * 20)[0]
    assert "Files not fully read:" in head
    for reason in ("skipped, 1 file: PDF document", "skipped, 1 file: image",
                   "skipped, 1 file: e-mail message"):
        assert reason in head, head


def test_files_read_but_nothing_to_decide_exits_3() -> None:
    lines = _first_lines(REPO / "samples" / "windows-server-no-exchange" / "case")
    assert lines.pop("exit") == 3
    assert all(v.startswith("No verdict: none of the 4 files (4 parsed)") for v in lines.values()), lines


def test_healthy_sample_exits_0_and_problem_sample_exits_1() -> None:
    lines = _first_lines(REPO / "samples" / "rpc-port-conflict-healthy-static-ports" / "case")
    assert lines.pop("exit") == 0
    assert all(v.startswith("No problem found: 2 checks decided (rpc-port-conflict on EXCH01; store-crash on")
               for v in lines.values()), lines
    lines = _first_lines(REPO / "samples" / "rpc-port-conflict-static-port-in-use" / "case")
    assert lines.pop("exit") == 1
    assert all(v.startswith("Problem found: rpc-port-conflict on EXCH01 (static-port-in-use, ")
               for v in lines.values()), lines


def test_verdict_policy_is_the_library_s() -> None:
    """Report.exit_code is the verdict; inconclusive alone is no verdict,
    ok beside inconclusive decided, nothing readable beats ok."""
    from analyzer.report import decide

    parsed = [{"status": "parsed", "source": "evtx"}]
    only_archive = [{"status": "parsed", "source": "archive"}, {"status": "skipped", "source": None}]

    def f(status: str) -> dict:
        return {"check": "c", "host": "H", "status": status, "causes": []}

    assert decide(parsed, [f("inconclusive"), f("not_applicable")]).exit_code == 3
    assert decide(parsed, [f("ok"), f("inconclusive")]).exit_code == 0
    assert decide(parsed, [f("ok"), f("problem")]).exit_code == 1
    assert decide(only_archive, [f("ok")]).exit_code == 2
    assert decide(parsed, []).exit_code == 3


def test_registry_full_reaches_the_loader(tmp_path: Path, monkeypatch) -> None:
    """--registry full loads keys outside the targeted subtrees, in parse
    and in analyze (the option was once shadowed by a module import)."""
    sample = REPO / "samples" / "rpc-port-conflict-healthy-static-ports" / "case"
    run_key = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run"
    keys = {}
    for mode in ("targeted", "full"):
        out = tmp_path / f"{mode}.parquet"
        res = CliRunner().invoke(main, ["parse", str(sample), "-o", str(out), "--registry", mode])
        assert res.exit_code == 0, res.output
        keys[mode] = set(pd.read_parquet(out)["key"].dropna())
    assert run_key not in keys["targeted"] and run_key in keys["full"]

    class Probe(checks.Check):
        id = "test-registry-probe"
        title = description = "probe"

        def run(self, case):
            loaded = bool((case.table["key"] == run_key).any())
            return [Finding(self.id, self.title, "problem", "info", f"run key loaded: {loaded}")]

    monkeypatch.setitem(checks._REGISTRY, Probe.id, Probe())
    for mode, loaded in (("targeted", False), ("full", True)):
        res = CliRunner().invoke(main, ["analyze", str(sample), "--check", Probe.id, "--format", "json",
                                        "--registry", mode])
        assert json.loads(res.stdout)["findings"][0]["summary"] == f"run key loaded: {loaded}"


def test_batch_warns_when_a_folder_of_folders_is_one_case(tmp_path: Path) -> None:
    """batch DIR where DIR holds only case folders: one case, as documented,
    with a warning on stderr and in the summary's reason."""
    from datetime import datetime, timezone

    from analyzer.synth.evt import EvtRecord, write_evt

    incoming = tmp_path / "incoming"
    for host in ("EXCH01", "EXCH02"):
        (incoming / host).mkdir(parents=True)
        write_evt(incoming / host / "SysEvent.Evt",
                  [EvtRecord(7036, "Service Control Manager", datetime(2007, 3, 12, tzinfo=timezone.utc),
                             computer=host, strings=["Service", "running"])])
    store = tmp_path / "store"
    res = CliRunner().invoke(main, ["batch", str(incoming), "--store", str(store), "-j", "1",
                                    "--registry", "targeted"])
    assert res.exit_code == 0, res.output
    assert "warning:" in res.stderr and "holds only folders (2: EXCH01, EXCH02)" in res.stderr
    assert "spans 2 hosts (EXCH01, EXCH02)" in res.stderr
    summary = pd.read_csv(store / "summary.csv")
    assert len(summary) == 1 and "holds only folders" in summary["reason"][0]
