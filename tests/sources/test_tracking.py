"""Message tracking: 2000/2003 TAB logs, 2007+ MSGTRK CSV, the KB 828938 trail."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from ._texthelp import ENCODINGS, SEEDS, datas, encode_variant, fixture, run


def test_exchange2003_daily_log():
    df, ctx = run("tracking", fixture("tracking_2003.log"))
    assert not ctx.warnings
    d = datas(df)
    assert len(d) == 3 and set(df["kind"]) == {"tracking_entry"}
    assert df["ts"].iloc[0] == datetime(2003, 9, 12, 22, 53, 18, tzinfo=timezone.utc)
    assert set(df["ts_source"]) == {"utc"}
    assert df["ts"].iloc[2] == datetime(2003, 9, 13, 0, 0, 5, tzinfo=timezone.utc)
    assert d[0]["event_id"] == 1019 and d[1]["event_id"] == 1028
    assert d[1]["message_id"] == "<A1B2C3@EXCH01.contoso.com>"
    assert d[0]["sender"] == "sender@fabrikam.com" and d[0]["recipients"] == ["recipient@contoso.com"]
    assert d[0]["subject"] == "Quarterly report" and "subject" not in d[1]
    assert d[0]["server"] == "EXCH01" and d[2]["sender"] is None
    assert df["locator"].iloc[0] == "line=4"


def test_exchange2003_headerless_rows(tmp_path):
    lines = fixture("tracking_2003.log").read_text(encoding="utf-8").splitlines()[3:]
    p = tmp_path / "20030912.log"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    df, _ = run("tracking", p)
    assert [x["event_id"] for x in datas(df)] == [1019, 1028, 1012]


def test_msgtrk_csv_quoted_multivalue_and_schema_reset():
    df, ctx = run("tracking", fixture("msgtrk_2010.log"))
    assert not ctx.warnings
    d = datas(df)
    assert len(d) == 3
    assert d[0]["event"] == "NOTIFYMAPI" and d[0]["source"] == "STOREDRIVER"
    assert d[0]["source_context"].startswith("MDB:61914740") and "ClientType:System" in d[0]["source_context"]
    assert d[1]["recipients"] == ["alice@contoso.com", "bob@contoso.com"]
    assert d[1]["subject"] == 'Budget, Q2 "final"' and d[1]["sender"] == "carol@fabrikam.com"
    assert d[1]["client"] == "CLIENT01" and d[1]["server"] == "EXCH10"
    # second header block (15.x schema with network-message-id) re-maps the columns
    assert d[2]["event"] == "DELIVER" and d[2]["recipients"] == ["alice@contoso.com"]
    assert d[2]["network_message_id"] == "7f3e0c1a-1111-2222-3333-444455556666"
    assert d[2]["schema_version"] == "15.02.1544.004"
    assert df["ts"].iloc[2] == datetime(2016, 4, 5, 1, 0, 5, tzinfo=timezone.utc)


def test_kb828938_trail():
    df, ctx = run("tracking", fixture("tracking_trail_kb828938.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert [x["event"] for x in d] == ["SMTP: Message Delivered Locally",
                                       "SMTP: Message Scheduled to Retry Local Delivery"] * 3
    assert all(x["recipients"] == ["recipient@contoso.com"] for x in d[0::2])
    assert [t.strftime("%H:%M:%S") for t in df["ts"]] == [
        "22:53:18", "22:53:18", "22:58:18", "22:58:18", "23:03:18", "23:03:18"]
    assert set(df["ts_source"]) == {"local"}
    assert list(df["locator"]) == ["line=1", "line=2", "line=2", "line=3", "line=3", "line=4"]


def test_kb828938_trail_from_seed(tmp_path):
    seed = SEEDS / "004_7963f6dc3f51e8fa.txt"
    if not seed.exists():
        pytest.skip("shared seeds not present")
    lines = [ln for ln in seed.read_text(encoding="utf-8").splitlines() if ln.startswith("2003-9-12")]
    p = tmp_path / "trail.txt"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    df, _ = run("tracking", p)
    assert len(df) == 6
    assert sum("Retry" in x["event"] for x in datas(df)) == 3


@pytest.mark.parametrize("variant", ENCODINGS)
@pytest.mark.parametrize("name,rows", [("tracking_2003.log", 3), ("msgtrk_2010.log", 3),
                                       ("tracking_trail_kb828938.txt", 6)])
def test_encodings(tmp_path, name, rows, variant):
    p = tmp_path / "x.log"
    p.write_bytes(encode_variant(fixture(name).read_text(encoding="utf-8"), variant))
    df, ctx = run("tracking", p)
    assert len(df) == rows and not ctx.warnings


def test_truncated_last_line(tmp_path):
    p = tmp_path / "x.log"
    p.write_bytes(encode_variant(fixture("tracking_2003.log").read_text(encoding="utf-8"), "truncated"))
    df, ctx = run("tracking", p)
    assert len(df) == 3 and [w.locator for w in ctx.warnings] == ["line=6"]
    assert list(df["parse_status"]) == ["ok", "ok", "partial"]
