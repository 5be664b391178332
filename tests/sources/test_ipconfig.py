"""ipconfig /all -> network_adapter rows (English 2003/2008, German, French)."""
from __future__ import annotations

import pytest

from analyzer import sources

from ._texthelp import ENCODINGS, datas, encode_variant, fixture, run


def _text(name: str) -> str:
    from analyzer.textio import read_text
    return read_text(fixture(name))


def test_windows_2003_layout():
    df, ctx = run("ipconfig", fixture("ipconfig_2003.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert [x["adapter"] for x in d] == ["Local Area Connection", "Backup LAN"]
    assert set(df["host"]) == {"EXCH2003"} and set(df["kind"]) == {"network_adapter"}
    lan = d[0]
    assert lan["host_name"] == "EXCH2003" and lan["primary_dns_suffix"] == "contoso.local"
    assert lan["dns_suffix_search_list"] == ["contoso.local", "corp.contoso.local"]
    assert lan["adapter_type"] == "ethernet" and lan["physical_address"] == "00-0E-7F-AB-12-34"
    assert lan["dhcp_enabled"] is False and lan["ip_routing_enabled"] is False
    # the 2003 IPv6 stack prints its address under "IP Address" too
    assert lan["ipv4_addresses"] == ["10.0.0.20"]
    assert lan["ipv6_addresses"] == ["fe80::20e:7fff:feab:1234%4"] and lan["ipv6_bound"] is True
    assert lan["dns_servers"] == ["10.0.0.10", "10.0.0.11", "fec0:0:0:ffff::1%1"]
    assert lan["default_gateways"] == ["10.0.0.1"] and lan["wins_servers"] == ["10.0.0.10"]
    backup = d[1]
    assert backup["media_disconnected"] is True and backup["ipv6_bound"] is False
    assert backup["ipv4_addresses"] == [] and df["locator"].iloc[1] == "line=27"


def test_windows_2008_layout():
    df, ctx = run("ipconfig", fixture("ipconfig_2008.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert [(x["adapter_type"], x["adapter"]) for x in d] == [
        ("ethernet", "Local Area Connection"), ("tunnel", "Local Area Connection* 8"),
        ("tunnel", "Local Area Connection* 9")]
    lan = d[0]
    assert lan["ipv4_addresses"] == ["10.1.1.20", "10.1.1.21"]  # "(Preferred)" stripped
    assert lan["subnet_masks"] == ["255.255.255.0", "255.255.255.0"]
    assert lan["link_local_ipv6_addresses"] == ["fe80::b1c4:2d7e:9f03:6a21%10"]
    assert lan["ipv6_bound"] is True and lan["autoconfiguration_enabled"] is True
    assert lan["dns_servers"] == ["10.1.1.10", "10.1.1.11"]
    assert lan["dhcpv6_iaid"] == "234889562" and lan["netbios_over_tcpip"] == "Enabled"
    assert d[1]["media_disconnected"] is True and d[1]["ipv6_bound"] is False
    teredo = d[2]
    assert teredo["ipv6_addresses"] == ["2001:0:4137:9e76:2c3b:1a2b:f5fe:fee9", "fe80::2c3b:1a2b:f5fe:fee9%11"]
    assert teredo["default_gateways"] == ["::"]


SAME = {"dhcp_enabled": False, "autoconfiguration_enabled": True, "ipv6_bound": True,
        "dns_servers": ["10.0.0.10", "10.0.0.11"], "default_gateways": ["10.0.0.1"],
        "subnet_masks": ["255.255.255.0"], "primary_dns_suffix": "contoso.local",
        "dns_suffix_search_list": ["contoso.local"], "ip_routing_enabled": False}


@pytest.mark.parametrize("name,host,adapter,ipv4,link_local", [
    ("ipconfig_german.txt", "EXHUB02", "LAN-Verbindung", "10.0.0.5", "fe80::8d4c:2f1a:77b3:1c0e%11"),
    ("ipconfig_french_utf16.txt", "EXHUB03", "Connexion au réseau local", "10.0.0.6",
     "fe80::1c2d:3e4f:5a6b:7c8d%12"),
])
def test_localized_labels(name, host, adapter, ipv4, link_local):
    df, ctx = run("ipconfig", fixture(name))
    assert not ctx.warnings
    lan = datas(df)[0]
    assert {k: lan[k] for k in SAME} == SAME
    assert (lan["host_name"], lan["adapter"], lan["adapter_type"]) == (host, adapter, "ethernet")
    assert lan["ipv4_addresses"] == [ipv4] and lan["link_local_ipv6_addresses"] == [link_local]
    assert "other" not in lan  # every label was known


def test_german_wireless_disconnected():
    d = datas(run("ipconfig", fixture("ipconfig_german.txt"))[0])
    assert d[1]["adapter_type"] == "wireless" and d[1]["media_state"] == "Medium getrennt"
    assert d[1]["media_disconnected"] is True and d[1]["dhcp_enabled"] is True


@pytest.mark.parametrize("variant", ENCODINGS)
def test_encodings(tmp_path, variant):
    p = tmp_path / "ipconfig.txt"
    p.write_bytes(encode_variant(_text("ipconfig_2008.txt"), variant))
    assert sources.sniff(p.read_bytes(), "out.txt")[0].name == "ipconfig"
    df, ctx = run("ipconfig", p)
    assert len(df) == 3 and not ctx.warnings
    assert datas(df)[0]["dns_servers"] == ["10.1.1.10", "10.1.1.11"]


@pytest.mark.parametrize("name", ["ipconfig_german.txt", "ipconfig_french_utf16.txt"])
@pytest.mark.parametrize("variant", ["utf8", "oem", "utf16"])
def test_localized_encodings(tmp_path, name, variant):
    p = tmp_path / "ipconfig.txt"
    p.write_bytes(encode_variant(_text(name), variant))
    df, ctx = run("ipconfig", p)
    lan = datas(df)[0]
    assert lan["dns_servers"] == ["10.0.0.10", "10.0.0.11"] and lan["primary_dns_suffix"] == "contoso.local"
    assert lan["ipv6_bound"] is True and "other" not in lan and not ctx.warnings


def test_truncated_last_line(tmp_path):
    p = tmp_path / "ipconfig.txt"
    p.write_bytes(encode_variant(_text("ipconfig_2003.txt"), "truncated"))
    df, ctx = run("ipconfig", p)
    assert len(df) == 2 and df["parse_status"].iloc[1] == "partial"
    assert [w.locator for w in ctx.warnings] == ["line=31"] and ctx.partial


def test_web_copy_collapsed_spaces_and_two_captures(tmp_path):
    """Continuation lines pasted without their indent still continue; a
    second capture (another server) starts over."""
    nt6 = _text("ipconfig_2008.txt")
    collapsed = nt6.replace("                                       10.1.1.11", "10.1.1.11")
    other = _text("ipconfig_2003.txt")
    p = tmp_path / "both.txt"
    p.write_text("C:\\>ipconfig /all\n" + collapsed + "\nC:\\>ipconfig /all\n" + other, encoding="utf-8")
    df, ctx = run("ipconfig", p)
    assert not ctx.warnings
    assert list(df["host"]) == ["HUB01"] * 3 + ["EXCH2003"] * 2
    assert datas(df)[0]["dns_servers"] == ["10.1.1.10", "10.1.1.11"]
    assert datas(df)[3]["dns_suffix_search_list"] == ["contoso.local", "corp.contoso.local"]


def test_unknown_label_is_kept_and_stray_text_warned(tmp_path):
    text = _text("ipconfig_2008.txt").replace(
        "   NetBIOS over Tcpip. . . . . . . . : Enabled",
        "   NetBIOS over Tcpip. . . . . . . . : Enabled\n   Frobnication Level. . . . . . . . : 11\n"
        "   this line makes no sense")
    p = tmp_path / "ipconfig.txt"
    p.write_text(text, encoding="utf-8")
    df, ctx = run("ipconfig", p)
    assert datas(df)[0]["other"] == {"Frobnication Level": "11"}
    assert [w.locator for w in ctx.warnings] == ["line=30"] and not ctx.partial


def test_spanish_labels_and_a_label_holding_a_colon(tmp_path):
    """Spanish ``Vínculo: dirección IPv6 local`` has a colon inside the label."""
    p = tmp_path / "ipconfig.txt"
    p.write_bytes(encode_variant(
        "\nConfiguración IP de Windows\n\n   Nombre de host. . . . . . . . . : HUB04\n\n"
        "Adaptador de Ethernet Conexión de área local:\n\n"
        "   Sufijo DNS específico para la conexión. . : \n"
        "   Vínculo: dirección IPv6 local. . . : fe80::9c1:2b3c:4d5e:6f70%11\n"
        "   Dirección IPv4. . . . . . . . . . . . . . : 10.0.0.7\n"
        "   Máscara de subred . . . . . . . . . . . . : 255.255.255.0\n"
        "   Puerta de enlace predeterminada . . . . . : 10.0.0.1\n"
        "   Servidores DNS. . . . . . . . . . . . . . : 10.0.0.10\n", "oem"))
    assert sources.sniff(p.read_bytes(), p.name)[0].name == "ipconfig"
    df, ctx = run("ipconfig", p)
    lan = datas(df)[0]
    assert lan["adapter"] == "Conexión de área local" and lan["adapter_type"] == "ethernet"
    assert lan["link_local_ipv6_addresses"] == ["fe80::9c1:2b3c:4d5e:6f70%11"]
    assert (lan["ipv4_addresses"], lan["default_gateways"], lan["dns_servers"]) == (
        ["10.0.0.7"], ["10.0.0.1"], ["10.0.0.10"])
