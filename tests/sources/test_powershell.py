"""PowerShell exports (Format-List, Format-Table, Export-Csv, Export-Clixml)
-> ps_object rows, one per object, named from analyzer/knowledge/ps_objects.yaml."""
from __future__ import annotations

import codecs

import pytest
from lxml import etree

from analyzer import load_case
from analyzer.sources import powershell

from ._texthelp import ENCODINGS, datas, encode_variant, fixture, run, sniff_scores

WRAPPED = "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"


def _write(tmp_path, name, text, variant="utf8"):
    p = tmp_path / name
    p.write_bytes(encode_variant(text, variant))
    return p


def test_get_queue_format_list():
    df, ctx = run("powershell", fixture("ps_getqueue_fl.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert [x["Identity"] for x in d] == ["EXCH01\\Submission", "EXCH01\\12", "EXCH01\\Unreachable"]
    assert {x["object"] for x in d} == {"queue"} and {x["format"] for x in d} == {"list"}
    assert d[1]["cmdlet"] == "Get-Queue"
    assert d[1]["LastError"] == WRAPPED  # continuation cut mid-word at the width, joined
    assert [x["MessageCount"] for x in d] == [0, 37, 2]
    assert d[0]["IsValid"] is True and d[0]["LastError"] == ""
    assert list(df["locator"]) == ["line=4", "line=16", "line=29"]
    assert set(df["host"]) == {"EXCH01"} and set(df["kind"]) == {"ps_object"}


@pytest.mark.parametrize("variant", ENCODINGS)
def test_format_list_encodings(tmp_path, variant):
    """`>` in Windows PowerShell writes UTF-16LE with a BOM: the normal case."""
    p = _write(tmp_path, "q.txt", fixture("ps_getqueue_fl.txt").read_text(encoding="utf-8"), variant)
    assert sniff_scores(p)["powershell"] >= 90
    df, ctx = run("powershell", p)
    assert not ctx.warnings
    d = datas(df)
    assert len(d) == 3 and d[1]["LastError"] == WRAPPED


def test_truncated_last_line(tmp_path):
    text = fixture("ps_getqueue_fl.txt").read_text(encoding="utf-8").rstrip()
    p = _write(tmp_path, "q.txt", text, "truncated")
    df, ctx = run("powershell", p)
    assert len(df) == 3
    assert df["parse_status"].iloc[-1] == "partial" and df["parse_status"].iloc[0] == "ok"
    assert any("truncated last line" in w.message and w.locator.startswith("line=") for w in ctx.warnings)


def test_blank_lines_between_properties_and_repeated_names(tmp_path):
    """Forum pastes double every line break; a repeated name starts the next object."""
    text = ("DeliveryType : DnsConnectorDelivery\n\nNextHopDomain : a.example\n\nStatus : Retry\n\n"
            "MessageCount : 1\n\nDeliveryType : MapiDelivery\n\nNextHopDomain : b\n\nStatus : Ready\n\n"
            "MessageCount : 0\n")
    df, ctx = run("powershell", _write(tmp_path, "q.txt", text))
    assert not ctx.warnings
    d = datas(df)
    assert [x["NextHopDomain"] for x in d] == ["a.example", "b"] and d[0]["object"] == "queue"


def test_enumeration_limit_and_bad_line(tmp_path):
    text = ("Name               : EXCH01\n"
            "ExternalDNSServers : {10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4...}\n"
            "InternalDNSServers : {}\n"
            "this line is no property\n"
            "ExternalDNSAdapterEnabled : False\n")
    df, ctx = run("powershell", _write(tmp_path, "t.txt", text))
    d = datas(df)[0]
    assert d["object"] == "transport_server"
    assert d["ExternalDNSServers"] == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert d["truncated"] == ["ExternalDNSServers"] and d["InternalDNSServers"] == []
    assert d["ExternalDNSAdapterEnabled"] is False
    assert [(w.locator, "unrecognized" in w.message) for w in ctx.warnings] == [("line=4", True)]


def test_exchange_and_transport_server_lists():
    d = datas(run("powershell", fixture("ps_exchangeserver_fl.txt"))[0])[0]
    assert d["object"] == "exchange_server" and d["AdminDisplayVersion"] == "Version 8.1 (Build 240.6)"
    assert d["ObjectClass"] == ["top", "server", "msExchExchangeServer"]
    assert d["ExchangeLegacyDN"].endswith("(FYDIBOHF23SPDLT)/cn=Configuration/cn=Servers/cn=EXCH01")
    t, ctx = run("powershell", fixture("ps_transportserver_fl.txt"))
    assert not ctx.warnings
    d = datas(t)[0]
    assert d["object"] == "transport_server" and d["cmdlet"] == "Get-TransportServer"
    assert d["InternalDNSServers"] == ["10.0.0.10", "10.0.0.11"] and d["ExternalDNSServers"] == []
    assert d["ReceiveProtocolLogPath"].endswith(r"TransportRoles\Logs\ProtocolLog\SmtpReceive")
    assert d["MaxOutboundConnections"] == 1000


def test_format_table_queue_and_file_version():
    df, ctx = run("powershell", fixture("ps_getqueue_ft.txt"))
    assert not ctx.warnings
    d = datas(df)
    assert [x["MessageCount"] for x in d] == [0, 37, 2]
    assert d[1]["DeliveryType"] == "DnsConnec" and d[1]["truncated"] == ["DeliveryType"]
    assert d[2]["NextHopDomain"] == "Unreachable Domain" and d[0]["format"] == "table"
    f = datas(run("powershell", fixture("ps_exsetup_ft.txt"))[0])[0]
    assert f["object"] == "file_version" and f["ProductVersion"] == "08.01.0340.001"
    assert f["FileName"].endswith("ExSetup.exe")


def test_unknown_table_is_not_claimed():
    text = "Foo   Bar\n---   ---\n1     2\n"
    assert powershell.sniff_text(text) == 0


def test_export_csv_with_type_and_flattened_collections():
    df, ctx = run("powershell", fixture("ps_exchangeserver_type.csv"))
    assert not ctx.warnings
    d = datas(df)
    assert [x["Name"] for x in d] == ["EXCH01", "EDGE01"] and list(df["host"]) == ["EXCH01", "EDGE01"]
    assert d[0]["type_name"] == "Microsoft.Exchange.Data.Directory.Management.ExchangeServer"
    assert d[0]["StaticGlobalCatalogs"] is None and d[0]["flattened"] == ["StaticGlobalCatalogs"]
    assert d[0]["IsHubTransportServer"] is True and list(df["locator"]) == ["line=3", "line=4"]


@pytest.mark.parametrize("variant", ["utf8", "utf8-bom", "utf16"])
def test_export_csv_without_type(tmp_path, variant):
    p = _write(tmp_path, "q.csv", fixture("ps_getqueue_notype.csv").read_text(encoding="utf-8"), variant)
    assert sniff_scores(p)["powershell"] >= 85
    d = datas(run("powershell", p)[0])
    assert [x["object"] for x in d] == ["queue", "queue"] and d[1]["LastError"] == WRAPPED


def test_export_csv_short_row_is_a_warning(tmp_path):
    text = fixture("ps_getqueue_notype.csv").read_text(encoding="utf-8") + '"EXCH01\\13","MapiDelivery"\n'
    df, ctx = run("powershell", _write(tmp_path, "q.csv", text))
    assert len(df) == 3 and df["parse_status"].iloc[2] == "partial"
    assert [w.locator for w in ctx.warnings] == ["line=4"]


def test_event_csv_is_left_to_its_reader():
    text = '#TYPE System.Diagnostics.Eventing.Reader.EventLogRecord\n"Id","ProviderName"\n"1","x"\n'
    assert powershell.sniff_text(text) == 0


CLIXML = fixture("ps_exchangeserver_clixml.xml")


def test_clixml_typed_values():
    df, ctx = run("powershell", CLIXML)
    assert not ctx.warnings
    d = datas(df)[0]
    assert d["object"] == "exchange_server" and d["format"] == "clixml"
    assert d["AdminDisplayVersion"] == "Version 8.1 (Build 240.6)"  # ServerVersion by its ToString
    assert d["ServerRole"] == "Mailbox, ClientAccess, HubTransport"  # enum by its ToString
    assert d["IsHubTransportServer"] is True and d["Site"] is None
    assert d["ComponentStates"] == ["a\r\nb", 5]  # LST with _x000D__x000A_ unescaped, I32 typed
    assert df["host"].iloc[0] == "EXCH01" and df["locator"].iloc[0] == "line=2"
    # the independent reader agrees on the property names
    ns = {"ps": powershell._CLIXML_NS}
    names = etree.parse(str(CLIXML)).xpath("/ps:Objs/ps:Obj/ps:Props/*/@N", namespaces=ns)
    assert set(names) <= set(d)


def test_clixml_utf16_refs_and_several_objects(tmp_path):
    text = ('<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
            '<Obj RefId="0"><TN RefId="0"><T>Microsoft.Exchange.Data.QueueViewer.ExtensibleQueueInfo</T></TN>'
            '<Props><S N="Identity">EXCH01\\3</S><Obj N="Status" RefId="1"><TN RefId="1"><T>QueueStatus</T></TN>'
            '<ToString>Retry</ToString><I32>1</I32></Obj><I32 N="MessageCount">4</I32>'
            '<Obj N="NextHopDomain" RefId="2"><TNRef RefId="1"/><ToString>a.example</ToString></Obj></Props></Obj>'
            '<Obj RefId="3"><TNRef RefId="0"/><Props><S N="Identity">EXCH01\\4</S><Ref N="Status" RefId="1"/>'
            '<I32 N="MessageCount">0</I32></Props></Obj></Objs>')
    p = tmp_path / "q.xml"
    p.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert sniff_scores(p)["powershell"] == 95
    df, ctx = run("powershell", p)
    assert not ctx.warnings
    d = datas(df)
    assert [x["object"] for x in d] == ["queue", "queue"]
    assert d[1]["Status"] == "Retry" and d[0]["MessageCount"] == 4 and d[0]["NextHopDomain"] == "a.example"


def test_clixml_doctype_is_refused(tmp_path):
    p = tmp_path / "bomb.xml"
    p.write_text('<?xml version="1.0"?><!DOCTYPE Objs [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                 '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
                 '<Obj RefId="0"><Props><S N="Name">&b;</S></Props></Obj></Objs>')
    df, ctx = run("powershell", p)
    assert len(df) == 0 and "refused" in ctx.warnings[0].message


def test_clixml_cut_off_keeps_earlier_objects(tmp_path):
    body = CLIXML.read_text(encoding="utf-8").replace("</Objs>", "<Obj RefId=\"9\"><Props><S N=\"Name\">x")
    p = tmp_path / "cut.xml"
    p.write_text(body, encoding="utf-8")
    df, ctx = run("powershell", p)
    assert list(df["parse_status"]) == ["ok", "partial"]
    assert datas(df)[0]["Name"] == "EXCH01" and datas(df)[1]["Name"].strip() == "x"
    assert ctx.warnings and ctx.warnings[0].locator.startswith("line=")


def test_event_viewer_copy_details_is_not_claimed():
    """Event text blocks have 'Name: value' lines too; they stay eventtext's."""
    text = ("Log Name:      Application\nSource:        MSExchangeTransport\nDate:          1/1/2009\n"
            "Event ID:      15004\nLevel:         Warning\nComputer:      EXCH01\nDescription:\nx\n")
    assert powershell.sniff_text(text) == 0


def test_load_case_inventory(tmp_path):
    _write(tmp_path, "queues (2).log", fixture("ps_getqueue_fl.txt").read_text(encoding="utf-8"), "utf16")
    case = load_case(tmp_path)
    (entry,) = case.inventory
    assert entry.source == "powershell" and entry.kind == "powershell-export" and entry.rows == 3
    assert set(case.rows(kind="ps_object")["host"]) == {"EXCH01"}


def test_export_csv_use_culture_semicolons(tmp_path):
    text = fixture("ps_getqueue_notype.csv").read_text(encoding="utf-8").replace('","', '";"')
    d = datas(run("powershell", _write(tmp_path, "q.csv", text))[0])
    assert [x["MessageCount"] for x in d] == [0, 37] and d[1]["LastError"] == WRAPPED


def test_wrap_cut_after_a_space_keeps_it(tmp_path):
    text = ("Identity     : EXCH01\\3\n"
            "DeliveryType : DnsConnectorDelivery\n"
            "MessageCount : 1\n"
            "LastError    : 451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; \n"
            "               nonexistent domain\n"
            "Status       : Retry\n")
    d = datas(run("powershell", _write(tmp_path, "q.txt", text))[0])[0]
    assert d["LastError"] == WRAPPED and d["Status"] == "Retry"


def test_unknown_objects_need_a_prompt():
    block = "DeviceID     : C:\nDriveType    : 3\nFreeSpace    : 42949\nSize         : 4294757\n"
    assert powershell.sniff_text(block) == 0
    assert powershell.sniff_text("PS C:\\> Get-WmiObject Win32_Volume | fl\n\n" + block) == 55
