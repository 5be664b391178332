"""exchange-analyzer synth: descriptions -> real binary files, read back by
the project's sources and by independent readers."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from analyzer import load_case
from analyzer.cli import main

EVENTS = [
    {"provider": "MSExchangeTransport", "event_id": 326, "time_created": "2007-03-12T22:53:18Z",
     "level": 2, "qualifiers": 49152, "channel": "Application", "computer": "EXCH01.contoso.local",
     "data": ["/o=Contoso/ou=First Administrative Group/cn=Configuration/cn=Connections/cn=SMTP (EXCH01)/"
              "cn={CCCF3BE6-219C-4379-985D-851B766EDDC7}", "0x80040148"],
     "binary": "de ad be ef"},
    {"provider": "MSExchangeIS", "event_id": 1194, "time_created": 1173740000, "level": 2,
     "data": ["SMTP", "0x80004005"]},
]


def test_synth_evtx_from_json(tmp_path: Path) -> None:
    from evtx import PyEvtxParser

    desc = tmp_path / "events.json"
    desc.write_text(json.dumps(EVENTS))
    out = tmp_path / "case" / "Application.evtx"
    out.parent.mkdir()
    res = CliRunner().invoke(main, ["synth", "evtx", str(desc), str(out)])
    assert res.exit_code == 0, res.output
    recs = [json.loads(r["data"]) for r in PyEvtxParser(str(out)).records_json()]
    ids = [r["Event"]["System"]["EventID"] for r in recs]
    assert [i["#text"] if isinstance(i, dict) else i for i in ids] == [326, 1194]
    t = load_case(out.parent).table
    assert list(t["event_id"]) == [326, 1194]
    assert str(t["ts"].iloc[0]) == "2007-03-12 22:53:18+00:00"


def test_synth_evt_and_hive_from_yaml(tmp_path: Path) -> None:
    import pyevt
    from Registry import Registry

    (tmp_path / "evt.yaml").write_text(
        "events:\n"
        "  - {event_id: 10000, source: DCOM, time_generated: '2007-03-14T02:00:01', event_type: error,\n"
        "     strings: ['{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}', 'x'], data: '0102'}\n"
        "dirty: true\n")
    (tmp_path / "hive.yaml").write_text(
        "root_name: SOFTWARE\n"
        "keys:\n"
        "  'Microsoft\\ExMPLS':\n"
        "    DATA0: [REG_BINARY, '06 02 00 00']\n"
        "    Count: [REG_DWORD, 3]\n")
    runner = CliRunner()
    assert runner.invoke(main, ["synth", "evt", str(tmp_path / "evt.yaml"),
                                str(tmp_path / "SysEvent.Evt")]).exit_code == 0
    assert runner.invoke(main, ["synth", "hive", str(tmp_path / "hive.yaml"),
                                str(tmp_path / "SOFTWARE")]).exit_code == 0
    f = pyevt.file()
    f.open(str(tmp_path / "SysEvent.Evt"))
    rec = f.get_record(0)
    assert rec.event_identifier & 0xFFFF == 10000 and rec.source_name == "DCOM"
    f.close()
    key = Registry.Registry(str(tmp_path / "SOFTWARE")).open("Microsoft\\ExMPLS")
    assert key.value("DATA0").value() == b"\x06\x02\x00\x00"
    assert key.value("Count").value() == 3


def test_synth_bad_description_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('[{"provider": "X", "event_id": 1, "time_created": "yesterday"}]')
    res = CliRunner().invoke(main, ["synth", "evtx", str(tmp_path / "bad.json"), str(tmp_path / "o.evtx")])
    assert res.exit_code == 2
    assert "event 0: time_created: not an ISO 8601 time" in res.output
    assert not (tmp_path / "o.evtx").exists()


def test_synth_hive_refuses_absolute_key_paths(tmp_path: Path) -> None:
    (tmp_path / "h.json").write_text(json.dumps({"HKLM\\SOFTWARE\\Microsoft\\ExMPLS": {}}))
    res = CliRunner().invoke(main, ["synth", "hive", str(tmp_path / "h.json"), str(tmp_path / "H")])
    assert res.exit_code == 2 and "relative to the hive root" in res.output
