"""Check mom-9986: why MOM never logged event 9986 for an Exchange server.

Encodes Microsoft KB 911143 (MOM 2005 + Exchange Management Pack) and
"Missing 9986 Events in Operations Manager 2007". The Management Pack's
"Exchange - Publish ExMP Data" script calls a DCOM helper on the Exchange
server that writes ``HKLM\\SOFTWARE\\Microsoft\\ExMPLS`` (REG_BINARY DATA0 =
the public key BLOB); MOM then logs 9986, and only after that can the
Configuration Wizard store the mailbox access account (DATA1..DATA3). The
article's decision tree, step by step:

1. Which helper? ExchKP (Exchange 2000 with MOM 2000 SP1: ExchKP.exe +
   ExchKPps.dll in the MOM 2000 OnePoint folder, events 9970/9972) or EMPKP
   (Exchange 2003 -- copied and registered by Exchange setup -- or Exchange
   2000 with MOM 2005: Empkp.exe, events 10000/10001). Decided from the
   Exchange build, the Windows version, the MOM agent, the events seen.
2. What did the script log? 9986 published; 9970 / Exchange MOM 10000 the
   helper ran and failed; 9972 / 10001 the object could not be created; 9987
   the MAPI logon rule found no ExMPLS key; nothing at all = the script or its
   rules are not running (OpsMgr 2007: or the server is not discovered).
3. Is the helper registered? ``Classes\\CLSID\\{clsid}\\LocalServer32`` and
   the exit code of ``empkp.exe /regserver`` in Exchange Server Setup
   Progress.log.
4. Does DCOM start it? DCOM 10000 "Unable to start a DCOM Server: {clsid}"
   in the System log means LocalServer32 names a file that is not there /
   not valid; the value must equal where setup copied the helper.
5. Registered, valid path, still not created: DCOM permissions (KB 274696),
   corroborated by DCOM 10016 naming the CLSID.
6. Published but the wizard still fails: DATA1..DATA3 missing.

Every cause is weighed against every piece of evidence (not first match),
and the ones the evidence rules out say why. The provider decides what an
event id means: DCOM 10000 is not Exchange MOM 10000, and an unrelated
provider's 10000 means nothing here.

Registry lookups are done on the host's own registry rows (see
:class:`_Reg`) rather than the case-wide registry view, because a case can
hold several servers' MOM events while the hive belongs to one of them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .. import knowledge
from ..findings import Cause, Evidence, Finding
from ..hosts import host_key
from ..query import provider_aliases
from ..table import row_data
from . import Check, register

KB = "mom9986"

#: Hosts sort and group by their short upper-case name: the MOM console says
#: "EXCH01", the .evt "EXCH01", an OpsMgr log "EXCH01.contoso.local".
def _short(host: Any) -> str:
    return host_key(host) or ""


def _norm_key(key: str) -> str:
    """Registry key as one comparable spelling (HKLM\\SOFTWARE\\Classes for HKCR)."""
    k = key.strip().strip("\\").replace("/", "\\")
    k = re.sub(r"\\+", r"\\", k)
    low = k.lower()
    for prefix, repl in (("hkey_local_machine\\", "hklm\\"),
                         ("hkey_classes_root\\", "hklm\\software\\classes\\"),
                         ("hkcr\\", "hklm\\software\\classes\\")):
        if low.startswith(prefix):
            low = repl + low[len(prefix):]
            break
    return low


class _Reg:
    """Case-insensitive lookups over one host's registry rows.

    Keys from hives (``HKLM\\SOFTWARE\\Classes\\CLSID\\...``) and from .reg
    exports (``HKEY_CLASSES_ROOT\\CLSID\\...``) are compared in one spelling.
    ``covers`` says whether the absence of a key means something:

    - a SOFTWARE hive read without damage covers everything under
      HKLM\\SOFTWARE (the hive source's targeted load declares the ExMPLS
      key and both helper CLSIDs, knowledge/registry_paths.yaml); a hive
      the inventory marks partial or failed proves no absence: a truncated
      hive loses keys silently;
    - a .reg export covers a key only when it exported the key's parent
      (regedit writes every key of an exported subtree as its own section,
      so an export of ``...\\CLSID`` lists every class). An export of one
      unrelated CLSID, or of ``Microsoft\\Exchange\\Setup``, says nothing
      about EMPKP's CLSID or about ExMPLS.
    """

    def __init__(self, rows: pd.DataFrame, export_sources: set[str],
                 damaged_paths: frozenset[str] = frozenset(), shared: bool = False) -> None:
        self.rows = rows
        self.nkey = rows["key"].astype("string").fillna("").map(_norm_key) if len(rows) else pd.Series([], dtype=object)
        src = rows["source"].astype("string").fillna("").str.lower() if len(rows) else pd.Series([], dtype=object)
        sw = self.nkey.str.startswith("hklm\\software\\") if len(rows) else pd.Series([], dtype=bool)
        self.export_mask = src.isin(export_sources) if len(rows) else pd.Series([], dtype=bool)
        self.hive_path: str | None = None
        if len(rows):
            paths = rows.loc[sw & ~self.export_mask, "path"].astype("string").dropna().unique()
            sound = sorted(str(p) for p in paths if str(p) not in damaged_paths)
            self.hive_path = sound[0] if sound else None
        self.software_hive = self.hive_path is not None
        #: Host-less registry rows handed to several servers (no SYSTEM hive
        #: says whose they are): a key they lack may be another server's.
        self.shared = shared

    def key_row(self, key: str) -> pd.Series | None:
        if self.rows.empty:
            return None
        nk = _norm_key(key)
        hit = self.rows[self.nkey == nk]
        if hit.empty:
            return None
        keyrows = hit[hit["kind"].astype("string") == "registry_key"]
        return (keyrows if not keyrows.empty else hit).iloc[0]

    def get(self, key: str, name: str) -> pd.Series | None:
        if self.rows.empty:
            return None
        nk = _norm_key(key)
        vals = self.rows[(self.nkey == nk) & (self.rows["kind"].astype("string") == "registry_value")]
        if vals.empty:
            return None
        names = vals["value_name"].astype("string").fillna("").str.lower()
        hit = vals[names == name.lower()]
        return None if hit.empty else hit.iloc[-1]

    def values(self, key: str) -> pd.DataFrame:
        if self.rows.empty:
            return self.rows
        nk = _norm_key(key)
        return self.rows[(self.nkey == nk) & (self.rows["kind"].astype("string") == "registry_value")]

    def under(self, key: str) -> pd.DataFrame:
        if self.rows.empty:
            return self.rows
        nk = _norm_key(key)
        return self.rows[(self.nkey == nk) | self.nkey.str.startswith(nk + "\\")]

    def covers(self, key: str) -> bool:
        if self.shared:
            return False
        nk = _norm_key(key)
        if self.software_hive and nk.startswith("hklm\\software\\"):
            return True
        if self.rows.empty:
            return False
        parent = nk.rsplit("\\", 1)[0]
        return bool(((self.nkey == parent) & self.export_mask).any())

    def absent(self, key: str, what: str) -> Evidence | None:
        """Evidence for a key the registry in the case does not hold: the
        hive (or export) that covers it, located at the missing key, so an
        engineer can open the file and look for it."""
        if not self.covers(key):
            return None
        nk = _norm_key(key)
        path = self.hive_path
        if path is None:
            parent = nk.rsplit("\\", 1)[0]
            hit = self.rows[(self.nkey == parent) & self.export_mask]
            path = str(hit.iloc[0]["path"]) if not hit.empty else None
        if path is None:
            return None
        return Evidence(path=path, locator=f"key={key}", ts=None,
                        excerpt=f"{key}: {what}")


def _val(row: pd.Series | None, col: str) -> Any:
    if row is None:
        return None
    v = row.get(col)
    if v is None or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    return v


def exe_path(command: str) -> str:
    """The executable of a LocalServer32 value or a command line.

    LocalServer32 holds a path, sometimes quoted and followed by arguments
    (``"C:\\...\\empkp.exe" -Embedding``), often in 8.3 form
    (``C:\\PROGRA~1\\Exchsrvr\\bin\\empkp.exe``).
    """
    s = command.strip()
    if s.startswith('"'):
        end = s.find('"', 1)
        return s[1:end] if end > 0 else s[1:]
    m = re.match(r"(.+?\.exe)\b", s, re.IGNORECASE)
    return m.group(1) if m else s.split(" -")[0].split(" /")[0].strip()


def _component_match(a: str, b: str) -> bool:
    if a == b:
        return True
    for x, y in ((a, b), (b, a)):
        m = re.fullmatch(r"([^~]+)~\d+(\.[^.]*)?", x)
        if m:
            stem = m.group(1)
            long_name = y.replace(" ", "")
            if long_name.startswith(stem):
                return True
    return False


def same_path(a: str, b: str) -> bool:
    """Windows paths equal case-insensitively, allowing 8.3 short names.

    Offline we cannot ask the file system which long name PROGRA~1 stands
    for; a short component matches any long one that starts with its stem.
    """
    pa_ = [c for c in re.split(r"[\\/]+", exe_path(a).lower()) if c]
    pb = [c for c in re.split(r"[\\/]+", exe_path(b).lower()) if c]
    return len(pa_) == len(pb) and all(_component_match(x, y) for x, y in zip(pa_, pb))


_PLACEHOLDER = re.compile(r"%\d+")


def _evidence(row: pd.Series, excerpt: str | None = None) -> Evidence:
    """Evidence for a row; an event whose rendered message still holds
    ``%n`` slots shows its insertion strings instead.

    The event catalog has one template per (provider, id), but DCOM 10016
    has 7 insertion strings on Windows 2003 and 11 on Windows 8 and later:
    rendered with the wrong layout the text names the wrong CLSID/APPID/user,
    which is worse than the raw strings.
    """
    if excerpt is None and _val(row, "kind") == "event":
        msg = str(_val(row, "message") or "")
        if _PLACEHOLDER.search(msg):
            strings = row_data(_val(row, "data")).get("strings")
            if isinstance(strings, list) and strings:
                head = " ".join(str(x) for x in (_val(row, "provider"), _val(row, "event_id"),
                                                 _val(row, "level")) if x is not None)
                excerpt = f"{head}; insertion strings: " + " | ".join(str(x) for x in strings)
    return Evidence.from_row(row, excerpt)


def _vbs(lines: list[str]) -> str:
    """The article's three-line test, numbered so it survives line wrapping."""
    return " ".join(f"[{i}] {line}" for i, line in enumerate(lines, 1))


_PATH_RE = re.compile(r"([a-z]:\\[^<>\"|\r\n;]*?\.exe)", re.IGNORECASE)


def _path_in(text: str, exe: str) -> str | None:
    for m in _PATH_RE.finditer(text or ""):
        if m.group(1).lower().endswith("\\" + exe):
            return m.group(1)
    return None


@dataclass
class _Facts:
    """What one host's evidence says, before any cause is weighed."""

    host: str | None
    helper_key: str = "empkp"
    exchange: str | None = None      # "2000" | "2003"
    mom: str | None = None           # "2000" | "2005" | "2007"
    version_reasons: list[str] = field(default_factory=list)
    version_rows: list[pd.Series] = field(default_factory=list)
    helper_ambiguous: bool = False
    mom_present: bool = False        # the case has a MOM export / OpsMgr log
    mom_host_rows: int = 0
    opsmgr: bool = False
    outcomes: list[tuple[str, pd.Series]] = field(default_factory=list)
    no_key_rows: list[pd.Series] = field(default_factory=list)
    latest: str | None = None
    system_present: bool = False
    dcom_start: list[pd.Series] = field(default_factory=list)
    dcom_access: list[pd.Series] = field(default_factory=list)
    exmpls_covered: bool = False
    exmpls_row: pd.Series | None = None
    data_rows: dict[str, pd.Series] = field(default_factory=dict)
    clsid_covered: bool = False
    clsid_row: pd.Series | None = None
    ls32_row: pd.Series | None = None
    ls32_path: str | None = None
    expected_path: str | None = None
    expected_source: str | None = None   # setup | registry | default
    expected_rows: list[pd.Series] = field(default_factory=list)
    setup_present: bool = False
    regserver_row: pd.Series | None = None
    regserver_exit: int | None = None
    reg: _Reg | None = None              # this host's registry rows
    mom_trace: bool = False              # anything shows MOM monitors this host
    exmpls_conflict: bool = False        # 9986 logged, but the hive has no ExMPLS

    def rows_of(self, kind: str) -> list[pd.Series]:
        return [r for k, r in self.outcomes if k == kind]


@register
class Mom9986Check(Check):
    """MOM event 9986 missing: ranked causes from KB 911143 / OpsMgr 2007."""

    id = "mom-9986"
    title = "MOM event 9986 missing: Exchange Management Pack data not published"
    description = (
        "Explains why MOM 2005 / Operations Manager 2007 never logged event 9986 "
        "(\"Successfully published Exchange Management Pack data required for "
        "performing MAPI logon\") for an Exchange server, weighing the DCOM helper "
        "(ExchKP or EMPKP) registration and path, DCOM permissions, publish "
        "failures, the publishing rules and the stored mailbox access account "
        "(KB 911143).")
    needs = ("event", "registry_key", "registry_value", "setup_line", "setup_process")
    references = ("KB 911143", "Missing 9986 Events in Operations Manager 2007", "KB 274696")

    # ------------------------------------------------------------------ run
    def run(self, case: Any) -> list[Finding]:
        kb = knowledge.load(KB)
        df = case.table
        raw = df["host"].astype(object)
        hostkey = raw.map({h: _short(h) for h in raw.dropna().unique()}).astype(object)
        hostkey = hostkey.where(hostkey.notna(), "").astype(str)
        mom_all = self._mom_mask(df, kb)
        world, exchange_hosts = self._world_masks(df, kb, mom_all)
        if not world.any():
            return [Finding(
                check=self.id, title=self.title, status="not_applicable", severity="info",
                summary="Nothing in this case concerns Exchange or MOM (no Exchange MOM events, "
                        "no Exchange registry keys, no Exchange setup log).",
                references=list(kb["references"]))]
        # The servers to judge: hosts with Exchange evidence (a MOM export
        # also lists agents that are not Exchange servers).
        hosts = sorted({h for h in hostkey[exchange_hosts] if h})
        if not hosts:
            # Only host-less evidence (a hive, a setup log): it belongs to the
            # case's one machine if there is one, else to no named host.
            every = sorted({h for h in hostkey if h})
            if len(every) == 1:
                hosts = every
        chans = {str(c).lower() for c in df["channel"].dropna().unique()}
        whole: dict[str, Any] = {
            "mom_channel": bool(chans & {c.lower() for c in kb["mom_channels"].values()}),
            "opsmgr_channel": kb["mom_channels"]["opsmgr2007"].lower() in chans,
            # Files the inventory says were read only in part: a key missing
            # from them proves nothing.
            "damaged": frozenset(str(e.path) for e in (getattr(case, "inventory", None) or [])
                                 if getattr(e, "status", None) in ("partial", "failed")),
        }
        hostless = hostkey == ""
        assign = self._assign_hostless(df, hostless, hosts)
        whole["shared_registry"] = len(hosts) > 1 and not assign
        findings = []
        for h in hosts or [""]:
            mask = ((hostkey == h) | (hostless & assign.get(h, True))) if h else \
                pd.Series(True, index=df.index)
            display = self._display_name(df, hostkey, h) if h else None
            findings.append(self._diagnose(df[mask], whole, mom_all, display, kb))
        return findings

    # ------------------------------------------------------------- helpers
    @staticmethod
    def _text(df: pd.DataFrame) -> pd.Series:
        return (df["message"].astype("string").fillna("") + " "
                + df["data"].astype("string").fillna("")).str.lower()

    def _mom_mask(self, df: pd.DataFrame, kb: dict) -> pd.Series:
        """Events of the publish script: source Exchange MOM (by alias), or a
        MOM/OpsMgr channel event whose text names the script. Text is only
        searched on MOM-channel rows (a million-row table stays cheap)."""
        is_event = (df["kind"].astype("string") == "event").fillna(False).astype(bool)
        prov = df["provider"].astype("string").str.lower().fillna("")
        by_provider = is_event & prov.isin(provider_aliases(kb["mom_provider"]))
        channels = {c.lower() for c in kb["mom_channels"].values()}
        chan = df["channel"].astype("string").str.lower().fillna("").isin(channels)
        # The console's "Provider Name: Script-generated" (or an export
        # without a Source line) does not name the event's source; only then
        # does the text decide. Another named source's 10000 is not ours.
        generic = {p.lower() for p in kb["mom_generic_providers"]}
        cand = is_event & chan & ~by_provider & prov.isin(generic)
        out = by_provider.copy()
        if cand.any():
            text = self._text(df[cand])
            marked = pd.Series(False, index=text.index)
            for m in kb["mom_text_markers"] + [kb["mom_provider"]]:
                marked |= text.str.contains(m.lower(), regex=False)
            out.loc[marked.index] = marked.fillna(False).astype(bool)
        return out.fillna(False).astype(bool)

    def _world_masks(self, df: pd.DataFrame, kb: dict, mom: pd.Series) -> tuple[pd.Series, pd.Series]:
        """(rows that show the case concerns Exchange or MOM, rows that show
        their host is an Exchange server -- a MOM export also lists agents
        and management servers that are not)."""
        if df.empty:
            empty = pd.Series(False, index=df.index)
            return empty, empty
        kind = df["kind"].astype("string").fillna("")
        prov = df["provider"].astype("string").str.lower().fillna("")
        chan = df["channel"].astype("string").str.lower().fillna("")
        mask = mom.copy()
        mask |= (kind == "event") & prov.str.startswith("msexchange")
        mask |= kind.isin(["setup_line", "setup_process"])
        isreg = kind.isin(["registry_key", "registry_value"])
        if isreg.any():
            keys = df.loc[isreg, "key"].astype("string").fillna("").map(_norm_key)
            reg = kb["registry"]
            prefixes = [reg["exmpls"], reg["exchange_setup"], *reg["mom_agent_keys"]]
            prefixes += [f"{reg['clsid_root']}\\{h['clsid']}" for h in kb["helpers"].values()]
            hit = pd.Series(False, index=keys.index)
            for p in prefixes:
                np_ = _norm_key(p)
                hit |= (keys == np_) | keys.str.startswith(np_ + "\\")
            mask.loc[hit.index] |= hit.fillna(False).astype(bool)
        dcom = (kind == "event") & prov.isin(provider_aliases(kb["dcom"]["provider"]))
        if dcom.any():
            text = self._text(df[dcom])
            hit = pd.Series(False, index=text.index)
            for h in kb["helpers"].values():
                hit |= text.str.contains(h["clsid"].strip("{}").lower(), regex=False)
            mask.loc[hit.index] |= hit.fillna(False).astype(bool)
        mask = mask.fillna(False).astype(bool)
        world = mask | chan.isin({c.lower() for c in kb["mom_channels"].values()})
        return world.fillna(False).astype(bool), mask

    @staticmethod
    def _display_name(df: pd.DataFrame, hostkey: pd.Series, h: str) -> str:
        names = sorted({str(x) for x in df.loc[hostkey == h, "host"].dropna()},
                       key=lambda s: (-len(s), s))
        return names[0] if names else h

    @staticmethod
    def _assign_hostless(df: pd.DataFrame, hostless: pd.Series, hosts: list[str]) -> dict[str, bool]:
        """Host-less rows (hives, setup logs) belong to the one host, or, with
        several hosts, to the one the SYSTEM hive names; else to all of them."""
        if len(hosts) <= 1:
            return {}
        names: set[str] = set()
        kind = df["kind"].astype("string")
        regs = df[kind.isin(["registry_key", "registry_value"])]
        if not regs.empty:
            # A SYSTEM hive names its machine; hive rows may carry it as host.
            names |= {_short(h) for h in regs["host"].dropna().astype(str)}
            vals = regs[regs["kind"].astype("string") == "registry_value"]
            vn = vals["value_name"].astype("string").str.lower().fillna("")
            sel = vals[vn.isin(["computername", "hostname"])]
            names |= {_short(v) for v in sel["value"].dropna().astype(str)}
        named = [h for h in hosts if h in names]
        if len(named) == 1:
            return {h: h == named[0] for h in hosts}
        return {}

    # ------------------------------------------------------------ facts
    def _facts(self, rows: pd.DataFrame, whole: dict[str, Any], mom_all: pd.Series,
               host: str | None, kb: dict) -> _Facts:
        f = _Facts(host=host)
        reg = kb["registry"]
        mom_events = kb["mom_events"]
        channels = {c.lower() for c in kb["mom_channels"].values()}
        f.mom_present = bool(whole["mom_channel"] or mom_all.any())
        f.opsmgr = bool(whole["opsmgr_channel"])

        # Step 2: what the publish script logged for this host.
        mom = rows[mom_all.loc[rows.index]]
        chan = rows["channel"].astype("string").str.lower().fillna("")
        f.mom_host_rows = int(chan.isin(channels).sum()) + int(len(mom))
        ids = {mom_events["published"]: "published", mom_events["no_key"]: "no_key"}
        for hk, eid in mom_events["publish_failed"].items():
            ids[eid] = "publish_failed"
        for hk, eid in mom_events["create_failed"].items():
            ids[eid] = "create_failed"
        if not mom.empty:
            order = mom.assign(_i=range(len(mom)))
            if order["ts"].notna().all():
                order = order.sort_values(["ts", "_i"], kind="stable")
            for _, r in order.iterrows():
                eid = _val(r, "event_id")
                kind = ids.get(int(eid)) if eid is not None else None
                if kind == "no_key":
                    f.no_key_rows.append(r)
                elif kind:
                    f.outcomes.append((kind, r))
        if f.outcomes:
            f.latest = f.outcomes[-1][0]

        # Step 4 inputs: DCOM events in the System log naming a helper CLSID.
        dcom_names = provider_aliases(kb["dcom"]["provider"])
        prov = rows["provider"].astype("string").str.lower().fillna("")
        sys_names: set[str] = set()
        for p_ in kb["system_log_providers"]:
            sys_names |= provider_aliases(p_)
        f.system_present = bool(((rows["kind"].astype("string") == "event")
                                 & ((chan == "system") | ((chan == "") & prov.isin(sys_names)))).any())
        dcom = rows[(rows["kind"].astype("string") == "event") & prov.isin(dcom_names)
                    & rows["event_id"].isin([kb["dcom"]["start_failed"], kb["dcom"]["access_denied"]]).fillna(False)]
        dcom_by_helper: dict[str, list[pd.Series]] = {k: [] for k in kb["helpers"]}
        for _, r in dcom.iterrows():
            text = f"{_val(r, 'message') or ''} {_val(r, 'data') or ''}".lower()
            for hk, h in kb["helpers"].items():
                if h["clsid"].strip("{}").lower() in text:
                    dcom_by_helper[hk].append(r)

        # Registry and setup log.
        regrows = rows[rows["kind"].astype("string").isin(["registry_key", "registry_value"])]
        R = _Reg(regrows, set(reg["export_sources"]), whole.get("damaged", frozenset()),
                 shared=bool(whole.get("shared_registry")) and bool(len(regrows))
                 and bool(regrows["host"].isna().all()))
        f.reg = R
        setup = rows[rows["kind"].astype("string").isin(["setup_line", "setup_process"])]
        f.setup_present = not setup.empty

        # Step 1: versions -> helper.
        self._versions(f, R, setup, dcom_by_helper, kb)
        helper = kb["helpers"][f.helper_key]
        f.dcom_start = [r for r in dcom_by_helper[f.helper_key]
                        if int(_val(r, "event_id")) == kb["dcom"]["start_failed"]]
        f.dcom_access = [r for r in dcom_by_helper[f.helper_key]
                         if int(_val(r, "event_id")) == kb["dcom"]["access_denied"]]

        f.mom_trace = bool(f.mom_present or f.mom_host_rows or f.opsmgr
                           or any(dcom_by_helper.values())
                           or any(not R.under(k).empty for k in reg["mom_agent_keys"]))

        # ExMPLS and DATA0..DATA3.
        f.exmpls_covered = R.covers(reg["exmpls"])
        f.exmpls_row = R.key_row(reg["exmpls"])
        f.mom_trace = f.mom_trace or f.exmpls_row is not None
        for name in [reg["data_public_key"], *reg["data_credentials"]]:
            v = R.get(reg["exmpls"], name)
            if v is not None and (_val(v, "value") or "") != "":
                f.data_rows[name.upper()] = v

        # Step 3: registration of the helper's CLSID.
        ckey = f"{reg['clsid_root']}\\{helper['clsid']}"
        f.clsid_covered = R.covers(ckey)
        f.clsid_row = R.key_row(ckey)
        ls = R.get(ckey + "\\LocalServer32", "")
        if ls is not None and str(_val(ls, "value") or "").strip():
            f.ls32_row = ls
            f.ls32_path = exe_path(str(_val(ls, "value")))
        elif f.clsid_row is None:
            f.clsid_row = R.key_row(ckey + "\\LocalServer32")

        # Where the helper should be: setup's copy, else the version's folder.
        exe = helper["exe"]
        if f.helper_key == "empkp":
            for _, r in setup.iterrows():
                d = row_data(_val(r, "data"))
                kind = _val(r, "kind")
                if kind == "setup_process":
                    cmd = str(d.get("command_line") or "")
                    image = str(d.get("image") or "").lower()
                    if (image == exe or exe in cmd.lower()) and "/regserver" in cmd.lower():
                        f.regserver_row = r
                        code = d.get("exit_code_int")
                        if code is None and d.get("exit_code") not in (None, ""):
                            try:
                                code = int(str(d["exit_code"]), 16)
                            except ValueError:
                                code = None
                        f.regserver_exit = int(code) if code is not None else None
                        if f.expected_source != "setup":
                            p = _path_in(cmd, exe)
                            if p:
                                f.expected_path, f.expected_source = p, "setup"
                                f.expected_rows = [r]
                else:
                    msg = str(_val(r, "message") or "")
                    if "copying" not in msg.lower() and not (d.get("copy_src") or d.get("copy_dst")):
                        continue
                    p = None
                    for cand in (d.get("copy_dst"), d.get("copy_src"), msg):
                        p = _path_in(str(cand or ""), exe)
                        if p:
                            break
                    if p:
                        # The copy line is the authority on where the file went.
                        f.expected_path, f.expected_source = p, "setup"
                        f.expected_rows = [r] + ([f.regserver_row] if f.regserver_row is not None else [])
            if f.expected_path is None:
                if f.exchange == "2000" and f.mom in ("2005", "2007"):
                    f.expected_path = f"{helper['folder_exchange2000_mom2005']}\\{exe}"
                    f.expected_source = "default"
                else:
                    sv = R.get(reg["exchange_setup"], "Services")
                    if sv is not None and _val(sv, "value"):
                        f.expected_path = f"{str(_val(sv, 'value')).rstrip(chr(92))}\\bin\\{exe}"
                        f.expected_source = "registry"
                        f.expected_rows = [sv]
                    else:
                        f.expected_path = helper["folder_exchange2003"].format(
                            exchange_dir=helper["default_exchange_dir"]) + "\\" + exe
                        f.expected_source = "default"
        else:
            f.expected_path = f"{helper['folder']}\\{exe}"
            f.expected_source = "default"
        return f

    def _versions(self, f: _Facts, R: _Reg, setup: pd.DataFrame,
                  dcom_by_helper: dict[str, list[pd.Series]], kb: dict) -> None:
        """Step 1: Exchange and MOM versions, hence ExchKP or EMPKP."""
        reg = kb["registry"]
        builds = kb["exchange_builds"]
        me = kb["mom_events"]
        spb = R.get(reg["exchange_setup"], "ServicePackBuild")
        if spb is not None:
            try:
                b = int(str(_val(spb, "value")).strip())
            except ValueError:
                b = None
            if b is not None and b >= builds["exchange2003_min"]:
                f.exchange = "2003"
            elif b is not None and b >= builds["exchange2000_min"]:
                f.exchange = "2000"
            if b is not None and f.exchange:
                f.version_reasons.append(f"Exchange\\Setup ServicePackBuild {b} = Exchange {f.exchange}")
                f.version_rows.append(spb)
        wv = R.get(reg["windows_version"], "CurrentVersion")
        winver = str(_val(wv, "value") or "").strip() if wv is not None else ""
        if winver:
            f.version_reasons.append(f"Windows {winver} ({kb['windows_versions'].get(winver, 'other')})")
            f.version_rows.append(wv)
            if winver == "5.2" and f.exchange is None:
                f.exchange = "2003"
                f.version_reasons.append("Exchange 2000 does not run on Windows Server 2003: Exchange 2003")
        if f.exchange is None and not setup.empty:
            text = " ".join(str(_val(r, "message") or "") + " " + str(_val(r, "data") or "")
                            for _, r in setup.iterrows()).lower()
            if "empkp.exe" in text:
                f.exchange = "2003"
                f.version_reasons.append("Exchange setup copied/registered empkp.exe: Exchange 2003")
            else:
                for ver, marks in (("2003", kb["setup_markers"]["exchange2003"]),
                                   ("2000", kb["setup_markers"]["exchange2000"])):
                    if any(m.lower() in text for m in marks):
                        f.exchange = ver
                        f.version_reasons.append(f"Setup Progress.log names Exchange {ver}")
                        break
        # MOM version: OpsMgr 2007 log, MOM agent keys, the events' numbering.
        if f.opsmgr:
            f.mom = "2007"
            f.version_reasons.append('the "Operations Manager" log: Operations Manager 2007')
        else:
            for k in reg["mom_agent_keys"]:
                sub = R.under(k)
                if sub.empty:
                    continue
                text = " ".join(f"{_val(r, 'key')} {_val(r, 'value') or ''}" for _, r in sub.iterrows()).lower()
                ver = None
                if "\\3.0" in text or "operations manager 2007" in text:
                    ver = "2007"
                elif "2005" in text:
                    ver = "2005"
                elif "2000" in text:
                    ver = "2000"
                if ver:
                    f.mom = ver
                    f.version_reasons.append(f"MOM agent registry ({k}): MOM {ver}")
                    f.version_rows.append(sub.iloc[0])
                    break
        ids = {int(_val(r, "event_id")) for _, r in f.outcomes} if f.outcomes else set()
        exchkp_events = {me["publish_failed"]["exchkp"], me["create_failed"]["exchkp"]} & ids
        exchkp_reg = R.key_row(f"{reg['clsid_root']}\\{kb['helpers']['exchkp']['clsid']}") is not None
        empkp_events = {me["publish_failed"]["empkp"], me["create_failed"]["empkp"]} & ids
        if exchkp_events and f.mom is None:
            f.mom = "2000"
            f.version_reasons.append(f"events {sorted(exchkp_events)} are the Exchange 2000 MP on MOM 2000 SP1")
        if exchkp_events and f.exchange is None:
            f.exchange = "2000"
        # The article's table.
        if f.exchange == "2003":
            f.helper_key = "empkp"
        elif f.exchange == "2000" and f.mom == "2000":
            f.helper_key = "exchkp"
        elif f.exchange == "2000" and f.mom in ("2005", "2007"):
            f.helper_key = "empkp"
        elif exchkp_events or exchkp_reg or dcom_by_helper["exchkp"]:
            f.helper_key = "exchkp"
            f.version_reasons.append("ExchKP evidence (events 9970/9972, its CLSID) points to ExchKP")
            f.helper_ambiguous = f.exchange is None
        else:
            f.helper_key = "empkp"
            f.helper_ambiguous = not (empkp_events or dcom_by_helper["empkp"]) and f.exchange is None
            if f.exchange == "2000":
                f.helper_ambiguous = True

    # ------------------------------------------------------------ causes
    def _diagnose(self, rows: pd.DataFrame, whole: dict[str, Any], mom_all: pd.Series,
                  host: str | None, kb: dict) -> Finding:
        f = self._facts(rows, whole, mom_all, host, kb)
        helper = kb["helpers"][f.helper_key]
        me = kb["mom_events"]
        ev_create = me["create_failed"][f.helper_key]
        ev_fail = me["publish_failed"][f.helper_key]
        name, clsid = helper["name"], helper["clsid"]
        reg = kb["registry"]
        data0 = reg["data_public_key"].upper()
        cred_names = [n.upper() for n in reg["data_credentials"]]
        data0_row = f.data_rows.get(data0)
        cred_missing = [n for n in cred_names if n not in f.data_rows]
        data_complete = data0_row is not None and not cred_missing
        failing = f.latest in ("publish_failed", "create_failed")
        published_rows = f.rows_of("published")
        done = (f.latest == "published") or (data0_row is not None and not failing)
        registered = f.ls32_row is not None
        unregistered = f.clsid_covered and not registered
        ev = _evidence
        ls_ev = [ev(f.ls32_row)] if registered else []
        pub_ev = [ev(r) for r in published_rows[-1:]]
        if data0_row is not None:
            pub_ev.append(ev(data0_row))
        done_why = ("MOM logged 9986 (published)" if f.latest == "published"
                    else "ExMPLS holds DATA0: the publish step succeeded")
        vbs = helper["vbs_test"]
        rem = kb["remediation"]
        path_bad = registered and not str(f.ls32_path or "").lower().endswith("\\" + helper["exe"])
        path_mismatch = (registered and f.expected_path is not None
                         and not same_path(f.ls32_path or "", f.expected_path))
        causes: list[Cause] = []

        # -- helper-not-registered -------------------------------------
        c_rem = [rem["copy_helper"].format(files=" and ".join(helper["files"]),
                                           is_are="are" if len(helper["files"]) > 1 else "is",
                                           folder=str(f.expected_path or "").rsplit("\\", 1)[0]),
                 helper["register"], rem["verify_dcomcnfg"].format(name=name)]
        ev_list: list[Evidence] = []
        if done:
            v, why = "ruled_out", f"{done_why}, so {name} was registered and ran."
            ev_list = pub_ev
        elif registered:
            v = "ruled_out"
            why = (f"{name} is registered: LocalServer32 of {clsid} = {_val(f.ls32_row, 'value')}.")
            ev_list = ls_ev
            if f.regserver_exit not in (None, 0):
                why += f" (Setup's /regserver had exited with {f.regserver_exit:08X}, but it was registered since.)"
                ev_list.append(ev(f.regserver_row))
        elif unregistered:
            v = "confirmed"
            what = (f"HKCR\\CLSID\\{clsid} is missing" if f.clsid_row is None
                    else f"HKCR\\CLSID\\{clsid}\\LocalServer32 has no default value")
            why = (f"{what} in the SOFTWARE registry of this server: the {helper['progid']} DCOM class "
                   f"is not registered, so the publish script cannot create it (event {ev_create}).")
            if f.clsid_row is not None:
                ev_list.append(ev(f.clsid_row))
            elif f.reg is not None:
                gone = f.reg.absent(f"{reg['clsid_root']}\\{clsid}",
                                    f"key absent: {helper['progid']} is not registered")
                if gone is not None:
                    ev_list.append(gone)
            ev_list += [ev(r) for r in f.rows_of("create_failed")[-2:]]
            if f.regserver_exit not in (None, 0):
                why += f" Setup's \"{helper['exe']} /regserver\" exited with {f.regserver_exit:08X}."
                ev_list.append(ev(f.regserver_row))
        elif f.regserver_exit not in (None, 0):
            v = "confirmed"
            why = (f"Exchange setup ran \"{helper['exe']} /regserver\" and it exited with "
                   f"{f.regserver_exit:08X} (not 00000000): the helper was never registered.")
            ev_list = [ev(f.regserver_row)] + [ev(r) for r in f.rows_of("create_failed")[-2:]]
        elif f.dcom_start:
            v, why = "ruled_out", (f"DCOM tried to start {clsid} (System event 10000): the class is registered.")
            ev_list = [ev(f.dcom_start[-1])]
        elif f.latest == "publish_failed":
            v, why = "ruled_out", (f"event {ev_fail}: the {name} application was created and ran, so it is registered.")
            ev_list = [ev(f.rows_of("publish_failed")[-1])]
        elif f.latest == "create_failed":
            v = "likely"
            why = (f"MOM logged {ev_create} (failed to create '{helper['progid']}'), which KB 911143 "
                   f"reads first as the helper not installed or not registered; the registry of "
                   f"this server is not in the case to confirm it.")
            ev_list = [ev(r) for r in f.rows_of("create_failed")[-2:]]
        else:
            v, why = "possible", (f"No registry of {clsid} and no MOM outcome in the case to decide "
                                  f"whether {name} is registered.")
        if f.regserver_exit == 0 and v != "ruled_out" and f.regserver_row is not None:
            why += " Setup's /regserver exited with 00000000."
            ev_list.append(ev(f.regserver_row))
        causes.append(Cause("helper-not-registered",
                            f"The {name} DCOM helper ({helper['progid']}) is not installed or not registered",
                            v, why, ev_list, c_rem))

        # -- helper-path-invalid ---------------------------------------
        c_rem = [rem["fix_localserver32"].format(clsid=clsid, exe=helper["exe"], expected=f.expected_path),
                 helper["register"]]
        ev_list = []
        exp_txt = f"{f.expected_path} ({'where setup copied it' if f.expected_source == 'setup' else 'the expected folder for this version'})"
        if done:
            v, why, ev_list = "ruled_out", f"{done_why}, so DCOM started {name}.", pub_ev
        elif unregistered:
            v, why = "ruled_out", f"{clsid} has no LocalServer32 path at all: the registration, not its path, is missing."
        elif f.dcom_start:
            v = "confirmed"
            why = (f"The System log has DCOM 10000 \"Unable to start a DCOM Server: {clsid}\" "
                   f"({len(f.dcom_start)} time(s)): {name} is registered but DCOM cannot start the file "
                   f"LocalServer32 names.")
            ev_list = [ev(r) for r in f.dcom_start[-3:]] + ls_ev + [ev(r) for r in f.rows_of("create_failed")[-1:]]
            if path_mismatch:
                why += f" LocalServer32 = {f.ls32_path}, expected {exp_txt}."
                ev_list += [ev(r) for r in f.expected_rows]
        elif path_bad:
            v = "confirmed"
            why = f"LocalServer32 of {clsid} names {f.ls32_path}, which is not {helper['exe']}."
            ev_list = ls_ev
        elif path_mismatch and f.expected_source == "setup":
            v = "confirmed"
            why = f"LocalServer32 of {clsid} = {f.ls32_path}, but setup copied the helper to {f.expected_path}."
            ev_list = ls_ev + [ev(r) for r in f.expected_rows] + [ev(r) for r in f.rows_of("create_failed")[-1:]]
        elif f.latest == "publish_failed":
            v = "ruled_out"
            why = f"event {ev_fail} shows the {name} application started (and then failed), so its path is valid."
            ev_list = [ev(f.rows_of("publish_failed")[-1])]
        elif path_mismatch and f.expected_source == "registry":
            v = "likely"
            why = (f"LocalServer32 of {clsid} = {f.ls32_path}, but Exchange is installed so that "
                   f"the helper should be {f.expected_path}.")
            ev_list = ls_ev + [ev(r) for r in f.expected_rows]
        elif path_mismatch:
            v = "possible"
            why = f"LocalServer32 of {clsid} = {f.ls32_path}, not the default {f.expected_path}."
            ev_list = ls_ev
        elif registered and f.system_present:
            v = "ruled_out"
            why = (f"LocalServer32 = {f.ls32_path} matches {exp_txt}, and the System log has no "
                   f"DCOM 10000 for {clsid}.")
            ev_list = ls_ev
        elif f.system_present and f.latest == "create_failed":
            v = "ruled_out"
            why = f"The System log has no DCOM 10000 for {clsid}: DCOM did not fail to start the file."
        else:
            v = "possible"
            why = (f"LocalServer32 = {f.ls32_path} matches {exp_txt}, but the System log is not in the "
                   f"case to show whether DCOM can start it." if registered else
                   "Neither the helper's LocalServer32 value nor a System log is in the case.")
            ev_list = ls_ev
        causes.append(Cause("helper-path-invalid",
                            f"LocalServer32 of the {name} CLSID does not point at the real {helper['exe']}",
                            v, why, ev_list, c_rem))

        # -- dcom-permissions -------------------------------------------
        c_rem = [rem["dcom_permissions"].format(progid=helper["progid"]) + " " + _vbs(vbs)]
        ev_list = [ev(r) for r in f.dcom_access[-3:]]
        acc_txt = (f" DCOM 10016 names {clsid} ({len(f.dcom_access)} time(s)) in the System log."
                   if f.dcom_access else "")
        creates = f.rows_of("create_failed")
        if done:
            v, why, ev_list = "ruled_out", f"{done_why}, so the object was created.", pub_ev
        elif f.latest == "publish_failed":
            v, why = "ruled_out", f"event {ev_fail}: the object was created (Publish() itself failed)."
            ev_list = [ev(f.rows_of("publish_failed")[-1])]
        elif f.dcom_start or path_bad or (path_mismatch and f.expected_source == "setup"):
            v, why = "ruled_out", ("DCOM cannot start the helper's file at all (see helper-path-invalid); "
                                   "that explains the failure before permissions come into play.")
        elif unregistered or f.regserver_exit not in (None, 0) and not registered:
            if f.dcom_access:
                v, why = "possible", "The class is not registered, which explains the failure first." + acc_txt
            else:
                v, why = "ruled_out", ("The class is not registered, which explains the failure; "
                                       "permissions can only be judged once it is.")
        elif f.latest == "create_failed":
            ev_list = [ev(r) for r in creates[-2:]] + ls_ev + ev_list
            if registered and f.dcom_access:
                v = "confirmed"
                why = (f"{name} is registered at {f.ls32_path} yet MOM logged {ev_create} "
                       f"(failed to create '{helper['progid']}').{acc_txt}")
            elif registered:
                v = "likely"
                why = (f"{name} is registered at {f.ls32_path} yet MOM logged {ev_create} "
                       f"(failed to create '{helper['progid']}'): KB 911143 points to DCOM permissions.")
            elif f.dcom_access:
                v = "likely"
                why = f"MOM logged {ev_create} (failed to create '{helper['progid']}').{acc_txt}"
            else:
                v = "possible"
                why = (f"MOM logged {ev_create}; with the registration unknown, permissions are "
                       f"the second explanation after a missing registration.")
        elif f.dcom_access:
            v = "likely"
            why = f"DCOM denied access to the helper.{acc_txt}"
            ev_list += ls_ev
        elif f.mom_present:
            v, why = "ruled_out", f"MOM logged no {ev_create} (object not created) for this server."
        else:
            v, why = "possible", "No MOM events in the case to show whether the object is created."
        causes.append(Cause("dcom-permissions",
                            f"DCOM permissions prevent creating {helper['progid']}",
                            v, why, ev_list, c_rem))

        # -- publish-failed ---------------------------------------------
        c_rem = [rem["publish_failed"].format(name=name) + " " + _vbs(vbs)]
        fails = f.rows_of("publish_failed")
        ev_list = [ev(r) for r in fails[-3:]]
        if done:
            v, why, ev_list = "ruled_out", f"{done_why}.", pub_ev
        elif f.latest == "publish_failed":
            v = "confirmed"
            why = (f"MOM logged {ev_fail} (Failed to publish Exchange Management Pack data) "
                   f"{len(fails)} time(s), last after any other outcome: the DCOM application ran and failed.")
        elif fails:
            v = "possible"
            why = f"MOM logged {ev_fail} earlier, but a later outcome replaced it."
        elif f.mom_present:
            v, why = "ruled_out", f"MOM logged no {ev_fail} (publish failed) from source Exchange MOM for this server."
        else:
            v, why = "possible", "No MOM events in the case to show whether publishing failed."
        causes.append(Cause("publish-failed",
                            f"The {name} DCOM application ran but failed to publish the data",
                            v, why, ev_list, c_rem))

        # -- publish-not-running -----------------------------------------
        c_rem = [rem["publish_not_running"]] + ([rem["opsmgr_discovery"]] if f.mom in ("2007",) or f.opsmgr else [])
        ev_list = [ev(r) for r in f.no_key_rows[-3:]]
        if f.outcomes:
            last_kind, last_row = f.outcomes[-1]
            v, why = "ruled_out", (f"The publish script ran: MOM logged {int(_val(last_row, 'event_id'))} "
                                   f"({last_kind.replace('_', ' ')}) for this server.")
            ev_list = [ev(last_row)]
        elif data0_row is not None:
            v, why, ev_list = "ruled_out", "ExMPLS holds DATA0: the publish script ran at some point.", [ev(data0_row)]
        elif f.no_key_rows:
            v = "confirmed"
            why = (f"MOM logged 9987 (the MAPI logon rule found no ExMPLS key) {len(f.no_key_rows)} time(s), "
                   f"yet no publish outcome (9986, {ev_fail}, {ev_create}) at all: the \"Exchange - "
                   f"Publish ExMP Data\" script or its rules are not running.")
        elif f.mom_present and f.mom_host_rows:
            v = "likely"
            why = (f"The MOM export has events for this server but no publish outcome at all "
                   f"(no 9986, {ev_fail}, {ev_create}): the publish script or its rules are not running.")
        elif f.mom_present:
            v = "likely"
            why = ("The MOM export has no event at all for this server: the publish rules do not run "
                   "for it (is it discovered and monitored, and is its agent reporting?).")
        else:
            v, why = "possible", "No MOM events in the case to show whether the publish script runs."
        if v != "ruled_out" and f.exmpls_covered and f.exmpls_row is None:
            why += " The ExMPLS key is absent from the registry, consistent with nothing published."
        causes.append(Cause("publish-not-running",
                            "The \"Exchange - Publish ExMP Data\" script or its rules are not running",
                            v, why, ev_list, c_rem))

        # -- credentials-not-configured --------------------------------
        c_rem = [rem["credentials"]]
        ev_list = []
        if data0_row is not None and cred_missing:
            v = "confirmed"
            why = (f"ExMPLS holds DATA0 (the public key, published) but {', '.join(cred_missing)} "
                   f"(the mailbox access account's domain, user name, password) are missing: the "
                   f"credentials were never stored.")
            ev_list = [ev(data0_row)] + [ev(f.data_rows[n]) for n in cred_names if n in f.data_rows]
        elif data_complete:
            v, why = "ruled_out", "ExMPLS holds DATA0..DATA3: the mailbox access account is stored."
            ev_list = [ev(f.data_rows[n]) for n in [data0, *cred_names]]
        elif f.exmpls_row is not None:
            v, why = "ruled_out", "ExMPLS exists without DATA0: publishing, not the credentials, is missing."
            ev_list = [ev(f.exmpls_row)]
        elif f.exmpls_covered and f.latest == "published":
            # KB 911143, Conclusion: once 9986 is logged "the ExMPLS registry
            # key should now be present". A hive without it contradicts the
            # 9986: the key was removed since, the hive predates the publish,
            # or the hive is another machine's. Not ok until that is settled.
            f.exmpls_conflict = True
            v = "possible"
            why = ("MOM logged 9986 (published), yet the SOFTWARE registry in the case has no "
                   "HKLM\\SOFTWARE\\Microsoft\\ExMPLS key: it was removed after publishing, or the "
                   "hive was taken before the publish or on another server. Without the key the "
                   "Configuration Wizard cannot store DATA1..DATA3.")
            gone = f.reg.absent(reg["exmpls"], "key absent (no DATA0..DATA3)") if f.reg else None
            ev_list = pub_ev + ([gone] if gone else [])
        elif f.exmpls_covered:
            v, why = "ruled_out", ("HKLM\\SOFTWARE\\Microsoft\\ExMPLS is absent: the key was never published; "
                                   "credentials can only be stored after 9986.")
        elif f.latest == "published":
            v, why = "possible", "9986 was logged; the registry is not in the case to show DATA1..DATA3."
            ev_list = pub_ev
        elif failing:
            v, why = "ruled_out", "Publishing fails, so no 9986 yet: credentials come after it."
        else:
            v, why = "possible", "Neither the ExMPLS key nor a 9986 is in the case."
        causes.append(Cause("credentials-not-configured",
                            "The mailbox access account (DATA1..DATA3) was never stored",
                            v, why, ev_list, c_rem))

        # Among equal verdicts, the more plausible first: with the helper
        # registered where it belongs and no failure anywhere, the script not
        # running explains a missing 9986 before any DCOM-level failure would
        # (those leave DCOM or MOM error events behind).
        for c in causes:
            ref = kb["cause_refs"].get(c.id)
            if ref:
                c.explanation = f"{c.explanation} [{ref}]"
        quiet = (not f.outcomes and not f.dcom_start and not f.dcom_access
                 and registered and not path_mismatch and not path_bad)
        weight = {"publish-not-running": 1 if quiet else 0}
        causes.sort(key=lambda c: -weight.get(c.id, 0))
        return self._finding(f, causes, kb, data_complete, done, failing)

    # ------------------------------------------------------------ finding
    def _finding(self, f: _Facts, causes: list[Cause], kb: dict, data_complete: bool,
                 done: bool, failing: bool) -> Finding:
        helper = kb["helpers"][f.helper_key]
        me = kb["mom_events"]
        by_id = {c.id: c for c in causes}
        cred = by_id["credentials-not-configured"]
        supported = [c for c in causes if c.verdict in ("confirmed", "likely")]
        if cred.verdict == "confirmed":
            status = "problem"
        elif f.exmpls_conflict and not supported:
            status = "inconclusive"
        elif (f.latest == "published" or data_complete or done) and not failing:
            status = "ok"
        elif supported:
            status = "problem"
        else:
            status = "inconclusive"
        severity = {"problem": "error", "inconclusive": "warning"}.get(status, "info")

        folder = str(f.expected_path or "").rsplit("\\", 1)[0]
        mom_name = {"2000": "MOM 2000 SP1", "2005": "MOM 2005", "2007": "Operations Manager 2007"}
        versions = (f"Exchange {f.exchange or '(version unknown)'}, "
                    f"{mom_name.get(f.mom or '', 'MOM version unknown')}")
        helper_txt = (f"{helper['name']} ({' + '.join(helper['files'])}, {helper['progid']}, CLSID "
                      f"{helper['clsid']}) in {folder}; its failure events are "
                      f"{me['publish_failed'][f.helper_key]} (publish failed) and "
                      f"{me['create_failed'][f.helper_key]} (object not created)")
        who = f.host or "this server"
        if status == "ok":
            if f.latest == "published":
                head = f"{who}: MOM logged 9986; the Exchange Management Pack data is published."
            else:
                head = f"{who}: ExMPLS holds DATA0..DATA3; the data is published and the mailbox access account stored."
        elif status == "problem":
            top = sorted(supported, key=lambda c: ("confirmed", "likely").index(c.verdict))[0] \
                if supported else cred
            # Says what is wrong in the article's words, for the version's
            # helper and events (the credentials case has a 9986: it is not
            # "missing", the wizard still cannot use it).
            line = kb["headlines"][top.id].format(
                name=helper["name"], progid=helper["progid"], exe=helper["exe"],
                ev_fail=me["publish_failed"][f.helper_key], ev_create=me["create_failed"][f.helper_key])
            head = f"{who}: {line} (cause {top.id}, {top.verdict})."
        elif f.exmpls_conflict:
            head = kb["headlines"]["exmpls_conflict"].format(who=who)
        elif not f.mom_trace:
            head = kb["headlines"]["no_mom_trace"].format(who=who)
        else:
            head = kb["headlines"]["undecided"].format(who=who)
        summary = f"{head} Helper for {versions}: {helper_txt}."
        if f.helper_ambiguous:
            summary += " (Helper chosen without a definite version; confirm the versions.)"

        collect: list[str] = []
        if status != "not_applicable":
            fmt = {"host": f.host or "the Exchange server", "clsid": helper["clsid"]}
            c = kb["collect"]
            want_all = status in ("inconclusive", "problem")
            if not f.mom_present and want_all:
                collect.append(c["opsmgr2007" if f.mom == "2007" else "mom2005"].format(**fmt))
            if (not f.clsid_covered or not f.exmpls_covered) and (want_all or cred.verdict == "possible"):
                collect.append(c["software_hive"].format(**fmt))
            if not f.system_present and want_all:
                collect.append(c["system_log"].format(**fmt))
            if (want_all and f.helper_key == "empkp" and f.exchange != "2000"
                    and not f.setup_present):
                collect.append(c["setup_log"].format(**fmt))
            if f.helper_ambiguous and want_all:
                collect.append(c["versions"].format(**fmt))
            if f.exmpls_conflict:
                collect.append(c["exmpls_conflict"].format(**fmt))

        remediation: list[str] = []
        for cz in sorted(supported, key=lambda c: ("confirmed", "likely").index(c.verdict)):
            for r in cz.remediation:
                if r not in remediation:
                    remediation.append(r)

        evidence: list[Evidence] = []
        seen = set()
        for cz in causes:
            if cz.verdict == "ruled_out" and status != "ok":
                continue
            for e in cz.evidence:
                k = (e.path, e.locator)
                if k not in seen:
                    seen.add(k)
                    evidence.append(e)
        for r in f.version_rows:
            e = Evidence.from_row(r)
            if (e.path, e.locator) not in seen:
                seen.add((e.path, e.locator))
                evidence.append(e)

        facts = {
            "exchange_version": f.exchange, "mom_version": f.mom,
            "helper": helper["name"], "helper_clsid": helper["clsid"],
            "helper_expected_path": f.expected_path, "helper_expected_from": f.expected_source,
            "helper_localserver32": f.ls32_path,
            "events": {"published": me["published"], "publish_failed": me["publish_failed"][f.helper_key],
                       "create_failed": me["create_failed"][f.helper_key], "no_key": me["no_key"]},
            "latest_outcome": f.latest, "version_reasons": f.version_reasons,
            "mom_export_present": f.mom_present, "system_log_present": f.system_present,
            "software_registry_present": f.clsid_covered or f.exmpls_covered,
            "setup_log_present": f.setup_present,
        }
        return Finding(check=self.id, title=self.title, status=status, severity=severity,
                       summary=summary, host=f.host, causes=causes, evidence=evidence,
                       remediation=remediation, references=list(kb["references"]),
                       collect=collect, facts=facts)

