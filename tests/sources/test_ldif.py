"""LDIF source (RFC 2849 / ldifde output): folding, base64, comments,
changetype records, sniffing, bad input, and the path through load_case."""
from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from analyzer import sources
from analyzer.case import load_case
from analyzer.sources import Options, ParseContext
from analyzer.table import row_data, rows_to_frame, validate

SRC = sources.get("ldif")

STORE_GUID = "37C1C681-D0CF-4E2E-B464-41FC38A8B11B"
CONFIG = "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=local"
AG = f"CN=First Administrative Group,CN=Administrative Groups,CN=Contoso,{CONFIG}"


def _fold(line: str, width: int = 78) -> str:
    """Fold a long line the way ldifde does (continuations start with one space)."""
    out = [line[:width]]
    rest = line[width:]
    while rest:
        out.append(" " + rest[: width - 1])
        rest = rest[width - 1:]
    return "\r\n".join(out)


def _ldifde_export() -> str:
    guid_b64 = base64.b64encode(uuid.UUID(STORE_GUID).bytes_le).decode()
    gw_dn = f"CN=SMTP (EXCH01-{{{STORE_GUID}}}),CN=Connections,CN=Contoso,{CONFIG}"
    mdb = f"CN=Mailbox Store (EXCH01),CN=First Storage Group,CN=InformationStore,CN=EXCH01,CN=Servers,{AG}"
    name_b64 = base64.b64encode("Zürich Store".encode("utf-8")).decode()
    lines = [
        "version: 1",
        "",
        "# exported with ldifde -f smtp.ldf",
        _fold(f"dn: {gw_dn}"),
        "changetype: add",
        "objectClass: top",
        "objectClass: mailGateway",
        f"cn: SMTP (EXCH01-{{{STORE_GUID}}})",
        "deliveryMechanism: 2",
        _fold(f"homeMDB: {mdb}"),
        _fold(f"homeMTA: CN=Microsoft MTA,CN=EXCH01,CN=Servers,{AG}"),
        _fold(f"legacyExchangeDN: /o=Contoso/ou=First Administrative Group/cn=Configuration/cn=Connections/cn=SMTP (EXCH01)/cn={{{STORE_GUID}}}"),
        "",
        _fold(f"dn: {mdb}"),
        "changetype: add",
        "objectClass: top",
        "objectClass: msExchMDB",
        "objectClass: msExchPrivateMDB",
        f"objectGUID:: {guid_b64}",
        f"description:: {name_b64}",
        "member;range=0-1: CN=a",
        "member;range=2-*: CN=b",
        "",
    ]
    return "\r\n".join(lines)


def _parse(tmp_path: Path, text: str, name: str = "export.ldf", encoding: str = "utf-8",
           bom: bytes = b""):
    p = tmp_path / name
    p.write_bytes(bom + text.encode(encoding))
    ctx = ParseContext(path=name, fs_path=p, options=Options())
    rows = list(SRC.parse(ctx))
    for r in rows:
        r.setdefault("source", "ldif")
        r.setdefault("path", name)
    return rows, ctx


def test_ldifde_export_folding_base64_and_classes(tmp_path):
    rows, ctx = _parse(tmp_path, _ldifde_export())
    assert not ctx.warnings
    assert len(rows) == 2
    validate(rows_to_frame(rows))
    gw, store = rows
    assert gw["kind"] == "ldap_entry"
    assert gw["key"] == f"CN=SMTP (EXCH01-{{{STORE_GUID}}}),CN=Connections,CN=Contoso,{CONFIG}"
    assert gw["locator"] == "line=4"
    assert gw["category"] == "mailGateway"
    data = row_data(rows_to_frame([gw])["data"].iloc[0])
    assert data["objectclass"] == ["top", "mailGateway"]
    assert data["changetype"] == "add"
    # Folded lines are joined without the continuation space.
    assert data["homemdb"] == [f"CN=Mailbox Store (EXCH01),CN=First Storage Group,CN=InformationStore,CN=EXCH01,CN=Servers,{AG}"]
    assert data["legacyexchangedn"][0].endswith(f"cn=SMTP (EXCH01)/cn={{{STORE_GUID}}}")
    assert data["deliverymechanism"] == ["2"]
    # objectGUID (base64 of the little-endian GUID) is shown as Windows shows it.
    assert store["data"]["objectguid"] == [f"{{{STORE_GUID}}}"]
    assert store["data"]["description"] == ["Zürich Store"]
    # Ranged retrieval chunks merge into one attribute.
    assert store["data"]["member"] == ["CN=a", "CN=b"]
    assert store["category"] == "msExchPrivateMDB"
    physical = _ldifde_export().split("\r\n")
    assert physical[int(store["locator"][5:]) - 1].startswith("dn: CN=Mailbox Store (EXCH01)")


def test_utf16_export_from_ldifde_u(tmp_path):
    rows, ctx = _parse(tmp_path, _ldifde_export(), encoding="utf-16-le", bom=b"\xff\xfe")
    assert not ctx.warnings
    assert [r["category"] for r in rows] == ["mailGateway", "msExchPrivateMDB"]


def test_modify_record_and_delete(tmp_path):
    text = "\n".join([
        "dn: CN=SMTP (EXCH01-{X}),CN=Connections,CN=Contoso",
        "changetype: modify",
        "replace: homeMDB",
        "homeMDB: CN=Store B,CN=SG",
        "-",
        "delete: description",
        "-",
        "",
        "dn: CN=old,CN=Connections,CN=Contoso",
        "changetype: delete",
        "",
    ])
    rows, ctx = _parse(tmp_path, text)
    assert not ctx.warnings
    mod, dele = rows
    assert mod["data"]["changetype"] == "modify"
    assert mod["data"]["changes"] == [
        {"op": "replace", "attr": "homemdb", "values": ["CN=Store B,CN=SG"]},
        {"op": "delete", "attr": "description", "values": []}]
    assert mod["data"]["homemdb"] == ["CN=Store B,CN=SG"]
    assert dele["data"] == {"changetype": "delete"}


def test_folded_comment_and_missing_blank_line(tmp_path):
    text = "\n".join([
        "# a long comment that ldifde folded",
        " onto a second line: cn: not-an-attribute",
        "dn: CN=a,DC=x",
        "cn: a",
        "dn: CN=b,DC=x",
        "cn: b",
    ])
    rows, ctx = _parse(tmp_path, text)
    assert [r["key"] for r in rows] == ["CN=a,DC=x", "CN=b,DC=x"]
    assert rows[0]["data"] == {"cn": ["a"]}
    assert not ctx.warnings


def test_bad_lines_warn_and_continue(tmp_path):
    text = "\n".join([
        "version: 1",
        "cn: orphan",
        "",
        "dn: CN=a,DC=x",
        "this line is garbage",
        "objectGUID:: !!!notbase64",
        "cn: a",
        "",
        "dn: CN=b,DC=x",
        "cn: b",
    ])
    rows, ctx = _parse(tmp_path, text)
    assert [r["key"] for r in rows] == ["CN=a,DC=x", "CN=b,DC=x"]
    assert rows[0]["parse_status"] == "partial"
    assert rows[1]["parse_status"] == "ok"
    assert rows[0]["data"]["cn"] == ["a"]
    locs = sorted(w.locator for w in ctx.warnings)
    assert locs == ["line=2", "line=5", "line=6"]
    assert ctx.partial


def test_empty_or_non_ldif_file_warns(tmp_path):
    rows, ctx = _parse(tmp_path, "# only a comment\n")
    assert rows == []
    assert ctx.warnings and "no LDIF entries" in ctx.warnings[0].message


@pytest.mark.parametrize("text,name,low,high", [
    ("version: 1\r\n\r\ndn: CN=a,DC=x\r\ncn: a\r\n", "x.txt", 80, 100),
    ("dn: CN=a,DC=x\ncn: a\nobjectClass: top\n", "out.txt", 80, 100),
    ("C:\\>ldifde -f x.ldf\r\ndn: CN=a,DC=x\r\ncn: a\r\nsn: b\r\n\r\ndn: CN=b,DC=x\r\ncn: b\r\nsn: c\r\n", "x.log", 50, 70),
    ("Event Type: Error\r\nEvent Source: MSExchangeTransport\r\nEvent ID: 326\r\n", "x.ldf", 0, 0),
    ("#Software: Microsoft Exchange Server\n#Fields: date-time,client-ip\n", "a.log", 0, 0),
    ("Source: foo\nDescription: bar\n", "x.txt", 0, 0),
])
def test_sniff(text, name, low, high):
    score = SRC.sniff(text.encode("utf-8"), name)
    assert low <= score <= high


def test_sniff_binary_is_zero():
    assert SRC.sniff(b"LfLe\x00\x00\x01\x00" * 20, "x.ldf") == 0


def test_load_case_picks_ldif(tmp_path):
    case_dir = tmp_path / "case"
    case_dir.mkdir()
    (case_dir / "smtp.ldf").write_bytes(_ldifde_export().encode("utf-8"))
    case = load_case(case_dir)
    entry = next(e for e in case.inventory if e.path == "smtp.ldf")
    assert entry.source == "ldif" and entry.status == "parsed" and entry.rows == 2
    validate(case.table)
    rows = case.rows(kind="ldap_entry")
    assert len(rows) == 2
    assert set(rows["path"].astype(str)) == {"smtp.ldf"}
