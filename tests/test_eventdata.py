"""Structured event fields (analyzer/eventdata.py) in every export form.

The same events (MSExchangeTransport 15004/15006 in the Exchange 2007 and
2010 wordings, 15002 of 2007 RTM, Application Error 1000 in its Windows
2003, 2008 and 2008 R2 forms, WER 1001, Application Hang 1002, Service
Control Manager 7031/7034) are read from .evtx and .evt files written by
analyzer/synth (and read back by independent readers: the Rust ``evtx``
crate and python-evtx; libevt-python for .evt) and from text exports kept
as fixtures (tests/fixtures/eventdata: KB blocks, Save-As .csv/.txt of 2003 and Vista+, Copy
details, wevtutil text and XML, Get-WinEvent CSV); each must give the same
``data`` fields.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from analyzer import eventdata, knowledge, messages
from analyzer.case import load_case
from analyzer.synth.evt import EvtRecord, write_evt
from analyzer.synth.evtx import LEVEL_ERROR, LEVEL_WARNING, EvtxEvent, write_evtx
from analyzer.table import row_data, rows_to_arrow, validate

FIX = Path(__file__).resolve().parent / "fixtures" / "eventdata"
T0 = datetime(2009, 1, 19, 15, 7, 0, tzinfo=timezone.utc)

# ------------------------------------------------------------------ expected

CRASH_2003 = {"app": "store.exe", "app_version": "8.1.240.6", "app_timestamp": "0x4805b44e",
              "module": "EXCDO.DLL", "module_version": "8.1.240.5", "module_timestamp": "0x4805b2e3",
              "debug": 0, "offset": "0x0004f3a1", "layout": "2003"}
CRASH_2008 = {"app": "store.exe", "app_version": "8.1.336.1", "app_timestamp": "0x48ea3d4f",
              "module": "EXCDO.DLL", "module_version": "8.1.336.0", "module_timestamp": "0x48ea3c12",
              "exception_code": "0xC0000005", "offset": "0x00000000001ed390", "pid": 0x1fc8,
              "start_time": "0x01c97b2d5e7f3a10", "layout": "2008"}
CRASH_R2 = {"app": "store.exe", "app_version": "8.1.375.2", "app_timestamp": "0x4a9c6e4f",
            "module": "EXCDO.DLL", "module_version": "8.1.375.1", "module_timestamp": "0x4a9c6d10",
            "exception_code": "0xC0000005", "offset": "0x00000000001ed390", "pid": 0x1fc8,
            "start_time": "0x01cabb7b3a5fd0e2",
            "app_path": "C:\\Program Files\\Microsoft\\Exchange Server\\Bin\\store.exe",
            "module_path": "C:\\Program Files\\Microsoft\\Exchange Server\\Bin\\EXCDO.DLL",
            "report_id": "5d1e2b3c-8a4f-11df-9c2e-0050568b4a21", "layout": "2008 R2+"}
SCM_7031 = {"service": "Microsoft Exchange Information Store", "crash_count": 2, "action_delay_ms": 60000,
            "action": "Restart the service"}
SCM_7034 = {"service": "Microsoft Exchange Information Store", "crash_count": 1}
#: The 2010 SP1 wording ("under pressure" / "disabled due to back pressure" / "in normal state").
BP_2010 = {
    "pressure_from": "Normal", "pressure_to": "High", "pressure": "High", "pressure_change": "increased",
    "disabled_components": ["Inbound mail submission from Hub Transport servers",
                            "Inbound mail submission from the Internet", "Mail submission from Pickup directory",
                            "Mail submission from Replay directory", "Mail submission from Mailbox server",
                            "Content aggregation"],
}
BP_2010_RESOURCES = [("Version buckets", 200, None, "High", {"normal": 80, "medium": 120, "high": 200}, None),
                     ("Queue database path", 99, "%", "High", {"normal": 95, "medium": 97, "high": 99},
                      "D:\\Queue\\mail.que"),
                     ("Queue database logging path", 40, "%", "Normal", {"normal": 92, "medium": 94, "high": 96},
                      "D:\\Queue\\"),
                     ("Private bytes", 14, "%", "Normal", {"normal": 71, "medium": 73, "high": 75}, None),
                     ("Physical memory load", 57, "%", None, None, None),
                     ("Batch Point", 0, None, "Normal", {"normal": 2000, "medium": 4000, "high": 8000}, None),
                     ("Submission Queue", 0, None, "Normal", {"normal": 1000, "medium": 2000, "high": 4000}, None)]


def _resources(d: dict) -> list[tuple]:
    return [(r["resource"], r["value"], r["unit"], r["level"], r.get("thresholds"), r.get("path"))
            for r in d.get("resources", [])]


def _fields(df, provider: str, eid: int) -> list[dict]:
    sel = df[(df["provider"] == provider) & (df["event_id"] == eid)]
    return [row_data(v) for v in sel["data"]]


def _subset(d: dict, expected: dict) -> dict:
    return {k: d.get(k) for k in expected}


# ------------------------------------------------------------------ text exports

BP_ROW = ("MSExchangeTransport", 15004, BP_2010, BP_2010_RESOURCES)
SAVEAS_2003 = [("Application Error", 1000, CRASH_2003, None), ("Service Control Manager", 7031, SCM_7031, None),
               BP_ROW]
TEXT_FORMS = {
    # file: [(provider, id, expected fields, expected resources or None)]
    "kb_blocks.txt": [("Application Error", 1000, CRASH_2003, None),
                      ("Microsoft Exchange Server", 1000,
                       {"app": "store.exe", "module": "exchmem.dll", "module_version": "6.5.7226.0",
                        "offset": "0x00004e3e", "debug": 0, "layout": "2003"}, None),
                      ("Service Control Manager", 7034, SCM_7034, None)],
    "saveas2003.csv": SAVEAS_2003,
    "saveas2003.txt": SAVEAS_2003,
    "copy_details.txt": [("Application Error", 1000, CRASH_R2, None)],
    "wevtutil_text.txt": [("Application Error", 1000, CRASH_2008, None),
                          ("Service Control Manager", 7031, SCM_7031, None), BP_ROW],
    "wevtutil_qe.xml": [("Application Error", 1000, CRASH_R2, None),
                        ("Service Control Manager", 7031, {**SCM_7031, "crash_count": 1, "action_number": 1},
                         None), BP_ROW],
    "vista_saveas.csv": [("Application Error", 1000, CRASH_2008, None),
                         ("Service Control Manager", 7034, SCM_7034, None), BP_ROW],
    "getwinevent.csv": [("Application Error", 1000, CRASH_R2, None),
                        ("Service Control Manager", 7034, SCM_7034, None), BP_ROW],
}


@pytest.fixture(scope="module")
def text_case():
    case = load_case(FIX)
    validate(case.table)
    return case


@pytest.mark.parametrize("fname", sorted(TEXT_FORMS))
def test_text_export_fields(text_case, fname: str) -> None:
    entry = next(e for e in text_case.inventory if e.path == fname)
    assert entry.status == "parsed" and not entry.warnings, entry
    df = text_case.table[text_case.table["path"] == fname]
    for provider, eid, expected, resources in TEXT_FORMS[fname]:
        got = _fields(df, provider, eid)
        assert got, (fname, provider, eid)
        d = got[0]
        assert _subset(d, expected) == expected, (fname, provider, eid)
        if resources is not None:
            assert _resources(d) == resources, fname


def test_text_export_2003_description_not_found(text_case) -> None:
    """A 2003 text export without the message DLL: the fields come from the
    insertion strings the description lists."""
    df = text_case.table[text_case.table["path"] == "kb_blocks.txt"]
    rows = _fields(df, "Application Error", 1000)
    assert len(rows) == 2
    assert rows[1]["strings"][0] == "store.exe"
    assert _subset(rows[1], CRASH_2003) == CRASH_2003


def test_kb_2007_sp1_and_rtm_wordings(text_case) -> None:
    df = text_case.table[text_case.table["path"] == "kb_blocks.txt"]
    sp1 = _fields(df, "MSExchangeTransport", 15004)[0]
    assert (sp1["pressure_from"], sp1["pressure_to"], sp1["pressure"]) == ("Normal", "Medium", "Medium")
    assert _resources(sp1) == [("Version buckets", 130, None, "Medium",
                                {"normal": 80, "medium": 120, "high": 200}, None)]
    assert sp1["disabled_components"] == ["Inbound mail submission from the Internet",
                                          "Mail submission from the Pickup directory",
                                          "Mail submission from the Replay directory",
                                          "Mail delivery to remote domains"]
    rtm = _fields(df, "MSExchangeTransport", 15002)[0]
    assert rtm["pressure"] == "MediumHigh" and rtm["pressure_change"] == "constant"
    assert "pressure_from" not in rtm and "disabled_components" not in rtm
    queue = rtm["resources"][0]
    assert queue["resource"] == "Queue database and disk space"
    assert queue["path"].endswith("\\Queue\\mail.que")  # curly quotes of the web copy
    assert (queue["value"], queue["level"], queue["thresholds"]) == (
        64, "MediumHigh", {"normal": 61, "medium": 63, "high": 65})
    assert rtm["resources"][-1] == {"resource": "Physical memory load", "value": 64, "unit": "%",
                                    "level": None, "limit": 94,
                                    "text": "Physical memory load = 64% [limit is 94% to start dehydrating "
                                            "messages.]"}
    assert rtm["effect"].startswith("Inbound mail submission from the Internet, the Pickup directory")


def test_copy_details_wer_and_2010_15006(text_case) -> None:
    df = text_case.table[text_case.table["path"] == "copy_details.txt"]
    wer = _fields(df, "Windows Error Reporting", 1001)[0]
    assert (wer["bucket"], wer["bucket_type"], wer["event_name"]) == ("1520553372", 1, "APPCRASH")
    assert wer["signature"][:4] == ["store.exe", "8.1.375.2", "4a9c6e4f", "EXCDO.DLL"]
    assert _subset(wer, {k: CRASH_R2[k] for k in ("app", "module", "module_version", "exception_code",
                                                  "offset", "report_id")}) == \
        {k: CRASH_R2[k] for k in ("app", "module", "module_version", "exception_code", "offset", "report_id")}
    bp = _fields(df, "MSExchangeTransport", 15006)[0]
    assert "pressure_to" not in bp  # 15006 states the cause, not a level change
    assert [(r["resource"], r["value"], r["level"]) for r in bp["resources"]][:2] == [
        ("Queue database logging path", 96, "High"), ("Physical memory load", 90, None)]
    assert bp["resources"][0]["path"] == \
        "C:\\Program Files\\Microsoft\\Exchange Server\\V14\\TransportRoles\\data\\Queue\\"
    assert bp["disabled_components"][-1] == "Content aggregation"


def test_wevtutil_application_hang_2008(text_case) -> None:
    df = text_case.table[text_case.table["path"] == "wevtutil_text.txt"]
    hang = _fields(df, "Application Hang", 1002)[0]
    assert _subset(hang, {"app": "OUTLOOK.EXE", "app_version": "12.0.6514.5000", "pid": 0x1a2c,
                          "report_id": "7c3b2a10-be8e-11df-a35d-0014227b743d", "layout": "2008"}) == \
        {"app": "OUTLOOK.EXE", "app_version": "12.0.6514.5000", "pid": 0x1a2c,
         "report_id": "7c3b2a10-be8e-11df-a35d-0014227b743d", "layout": "2008"}
    assert hang["app_path"].endswith("\\Office12\\OUTLOOK.EXE")


def test_text_export_labels_are_not_insertion_strings(text_case) -> None:
    """wevtutil text puts Keywords/Opcode into data; the SCM row must not
    read "Classic" as its service."""
    df = text_case.table[text_case.table["path"] == "wevtutil_text.txt"]
    scm = _fields(df, "Service Control Manager", 7031)[0]
    assert scm["Keywords"] == "Classic" and scm["service"] == "Microsoft Exchange Information Store"


# ------------------------------------------------------------------ .evtx

BP_BODY = ("\r\n\r\nThe following resources are under pressure:\r\n"
           "Version buckets = 200 [High] [Normal=80 Medium=120 High=200]\r\n"
           "Queue database path (\"D:\\Queue\\mail.que\") = 99% [High] [Normal=95% Medium=97% High=99%]\r\n"
           "The following components are disabled due to back pressure:\r\n"
           + "\r\n".join(BP_2010["disabled_components"])
           + "\r\nThe following resources are in normal state:\r\n"
           "Queue database logging path (\"D:\\Queue\\\") = 40% [Normal] [Normal=92% Medium=94% High=96%]\r\n"
           "Private bytes = 14% [Normal] [Normal=71% Medium=73% High=75%]\r\n"
           "Physical memory load = 57% [limit is 94% to start dehydrating messages.]\r\n"
           "Batch Point = 0 [Normal] [Normal=2000 Medium=4000 High=8000]\r\n"
           "Submission Queue = 0 [Normal] [Normal=1000 Medium=2000 High=4000]")
BP_2007_BODY = ("\r\n\r\nResource utilization of the following resources exceed the normal level:\r\n"
                "Queue database and disk space (\"D:\\Queue\\mail.que\") = 99% [High] [Normal=95% Medium=97% High=99%]"
                "\r\n\r\nBack pressure caused the following components to be disabled:\r\n"
                "Inbound mail submission from Hub Transport servers\r\nInbound mail submission from the Internet"
                "\r\n\r\nThe following resources are in the normal state:\r\n"
                "Version buckets = 12 [Normal] [Normal=80 Medium=120 High=200]")
CRASH_2008_STRINGS = ["store.exe", "8.1.336.1", "48ea3d4f", "EXCDO.DLL", "8.1.336.0", "48ea3c12", "c0000005",
                      "00000000001ed390", "1fc8", "01c97b2d5e7f3a10"]
CRASH_R2_STRINGS = ["store.exe", "8.1.375.2", "4a9c6e4f", "EXCDO.DLL", "8.1.375.1", "4a9c6d10", "c0000005",
                    "00000000001ed390", "1fc8", "01cabb7b3a5fd0e2",
                    "C:\\Program Files\\Microsoft\\Exchange Server\\Bin\\store.exe",
                    "C:\\Program Files\\Microsoft\\Exchange Server\\Bin\\EXCDO.DLL",
                    "5d1e2b3c-8a4f-11df-9c2e-0050568b4a21"]
WER_STRINGS = ["1520553372", "1", "APPCRASH", "Not available", "0", "store.exe", "8.1.375.2", "4a9c6e4f",
               "EXCDO.DLL", "8.1.375.1", "4a9c6d10", "c0000005", "00000000001ed390", "", "",
               "C:\\ProgramData\\Microsoft\\Windows\\WER\\ReportQueue\\x\\WER461A.tmp", "C:\\ProgramData\\x", "",
               "0", "5d1e2b3c-8a4f-11df-9c2e-0050568b4a21", "4"]
HANG_STRINGS = ["OUTLOOK.EXE", "12.0.6514.5000", "1a2c", "01cb529b9435da30", "0",
                "C:\\Program Files\\Microsoft Office\\Office12\\OUTLOOK.EXE", "7c3b2a10-be8e-11df-a35d-0014227b743d"]


def _evtx_events() -> list[EvtxEvent]:
    app = dict(channel="Application", computer="MBX01.contoso.com", qualifiers=0, task=100)
    return [
        EvtxEvent("MSExchangeTransport", 15004, T0, level=LEVEL_WARNING, channel="Application",
                  computer="HUB01.contoso.com", qualifiers=32772, task=15, data=["Normal", "High", BP_BODY]),
        EvtxEvent("MSExchangeTransport", 15004, T0, level=LEVEL_WARNING, channel="Application",
                  computer="HUB02.contoso.com", qualifiers=32772, task=15,
                  data=["Normal", "High", BP_2007_BODY]),
        EvtxEvent("Application Error", 1000, T0, level=LEVEL_ERROR, data=CRASH_2008_STRINGS, **app),
        EvtxEvent("Application Error", 1000, T0, level=LEVEL_ERROR, data=CRASH_R2_STRINGS, **app),
        EvtxEvent("Windows Error Reporting", 1001, T0, channel="Application", computer="MBX01.contoso.com",
                  qualifiers=0, data=WER_STRINGS),
        EvtxEvent("Application Hang", 1002, T0, level=LEVEL_ERROR, data=HANG_STRINGS, **app),
        EvtxEvent("Service Control Manager", 7031, T0, level=LEVEL_ERROR, channel="System",
                  computer="MBX01.contoso.com", qualifiers=49152,
                  provider_guid="{555908d1-a6d7-4695-8e1e-26931d2012f4}",
                  event_source_name="Service Control Manager",
                  data={"param1": "Microsoft Exchange Information Store", "param2": "2", "param3": "60000",
                        "param4": "1", "param5": "Restart the service"}),
        EvtxEvent("Service Control Manager", 7034, T0, level=LEVEL_ERROR, channel="System",
                  computer="MBX01.contoso.com", qualifiers=49152,
                  data={"param1": "Microsoft Exchange Information Store", "param2": "1"}),
        # an unrelated provider's 1000: no crash fields
        EvtxEvent("LoadPerf", 1000, T0, channel="Application", data=["ASP.NET", "ASP.NET_2.0.50727"]),
    ]


@pytest.mark.parametrize("backend", ["rust", "python"])
def test_evtx_fields(tmp_path: Path, backend: str) -> None:
    pytest.importorskip("evtx" if backend == "rust" else "Evtx.Evtx")
    write_evtx(tmp_path / "Application.evtx", _evtx_events())
    case = load_case(tmp_path, evtx_backend=backend)
    df = case.table
    validate(df)
    assert len(df) == 9
    bp, bp2007 = _fields(df, "MSExchangeTransport", 15004)
    assert _subset(bp, BP_2010) == BP_2010 and _resources(bp) == BP_2010_RESOURCES
    assert bp["strings"][0] == "Normal"  # the insertion strings stay
    assert (bp2007["pressure_to"], bp2007["disabled_components"]) == (
        "High", ["Inbound mail submission from Hub Transport servers", "Inbound mail submission from the Internet"])
    assert [(r["resource"], r["level"]) for r in bp2007["resources"]] == [
        ("Queue database and disk space", "High"), ("Version buckets", "Normal")]
    c2008, r2 = _fields(df, "Application Error", 1000)
    assert _subset(c2008, CRASH_2008) == CRASH_2008
    assert _subset(r2, CRASH_R2) == CRASH_R2
    msg = df[(df["provider"] == "Application Error")]["message"].tolist()
    assert msg[0].startswith("Faulting application store.exe, version 8.1.336.1, time stamp 0x48ea3d4f")
    assert msg[1].startswith("Faulting application name: store.exe, version: 8.1.375.2")
    wer = _fields(df, "Windows Error Reporting", 1001)[0]
    assert (wer["event_name"], wer["app"], wer["module"], wer["offset"], wer["report_id"]) == (
        "APPCRASH", "store.exe", "EXCDO.DLL", "0x00000000001ed390", "5d1e2b3c-8a4f-11df-9c2e-0050568b4a21")
    hang = _fields(df, "Application Hang", 1002)[0]
    assert (hang["app"], hang["pid"], hang["layout"]) == ("OUTLOOK.EXE", 0x1a2c, "2008")
    s7031 = _fields(df, "Service Control Manager", 7031)[0]
    assert _subset(s7031, SCM_7031) == SCM_7031 and s7031["param1"] == SCM_7031["service"]
    assert _subset(_fields(df, "Service Control Manager", 7034)[0], SCM_7034) == SCM_7034
    other = _fields(df, "LoadPerf", 1000)[0]
    assert set(other) == {"strings"}


# ------------------------------------------------------------------ .evt

CRASH_2003_STRINGS = ["store.exe", "8.1.240.6", "4805b44e", "EXCDO.DLL", "8.1.240.5", "4805b2e3", "0", "0004f3a1"]


def _evt_records() -> list[EvtRecord]:
    return [
        EvtRecord(1000, "Application Error", T0, event_type="error", computer="MBX01", category=0,
                  strings=CRASH_2003_STRINGS),
        EvtRecord(7034, "Service Control Manager", T0, event_type="error", computer="MBX01",
                  strings=["Microsoft Exchange Information Store", "1"]),
        EvtRecord(1000, "Application Error", T0, event_type="error", computer="MBX01",
                  strings=["store.exe", "6.5.6944.0", "EXCDO.DLL", "6.5.6944.0", "0004f3a1"]),
        EvtRecord(7031, "Service Control Manager", T0, event_type="error", computer="MBX01",
                  strings=["Microsoft Exchange Information Store", "2", "60000", "1", "Restart the service"]),
        EvtRecord(15004, "MSExchangeTransport", T0, event_type="warning", computer="HUB01", category=15,
                  strings=["Normal", "High", BP_BODY]),
        EvtRecord(1002, "Application Hang", T0, event_type="error", computer="MBX01",
                  strings=["outlook.exe", "11.0.8217.0", "hungapp", "0.0.0.0", "00000000"]),
    ]


def test_evt_fields(tmp_path: Path) -> None:
    write_evt(tmp_path / "AppEvent.Evt", _evt_records())
    case = load_case(tmp_path)
    df = case.table
    validate(df)
    sp1, rtm = _fields(df, "Application Error", 1000)
    assert _subset(sp1, CRASH_2003) == CRASH_2003
    assert (rtm["app"], rtm["module"], rtm["module_version"], rtm["offset"], rtm["layout"]) == (
        "store.exe", "EXCDO.DLL", "6.5.6944.0", "0x0004f3a1", "2003")
    assert list(df[df["provider"] == "Application Error"]["message"]) == [
        "Faulting application store.exe, version 8.1.240.6, stamp 4805b44e, faulting module EXCDO.DLL, "
        "version 8.1.240.5, stamp 4805b2e3, debug? 0, fault address 0x0004f3a1.",
        "Faulting application store.exe, version 6.5.6944.0, faulting module EXCDO.DLL, version 6.5.6944.0, "
        "fault address 0x0004f3a1."]
    assert _subset(_fields(df, "Service Control Manager", 7034)[0], SCM_7034) == SCM_7034
    s7031 = _fields(df, "Service Control Manager", 7031)[0]
    assert _subset(s7031, SCM_7031) == SCM_7031 and s7031["action_number"] == 1
    assert df[df["event_id"] == 7031]["message"].iloc[0].endswith("60000 milliseconds: Restart the service.")
    bp = _fields(df, "MSExchangeTransport", 15004)[0]
    assert _subset(bp, BP_2010) == BP_2010 and _resources(bp) == BP_2010_RESOURCES
    hang = _fields(df, "Application Hang", 1002)[0]
    assert (hang["app"], hang["module"], hang["offset"], hang["layout"]) == (
        "outlook.exe", "hungapp", "0x00000000", "2003")


def test_evt_strings_read_back_independently(tmp_path: Path) -> None:
    """libevt-python reads the same insertion strings the fields came from."""
    pyevt = pytest.importorskip("pyevt")
    path = tmp_path / "AppEvent.Evt"
    write_evt(path, _evt_records())
    f = pyevt.file()
    f.open(str(path))
    try:
        got = [(r.source_name, r.event_identifier & 0xFFFF,
                [r.get_string(i) for i in range(r.number_of_strings)]) for r in f.records]
    finally:
        f.close()
    assert got == [(r.source, r.event_id, list(r.strings)) for r in _evt_records()]
    assert got[0][2] == CRASH_2003_STRINGS


# ------------------------------------------------------------------ the step itself

def test_enrich_touches_only_rows_with_a_parser() -> None:
    rows = [
        {"kind": "event", "provider": "Service Control Manager", "event_id": 7036, "source": "evt",
         "path": "a", "locator": "record=1", "data": {"strings": ["X", "running"]}},
        {"kind": "event", "provider": "Microsoft-Windows-Service Control Manager", "event_id": 7034,
         "source": "evtx", "path": "a", "locator": "record=2",
         "data": {"param1": "Microsoft Exchange Information Store", "param2": "1"}},
        {"kind": "registry_value", "source": "hive", "path": "b", "locator": "key=x", "value": "1"},
        {"kind": "event", "provider": "Service Control Manager", "event_id": 7034, "source": "evt",
         "path": "a", "locator": "record=3", "data": '{"strings": ["Svc"], "service": "kept"}'},
        {"kind": "event", "provider": "Service Control Manager", "event_id": 7034, "source": "evt",
         "path": "a", "locator": "record=4", "data": "not json"},
    ]
    table = rows_to_arrow(rows)
    out = eventdata.enrich(table)
    data = out.column("data").to_pylist()
    assert data[0] == table.column("data")[0].as_py()  # 7036 has no parser
    assert json.loads(data[1])["service"] == "Microsoft Exchange Information Store"  # alias provider
    assert data[2] is None
    assert json.loads(data[3])["service"] == "kept"  # an existing key is never overwritten
    assert data[4] == "not json"
    assert out.schema == table.schema
    empty = rows_to_arrow(rows[:1])
    assert eventdata.enrich(empty) is empty  # no candidate row: the table itself


def test_every_declared_parser_exists_and_emits_declared_keys() -> None:
    spec = knowledge.load("events")["fields"]
    assert set(spec) == set(eventdata.PARSERS)
    samples = {
        "back_pressure": (15004, ["Normal", "High", BP_BODY]),
        "app_crash": (1000, CRASH_R2_STRINGS),
        "wer_report": (1001, WER_STRINGS),
        "app_hang": (1002, HANG_STRINGS),
        "service": (7031, ["Microsoft Exchange Information Store", "2", "60000", "1", "Restart the service"]),
    }
    for name, (eid, strings) in samples.items():
        got = eventdata.PARSERS[name](eid, strings, "")
        assert got and set(got) <= set(eventdata.declared_keys(name)), name
    for name, providers in ((n, s["providers"]) for n, s in spec.items()):
        for provider, ids in providers.items():
            for eid in ids:
                assert eventdata.parser_for(provider, eid) == name


# ------------------------------------------------------------------ texts as published

def test_seed_15004_redacted_value() -> None:
    text = ("Resource pressure increased from Normal to Medium.\n\nResource utilization of the following "
            "resources exceed the normal level:\n\nVersion buckets = XXX [Medium] [Normal=80 Medium=120 High=200]"
            "\n\nBack pressure caused the following components to be disabled:\n\nInbound mail submission "
            "from the Internet\n\nMail submission from the Pickup directory\n\nMail submission from the Replay "
            "directory\n\nMail delivery to remote domains\n")
    d = eventdata.fields("MSExchangeTransport", 15004, None, text)
    r = d["resources"][0]
    assert (r["value"], r["value_text"], r["level"]) == (None, "XXX", "Medium")
    assert len(d["disabled_components"]) == 4


def test_collapsed_web_copy_and_markdown_escapes() -> None:
    text = ("The Microsoft Exchange Transport service is rejecting message submissions because the service "
            "continues to consume more memory than the configured threshold.\nResource utilization of the "
            "following resources exceed the normal level: Private bytes = 75% \\[High\\] \\[Normal=71% "
            "Medium=73% High=75%\\]\nBack pressure caused the following components to be disabled: Inbound "
            "mail submission from Hub Transport servers Inbound mail submission from the Internet Mail "
            "submission from the Pickup directory Loading of e-mail from the queuing database (if available)\n"
            "The following resources are in the normal state: Queue database and disk space "
            "(\u00ab c:\\q\\mail.que \u00bb) = 22% [Normal] [Normal=94% Medium=96% High=98%] Version buckets = 0 "
            "[Normal] [Normal=80 Medium=120 High=200] Physical memory load = 57% [limit is 94% before message "
            "dehydration occurs.]")
    d = eventdata.fields("MSExchangeTransport", 15007, None, text)
    assert [(r["resource"], r["value"], r["level"]) for r in d["resources"]] == [
        ("Private bytes", 75, "High"), ("Queue database and disk space", 22, "Normal"),
        ("Version buckets", 0, "Normal"), ("Physical memory load", 57, None)]
    assert d["resources"][1]["path"] == "c:\\q\\mail.que"
    assert d["disabled_components"] == [
        "Inbound mail submission from Hub Transport servers", "Inbound mail submission from the Internet",
        "Mail submission from the Pickup directory", "Loading of e-mail from the queuing database (if available)"]


@pytest.mark.parametrize("text,expected", [
    # the blog's Windows 2008 line, values redacted by its author
    ("Faulting application store.exe, version XXXX, time stamp XXXX, faulting module EXCDO.DLL, version XXXX, "
     "time stamp XXXX, exception code XXXX, fault offset 0x00000000001ed390, process id 0x1fc8, application "
     "start time XXXX.",
     {"app": "store.exe", "module": "EXCDO.DLL", "module_version": "XXXX", "offset": "0x00000000001ed390",
      "pid": 0x1fc8, "exception_code": "XXXX", "layout": "2008"}),
    # a shortened 2003 line as tickets carry it
    ("Faulting application store.exe, version 8.1.240.6, faulting module EXCDO.DLL, version 8.1.240.5, "
     "address 0x0004f3a1.",
     {"app": "store.exe", "app_version": "8.1.240.6", "module": "EXCDO.DLL", "module_version": "8.1.240.5",
      "offset": "0x0004f3a1", "layout": "2003"}),
    # doubled prefix, upper-case hex, a web copy's wrapped label
    ("Faulting application name: w3wp.exe, version: 7.5.7600.16385, time\nstamp: 0x4a5bd0eb\nFaulting module "
     "name: ntdll.dll, version: 6.1.7600.16385, time stamp: 0x4a5bdfe0\nException code: 0XC0000374\n"
     "Fault offset: 0x0xa078\nFaulting process id: 0x960\n",
     {"app": "w3wp.exe", "module": "ntdll.dll", "exception_code": "0xC0000374", "offset": "0xa078",
      "pid": 0x960, "app_timestamp": "0x4a5bd0eb", "layout": "2008 R2+"}),
])
def test_crash_text_shapes(text: str, expected: dict) -> None:
    d = eventdata.fields("Application Error", 1000, None, text)
    assert _subset(d, expected) == expected


def test_unreadable_text_is_marked(tmp_path: Path) -> None:
    """A French 7034 and a .NET "EventType clr20r3" 1000 have no fields the
    parsers can read: the rows say so instead of looking healthy."""
    (tmp_path / "ev.txt").write_text(
        "Event Type:\tError\nEvent Source:\tService Control Manager\nEvent ID:\t7034\nDescription:\n"
        "Le service Banque d\u2019informations Microsoft Exchange s\u2019est arr\u00eat\u00e9 de fa\u00e7on "
        "inattendue. Il s\u2019est produit 1 fois.\n\n"
        "Event Type:\tError\nEvent Source:\t.NET Runtime 2.0 Error Reporting\nEvent ID:\t1000\nDescription:\n"
        "EventType clr20r3, P1 w3wp.exe, P2 6.0.3790.1830, P3 42435be1\n", encoding="utf-8")
    df = load_case(tmp_path).table
    assert [row_data(v).get("fields_unread") for v in df["data"]] == ["service", "app_crash"]


def test_non_crash_text_gives_nothing() -> None:
    assert eventdata.fields(".NET Runtime 2.0 Error Reporting", 1000, None,
                            "EventType clr20r3, P1 w3wp.exe, P2 6.0.3790.1830") == {}
    assert eventdata.fields("Application Error", 1000, {"strings": ["a", "b"]}, "") == {}
    assert eventdata.fields("DCOM", 10000, None, "Unable to start a DCOM Server") == {}


def test_catalog_templates_for_the_new_events() -> None:
    assert messages.render("MSExchangeTransport", 15005, ["Medium", "Normal", "\r\n\r\nx"]) == \
        "The resource pressure decreased from Medium to Normal.\r\n\r\nx"
    hang = messages.render("Application Hang", 1002, ["outlook.exe", "11.0.8217.0", "hungapp", "0.0.0.0",
                                                      "00000000"])
    assert hang == ("Hanging application outlook.exe, version 11.0.8217.0, hang module hungapp, version 0.0.0.0, "
                    "hang address 0x00000000.")
    assert "Faulting package full name: pkg" in messages.render("Application Error", 1000,
                                                                 CRASH_R2_STRINGS + ["pkg", "app"])


# ------------------------------------------------------------------ real Windows files

def test_real_windows_crash_wer_and_scm_events(corpus_dir: Path) -> None:
    """Real .evtx from Windows 7 / 10 (shared corpus): Application Error 1000
    with 13 strings, WER 1001 with 21, Service Control Manager 7031 with
    param1..param5 (whose %5 is the action text the catalog renders)."""
    app = load_case(corpus_dir / "evtx" / "deepblue-many-events-application.evtx").table
    crash = _fields(app, "Application Error", 1000)[0]
    assert _subset(crash, {"app": "rundll32.exe", "module": "KERNELBASE.dll", "exception_code": "0xC0000005",
                           "offset": "0x00000003", "pid": 0xffc, "layout": "2008 R2+"}) == \
        {"app": "rundll32.exe", "module": "KERNELBASE.dll", "exception_code": "0xC0000005",
         "offset": "0x00000003", "pid": 0xffc, "layout": "2008 R2+"}
    wers = _fields(app, "Windows Error Reporting", 1001)
    assert wers and all("fields_unread" not in w and len(w["signature"]) == 10 for w in wers)
    assert wers[0]["report_id"] == wers[0]["strings"][19]
    system = load_case(corpus_dir / "evtx" / "sample-with-zero-data-size-event.evtx").table
    scm = _fields(system, "Service Control Manager", 7031)[0]
    assert _subset(scm, {"service": "Sync Host_Session2", "crash_count": 1, "action_delay_ms": 10000,
                         "action": "Restart the service"}) == \
        {"service": "Sync Host_Session2", "crash_count": 1, "action_delay_ms": 10000, "action": "Restart the service"}
    msg = system[system["event_id"] == 7031]["message"].iloc[0]
    assert msg.endswith("will be taken in 10000 milliseconds: Restart the service.")
