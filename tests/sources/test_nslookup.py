"""nslookup output -> dns_query rows, one per query."""
from __future__ import annotations

import pytest

from analyzer import sources
from analyzer.sources.nslookup import reason_status
from analyzer.textio import read_text

from ._texthelp import ENCODINGS, datas, encode_variant, fixture, run


def test_interactive_transcript():
    df, ctx = run("nslookup", fixture("nslookup_interactive.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert [(x["query"], x["query_type"], x["status"]) for x in d] == [
        ("fabrikam.com", "MX", "ok"), ("mx1.fabrikam.com", "AAAA", "timeout"),
        ("nosuchhost.fabrikam.com", "A", "nxdomain"), ("www.tailspintoys.com", "A", "ok")]
    assert set(df["kind"]) == {"dns_query"} and list(df["level"]) == ["information", "warning",
                                                                    "warning", "information"]
    mx = d[0]
    assert mx["mx"] == [{"preference": 10, "exchange": "mx1.fabrikam.com"},
                        {"preference": 20, "exchange": "mx2.fabrikam.com"}]
    assert (mx["server_name"], mx["server_address"]) == ("dc1.contoso.local", "10.0.0.10")
    assert mx["authoritative"] is False and mx["interactive"] is True and mx["query_inferred"] is False
    glue = [a for a in mx["answers"] if a["section"] == "additional"]
    assert [(a["name"], a["type"], a["value"]) for a in glue] == [
        ("mx1.fabrikam.com", "A", "192.0.2.25"), ("mx2.fabrikam.com", "A", "192.0.2.26")]
    assert d[1]["timeouts"] == 1 and d[1]["timeout_seconds"] == 2
    assert d[1]["error"] == "Request to dc1.contoso.local timed-out"
    assert d[2]["error"] == "Non-existent domain"
    web = d[3]  # after "> server 8.8.8.8"
    assert (web["server_name"], web["server_address"]) == ("dns.google", "8.8.8.8")
    assert web["canonical_name"] == "tailspin-web.trafficmanager.example.net"
    assert web["aliases"] == ["www.tailspintoys.com", "tailspintoys.azureedge.example.net"]
    assert web["addresses"] == ["2001:db8:10::15", "198.51.100.15", "198.51.100.16"]
    assert df["locator"].tolist() == ["line=6", "line=17", "line=25", "line=34"]


def test_failure_forms_with_command_lines():
    df, ctx = run("nslookup", fixture("nslookup_failures.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert [(x["query"], x["status"]) for x in d] == [
        ("fabrikam.com", "timeout"), ("contoso.com", "servfail"), ("internal.company.local", "nxdomain"),
        ("partner.example", "no_response"), ("blocked.example", "refused"), ("mail.contoso.com", "ok")]
    first = d[0]
    # the PTR lookup of the server timed out before "Server:" - not the query's own timeout
    assert first["server_lookup_timeouts"] == 1 and first["timeouts"] == 2
    assert (first["server_name"], first["server_address"]) == ("UnKnown", "192.168.201.11")
    assert first["query_type"] == "MX" and d[1]["query_type"] == "MX" and d[2]["query_type"] == "A"
    assert d[2]["server_address"] == "8.8.8.8" and d[5]["addresses"] == ["10.0.0.25"]
    assert all(x["interactive"] is False for x in d)


def test_outputs_without_commands_infer_query():
    d = datas(run("nslookup", fixture("nslookup_plain.txt"))[0])
    assert [(x["query"], x["query_type"], x["query_inferred"]) for x in d] == [
        ("google.com", "MX", True), ("smtp.google.com", "A", True)]
    assert d[1]["addresses"] == ["2a00:1450:400c:c0b::1a", "142.250.102.26"]


@pytest.mark.parametrize("variant", ENCODINGS)
def test_encodings(tmp_path, variant):
    p = tmp_path / "dns.txt"
    p.write_bytes(encode_variant(read_text(fixture("nslookup_failures.txt")), variant))
    assert sources.sniff(p.read_bytes(), "x.txt")[0].name == "nslookup"
    df, ctx = run("nslookup", p)
    assert len(df) == 6 and not ctx.warnings


def test_truncated_last_line(tmp_path):
    p = tmp_path / "dns.txt"
    text = read_text(fixture("nslookup_plain.txt"))
    p.write_bytes(encode_variant(text, "truncated"))
    df, ctx = run("nslookup", p)
    assert len(df) == 2 and df["parse_status"].tolist() == ["ok", "partial"]
    assert [(w.locator, w.message) for w in ctx.warnings] == [("line=13", "truncated last line")]


def test_localized_non_authoritative_and_soa_and_unknown_line(tmp_path):
    p = tmp_path / "dns.txt"
    p.write_text("Server:  dc1.contoso.local\nAddress:  10.0.0.10\n\nNicht autorisierende Antwort:\n"
                 "contoso.de\tMX preference = 5, mail exchanger = mx.contoso.de\n\n"
                 "C:\\>nslookup -type=mx empty.example\nServer:  dc1.contoso.local\nAddress:  10.0.0.10\n\n"
                 "empty.example\n\tprimary name server = ns1.empty.example\n"
                 "\tresponsible mail addr = hostmaster.empty.example\n", encoding="utf-8")
    df, ctx = run("nslookup", p)
    d = datas(df)
    assert d[0]["authoritative"] is False and d[0]["mx"][0]["exchange"] == "mx.contoso.de"
    assert d[1]["query"] == "empty.example" and d[1]["answers"][0]["type"] == "SOA"
    soa = d[1]["answers"][0]
    assert (soa["name"], soa["section"], soa["responsible_mail_addr"]) == (
        "empty.example", "authority", "hostmaster.empty.example")
    assert d[1]["status"] == "no_records" and not ctx.warnings


def test_reason_status_from_knowledge():
    assert reason_status("Non-existent domain") == "nxdomain"
    assert reason_status("Server failed") == "servfail"
    assert reason_status("Something new") == "failed"


def test_resolver_reverse_lookup_failure_is_not_a_query(tmp_path):
    p = tmp_path / "dns.txt"
    p.write_text("C:\\>nslookup\nDNS request timed out.\n    timeout was 2 seconds.\n"
                 "*** Can't find server name for address 10.0.0.10: Timed out\n"
                 "*** Default servers are not available\nDefault Server:  UnKnown\nAddress:  10.0.0.10\n\n"
                 "> set q=mx\n> fabrikam.com\nServer:  UnKnown\nAddress:  10.0.0.10\n\n"
                 "DNS request timed out.\n    timeout was 2 seconds.\n*** Request to UnKnown timed-out\n> exit\n",
                 encoding="utf-8")
    df, ctx = run("nslookup", p)
    assert not ctx.warnings
    d = datas(df)
    assert [(x["query"], x["query_type"], x["status"], x["server_address"]) for x in d] == [
        ("fabrikam.com", "MX", "timeout", "10.0.0.10")]
