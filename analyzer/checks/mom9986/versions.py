"""Step 1 of KB 911143: which helper? The article's table.

================  ===================  =======================================
Exchange          MOM                  helper
================  ===================  =======================================
2000              2000 SP1             ExchKP (events 9970/9972)
2000              2005 / OpsMgr 2007   EMPKP from the MP's Common Files folder
2003              any                  EMPKP, copied and registered by setup
================  ===================  =======================================

The Exchange version comes from ``Exchange\\Setup ServicePackBuild``, the
Windows version (Exchange 2000 does not run on Windows Server 2003) or the
setup log; the MOM version from the OpsMgr 2007 log, the MOM agent keys or
the events' numbering.
"""
from __future__ import annotations

from ..toolkit import Host
from .facts import Facts


def _exchange(f: Facts, host: Host, setup: list[dict]) -> None:
    kb, reg = f.kb, f.kb["registry"]
    builds = kb["exchange_builds"]
    spb = host.registry.get(reg["exchange_setup"], "ServicePackBuild")
    b = spb.as_int if spb is not None else None
    if b is not None:
        f.exchange = "2003" if b >= builds["exchange2003_min"] else "2000" if b >= builds["exchange2000_min"] else None
        if f.exchange:
            f.version_reasons.append(f"Exchange\\Setup ServicePackBuild {b} = Exchange {f.exchange}")
            f.version_rows.append(spb.row)
    wv = host.registry.get(reg["windows_version"], "CurrentVersion")
    winver = str(wv.value or "").strip() if wv is not None else ""
    if winver:
        f.version_reasons.append(f"Windows {winver} ({kb['windows_versions'].get(winver, 'other')})")
        f.version_rows.append(wv.row)
        if winver == "5.2" and f.exchange is None:
            f.exchange = "2003"
            f.version_reasons.append("Exchange 2000 does not run on Windows Server 2003: Exchange 2003")
    if f.exchange is None and setup:
        text = " ".join(f"{r.get('message') or ''} {r.get('data') or ''}" for r in setup).lower()
        if "empkp.exe" in text:
            f.exchange = "2003"
            f.version_reasons.append("Exchange setup copied/registered empkp.exe: Exchange 2003")
            return
        for ver in ("2003", "2000"):
            if any(m.lower() in text for m in kb["setup_markers"][f"exchange{ver}"]):
                f.exchange = ver
                f.version_reasons.append(f"Setup Progress.log names Exchange {ver}")
                return


def _mom(f: Facts, host: Host) -> None:
    if f.opsmgr:
        f.mom = "2007"
        f.version_reasons.append('the "Operations Manager" log: Operations Manager 2007')
        return
    for k in f.kb["registry"]["mom_agent_keys"]:
        sub = host.registry.under(k)
        text = " ".join(f"{r['key']} {r.get('value') or ''}" for r in sub).lower()
        ver = ("2007" if "\\3.0" in text or "operations manager 2007" in text
               else "2005" if "2005" in text else "2000" if "2000" in text else None)
        if ver:
            f.mom = ver
            f.version_reasons.append(f"MOM agent registry ({k}): MOM {ver}")
            f.version_rows.append(sub[0])
            return
    if f.opsmgr_agent:
        f.mom = "2007"
        f.version_reasons.append("Operations Manager 2007 agent events (HealthService, Health Service Script)")


def choose_helper(f: Facts, host: Host, setup: list[dict]) -> None:
    """Exchange and MOM versions, hence ExchKP or EMPKP."""
    kb = f.kb
    me, reg = kb["mom_events"], kb["registry"]
    _exchange(f, host, setup)
    _mom(f, host)
    ids = {int(r["event_id"]) for _, r in f.outcomes}
    exchkp_events = {me["publish_failed"]["exchkp"], me["create_failed"]["exchkp"]} & ids
    exchkp_reg = host.registry.any_row(f"{reg['clsid_root']}\\{kb['helpers']['exchkp']['clsid']}") is not None
    empkp_events = {me["publish_failed"]["empkp"], me["create_failed"]["empkp"]} & ids
    if exchkp_events and f.mom is None:
        f.mom = "2000"
        f.version_reasons.append(f"events {sorted(exchkp_events)} are the Exchange 2000 MP on MOM 2000 SP1")
    if exchkp_events and f.exchange is None:
        f.exchange = "2000"
    if f.exchange == "2003":
        f.helper_key = "empkp"
    elif f.exchange == "2000" and f.mom == "2000":
        f.helper_key = "exchkp"
    elif f.exchange == "2000" and f.mom in ("2005", "2007"):
        f.helper_key = "empkp"
    elif exchkp_events or exchkp_reg or f.dcom_by_helper["exchkp"]:
        f.helper_key = "exchkp"
        f.version_reasons.append("ExchKP evidence (events 9970/9972, its CLSID) points to ExchKP")
        f.helper_ambiguous = f.exchange is None
    else:
        f.helper_key = "empkp"
        f.helper_ambiguous = (not (empkp_events or f.dcom_by_helper["empkp"]) and f.exchange is None) \
            or f.exchange == "2000"
