"""Endpoint-mapper dumps: Resource Kit / Todd Sabin rpcdump, impacket
rpcdump.py, PortQry -e 135 -> ``endpoint`` rows."""
from __future__ import annotations

import re
import shutil

import pytest

from analyzer.case import load_case
from analyzer.table import validate

from ._texthelp import ENCODINGS, SEEDS, datas, encode_variant, fixture, run

COMPLETE_UUIDS = {
    "38a94e72-a9bc-11d2-8faf-00c04fa378ff", "9e8ee830-4459-11ce-979b-00aa005ffebe",
    "a4f1db00-ca47-1067-b31f-00dd010662da", "0e4a0156-dd5d-11d2-8c2f-00c04fb6bcde",
    "1453c42c-0fa6-11d2-a910-00c04f990f3b", "10f24e8e-0fa6-11d2-a910-00c04f990f3b",
    "99e64010-b032-11d0-97a4-00c04fd6551d", "89742ace-a9ed-11cf-9c0c-08002be7ae86",
    "a4f1db00-ca47-1067-b31e-00dd010662da", "f5cc5a18-4264-101a-8c59-08002b2f8426",
    "1544f5e0-613c-11d1-93df-00c04fd7bd09", "f930c514-1215-11d3-99a5-00a0c9b61b04",
    "83d72bf0-0d89-11ce-b13f-00aa003bac6c", "469d6ec0-0d87-11ce-b13f-00aa003bac6c",
}
MISSING_UUIDS = {
    "38a94e72-a9bc-11d2-8faf-00c04fa378ff", "9e8ee830-4459-11ce-979b-00aa005ffebe",
    "f5cc5a18-4264-101a-8c59-08002b2f8426", "1544f5e0-613c-11d1-93df-00c04fd7bd09",
}


def _check_complete(df):
    d = datas(df)
    assert len(df) == 45  # 14 interfaces x 3 addresses + STORE ADMIN 99e64010 listed twice
    assert {x["uuid"] for x in d} == COMPLETE_UUIDS
    assert {x["address"] for x in d} == {"10.0.100.32", "10.0.100.33", "10.0.100.34"}
    assert sum(1 for x in d if x["uuid"] == "99e64010-b032-11d0-97a4-00c04fd6551d") == 6
    assert {x["exchange_group"] for x in d} == {"Information Store", "System Attendant", "MTA",
                                                "Directory (NSPI/RFR)"}
    assert all(x["state"] == "NOT_PINGED" and x["protocol"] == "ncacn_ip_tcp" for x in d)
    ports = {x["uuid"]: x["port"] for x in d}
    assert ports["a4f1db00-ca47-1067-b31f-00dd010662da"] == 1033
    assert ports["38a94e72-a9bc-11d2-8faf-00c04fa378ff"] == 1987
    # KB's typo "MS ExchangeDirectory NSPI Proxy" still maps to the NSPI interface
    typo = [x for x in d if x["annotation"] == "MS ExchangeDirectory NSPI Proxy"]
    assert len(typo) == 1 and typo[0]["interface"] == "MS Exchange Directory NSPI Proxy"
    assert set(df["kind"]) == {"endpoint"} and set(df["source"]) == {"rpcdump"}


def _check_missing(df):
    d = datas(df)
    assert len(df) == 12
    assert {x["uuid"] for x in d} == MISSING_UUIDS
    groups = {x["exchange_group"] for x in d}
    assert "Information Store" not in groups and "System Attendant" not in groups
    assert {x["port"] for x in d if x["exchange_group"] == "MTA"} == {3595}


def test_kb926210_complete_listing():
    df, ctx = run("rpcdump", fixture("rpcdump_kb926210_complete.txt"))
    _check_complete(df)
    assert not ctx.warnings
    assert set(df["host"]) == {"EXCH01"}  # from the `rpcdump /S EXCH01` prompt line
    assert df["locator"].iloc[0] == "line=3"


def test_kb926210_missing_listing():
    df, ctx = run("rpcdump", fixture("rpcdump_kb926210_missing.txt"))
    _check_missing(df)
    assert not ctx.warnings


def test_kb926210_listings_straight_from_the_seed(tmp_path):
    seed = SEEDS / "002_a5b9b3c4c3d940b7.txt"
    if not seed.exists():
        pytest.skip("shared seeds not present")
    text = seed.read_text(encoding="utf-8")
    parts = re.split(r"^The following sample output shows.*$", text, flags=re.M)
    assert len(parts) == 3
    complete, missing = parts[1], parts[2].split("Step 2:")[0]
    for body, check in ((complete, _check_complete), (missing, _check_missing)):
        p = tmp_path / "rpc.txt"
        p.write_text(body, encoding="utf-8")
        df, _ = run("rpcdump", p)
        check(df)


def test_reskit_protseq_sections_pipes_lrpc_and_states():
    df, ctx = run("rpcdump", fixture("rpcdump_reskit_protseqs.txt"))
    d = datas(df)
    assert not ctx.warnings
    assert [x["protocol"] for x in d] == ["ncacn_np", "ncacn_np", "ncalrpc", "ncacn_ip_tcp",
                                          "ncacn_ip_tcp", "ncadg_ip_udp", "ncacn_http"]
    assert d[0]["address"] == "\\\\EXCH01" and d[0]["endpoint"] == "\\PIPE\\lsass"
    assert "port" not in d[0] and d[0]["annotation"] is None  # empty annotation
    assert d[1]["state"] == "NO"
    assert d[2]["address"] is None and d[2]["endpoint"] == "OLE7"
    assert d[3]["state"] == "YES" and d[3]["port"] == 1025
    assert d[5]["port"] == 1029 and d[6]["port"] == 6001
    assert d[6]["interface"] == "Exchange Server STORE EMSMDB Interface"


def test_tburke_fragment_without_addresses():
    df, _ = run("rpcdump", fixture("rpcdump_tburke_fragment.txt"))
    d = datas(df)
    assert len(d) == 7 and all(x["address"] is None and x["state"] == "YES" for x in d)
    nsp = next(x for x in d if x["uuid"].startswith("f5cc5a18"))
    assert nsp["annotation"] == "MS Exchange Directory NSP Interface"
    assert nsp["exchange_group"] == "Directory (NSPI/RFR)"


def test_todd_sabin_records_with_mgmt_probe():
    df, ctx = run("rpcdump", fixture("rpcdump_sabin.txt"))
    d = datas(df)
    assert not ctx.warnings
    assert len(d) == 3
    assert d[0]["version"] == "1.0" and d[0]["state"] == "YES" and d[0]["port"] == 1028
    assert d[0]["mgmt_interfaces"] == [
        {"uuid": "367abb81-9844-35f1-ad32-98f038001003", "version": "2.0"},
        {"uuid": "93149ca2-973b-11d1-8c39-00c04fb984f9", "version": "0.0"}]
    assert d[1]["state"] == "NO" and d[1]["version"] == "0.81"
    assert d[1]["exchange_group"] == "Information Store"
    assert d[2]["state"] is None and d[2]["endpoint"] == "\\PIPE\\mad"
    assert set(df["host"]) == {"192.168.189.1"}


def test_impacket_blocks_one_row_per_binding():
    df, ctx = run("impacket-rpcdump", fixture("impacket_htb.txt"))
    d = datas(df)
    assert not ctx.warnings
    assert len(d) == 8
    assert set(df["source"]) == {"impacket-rpcdump"}
    assert d[0]["uuid"] == "d95afe70-a6d5-4259-822e-2c84da1ddb0d" and d[0]["version"] == "1.0"
    assert d[0]["provider"] == "wininit.exe" and d[0]["port"] == 49664
    assert d[1]["protocol"] == "ncalrpc" and d[1]["address"] is None
    assert d[4]["impacket_protocol"] is None  # "Protocol: N/A"
    ex = [x for x in d if x["uuid"] == "a4f1db00-ca47-1067-b31f-00dd010662da"]
    assert [x["port"] for x in ex] == [6001, 6004]
    assert ex[0]["annotation"] == "Exchange Server STORE EMSMDB Interface"
    assert ex[0]["exchange_group"] == "Information Store" and ex[0]["version"] == "0.81"
    assert set(df["host"]) == {"10.10.10.180"}


def test_impacket_trailing_spaces_elision_and_count():
    df, ctx = run("impacket-rpcdump", fixture("impacket_debug.txt"))
    d = datas(df)
    assert not ctx.warnings
    assert len(d) == 4 and d[0]["annotation"] is None and d[0]["provider"] is None
    assert d[3]["annotation"] == "Network Connection Broker server endpoint"


def test_impacket_count_mismatch_is_warned(tmp_path):
    text = fixture("impacket_htb.txt").read_text(encoding="utf-8").replace(
        "Received 3 endpoints", "Received 5 endpoints")
    p = tmp_path / "dump.txt"
    p.write_text(text, encoding="utf-8")
    _, ctx = run("impacket-rpcdump", p)
    assert any("5 endpoints" in w.message for w in ctx.warnings)
    assert ctx.partial


def test_impacket_old_dict_style():
    df, ctx = run("impacket-rpcdump", fixture("impacket_dict.txt"))
    d = datas(df)
    assert not ctx.warnings
    assert len(d) == 2
    assert d[1]["protocol"] == "ncacn_np" and d[1]["address"] == "\\\\JOHN"
    assert d[1]["endpoint"] == "\\PIPE\\InitShutdown"  # NUL terminator stripped
    assert all(x["uuid"] == "d95afe70-a6d5-4259-822e-2c84da1ddb0d" for x in d)


def test_portqry_udp_doc_sample():
    df, ctx = run("portqry", fixture("portqry_udp.txt"))
    d = datas(df)
    assert not ctx.warnings  # footer count 6 matches
    assert len(d) == 6 and set(df["source"]) == {"portqry"}
    assert d[1]["annotation"] == "NTDS Backup Interface"
    assert d[1]["address"] == "\\\\MYSERVER" and d[1]["endpoint"] == "\\PIPE\\lsass"
    assert d[3]["protocol"] == "ncadg_ip_udp" and d[3]["port"] == 1032
    assert all(x["query_protocol"] == "UDP" and x["state"] is None for x in d)


def test_portqry_tcp_host_blockquote_and_backslashes():
    df, ctx = run("portqry", fixture("portqry_tcp_exchange.txt"))
    d = datas(df)
    assert not ctx.warnings
    assert len(d) == 3
    assert set(df["host"]) == {"RPCServer.contoso.com"}
    assert d[1]["interface"] == "Exchange Server STORE EMSMDB Interface" and d[1]["port"] == 1033
    assert d[2]["address"] == "\\\\MYDC" and d[2]["endpoint"] == "\\PIPE\\lsass"


def test_portqry_footer_mismatch_warns(tmp_path):
    text = fixture("portqry_udp.txt").read_text(encoding="utf-8").replace("found: 6", "found: 9")
    p = tmp_path / "pq.txt"
    p.write_text(text, encoding="utf-8")
    _, ctx = run("portqry", p)
    assert [w.locator for w in ctx.warnings] == ["line=23"]


CASES = [("rpcdump", "rpcdump_kb926210_complete.txt", 45),
         ("impacket-rpcdump", "impacket_htb.txt", 8),
         ("portqry", "portqry_udp.txt", 6)]


@pytest.mark.parametrize("variant", ENCODINGS)
@pytest.mark.parametrize("source,name,rows", CASES)
def test_encodings(tmp_path, source, name, rows, variant):
    text = fixture(name).read_text(encoding="utf-8")
    p = tmp_path / "output (2).log"
    p.write_bytes(encode_variant(text, variant))
    df, ctx = run(source, p)
    assert len(df) == rows
    assert not ctx.warnings


def test_truncated_last_line_is_warned(tmp_path):
    text = fixture("rpcdump_kb926210_missing.txt").read_text(encoding="utf-8")
    p = tmp_path / "rpc.txt"
    p.write_bytes(encode_variant(text, "truncated"))
    df, ctx = run("rpcdump", p)
    assert len(df) == 11
    assert [w.locator for w in ctx.warnings] == ["line=13"]
    assert ctx.partial


def test_load_case_sniffs_renamed_dumps(tmp_path):
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    shutil.copy(fixture("rpcdump_kb926210_missing.txt"), case_dir / "rpc.txt")
    shutil.copy(fixture("impacket_htb.txt"), case_dir / "output (2).log")
    shutil.copy(fixture("portqry_udp.txt"), case_dir / "notes.dat")
    case = load_case(case_dir)
    validate(case.table)
    by_path = {e.path.rsplit("/", 1)[-1]: e for e in case.inventory}
    assert by_path["rpc.txt"].source == "rpcdump" and by_path["rpc.txt"].rows == 12
    assert by_path["output (2).log"].source == "impacket-rpcdump"
    assert by_path["notes.dat"].source == "portqry"
    assert (case.table["kind"] == "endpoint").sum() == 12 + 8 + 6
