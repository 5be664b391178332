"""netstat -an / -ano / -anob -> listener / connection rows."""
from __future__ import annotations

import pytest

from ._texthelp import ENCODINGS, datas, encode_variant, fixture, run


def test_ano_with_pid_ipv6_and_udp():
    df, ctx = run("netstat", fixture("netstat_ano.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert len(d) == 10
    assert list(df["kind"]).count("listener") == 7  # 5 TCP LISTENING + 2 UDP
    assert d[1] == {"protocol": "TCP", "local_address": "0.0.0.0", "local_port": 135,
                    "remote_address": "0.0.0.0", "remote_port": 0, "state": "LISTENING",
                    "state_raw": "LISTENING", "pid": 672}
    assert d[7]["local_address"] == "::" and d[7]["local_port"] == 135
    assert d[8]["protocol"] == "UDP" and d[8]["state"] is None and d[8]["remote_port"] is None
    assert d[8]["pid"] == 848 and df["kind"].iloc[8] == "listener"
    assert df["kind"].iloc[4] == "connection" and d[4]["state"] == "ESTABLISHED"
    assert df["locator"].iloc[0] == "line=6"


def test_nt4_without_pid_and_elisions():
    df, ctx = run("netstat", fixture("netstat_nt4.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert len(d) == 4 and all(x["pid"] is None for x in d)
    assert [x["state"] for x in d] == ["CLOSE_WAIT", "CLOSE_WAIT", "ESTABLISHED", "SYN_RECEIVED"]


@pytest.mark.parametrize("variant", ["utf8", "oem", "utf16"])
def test_german_states(tmp_path, variant):
    p = tmp_path / "netstat.txt"
    p.write_bytes(encode_variant(fixture("netstat_german.txt").read_text(encoding="utf-8"), variant))
    df, ctx = run("netstat", p)
    assert not ctx.warnings
    d = datas(df)
    assert [x["state"] for x in d] == ["LISTENING"] * 3 + ["ESTABLISHED", "TIME_WAIT", "LISTENING", None]
    assert list(df["kind"]).count("listener") == 5
    assert {x["local_port"] for x, k in zip(d, df["kind"]) if k == "listener"} == {25, 135, 1033, 500}


def test_mojibake_and_ascii_german_states(tmp_path):
    text = fixture("netstat_german.txt").read_text(encoding="utf-8")
    p = tmp_path / "n.txt"
    p.write_bytes(text.replace("ABHÖREN", "ABH\u2122REN").encode("utf-8"))
    assert datas(run("netstat", p)[0])[0]["state"] == "LISTENING"
    p.write_bytes(text.replace("ABHÖREN", "ABHOEREN").encode("utf-8"))
    assert datas(run("netstat", p)[0])[0]["state"] == "LISTENING"


def test_chinese_headers():
    df, _ = run("netstat", fixture("netstat_chinese.txt"))
    assert [x["local_port"] for x in datas(df)] == [135, 41316]
    assert set(df["kind"]) == {"listener"}


def test_b_image_lines():
    df, _ = run("netstat", fixture("netstat_b.txt"))
    d = datas(df)
    assert [x.get("image") for x in d] == ["svchost.exe", "store.exe", None]
    assert d[0]["component"] == "RpcSs"


@pytest.mark.parametrize("variant", ENCODINGS)
def test_encodings(tmp_path, variant):
    p = tmp_path / "out.txt"
    p.write_bytes(encode_variant(fixture("netstat_ano.txt").read_text(encoding="utf-8"), variant))
    df, ctx = run("netstat", p)
    assert len(df) == 10 and not ctx.warnings


def test_truncated_last_line(tmp_path):
    text = fixture("netstat_ano.txt").read_text(encoding="utf-8").rstrip() + "\n  TCP    10.10.10.9:1"
    p = tmp_path / "out.txt"
    p.write_bytes(text.encode("utf-8"))
    df, ctx = run("netstat", p)
    assert len(df) == 10
    assert [w.locator for w in ctx.warnings] == ["line=16"]
