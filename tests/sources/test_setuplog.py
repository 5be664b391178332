"""Exchange 2000/2003 Setup Progress.log and Exchange 5.5 Setup.log."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest

from analyzer.case import load_case

from ._texthelp import ENCODINGS, SEEDS, datas, encode_variant, fixture, run


def test_seed000_empkp_process_run_from_wrapped_createprocess():
    df, ctx = run("setuplog", fixture("setup_progress_seed000.txt"))
    assert not ctx.warnings
    procs = df[df["kind"] == "setup_process"]
    assert len(procs) == 1
    d = datas(procs)[0]
    assert d["command_line"] == '"C:\\Program Files\\Exchsrvr\\bin\\empkp.exe" /regserver'
    assert d["image"] == "empkp.exe"
    assert d["working_dir"] == "C:\\Program Files\\Exchsrvr\\bin"
    assert (d["timeout_ms"], d["exit_code"], d["exit_code_int"], d["id"]) == (60000, "00000000", 0, "31259")
    assert procs["locator"].iloc[0] == "line=2"
    lines = df[df["kind"] == "setup_line"]
    assert len(lines) == 4  # the wrapped CreateProcess line is one row
    first = datas(lines)[0]
    assert first["copy_dst"] == "c:\\program files\\exchsrvr\\bin\\empkp.exe"
    assert first["time"] == "18:22:01" and first["run"] == 1
    # no header with a date: date-less
    assert set(df["ts_source"]) == {"date-less"} and df["ts"].isna().all()


def test_seed000_lines_inside_the_article(tmp_path):
    seed = SEEDS / "000_f5c114eeaf07cdcd.txt"
    if not seed.exists():
        pytest.skip("shared seeds not present")
    lines = seed.read_text(encoding="utf-8").splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("[18:22:01]"))
    p = tmp_path / "Exchange Server Setup Progress.log"
    p.write_text("\n".join(lines[start:start + 6]) + "\n", encoding="utf-8")
    df, _ = run("setuplog", p)
    d = datas(df[df["kind"] == "setup_process"])
    assert len(d) == 1 and d[0]["image"] == "empkp.exe" and d[0]["exit_code_int"] == 0


def test_ignoring_previous_errors_block():
    df, ctx = run("setuplog", fixture("setup_progress_ignoring.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert len(df) == 5
    errs = [x for x, lvl in zip(d, df["level"]) if lvl == "error"]
    assert len(errs) == 2
    assert all(x["ignored"] and x["error_code"] == "0XC0070424" and x["error_code_dec"] == 1060
               for x in errs)
    assert all(x["scope"] == "CAtomServices::ScStopAtomServices" for x in errs)
    ign = df["message"].iloc[3]
    assert ign.startswith("=== IGNORING PREVIOUS ERRORS ===") and "svcmgr.cxx:537" in ign
    assert list(df["locator"]) == ["line=1", "line=2", "line=4", "line=6", "line=9"]


def test_markdown_debris_and_unignored_errors():
    df, _ = run("setuplog", fixture("setup_progress_markdown.txt"))
    d = datas(df)
    errs = [x for x, lvl in zip(d, df["level"]) if lvl == "error"]
    assert [x["error_code"] for x in errs] == ["0X80072030", "0XC103FC97"]
    assert not any(x["ignored"] for x in errs)
    assert "\u201cMicrosoft Exchange Server\u201d" in df["message"].iloc[4]  # &#8220; decoded
    assert df["message"].iloc[-1] == "Leaving ScSetupExchangeVirtualServer"


def test_redacted_times():
    df, _ = run("setuplog", fixture("setup_progress_redacted.txt"))
    assert len(df) == 4 and set(df["ts_source"]) == {"none"}
    assert list(df["level"]) == ["information", "error", "error", "information"]


def test_runs_dates_rollover_and_copy():
    df, ctx = run("setuplog", fixture("setup_progress_multirun.txt"))
    d = datas(df)
    assert [x["run"] for x in d] == [1] * 10 + [2] * 3 + [3] * 3
    ts = df["ts"]
    assert ts.iloc[1] == datetime(2004, 5, 21, 9, 51, 56, tzinfo=timezone.utc)
    assert df["ts_source"].iloc[1] == "local"
    # midnight rollover advances the date
    assert ts.iloc[6] == datetime(2004, 5, 22, 0, 0, 2, tzinfo=timezone.utc)
    # run 2 has no header: date-less; run 3's header is day-first (21/06)
    assert set(df["ts_source"].iloc[10:13]) == {"date-less"}
    assert ts.iloc[14] == datetime(2004, 6, 21, 8, 0, tzinfo=timezone.utc)
    copy = d[3]
    assert copy["copy_src"] == "E:\\SETUP\\I386\\EXCHANGE\\BIN\\empkp.exe"
    assert copy["copy_dst"] == "C:\\Program Files\\Exchsrvr\\bin\\empkp.exe"
    proc = d[7]
    assert df["kind"].iloc[7] == "setup_process" and proc["exit_code"] == "80070005"
    assert proc["exit_code_int"] == 0x80070005 and df["level"].iloc[7] == "error"
    assert proc["id"] == "4711"
    # a timestamp alone on its line, message wrapped below it
    assert df["message"].iloc[11].startswith("Prerequisites for Microsoft Exchange Instant")
    assert "assigned the action \"Install\" because:" in df["message"].iloc[11]
    assert any("inferred" in n for n in ctx.notes)


def test_exchange55_setup_log():
    df, _ = run("setuplog", fixture("setup55.txt"))
    lines = df[df["kind"] == "setup_line"]
    assert len(lines) == 5 and set(lines["ts_source"]) == {"none"}
    assert lines["message"].iloc[1].endswith('"Event logging files">')
    proc = datas(df[df["kind"] == "setup_process"])
    assert proc[0]["image"] == "mtacheck.exe" and proc[0]["exit_code"] is None


@pytest.mark.parametrize("variant", ENCODINGS)
def test_encodings(tmp_path, variant):
    text = fixture("setup_progress_ignoring.txt").read_text(encoding="utf-8")
    p = tmp_path / "setup.txt"
    p.write_bytes(encode_variant(text, variant))
    df, ctx = run("setuplog", p)
    assert len(df) == 5 and not ctx.warnings
    assert sum(x["ignored"] for x in datas(df)) == 2


def test_truncated_last_line(tmp_path):
    text = fixture("setup_progress_markdown.txt").read_text(encoding="utf-8")
    p = tmp_path / "setup.txt"
    p.write_bytes(encode_variant(text, "truncated"))
    df, ctx = run("setuplog", p)
    assert [w.locator for w in ctx.warnings] == ["line=8"]
    assert df["parse_status"].iloc[-1] == "partial"


def test_load_case(tmp_path):
    (tmp_path / "c").mkdir()
    shutil.copy(fixture("setup_progress_seed000.txt"), tmp_path / "c" / "log1.txt")
    case = load_case(tmp_path / "c")
    assert case.inventory[0].source == "setuplog"
    assert (case.table["kind"] == "setup_process").sum() == 1
