"""Redaction: consistent pseudonyms for the personal and customer data in a
report or an event table, for reports handed to third parties.

Replaced: e-mail addresses, domain SIDs, IP addresses, host names, DNS and
NetBIOS domain names, user names and Exchange organization names. The same
input always becomes the same token within one :class:`Redactor` (so a
report still says "host-1 ... host-1"); with a key the tokens are keyed
hashes, equal across reports redacted with the same key. Kept: what the
diagnosis needs (GUIDs, CLSIDs, event ids, ports, registry paths, Exchange
binary paths, well-known accounts and SIDs, vendor domains): see
analyzer/knowledge/redaction.yaml.

Names are found in two steps: :meth:`Redactor.learn` collects the names a
case declares (its hosts, the user column, ``DOMAIN\\user`` forms, DNS
names, Exchange organizations) from every text, then :meth:`Redactor.text`
replaces pattern-shaped data (e-mail, SIDs, IPs, DNS names) and the learnt
names, as whole words, case-insensitively.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable
from functools import cached_property
from typing import Any

import pandas as pd
import pyarrow as pa

from . import knowledge
from . import table as tbl

#: Report fields whose values are contract vocabulary or identifiers, never
#: customer text (redacting them would break the contract or the joins).
SKIP_KEYS = frozenset({"schema", "status", "severity", "verdict", "check", "id", "kind",
                       "sha256", "analyzed_at", "ts", "rows", "size", "version", "source_kind"})

EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]+)@((?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+)(?![\w-])")
SID = re.compile(r"\bS-1-5-21-(\d+-\d+-\d+)(-\d+)?\b")
IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w.]*\d)")
IPV6 = re.compile(r"(?<![\w:])([0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})(?![\w:])")
DC_SEQ = re.compile(r"\bDC=[^,/\s;\"'<>()]+(?:\s*,\s*DC=[^,/\s;\"'<>()]+)*", re.I)
#: An LDIF (RFC 2849) folds long lines: a line break and one space continue
#: the line. Unfolded before redacting, so a name cut in two is still found
#: (the unfolded LDIF means the same).
LDIF = re.compile(r"^(?:dn|changetype|version):", re.M)
ORG = re.compile(r"/o=([^/\n]+?)(?=/|$|\s)|\bCN=([^,\n]+),\s*CN=Microsoft Exchange\b", re.I)
DOMAIN_USER = re.compile(r"(?<![\w\\])([A-Za-z][\w-]{0,14})\\([\w.$-]{1,64})(?![\w\\])")
LABELLED_USER = re.compile(r"\b(?:User(?: Name)?|Account Name|Account|Logon Account):\s*([^\s,;]+)", re.I)


def _rules() -> dict[str, Any]:
    return knowledge.load("redaction")


class Redactor:
    """Pseudonyms for one report (or, with ``key``, for every report
    redacted with that key)."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key.encode("utf-8") if key else None
        self.tokens: dict[tuple[str, str], str] = {}
        self.counts: dict[str, int] = {}
        self.hosts: set[str] = set()
        self.netbios: set[str] = set()
        self.users: set[str] = set()
        self.orgs: set[str] = set()
        self._dns_of: dict[str, str] = {}
        rules = _rules()
        self._tlds = {t.lower() for t in rules["tlds"]}
        self._keep_domains = {d.lower() for d in rules["keep_domains"]}
        self._keep_names = {d.lower() for d in rules["keep_names"]}
        self._wk_domains = {d.lower() for d in rules["well_known_domains"]}
        self._wk_users = {u.lower() for u in rules["well_known_users"]}
        self._generic = {w.lower() for w in rules["generic_host_words"]}
        self._version = {w.lower() for w in rules["version_words"]}
        self._dns = re.compile(r"(?<![\w.@-])((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})\.)+(?:"
                               + "|".join(sorted(self._tlds, key=len, reverse=True))
                               + r"))(?![\w-]|\.[A-Za-z0-9])", re.I)

    # -- tokens ---------------------------------------------------------------
    def token(self, kind: str, value: str) -> str:
        """The pseudonym of ``value`` (case-insensitive) of a kind: ``host-1``,
        or with a key ``host-5f0c2a`` (an HMAC of the value)."""
        k = (kind, value.lower())
        if k not in self.tokens:
            if self.key:
                tag = hmac.new(self.key, f"{kind}:{value.lower()}".encode(), hashlib.sha256).hexdigest()[:6]
            else:
                self.counts[kind] = self.counts.get(kind, 0) + 1
                tag = str(self.counts[kind])
            self.tokens[k] = f"{kind}-{tag}"
        return self.tokens[k]

    def _kept_domain(self, name: str) -> bool:
        low = name.lower().rstrip(".")
        return low in self._keep_names or any(
            low == d or low.endswith("." + d) for d in self._keep_domains)

    def dns_name(self, name: str) -> str:
        """A DNS name as pseudonyms: the registered domain (last two labels)
        one token, every label before it a host token:
        ``EXCH01.contoso.local`` -> ``host-1.domain-1.example``."""
        if self._kept_domain(name):
            return name
        labels = name.rstrip(".").split(".")
        if len(labels) < 2:
            return self.token("host", name)
        dom = self.token("domain", ".".join(labels[-2:])) + ".example"
        return ".".join([self.token("host", lab) for lab in labels[:-2]] + [dom])

    # -- learning -------------------------------------------------------------
    def add_host(self, name: str | None) -> None:
        """A computer of the case (the table's host column, the report's hosts)."""
        if not name:
            return
        name = str(name).strip()
        short, _, rest = name.partition(".")
        if short and short.lower() not in self._generic and len(short) >= 3:
            self.hosts.add(short.lower())
        if rest:
            self._add_domain(rest)

    def _add_domain(self, domain: str) -> None:
        if self._kept_domain(domain):
            return
        first = domain.split(".")[0]
        if first and first.lower() not in self._generic and len(first) >= 3:
            self.netbios.add(first.lower())
            # CONTOSO and contoso.com get the same number: DOMAIN-1, domain-1.example
            self._dns_of.setdefault(first.lower(), ".".join(domain.lower().split(".")[-2:]))

    def add_user(self, value: str | None) -> None:
        """An account as ``DOMAIN\\user``, ``user@domain`` or a bare name."""
        if not value or value.startswith("S-1-"):
            return
        dom, sep, user = str(value).rpartition("\\")
        if sep and dom.lower() in self._wk_domains:
            return
        if sep:
            self.netbios.add(dom.lower())
        user = user.split("@")[0]
        if user and user.lower() not in self._wk_users and not user.endswith("$") and len(user) >= 2:
            self.users.add(user.lower())

    def learn(self, texts: Iterable[str]) -> None:
        """Collect names from free text: DNS names, organizations, and
        ``DOMAIN\\user`` forms whose domain is a known NetBIOS domain or
        labelled as an account."""
        pending = []
        for text in texts:
            if not text:
                continue
            if "\n " in text and LDIF.search(text):
                text = text.replace("\r\n ", "").replace("\n ", "")
            if "\\\\" in text:  # JSON text (the data column): DOMAIN\\user
                text = text.replace("\\\\", "\\")
            for m in self._dns.finditer(text):
                name = m.group(1)
                if not self._kept_domain(name):
                    # a.b.c: host a in domain b.c (the first label of a
                    # registered domain is its likely NetBIOS name)
                    self._add_domain(".".join(name.split(".")[-2:]))
                    if name.count(".") >= 2:
                        self.add_host(name)
            for m in ORG.finditer(text):
                org = (m.group(1) or m.group(2) or "").strip()
                if org and org.lower() not in ("microsoft exchange", "first organization"):
                    self.orgs.add(org.lower())
            for m in LABELLED_USER.finditer(text):
                self.add_user(m.group(1))
            if "\\" in text:
                pending.append(text)
        for text in pending:  # after every domain is known
            for m in DOMAIN_USER.finditer(text):
                if m.group(1).lower() in self.netbios:
                    self.add_user(f"{m.group(1)}\\{m.group(2)}")

    # -- replacing ------------------------------------------------------------
    @cached_property
    def _words(self) -> re.Pattern[str] | None:
        names = {n: "host" for n in self.hosts}
        names.update({n: "domain" for n in self.netbios if n not in names})
        names.update({n: "org" for n in self.orgs if n not in names})
        names.update({n: "user" for n in self.users if n not in names})
        self._word_kind = names
        if not names:
            return None
        alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        return re.compile(rf"(?<![\w]){'(?:' + alt + ')'}(?![\w])", re.I)

    def _word(self, m: re.Match[str]) -> str:
        word = m.group(0)
        kind = self._word_kind[word.lower()]
        if kind == "domain":
            return self.token("domain", self._dns_of.get(word.lower(), word)).upper()
        return self.token(kind, word)

    def _ip(self, m: re.Match[str]) -> str:
        text = m.group(1)
        before = m.string[max(0, m.start() - 16):m.start()].lower().rstrip(" :=v")
        if any(before.endswith(w) for w in self._version) or m.string[max(0, m.start() - 1):m.start()] == "v":
            return text
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return text
        if ip.is_loopback or ip.is_unspecified or str(ip) == "255.255.255.255" \
                or (ip.is_link_local and ip.version == 6):
            return text
        return self.token("ip" if ip.version == 4 else "ipv6", str(ip))

    def _dc(self, m: re.Match[str]) -> str:
        labels = [p.split("=", 1)[1].strip() for p in m.group(0).split(",")]
        name = self.dns_name(".".join(labels))
        return ",".join(f"DC={x}" for x in name.split("."))

    def text(self, s: str) -> str:
        """``s`` with every piece of personal or customer data replaced."""
        if not s:
            return s
        if "\n " in s and LDIF.search(s):
            s = s.replace("\r\n ", "").replace("\n ", "")
        s = EMAIL.sub(lambda m: f"{self.token('user', m.group(1))}@{self.dns_name(m.group(2))}", s)
        s = SID.sub(lambda m: f"S-1-5-21-{self.token('sid', m.group(1))}{m.group(2) or ''}", s)
        s = IPV4.sub(self._ip, s)
        if "::" in s or s.count(":") >= 7:
            s = IPV6.sub(self._ip, s)
        s = DC_SEQ.sub(self._dc, s)
        s = self._dns.sub(lambda m: self.dns_name(m.group(1)), s)
        if self._words is not None:
            s = self._words.sub(self._word, s)
        return s

    # -- whole objects --------------------------------------------------------
    def report(self, report: dict[str, Any]) -> dict[str, Any]:
        """A redacted copy of a report dictionary (every format renders it)."""
        for h in report["case"]["hosts"]:
            self.add_host(h)
        self.learn(_strings(report))
        self.__dict__.pop("_words", None)  # names may have grown since the last use
        out = _walk(report, self.text)
        out.setdefault("run", {}).setdefault("options", {})["redacted"] = True
        return out

    def learn_table(self, df: pd.DataFrame) -> None:
        """Names the event table declares: hosts, accounts, and the free text
        of messages and data."""
        for h in df["host"].dropna().astype(str).unique():
            self.add_host(h)
        for u in df["user"].dropna().astype(str).unique():
            self.add_user(u)
        for col in ("message", "data", "key", "value"):
            self.learn(df[col].dropna().astype(str).unique())
        self.__dict__.pop("_words", None)

    def table(self, df: pd.DataFrame) -> pd.DataFrame:
        """A redacted copy of an event table (same columns and dtypes)."""
        t = tbl.to_arrow(df)
        cols = []
        for name, col in zip(t.column_names, t.columns):
            if name in ("ts", "kind", "source", "ts_source", "level", "parse_status", "locator") \
                    or not (pa.types.is_string(col.type) or pa.types.is_dictionary(col.type)):
                cols.append(col)
                continue
            if pa.types.is_dictionary(col.type):
                # few distinct values: redact the dictionary, keep the indices
                col = col.combine_chunks()
                words = pa.array([None if v is None else self.text(v) for v in col.dictionary.to_pylist()],
                                 pa.string())
                plain = words.take(col.indices)
                cols.append(plain.dictionary_encode().cast(col.type))
            else:
                cols.append(pa.array([None if v is None else self.text(v) for v in col.to_pylist()],
                                     pa.string()))
        return tbl.arrow_to_frame(pa.Table.from_arrays(cols, schema=t.schema))


def _strings(obj: Any, key: str | None = None) -> Iterable[str]:
    if isinstance(obj, str):
        if key not in SKIP_KEYS:
            yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v, key)


def _walk(obj: Any, fn: Any, key: str | None = None) -> Any:
    if isinstance(obj, str):
        return obj if key in SKIP_KEYS else fn(obj)
    if isinstance(obj, dict):
        return {k: _walk(v, fn, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_walk(v, fn, key) for v in obj]
    return obj
