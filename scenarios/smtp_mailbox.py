"""Sample cases for ``smtp-mailbox-stuck`` (KB 828938).

The stuck server is EXCH01.contoso.local (organization "Contoso", "First
Administrative Group", mailbox store {CCCF3BE6-219C-4379-985D-851B766EDDC7},
the GUID of the KB's own example). Its Application log has the article's
MSExchangeTransport 326 (logged when the stores were remounted on
2007-03-12 around 21:50 UTC) and MSExchangeIS 1194 among ordinary Exchange
chatter; the 2003 message tracking log shows two inbound messages looping
between "Delivered Locally" (1023) and "Scheduled to Retry Local Delivery"
(1037) every five minutes, while outbound mail (1019/1033/1034/1020/1031)
keeps flowing, as it does in the article's situation.

Variants: the same evidence in a .evtx, in a zip nested in a zip, as a
KB-style text export only (error 0x80040158), with a legacy .evt plus an
ldifde export whose mailGateway object has a wrong homeMDB, tracking logs
alone (inconclusive), and a healthy server (ok).
"""
from __future__ import annotations

import base64
import tempfile
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from . import Expect, Scenario, noise, write_text, zip_tree
from .noise import EventSpec, utc

CHECK = "smtp-mailbox-stuck"
HOST = "EXCH01.contoso.local"
SHORT = "EXCH01"
ORG = "Contoso"
AG = "First Administrative Group"
GUID = "CCCF3BE6-219C-4379-985D-851B766EDDC7"
CONN_DN = f"/o={ORG}/ou={AG}/cn=Configuration/cn=Connections/cn=SMTP ({SHORT})/cn={{{GUID}}}"
CONFIG = "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=local"
AG_DN = f"CN={AG},CN=Administrative Groups,CN={ORG},{CONFIG}"
SERVER_DN = f"CN={SHORT},CN=Servers,{AG_DN}"
STORE_DN = f"CN=Mailbox Store ({SHORT}),CN=First Storage Group,CN=InformationStore,{SERVER_DN}"
START = utc(2007, 3, 12, 6, 0, 0)
REMOUNT = utc(2007, 3, 12, 21, 50, 4)
LOOP_START = utc(2007, 3, 12, 22, 53, 18)

TRACKING_COLUMNS = ["Date", "Time", "client-ip", "Client-hostname", "Partner-Name", "Server-hostname",
                    "server-IP", "Recipient-Address", "Event-ID", "MSGID", "Priority",
                    "Recipient-Report-Status", "total-bytes", "Number-Recipients", "Origination-Time",
                    "Encryption", "service-Version", "Linked-MSGID", "Message-Subject", "Sender-Address"]


def _smtp_events(code: str = "0x80040148", host: str = HOST) -> list[EventSpec]:
    """What the Application log holds after the stores were remounted."""
    return [
        EventSpec("MSExchangeIS", 9523, "information", REMOUNT - timedelta(seconds=20), "Application", host,
                  ["First Storage Group", f"Mailbox Store ({SHORT})"]),
        EventSpec("MSExchangeTransport", 326, "error", REMOUNT, "Application", host,
                  [CONN_DN, code]),
        EventSpec("MSExchangeIS", 1194, "error", REMOUNT + timedelta(seconds=2), "Application", host,
                  ["SMTP", "0x80004005"]),
        EventSpec("MSExchangeTransport", 326, "error", REMOUNT + timedelta(minutes=31), "Application", host,
                  [CONN_DN, code]),
    ]


def _application(host: str = HOST, with_problem: bool = True, code: str = "0x80040148") -> list[EventSpec]:
    groups = [noise.chatter("Application", host, START, 40, seed=828938)]
    if with_problem:
        groups.append(_smtp_events(code, host))
    return noise.merge(*groups)


def _tracking_line(ts: datetime, event_id: int, msgid: str, recipient: str, sender: str,
                   subject: str = "", partner: str = "SMTP", size: int = 4521) -> str:
    date = f"{ts.year}-{ts.month}-{ts.day}"
    time = ts.strftime("%H:%M:%S") + " GMT"
    fields = [date, time, "10.0.0.21", SHORT, partner, SHORT, "10.0.0.21", recipient, str(event_id),
              msgid, "0", "", str(size), "1", f"{date} {time}", "0", "Version: 6.5.7638.1", "-",
              subject, sender]
    return "\t".join(fields)


def _tracking_log(stuck: bool, healthy_local: bool = False) -> str:
    """An Exchange 2003 tracking log (``EXCH01.log\\20070312.log``)."""
    lines = ["# Message Tracking Log File",
             "# Exchange System Attendant Version 6.5.7638.1",
             "# " + "\t".join(TRACKING_COLUMNS)]
    entries: list[tuple[datetime, str]] = []
    # Outbound mail keeps flowing (noise the check must not read as local delivery).
    t = utc(2007, 3, 12, 8, 2, 11)
    for i in range(12):
        mid = f"<A1B2C3D4{i:02d}@{HOST}>"
        to = ["orders@fabrikam.com", "j.doe@litwareinc.com", "info@adatum.com"][i % 3]
        frm = ["alice@contoso.com", "bob@contoso.com"][i % 2]
        for k, eid in enumerate((1019, 1033, 1034, 1020, 1031)):
            entries.append((t + timedelta(seconds=k), _tracking_line(t + timedelta(seconds=k), eid, mid, to, frm)))
        t += timedelta(minutes=53, seconds=17)
    if healthy_local:
        t = utc(2007, 3, 12, 9, 14, 5)
        for i in range(8):
            mid = f"<2007031209{i:02d}.AB12@mail.fabrikam.com>"
            to = ["alice@contoso.com", "bob@contoso.com", "carol@contoso.com"][i % 3]
            for k, eid in enumerate((1019, 1033, 1036, 1028, 1023)):
                entries.append((t + timedelta(seconds=k), _tracking_line(t + timedelta(seconds=k), eid, mid,
                                                                        to, "orders@fabrikam.com")))
            t += timedelta(minutes=71, seconds=9)
    if stuck:
        for n, (mid, to) in enumerate((("<20070312225215.3F1A@mail.fabrikam.com>", "alice@contoso.com"),
                                       ("<20070312225540.77C2@mail.adatum.com>", "bob@contoso.com"))):
            t = LOOP_START + timedelta(minutes=3 * n)
            sender = ["orders@fabrikam.com", "info@adatum.com"][n]
            for k, eid in enumerate((1019, 1033, 1036)):
                entries.append((t - timedelta(seconds=3 - k), _tracking_line(t - timedelta(seconds=3 - k), eid,
                                                                            mid, to, sender)))
            for _ in range(12 - 3 * n):
                entries.append((t, _tracking_line(t, 1023, mid, to, sender)))
                entries.append((t, _tracking_line(t, 1037, mid, to, sender)))
                t += timedelta(minutes=5)
    entries.sort(key=lambda e: e[0])
    lines += [line for _, line in entries]
    return "\n".join(lines) + "\n"


def _write_evtx_logs(folder: Path, app: list[EventSpec], host: str = HOST) -> None:
    from analyzer.synth.evtx import write_evtx
    folder.mkdir(parents=True, exist_ok=True)
    write_evtx(folder / "Application.evtx", noise.to_evtx(app))
    write_evtx(folder / "System.evtx", noise.to_evtx(noise.chatter("System", host, START, 40, seed=828938)))


def _stuck_evtx_case(case: Path) -> None:
    _write_evtx_logs(case / "eventlogs", _application())
    write_text(case / "Exchsrvr" / f"{SHORT}.log" / "20070312.log", _tracking_log(stuck=True))
    write_text(case / "notes.txt", "Customer: mail to internal users stuck in Local Delivery since the "
               "store was remounted last night. Outbound mail works.\n")


def build_stuck_evtx(case: Path) -> None:
    _stuck_evtx_case(case)


def build_stuck_nested_zip(case: Path) -> None:
    """The same case as a zip of the logs inside the zip the customer uploaded."""
    with tempfile.TemporaryDirectory(prefix="exa-smtp-") as tmp:
        inner_src = Path(tmp) / "inner"
        _stuck_evtx_case(inner_src)
        outer_src = Path(tmp) / "outer"
        zip_tree(inner_src, outer_src / f"{SHORT}-logs.zip")
        write_text(outer_src / "upload-readme.txt", "Files collected by the customer from EXCH01.\n")
        zip_tree(outer_src, case / "case-0412-828938.zip")


def _kb_block(e: EventSpec, description: str, category: str = "None") -> str:
    local = e.ts - timedelta(hours=5)  # the customer's Event Viewer ran on Eastern time
    level = {"error": "Error", "warning": "Warning", "information": "Information"}[e.level]
    return "\n".join([
        f"Event Type:\t{level}",
        f"Event Source:\t{e.provider}",
        f"Event Category:\t{category}",
        f"Event ID:\t{e.event_id}",
        f"Date:\t\t{local.month}/{local.day}/{local.year}",
        f"Time:\t\t{local.strftime('%I:%M:%S %p').lstrip('0')}",
        "User:\t\tN/A",
        f"Computer:\t{SHORT}",
        "Description:",
        description,
        "",
    ])


def build_text_export(case: Path) -> None:
    """Only a KB-style text export of the Application log (0x80040158)."""
    blocks = []
    for e in _application(code="0x80040158"):
        if e.provider == "MSExchangeTransport" and e.event_id == 326:
            desc = (f"Service Account failed to logon to the store as {e.strings[0]}. Error code : "
                    f"{e.strings[1]}. For more information, click http://search.support.microsoft.com/search/?adv=1.")
            blocks.append(_kb_block(e, desc, "Exchange Store Driver"))
        elif e.provider == "MSExchangeIS" and e.event_id == 1194:
            desc = (f"Accept clients on external interface {e.strings[0]} failed with error {e.strings[1]}. "
                    "For more information, click http://search.support.microsoft.com/search/?adv=1.")
            blocks.append(_kb_block(e, desc, "General"))
        else:
            desc = (f"The description for Event ID ( {e.event_id} ) in Source ( {e.provider} ) could not be "
                    "found. It contains the following insertion string(s): " + ", ".join(e.strings) + ".")
            blocks.append(_kb_block(e, desc))
    write_text(case / "EXCH01 application events.txt", "\n".join(blocks))


def _ldif_export(home_mdb: str) -> str:
    """``ldifde -f smtp.ldf`` of CN=Connections plus the server's stores."""
    def guid_b64(g: str) -> str:
        return base64.b64encode(uuid.UUID(g).bytes_le).decode()

    def fold(line: str) -> str:
        out, rest = [line[:78]], line[78:]
        while rest:
            out.append(" " + rest[:77])
            rest = rest[77:]
        return "\n".join(out)

    conns = f"CN=Connections,CN={ORG},{CONFIG}"
    other_guid = "0B7E5A3C-1F2D-4C55-9A8B-2E6F1D0C9B47"
    pub_guid = "5D2C7E91-8A4B-4F3E-B1C6-7A9D0E2F4B18"
    second_store = f"CN=Mailbox Store 2 ({SHORT}),CN=Second Storage Group,CN=InformationStore,{SERVER_DN}"
    records = [
        [f"dn: {conns}", "changetype: add", "objectClass: top", "objectClass: container", "cn: Connections"],
        [f"dn: CN=SMTP ({SHORT}-{{{GUID}}}),{conns}", "changetype: add", "objectClass: top",
         "objectClass: mailGateway", f"cn: SMTP ({SHORT}-{{{GUID}}})", "deliveryMechanism: 2",
         f"homeMDB: {home_mdb}", f"homeMTA: CN=Microsoft MTA,{SERVER_DN}", f"legacyExchangeDN: {CONN_DN}",
         f"objectGUID:: {guid_b64('9F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0')}"],
        [f"dn: CN=SMTP ({SHORT}-{{{other_guid}}}),{conns}", "changetype: add", "objectClass: top",
         "objectClass: mailGateway", f"cn: SMTP ({SHORT}-{{{other_guid}}})", "deliveryMechanism: 2",
         f"homeMDB: {second_store}", f"homeMTA: CN=Microsoft MTA,{SERVER_DN}",
         f"legacyExchangeDN: /o={ORG}/ou={AG}/cn=Configuration/cn=Connections/cn=SMTP ({SHORT})/cn={{{other_guid}}}"],
        [f"dn: {STORE_DN}", "changetype: add", "objectClass: top", "objectClass: msExchMDB",
         "objectClass: msExchPrivateMDB", f"cn: Mailbox Store ({SHORT})", f"objectGUID:: {guid_b64(GUID)}"],
        [f"dn: {second_store}", "changetype: add", "objectClass: top", "objectClass: msExchMDB",
         "objectClass: msExchPrivateMDB", f"cn: Mailbox Store 2 ({SHORT})", f"objectGUID:: {guid_b64(other_guid)}"],
        [f"dn: CN=Public Folder Store ({SHORT}),CN=First Storage Group,CN=InformationStore,{SERVER_DN}",
         "changetype: add", "objectClass: top", "objectClass: msExchMDB", "objectClass: msExchPublicMDB",
         f"cn: Public Folder Store ({SHORT})", f"objectGUID:: {guid_b64(pub_guid)}"],
    ]
    return "\n".join(["version: 1", ""] + ["\n".join(fold(x) for x in r) + "\n" for r in records])


def build_ldif_wrong_homemdb(case: Path) -> None:
    """Legacy .evt logs, tracking, and an AD export: homeMDB points at the wrong store."""
    from analyzer.synth.evt import write_evt
    logs = case / "EXCH01 logs"
    logs.mkdir(parents=True)
    write_evt(logs / "AppEvent.Evt", noise.to_evt(_application(host=SHORT)))
    write_evt(logs / "SysEvent.Evt", noise.to_evt(noise.chatter("System", SHORT, START, 40, seed=828938)))
    write_text(case / "tracking" / "20070312.log", _tracking_log(stuck=True))
    wrong = f"CN=Mailbox Store 2 ({SHORT}),CN=Second Storage Group,CN=InformationStore,{SERVER_DN}"
    write_text(case / "ad" / "smtp.ldf", _ldif_export(home_mdb=wrong))


def build_tracking_only(case: Path) -> None:
    write_text(case / "Exchsrvr" / f"{SHORT}.log" / "20070312.log", _tracking_log(stuck=True))


def build_healthy(case: Path) -> None:
    _write_evtx_logs(case / "eventlogs", _application(with_problem=False))
    write_text(case / "Exchsrvr" / f"{SHORT}.log" / "20070312.log",
               _tracking_log(stuck=False, healthy_local=True))


SCENARIOS = [
    Scenario("smtp-mailbox-stuck-evtx",
             "KB 828938: Application.evtx with MSExchangeTransport 326 (0x80040148) naming the SMTP "
             "connection mailbox and MSExchangeIS 1194 among chatter, and a 2003 tracking log with two "
             "messages retrying local delivery every 5 minutes. No AD export.",
             build=build_stuck_evtx,
             expected=(Expect(CHECK, "problem", "smtp-mailbox-missing"),)),
    Scenario("smtp-mailbox-stuck-nested-zip",
             "The smtp-mailbox-stuck-evtx case as uploaded: a zip holding the upload notes and a zip "
             "of the logs.",
             build=build_stuck_nested_zip,
             expected=(Expect(CHECK, "problem", "smtp-mailbox-missing"),)),
    Scenario("smtp-mailbox-stuck-text-export",
             "Only a KB-style text export of the Application log: 326 with 0x80040158 and 1194.",
             build=build_text_export,
             expected=(Expect(CHECK, "problem", "smtp-mailbox-missing"),)),
    Scenario("smtp-mailbox-ldif-wrong-homemdb",
             "Legacy .evt logs with 326/1194, the tracking loop, and an ldifde export of CN=Connections "
             "and the stores: the SMTP (EXCH01-{GUID}) mailGateway's homeMDB names Mailbox Store 2, "
             "not the store whose objectGUID is in event 326.",
             build=build_ldif_wrong_homemdb,
             expected=(Expect(CHECK, "problem", "smtp-mailbox-attributes"),)),
    Scenario("smtp-mailbox-tracking-only",
             "Only the tracking log with the local delivery retry loop: inconclusive, collect the "
             "Application log.",
             build=build_tracking_only,
             expected=(Expect(CHECK, "inconclusive", "smtp-mailbox-missing"),)),
    Scenario("smtp-mailbox-healthy-delivery",
             "Healthy server: Application/System .evtx chatter without 326, tracking shows inbound "
             "messages delivered to the store without retries.",
             build=build_healthy,
             expected=(Expect(CHECK, "ok", None),)),
]
