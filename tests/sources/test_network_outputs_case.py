"""A case folder holding one of each network/disk output: every file is
claimed by its own source, parsed, and the rows validate in one table."""
from __future__ import annotations

import shutil

from analyzer import load_case
from analyzer.table import row_data, validate

from ._texthelp import fixture

FILES = {  # renamed the way customers name them: content decides
    "smtplog_send_2007.log": ("SEND20090603-1.LOG", "smtplog", "smtp_protocol"),
    "ipconfig_german.txt": ("ipconfig.txt", "ipconfig", "network_adapter"),
    "nslookup_failures.txt": ("dns test.txt", "nslookup", "dns_query"),
    "hosts_2008r2.txt": ("hosts", "hostsfile", "hosts_entry"),
    "diskfree_wmic_utf16.txt": ("disks.txt", "diskfree", "volume_space"),
}


def test_one_of_each(tmp_path):
    for src, (dst, _s, _k) in FILES.items():
        shutil.copy(fixture(src), tmp_path / dst)
    case = load_case(tmp_path)
    validate(case.table)
    inv = {e.path: e for e in case.inventory}
    for dst, source, kind in FILES.values():
        e = inv[dst]
        assert e.source == source and e.rows > 0, e
        assert e.status == ("partial" if source == "hostsfile" else "parsed"), e  # 10.0.0.300
        rows = case.table[case.table["path"] == dst]
        assert set(rows["kind"]) == {kind} and set(rows["source"]) == {source}
    adapters = case.rows(kind="network_adapter")
    assert set(adapters["host"]) == {"EXHUB02"}
    assert row_data(adapters["data"].iloc[0])["dns_servers"] == ["10.0.0.10", "10.0.0.11"]
    statuses = [row_data(v)["status"] for v in case.rows(kind="dns_query")["data"]]
    assert statuses == ["timeout", "servfail", "nxdomain", "no_response", "refused", "ok"]
