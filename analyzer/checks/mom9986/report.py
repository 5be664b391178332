"""The finding's words: status, headline, what to collect, machine facts."""
from __future__ import annotations

from typing import Any

from ...findings import Cause, Evidence
from ..toolkit import supported
from .facts import Facts

MOM_NAMES = {"2000": "MOM 2000 SP1", "2005": "MOM 2005", "2007": "Operations Manager 2007"}


def status_of(f: Facts, causes: list[Cause]) -> str:
    """Credentials missing is a problem even with a 9986; a 9986 contradicted
    by the hive is open; published and not failing since is ok."""
    cred = next(c for c in causes if c.id == "credentials-not-configured")
    live = supported(causes)
    if cred.verdict == "confirmed":
        return "problem"
    if f.exmpls_conflict and not live:
        return "inconclusive"
    if (f.latest == "published" or f.data_complete or f.done) and not f.failing:
        return "ok"
    return "problem" if live else "inconclusive"


def summary(f: Facts, status: str, causes: list[Cause]) -> str:
    """What is wrong in the article's words, for the version's helper and
    events, then which helper applies and where it lives."""
    kb, h, me = f.kb, f.helper, f.kb["mom_events"]
    who = f.host or "this server"
    heads = kb["headlines"]
    if status == "ok":
        head = (f"{who}: MOM logged 9986; the Exchange Management Pack data is published."
                if f.latest == "published" else
                f"{who}: ExMPLS holds DATA0..DATA3; the data is published and the mailbox access account stored.")
    elif status == "problem":
        live = supported(causes)
        top = live[0] if live else next(c for c in causes if c.id == "credentials-not-configured")
        head = f"{who}: {heads[top.id].format(**f.words())} (cause {top.id}, {top.verdict})."
    elif f.exmpls_conflict:
        head = heads["exmpls_conflict"].format(who=who)
    else:
        head = heads["no_mom_trace" if not f.mom_trace else "undecided"].format(who=who)
    folder = str(f.expected_path or "").rsplit("\\", 1)[0]
    versions = (f"Exchange {f.exchange or '(version unknown)'}, "
                f"{MOM_NAMES.get(f.mom or '', 'MOM version unknown')}")
    helper = (f"{h['name']} ({' + '.join(h['files'])}, {h['progid']}, CLSID {h['clsid']}) in {folder}; "
              f"its failure events are {me['publish_failed'][f.helper_key]} (publish failed) and "
              f"{me['create_failed'][f.helper_key]} (object not created)")
    text = f"{head} Helper for {versions}: {helper}."
    if f.helper_ambiguous:
        text += " (Helper chosen without a definite version; confirm the versions.)"
    return text


def collect(f: Facts, status: str, causes: list[Cause]) -> list[str]:
    """Only what would decide: the MOM events, the SOFTWARE hive, the System
    log, the setup log, the versions, a fresh ExMPLS export."""
    c = f.kb["collect"]
    fmt = {"host": f.host or "the Exchange server", "clsid": f.helper["clsid"]}
    want = status in ("inconclusive", "problem")
    cred = next(x for x in causes if x.id == "credentials-not-configured")
    out = []
    if not f.mom_present and want:
        out.append(c["opsmgr2007" if f.mom == "2007" else "mom2005"])
    if (not f.clsid_covered or not f.exmpls_covered) and (want or cred.verdict == "possible"):
        out.append(c["software_hive"])
    if not f.system_present and want:
        out.append(c["system_log"])
    if want and f.helper_key == "empkp" and f.exchange != "2000" and not f.setup_present:
        out.append(c["setup_log"])
    if f.helper_ambiguous and want:
        out.append(c["versions"])
    if f.exmpls_conflict:
        out.append(c["exmpls_conflict"])
    return [x.format(**fmt) for x in out]


def evidence(f: Facts, status: str, causes: list[Cause]) -> list[Evidence]:
    """The causes' evidence (the ruled-out ones only for an ok finding),
    then the rows that gave the versions."""
    out = [e for c in causes if c.verdict != "ruled_out" or status == "ok" for e in c.evidence]
    return out + [Evidence.from_row(r) for r in f.version_rows]


def machine_facts(f: Facts) -> dict[str, Any]:
    me, k = f.kb["mom_events"], f.helper_key
    return {
        "exchange_version": f.exchange, "mom_version": f.mom,
        "helper": f.helper["name"], "helper_clsid": f.helper["clsid"],
        "helper_expected_path": f.expected_path, "helper_expected_from": f.expected_source,
        "helper_localserver32": f.ls32_path,
        "events": {"published": me["published"], "publish_failed": me["publish_failed"][k],
                   "create_failed": me["create_failed"][k], "no_key": me["no_key"]},
        "latest_outcome": f.latest, "version_reasons": f.version_reasons,
        "mom_export_present": f.mom_present, "system_log_present": f.system_present,
        "software_registry_present": f.clsid_covered or f.exmpls_covered,
        "setup_log_present": f.setup_present,
    }
