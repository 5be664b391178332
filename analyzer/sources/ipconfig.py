"""``ipconfig /all`` output -> one ``network_adapter`` row per adapter.

Why per adapter: the questions a check asks are per interface — which DNS
servers does the NIC Exchange uses point at (a broken resolver gives "451
4.4.0 DNS query failed", KB 972744), and is IPv6 bound on a Windows 2008
box running Exchange 2007 (KB 929852). The host section ("Windows IP
Configuration": host name, primary DNS suffix, search list) is copied into
every adapter row, so each row stands alone.

Layouts handled:

- Windows XP/2003: 8-space indent, ``IP Address`` (which also holds IPv6
  addresses when the 2003 IPv6 stack is installed), ``Dhcp Enabled``;
- Vista/2008+: 3-space indent, ``IPv4 Address`` / ``Link-local IPv6
  Address`` with ``(Preferred)`` suffixes, ``DHCPv6`` lines, tunnel adapters;
- localized labels (German ``DNS-Server``, French ``Serveurs DNS``, ...):
  every spelling is data in ``analyzer/knowledge/ipconfig.yaml``; labels the
  file does not know are kept under ``data.other``;
- the dot leader in all its forms (``. . . :``, ``. .:``, none at all in
  German ``Verbindungsspezifisches DNS-Suffix:``);
- multi-valued fields continued on the following lines (DNS servers,
  gateways, search list), aligned under the value column — or not, in web
  copies that collapsed the spaces (an address alone on a line continues);
- several captures in one file (a new ``Windows IP Configuration`` line),
  command prompts mixed in, and an unterminated last line (warned, the
  adapter marked partial).

Encodings are textio's: OEM code page from cmd.exe redirection, UTF-16LE
from PowerShell's ``>``.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .. import knowledge, textio
from . import register
from ._textcommon import Line, clean_scraped, head_lines, read_lines
from .base import ParseContext, Source

_PROMPT = re.compile(r"^\s*(?:[A-Za-z]:\\[^>]*>|PS [^>]*>)")
#: A label with a dot leader that the knowledge file does not list.
_GENERIC = re.compile(r"^\s{1,12}(?P<label>[^\s:.][^:]*?)\s*(?:\.\s*)+:(?:\s+(?P<value>.*))?$")
_ADDRESS_ONLY = re.compile(r"^[0-9A-Fa-f:.%]+(?:\([^)]*\))?$")
_LEADER = re.compile(r"\.\s?(?:\.\s?)*:")
_SUFFIX = re.compile(r"^(?P<v>\S+?)\s*\((?P<state>[^)]*)\)$")


@dataclass(frozen=True)
class _Vocab:
    headers: frozenset[str]
    label_re: re.Pattern[str]
    spelling: dict[str, str]
    adapter_types: tuple[tuple[str, str], ...]
    multi: frozenset[str]
    booleans: frozenset[str]
    yes: frozenset[str]
    no: frozenset[str]
    disconnected: frozenset[str]


@cache
def vocab() -> _Vocab:
    """The label vocabulary of knowledge/ipconfig.yaml, compiled once."""
    k = knowledge.load("ipconfig")
    spelling = {lab.lower(): fld for fld, labs in k["labels"].items() for lab in labs}
    alts = "|".join(re.escape(lab) for lab in sorted(spelling, key=len, reverse=True))
    label_re = re.compile(rf"^\s*(?P<label>{alts})[\s.]*:(?:\s*(?P<value>.*))?$", re.I)
    types = tuple(sorted(((p.lower(), t) for t, ps in k["adapter_types"].items() for p in ps),
                         key=lambda x: -len(x[0])))
    low = lambda xs: frozenset(x.lower() for x in xs)  # noqa: E731
    return _Vocab(low(k["headers"]), label_re, spelling, types, frozenset(k["multi_valued"]),
                  frozenset(k["boolean_fields"]), low(k["yes_words"]), low(k["no_words"]),
                  low(k["media_disconnected"]))


def _encoding(head: bytes) -> str:
    """textio's guess, except that between the two single-byte code pages
    the one that reads more known labels wins: Spanish and French OEM output
    (``Dirección`` = ``Direcci\xa2n`` in cp850) looks like cp1252 to a
    byte-statistics guess."""
    enc = textio.detect_encoding(head)
    if enc not in ("cp1252", "cp850"):
        return enc
    label_re = vocab().label_re

    def hits(codec: str) -> int:
        text = head.decode(codec, errors="replace")
        return sum(1 for ln in text.splitlines() if label_re.match(ln) or _is_header(ln))

    other = "cp850" if enc == "cp1252" else "cp1252"
    return other if hits(other) > hits(enc) else enc


def _is_header(text: str) -> bool:
    return text.strip().lower() in vocab().headers


def _adapter_header(text: str) -> tuple[str | None, str] | None:
    """``Ethernet adapter Local Area Connection:`` -> ("ethernet", name);
    None when the line is not an (unindented) section header."""
    if not text or text[0].isspace() or not text.rstrip().endswith(":"):
        return None
    title = text.rstrip()[:-1].strip()
    if not title or vocab().label_re.match(title + ":"):
        return None
    low = title.lower()
    for prefix, typ in vocab().adapter_types:
        if low.startswith(prefix):
            return typ, title[len(prefix):].strip()
    return None, title


@dataclass
class _Section:
    """The label values of one adapter (or of the host section)."""

    line: int
    header: str | None = None
    adapter_type: str | None = None
    values: dict[str, list[str]] = field(default_factory=dict)
    other: dict[str, str] = field(default_factory=dict)
    partial: bool = False


@register
class IpconfigSource(Source):
    name = "ipconfig"
    kind = "ipconfig"
    description = "ipconfig /all output (Windows 2003 and 2008+ layouts, localized labels)"

    def sniff(self, head: bytes, name: str) -> int:
        enc = _encoding(head)
        lines = head_lines(head, limit=200) if not enc.startswith("cp") else \
            [clean_scraped(ln) for ln in head.decode(enc, errors="replace").splitlines()[:200]]
        v = vocab()
        # Only dot-leader lines count: "Description:" alone is an event export.
        labels = sum(1 for ln in lines if ln[:1].isspace() and _LEADER.search(ln) and v.label_re.match(ln))
        header = any(_is_header(ln) for ln in lines[:60])
        adapters = sum(1 for ln in lines if (h := _adapter_header(ln)) and h[0])
        if header and labels >= 2:
            return 95
        if adapters and labels >= 3:
            return 85
        if labels >= 5:
            return 65
        return 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        host: _Section | None = None
        cur: _Section | None = None
        last_field: str | None = None
        n = 0
        for ln in read_lines(ctx.fs_path, encoding=_encoding(textio.read_head(ctx.fs_path))):
            text = ln.text
            if not text.strip() or _PROMPT.match(text):
                continue
            if _is_header(text):
                if cur is not None and cur.header is not None:
                    n += 1
                    yield self._row(host, cur)
                host = cur = _Section(ln.no)
                last_field = None
                continue
            hdr = _adapter_header(text)
            if hdr is not None:
                if cur is not None and cur.header is not None:
                    n += 1
                    yield self._row(host, cur)
                cur = _Section(ln.no, hdr[1], hdr[0])
                host = host or _Section(ln.no)
                last_field = None
                continue
            if cur is None:
                ctx.warn(f"text before any ipconfig section: {text.strip()[:60]!r}", f"line={ln.no}",
                         partial=False)
                continue
            last_field = self._value_line(ctx, ln, cur, last_field)
        if cur is not None and cur.header is not None:
            n += 1
            yield self._row(host, cur)
        if n == 0:
            ctx.warn("no adapter section found in ipconfig output", None)

    def _value_line(self, ctx: ParseContext, ln: Line, cur: _Section,
                    last_field: str | None) -> str | None:
        """Store one ``Label . . : value`` or continuation line in the current
        section (host or adapter); returns the field a following
        continuation line would extend."""
        v = vocab()
        text = ln.text
        if ln.last_unterminated:
            ctx.warn("truncated last line", f"line={ln.no}")
            cur.partial = True
        m = v.label_re.match(text)
        if m:
            fld = v.spelling[re.sub(r"\s+", " ", m["label"]).lower()]
            value = (m["value"] or "").strip()
            cur.values.setdefault(fld, [])
            if value:
                cur.values[fld].append(value)
            return fld
        if (g := _GENERIC.match(text)):
            cur.other[g["label"].strip()] = (g["value"] or "").strip()
            return None
        value = text.strip()
        if last_field in v.multi and (text[:1].isspace() or _ADDRESS_ONLY.match(value)):
            cur.values.setdefault(last_field, []).append(value)
            return last_field
        if not ln.last_unterminated:  # a cut last line was warned about already
            ctx.warn(f"unrecognized ipconfig line: {value[:60]!r}", f"line={ln.no}", partial=False)
        return last_field

    def _row(self, host: _Section | None, ad: _Section) -> dict[str, Any]:
        v = vocab()
        hv = host.values if host else {}
        av = ad.values

        def one(vals: dict[str, list[str]], fld: str) -> str | None:
            xs = vals.get(fld) or []
            return xs[0] if xs else None

        def flag(vals: dict[str, list[str]], fld: str) -> bool | None:
            x = (one(vals, fld) or "").lower()
            return True if x in v.yes else False if x in v.no else None

        addrs = [_strip_state(x) for f in ("ip_address", "autoconfiguration_ipv4_address")
                 for x in av.get(f, [])]
        link_local = [_strip_state(x) for x in av.get("link_local_ipv6_address", [])]
        ipv6 = [x for x in addrs if ":" in x] + [_strip_state(x) for f in (
            "ipv6_address", "temporary_ipv6_address") for x in av.get(f, [])] + link_local
        media = one(av, "media_state")
        data: dict[str, Any] = {
            "host_name": one(hv, "host_name"),
            "primary_dns_suffix": one(hv, "primary_dns_suffix"),
            "node_type": one(hv, "node_type"),
            "ip_routing_enabled": flag(hv, "ip_routing_enabled"),
            "wins_proxy_enabled": flag(hv, "wins_proxy_enabled"),
            "dns_suffix_search_list": hv.get("dns_suffix_search_list", []),
            "adapter": ad.header, "adapter_type": ad.adapter_type,
            "description": one(av, "description"),
            "physical_address": one(av, "physical_address"),
            "dhcp_enabled": flag(av, "dhcp_enabled"),
            "autoconfiguration_enabled": flag(av, "autoconfiguration_enabled"),
            "media_state": media,
            "media_disconnected": (media.lower() in v.disconnected) if media else False,
            "connection_dns_suffix": one(av, "connection_dns_suffix"),
            "ipv4_addresses": [x for x in addrs if ":" not in x],
            "subnet_masks": av.get("subnet_mask", []),
            "ipv6_addresses": ipv6, "link_local_ipv6_addresses": link_local,
            "ipv6_bound": bool(ipv6),
            "default_gateways": [_strip_state(x) for x in av.get("default_gateway", [])],
            "dhcp_server": one(av, "dhcp_server"),
            "dns_servers": [_strip_state(x) for x in av.get("dns_servers", [])],
            "wins_servers": av.get("primary_wins_server", []) + av.get("secondary_wins_server", []),
            "netbios_over_tcpip": one(av, "netbios_over_tcpip"),
            "dhcpv6_iaid": one(av, "dhcpv6_iaid"), "dhcpv6_client_duid": one(av, "dhcpv6_client_duid"),
            "lease_obtained": one(av, "lease_obtained"), "lease_expires": one(av, "lease_expires"),
        }
        if ad.other:
            data["other"] = dict(ad.other)
        ips = ", ".join(data["ipv4_addresses"] + ipv6) or ("media disconnected" if media else "no address")
        dns = ", ".join(data["dns_servers"]) or "none"
        msg = f"{ad.header}: {ips}; DNS {dns}"
        return {"kind": "network_adapter", "host": data["host_name"], "level": "information",
                "message": msg, "data": data, "locator": f"line={ad.line}",
                "parse_status": "partial" if ad.partial else "ok"}


def _strip_state(value: str) -> str:
    """``10.0.0.5(Preferred)`` / ``fe80::1%11(Bevorzugt)`` -> the address."""
    m = _SUFFIX.match(value.strip())
    return m["v"] if m else value.strip()
