"""Every text sniffer against every text fixture: a file of one format must
be claimed by its own source and by no other of them."""
from __future__ import annotations

import pytest

from analyzer import sources
from analyzer.textio import read_head

from ._texthelp import FIXTURES

OWNER = {
    "rpcdump_": "rpcdump", "impacket_": "impacket-rpcdump", "portqry_": "portqry",
    "netstat_": "netstat", "tasklist_": "tasklist", "setup_progress_": "setuplog",
    "setup55": "setuplog", "exsetup_": "exsetuplog", "tracking_": "tracking", "msgtrk_": "tracking",
    "smtplog_": "smtplog", "ipconfig_": "ipconfig", "nslookup_": "nslookup", "hosts_": "hostsfile",
    "diskfree_": "diskfree", "ps_": "powershell", "edgetransport_": "transport-config",
}
MINE = sorted(set(OWNER.values()))
FILES = sorted(p.name for p in FIXTURES.iterdir())


def _owner(name: str) -> str:
    return next(v for k, v in OWNER.items() if name.startswith(k))


def test_every_fixture_has_an_owner():
    assert FILES and all(_owner(n) for n in FILES)


@pytest.mark.parametrize("name", FILES)
def test_only_the_owner_claims_it(name):
    head = read_head(FIXTURES / name)
    scores = {s: sources.get(s).sniff(head, name) for s in MINE}
    owner = _owner(name)
    assert scores[owner] >= 50, scores
    others = {s: v for s, v in scores.items() if s != owner and v > 0}
    assert not others, others


@pytest.mark.parametrize("name", FILES)
def test_owner_wins_among_all_registered_sources(name):
    best, score = sources.sniff(read_head(FIXTURES / name), name)
    assert best is not None and best.name == _owner(name), (best and best.name, score)


@pytest.mark.parametrize("src", MINE)
def test_name_alone_is_not_evidence(src):
    s = sources.get(src)
    for fname in ("rpcdump.txt", "netstat.txt", "tasklist.txt", "Exchange Server Setup Progress.log",
                  "ExchangeSetup.log", "20030912.log", "MSGTRK2016040500-1.LOG", "hosts",
                  "ipconfig-all.txt", "nslookup.txt", "diskfree-C.txt", "RECV2009060310-1.LOG"):
        assert s.sniff(b"hello world\r\nnothing here\r\n", fname) < 20
        assert s.sniff(b"", fname) < 20
