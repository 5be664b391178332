"""ExchangeSetup.log (Exchange 2007 and later)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ._texthelp import ENCODINGS, datas, encode_variant, fixture, run


def test_prepare_ad_errors_runs_and_continuations():
    df, ctx = run("exsetuplog", fixture("exsetup_prepare_ad.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert len(df) == 20
    assert [x["run"] for x in d] == [1] * 16 + [2] * 4
    assert df["ts"].iloc[0] == datetime(2023, 4, 11, 15, 49, 6, 92600, tzinfo=timezone.utc)
    assert set(df["ts_source"]) == {"local"}
    assert d[0]["depth"] == 2 and d[11]["depth"] == 0
    # hex and unsigned-decimal forms of the same HRESULT
    assert d[2]["error_code"] == "0X8007200A" and "Error code 0X8007200A" in df["message"].iloc[2]
    assert d[4]["error"] and d[4]["error_code"] == "0X8007200A" and df["level"].iloc[4] == "error"
    assert d[19]["error_code"] == "0XC0070005"
    # stack trace and PowerShell block folded into their records
    assert df["message"].iloc[7].count("\n   at ") == 2
    assert "install-ExsetDataAtom" in df["message"].iloc[8] and df["locator"].iloc[8] == "line=12"
    assert df["level"].iloc[9] == "error" and d[9]["marker"] == "ERROR-REFERENCE" and not d[9]["error"]
    assert sum(df["level"] == "error") == 4


def test_dot_dates_banner_blank_lines():
    df, ctx = run("exsetuplog", fixture("exsetup_recover_dots.txt"))
    assert not ctx.warnings
    assert len(df) == 12
    assert df["message"].iloc[0] == "Starting Microsoft Exchange Server 2019 Setup"
    assert df["ts"].iloc[1] == datetime(2022, 11, 14, 17, 13, 8, 7400, tzinfo=timezone.utc)
    assert set(x["run"] for x in datas(df)) == {1}
    assert list(df["level"]).count("error") == 1


def test_day_first_order_detected(tmp_path):
    text = ("[13.04.2023 09:00:00.0001] [0] **********************************************\n"
            "[13.04.2023 09:00:01.0001] [0] Setup version: 15.2.1118.7.\n"
            "[01.05.2023 09:00:01.0001] [0] End of Setup\n")
    p = tmp_path / "x.log"
    p.write_text(text, encoding="utf-8")
    df, _ = run("exsetuplog", p)
    assert df["ts"].iloc[2] == datetime(2023, 5, 1, 9, 0, 1, 100, tzinfo=timezone.utc)


@pytest.mark.parametrize("variant", ENCODINGS)
def test_encodings(tmp_path, variant):
    text = fixture("exsetup_prepare_ad.txt").read_text(encoding="utf-8")
    p = tmp_path / "ExchangeSetup.log"
    p.write_bytes(encode_variant(text, variant))
    df, ctx = run("exsetuplog", p)
    assert len(df) == 20 and not ctx.warnings


def test_truncated_last_line(tmp_path):
    text = fixture("exsetup_recover_dots.txt").read_text(encoding="utf-8").rstrip() + \
        "\n[11.14.2022 17:13:41.0001] [0] The following server roles are alr"
    p = tmp_path / "ExchangeSetup.log"
    p.write_bytes(text.encode("utf-8"))
    df, ctx = run("exsetuplog", p)
    assert [w.locator for w in ctx.warnings] == ["line=24"]
    assert df["parse_status"].iloc[-1] == "partial"
