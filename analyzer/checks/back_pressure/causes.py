"""The causes of back pressure, one function each, in the order the blog
lists them ("Troubleshooting Back Pressure Issues"): disk space, memory,
antivirus, and "in most of the cases ... a very large message"; version
buckets high with nothing to explain them come last.

Every cause is judged on the episode still open at the end of the logs
(pressure now); when pressure returned to Normal each is ruled out with the
episodes that show it.
"""
from __future__ import annotations

from typing import Any

from ...findings import Evidence
from ..toolkit import CauseTable, Verdict, confirmed, likely, possible, ruled_out
from .facts import Episode, Facts, _line

causes = CauseTable()

_DISK = ("queue_disk", "queue_log_disk")
_MEMORY = ("private_bytes", "physical_memory")


def res_ev(res: dict[str, Any]) -> Evidence:
    """The event a resource line came from, quoting that line."""
    row = res["_row"]
    return Evidence.from_row(row, f"MSExchangeTransport {row['event_id']} "
                                  f"({row['_data'].get('pressure_from') or '?'} -> "
                                  f"{row['_data'].get('pressure_to') or '?'}): {res.get('text') or _line(res)}")


def _mb(n: Any) -> str:
    """A size as the blog would say it: MB, or KB below one."""
    v = float(n)
    return f"{v / 1048576:,.0f} MB" if v >= 1048576 else f"{v / 1024:,.0f} KB"


def _not_now(f: Facts, kinds: tuple[str, ...], what: str) -> Verdict | None:
    """Pressure is not on now: the ruled-out verdict naming the past
    episodes of this resource; None while pressure is on."""
    if f.current is not None:
        return None
    if not f.app_log:
        return possible(f"No Application log of {f.host} in the case: whether {what.lower()} came under "
                        "pressure cannot be told.")
    past = [ep for ep in f.episodes if any(k in ep.pressured for k in kinds)]
    if not f.episodes:
        return ruled_out(f"The Application log of {f.host} has no back pressure event (15004-15007): "
                         f"{what} never reached Medium.", *f.app_bounds)
    if past:
        ev = [res_ev(ep.pressured[k]) for ep in past for k in kinds if k in ep.pressured]
        last = past[-1]
        return ruled_out(f"Pressure on {what.lower()} ({last.describe()}) returned to Normal: "
                         "not a current cause.", *ev, last.end)
    return ruled_out(f"Pressure returned to Normal; {what.lower()} not among the resources under pressure "
                     f"in {len(f.episodes)} episode(s).", f.episodes[-1].end)


def _normal_lines(ep: Episode, kinds: tuple[str, ...]) -> list[Evidence]:
    return [res_ev(ep.normal[k]) for k in kinds if k in ep.normal]


@causes("queue-disk-full", "The queue database or its log volume is over its disk space threshold",
        remediation=lambda f: [])
def queue_disk_full(f: Facts) -> Verdict:
    """Blog reason 1, "running out of disk space": the queue database and
    disk space / logging disk space lines over their thresholds, or 15006."""
    done = _not_now(f, _DISK, "Queue disk space")
    if done:
        return done
    ep = f.current
    hit = [ep.pressured[k] for k in _DISK if k in ep.pressured]
    if hit or "disk" in ep.rejecting:
        worst = hit[0] if hit else {}
        vol = f.volume_of(worst.get("path") or f.queue_path())
        th = worst.get("thresholds") or {}
        fix = [s.format(volume=(vol["_data"].get("volume") if vol else str(worst.get("path", ""))[:2] or "the queue volume"),
                        path=worst.get("path") or "the queue folder",
                        value=f"{worst.get('value')}{worst.get('unit') or ''}",
                        high=f"{th.get('high')}%" if th.get("high") is not None else "its threshold")
               for s in f.kb["remediation"]["queue_disk"]]
        text = (f"The resource monitor put the queue disk under pressure: {'; '.join(_line(r) for r in hit)}."
                if hit else "MSExchangeTransport 15006: the service rejects mail because disk space is below the threshold.")
        v = confirmed(text, *[res_ev(r) for r in hit], *(r for r in ep.rows if int(r["event_id"]) == 15006), fix=fix)
        if vol is not None:
            d = vol["_data"]
            v.also(f"{d.get('volume')} has {_mb(d.get('free_bytes'))} free of {_mb(d.get('total_bytes'))} "
                   f"({d.get('percent_used')}% used).").cite(vol)
        return v
    normal = _normal_lines(ep, _DISK)
    if normal:
        return ruled_out("The pressure events show the queue database and log disks at Normal.", *normal)
    return possible("The pressure events of the current episode do not show the queue disk lines.")


@causes("memory-pressure", "EdgeTransport.exe private bytes or the physical memory load is over its threshold",
        remediation=lambda f: list(f.kb["remediation"]["memory"]))
def memory_pressure(f: Facts) -> Verdict:
    """Blog reason 2, "running out of memory": Private bytes (the
    EdgeTransport.exe process) or Physical memory load (all processes) over
    the threshold, or 15007."""
    done = _not_now(f, _MEMORY, "Memory")
    if done:
        return done
    ep = f.current
    hit = [ep.pressured[k] for k in _MEMORY if k in ep.pressured]
    mem = ep.normal.get("physical_memory")
    limit = (mem or {}).get("limit") or f.kb["defaults"]["physical_memory_limit"]
    if mem and isinstance(mem.get("value"), (int, float)) and mem["value"] >= limit:
        hit.append(mem)
    if hit or "memory" in ep.rejecting:
        text = "; ".join(_line(r) for r in hit) or "MSExchangeTransport 15007: rejecting submissions for memory"
        return confirmed(f"Memory is under pressure: {text}.", *[res_ev(r) for r in hit],
                         *(r for r in ep.rows if int(r["event_id"]) == 15007), f.edgetransport)
    normal = _normal_lines(ep, _MEMORY)
    if normal:
        return ruled_out("Private bytes and physical memory load are at Normal in the pressure events.", *normal)
    return possible("The pressure events of the current episode do not show the memory lines.")


def _buckets(f: Facts, why: str) -> tuple[Any, Any, Verdict | None]:
    """The open episode and its version buckets line, or the verdict that
    ends the question (no pressure now, version buckets at Normal)."""
    done = _not_now(f, ("version_buckets",), "Version buckets")
    if done:
        return None, None, done
    ep = f.current
    vb = ep.pressured.get("version_buckets")
    if vb is None:
        return ep, None, ruled_out(f"Version buckets are not among the resources under pressure ({why}).",
                                   *_normal_lines(ep, ("version_buckets",)))
    return ep, vb, None


def _large_fix(f: Facts) -> list[str]:
    m = f.large[-1] if f.large else {}
    words = {"sender": m.get("sender") or "the sender", "size": _mb(m["bytes"]) if m.get("bytes") else "?",
             "time": m["ts"].strftime("%Y-%m-%d %H:%M UTC") if m.get("ts") is not None else "?"}
    return [s.format(**words) for s in f.kb["remediation"]["large_message"]]


def _tracking_ev(m: dict[str, Any]) -> Evidence:
    return Evidence(path=str(m["path"]), locator=str(m["locator"]),
                    ts=m["ts"].isoformat() if m.get("ts") is not None else None,
                    excerpt=f"{m['event']} {m.get('sender')} -> {m.get('recipient')} {_mb(m['bytes'])} "
                            f"\"{m.get('subject') or ''}\" {m.get('message_id') or ''}")


@causes("large-message", "A very large message in the submission queue keeps version buckets high",
        remediation=_large_fix)
def large_message(f: Facts) -> Verdict:
    """Blog reason 5 and "most likely": a very large message gets into the
    submission queue; while it is processed, uncommitted transactions
    (version buckets) pile up and the transport disables submission."""
    ep, vb, done = _buckets(f, "a large message shows as uncommitted transactions")
    if done:
        return done
    mine = [m for m in f.large if m["_episode"] is ep]
    if mine:
        m = mine[-1]
        mins = (ep.start["ts"] - m["ts"]).total_seconds() / 60
        return likely(f"{_line(vb)}, and {mins:.0f} min before pressure rose the tracking log shows "
                      f"{m.get('sender')} sending a {_mb(m['bytes'])} message (\"{m.get('subject')}\" to "
                      f"{m.get('recipient')}, median message {_mb(f.median_bytes)}).",
                      _tracking_ev(m), res_ev(vb), ep.start)
    span = f.tracking_window()
    if span and span[0] <= ep.start["ts"] <= span[1] + _window(f):
        biggest = f.tracking.sort_values("bytes").iloc[-1].to_dict() if f.tracking["bytes"].notna().any() else None
        v = ruled_out(f"{_line(vb)}, but the tracking log of {f.host} covers the time before pressure rose "
                      f"and holds no message near the large-message size.", res_ev(vb))
        if biggest:
            v.also(f"The largest is {_mb(biggest['bytes'])}.").cite(_tracking_ev(biggest))
        return v
    return possible(f"{_line(vb)}; no message tracking log of {f.host} covers the hour before pressure rose "
                    "to look for the large message.", res_ev(vb))


def _window(f: Facts) -> Any:
    import pandas as pd
    return pd.Timedelta(minutes=f.kb["large_message"]["window_minutes"])


@causes("antivirus-scanning", "File-level antivirus scans the queue database folders",
        remediation=lambda f: [s.format(path="the Queue folder", product=", ".join(sorted({a["_product"] for a in f.antivirus})) or "the scanner")
                               for s in f.kb["remediation"]["antivirus"]])
def antivirus_scanning(f: Facts) -> Verdict:
    """Blog reason 3: "Antivirus software running on Exchange Server with
    incorrect configuration" — a scanner slowing the queue database's disk
    I/O holds transactions uncommitted. A running scanner is no proof that it
    scans the queue: at most possible."""
    done = _not_now(f, ("version_buckets",) + _DISK, "Version buckets and queue disk")
    if done:
        return done
    ep = f.current
    relevant = [ep.pressured[k] for k in ("version_buckets",) + _DISK if k in ep.pressured]
    if not relevant:
        return ruled_out("Neither version buckets nor the queue disks are under pressure.")
    if f.antivirus:
        names = ", ".join(sorted({f"{a['_data'].get('image')} ({a['_product']})" for a in f.antivirus}))
        return possible(f"{names} runs on {f.host}; if it scans the queue folders it slows the queue "
                        "database. Whether the folders are excluded is not in the case.",
                        *f.antivirus, res_ev(relevant[0]))
    if f.processes:
        return ruled_out(f"tasklist of {f.host} ({len(f.processes)} processes) shows no file-level antivirus "
                         "scanner known to the analyzer.", f.processes[0])
    return possible("No tasklist of the server to see whether an antivirus scanner runs.", res_ev(relevant[0]))


@causes("version-buckets", "Version buckets (uncommitted queue transactions) are high with nothing to explain them",
        remediation=lambda f: list(f.kb["remediation"]["version_buckets"]))
def version_buckets(f: Facts) -> Verdict:
    """Version buckets over the threshold when neither a large message nor
    disk pressure nor a scanner explains them: what to collect next."""
    ep, vb, done = _buckets(f, "nothing to explain")
    if done:
        return done
    why = []
    if any(m["_episode"] is ep for m in f.large):
        why.append("a large message just before pressure rose")
    if any(k in ep.pressured for k in _DISK):
        why.append("queue disk pressure")
    if why:
        return ruled_out(f"{_line(vb)}, explained by {' and '.join(why)}.", res_ev(vb))
    return likely(f"{_line(vb)} and the case shows no large message, disk pressure or memory pressure "
                  "that would explain them.", res_ev(vb))
