"""dns-query-failed: each cause true and false on hand-built rows (queue
objects of Get-Queue, nslookup, ipconfig, Tcpip6 DisabledComponents,
Get-TransportServer), a 451 with another enhanced status, applicability;
the samples run end to end in tests/test_samples.py."""
from __future__ import annotations

from datetime import timedelta

from analyzer import checks

from .exrows import T0, case, chatter, exchange2007, ps_object, regkey, regval, tracked

CHECK = checks.get("dns-query-failed")
HUB = "HUB01"
DNS_451 = "451 4.4.0 DNS query failed"
TCPIP6 = "HKLM\\SYSTEM\\ControlSet001\\Services\\Tcpip6\\Parameters"


def queue(n: int, domain: str, count: int, error: str = DNS_451, status: str = "Retry") -> dict:
    return ps_object("queue", {"Identity": f"{HUB}\\{n}", "DeliveryType": "DnsConnectorDelivery",
                               "NextHopDomain": domain, "Status": status, "MessageCount": count,
                               "LastError": error, "LastRetryTime": "1/21/2009 8:14:02 AM" if error else ""},
                     HUB, 3 + 12 * n)


def lookup(domain: str, status: str = "ok", line: int = 5, server: str = "10.0.0.10") -> dict:
    data = {"query": domain, "query_type": "MX", "status": status, "server_address": server}
    if status == "ok":
        data["mx"] = [{"preference": 10, "exchange": f"mail.{domain}"}]
    else:
        data["error"] = "Non-existent domain"
    return dict(kind="dns_query", source="nslookup", path="Output/nslookup.txt", locator=f"line={line}",
                data=data)


def adapter(ipv6: bool = True) -> dict:
    return dict(kind="network_adapter", source="ipconfig", host=HUB, path="Output/ipconfig-all.txt",
                locator="line=10", data={"adapter": "Local Area Connection", "ipv6_bound": ipv6,
                                          "dns_servers": ["10.0.0.10", "10.0.0.11"],
                                          "media_disconnected": False})


def system(disabled: int | None = None) -> list[dict]:
    rows = [regkey("HKLM\\SYSTEM\\Select", HUB, "Registry/SYSTEM"),
            regval("HKLM\\SYSTEM\\Select", "Current", "REG_DWORD", "1", HUB, "Registry/SYSTEM"),
            regkey(TCPIP6, HUB, "Registry/SYSTEM"),
            regval(TCPIP6, "Dhcpv6DUID", "REG_BINARY", "000100011172f1a2", HUB, "Registry/SYSTEM")]
    if disabled is not None:
        rows.append(regval(TCPIP6, "DisabledComponents", "REG_DWORD", str(disabled), HUB, "Registry/SYSTEM"))
    return rows


def hub(*extra: dict, winver: str = "6.0", disabled: int | None = None, ipv6: bool = True) -> list[dict]:
    return exchange2007(HUB, ("HubTransportRole",), winver=winver) + system(disabled) + chatter(HUB) + [
        adapter(ipv6)] + list(extra)


def run(rows: list[dict]):
    (f,) = CHECK.run(case(rows))
    return f, {c.id: c for c in f.causes}


def test_ipv6_bug_when_the_domains_resolve():
    f, c = run(hub(queue(7, "fabrikam.com", 14), queue(9, "adatum.com", 3), queue(11, "litwareinc.com", 0, ""),
                   lookup("fabrikam.com"), lookup("adatum.com", line=12)))
    assert f.status == "problem" and f.causes[0].id == "ipv6-dns-bug"
    assert c["ipv6-dns-bug"].verdict == "confirmed"
    assert c["dns-resolution-failure"].verdict == "ruled_out"
    assert c["external-dns-misconfigured"].verdict == "possible"
    assert "fabrikam.com (14 message(s)" in f.summary and "adatum.com (3 message(s)" in f.summary
    assert "litwareinc.com" not in f.summary
    rem = " ".join(f.remediation)
    assert "KB 972744" in rem and "KB 929852" in rem and "0x20" in rem and "Temporary" in rem


def test_ipv6_ruled_out_by_disabled_components():
    f, c = run(hub(queue(7, "fabrikam.com", 2), lookup("fabrikam.com"), disabled=0xFF))
    assert c["ipv6-dns-bug"].verdict == "ruled_out" and "0xFF" in c["ipv6-dns-bug"].explanation


def test_ipv6_ruled_out_on_windows_2003():
    f, c = run(hub(queue(7, "fabrikam.com", 2), lookup("fabrikam.com"), winver="5.2"))
    assert c["ipv6-dns-bug"].verdict == "ruled_out" and "5.2" in c["ipv6-dns-bug"].explanation


def test_domain_that_does_not_exist():
    f, c = run(hub(queue(7, "fabrikm.com", 2), lookup("fabrikm.com", "nxdomain"), disabled=0xFF, ipv6=False))
    assert f.status == "problem" and f.causes[0].id == "dns-resolution-failure"
    assert c["dns-resolution-failure"].verdict == "confirmed"
    assert c["ipv6-dns-bug"].verdict == "ruled_out"


def test_without_nslookup_asks_for_it():
    f, c = run(hub(queue(7, "fabrikam.com", 2)))
    assert c["dns-resolution-failure"].verdict == "possible" and c["ipv6-dns-bug"].verdict == "possible"
    assert f.status == "inconclusive" and any("nslookup" in x for x in f.collect)


def test_external_dns_servers_that_fail():
    ts = ps_object("transport_server", {"Name": HUB, "ExternalDNSAdapterEnabled": False,
                                        "ExternalDNSServers": ["192.0.2.53"]}, HUB, 2, "Output/ts.txt")
    f, c = run(hub(queue(7, "fabrikam.com", 2), ts, lookup("fabrikam.com", "timeout", server="192.0.2.53"),
                   disabled=0xFF))
    assert c["external-dns-misconfigured"].verdict == "confirmed"


def test_external_dns_ruled_out_when_the_adapter_is_used():
    ts = ps_object("transport_server", {"Name": HUB, "ExternalDNSAdapterEnabled": True,
                                        "ExternalDNSServers": []}, HUB, 2, "Output/ts.txt")
    f, c = run(hub(queue(7, "fabrikam.com", 2), ts, lookup("fabrikam.com")))
    assert c["external-dns-misconfigured"].verdict == "ruled_out"


def test_another_451_is_not_a_dns_failure():
    f, c = run(hub(queue(7, "fabrikam.com", 4, "451 4.7.0 Temporary server error. Please try again later. PRX2"),
                   queue(11, "litwareinc.com", 0, "", "Ready"), lookup("fabrikam.com")))
    assert f.status == "ok" and all(x.verdict == "ruled_out" for x in f.causes)
    assert "4.7.0" in f.summary and f.evidence


def test_tracking_defer_rows_count_per_domain():
    rows = [tracked(HUB, T0 + timedelta(minutes=10 * i), "DEFER", "a@contoso.com", f"u{i}@fabrikam.com", 9000,
                    "s", f"<{i}@c>", 20 + i, status=[DNS_451]) for i in range(3)]
    f, _ = run(hub(*rows, lookup("fabrikam.com")))
    (d,) = f.facts["affected_domains"]
    assert d["domain"] == "fabrikam.com" and d["messages"] == 3 and d["first"] != d["last"]


def test_no_queue_evidence_is_inconclusive():
    f, _ = run(hub())
    assert f.status == "inconclusive" and any("Get-Queue" in x for x in f.collect)


def test_mailbox_server_is_not_applicable():
    (f,) = CHECK.run(case(exchange2007("MBX01", ("MailboxRole",)) + chatter("MBX01")))
    assert f.status == "not_applicable"


def test_hosts_file_workaround_is_named():
    pin = dict(kind="hosts_entry", source="hostsfile", path="Output/hosts", locator="line=22",
               data={"address": "203.0.113.25", "names": ["mail.fabrikam.com"], "hostname": "mail.fabrikam.com"})
    f, c = run(hub(queue(7, "fabrikam.com", 14), lookup("fabrikam.com"), pin))
    assert "hosts file already pins mail.fabrikam.com" in c["ipv6-dns-bug"].explanation
    assert any(e.locator == "line=22" for e in c["ipv6-dns-bug"].evidence)
