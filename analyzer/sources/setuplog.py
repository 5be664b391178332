"""Exchange 2000/2003 ``Exchange Server Setup Progress.log`` and Exchange 5.5
``Exchange Server Setup.log`` (examples: tests/fixtures/text/setup*.txt).

2000/2003 format facts and pitfalls:

- lines start with ``[HH:MM:SS]`` and carry **no date**. The date is taken
  from the run's own header lines when one of its first lines names a date
  (``... setup ... on 05/21/2004``; day/month order decided by values > 12,
  else month/day); otherwise rows keep ``ts`` null, ``ts_source``
  "date-less" and the time in ``data.time``. Redacted times (``[HH:MM:SS]``,
  KB 324949) give ``ts_source`` "none";
- a timestamp may stand alone with the message wrapped below it; error
  detail (``Error code 0X80072030 (8240): text``) and source locations
  (``(f:\\titanium\\...\\svcmgr.cxx:537)``) sit on following indented lines:
  every line without a ``[HH:MM:SS]`` prefix is folded into the previous
  line's message (joined by one space, so a path wrapped at a space, like
  setup_progress_seed000.txt's ``C:\\Program`` / ``Files\\Exchsrvr\\bin``, comes back whole);
- most errors are expected: ``=== IGNORING PREVIOUS ERRORS ===`` marks the
  error lines just before it (the contiguous block, ``Leaving``/``Entering``
  lines included) as ``ignored`` — they keep level "error" so nothing is
  hidden, checks filter on ``data.ignored``;
- ``Entering X`` / ``Leaving X`` nest; ``data.scope`` is the innermost open
  scope;
- several runs are appended to one file. A new run starts at a banner line
  (``Starting ... setup``, a ``*****`` ruler) or when the time goes
  backwards other than across midnight (22:00+ -> before 02:00 is taken as a
  day rollover and advances the date);
- ``Interpreting line <CreateProcess:dir;"cmd" args;timeout> -- ID:n --``,
  ``Process created ... waiting (N)`` and ``Process has exited with
  XXXXXXXX`` are paired into one ``setup_process`` row (the run of EMPKP.exe
  /regserver the MOM 9986 check looks for). Exit codes are hex text.

Exchange 5.5 Setup.log has no timestamps: every line is a row
(``ts_source`` "none"), ``Interpreting line <Verb:args>`` directives wrapped
across lines are joined up to their closing ``>``.
"""
from __future__ import annotations

import ntpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from . import register
from ._textcommon import head_lines, read_lines
from .base import ParseContext, Source

_TS = re.compile(r"^\s*\[(?P<t>\d{1,2}:\d{2}:\d{2}|HH:MM:SS)\]\s?(?P<msg>.*)$")
_ERRCODE = re.compile(r"Error code (?P<code>0[Xx][0-9A-Fa-f]{8})(?:\s*\((?P<dec>-?\d+)\))?")
_IGNORING = re.compile(r"=== IGNORING PREVIOUS ERRORS ===")
_ENTERING = re.compile(r"^\s*Entering\s+(?P<s>\S+)")
_LEAVING = re.compile(r"^\s*Leaving\s+(?P<s>\S+?)_?\s*$")
_COPYING = re.compile(r"^\s*Copying\s+(?P<rest>.+?)\s*$")
_INTERPRET = re.compile(r"Interpreting line <(?P<verb>\w+):(?P<args>.*?)(?:>(?P<tail>.*))?$")
_CREATED = re.compile(r"Process created.*?waiting\s*\((?P<ms>\d+)\)")
_EXITED = re.compile(r"Process has exited with\s+(?P<code>[0-9A-Fa-f]+)")
_BANNER = re.compile(r"(?:Starting\b.*\b[Ss]etup\b|^\*{10,}\s*$)")
_PATH_START = re.compile(r"(?:(?<=\s)|^)(?:[A-Za-z]:\\|\\\\)")
_ID = re.compile(r"ID:\s*(?P<id>\d+)")
_SETUPISH = re.compile(r"Entering |Leaving |Error code 0X|IGNORING PREVIOUS ERRORS|Interpreting line <|"
                       r"Copying |Process (?:created|has exited)|[Ss]etup|Sc[A-Z]\w+|\.cxx:\d+", re.I)

_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_DATE_NUM = re.compile(r"\b(?P<a>\d{1,4})[/.-](?P<b>\d{1,2})[/.-](?P<c>\d{2,4})\b")
_DATE_WORD = re.compile(r"\b(?:(?P<d1>\d{1,2})\s+(?P<m1>[A-Za-z]{3,9})\.?,?\s+(?P<y1>\d{4})|"
                        r"(?P<m2>[A-Za-z]{3,9})\.?\s+(?P<d2>\d{1,2}),?\s+(?P<y2>\d{4}))\b")


def find_date(text: str) -> date | None:
    """A calendar date named in a header line, or None. Numeric dates with
    both parts <= 12 are read month/day (en-US, what Exchange setup logs of
    that era mostly show)."""
    m = _DATE_NUM.search(text)
    if m:
        a, b, c = int(m["a"]), int(m["b"]), int(m["c"])
        try:
            if len(m["a"]) == 4:
                return date(a, b, c)
            year = c + 2000 if c < 100 else c
            if a > 12:
                return date(year, b, a)
            return date(year, a, b)
        except ValueError:
            return None
    m = _DATE_WORD.search(text)
    if m:
        mon = (m["m1"] or m["m2"] or "")[:3].lower()
        if mon in _MONTHS:
            try:
                return date(int(m["y1"] or m["y2"]), _MONTHS[mon], int(m["d1"] or m["d2"]))
            except ValueError:
                return None
    return None


def split_copy(rest: str) -> tuple[str | None, str | None]:
    """``Copying <src> <dst>``: paths contain spaces, so split where the
    second path (drive letter or UNC) starts. A single path is the
    destination (KB 911143 quotes ``Copying c:\\program files\\exchsrvr\\bin\\empkp.exe``)."""
    starts = [m.start() for m in _PATH_START.finditer(rest)]
    if len(starts) >= 2:
        return rest[: starts[1]].strip(), rest[starts[1]:].strip()
    return None, rest.strip() or None


def parse_create_process(args: str) -> dict[str, Any]:
    """``dir;"C:\\...\\empkp.exe" /regserver;60000`` -> working dir, command
    line, timeout and the lower-case image file name. The KB's elided form
    (``...empkp.exe" /regserver;60000``) has no working directory."""
    parts = args.split(";")
    timeout = None
    if len(parts) >= 2 and parts[-1].strip().isdecimal():
        timeout = int(parts[-1].strip())
        parts = parts[:-1]
    if len(parts) >= 2:
        working_dir, cmd = parts[0].strip(), ";".join(parts[1:]).strip()
    else:
        working_dir, cmd = None, parts[0].strip()
    if cmd.startswith('"'):
        exe = cmd[1:].split('"', 1)[0]
    elif '"' in cmd:  # elided: ...empkp.exe" /regserver
        exe = cmd.split('"', 1)[0]
    else:
        exe = cmd.split(" ", 1)[0]
    image = ntpath.basename(exe.strip().lstrip(".")).lower() or None
    return {"command_line": cmd, "image": image, "working_dir": working_dir or None,
            "timeout_ms": timeout}


@dataclass
class _Logical:
    no: int
    time: str | None
    text: str
    last_unterminated: bool = False


@dataclass
class _State:
    run: int = 0
    run_date: date | None = None
    run_lines: int = 0
    last_time: str | None = None
    scopes: list[str] = field(default_factory=list)
    pending_errors: list[dict[str, Any]] = field(default_factory=list)
    proc: dict[str, Any] | None = None
    prev_banner: bool = False
    proc_done: dict[str, Any] | None = None


@register
class SetupProgressLogSource(Source):
    name = "setuplog"
    kind = "exchange-setup-progress-log"
    description = "Exchange 2000/2003 Setup Progress.log (and Exchange 5.5 Setup.log)"

    def sniff(self, head: bytes, name: str) -> int:
        lines = [ln for ln in head_lines(head) if ln.strip()]
        if not lines:
            return 0
        ts = [ln for ln in lines if _TS.match(ln)]
        setupish_ts = sum(1 for ln in ts if _SETUPISH.search(ln))
        interp = sum(1 for ln in lines if "Interpreting line <" in ln)
        errs = sum(1 for ln in lines if _ERRCODE.search(ln) or _IGNORING.search(ln))
        if ts and (setupish_ts or errs):
            hits = len(ts) + errs
            if hits / len(lines) < 0.3:
                return 40  # a few quoted lines inside prose (a KB article)
            return 90 if hits >= 3 else 70
        if interp >= 2:
            return 75 if interp / len(lines) >= 0.2 else 35
        return 0

    # -- logical lines ----------------------------------------------------
    def _logical(self, ctx: ParseContext) -> Iterator[_Logical]:
        timed_mode = False
        cur: _Logical | None = None
        for ln in read_lines(ctx.fs_path):
            text = ln.text
            if not text.strip():
                continue
            m = _TS.match(text)
            if m:
                timed_mode = True
                if cur is not None:
                    yield cur
                cur = _Logical(ln.no, m["t"], m["msg"].strip(), ln.last_unterminated)
                continue
            stripped = text.strip()
            if timed_mode and cur is not None:
                cur.text = f"{cur.text} {stripped}".strip()
                cur.last_unterminated = ln.last_unterminated
                continue
            # 5.5 mode (no timestamps yet): a directive wrapped before its '>'
            if cur is not None and cur.time is None and "Interpreting line <" in cur.text \
                    and ">" not in cur.text.split("Interpreting line <", 1)[1]:
                cur.text = f"{cur.text} {stripped}"
                cur.last_unterminated = ln.last_unterminated
                continue
            if cur is not None:
                yield cur
            cur = _Logical(ln.no, None, stripped, ln.last_unterminated)
        if cur is not None:
            yield cur

    def parse(self, ctx: ParseContext) -> Iterator[dict[str, Any]]:
        st = _State()
        n = 0
        for lg in self._logical(ctx):
            n += 1
            yield from self._handle(ctx, st, lg)
        yield from self._flush_errors(st)
        if st.proc is not None:
            yield self._proc_row(st.proc)
        if n == 0:
            ctx.warn("no setup log lines found", None)

    def _flush_errors(self, st: _State) -> Iterator[dict[str, Any]]:
        rows, st.pending_errors = st.pending_errors, []
        yield from rows

    def _new_run(self, st: _State) -> None:
        st.run += 1
        st.run_date = None
        st.run_lines = 0
        st.scopes = []
        st.last_time = None

    def _handle(self, ctx: ParseContext, st: _State, lg: _Logical) -> Iterator[dict[str, Any]]:
        text = lg.text
        banner = bool(_BANNER.search(text))
        if st.run == 0 or (banner and not st.prev_banner):
            if st.run == 0 or st.run_lines > 0:
                if st.run:
                    yield from self._flush_errors(st)
                self._new_run(st)
        st.prev_banner = banner
        t = lg.time if lg.time and lg.time != "HH:MM:SS" else None
        if t and st.last_time:
            prev_s = _secs(st.last_time)
            now_s = _secs(t)
            if now_s < prev_s:
                if prev_s >= 22 * 3600 and now_s < 2 * 3600:
                    if st.run_date:
                        st.run_date += timedelta(days=1)
                elif not banner:
                    yield from self._flush_errors(st)
                    self._new_run(st)
                    ctx.note(f"setup run {st.run} inferred at line {lg.no}: time went backwards")
        if t:
            st.last_time = t
        st.run_lines += 1
        if st.run_date is None and st.run_lines <= 5:
            d = find_date(text)
            if d is not None and (banner or "setup" in text.lower() or st.run_lines <= 2):
                st.run_date = d

        if (m := _ENTERING.match(text)):
            st.scopes.append(m["s"])
        data: dict[str, Any] = {"run": st.run, "time": t, "scope": st.scopes[-1] if st.scopes else None}
        if (m := _LEAVING.match(text)):
            name = m["s"]
            if name in st.scopes:
                while st.scopes and st.scopes.pop() != name:
                    pass
        em = _ERRCODE.search(text)
        is_error = em is not None
        if em:
            data["error_code"] = "0X" + em["code"][2:].upper()
            if em["dec"]:
                data["error_code_dec"] = int(em["dec"])
        data["ignored"] = False
        if (m := _COPYING.match(text)) and not text.lower().startswith("copying files"):
            data["copy_src"], data["copy_dst"] = split_copy(m["rest"])
        if lg.time is None:
            ts, ts_source = None, "none"
        elif t is None:
            ts, ts_source = None, "none"
        elif st.run_date is not None:
            ts = datetime.combine(st.run_date, datetime.strptime(t, "%H:%M:%S").time())
            ts_source = "local"
        else:
            ts, ts_source = None, "date-less"
        status = "ok"
        if lg.last_unterminated and not text.rstrip().endswith((".", ">", "--", ")")):
            ctx.warn("truncated last line", f"line={lg.no}")
            status = "partial"
        row = {"kind": "setup_line", "ts": ts, "ts_source": ts_source,
               "level": "error" if is_error else "information", "message": text,
               "data": data, "locator": f"line={lg.no}", "parse_status": status}

        # process-run pairing
        if (m := _INTERPRET.search(text)) and m["verb"].lower() == "createprocess":
            if st.proc is not None:
                yield self._proc_row(st.proc)
            info = parse_create_process(m["args"])
            idm = _ID.search(m["tail"] or "")
            st.proc = {"run": st.run, **info, "exit_code": None, "exit_code_int": None,
                       "id": idm["id"] if idm else None, "line": lg.no, "ts": ts,
                       "ts_source": ts_source, "time": t}
            if m["tail"] is None:
                ctx.warn("CreateProcess directive without closing '>'", f"line={lg.no}")
        elif (m := _CREATED.search(text)) and st.proc is not None:
            st.proc["waiting_ms"] = int(m["ms"])
            if st.proc["timeout_ms"] is None:
                st.proc["timeout_ms"] = int(m["ms"])
        elif (m := _EXITED.search(text)) and st.proc is not None:
            st.proc["exit_code"] = m["code"]
            try:
                st.proc["exit_code_int"] = int(m["code"], 16)
            except ValueError:
                st.proc["exit_code_int"] = None
            proc, st.proc = st.proc, None
            st.proc_done = self._proc_row(proc)
        elif (m := _EXITED.search(text)):
            ctx.warn("'Process has exited' without a CreateProcess line", f"line={lg.no}", partial=False)

        # error blocks and IGNORING PREVIOUS ERRORS
        if _IGNORING.search(text):
            for r in st.pending_errors:
                if r["level"] == "error":
                    r["data"]["ignored"] = True
            yield from self._flush_errors(st)
            yield row
        elif is_error or (st.pending_errors and (_LEAVING.match(text) or _ENTERING.match(text))):
            st.pending_errors.append(row)
        else:
            yield from self._flush_errors(st)
            yield row
        done = st.proc_done
        if done is not None:
            st.proc_done = None
            yield done

    @staticmethod
    def _proc_row(proc: dict[str, Any]) -> dict[str, Any]:
        data = {k: proc.get(k) for k in ("run", "command_line", "image", "working_dir", "timeout_ms",
                                         "exit_code", "exit_code_int", "id")}
        if "waiting_ms" in proc:
            data["waiting_ms"] = proc["waiting_ms"]
        data["time"] = proc.get("time")
        exit_txt = proc["exit_code"] if proc["exit_code"] is not None else "no exit line"
        level = "information" if proc["exit_code_int"] == 0 else (
            "error" if proc["exit_code_int"] is not None else "warning")
        return {"kind": "setup_process", "ts": proc["ts"], "ts_source": proc["ts_source"],
                "level": level, "message": f"{proc['command_line']} -> {exit_txt}",
                "data": data, "locator": f"line={proc['line']}", "parse_status": "ok"}


def _secs(t: str) -> int:
    h, m, s = (int(x) for x in t.split(":"))
    return h * 3600 + m * 60 + s
