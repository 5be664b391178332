"""Exchange 2007+ SMTP protocol logs -> smtp_protocol rows."""
from __future__ import annotations

import pytest

from analyzer import sources
from analyzer.sources.smtplog import parse_reply

from ._texthelp import ENCODINGS, datas, encode_variant, fixture, run


def test_receive_log_rows_fields_and_repeated_header():
    df, ctx = run("smtplog", fixture("smtplog_receive_2010.log"))
    assert not ctx.warnings
    d = datas(df)
    assert len(d) == 21 and set(df["kind"]) == {"smtp_protocol"}
    assert set(df["ts_source"]) == {"utc"} and str(df["ts"].iloc[0]) == "2019-01-25 00:03:58.478000+00:00"
    assert set(df["host"]) == {"TAIL-EXCH-1"}
    first = d[0]
    assert first["log_type"] == "receive" and first["log_version"] == "14.0.0.0"
    assert first["connector_id"] == "TAIL-EXCH-1\\Internet Mail"
    assert first["session_id"] == "08D675E58CA1DA38" and first["sequence_number"] == 0
    assert (first["local_address"], first["local_port"]) == ("10.0.0.6", 25)
    assert (first["remote_address"], first["remote_port"]) == ("185.234.217.220", 61061)
    assert first["event"] == "+" and first["event_name"] == "connect"
    # the quoted 220 banner keeps its commas
    assert d[2]["data"] == ("220 TAIL-EXCH-1.tailspintoys.com Microsoft ESMTP MAIL Service ready at "
                            "Fri, 25 Jan 2019 00:03:57 +0000")
    assert d[2]["smtp_code"] == 220 and d[2]["enhanced_status"] is None
    assert d[4]["smtp_code"] == 250 and d[4]["reply_continued"] is True
    rejected = d[11]
    assert (rejected["smtp_code"], rejected["enhanced_status"]) == (550, "5.1.1")
    assert df["level"].iloc[11] == "error" and df["locator"].iloc[11] == "line=17"
    # a client command is not a reply
    assert d[10]["data"] == "RCPT TO:<nobody@tailspintoys.com>" and d[10]["smtp_code"] is None
    # second header block (service restart): new connector, same sequence number twice
    second = [x for x in d if x["session_id"] == "08D675E58CA1DB02"]
    assert [x["sequence_number"] for x in second] == [0, 1, 2, 2, 3, 4]
    assert second[2]["context"] == "Inbound AUTH LOGIN failed because of LogonDenied"
    assert second[4]["enhanced_status"] == "5.7.3"


def test_send_log_451_and_missing_local_endpoint():
    df, ctx = run("smtplog", fixture("smtplog_send_2007.log"))
    assert not ctx.warnings
    d = datas(df)
    assert {x["log_type"] for x in d} == {"send"} and d[0]["log_version"] == "8.0.0.0"
    assert d[0]["local_endpoint"] is None and d[0]["context"] == "attempting to connect"
    assert df["host"].isna().all()  # a send connector id names no server
    r451 = next(x for x in d if x["smtp_code"] == 451)
    assert r451["enhanced_status"] == "4.4.0" and r451["event"] == "<"
    assert r451["data"] == "451 4.4.0 Temporary lookup failure, try again later"
    assert df["level"].iloc[d.index(r451)] == "warning"
    assert d[-1]["context"] == "Failed connection to 192.0.2.30 (TimedOut:10060, connection attempt timed out)"


@pytest.mark.parametrize("variant", ENCODINGS)
def test_encodings(tmp_path, variant):
    p = tmp_path / "SEND20090603-1.LOG"
    p.write_bytes(encode_variant(fixture("smtplog_send_2007.log").read_text(encoding="utf-8"), variant))
    assert sources.sniff(p.read_bytes(), "x.log")[0].name == "smtplog"
    df, ctx = run("smtplog", p)
    assert len(df) == 17 and not ctx.warnings
    assert datas(df)[11]["enhanced_status"] == "4.4.0"


def test_truncated_last_line(tmp_path):
    p = tmp_path / "RECV.LOG"
    p.write_bytes(encode_variant(fixture("smtplog_send_2007.log").read_text(encoding="utf-8"), "truncated"))
    df, ctx = run("smtplog", p)
    assert len(df) == 17
    assert [(w.locator, w.message) for w in ctx.warnings] == [("line=22", "truncated last line")]
    assert df["parse_status"].iloc[-1] == "partial" and ctx.partial


def test_bad_lines_are_warnings_with_line_numbers(tmp_path):
    lines = fixture("smtplog_send_2007.log").read_text(encoding="utf-8").splitlines()
    lines.insert(8, "this line was pasted here by accident")
    lines.insert(9, "2009-06-03T10:15:01.700Z,Internet Send Connector,08CB9A2D1E3F4A10,3")
    p = tmp_path / "SEND.LOG"
    p.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    df, ctx = run("smtplog", p)
    assert len(df) == 18  # the short line is kept (partial), the garbage is not
    assert [w.locator for w in ctx.warnings] == ["line=9", "line=10"]
    assert "4 fields where the header declares 9" in ctx.warnings[1].message


def test_fragment_without_header_is_recognized(tmp_path):
    body = [ln for ln in fixture("smtplog_receive_2010.log").read_text(encoding="utf-8-sig").splitlines()
            if not ln.startswith("#")][:5]
    p = tmp_path / "pasted.txt"
    p.write_text("\n".join(body) + "\n", encoding="utf-8")
    best, score = sources.sniff(p.read_bytes(), p.name)
    assert best.name == "smtplog" and score == 80
    df, _ = run("smtplog", p)
    assert len(df) == 5 and datas(df)[2]["smtp_code"] == 220 and datas(df)[0]["log_type"] is None


def test_parse_reply():
    assert parse_reply("451 4.4.0 DNS query failed") == {"smtp_code": 451, "enhanced_status": "4.4.0",
                                                       "reply_continued": False}
    assert parse_reply("250-PIPELINING")["reply_continued"] is True
    assert parse_reply("221") == {"smtp_code": 221, "enhanced_status": None, "reply_continued": False}
    assert parse_reply("EHLO host") is None and parse_reply("1234 nope") is None
