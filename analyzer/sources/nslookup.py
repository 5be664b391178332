"""``nslookup`` output -> one ``dns_query`` row per query.

A support engineer asks the customer to "run nslookup for the remote
domain's MX from the Hub server" (the "451 4.4.0 DNS query failed" case, KB
972744): the answer, and above all *how* it failed, is the evidence. Each
query becomes a row with the server that answered (name and address), a
``status`` (``ok``, ``timeout``, ``nxdomain``, ``servfail``, ``refused``,
``no_response``, ``no_records``, ``failed``, ``no_answer``) and the answers
(A, AAAA, MX with preference, CNAME aliases, NS, SOA).

Forms handled:

- one command's output (``Server:`` / ``Address:`` then the answer), several
  run together in one file, with or without the ``C:\\>nslookup -type=mx
  name server`` command lines (which give the query and its type);
- interactive transcripts: ``Default Server:``, ``> set type=mx`` (the type
  persists), ``> name`` (a query), ``> server 8.8.8.8``, ``> exit``;
- ``Non-authoritative answer:`` (localized spellings in
  knowledge/nslookup.yaml), ``Name:``/``Address(es):``/``Aliases:`` with
  continuation lines, ``name  MX preference = 10, mail exchanger = host``,
  ``internet address =``, ``AAAA IPv6 address =``, ``canonical name =``;
- failures: ``DNS request timed out.`` / ``timeout was 2 seconds.``,
  ``*** Request to UnKnown timed-out``, ``*** x can't find y: Non-existent
  domain`` (and ``Server failed``, ``Query refused``, ``No response from
  server``), ``*** No ... records available for y``.

``Server:  UnKnown`` only means the resolver's own address has no PTR
record; a ``DNS request timed out`` printed *before* ``Server:`` is that
reverse lookup timing out and is counted apart (``server_lookup_timeouts``),
not as the query's failure. Without a command line the query name is
inferred from the answer (the first alias of a CNAME chain, else the
answered name; ``query_inferred`` says so).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .. import knowledge
from . import register
from ._textcommon import head_lines, read_lines, score
from .base import ParseContext, Source

_CMD = re.compile(r"^\s*(?:[A-Za-z]:\\[^>]*>|PS [^>]*>)\s*nslookup(?:\.exe)?(?:\s+(?P<args>.*))?$", re.I)
_OTHER_CMD = re.compile(r"^\s*(?:[A-Za-z]:\\[^>]*>|PS [^>]*>)")
_PROMPT = re.compile(r"^\s*>\s*(?P<cmd>.*)$")
_LABEL = re.compile(r"^(?P<label>Default Server|Server|Address|Addresses|Name|Aliases):\s*(?P<value>.*)$", re.I)
_RECORD = re.compile(
    r"^(?P<name>\S+)\s+(?:(?:MX )?preference = (?P<pref>\d+), mail exchanger = (?P<mx>\S+)|"
    r"internet address = (?P<a>\S+)|AAAA IPv6 address = (?P<aaaa>\S+)|"
    r"canonical name = (?P<cname>\S+)|nameserver = (?P<ns>\S+)|name = (?P<ptr>\S+))\s*$", re.I)
_SOA = re.compile(r"^\s+primary name server = (?P<v>\S+)", re.I)
_SOA_FIELD = re.compile(r"^\s+(?P<k>[a-z][a-z ]*?)\s*=\s*(?P<v>\S.*)$", re.I)
_CANT_FIND = re.compile(r"^\*\*\*\s*(?P<srv>.+?) can't find (?P<q>.+?):\s*(?P<why>.+?)\s*$", re.I)
_SERVER_LOOKUP = re.compile(r"^\*\*\*\s*(?:Can't find server|Default servers are not available)", re.I)
_REQ_TIMEOUT = re.compile(r"^\*\*\*\s*Request to (?P<srv>.+?) timed-?out", re.I)
_NO_RECORDS = re.compile(r"^\*\*\*\s*No (?P<what>.+?) records? available for (?P<q>\S+?)\.?\s*$", re.I)
_TIMED_OUT = re.compile(r"^\s*DNS request timed out\.?\s*$", re.I)
_TIMEOUT_WAS = re.compile(r"^\s*timeout was (?P<s>\d+) seconds?\.?\s*$", re.I)
_SET_TYPE = re.compile(r"^set\s+(?:type|q|querytype)\s*=\s*(?P<t>\S+)", re.I)
_OPT_TYPE = re.compile(r"^-(?:type|q|querytype|query)=(?P<t>\S+)$", re.I)


@cache
def _vocab() -> tuple[dict[str, str], re.Pattern[str]]:
    k = knowledge.load("nslookup")
    non_auth = "|".join(re.escape(x) for x in k["non_authoritative"])
    return k["reasons"], re.compile(rf"^\s*(?:{non_auth})\s*:?\s*$", re.I)


def reason_status(reason: str) -> str:
    """``Non-existent domain`` -> ``nxdomain`` (knowledge/nslookup.yaml)."""
    low = reason.strip().lower()
    for text, status in _vocab()[0].items():
        if low.startswith(text):
            return status
    return "failed"


@dataclass
class _Query:
    line: int
    query: str | None = None
    query_type: str | None = "A"
    interactive: bool = False
    server_name: str | None = None
    server_address: str | None = None
    phase: str = "pre"  # pre -> server -> answer -> additional
    authoritative: bool | None = None
    answers: list[dict[str, Any]] = field(default_factory=list)
    name: str | None = None
    aliases: list[str] = field(default_factory=list)
    status: str | None = None
    error: str | None = None
    timeouts: int = 0
    pre_timeouts: int = 0
    timeout_seconds: int | None = None
    last: str | None = None
    #: The name line that owns a following SOA block.
    owner: str | None = None
    partial: bool = False

    def has_output(self) -> bool:
        return bool(self.answers or self.status or self.timeouts or self.aliases or self.name)


class _Parser:
    """Line-by-line state machine; ``out`` collects finished queries."""

    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx
        self.cur: _Query | None = None
        self.out: list[dict[str, Any]] = []
        self.interactive = False
        self.qtype = "A"
        self.default: list[str | None] = [None, None]
        self.in_default = False

    def flush(self) -> None:
        q, self.cur = self.cur, None
        if q is None or (q.query is None and q.server_name is None and not q.answers and not q.status):
            return  # only the resolver's own reverse lookup (timeouts, "Can't find server name")
        if not q.has_output() and q.status is None:
            self.ctx.warn("nslookup query without any answer or error (cut off?)", f"line={q.line}",
                          partial=False)
        self.out.append(_row(q))

    def new(self, no: int, query: str | None = None, qtype: str | None = None) -> _Query:
        self.flush()
        # qtype "" = not said (an output without its command line): inferred
        # from the answers when the row is built.
        t = qtype if qtype is not None else self.qtype if self.interactive else ""
        self.cur = _Query(no, query, t.upper() or None, self.interactive)
        if self.interactive and query:
            self.cur.server_name, self.cur.server_address = self.default
        return self.cur

    def command(self, no: int, args: str) -> None:
        """``nslookup [-type=mx] [name [server]]``."""
        qtype, pos = "A", []
        for a in args.split():
            m = _OPT_TYPE.match(a)
            if m:
                qtype = m["t"]
            elif not a.startswith("-"):
                pos.append(a)
        self.flush()
        self.interactive = not pos
        self.qtype = qtype.upper()
        self.in_default = False
        if pos:
            self.new(no, pos[0], qtype)

    def prompt(self, no: int, cmd: str) -> None:
        """An interactive ``> ...`` line."""
        word = cmd.split()[0].lower() if cmd.split() else ""
        if (m := _SET_TYPE.match(cmd)):
            self.qtype = m["t"].upper()
        elif word in ("", "set", "ls", "help", "?", "view", "finger", "root"):
            pass
        elif word in ("exit", "quit"):
            self.flush()
            self.interactive = False
        elif word in ("server", "lserver"):
            self.flush()
        else:
            self.interactive = True
            self.new(no, cmd.split()[0])

    def feed(self, no: int, raw: str, text: str, last: bool) -> None:
        if (m := _CMD.match(raw)):
            self.command(no, m["args"] or "")
            return
        if _OTHER_CMD.match(raw):
            self.flush()
            self.interactive = False
            return
        pm = _PROMPT.match(raw)
        if pm and not _LABEL.match(pm["cmd"]) and not _vocab()[1].match(pm["cmd"]):
            self.prompt(no, pm["cmd"].strip())
            return
        if not text.strip():
            if self.cur is not None and self.cur.phase == "answer" and self.cur.answers:
                self.cur.phase = "additional"
            return
        if last and self.cur is not None:
            self.cur.partial = True
            self.ctx.warn("truncated last line", f"line={no}")
        if not self.labelled(no, text):
            self.result(no, text)

    def labelled(self, no: int, text: str) -> bool:
        """``Server:`` / ``Address:`` / ``Name:`` / ``Aliases:`` lines."""
        m = _LABEL.match(text.strip())
        if not m:
            return False
        label, value = m["label"].lower(), m["value"].strip()
        if label == "default server":
            self.flush()
            self.in_default = True
            self.default = [value, None]
            return True
        if label == "server":
            self.in_default = False
            q = self.cur
            if q is None or q.phase != "pre" or q.answers or q.status:
                q = self.new(no, qtype="")
            q.server_name, q.server_address, q.phase = value, None, "server"
            q.pre_timeouts, q.timeouts = q.timeouts, 0
            return True
        if label in ("address", "addresses") and self.in_default:
            self.default[1] = value
            self.in_default = False
            return True
        q = self.cur or self.new(no, qtype="")
        if label in ("address", "addresses") and q.phase == "server" and q.server_address is None:
            q.server_address = value
        elif label == "name":
            q.name, q.phase, q.last = value, "answer", None
        elif label in ("address", "addresses"):
            q.last = "addresses"
            self.address(q, value)
        else:
            q.last = "aliases"
            q.aliases.append(value)
        return True

    def address(self, q: _Query, value: str) -> None:
        if value:
            q.answers.append({"name": q.name, "type": "AAAA" if ":" in value else "A", "value": value,
                              "section": "answer"})

    def result(self, no: int, text: str) -> None:
        q = self.cur or self.new(no, qtype="")
        s = text.strip()
        if _TIMED_OUT.match(s):
            q.timeouts += 1
        elif (m := _TIMEOUT_WAS.match(s)):
            q.timeout_seconds = int(m["s"])
        elif _vocab()[1].match(s):
            q.authoritative, q.phase = False, "answer"
        elif s.lower().startswith("authoritative answers can be found from"):
            q.phase = "authority"
        elif _SERVER_LOOKUP.match(s):
            q.error = q.error or s.lstrip("* ")
        elif (m := _CANT_FIND.match(s)):
            q.status, q.error = reason_status(m["why"]), m["why"]
            q.query = q.query or m["q"]
        elif (m := _REQ_TIMEOUT.match(s)):
            q.status, q.error = "timeout", s.lstrip("* ")
        elif (m := _NO_RECORDS.match(s)):
            q.status, q.error = "no_records", s.lstrip("* ")
            q.query = q.query or m["q"]
        elif (m := _RECORD.match(s)):
            self.record(q, m)
        elif (m := _SOA.match(text)):
            # Without an SOA query this is the authority section of an empty answer.
            sec = _section(q) if q.query_type == "SOA" else "authority"
            q.answers.append({"name": q.owner, "type": "SOA", "value": m["v"], "section": sec})
        elif (m := _SOA_FIELD.match(text)) and q.answers and q.answers[-1]["type"] == "SOA":
            q.answers[-1][re.sub(r"\W+", "_", m["k"].strip().lower())] = m["v"].strip()
        elif text[:1].isspace() and q.last in ("addresses", "aliases") and " " not in s:
            if q.last == "aliases":
                q.aliases.append(s)
            else:
                self.address(q, s)
        elif q.phase != "pre" and re.match(r"^[\w.-]+\.?$", s):
            q.owner = s
        else:
            self.ctx.warn(f"unrecognized nslookup line: {s[:60]!r}", f"line={no}", partial=False)

    @staticmethod
    def record(q: _Query, m: re.Match[str]) -> None:
        sec = _section(q)
        rec: dict[str, Any] = {"name": m["name"], "section": sec}
        if m["mx"]:
            rec.update(type="MX", value=m["mx"], preference=int(m["pref"]))
        elif m["a"]:
            rec.update(type="A", value=m["a"])
        elif m["aaaa"]:
            rec.update(type="AAAA", value=m["aaaa"])
        elif m["cname"]:
            rec.update(type="CNAME", value=m["cname"])
        elif m["ns"]:
            rec.update(type="NS", value=m["ns"])
        else:
            rec.update(type="PTR", value=m["ptr"])
        q.answers.append(rec)
        if q.phase in ("pre", "server"):
            q.phase = "answer"


def _section(q: _Query) -> str:
    return {"additional": "additional", "authority": "authority"}.get(q.phase, "answer")


def _row(q: _Query) -> dict[str, Any]:
    answers = [a for a in q.answers if a["section"] == "answer"]
    query, inferred = q.query, False
    if query is None:
        query = (q.aliases[0] if q.aliases else q.name) or (answers[0]["name"] if answers else None)
        inferred = query is not None
    status = q.status
    if status is None:
        soa = any(a["type"] == "SOA" for a in q.answers)
        status = "ok" if answers else "timeout" if q.timeouts else "no_records" if soa else "no_answer"
    qtype = q.query_type
    if qtype is None and answers:
        qtype = "MX" if any(a["type"] == "MX" for a in answers) else answers[0]["type"]
        qtype = "A" if qtype == "AAAA" else qtype  # Windows asks A and AAAA for a name
    mx = [{"preference": a["preference"], "exchange": a["value"]} for a in answers if a["type"] == "MX"]
    data = {
        "query": query, "query_type": qtype, "query_inferred": inferred,
        "server_name": q.server_name, "server_address": q.server_address, "status": status,
        "error": q.error, "authoritative": q.authoritative,
        "addresses": [a["value"] for a in q.answers if a["type"] in ("A", "AAAA")
                      and (a["name"] in (None, q.name) or a["section"] == "answer")],
        "canonical_name": q.name if q.aliases else None, "aliases": q.aliases, "mx": mx,
        "answers": q.answers, "timeouts": q.timeouts, "timeout_seconds": q.timeout_seconds,
        "server_lookup_timeouts": q.pre_timeouts, "interactive": q.interactive,
    }
    via = q.server_address or q.server_name or "?"
    summary = ", ".join(f"{m['preference']} {m['exchange']}" for m in mx) or ", ".join(data["addresses"])
    msg = f"nslookup {qtype or '?'} {query or '?'} via {via}: {status}" + (f" ({summary})" if summary else "")
    return {"kind": "dns_query", "level": "information" if status == "ok" else "warning",
            "message": msg, "data": data, "locator": f"line={q.line}",
            "parse_status": "partial" if q.partial else "ok"}


@register
class NslookupSource(Source):
    name = "nslookup"
    kind = "nslookup"
    description = "nslookup output: single commands, concatenated runs, interactive transcripts"

    def sniff(self, head: bytes, name: str) -> int:
        lines = [ln.strip() for ln in head_lines(head, limit=300)]
        pairs = sum(1 for a, b in zip(lines, lines[1:])
                    if re.match(r"^(?:Default )?Server:\s+\S", a, re.I) and re.match(r"^Address:\s+\S", b, re.I))
        marks = sum(1 for ln in lines if _vocab()[1].match(ln) or _CANT_FIND.match(ln)
                    or _REQ_TIMEOUT.match(ln) or _TIMED_OUT.match(ln) or _CMD.match(ln)
                    or (_RECORD.match(ln) and " = " in ln))
        if pairs and marks:
            return score(pairs + marks, 3, base=85, top=94)
        if marks >= 2 and any(_REQ_TIMEOUT.match(ln) or _CANT_FIND.match(ln) for ln in lines):
            return 70
        return 40 if pairs >= 2 else 0

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        p = _Parser(ctx)
        n = 0
        for ln in read_lines(ctx.fs_path):
            p.feed(ln.no, ln.raw.replace("\x00", "").rstrip(), ln.text, ln.last_unterminated)
            n += len(p.out)
            yield from p.out
            p.out = []
        p.flush()
        n += len(p.out)
        yield from p.out
        if n == 0:
            ctx.warn("no nslookup query found", None)
