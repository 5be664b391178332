"""Active Directory for KB 828938: the names the remediation needs, what an
``ldifde`` export says about the mailGateway object of the SMTP connection
mailbox, and the replacement object (or the attribute fix) as LDIF.

The LDIF is folded (RFC 2849: a long line continues on lines that start
with one space, which ldifde reads and writes), so the file stays
importable and fits an 80-column report.
"""
from __future__ import annotations

import re
import textwrap
from typing import Any

import pandas as pd

from ...findings import Evidence
from ...table import row_data
from .model import K, ConnDN

FILL = "<FILL IN: {}>"
#: Width of the LDIF the check writes. RFC 2849 folds a long line into
#: continuation lines that start with one space (ldifde reads and writes
#: them), so the file stays valid and fits an 80-column report even with the
#: report's indentation.
LDIF_WIDTH = 72


def fold(line: str, width: int = LDIF_WIDTH) -> list[str]:
    """One LDIF line folded per RFC 2849 (continuations start with a space)."""
    out, rest = [line[:width]], line[width:]
    while rest:
        out.append(" " + rest[:width - 1])
        rest = rest[width - 1:]
    return out


def comment(text: str, width: int = LDIF_WIDTH) -> list[str]:
    """An LDIF comment wrapped into ``#`` lines (a folded comment would also
    be valid, but wrapped words read better)."""
    return textwrap.wrap(text, width=width, initial_indent="# ", subsequent_indent="# ",
                         break_long_words=True, break_on_hyphens=False)



def domain_from_ldif(entries: pd.DataFrame) -> str | None:
    for key in entries["key"].dropna().astype(str):
        m = re.search(r"(DC=[^,]+(?:,DC=[^,]+)*)\s*$", key, re.I)
        if m:
            return m.group(1)
    return None


def domain_from_host(host: str | None) -> str | None:
    if host and "." in host:
        return ",".join(f"DC={p}" for p in host.split(".")[1:] if p)
    return None


def norm_dn(dn: str) -> str:
    return ",".join(p.strip().lower() for p in dn.split(","))



def names_for(conn: ConnDN | None, server: str | None, host: str | None,
           ldap: pd.DataFrame) -> dict[str, Any]:
    """Every name the remediation needs, from the evidence or a marked placeholder."""
    domain = domain_from_ldif(ldap) if not ldap.empty else None
    domain_note = None
    if not domain:
        domain = domain_from_host(host)
        if domain:
            domain_note = (f"DC= part derived from the server's DNS domain ({host}); "
                           "use the forest root domain if it differs")
    store = sg = None
    if conn is not None and not ldap.empty:
        st = store_entry(conn, ldap)
        if st is not None:
            parts = [p.strip() for p in str(st["key"]).split(",")]
            if len(parts) > 2 and parts[0][:3].upper() == "CN=" and parts[1][:3].upper() == "CN=":
                store, sg = parts[0][3:], parts[1][3:]
    fmt = {
        "org": conn.org if conn else FILL.format("organization name"),
        "ag": conn.ag if conn else FILL.format("administrative group name"),
        "server": server or FILL.format("server name"),
        "guid": conn.guid if conn else FILL.format("mailbox store GUID"),
        "domain": domain or FILL.format("forest root domain, e.g. DC=contoso,DC=com"),
        "store": store or FILL.format("mailbox store name (the store whose objectGUID is {%s})"
                                      % (conn.guid if conn else "GUID")),
        "storage_group": sg or FILL.format("storage group name"),
    }
    mg = K["mailgateway"]
    attrs = {
        "objectClass": mg["object_class"],
        "cn": mg["cn"].format(**fmt),
        "homeMTA": mg["home_mta"].format(**fmt),
        "deliveryMechanism": mg["delivery_mechanism"],
        "homeMDB": mg["home_mdb"].format(**fmt),
        "legacyExchangeDN": conn.dn if conn else mg["legacy_dn"].format(**fmt),
    }
    return {"fmt": fmt, "attrs": attrs, "domain_note": domain_note,
            "dn": f"CN={attrs['cn']},{mg['connections_dn'].format(**fmt)}",
            "store_known": store is not None}

def store_entry(conn: ConnDN, ldap: pd.DataFrame) -> Any | None:
    guid = "{" + conn.guid + "}"
    for _, row in ldap.iterrows():
        data = row_data(row.get("data"))
        if any(str(g).upper() == guid for g in data.get("objectguid", [])):
            return row
    return None

def ad_state(conn: ConnDN, ldap: pd.DataFrame, names: dict[str, Any]) -> dict[str, Any]:
    """What the LDIF export says about the mailGateway object."""
    out: dict[str, Any] = {"covered": False, "object": None, "wrong": [], "evidence": [],
                           "summary": "no Active Directory export in the case", "public": None}
    if ldap.empty:
        return out
    keys = ldap["key"].astype("string").fillna("")
    in_conn = ldap[keys.str.contains(r"(?:^|,)\s*CN=Connections\s*,", case=False, regex=True)
                   .fillna(False).astype(bool)]
    store = store_entry(conn, ldap)
    if store is not None:
        classes = [str(x).lower() for x in row_data(store.get("data")).get("objectclass", [])]
        out["public"] = "msexchpublicmdb" in classes
        out["evidence"].append(Evidence.from_row(store, f"store {store['key']} objectGUID {{{conn.guid}}}"))
    if in_conn.empty:
        out["summary"] = "the Active Directory export does not cover CN=Connections"
        return out
    out["covered"] = True
    want_cn = names["attrs"]["cn"].lower()
    for _, row in in_conn.iterrows():
        data = row_data(row.get("data"))
        cn = " ".join(data.get("cn", [])).lower()
        ldn = " ".join(data.get("legacyexchangedn", [])).lower()
        first_rdn = str(row["key"]).split(",")[0].lower()
        if (cn == want_cn or first_rdn == f"cn={want_cn}" or conn.dn.lower() == ldn
                or (conn.guid.lower() in (cn + first_rdn) and conn.server.lower() in (cn + first_rdn))):
            out["object"] = row
            break
    if out["object"] is None:
        out["summary"] = f"CN=Connections exported ({len(in_conn)} entries): no SMTP ({conn.server}-{{{conn.guid}}})"
        out["evidence"] += [Evidence.from_row(r, f"exported: {r['key']}") for _, r in in_conn.head(3).iterrows()]
        return out
    row = out["object"]
    out["object_dn"] = str(row["key"])
    data = row_data(row.get("data"))
    found = {k: (data.get(k.lower()) or [None])[0] for k in ("homeMTA", "homeMDB", "legacyExchangeDN")}
    wrong = wrong_attributes(conn, found, names["attrs"], store)
    out["wrong"] = wrong
    # The excerpt is clipped at 400 characters and DNs are long: name the
    # object by its first RDN and put the wrong attributes first.
    bad = [a for a, _, _ in wrong]
    order = bad + [k for k in found if k not in bad]
    rdn = str(row["key"]).split(",")[0]
    out["evidence"].insert(0, Evidence.from_row(row, f"{rdn} (CN=Connections): " + "; ".join(
        f"{k}={found[k]}" for k in order)))
    out["summary"] = (f"mailGateway {row['key']} found; "
                      + ("wrong: " + ", ".join(a for a, _, _ in wrong) if wrong else "attributes as expected"))
    return out


def wrong_attributes(conn: ConnDN, found: dict[str, Any], expected: dict[str, str],
                     store: Any | None) -> list[tuple[str, str, Any]]:
    """(attribute, expected, found) for each attribute of the mailGateway
    object that does not match what the evidence says it must be."""
    wrong = []
    on_server = f"cn={conn.server.lower()},cn=servers"
    if not found["legacyExchangeDN"] or found["legacyExchangeDN"].lower() != conn.dn.lower():
        wrong.append(("legacyExchangeDN", conn.dn, found["legacyExchangeDN"]))
    if not found["homeMTA"] or (
            "<FILL IN" not in expected["homeMTA"]
            and norm_dn(found["homeMTA"]) != norm_dn(expected["homeMTA"])) or (
            on_server not in norm_dn(found["homeMTA"] or "")):
        wrong.append(("homeMTA", expected["homeMTA"], found["homeMTA"]))
    if store is not None:
        if not found["homeMDB"] or norm_dn(found["homeMDB"]) != norm_dn(str(store["key"])):
            wrong.append(("homeMDB", str(store["key"]), found["homeMDB"]))
    # Without the store object we can still tell a homeMDB that points at
    # another server or at nothing.
    elif not found["homeMDB"] or on_server not in norm_dn(found["homeMDB"]):
        wrong.append(("homeMDB", expected["homeMDB"], found["homeMDB"]))
    return wrong


def ldif_add(conns: list[ConnDN], server: str | None, host: str | None,
             ldap: pd.DataFrame) -> str:
    """The article's new mailGateway object(s) as an LDIF file to review
    and import: one ``changetype: add`` record per store whose SMTP
    mailbox event 326 names, folded to :data:`LDIF_WIDTH` columns."""
    head = [
        "KB 828938: replacement SMTP connection mailbox object(s). REVIEW BEFORE IMPORTING.",
        ("Delete an existing object of the same name first; import with: "
         "ldifde -i -f <the .ldf file>"),
    ]
    records: list[list[str]] = []
    notes: list[str] = []
    for conn in conns:
        names = names_for(conn, conn.server or server, host, ldap)
        a = names["attrs"]
        if any("<FILL IN" in str(v) for v in a.values()) and len(head) == 2:
            head.insert(1, "Values marked FILL IN were not in the evidence: take them from "
                           "Active Directory.")
        if names["domain_note"] and names["domain_note"] + "." not in notes:
            notes.append(names["domain_note"] + ".")
        rec = []
        if not names["store_known"]:
            rec += comment(f"homeMDB: the DN of the mailbox store whose objectGUID is {{{conn.guid}}}.")
        for line in (f"dn: {names['dn']}", "changetype: add", f"objectClass: {a['objectClass']}",
                     f"cn: {a['cn']}", f"homeMTA: {a['homeMTA']}",
                     f"deliveryMechanism: {a['deliveryMechanism']}", f"homeMDB: {a['homeMDB']}",
                     f"legacyExchangeDN: {a['legacyExchangeDN']}"):
            rec += fold(line)
        records.append(rec)
    lines = [x for t in head + notes for x in comment(t)] + ["version: 1"]
    for rec in records:
        lines += [""] + rec
    return "\n".join(lines) + "\n"

def ldif_modify(dn: str, wrong: list[tuple[str, str, Any]]) -> str:
    """The attribute fix as an LDIF ``changetype: modify`` record (one
    ``replace:`` group per wrong attribute), folded like :meth:`ldif_add`."""
    lines = comment("KB 828938: correct the SMTP connection mailbox object. REVIEW BEFORE "
                     "IMPORTING, against the global catalog the Exchange server uses.")
    if any("<FILL IN" in str(e) for _, e, _ in wrong):
        lines += comment("Values marked FILL IN were not in the evidence: take them from "
                          "Active Directory.")
    lines += ["version: 1", ""] + fold(f"dn: {dn}") + ["changetype: modify"]
    for attr, expected, _ in wrong:
        lines += [f"replace: {attr}"] + fold(f"{attr}: {expected}") + ["-"]
    return "\n".join(lines) + "\n"
