"""Check ``smtp-mailbox-stuck``: local delivery stuck because the SMTP
connection mailbox is missing, disconnected or mis-attributed (KB 828938).

How the article diagnoses it, and where this check follows it:

1. **Symptom** -- messages stay in the Local Delivery queue: message
   tracking shows the same message "Delivered Locally" then "Scheduled to
   Retry Local Delivery" over and over (a 1023, then a 1037, every few
   minutes) -- :func:`.model.tracked_messages`.
2. **The store refuses the SMTP mailbox** -- at mount time
   MSExchangeTransport 326 (Exchange Store Driver) says "Service Account
   failed to logon to the store as <legacyExchangeDN>. Error code :
   0x80040148" (or 0x80040158), and MSExchangeIS 1194 says "Accept clients
   on external interface SMTP failed". The DN is the SMTP connection's:
   ``/o=<org>/ou=<AG>/cn=Configuration/cn=Connections/cn=SMTP (<server>)/cn={<store GUID>}``;
   a 326 naming another DN (a user mailbox) is a different problem --
   :mod:`.facts`.
3. **Cause** -- the mailGateway object ``SMTP (<server>-{<GUID>})`` in
   ``CN=Connections`` is missing or the mailbox disconnected, or its homeMTA
   / homeMDB / legacyExchangeDN are wrong; an LDIF export (ldifde) of
   CN=Connections tells them apart -- :mod:`.causes`, :mod:`.ldif`.
4. **Resolution** -- the article's steps, and the new mailGateway object as
   LDIF for review (a finding attachment, one record per store event 326
   names), ``<FILL IN: ...>`` only where the case does not tell the value; for
   wrong attributes an LDIF ``changetype: modify`` of just those.

Status: ``problem`` when a 326 naming the SMTP connection mailbox comes
with a 1194 or a retry loop; ``inconclusive`` for a loop alone, a 326
alone, or a 326 local delivery has got past since; ``ok`` when tracking
shows local delivery completing and no 326 names the SMTP mailbox. The
world: Exchange 2000/2003 SMTP; a host the case shows to run Exchange 2007
or later is not_applicable.
"""
from __future__ import annotations

from typing import Any

from ...findings import Finding
from ...query import host_keys, select
from .. import register
from ..toolkit import FindingParts, Host, ToolkitCheck, World, build_finding, not_applicable, only_host
from . import report
from .causes import WITHOUT_326, causes
from .facts import gather
from .model import KNOWLEDGE, K, is_2007_tracking, is_smtp_1194, parse_connection_dn

__all__ = ["SmtpMailboxStuck", "parse_connection_dn"]


@register
class SmtpMailboxStuck(ToolkitCheck):
    id = "smtp-mailbox-stuck"
    title = "Local delivery stuck: SMTP connection mailbox missing, disconnected or mis-attributed"
    description = ("KB 828938: messages stay in the Local Delivery queue because the store cannot log "
                   "on the SMTP connection mailbox (MSExchangeTransport 326 with the SMTP connection's "
                   "legacyExchangeDN, MSExchangeIS 1194, a Delivered Locally / Retry Local Delivery "
                   "loop in message tracking). Weighs a missing/disconnected mailGateway object against "
                   "wrong homeMTA/homeMDB/legacyExchangeDN, using an LDIF export of Active Directory "
                   "when the case has one, and writes the replacement object as LDIF.")
    needs = ("event", "tracking_entry", "ldap_entry")
    references = tuple(K["references"])
    knowledge = KNOWLEDGE
    world = World(exchange=("2000/2003",),
                  elsewhere="the SMTP connection mailbox of KB 828938 (Exchange 2000/2003 SMTP "
                            "local delivery through the store) does not apply")

    def _relevant(self, df: Any):
        """Rows of this check's world: MSExchangeTransport events, 1194 for
        the SMTP interface, Exchange 2000/2003 message tracking."""
        spec = K["events"]["accept_clients_failed"]
        e1194 = select(df, kind="event", provider=spec["provider"], event_id=spec["event_id"])
        e1194 = e1194[[is_smtp_1194(r) for _, r in e1194.iterrows()]] if len(e1194) else e1194
        transport = select(df, kind="event", provider=K["transport_providers"])
        tracking = select(df, kind="tracking_entry")
        if len(tracking):
            tracking = tracking[[not is_2007_tracking(v) for v in tracking["data"]]]
        return e1194, transport, tracking

    def run(self, case: Any) -> list[Finding]:
        lacking = self.lacks_needs(case)
        if lacking is not None:
            return [lacking]
        df = case.table
        parts = self._relevant(df)
        if all(p.empty for p in parts):
            return self.within_world(case, [not_applicable(
                self, only_host(case), "No Exchange transport evidence in the case (no MSExchangeTransport or "
                "MSExchangeIS 1194 events, no message tracking logs).")])
        keys = sorted({k for p in parts for k in host_keys(p).dropna()})
        ldap = select(df, kind="ldap_entry")
        return self.within_world(case, [self.judge_host(Host.of(case, part), ldap)
                                        for part in case.per_host(keys)])

    def judge_host(self, host: Host, ldap: Any) -> Finding:
        f = gather(host, ldap, self.id)
        status = f.status()
        weighed = causes.weigh(f, None if f.conn else WITHOUT_326)
        return build_finding(self, host.name, FindingParts(
            summary=report.summary(f, status), causes=weighed, status=status,
            evidence=report.evidence(f, status), remediation=report.remediation(f, weighed),
            collect=report.collect(f, status), facts=f.facts, attachments=f.attachments))
