"""EdgeTransport.exe.config -> config rows; effective settings with the
Exchange 2007 / 2010 defaults from analyzer/knowledge/transport_config.yaml."""
from __future__ import annotations

import codecs

import pytest
from lxml import etree

from analyzer import knowledge, load_case
from analyzer.transport_settings import effective_settings, version_key

from ._texthelp import datas, fixture, run, sniff_scores

CONFIG = fixture("edgetransport_2007sp1.config")


def test_rows_per_appsettings_entry():
    df, ctx = run("transport-config", CONFIG)
    assert not ctx.warnings
    d = datas(df)
    assert [x["key"] for x in d] == ["AgentLogEnabled", "QueueDatabasePath", "QueueDatabaseLoggingPath",
                                     "IPFilterDatabasePath", "PercentageDatabaseDiskSpaceUsedHighThreshold",
                                     "versionBucketsHighThreshold", "DnsFaultTolerance", "AgentLogEnabled"]
    assert d[-1]["action"] == "remove" and d[1]["action"] == "add"
    assert df["value_name"].iloc[1] == "QueueDatabasePath" and df["value"].iloc[1] == r"D:\Queue\QueueDB"
    assert df["locator"].iloc[1] == "line=8"  # the commented-out key is not a row
    assert {x["application"] for x in d} == {"EdgeTransport"}
    assert d[5]["case_mismatch"] == "VersionBucketsHighThreshold" and d[5]["known"] is False
    assert d[1]["known"] is True and set(df["kind"]) == {"config"}
    # an independent reader sees the same add keys
    keys = etree.parse(str(CONFIG)).xpath("/configuration/appSettings/add/@key")
    assert keys == [x["key"] for x in d if x["action"] == "add"]


def test_utf16_file_and_sniff(tmp_path):
    text = CONFIG.read_text(encoding="utf-8").replace('encoding="utf-8"', 'encoding="utf-16"')
    p = tmp_path / "EdgeTransport.exe.config"
    p.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    scores = sniff_scores(p)
    assert scores["transport-config"] == 92 and max(v for k, v in scores.items() if k != "transport-config") < 92
    df, ctx = run("transport-config", p)
    assert len(df) == 8 and not ctx.warnings


@pytest.mark.parametrize("decl", [
    '<!DOCTYPE configuration [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE configuration [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
])
def test_doctype_and_entities_are_refused(tmp_path, decl):
    p = tmp_path / "EdgeTransport.exe.config"
    p.write_text(f'<?xml version="1.0"?>{decl}<configuration><appSettings>'
                 '<add key="QueueDatabasePath" value="&b;" /></appSettings></configuration>')
    case = load_case(tmp_path)
    (entry,) = case.inventory
    assert entry.source == "transport-config" and entry.status == "failed" and entry.rows == 0
    assert any("refused" in w for w in entry.warnings)


def test_malformed_xml_is_recovered_and_marked(tmp_path):
    p = tmp_path / "EdgeTransport.exe.config"
    p.write_text('<configuration>\n<appSettings>\n<add key="QueueDatabasePath" value="D:\\Q" />\n'
                 '<add key="EnableResourceMonitoring" value="false"\n</appSettings>\n')
    df, ctx = run("transport-config", p)
    assert list(df["value_name"]) == ["QueueDatabasePath", "EnableResourceMonitoring"]
    assert list(df["parse_status"]) == ["ok", "partial"]
    assert ctx.warnings[0].locator == "line=5" and ctx.partial


def test_other_dotnet_config_is_generic(tmp_path):
    p = tmp_path / "web.config"
    p.write_text('<configuration><appSettings><add key="Foo" value="1" /></appSettings></configuration>')
    assert sniff_scores(p)["transport-config"] == 60
    d = datas(run("transport-config", p)[0])
    assert d == [{"section": "appSettings", "action": "add", "key": "Foo", "value": "1", "known": False,
                  "application": None}]


def test_effective_settings_explicit_and_defaults():
    df, _ = run("transport-config", CONFIG)
    s = effective_settings(df, "8.1.340.1")
    assert s.version == "2007" and s.path == CONFIG.name
    assert s["QueueDatabasePath"].explicit and s.value("QueueDatabasePath") == r"D:\Queue\QueueDB"
    assert s["QueueDatabasePath"].row["locator"] == "line=8"
    assert s.value("PercentageDatabaseDiskSpaceUsedHighThreshold") == 98
    # the commented-out key and the mis-cased key leave the defaults in force
    assert s["EnableResourceMonitoring"].explicit is False and s.value("EnableResourceMonitoring") is True
    assert s["VersionBucketsHighThreshold"].explicit is False and s.value("VersionBucketsHighThreshold") == 200
    assert any("versionBucketsHighThreshold" in n for n in s.notes)
    assert "AgentLogEnabled" not in s.settings  # removed, and not a transport setting anyway
    assert s["BatchPointHighThreshold"].value is None and "2007" in s["BatchPointHighThreshold"].note


def test_defaults_per_version():
    empty = run("transport-config", CONFIG)[0].iloc[0:0]
    rtm, sp1, e14 = (effective_settings(empty, v) for v in ("8.0.685.25", "2007", "14.1.218.15"))
    assert (rtm.value("VersionBucketsHighThreshold"), sp1.value("VersionBucketsHighThreshold"),
            e14.value("VersionBucketsHighThreshold")) == (100, 200, 200)
    assert e14.value("QueueDatabasePath") == r"C:\Program Files\Microsoft\Exchange Server\V14\TransportRoles\data\Queue"
    assert sp1.value("QueueDatabasePath") == r"C:\Program Files\Microsoft\Exchange Server\TransportRoles\data\Queue"
    assert e14.value("SubmissionQueueHighThreshold") == 4000
    assert any("no EdgeTransport.exe.config" in n for n in sp1.notes)
    unknown = effective_settings(empty, None)
    assert unknown["VersionBucketsHighThreshold"].value is None and unknown["VersionBucketsHighThreshold"].note
    assert unknown.value("EnableResourceMonitoring") is True  # same in every version
    # every knowledge setting has a default entry for every version or "all"
    kn = knowledge.load("transport_config")
    for name, spec in kn["settings"].items():
        assert set(spec["default"]) <= set(kn["versions"]) | {"all"}, name
    assert version_key("14.3.123.4") == "2010" and version_key("6.5.7638") is None


def test_host_picks_the_config_below_its_folder(tmp_path):
    for host, value in (("HUB01", r"D:\Queue"), ("HUB02", r"E:\Queue")):
        (tmp_path / host / "Config").mkdir(parents=True)
        (tmp_path / host / "Config" / "EdgeTransport.exe.config").write_text(
            f'<configuration><appSettings><add key="QueueDatabasePath" value="{value}" />'
            '</appSettings></configuration>')
    case = load_case(tmp_path)
    assert effective_settings(case, "2007", host="hub02.contoso.local").value("QueueDatabasePath") == r"E:\Queue"
    s = effective_settings(case, "2007")
    assert s.path == "HUB02/Config/EdgeTransport.exe.config" and "2 EdgeTransport.exe.config" in s.notes[0]
