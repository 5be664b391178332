"""Message tracking statistics: the "Hub server stats" an administrator
pulls with ``Get-MessageTrackingLog -Server ... -EventId SEND | Measure-Object``,
computed offline from the tracking rows of the case table.

Exchange 2007/2010 name their events (``RECEIVE``, ``SEND``, ``DELIVER``,
``FAIL``, ``DEFER``, ``DSN``); Exchange 2000/2003 number them (1019 submitted
by SMTP, 1028 delivered to the store, 1031 sent, 1030 NDR...). Both map to
the same statistics through ``knowledge/tracking_stats.yaml``, so a 2003 log
and a 2007 log are counted alike.

``Measure-Object`` counts log rows; a message is logged once per recipient
event and, for 2003 SMTP submissions, sometimes more than once. These
functions count **messages**: distinct message ids (per server, period and
statistic); a row without a message id counts once. The server is the row's
case host, the machine whose log it is.

Nothing here reads a file: only the table.
"""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from .knowledge import load as load_knowledge
from .table import of_kind

#: ``by`` values of :func:`message_stats`: what one row of the result is.
GROUPINGS = ("server", "day", "hour", "sender", "recipient")


def _knowledge() -> dict[str, Any]:
    return load_knowledge("tracking_stats")


def statistics() -> list[str]:
    """The statistic columns, in report order."""
    return list(_knowledge()["statistics"])


def _category(data: dict[str, Any]) -> str | None:
    k = _knowledge()
    event = data.get("event")
    if isinstance(event, str) and event.upper() in k["events_2007"]:
        return k["events_2007"][event.upper()]
    eid = data.get("event_id")
    if isinstance(eid, int) and eid in k["events_2003"]:
        return k["events_2003"][eid]
    return None


def _size(data: dict[str, Any]) -> int | None:
    raw = data.get("total_bytes")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdecimal():
        return int(raw.strip())
    return None


def tracking_events(table: pd.DataFrame, start: Any = None, end: Any = None) -> pd.DataFrame:
    """One row per (tracking row, recipient) that counts in a statistic:
    ``ts``, ``server``, ``statistic``, ``event``, ``sender``, ``recipient``,
    ``bytes``, ``message_id``, ``subject``, ``path``, ``locator``.

    ``start``/``end`` bound ``ts`` (UTC; naive values are taken as UTC);
    rows without a time are kept only when no bound is given."""
    rows = of_kind(table, "tracking_entry")
    if start is not None or end is not None:
        ts = rows["ts"]
        keep = ts.notna()
        if start is not None:
            keep &= ts >= _utc(start)
        if end is not None:
            keep &= ts < _utc(end)
        rows = rows[keep]
    out: list[dict[str, Any]] = []
    for rec in rows[["ts", "host", "data", "path", "locator"]].itertuples(index=False):
        data = json.loads(rec.data) if isinstance(rec.data, str) else {}
        stat = _category(data)
        if stat is None:
            continue
        recipients = data.get("recipients") or [None]
        for rcpt in recipients:
            out.append({"ts": rec.ts, "server": rec.host, "statistic": stat,
                        "event": data.get("event") or data.get("event_id"),
                        "sender": (data.get("sender") or "").lower() or None,
                        "recipient": (rcpt or "").lower() or None, "bytes": _size(data),
                        "message_id": data.get("message_id"), "subject": data.get("subject"),
                        "path": rec.path, "locator": rec.locator})
    frame = pd.DataFrame(out, columns=["ts", "server", "statistic", "event", "sender", "recipient",
                                       "bytes", "message_id", "subject", "path", "locator"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _message_key(events: pd.DataFrame) -> pd.Series:
    """A message's identity: its message id, or the row itself when the log
    has none (5.5-era and pasted rows)."""
    fallback = events["path"].astype(str) + "#" + events["locator"].astype(str)
    return events["message_id"].fillna(fallback)


def message_stats(table: pd.DataFrame, by: str = "server", start: Any = None, end: Any = None,
                  ) -> pd.DataFrame:
    """Messages per statistic (received, sent, delivered, failed, deferred,
    dsn), one row per ``by`` group: ``server``; ``day`` or ``hour`` (per
    server, UTC); ``sender`` or ``recipient`` (lower-cased addresses, most
    active first). Also ``bytes``: the summed size of the distinct messages
    received."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}, not {by!r}")
    events = tracking_events(table, start, end)
    keys = {"server": ["server"], "day": ["server", "period"], "hour": ["server", "period"],
            "sender": ["sender"], "recipient": ["recipient"]}[by]
    cols = keys + statistics() + ["bytes"]
    if events.empty:
        return pd.DataFrame(columns=cols)
    if by in ("day", "hour"):
        events = events[events["ts"].notna()].copy()
        events["period"] = events["ts"].dt.floor("D" if by == "day" else "h")
    events = events.assign(message=_message_key(events))
    events = events.dropna(subset=keys)
    counts = (events.drop_duplicates(keys + ["statistic", "message"])
              .groupby(keys + ["statistic"]).size().unstack("statistic", fill_value=0))
    for stat in statistics():
        if stat not in counts:
            counts[stat] = 0
    received = events[events["statistic"] == "received"].drop_duplicates(keys + ["message"])
    counts["bytes"] = received.groupby(keys)["bytes"].sum(min_count=1).reindex(counts.index)
    result = counts.reset_index()[cols]
    result[statistics()] = result[statistics()].astype("int64")
    if by in ("sender", "recipient"):
        result = result.assign(_total=result[statistics()].sum(axis=1))
        result = result.sort_values(["_total", by], ascending=[False, True]).drop(columns="_total")
    return result.reset_index(drop=True)


def top(table: pd.DataFrame, who: str = "sender", n: int = 10, statistic: str | None = None,
        start: Any = None, end: Any = None) -> pd.DataFrame:
    """The ``n`` most active senders or recipients: ``who``, ``messages``
    (distinct messages, over ``statistic`` or every statistic) and
    ``bytes``."""
    if who not in ("sender", "recipient"):
        raise ValueError("who must be 'sender' or 'recipient'")
    events = tracking_events(table, start, end)
    if statistic is not None:
        events = events[events["statistic"] == statistic]
    events = events.dropna(subset=[who])
    if events.empty:
        return pd.DataFrame(columns=[who, "messages", "bytes"])
    events = events.assign(message=_message_key(events)).drop_duplicates([who, "message"])
    grouped = events.groupby(who).agg(messages=("message", "size"), bytes=("bytes", "sum"))
    return (grouped.reset_index().sort_values(["messages", who], ascending=[False, True])
            .head(n).reset_index(drop=True))


def summary(table: pd.DataFrame) -> dict[str, Any] | None:
    """The statistics a report carries: per server and per day, the top
    senders and recipients, and the period covered; None without tracking
    rows that count."""
    events = tracking_events(table)
    if events.empty:
        return None

    def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
        frame = frame.copy()
        for col in frame.columns:
            if pd.api.types.is_datetime64_any_dtype(frame[col]):
                frame[col] = frame[col].map(lambda t: t.isoformat() if pd.notna(t) else None)
        frame = frame.astype(object).where(frame.notna(), None)
        return [{k: (int(v) if hasattr(v, "item") and not isinstance(v, str) else v) for k, v in r.items()}
                for r in frame.to_dict("records")]

    times = events["ts"].dropna()
    return {
        "first": times.min().isoformat() if not times.empty else None,
        "last": times.max().isoformat() if not times.empty else None,
        "statistics": statistics(),
        "by_server": records(message_stats(table, "server")),
        "by_day": records(message_stats(table, "day")),
        "top_senders": records(top(table, "sender", 10)),
        "top_recipients": records(top(table, "recipient", 10)),
    }
