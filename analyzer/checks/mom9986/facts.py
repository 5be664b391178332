"""What one server's evidence says, before any cause is weighed (KB 911143).

Step 1 of the article picks the helper from the versions (ExchKP for
Exchange 2000 with MOM 2000 SP1, EMPKP otherwise); step 2 reads what the
publish script logged; steps 3-5 read the helper's registration, where setup
copied it and what DCOM said about its CLSID; step 6 reads ExMPLS DATA0..3.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ...query import map_values, provider_aliases, select_mask, text_in
from ...table import filter_rows, search_any
from ..toolkit import Host, records
from .paths import exe_path, path_in


@dataclass
class Survey:
    """Case-wide facts: is a MOM export / OpsMgr log in the case at all."""

    mom_rows: pd.Series          # the publish script's events, whole table
    mom_present: bool
    opsmgr: bool                 # the "Operations Manager" log is in the case
    opsmgr_agent: bool = False   # OpsMgr 2007 agent sources (a .evt names no log)


@dataclass
class Facts:
    """One server's evidence."""

    host: str | None
    kb: dict
    helper_key: str = "empkp"
    exchange: str | None = None      # "2000" | "2003"
    mom: str | None = None           # "2000" | "2005" | "2007"
    version_reasons: list[str] = field(default_factory=list)
    version_rows: list[dict] = field(default_factory=list)
    helper_ambiguous: bool = False
    mom_present: bool = False
    mom_host_rows: int = 0
    opsmgr: bool = False
    opsmgr_agent: bool = False
    outcomes: list[tuple[str, dict]] = field(default_factory=list)
    no_key_rows: list[dict] = field(default_factory=list)
    system_present: bool = False
    dcom_by_helper: dict[str, list[dict]] = field(default_factory=dict)
    exmpls_covered: bool = False
    exmpls_row: dict | None = None
    exmpls_gone: Any = None          # Absence evidence of ExMPLS, when provable
    data_rows: dict[str, dict] = field(default_factory=dict)
    clsid_covered: bool = False
    clsid_row: dict | None = None
    clsid_gone: Any = None           # Absence evidence of the helper's CLSID
    ls32_row: dict | None = None
    ls32_path: str | None = None
    expected_path: str | None = None
    expected_source: str | None = None   # setup | registry | default
    expected_rows: list[dict] = field(default_factory=list)
    setup_present: bool = False
    regserver_row: dict | None = None
    regserver_exit: int | None = None
    mom_trace: bool = False

    # ---- derived ---------------------------------------------------------
    @property
    def helper(self) -> dict:
        return self.kb["helpers"][self.helper_key]

    @property
    def latest(self) -> str | None:
        return self.outcomes[-1][0] if self.outcomes else None

    def rows(self, kind: str) -> list[dict]:
        return [r for k, r in self.outcomes if k == kind]

    def ev_id(self, outcome: str) -> int:
        return self.kb["mom_events"][outcome][self.helper_key]

    def dcom(self, which: str) -> list[dict]:
        eid = self.kb["dcom"][which]
        return [r for r in self.dcom_by_helper.get(self.helper_key, []) if int(r["event_id"]) == eid]

    @property
    def data0(self) -> dict | None:
        return self.data_rows.get(self.kb["registry"]["data_public_key"].upper())

    @property
    def cred_missing(self) -> list[str]:
        return [n.upper() for n in self.kb["registry"]["data_credentials"] if n.upper() not in self.data_rows]

    @property
    def data_complete(self) -> bool:
        return self.data0 is not None and not self.cred_missing

    @property
    def failing(self) -> bool:
        return self.latest in ("publish_failed", "create_failed")

    @property
    def done(self) -> bool:
        """Published: a 9986 last, or DATA0 written and nothing failing since."""
        return self.latest == "published" or (self.data0 is not None and not self.failing)

    @property
    def registered(self) -> bool:
        return self.ls32_row is not None

    @property
    def unregistered(self) -> bool:
        return self.clsid_covered and not self.registered

    @property
    def path_bad(self) -> bool:
        return self.registered and not str(self.ls32_path or "").lower().endswith("\\" + self.helper["exe"])

    @property
    def path_mismatch(self) -> bool:
        from .paths import same_path
        return (self.registered and self.expected_path is not None
                and not same_path(self.ls32_path or "", self.expected_path))

    @property
    def exmpls_conflict(self) -> bool:
        """KB 911143, Conclusion: after 9986 "the ExMPLS registry key should
        now be present"; a complete hive without it contradicts the 9986."""
        return (self.data0 is None and self.exmpls_row is None and self.exmpls_covered
                and self.latest == "published")

    def words(self) -> dict[str, Any]:
        h = self.helper
        return {"name": h["name"], "progid": h["progid"], "exe": h["exe"], "clsid": h["clsid"],
                "ev_fail": self.ev_id("publish_failed"), "ev_create": self.ev_id("create_failed")}


# ---------------------------------------------------------------- the survey
def _series(df: pd.DataFrame, mask: np.ndarray) -> pd.Series:
    """A numpy mask over ``df`` as the boolean Series these steps combine."""
    return pd.Series(mask, index=df.index)


def _marked(df: pd.DataFrame, cand: pd.Series, markers: list[str]) -> pd.Series:
    """The candidate rows whose message or data names one of ``markers``
    (searched in those rows only, chunk by chunk)."""
    hit = search_any(df, [m.lower() for m in markers], cand.to_numpy(dtype=bool), ("message", "data"))
    return _series(df, hit)


def script_events(df: pd.DataFrame, kb: dict) -> pd.Series:
    """Events of the publish script: source Exchange MOM (by alias); a
    MOM-channel event whose source is not named (the console's
    "Script-generated") and whose text names the script; and, under
    Operations Manager 2007, the agent's "Health Service Script" events whose
    parameters name the Exchange Management Pack's scripts. Another named
    source's 10000 is not ours (the provider decides what an id means)."""
    is_event = select_mask(df, kind="event")
    out = _series(df, select_mask(df, kind="event", provider=kb["mom_provider"]))
    chan = text_in(df["channel"], kb["mom_channels"].values())
    generic = _series(df, is_event & chan & text_in(df["provider"], kb["mom_generic_providers"])) & ~out
    out |= _marked(df, generic, kb["mom_text_markers"] + [kb["mom_provider"]])
    hss = _series(df, select_mask(df, kind="event", provider=kb["opsmgr"]["script_provider"]))
    out |= _marked(df, hss, kb["opsmgr"]["script_markers"])
    return out.fillna(False).astype(bool)


def survey(df: pd.DataFrame, kb: dict) -> Survey:
    mom = script_events(df, kb)
    chans = {str(c).lower() for c in df["channel"].dropna().unique()}
    provs = {str(p).lower() for p in df["provider"].dropna().unique()}
    agent = set()
    for p in kb["opsmgr"]["agent_providers"]:
        agent |= provider_aliases(p)
    opsmgr = kb["mom_channels"]["opsmgr2007"].lower() in chans
    mom_chan = bool(chans & {c.lower() for c in kb["mom_channels"].values()})
    return Survey(mom, mom_chan or bool(mom.any()), opsmgr, bool(provs & agent))


def exchange_rows(df: pd.DataFrame, kb: dict, mom: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(rows that show the case concerns Exchange or MOM, rows that show
    their host is an Exchange server -- a MOM export also lists agents and
    management servers that are not)."""
    if df.empty:
        return mom, mom
    exchange_source = map_values(df["provider"], lambda p: (p or "").lower().startswith("msexchange"),
                                 bool)
    mask = mom | _series(df, select_mask(df, kind="event") & exchange_source) | \
        _series(df, text_in(df["kind"], ["setup_line", "setup_process"]))
    isreg = _series(df, text_in(df["kind"], ["registry_key", "registry_value"]))
    if isreg.any():
        from ...registry import normalize_key
        regs = filter_rows(df, isreg.to_numpy(dtype=bool))
        keys = regs["key"].astype("string").fillna("").map(lambda k: normalize_key(k).lower())
        reg = kb["registry"]
        prefixes = [reg["exmpls"], reg["exchange_setup"], *reg["mom_agent_keys"]]
        prefixes += [f"{reg['clsid_root']}\\{h['clsid']}" for h in kb["helpers"].values()]
        hit = pd.Series(False, index=keys.index)
        for p in prefixes:
            np_ = normalize_key(p).lower()
            hit |= (keys == np_) | keys.str.startswith(np_ + "\\")
        mask.loc[hit.index] |= hit.fillna(False).astype(bool)
    dcom = _series(df, select_mask(df, kind="event", provider=kb["dcom"]["provider"]))
    mask |= _marked(df, dcom, [h["clsid"].strip("{}") for h in kb["helpers"].values()])
    mask = mask.fillna(False).astype(bool)
    world = mask | _series(df, text_in(df["channel"], kb["mom_channels"].values()))
    return world.fillna(False).astype(bool), mask


# ---------------------------------------------------------------- one server
def gather(host: Host, sv: Survey, kb: dict) -> Facts:
    """Steps 1-6 of KB 911143 for one server."""
    f = Facts(host=host.name, kb=kb, mom_present=sv.mom_present, opsmgr=sv.opsmgr,
              opsmgr_agent=sv.opsmgr_agent)
    _outcomes(f, host, sv)
    _system_log(f, host)
    setup = records(host.kind("setup_line", "setup_process"))
    f.setup_present = bool(setup)
    from .versions import choose_helper
    choose_helper(f, host, setup)
    _registry(f, host)
    _expected_path(f, host, setup)
    return f


def _outcomes(f: Facts, host: Host, sv: Survey) -> None:
    """Step 2: what the publish script logged for this host, oldest first."""
    kb = f.kb
    part = host.part
    mom = part.where(sv.mom_rows.to_numpy(dtype=bool))
    f.mom_host_rows = part.count(text_in(part.table["channel"], kb["mom_channels"].values())) + len(mom)
    me = kb["mom_events"]
    ids = {me["published"]: "published", me["no_key"]: "no_key"}
    ids.update({eid: "publish_failed" for eid in me["publish_failed"].values()})
    ids.update({eid: "create_failed" for eid in me["create_failed"].values()})
    recs = records(mom)
    if recs and all(r["ts"] is not None for r in recs):
        recs.sort(key=lambda r: r["ts"])
    for r in recs:
        kind = ids.get(int(r["event_id"])) if r["event_id"] is not None else None
        if kind == "no_key":
            f.no_key_rows.append(r)
        elif kind:
            f.outcomes.append((kind, r))


def _system_log(f: Facts, host: Host) -> None:
    """Step 4 inputs: is the System log here, and the DCOM events naming a
    helper CLSID (10000 cannot start the file, 10016 access denied)."""
    kb = f.kb
    table = host.part.table
    sys_names: set[str] = set()
    for p in kb["system_log_providers"]:
        sys_names |= provider_aliases(p)
    # A row with no channel (a .evt whose log name was not read) is in the
    # System log when a System-only provider wrote it.
    no_channel = text_in(table["channel"], [""]) | table["channel"].isna().to_numpy()
    system = text_in(table["channel"], ["system"]) | (no_channel & text_in(table["provider"], sys_names))
    f.system_present = host.part.count(select_mask(table, kind="event") & system) > 0
    dcom = records(host.events(provider=kb["dcom"]["provider"],
                               event_id=[kb["dcom"]["start_failed"], kb["dcom"]["access_denied"]]))
    f.dcom_by_helper = {k: [] for k in kb["helpers"]}
    for r in dcom:
        text = f"{r.get('message') or ''} {r.get('data') or ''}".lower()
        for hk, h in kb["helpers"].items():
            if h["clsid"].strip("{}").lower() in text:
                f.dcom_by_helper[hk].append(r)


def _registry(f: Facts, host: Host) -> None:
    """Steps 3 and 6: the helper's CLSID and LocalServer32, ExMPLS DATA0..3."""
    reg, R = f.kb["registry"], host.registry
    f.mom_trace = bool(f.mom_present or f.mom_host_rows or f.opsmgr or f.opsmgr_agent
                       or any(f.dcom_by_helper.values())
                       or any(R.under(k) for k in reg["mom_agent_keys"] + reg["mom_agent_services"]))
    # Absence is evidence only where the thing is expected: the helper's
    # CLSID on Exchange 2003 (its setup registers EMPKP) or where MOM
    # monitors the server; ExMPLS where MOM monitors it.
    expected = f.exchange == "2003" or f.mom_trace
    f.exmpls_covered = R.covers(reg["exmpls"]) is not None
    f.exmpls_row = R.any_row(reg["exmpls"])
    f.exmpls_gone = host.absent(reg["exmpls"], "key absent (no DATA0..DATA3)", expected=f.mom_trace)
    f.mom_trace = f.mom_trace or f.exmpls_row is not None
    for name in [reg["data_public_key"], *reg["data_credentials"]]:
        v = R.get(reg["exmpls"], name)
        if v is not None and (v.value or "") != "":
            f.data_rows[name.upper()] = v.row
    ckey = f"{reg['clsid_root']}\\{f.helper['clsid']}"
    f.clsid_covered = R.covers(ckey) is not None
    f.clsid_row = R.any_row(ckey)
    f.clsid_gone = host.absent(ckey, f"key absent: {f.helper['progid']} is not registered", expected=expected)
    ls = R.get(ckey + "\\LocalServer32", "")
    if ls is not None and str(ls.value or "").strip():
        f.ls32_row, f.ls32_path = ls.row, exe_path(str(ls.value))
    elif f.clsid_row is None:
        f.clsid_row = R.any_row(ckey + "\\LocalServer32")


def _regserver(f: Facts, r: dict, d: dict) -> None:
    """A ``CreateProcess ... empkp.exe /regserver`` line: its exit code, and
    the path setup ran the helper from."""
    exe = f.helper["exe"]
    cmd = str(d.get("command_line") or "")
    image = str(d.get("image") or "").lower()
    if not ((image == exe or exe in cmd.lower()) and "/regserver" in cmd.lower()):
        return
    f.regserver_row = r
    code = d.get("exit_code_int")
    if code is None and d.get("exit_code") not in (None, ""):
        try:
            code = int(str(d["exit_code"]), 16)
        except ValueError:
            code = None
    f.regserver_exit = int(code) if code is not None else None
    p = path_in(cmd, exe) if f.expected_source != "setup" else None
    if p:
        f.expected_path, f.expected_source, f.expected_rows = p, "setup", [r]


def _expected_path(f: Facts, host: Host, setup: list[dict]) -> None:
    """Where the helper should be: where setup copied it (the copy line is
    the authority), else the version's folder."""
    helper, exe = f.helper, f.helper["exe"]
    if f.helper_key != "empkp":
        f.expected_path, f.expected_source = f"{helper['folder']}\\{exe}", "default"
        return
    for r in setup:
        d = r["_data"]
        if r["kind"] == "setup_process":
            _regserver(f, r, d)
            continue
        msg = str(r.get("message") or "")
        if "copying" not in msg.lower() and not (d.get("copy_src") or d.get("copy_dst")):
            continue
        p = next((x for x in (path_in(str(c or ""), exe) for c in (d.get("copy_dst"), d.get("copy_src"), msg)) if x), None)
        if p:
            f.expected_path, f.expected_source = p, "setup"
            f.expected_rows = [r] + ([f.regserver_row] if f.regserver_row is not None else [])
    if f.expected_path is not None:
        return
    if f.exchange == "2000" and f.mom in ("2005", "2007"):
        f.expected_path, f.expected_source = f"{helper['folder_exchange2000_mom2005']}\\{exe}", "default"
        return
    sv = host.registry.get(f.kb["registry"]["exchange_setup"], "Services")
    if sv is not None and sv.value:
        f.expected_path = f"{str(sv.value).rstrip(chr(92))}\\bin\\{exe}"
        f.expected_source, f.expected_rows = "registry", [sv.row]
    else:
        f.expected_path = helper["folder_exchange2003"].format(
            exchange_dir=helper["default_exchange_dir"]) + "\\" + exe
        f.expected_source = "default"


__all__ = ["Facts", "Survey", "exchange_rows", "gather", "script_events", "survey"]
