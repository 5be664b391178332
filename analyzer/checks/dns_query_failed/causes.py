"""The causes of "451 4.4.0 DNS query failed", one function each.

The blog: mail to a few domains sits in the Hub Transport queues with 451
4.4.0 DNS query failed, yet nslookup from the same server resolves the
domains and their MX records, and a hosts file entry makes the mail flow —
Exchange 2007 on Windows Server 2008 with IPv6 (KB 972744: the transport's
AAAA queries). Otherwise the domains really do not resolve, or the
transport server is pointed at DNS servers that do not answer.
"""
from __future__ import annotations

from typing import Any

from ..toolkit import CauseTable, Verdict, confirmed, likely, possible, ruled_out
from .facts import Facts

causes = CauseTable()


def _domains(f: Facts) -> str:
    return ", ".join(f.domains) or "the affected domains"


def _fmt(f: Facts, steps: list[str]) -> list[str]:
    servers = sorted({s for a in f.adapters for s in (a["_data"].get("dns_servers") or [])})
    return [s.format(domains=_domains(f), servers=", ".join(servers) or "of the server") for s in steps]


def _resolved(f: Facts) -> tuple[list[str], list[str], list[str], list[dict[str, Any]]]:
    """Affected domains that nslookup resolved, that failed, that were not
    looked up; and the lookup rows."""
    ok, bad, missing, rows = [], [], [], []
    fails = set(f.kb["nslookup_failures"])
    for name in f.domains:
        got = f.lookups_for(name)
        if not got:
            missing.append(name)
            continue
        rows += got
        if any(r["_data"].get("status") == "ok" for r in got):
            ok.append(name)
        elif any(r["_data"].get("status") in fails for r in got):
            bad.append(name)
        else:
            missing.append(name)
    return ok, bad, missing, rows


def _none(f: Facts) -> Verdict | None:
    if f.domains:
        return None
    if not f.decided:
        return possible(f"The case holds no queue export or protocol log of {f.host} to show whether its "
                        "queues fail with 451 4.4.0" + (" (its tracking logs have no DEFER/FAIL with it)."
                                                         if f.tracked else "."))
    return ruled_out(f"No queue, protocol log or tracking row of {f.host} carries 451 4.4.0 DNS query failed.",
                     *f.queues[:2], *f.other_errors[:2])


@causes("ipv6-dns-bug", "Exchange 2007 on Windows Server 2008 with IPv6: DNS queries fail although the domains resolve",
        remediation=lambda f: _fmt(f, f.kb["remediation"]["ipv6"]))
def ipv6_dns_bug(f: Facts) -> Verdict:
    """The blog's case (KB 972744): Exchange 2007 on Windows Server 2008,
    IPv6 enabled, the same domains resolving in nslookup from the server."""
    done = _none(f)
    if done:
        return done
    kb = f.kb
    win = str(f.windows.value).strip() if f.windows is not None and f.windows.value is not None else None
    if win is not None and win != kb["windows_2008"]:
        return ruled_out(f"Windows {win} is not Windows Server 2008 (6.0), where the IPv6 DNS issue occurs.",
                         f.windows.row)
    if f.exchange_major is not None and f.exchange_major != kb["exchange_2007_major"]:
        return ruled_out(f"Exchange major version {f.exchange_major} is not Exchange 2007.", *f.exchange_rows)
    if f.ipv6_off:
        return ruled_out(f"DisabledComponents = 0x{f.disabled_components.as_int:X}: IPv6 is preferred off, "
                         "so the transport's queries go over IPv4.", f.disabled_components.row)
    if f.ipv6_bound is False and f.ipv6_off is None:
        return ruled_out("ipconfig /all shows no IPv6 address on any connected adapter.", *f.adapters[:1])
    ok, bad, missing, rows = _resolved(f)
    ev = [r for r in rows if r["_data"].get("status") == "ok"][:3]
    on = [a for a in f.adapters if a["_data"].get("ipv6_bound")][:1] + (
        [f.tcpip6_absent] if f.tcpip6_absent is not None else [])
    setting = "Exchange 2007" if f.exchange_major == 8 else "Exchange (version not shown)"
    wname = "Windows Server 2008 (6.0)" if win == kb["windows_2008"] else f"Windows {win or '(version not shown)'}"
    where = f"{setting} on {wname} with IPv6 enabled"
    if ok and not bad:
        sure = confirmed if win == kb["windows_2008"] and f.exchange_major == 8 and on else likely
        pinned = [h for d in ok for h in f.hosts_for(d)]
        v = sure(f"{where}, and nslookup from the server resolves {', '.join(ok)} while the transport "
                    "fails with 451 4.4.0: the Exchange 2007 / Windows Server 2008 IPv6 DNS issue (KB 972744).",
                    *ev, *on, f.windows.row if f.windows is not None else None, *f.exchange_rows,
                    *[r for d in ok for r in f.domains[d].rows[:1]])
        ft = f.fault_tolerance
        if ft is not None and str(ft.value).lower() == "strict":
            v.also(f"EdgeTransport.exe.config has DnsFaultTolerance {ft.value}"
                   f"{'' if ft.explicit else ' (the default)'}; KB 972744 sets it to Lenient.").cite(ft.row)
        if pinned:
            v.also("The hosts file already pins " + ", ".join(sorted({n for h in pinned for n in h["_data"].get("names") or []}))
                   + ": the blog's temporary workaround is in place.").cite(*pinned[:2])
        return v
    if bad and not ok:
        return ruled_out(f"nslookup fails for {', '.join(bad)} too: the domains do not resolve at all.",
                         *[r for r in rows if r["_data"].get("status") != "ok"][:2])
    return possible(f"{where}; no nslookup result of {', '.join(missing) or 'the domains'} from the server "
                    "to tell whether they resolve.", *on)


@causes("dns-resolution-failure", "The domains do not resolve in DNS: {domains}",
        remediation=lambda f: _fmt(f, f.kb["remediation"]["resolution"]))
def dns_resolution_failure(f: Facts) -> Verdict:
    """The domains really do not resolve: nslookup fails (non-existent
    domain, no MX, the DNS servers time out)."""
    done = _none(f)
    if done:
        return done
    ok, bad, missing, rows = _resolved(f)
    failed = [r for r in rows if r["_data"].get("status") != "ok"]
    if bad:
        why = "; ".join(sorted({f"{r['_data'].get('query')}: {r['_data'].get('error') or r['_data'].get('status')}"
                                for r in failed}))
        return confirmed(f"nslookup from the server fails for {', '.join(bad)} ({why}).", *failed[:3],
                         *[r for d in bad for r in f.domains[d].rows[:1]])
    timeouts = [r for r in f.lookups if r["_data"].get("status") in ("timeout", "no_response")]
    if timeouts and not ok:
        return likely("nslookup from the server times out: its DNS servers do not answer.", *timeouts[:2])
    if ok and not missing:
        return ruled_out(f"nslookup from the server resolves {', '.join(ok)}.",
                         *[r for r in rows if r["_data"].get("status") == "ok"][:3])
    return possible(f"No nslookup result for {', '.join(missing)} from the server.")


@causes("external-dns-misconfigured", "The transport server's external DNS servers are wrong or unreachable",
        remediation=lambda f: _fmt(f, f.kb["remediation"]["external"]))
def external_dns_misconfigured(f: Facts) -> Verdict:
    """Get-TransportServer: ExternalDNSAdapterEnabled false and
    ExternalDNSServers set — the transport asks those servers, not the ones
    nslookup used."""
    done = _none(f)
    if done:
        return done
    ts = f.transport_server
    if ts is None:
        return possible("No Get-TransportServer output in the case to see which DNS servers the transport uses.")
    d = ts["_data"]
    servers = d.get("ExternalDNSServers") or []
    if d.get("ExternalDNSAdapterEnabled") is not False or not servers:
        return ruled_out("Get-TransportServer: the transport uses the network adapter's DNS servers "
                         f"(ExternalDNSAdapterEnabled {d.get('ExternalDNSAdapterEnabled')}, "
                         f"ExternalDNSServers {servers or 'empty'}).", ts)
    used = {str(r["_data"].get("server_address")) for r in f.lookups if r["_data"].get("status") == "ok"}
    bad = [r for r in f.lookups if str(r["_data"].get("server_address")) in map(str, servers)
           and r["_data"].get("status") != "ok"]
    if bad:
        return confirmed(f"The transport asks {', '.join(map(str, servers))} (ExternalDNSAdapterEnabled false) "
                         "and nslookup against them fails.", ts, *bad[:2])
    if used and not used & set(map(str, servers)):
        return likely(f"The transport asks {', '.join(map(str, servers))} (ExternalDNSAdapterEnabled false), "
                      f"not the servers nslookup resolved with ({', '.join(sorted(used))}).", ts)
    return possible(f"The transport asks {', '.join(map(str, servers))}; no nslookup against them in the case.", ts)
