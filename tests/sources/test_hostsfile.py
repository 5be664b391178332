"""The Windows hosts file -> hosts_entry rows; strict sniffing."""
from __future__ import annotations

import pytest

from analyzer import sources

from ._texthelp import ENCODINGS, datas, encode_variant, fixture, run


def test_2003_sample_header_and_active_entries():
    df, ctx = run("hostsfile", fixture("hosts_2003.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert [(x["address"], x["names"]) for x in d] == [("127.0.0.1", ["localhost"]),
                                                       ("192.0.2.25", ["mx1.fabrikam.com"])]
    assert d[0]["loopback"] is True and d[1]["loopback"] is False
    assert d[1]["comment"] == "MX of fabrikam.com, 451 4.4.0 workaround"
    assert df["locator"].tolist() == ["line=19", "line=20"] and set(df["kind"]) == {"hosts_entry"}


def test_2008r2_commented_localhost_tabs_ipv6_and_invalid_line():
    df, ctx = run("hostsfile", fixture("hosts_2008r2.txt"))
    d = datas(df)
    assert [x["hostname"] for x in d] == ["dc1.contoso.local", "mail.contoso.com", "mail6.contoso.com",
                                         "broken.contoso.com"]
    assert d[0]["aliases"] == ["dc1"] and d[1]["aliases"] == ["mail", "autodiscover.contoso.com"]
    assert d[1]["comment"] == "old CAS, moved 2009"
    assert d[2]["ip_version"] == 6
    assert d[3]["address_valid"] is False and df["level"].iloc[3] == "warning"
    assert [(w.locator, w.message) for w in ctx.warnings] == [
        ("line=25", "invalid address '10.0.0.300' (Windows ignores this line)")]


def test_comments_only_file_has_no_rows_and_says_so(tmp_path):
    p = tmp_path / "hosts"
    p.write_text("\n".join(ln for ln in fixture("hosts_2003.txt").read_text().splitlines()
                           if ln.startswith("#")) + "\n")
    assert sources.sniff(p.read_bytes(), "hosts")[0].name == "hostsfile"
    df, ctx = run("hostsfile", p)
    assert len(df) == 0 and not ctx.warnings and ctx.notes == ["no active entries (comments only)"]


@pytest.mark.parametrize("variant", ENCODINGS)
def test_encodings(tmp_path, variant):
    p = tmp_path / "hosts"
    p.write_bytes(encode_variant(fixture("hosts_2008r2.txt").read_text(), variant))
    df, ctx = run("hostsfile", p)
    assert len(df) == 4 and len(ctx.warnings) == 1


def test_last_line_without_newline(tmp_path):
    """Notepad leaves the last line unterminated: a complete entry is fine,
    an address without its name is a cut line."""
    p = tmp_path / "hosts"
    p.write_bytes(b"# x\r\n10.1.1.30   smarthost.contoso.local\r\n10.1.1.31   smarthost2")
    df, ctx = run("hostsfile", p)
    assert datas(df)[1]["names"] == ["smarthost2"] and not ctx.warnings
    p.write_bytes(b"# x\r\n10.1.1.30   smarthost.contoso.local\r\n10.1.1.31  ")
    df, ctx = run("hostsfile", p)
    assert len(df) == 1 and [(w.locator, w.message) for w in ctx.warnings] == [("line=3", "truncated last line")]


@pytest.mark.parametrize("text,expected", [
    ("10.1.1.30   smarthost.contoso.local\n10.1.1.31   smarthost2\n", 75),
    ("# note\n10.1.1.30 smarthost\n", 55),
    ("10.1.1.30 smarthost\n", 0),                       # one line alone is too little
    ("10.0.0.1 is the gateway\n10.0.0.2 is the DNS server!\n", 0),
    ("10.0.0.1 gw\nTCP 0.0.0.0:135 0.0.0.0:0 LISTENING\n", 0),
    ("Server:  dc1\nAddress:  10.0.0.10\n", 0),
    ("192.168.1.1 12345\n192.168.1.2 67890\n", 0),     # numbers are not names
    ("  10.0.0.1    00-15-5d-01-02-03   dynamic\n  10.0.0.10   00-15-5d-01-02-0a   dynamic\n", 0),  # arp -a
])
def test_sniffing_without_the_sample_header(text, expected):
    assert sources.get("hostsfile").sniff(text.encode(), "x.txt") == expected
