"""Message tracking ``data`` fields: the same names for Exchange 2000/2003
daily logs and 2007+ MSGTRK logs (knowledge/tracking.yaml), as the
statistics and the checks read them."""
from __future__ import annotations

from pathlib import Path

import pytest

from analyzer import knowledge
from analyzer.case import load_case
from analyzer.stats import message_stats
from analyzer.table import row_data, validate

TEXT = Path(__file__).resolve().parent / "fixtures" / "text"


def _datas(case) -> list[dict]:
    return [row_data(v) for v in case.table["data"]]


def _load(name: str):
    case = load_case(TEXT / name)
    validate(case.table)
    assert case.inventory[0].status == "parsed" and not case.warnings
    return case


@pytest.fixture(scope="module")
def msgtrk_2007():
    return _load("msgtrk_2007.log")


@pytest.fixture(scope="module")
def tracking_2003():
    return _load("tracking_2003_real.log")


def test_exchange2007_fields(msgtrk_2007) -> None:
    receive, deliver, send, fail = _datas(msgtrk_2007)
    assert (receive["event"], receive["event_id"], receive["event_2007"], receive["source"]) == (
        "RECEIVE", None, "RECEIVE", "SMTP")
    assert receive["total_bytes"] == 5120 and receive["recipient_count"] == 2
    assert receive["sender"] == "alice@contoso.com"
    assert receive["recipients"] == ["bob@contoso.com", "carol@contoso.com"]
    assert receive["subject"] == "Quarterly numbers"
    assert (receive["message_id"], receive["internal_message_id"]) == ("<m1@contoso.com>", "1001")
    assert (receive["client_hostname"], receive["client_ip"]) == ("MBX01", "10.1.1.20")
    assert (receive["server_hostname"], receive["server_ip"], receive["server"]) == ("HUB01", "10.1.1.10", "HUB01")
    assert "recipient_status" not in receive  # the column is empty on RECEIVE
    assert deliver["source"] == "STOREDRIVER" and deliver["event_2007"] == "DELIVER"
    # recipient-status is aligned with recipient-address by position
    assert send["recipients"] == ["dave@fabrikam.com", "erin@fabrikam.com"]
    assert send["recipient_status"] == ["250 2.6.0 <m2@contoso.com> Queued mail for delivery", "250 2.1.5 OK"]
    assert send["subject"] == 'Re: offer, "final"' and send["total_bytes"] == 20480
    # SEND names the next hop in server-hostname; the log's server is the client
    assert (send["server_hostname"], send["server"]) == ("mx.fabrikam.com", "HUB01")
    assert list(msgtrk_2007.table["host"]) == ["HUB01"] * 4
    assert fail["recipient_status"] == ["550 5.1.1 User unknown"] and "client_hostname" not in fail
    # one name per field: the raw column names are not kept twice
    for d in _datas(msgtrk_2007):
        assert not {"sender_address", "recipient_address", "message_subject", "date_time"} & set(d)


def test_exchange2003_real_line(tracking_2003) -> None:
    submit, deliver = _datas(tracking_2003)
    assert (submit["event_id"], submit["event"], submit["event_2007"]) == (
        1019, "SMTP submitted message to AQ", "RECEIVE")
    assert (deliver["event_id"], deliver["event_2007"]) == (1028, "DELIVER")
    assert submit["total_bytes"] == 4281 and submit["recipient_count"] == 1
    assert submit["sender"] == "jtluvs2cq@wmconnect.com"
    assert submit["recipients"] == ["christina@pirnie.org"]
    assert submit["subject"] == "[SRESafeHaven] Re: More Baby Stuff"
    assert submit["message_id"] == "bh9e3f+5qvo@eGroups.com"
    assert (submit["client_hostname"], submit["client_ip"]) == ("n14.grp.scd.yahoo.com", "66.218.66.69")
    assert (submit["server_hostname"], submit["server"]) == ("PACKRAT", "PACKRAT")
    assert submit["priority"] == 0 and submit["recipient_report_status"] == 0
    # "-" is an empty value in these logs
    assert "partner" not in submit and "linked_message_id" not in submit
    assert str(tracking_2003.table["ts"].iloc[0]) == "2003-08-12 00:58:14+00:00"


def test_same_query_over_both_generations(msgtrk_2007, tracking_2003) -> None:
    both = [d for c in (msgtrk_2007, tracking_2003) for d in _datas(c)]
    received = [d for d in both if d["event_2007"] == "RECEIVE"]
    assert [d["message_id"] for d in received] == ["<m1@contoso.com>", "bh9e3f+5qvo@eGroups.com"]
    assert sum(d["total_bytes"] for d in received) == 5120 + 4281
    assert all(isinstance(d["recipients"], list) for d in both)


def test_statistics_read_the_fields(msgtrk_2007) -> None:
    stats = message_stats(msgtrk_2007.table, "server")
    row = stats.iloc[0]
    assert (row["received"], row["delivered"], row["sent"], row["failed"]) == (1, 1, 1, 1)
    assert row["bytes"] == 5120


def test_event_names_are_knowledge() -> None:
    k = knowledge.load("tracking")
    assert k["event_names"][1019] and k["event_names"][1031] == "SMTP End Outbound Transfer"
    assert set(k["event_2007"].values()) <= set(knowledge.load("smtp_mailbox")["tracking_2007_events"])


@pytest.mark.parametrize("lines", [
    ["2003-9-12\t22:53:18 GMT\t10.0.0.1", "2003-9-12\t22:53:19 GMT\t10.0.0.2"],
    ["2003-9-12\t1", "# Fields: Date\tTime", "2003-9-12\t2"],
    ["2003-9-12\t1", "", "2003-9-12\t2"],
    ["  2003-9-12\t1", "\t\t", "\x1c\tx", " #\tx", "no tab here", "x\t"],
    ["\u3000x\ty", "\xa0#\ty", "2003-9-12\t1"],
])
def test_rowlike_lines_are_those_the_row_pattern_matches(lines) -> None:
    """The block shortcut of the 2000/2003 reader says "row" for exactly
    the lines its row pattern matches, ASCII or not."""
    from analyzer.sources.tracking import _ROWLIKE, _rowlike

    want = [bool(_ROWLIKE.match(ln)) for ln in lines]
    for ascii_only in (True, False):
        if ascii_only and not all(ln.isascii() for ln in lines):
            continue
        assert [bool(x) for x in _rowlike(lines, ascii_only)] == want


def test_batches_built_on_workers_keep_rows_and_warnings_in_file_order(tmp_path, monkeypatch) -> None:
    """The 2003 reader builds the batches of its blocks on worker threads:
    rows and warnings (unreadable rows, an over-long line between blocks, a
    comment in the middle, a cut last line) come out exactly as a reader
    that builds every batch where it stands."""
    from analyzer import table
    from analyzer.archive import Limits
    from analyzer.sources import _legacytracking, tracking

    real = (Path(__file__).parent / "fixtures" / "text" / "tracking_2003_real.log").read_text(encoding="utf-8")
    head = [ln for ln in real.splitlines() if ln.startswith("#")]
    row = [ln for ln in real.splitlines() if not ln.startswith("#")][0]
    lines = list(head)
    for i in range(1200):
        lines.append(row.replace("0:58:14 GMT", f"{i % 24}:{i % 60:02d}:{i % 60:02d} GMT", 1))
        if i % 97 == 5 or (560 <= i <= 640 and i % 3 == 0):
            lines.append("2003-8-12\tnot a time\tx")          # unreadable: a warning
        if i == 600:
            lines.append("x" * 5000)                          # over-long: skipped, warned
        if i == 900:
            lines.append("# a comment in the middle")
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "20030812.log").write_text("\r\n".join(lines) + "\r\n2003-8-12\t1:00", encoding="utf-8")
    monkeypatch.setattr(tracking, "_BLOCK_CHARS", 4096)      # many blocks, several queued
    limits = Limits(max_line_chars=4000)

    def load():
        case = load_case(tmp_path / "case", limits=limits)
        (entry,) = case.inventory
        return table.rows_to_frame([]) if case.table.empty else case.table, entry

    piped, piped_entry = load()
    original = _legacytracking.LegacyBatch.flush
    monkeypatch.setattr(_legacytracking.LegacyBatch, "flush",
                        lambda self, ctx, src, wait=True: original(self, ctx, src, wait=True))
    plain, plain_entry = load()
    assert len(piped) == len(plain) >= 1200
    cols = ["ts", "locator", "data", "message", "parse_status"]
    assert piped[cols].astype(str).values.tolist() == plain[cols].astype(str).values.tolist()
    assert piped_entry.warnings == plain_entry.warnings
    assert len(piped_entry.warnings) >= 10
    assert any("line=" in w and "long" in w.lower() for w in piped_entry.warnings)


def test_a_headerless_2003_log_is_built_in_batches_not_row_by_row(tmp_path, monkeypatch) -> None:
    """Rows of a 2000/2003 log without its header gather in one batch per
    block, as a log with a header's do (one Arrow build a row made such a
    log fifty times slower); the rows are those of the same log with its
    header."""
    from analyzer.sources import _legacytracking

    real = (Path(__file__).parent / "fixtures" / "text" / "tracking_2003_real.log").read_text(encoding="utf-8")
    head = [ln for ln in real.splitlines() if ln.startswith("#")]
    rows = [ln for ln in real.splitlines() if not ln.startswith("#")] * 600
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "20030812.log").write_text("\r\n".join(rows) + "\r\n", encoding="utf-8")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "20030812.log").write_text("\r\n".join(head + rows) + "\r\n", encoding="utf-8")
    builds: list[int] = []
    real_build = _legacytracking._build

    def counting(layout, nos, *rest):
        builds.append(len(nos))
        return real_build(layout, nos, *rest)

    monkeypatch.setattr(_legacytracking, "_build", counting)
    bare = load_case(tmp_path / "bare").table
    assert len(bare) == len(rows) and len(builds) <= 3
    full = load_case(tmp_path / "full").table
    cols = ["ts", "host", "data", "message"]
    assert bare[cols].astype(str).values.tolist() == full[cols].astype(str).values.tolist()
