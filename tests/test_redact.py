"""Redaction: a case whose every personal or customer token is known (two
samples together: an RPC port conflict with Security-log logon failures and
netstat addresses, a stuck SMTP mailbox with tracking logs, e-mail and an
Exchange organization). None of the tokens survives in any format, the
diagnosis stays the same, and what the diagnosis needs stays readable."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer import load_case
from analyzer.cli import main
from analyzer.redact import Redactor
from analyzer.report import validate_report
from analyzer.table import validate

REPO = Path(__file__).resolve().parents[1]
PARTS = {"rpc": "rpc-port-conflict-static-port-in-use", "smtp": "smtp-mailbox-stuck-nested-zip"}

#: Every personal or customer token of the case (found by reading it).
HOSTS = ["EXCH01"]
DOMAINS = ["contoso", "fabrikam", "adatum", "litwareinc"]
USERS = ["svc_backup", "jsmith", "mgarcia", "akowalski", "tnguyen", "rpatel", "alice", "bob",
         "j.doe", "orders@", "info@"]
IPS = ["10.0.0.10", "10.0.0.21", "10.0.100.32", "10.0.50.", "192.168.10.32"]
KNOWN = HOSTS + DOMAINS + USERS + IPS
#: What must stay readable.
KEPT = ["{CCCF3BE6-219C-4379-985D-851B766EDDC7}", "MSExchangeTransport 326", "1033",
        "beremote.exe", "Exchsrvr", "KB 926210", "S-1-5-18", "0x80040148"]


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pii") / "customer-upload"
    for sub, sample in PARTS.items():
        shutil.copytree(REPO / "samples" / sample / "case", root / sub)
    return root


def _found(token: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(token)}", text, re.I) is not None


def test_every_pii_token_of_the_case_is_known(case_dir: Path) -> None:
    """The list above is complete: every e-mail address, address and
    account the case holds is on it (or is a kept well-known one)."""
    table = load_case(case_dir).table
    text = "\n".join(table[c].dropna().astype(str).str.cat(sep="\n")
                     for c in ("host", "user", "message", "data", "key", "value", "path"))
    for token in KNOWN:
        assert _found(token, text), token
    emails = set(re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text))
    assert all(any(_found(k, e) for k in KNOWN) for e in emails), emails
    ips = set(re.findall(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w.]*\d)", text))
    assert {ip for ip in ips if not any(ip.startswith(k) for k in IPS)} <= {"0.0.0.0", "127.0.0.1"}


def _analyze(case_dir: Path, fmt: str, *extra: str) -> str:
    res = CliRunner().invoke(main, ["analyze", str(case_dir), "--format", fmt, *extra])
    assert res.exit_code == 1, res.output
    return res.stdout


def _top_causes(report: dict) -> list[tuple]:
    return [(f["check"], f["status"],
             next((c["id"] for c in f["causes"] if c["verdict"] != "ruled_out"), None))
            for f in report["findings"]]


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "html"])
def test_no_pii_survives_and_the_diagnosis_stays(case_dir: Path, fmt: str) -> None:
    raw = _analyze(case_dir, fmt, "--verbose")
    red = _analyze(case_dir, fmt, "--verbose", "--redact")
    assert sum(_found(t, raw) for t in KNOWN) >= 7  # the raw report does name them
    leaked = [t for t in KNOWN if _found(t, red)]
    assert not leaked, leaked
    assert sum(kept in raw for kept in KEPT) >= 6
    for kept in KEPT:
        assert (kept in red) == (kept in raw), kept
    assert "host-1" in red
    if fmt == "json":
        report, before = json.loads(red), json.loads(raw)
        validate_report(report)
        assert _top_causes(report) == _top_causes(before)
        assert report["run"]["options"]["redact"] == "per-report"


def test_tokens_are_consistent_and_keyed_tokens_stable(case_dir: Path) -> None:
    r = Redactor()
    text = "EXCH01.contoso.local said to exch01: mail for alice@contoso.com from 10.0.0.10:25"
    r.learn([text])
    assert r.text(text) == ("host-1.domain-2.example said to host-1: mail for "
                            "user-1@domain-1.example from ip-1:25")
    one = Redactor("secret").text("EXCH01.contoso.local 10.0.0.10").split()
    two = Redactor("secret").text("10.0.0.10 EXCH01.contoso.local").split()
    assert one == two[::-1] and re.fullmatch(r"host-[0-9a-f]{6}\.domain-[0-9a-f]{6}\.example", one[0])
    assert Redactor("other").text("10.0.0.10") != Redactor("secret").text("10.0.0.10")
    # Versions, loopback, well-known SIDs, GUIDs stay; domain SIDs keep their RID.
    kept = ("Exchange build 8.0.685.24 on 127.0.0.1 as S-1-5-18 for "
            "{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380} via ASP.NET")
    assert Redactor().text(kept) == kept
    assert Redactor().text("S-1-5-21-1111-2222-3333-500") == "S-1-5-21-sid-1-500"


def test_learnt_names_are_replaced_as_words(case_dir: Path) -> None:
    r = Redactor()
    r.add_user("CONTOSO\\svc_backup")
    r.add_host("EXCH01")
    r.learn(["Logon failure: Account Name: jsmith"])
    out = r.text("CONTOSO\\svc_backup on EXCH01-logs.zip; jsmith; Exchange; SYSTEM")
    assert out == "DOMAIN-1\\user-1 on host-1-logs.zip; user-2; Exchange; SYSTEM"
    # In JSON text (the data column) the account is learnt too, and the
    # JSON stays valid.
    r2 = Redactor()
    data = json.dumps({"strings": ["FABRIKAM\\mbx_admin", "fabrikam.com"]})
    r2.learn([data])
    assert json.loads(r2.text(data)) == {"strings": ["DOMAIN-1\\user-1", "domain-1.example"]}
    # An LDIF line fold does not hide a name.
    assert "Contoso" not in r.text("version: 1\ndn: CN=Exchange,CN=Cont\n oso,DC=x")


def test_timeline_redacted(case_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    res = CliRunner().invoke(main, ["timeline", str(case_dir), "-o", str(out), "--redact",
                                    "--redact-key", "k1"])
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    assert len(text.splitlines()) == len(load_case(case_dir).table)
    leaked = [t for t in KNOWN if _found(t, text)]
    assert not leaked, leaked
    # The redacted table is still a valid event table.
    r = Redactor()
    table = load_case(case_dir).table
    r.learn_table(table)
    validate(r.table(table))
    res = CliRunner().invoke(main, ["timeline", str(case_dir), "-o", str(out), "--redact-key", "k"])
    assert res.exit_code == 2 and "--redact" in res.output
