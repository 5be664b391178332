"""The six causes of a missing 9986, one function each, in KB 911143's words.

Every cause is weighed against every piece of evidence (not first match);
the ones the evidence rules out say why. Each function reads the server's
:class:`~.facts.Facts` and returns a verdict.
"""
from __future__ import annotations

from ...findings import Evidence
from ..toolkit import CauseTable, Verdict, confirmed, likely, possible, ruled_out
from .facts import Facts
from .paths import exe_path  # noqa: F401  (re-exported for callers of this module)

causes = CauseTable()


def _ev(row: dict) -> Evidence:
    """Evidence for a row; an event whose rendered message still holds
    ``%n`` slots shows its insertion strings instead. The event catalog has
    one template per (provider, id), but DCOM 10016 has 7 insertion strings
    on Windows 2003 and 11 on Windows 8 and later: rendered with the wrong
    layout the text would name the wrong CLSID/APPID/user."""
    import re
    if row.get("kind") == "event" and re.search(r"%\d+", str(row.get("message") or "")):
        strings = row["_data"].get("strings") if "_data" in row else None
        if isinstance(strings, list) and strings:
            head = " ".join(str(row[k]) for k in ("provider", "event_id", "level") if row.get(k) is not None)
            return Evidence.from_row(row, f"{head}; insertion strings: " + " | ".join(map(str, strings)))
    return Evidence.from_row(row)


def vbs(lines: list[str]) -> str:
    """The article's three-line test, numbered so it survives line wrapping."""
    return " ".join(f"[{i}] {line}" for i, line in enumerate(lines, 1))


def _published(f: Facts) -> tuple[str, list[Evidence]]:
    """Why publishing is done, and its evidence (the 9986, DATA0)."""
    why = ("MOM logged 9986 (published)" if f.latest == "published"
           else "ExMPLS holds DATA0: the publish step succeeded")
    ev = [_ev(r) for r in f.rows("published")[-1:]] + ([_ev(f.data0)] if f.data0 is not None else [])
    return why, ev


def _ls(f: Facts) -> list[Evidence]:
    return [_ev(f.ls32_row)] if f.registered else []


def _creates(f: Facts, n: int) -> list[Evidence]:
    return [_ev(r) for r in f.rows("create_failed")[-n:]] if n else []


def _rem_register(f: Facts) -> list[str]:
    h, rem = f.helper, f.kb["remediation"]
    return [rem["copy_helper"].format(files=" and ".join(h["files"]),
                                      is_are="are" if len(h["files"]) > 1 else "is",
                                      folder=str(f.expected_path or "").rsplit("\\", 1)[0]),
            h["register"], rem["verify_dcomcnfg"].format(name=h["name"])]


@causes("helper-not-registered", "The {name} DCOM helper ({progid}) is not installed or not registered",
        remediation=_rem_register)
def helper_not_registered(f: Facts) -> Verdict:
    """KB 911143, "About the DCOM helper objects": the script creates the
    helper through DCOM; a class that is not registered cannot be created
    (event 10001/9972)."""
    w, h = f.words(), f.helper
    code = f"{f.regserver_exit:08X}" if f.regserver_exit not in (None, 0) else None
    if f.done:
        why, ev = _published(f)
        return ruled_out(f"{why}, so {w['name']} was registered and ran.", *ev)
    if f.registered:
        v = ruled_out(f"{w['name']} is registered: LocalServer32 of {w['clsid']} = {f.ls32_row.get('value')}.", *_ls(f))
        return v.also(f"(Setup's /regserver had exited with {code}, but it was registered since.)").cite(
            _ev(f.regserver_row)) if code else v
    if f.unregistered:
        what = (f"HKCR\\CLSID\\{w['clsid']} is missing" if f.clsid_row is None
                else f"HKCR\\CLSID\\{w['clsid']}\\LocalServer32 has no default value")
        v = confirmed(f"{what} in the SOFTWARE registry of this server: the {w['progid']} DCOM class "
                      f"is not registered, so the publish script cannot create it (event {w['ev_create']}).",
                      _ev(f.clsid_row) if f.clsid_row is not None else f.clsid_gone, *_creates(f, 2))
        if code:
            v.also(f"Setup's \"{h['exe']} /regserver\" exited with {code}.").cite(_ev(f.regserver_row))
    elif code:
        v = confirmed(f"Exchange setup ran \"{h['exe']} /regserver\" and it exited with {code} "
                      "(not 00000000): the helper was never registered.", _ev(f.regserver_row), *_creates(f, 2))
    elif f.dcom("start_failed"):
        return ruled_out(f"DCOM tried to start {w['clsid']} (System event 10000): the class is registered.",
                         _ev(f.dcom("start_failed")[-1]))
    elif f.latest == "publish_failed":
        return ruled_out(f"event {w['ev_fail']}: the {w['name']} application was created and ran, so it is "
                         "registered.", _ev(f.rows("publish_failed")[-1]))
    elif f.latest == "create_failed":
        v = likely(f"MOM logged {w['ev_create']} (failed to create '{w['progid']}'), which KB 911143 "
                   "reads first as the helper not installed or not registered; the registry of "
                   "this server is not in the case to confirm it.", *_creates(f, 2))
    else:
        v = possible(f"No registry of {w['clsid']} and no MOM outcome in the case to decide "
                     f"whether {w['name']} is registered.")
    if f.regserver_exit == 0 and f.regserver_row is not None:
        v.also("Setup's /regserver exited with 00000000.").cite(_ev(f.regserver_row))
    return v


@causes("helper-path-invalid", "LocalServer32 of the {name} CLSID does not point at the real {exe}",
        remediation=lambda f: [f.kb["remediation"]["fix_localserver32"].format(
            clsid=f.helper["clsid"], exe=f.helper["exe"], expected=f.expected_path), f.helper["register"]])
def helper_path_invalid(f: Facts) -> Verdict:
    """KB 911143, "The DCOM application does not run": DCOM 10000 "Unable to
    start a DCOM Server: {CLSID}" means LocalServer32 names a file that is
    not there or not valid; it must be where setup copied the helper."""
    w, starts = f.words(), f.dcom("start_failed")
    where = "where setup copied it" if f.expected_source == "setup" else "the expected folder for this version"
    exp_txt = f"{f.expected_path} ({where})"
    if f.done:
        why, ev = _published(f)
        return ruled_out(f"{why}, so DCOM started {w['name']}.", *ev)
    if f.unregistered:
        return ruled_out(f"{w['clsid']} has no LocalServer32 path at all: the registration, not its path, is missing.")
    if starts:
        v = confirmed(f"The System log has DCOM 10000 \"Unable to start a DCOM Server: {w['clsid']}\" "
                      f"({len(starts)} time(s)): {w['name']} is registered but DCOM cannot start the file "
                      "LocalServer32 names.", *[_ev(r) for r in starts[-3:]], *_ls(f), *_creates(f, 1))
        if f.path_mismatch:
            v.also(f"LocalServer32 = {f.ls32_path}, expected {exp_txt}.").cite(*f.expected_rows)
        return v
    if f.path_bad:
        return confirmed(f"LocalServer32 of {w['clsid']} names {f.ls32_path}, which is not {w['exe']}.", *_ls(f))
    if f.path_mismatch and f.expected_source == "setup":
        return confirmed(f"LocalServer32 of {w['clsid']} = {f.ls32_path}, but setup copied the helper to "
                         f"{f.expected_path}.", *_ls(f), *map(_ev, f.expected_rows), *_creates(f, 1))
    if f.latest == "publish_failed":
        return ruled_out(f"event {w['ev_fail']} shows the {w['name']} application started (and then failed), "
                         "so its path is valid.", _ev(f.rows("publish_failed")[-1]))
    if f.path_mismatch and f.expected_source == "registry":
        return likely(f"LocalServer32 of {w['clsid']} = {f.ls32_path}, but Exchange is installed so that "
                      f"the helper should be {f.expected_path}.", *_ls(f), *map(_ev, f.expected_rows))
    if f.path_mismatch:
        return possible(f"LocalServer32 of {w['clsid']} = {f.ls32_path}, not the default {f.expected_path}.", *_ls(f))
    if f.registered and f.system_present:
        return ruled_out(f"LocalServer32 = {f.ls32_path} matches {exp_txt}, and the System log has no "
                         f"DCOM 10000 for {w['clsid']}.", *_ls(f))
    if f.system_present and f.latest == "create_failed":
        return ruled_out(f"The System log has no DCOM 10000 for {w['clsid']}: DCOM did not fail to start the file.")
    return possible(f"LocalServer32 = {f.ls32_path} matches {exp_txt}, but the System log is not in the "
                    "case to show whether DCOM can start it." if f.registered else
                    "Neither the helper's LocalServer32 value nor a System log is in the case.", *_ls(f))


@causes("dcom-permissions", "DCOM permissions prevent creating {progid}",
        remediation=lambda f: [f.kb["remediation"]["dcom_permissions"].format(progid=f.helper["progid"])
                               + " " + vbs(f.helper["vbs_test"])])
def dcom_permissions(f: Facts) -> Verdict:
    """KB 911143, "The PubKeyPublisher object is not created", and KB 274696:
    registered, valid path, still not created -- DCOM permissions,
    corroborated by DCOM 10016 naming the CLSID."""
    w, access = f.words(), f.dcom("access_denied")
    acc = [_ev(r) for r in access[-3:]]
    acc_txt = (f" DCOM 10016 names {w['clsid']} ({len(access)} time(s)) in the System log." if access else "")
    created = f"(failed to create '{w['progid']}')"
    if f.done:
        why, ev = _published(f)
        return ruled_out(f"{why}, so the object was created.", *ev)
    if f.latest == "publish_failed":
        return ruled_out(f"event {w['ev_fail']}: the object was created (Publish() itself failed).",
                         _ev(f.rows("publish_failed")[-1]))
    if f.dcom("start_failed") or f.path_bad or (f.path_mismatch and f.expected_source == "setup"):
        return ruled_out("DCOM cannot start the helper's file at all (see helper-path-invalid); "
                         "that explains the failure before permissions come into play.", *acc)
    if f.unregistered or (f.regserver_exit not in (None, 0) and not f.registered):
        if access:
            return possible("The class is not registered, which explains the failure first." + acc_txt, *acc)
        return ruled_out("The class is not registered, which explains the failure; "
                         "permissions can only be judged once it is.")
    if f.latest == "create_failed":
        ev = _creates(f, 2) + _ls(f) + acc
        if f.registered and access:
            return confirmed(f"{w['name']} is registered at {f.ls32_path} yet MOM logged {w['ev_create']} "
                             f"{created}.{acc_txt}", *ev)
        if f.registered:
            return likely(f"{w['name']} is registered at {f.ls32_path} yet MOM logged {w['ev_create']} "
                          f"{created}: KB 911143 points to DCOM permissions.", *ev)
        if access:
            return likely(f"MOM logged {w['ev_create']} {created}.{acc_txt}", *ev)
        return possible(f"MOM logged {w['ev_create']}; with the registration unknown, permissions are "
                        "the second explanation after a missing registration.", *ev)
    if access:
        return likely(f"DCOM denied access to the helper.{acc_txt}", *acc, *_ls(f))
    if f.mom_present:
        return ruled_out(f"MOM logged no {w['ev_create']} (object not created) for this server.")
    return possible("No MOM events in the case to show whether the object is created.")


@causes("publish-failed", "The {name} DCOM application ran but failed to publish the data",
        remediation=lambda f: [f.kb["remediation"]["publish_failed"].format(name=f.helper["name"])
                               + " " + vbs(f.helper["vbs_test"])])
def publish_failed(f: Facts) -> Verdict:
    """KB 911143, event 9970 / 10000: the helper ran and Publish() failed."""
    w, fails = f.words(), f.rows("publish_failed")
    ev = [_ev(r) for r in fails[-3:]]
    if f.done:
        why, pub = _published(f)
        return ruled_out(f"{why}.", *pub)
    if f.latest == "publish_failed":
        return confirmed(f"MOM logged {w['ev_fail']} (Failed to publish Exchange Management Pack data) "
                         f"{len(fails)} time(s), last after any other outcome: the DCOM application ran "
                         "and failed.", *ev)
    if fails:
        return possible(f"MOM logged {w['ev_fail']} earlier, but a later outcome replaced it.", *ev)
    if f.mom_present:
        return ruled_out(f"MOM logged no {w['ev_fail']} (publish failed) from source Exchange MOM for this server.")
    return possible("No MOM events in the case to show whether publishing failed.")


@causes("publish-not-running", "The \"Exchange - Publish ExMP Data\" script or its rules are not running",
        remediation=lambda f: [f.kb["remediation"]["publish_not_running"]]
        + ([f.kb["remediation"]["opsmgr_discovery"]] if f.mom == "2007" or f.opsmgr else []))
def publish_not_running(f: Facts) -> Verdict:
    """KB 911143, the two publishing rules (daily at 02:00, and on the MAPI
    logon test's 9987); OpsMgr 2007 article: the server must be discovered."""
    w = f.words()
    outcomes = f"(no 9986, {w['ev_fail']}, {w['ev_create']})"
    if f.outcomes:
        kind, row = f.outcomes[-1]
        return ruled_out(f"The publish script ran: MOM logged {int(row['event_id'])} "
                         f"({kind.replace('_', ' ')}) for this server.", _ev(row))
    if f.data0 is not None:
        return ruled_out("ExMPLS holds DATA0: the publish script ran at some point.", _ev(f.data0))
    ev = [_ev(r) for r in f.no_key_rows[-3:]]
    if f.no_key_rows:
        v = confirmed(f"MOM logged 9987 (the MAPI logon rule found no ExMPLS key) {len(f.no_key_rows)} "
                      f"time(s), yet no publish outcome (9986, {w['ev_fail']}, {w['ev_create']}) at all: "
                      "the \"Exchange - Publish ExMP Data\" script or its rules are not running.", *ev)
    elif f.mom_present and f.mom_host_rows:
        v = likely(f"The MOM export has events for this server but no publish outcome at all {outcomes}: "
                   "the publish script or its rules are not running.", *ev)
    elif f.mom_present:
        v = likely("The MOM export has no event at all for this server: the publish rules do not run "
                   "for it (is it discovered and monitored, and is its agent reporting?).", *ev)
    else:
        v = possible("No MOM events in the case to show whether the publish script runs.", *ev)
    if f.exmpls_covered and f.exmpls_row is None:
        v.also("The ExMPLS key is absent from the registry, consistent with nothing published.")
    return v


@causes("credentials-not-configured", "The mailbox access account (DATA1..DATA3) was never stored",
        remediation=lambda f: [f.kb["remediation"]["credentials"]])
def credentials_not_configured(f: Facts) -> Verdict:
    """KB 911143, Conclusion: after 9986 the Configuration Wizard stores the
    mailbox access account as DATA1..DATA3 beside DATA0."""
    creds = [n.upper() for n in f.kb["registry"]["data_credentials"]]
    if f.data0 is not None and f.cred_missing:
        return confirmed(f"ExMPLS holds DATA0 (the public key, published) but {', '.join(f.cred_missing)} "
                         "(the mailbox access account's domain, user name, password) are missing: the "
                         "credentials were never stored.", _ev(f.data0),
                         *[_ev(f.data_rows[n]) for n in creds if n in f.data_rows])
    if f.data_complete:
        return ruled_out("ExMPLS holds DATA0..DATA3: the mailbox access account is stored.",
                         _ev(f.data0), *[_ev(f.data_rows[n]) for n in creds])
    if f.exmpls_row is not None:
        return ruled_out("ExMPLS exists without DATA0: publishing, not the credentials, is missing.",
                         _ev(f.exmpls_row))
    if f.exmpls_conflict:
        # A hive without ExMPLS contradicts the 9986: the key was removed
        # since, the hive predates the publish, or it is another machine's.
        return possible("MOM logged 9986 (published), yet the SOFTWARE registry in the case has no "
                        "HKLM\\SOFTWARE\\Microsoft\\ExMPLS key: it was removed after publishing, or the "
                        "hive was taken before the publish or on another server. Without the key the "
                        "Configuration Wizard cannot store DATA1..DATA3.", *_published(f)[1], f.exmpls_gone)
    if f.exmpls_covered:
        return ruled_out("HKLM\\SOFTWARE\\Microsoft\\ExMPLS is absent: the key was never published; "
                         "credentials can only be stored after 9986.")
    if f.latest == "published":
        return possible("9986 was logged; the registry is not in the case to show DATA1..DATA3.", *_published(f)[1])
    if f.failing:
        return ruled_out("Publishing fails, so no 9986 yet: credentials come after it.")
    return possible("Neither the ExMPLS key nor a 9986 is in the case.")
