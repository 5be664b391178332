"""Message tracking statistics (analyzer/stats.py, `exchange-analyzer stats`):
2007 and 2003 logs counted alike, messages not rows, bounds and groupings."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer import stats
from analyzer.cli import main
from analyzer.table import rows_to_frame, validate

T0 = datetime(2009, 1, 20, 8, 0, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parents[1]


def _row(ts, host, n, **data):
    data.setdefault("recipients", [])
    return {"kind": "tracking_entry", "source": "tracking", "ts": ts, "ts_source": "utc", "host": host,
            "path": "MSGTRK20090120-1.LOG", "locator": f"line={n}", "data": json.dumps(data)}


def _table(rows):
    df = rows_to_frame(rows)
    validate(df)
    return df


def _hub_2007():
    """HUB01: m1 received (logged twice, two recipients) and delivered; m2
    received and sent; m3 failed; m4 deferred; an EXPAND row counts nowhere.
    HUB02: one message received the next day."""
    r = [
        _row(T0, "HUB01", 1, event="RECEIVE", message_id="<m1>", sender="Alice@contoso.com",
             recipients=["bob@contoso.com", "carol@contoso.com"], total_bytes="1000"),
        _row(T0, "HUB01", 2, event="RECEIVE", message_id="<m1>", sender="alice@contoso.com",
             recipients=["bob@contoso.com"], total_bytes="1000"),
        _row(T0 + timedelta(seconds=2), "HUB01", 3, event="DELIVER", message_id="<m1>",
             sender="alice@contoso.com", recipients=["bob@contoso.com", "carol@contoso.com"]),
        _row(T0 + timedelta(minutes=70), "HUB01", 4, event="RECEIVE", message_id="<m2>",
             sender="bob@contoso.com", recipients=["x@fabrikam.com"], total_bytes="250"),
        _row(T0 + timedelta(minutes=71), "HUB01", 5, event="SEND", message_id="<m2>",
             sender="bob@contoso.com", recipients=["x@fabrikam.com"]),
        _row(T0 + timedelta(minutes=72), "HUB01", 6, event="FAIL", message_id="<m3>",
             sender="bob@contoso.com", recipients=["nobody@contoso.com"]),
        _row(T0 + timedelta(minutes=73), "HUB01", 7, event="DEFER", message_id="<m4>",
             sender="carol@contoso.com", recipients=["y@adatum.com"]),
        _row(T0 + timedelta(minutes=74), "HUB01", 8, event="EXPAND", message_id="<m5>",
             sender="carol@contoso.com", recipients=["dl@contoso.com"]),
        _row(T0 + timedelta(days=1), "HUB02", 9, event="RECEIVE", message_id="<m6>",
             sender="dave@contoso.com", recipients=["bob@contoso.com"], total_bytes="77"),
    ]
    return _table(r)


def test_per_server_counts_messages_not_rows() -> None:
    df = stats.message_stats(_hub_2007(), "server").set_index("server")
    assert list(df.columns) == stats.statistics() + ["bytes"]
    hub1 = df.loc["HUB01"]
    assert (hub1["received"], hub1["sent"], hub1["delivered"], hub1["failed"], hub1["deferred"]) == (2, 1, 1, 1, 1)
    assert hub1["bytes"] == 1250          # m1 once, m2
    assert df.loc["HUB02", "received"] == 1 and df.loc["HUB02", "sent"] == 0


def test_per_hour_and_day() -> None:
    hours = stats.message_stats(_hub_2007(), "hour")
    hub1 = hours[hours["server"] == "HUB01"].set_index("period")
    assert hub1.loc[T0.replace(minute=0), "received"] == 1
    assert hub1.loc[T0.replace(hour=9, minute=0), "received"] == 1
    assert hub1.loc[T0.replace(hour=9, minute=0), "failed"] == 1
    days = stats.message_stats(_hub_2007(), "day")
    assert sorted(zip(days["server"], days["period"].dt.day, days["received"])) == [
        ("HUB01", 20, 2), ("HUB02", 21, 1)]


def test_senders_are_case_insensitive_and_ranked() -> None:
    senders = stats.message_stats(_hub_2007(), "sender")
    assert senders["sender"].iloc[0] == "bob@contoso.com"       # received, sent, failed
    alice = senders.set_index("sender").loc["alice@contoso.com"]
    assert alice["received"] == 1 and alice["delivered"] == 1
    top = stats.top(_hub_2007(), "recipient", n=2, statistic="received")
    assert top["recipient"].tolist() == ["bob@contoso.com", "carol@contoso.com"]
    assert top["messages"].tolist() == [2, 1]


def test_bounds_are_utc_half_open() -> None:
    df = stats.message_stats(_hub_2007(), "server", start="2009-01-20T09:00:00", end=T0 + timedelta(days=1))
    assert df["server"].tolist() == ["HUB01"]
    assert int(df["received"].iloc[0]) == 1 and int(df["delivered"].iloc[0]) == 0


def test_exchange_2003_numeric_events() -> None:
    """1019 received by SMTP, 1028 delivered to the store, 1031 sent,
    1030 NDR; 1023 (logged before each retry of a stuck local delivery)
    counts nowhere, 1037 (retry scheduled) is deferred."""
    r = [_row(T0, "EXCH01", 1, event_id=1019, message_id="a", recipients=["u@contoso.com"], total_bytes="10"),
         _row(T0, "EXCH01", 2, event_id=1019, message_id="a", recipients=["u@contoso.com"], total_bytes="10"),
         _row(T0, "EXCH01", 3, event_id=1028, message_id="a", recipients=["u@contoso.com"]),
         _row(T0, "EXCH01", 4, event_id=1031, message_id="b", recipients=["x@fabrikam.com"]),
         _row(T0, "EXCH01", 5, event_id=1030, message_id="c", recipients=["u@contoso.com"]),
         _row(T0, "EXCH01", 6, event_id=1023, message_id="d", recipients=["v@contoso.com"]),
         _row(T0, "EXCH01", 7, event_id=1037, message_id="d", recipients=["v@contoso.com"])]
    row = stats.message_stats(_table(r), "server").iloc[0]
    assert (row["received"], row["delivered"], row["sent"], row["failed"], row["deferred"]) == (1, 1, 1, 1, 1)


def test_rows_without_message_id_count_once_each() -> None:
    r = [_row(T0, "EXCH01", 1, event_id=1019, recipients=["u@contoso.com"]),
         _row(T0, "EXCH01", 2, event_id=1019, recipients=["u@contoso.com"])]
    assert int(stats.message_stats(_table(r), "server")["received"].iloc[0]) == 2


def test_no_tracking_rows() -> None:
    empty = _table([{"kind": "event", "source": "evtx", "path": "a.evtx", "locator": "record=1"}])
    assert stats.message_stats(empty).empty
    assert stats.summary(empty) is None
    with pytest.raises(ValueError):
        stats.message_stats(empty, by="week")


def test_summary_is_json_ready() -> None:
    s = stats.summary(_hub_2007())
    json.dumps(s)
    assert s["by_server"][0]["server"] == "HUB01" and s["top_senders"][0]["sender"] == "bob@contoso.com"
    assert s["first"].startswith("2009-01-20T08:00")


def test_cli_stats_on_a_2007_and_a_2003_sample() -> None:
    res = CliRunner().invoke(main, ["stats", str(REPO / "samples/transport-busy-hub-healthy/case"),
                                    "--by", "day", "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert sum(r["received"] for r in rows) == 400 and sum(r["delivered"] for r in rows) == 400
    res = CliRunner().invoke(main, ["stats", str(REPO / "samples/smtp-mailbox-healthy-delivery/case"),
                                    "--format", "csv"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == "server,received,sent,delivered,failed,deferred,dsn,bytes"
    res = CliRunner().invoke(main, ["stats", str(REPO / "samples/transport-busy-hub-healthy/case"),
                                    "--start", "yesterday-ish"])
    assert res.exit_code == 2


def test_report_carries_statistics_and_the_page_charts_them() -> None:
    from analyzer import analyze, load_case
    from analyzer.report import validate_report

    report = analyze(load_case(REPO / "samples/transport-busy-hub-healthy/case"))
    d = report.to_dict()
    validate_report(d)
    assert d["statistics"]["by_server"][0]["received"] == 400
    from analyzer.render import render
    assert "statistic" in render(d, "html").lower()
    no_tracking = analyze(load_case(REPO / "samples/windows-server-no-exchange/case")).to_dict()
    assert "statistics" not in no_tracking
