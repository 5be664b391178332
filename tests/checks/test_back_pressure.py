"""transport-back-pressure: each cause true and false on hand-built rows
(15004/15005 with the structured resource fields), applicability per host,
and the samples end to end (tests/test_samples.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from analyzer import checks

from .exrows import T0, case, chatter, event, exchange2007, process, ps_object, tracked, volume

CHECK = checks.get("transport-back-pressure")
HUB = "HUB01"
QUEUE = "C:\\Program Files\\Microsoft\\Exchange Server\\TransportRoles\\data\\Queue"


def res(name: str, value: float, level: str | None, th=None, path=None, unit=None, limit=None) -> dict:
    r = {"resource": name, "value": value, "unit": unit, "level": level, "path": path,
         "thresholds": dict(zip(("normal", "medium", "high"), th)) if th else None}
    if limit is not None:
        r["limit"] = limit
    return r


def lines(buckets=12, b_level="Normal", db=41, db_level="Normal", db_path=QUEUE, private=18, p_level="Normal",
          memory=61) -> list[dict]:
    return [res("Version buckets", buckets, b_level, (80, 120, 200)),
            res("Queue database and disk space", db, db_level, (95, 97, 99), f"{db_path}\\mail.que", "%"),
            res("Queue database logging disk space", max(db - 2, 1), "Normal", (95, 97, 99), f"{db_path}\\", "%"),
            res("Private bytes", private, p_level, (71, 73, 75), unit="%"),
            res("Physical memory load", memory, None, unit="%", limit=94)]


def bp(eid: int, ts, frm: str, to: str, resources: list[dict], n: int) -> dict:
    change = "increased" if eid == 15004 else "decreased"
    return event(HUB, "MSExchangeTransport", eid, ts, n=n,
                 data={"pressure_from": frm, "pressure_to": to, "pressure": to, "pressure_change": change,
                       "resources": resources,
                       "disabled_components": ["Inbound mail submission from the Internet"] if eid == 15004 else []})


def traffic(n: int = 20, start=None) -> list[dict]:
    start = start or T0 - timedelta(hours=3)
    return [tracked(HUB, start + timedelta(minutes=7 * i), "RECEIVE", f"u{i % 4}@contoso.com", "x@contoso.com",
                    18_000 + 100 * i, f"Status {i}", f"<{i}@contoso.com>", 10 + i) for i in range(n)]


def hub(*extra: dict, tasks=("EdgeTransport.exe",), roles=("HubTransportRole",)) -> list[dict]:
    rows = exchange2007(HUB, roles) + chatter(HUB)
    rows += [process(t, 2000 + i, 5 + i) for i, t in enumerate(tasks)]
    return rows + list(extra)


def run(rows: list[dict]):
    (f,) = [x for x in CHECK.run(case(rows)) if x.host == HUB]
    return f, {c.id: c for c in f.causes}


def test_large_message_before_version_buckets_high():
    big = tracked(HUB, T0 - timedelta(minutes=5), "RECEIVE", "frank@contoso.com", "partners@fabrikam.com",
                  155_189_248, "Site survey photos (all)", "<7F3A0C@MBX01>", 99)
    f, c = run(hub(*traffic(), big, volume("C", 61_203_456_000, 104_726_818_816),
                   bp(15004, T0, "Normal", "Medium", lines(140, "Medium"), 1),
                   bp(15004, T0 + timedelta(minutes=3), "Medium", "High", lines(200, "High"), 2)))
    assert f.status == "problem" and f.severity == "critical"
    assert f.causes[0].id == "large-message" and c["large-message"].verdict == "likely"
    assert "frank@contoso.com" in c["large-message"].explanation and "148 MB" in c["large-message"].explanation
    assert any(e.locator == "line=99" for e in c["large-message"].evidence)
    assert c["version-buckets"].verdict == "ruled_out"          # explained by the message
    assert c["queue-disk-full"].verdict == "ruled_out" and c["memory-pressure"].verdict == "ruled_out"
    assert c["antivirus-scanning"].verdict == "ruled_out"       # tasklist without a scanner
    assert any("disable it" in r for r in f.remediation)


def test_version_buckets_without_explanation_asks_for_counters():
    f, c = run(hub(*traffic(), bp(15004, T0, "Normal", "Medium", lines(140, "Medium"), 1)))
    assert f.status == "problem" and f.severity == "error"
    assert c["version-buckets"].verdict == "likely" and c["large-message"].verdict == "ruled_out"
    assert any("counters" in x for x in f.collect)


def test_large_message_possible_without_tracking():
    f, c = run(hub(bp(15004, T0, "Normal", "Medium", lines(140, "Medium"), 1)))
    assert c["large-message"].verdict == "possible"
    assert any("tracking" in x for x in f.collect)


def test_queue_disk_full_cites_the_volume():
    f, c = run(hub(volume("D", 212_336_640, 21_467_942_912),
                   bp(15004, T0, "Normal", "High", lines(db=99, db_level="High", db_path="D:\\Queue"), 1)))
    assert f.causes[0].id == "queue-disk-full" and c["queue-disk-full"].verdict == "confirmed"
    assert "D:\\Queue" in c["queue-disk-full"].explanation and "202 MB free" in c["queue-disk-full"].explanation
    assert any(e.path.endswith("diskfree-D.txt") for e in c["queue-disk-full"].evidence)
    assert c["large-message"].verdict == "ruled_out" and c["version-buckets"].verdict == "ruled_out"


def test_memory_pressure_true_and_false():
    f, c = run(hub(bp(15004, T0, "Normal", "High", lines(private=76, p_level="High"), 1)))
    assert c["memory-pressure"].verdict == "confirmed" and f.causes[0].id == "memory-pressure"
    f, c = run(hub(bp(15004, T0, "Normal", "Medium", lines(140, "Medium"), 1)))
    assert c["memory-pressure"].verdict == "ruled_out"
    assert "Normal" in c["memory-pressure"].explanation


def test_antivirus_possible_when_a_scanner_runs():
    f, c = run(hub(bp(15004, T0, "Normal", "Medium", lines(140, "Medium"), 1),
                   tasks=("EdgeTransport.exe", "mcshield.exe")))
    assert c["antivirus-scanning"].verdict == "possible"
    assert "McAfee" in c["antivirus-scanning"].explanation


def test_returned_to_normal_is_ok_with_the_episode():
    f, c = run(hub(*traffic(), bp(15004, T0, "Normal", "Medium", lines(131, "Medium"), 1),
                   bp(15005, T0 + timedelta(minutes=25), "Medium", "Normal", lines(22), 2)))
    assert f.status == "ok"
    assert all(x.verdict == "ruled_out" for x in f.causes)
    assert "25 min" in f.summary and "Version buckets" in f.summary
    assert f.evidence and f.facts["episodes"][0]["minutes"] == 25


def test_no_pressure_events_is_ok_citing_the_log():
    f, _ = run(hub(*traffic()))
    assert f.status == "ok" and f.evidence
    assert "no back pressure event" in f.summary


def test_no_application_log_is_inconclusive():
    rows = [r for r in hub(*traffic()) if r["kind"] != "event"]
    f, _ = run(rows)
    assert f.status == "inconclusive" and any("Application" in x for x in f.collect)
    assert all(x.verdict == "possible" for x in f.causes)


def test_mailbox_server_is_not_applicable():
    rows = exchange2007(HUB, ("MailboxRole", "ClientAccessRole")) + chatter(HUB)
    (f,) = CHECK.run(case(rows))
    assert f.status == "not_applicable" and "not a Hub or Edge Transport" in f.summary


def scm_7036(service: str, n: int) -> dict:
    return event(HUB, "Service Control Manager", 7036, T0 + timedelta(minutes=n), level="information",
                 channel="System", n=500 + n, data={"param1": service, "param2": "running"},
                 message=f"The {service} service entered the running state.")


def test_transport_log_search_service_does_not_make_a_transport_server():
    """A Mailbox server runs "Microsoft Exchange Transport Log Search": that
    service name starts with the Transport service's but is another service."""
    rows = chatter(HUB) + [scm_7036("Microsoft Exchange Transport Log Search", i) for i in range(300)]
    (f,) = CHECK.run(case(rows))
    assert f.status == "not_applicable" and "no Exchange 2007/2010 Hub or Edge Transport evidence" in f.summary


def test_transport_service_in_the_system_log_makes_a_transport_server():
    from analyzer.checks.toolkit import Host
    from analyzer.checks.toolkit.roles import exchange_roles
    rows = chatter(HUB) + [scm_7036("Microsoft Exchange Transport Log Search", i) for i in range(300)]
    rows.append(scm_7036("Microsoft Exchange Transport", 400))
    c = case(rows)
    (part,) = c.per_host()
    roles = exchange_roles(Host(c, part))
    assert roles.has("transport") is True and roles.has("mailbox") is None
    assert roles.why("transport") == "Service Control Manager logs the Microsoft Exchange Transport"
    assert roles.evidence["transport"][0].locator == "record=900"
    f, _ = run(rows)
    assert f.status != "not_applicable"


@pytest.mark.parametrize("data, message", [
    ({"strings": ["Microsoft Exchange Transport", "running"]}, None),           # an .evt row
    ({}, "The Microsoft Exchange\r\n   Transport service entered the running state."),  # wrapped
])
def test_transport_service_named_in_evt_strings_or_a_wrapped_message(data, message) -> None:
    from analyzer.checks.toolkit import Host
    from analyzer.checks.toolkit.roles import exchange_roles
    row = event(HUB, "Service Control Manager", 7036, T0, level="information", channel="System", n=77,
                data=data, message=message)
    c = case(chatter(HUB) + [row])
    (part,) = c.per_host()
    roles = exchange_roles(Host(c, part))
    assert roles.has("transport") is True
    assert roles.evidence["transport"][0].locator == "record=77"


def test_pressure_events_alone_make_a_transport_server():
    rows = chatter(HUB) + [bp(15004, T0, "Normal", "Medium", lines(140, "Medium"), 1)]
    f, c = run(rows)
    assert f.status in ("problem", "inconclusive")
    assert c["version-buckets"].verdict in ("likely", "possible")


def test_exchange_2013_is_not_applicable():
    server = ps_object("exchange_server", {"Name": HUB, "AdminDisplayVersion": "Version 15.0 (Build 1497.2)",
                                           "ServerRole": "Mailbox, ClientAccess"}, HUB, 3, "Output/server.txt")
    rows = chatter(HUB) + [process("EdgeTransport.exe", 2812, 4), server]
    (f,) = CHECK.run(case(rows))
    assert f.status == "not_applicable" and "2013 or later" in f.summary


def test_unreadable_pressure_level_is_inconclusive():
    unread = event(HUB, "MSExchangeTransport", 15004, T0, n=3, data={"fields_unread": "back_pressure"},
                   message="Der Ressourcendruck wurde von Normal auf Hoch erhöht.")
    f, _ = run(hub(unread))
    assert f.status == "inconclusive" and "could not be read" in f.summary
    assert any(".evtx" in x for x in f.collect)


def config(line: int, key: str, value: str) -> dict:
    return dict(kind="config", source="transport-config", path="Config/EdgeTransport.exe.config",
                locator=f"line={line}", value_name=key, value=value,
                data={"section": "appSettings", "action": "add", "key": key, "value": value, "known": True,
                      "application": "EdgeTransport"})


def test_config_monitoring_off_and_changed_thresholds_are_reported():
    f, _ = run(hub(*traffic(), config(9, "EnableResourceMonitoring", "false"),
                   config(10, "VersionBucketsHighThreshold", "400")))
    assert f.status == "ok"
    assert "EnableResourceMonitoring false" in f.summary and "VersionBucketsHighThreshold=400" in f.summary
    assert {"line=9", "line=10"} <= {e.locator for e in f.evidence}
    assert f.facts["resource_monitoring"] is False


def test_config_queue_path_finds_the_volume():
    disk = lines(db=99, db_level="High", db_path="D:\\Queue")
    disk[1].pop("path")                      # a wording without the path in the line
    f, c = run(hub(config(7, "QueueDatabasePath", "D:\\Queue"), volume("D", 212_336_640, 21_467_942_912),
                   bp(15004, T0, "Normal", "High", disk, 1)))
    assert c["queue-disk-full"].verdict == "confirmed" and "D: has 202 MB free" in c["queue-disk-full"].explanation


def test_exchange_2010_15006_with_the_sp1_wording():
    """Exchange 2010 SP1+: "Queue database logging path" at High in a 15006
    (rejecting for disk space) whose level is the event's own."""
    log = res("Queue database logging path", 96, "High", (92, 94, 96),
              "C:\\Program Files\\Microsoft\\Exchange Server\\V14\\TransportRoles\\data\\Queue\\", "%")
    ev = event(HUB, "MSExchangeTransport", 15006, T0, n=4, level="error",
               data={"resources": [log, res("Version buckets", 0, "Normal", (80, 120, 200))],
                     "disabled_components": ["Inbound mail submission from the Internet"]})
    f, c = run(hub(ev, volume("C", 3_000_000_000, 75_000_000_000)))
    assert f.status == "problem" and f.severity == "critical"
    assert c["queue-disk-full"].verdict == "confirmed" and "logging path" in c["queue-disk-full"].explanation
    assert c["version-buckets"].verdict == "ruled_out"
