"""tasklist /svc and plain tasklist -> process rows."""
from __future__ import annotations

import pytest

from ._texthelp import ENCODINGS, datas, encode_variant, fixture, run


def test_svc_wrapped_services_and_truncated_names():
    df, ctx = run("tasklist", fixture("tasklist_svc.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert len(d) == 9 and set(df["kind"]) == {"process"}
    by = {x["image"]: x for x in d}
    assert by["svchost.exe"]["services"] == ["BrokerInfrastructure", "DcomLaunch", "Power",
                                             "SystemEventsBroker"]
    assert by["inetinfo.exe"]["services"] == ["IISADMIN", "IMAP4Svc", "POP3Svc", "RESvc",
                                              "SMTPSVC", "W3SVC"]
    assert by["store.exe"] == {"image": "store.exe", "pid": 2244, "truncated": False,
                               "services": ["MSExchangeIS"]}
    assert by["System Idle Process"]["services"] == []
    assert by["Microsoft.Exchange.Store."]["truncated"] is True
    assert df["locator"].iloc[3] == "line=7"


def test_padded_to_80_columns():
    df, _ = run("tasklist", fixture("tasklist_padded.txt"))
    assert datas(df)[1]["services"] == ["KeyIso", "SamSs"]


def test_plain_tasklist_mem_usage():
    d = datas(run("tasklist", fixture("tasklist_plain.txt"))[0])
    assert [x["mem_usage_kb"] for x in d] == [8, 1232, 812344]
    assert d[2]["session_name"] == "Services" and d[2]["services"] is None


@pytest.mark.parametrize("variant", ENCODINGS)
def test_encodings(tmp_path, variant):
    p = tmp_path / "tl.txt"
    p.write_bytes(encode_variant(fixture("tasklist_svc.txt").read_text(encoding="utf-8"), variant))
    df, ctx = run("tasklist", p)
    assert len(df) == 9 and not ctx.warnings
    assert datas(df)[3]["services"][-1] == "SystemEventsBroker"


def test_truncated_last_line(tmp_path):
    text = fixture("tasklist_svc.txt").read_text(encoding="utf-8").rstrip() + "\nwinlogon.e"
    p = tmp_path / "tl.txt"
    p.write_bytes(text.encode("utf-8"))
    df, ctx = run("tasklist", p)
    assert len(df) == 9 and [w.locator for w in ctx.warnings] == ["line=15"]
