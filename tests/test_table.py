"""The normalized table: schema, validation, query helpers, registration."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pytest

from analyzer import sources, table
from analyzer.query import provider_aliases, select
from analyzer.sources.base import Source


def _rows():
    ts = datetime(2007, 3, 14, 2, 0, tzinfo=timezone.utc)
    return [
        {"ts": ts, "ts_source": "utc", "host": "EXCH01", "source": "evt", "kind": "event",
         "channel": "System", "provider": "DCOM", "event_id": 10000, "qualifiers": 49152,
         "level": "error", "data": {"strings": ["{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}"]},
         "path": "SysEvent.Evt", "locator": "record=1"},
        {"ts": ts, "ts_source": "utc", "host": "EXCH01", "source": "evtx", "kind": "event",
         "channel": "System", "provider": "Microsoft-Windows-DistributedCOM", "event_id": 10016,
         "level": "error", "data": {"param1": "local"}, "path": "System.evtx", "locator": "record=9"},
        {"ts": ts, "ts_source": "utc", "source": "evtx", "kind": "event", "channel": "MOM",
         "provider": "Exchange MOM", "event_id": 10000, "level": "error",
         "message": "Failed to publish", "path": "mom.txt", "locator": "line=3"},
        {"source": "hive", "kind": "registry_value", "key": "HKLM\\SOFTWARE\\Microsoft\\ExMPLS",
         "value_name": "DATA0", "value_type": "REG_BINARY", "value": "0602", "path": "SOFTWARE",
         "locator": "key=HKLM\\SOFTWARE\\Microsoft\\ExMPLS; value=DATA0"},
    ]


def test_rows_to_frame_is_valid_and_arrow_backed() -> None:
    df = table.rows_to_frame(_rows())
    table.validate(df)
    assert list(df.columns) == list(table.COLUMNS)
    assert all(isinstance(t, pd.ArrowDtype) for t in df.dtypes)
    assert str(df.loc[0, "ts"]) == "2007-03-14 02:00:00+00:00"
    assert table.row_data(df.loc[0, "data"]) == {"strings": ["{94A6DCD0-B6F5-40E8-8C9D-CEE2C7796380}"]}
    table.validate(table.empty_frame())


def test_unknown_column_refused() -> None:
    with pytest.raises(KeyError, match="evnt_id"):
        table.rows_to_frame([{"evnt_id": 1}])


@pytest.mark.parametrize("mutate,message", [
    (lambda df: df.drop(columns=["locator"]), "columns"),
    (lambda df: df.assign(level=pd.Series(["fatal"] * len(df), dtype="string[pyarrow]")), "dtype"),
])
def test_validator_catches_schema_drift(mutate, message) -> None:
    with pytest.raises(table.TableError, match=message):
        table.validate(mutate(table.rows_to_frame(_rows())))


def test_validator_catches_bad_values() -> None:
    rows = _rows()
    rows[0]["level"] = "fatal"
    rows[1]["locator"] = None
    rows[2]["ts_source"] = None
    with pytest.raises(table.TableError) as exc:
        table.validate(table.rows_to_frame(rows))
    text = str(exc.value)
    assert "fatal" in text and "locator" in text and "ts_source" in text


def test_concat_unifies_dictionaries() -> None:
    a = table.rows_to_frame(_rows()[:2])
    b = table.rows_to_frame(_rows()[2:])
    df = table.concat_frames([a, b])
    table.validate(df)
    assert len(df) == 4


def test_select_keys_on_provider_and_id_with_aliases() -> None:
    df = table.rows_to_frame(_rows())
    assert "microsoft-windows-distributedcom" in provider_aliases("DCOM")
    dcom = select(df, provider="DCOM")
    assert set(dcom["event_id"]) == {10000, 10016}
    # DCOM 10000 is not Exchange MOM 10000.
    assert list(select(df, provider="DCOM", event_id=10000)["locator"]) == ["record=1"]
    assert list(select(df, provider="Exchange MOM", event_id=10000)["locator"]) == ["line=3"]
    assert len(select(df, contains="94a6dcd0")) == 1
    assert len(df.exa.events()) == 3
    assert len(df.exa.rows(kind="registry_value")) == 1


def test_duplicate_source_name_refused() -> None:
    class Dup(Source):
        name = "dup-test-source"
        kind = "x"

        def sniff(self, head, name):
            return 0

        def parse(self, ctx):
            return []

    sources.register(Dup)
    with pytest.raises(ValueError, match="already registered"):
        sources.register(Dup)
    names = [s.name for s in sources.registered()]
    assert names.count("dup-test-source") == 1


def test_source_registration_order_is_deterministic() -> None:
    """Modules are imported in name order, so two interpreters with different
    hash seeds register the sources in the same order."""
    import os
    import subprocess
    import sys

    code = "from analyzer import sources; print(','.join(s.name for s in sources.registered()))"
    orders = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
              for seed in ("1", "2", "3")}
    assert len(orders) == 1
    assert len(orders.pop().split(",")) > 10


def test_conform_arrow_fills_and_orders() -> None:
    t = pa.table({"kind": ["event"], "source": ["evtx"], "path": ["a"], "locator": ["record=1"],
                  "event_id": pa.array([7], pa.int64())})
    out = table.conform_arrow(t)
    assert out.schema == table.ARROW_SCHEMA
    table.validate(table.arrow_to_frame(out))


def test_parquet_round_trip(tmp_path) -> None:
    df = table.rows_to_frame(_rows())
    table.write_parquet(df, tmp_path / "t.parquet")
    back = table.read_parquet(tmp_path / "t.parquet")
    table.validate(back)
    pd.testing.assert_frame_equal(back, df)


def test_time_bounds_accept_naive_and_aware_values() -> None:
    from datetime import timedelta, timezone

    df = table.rows_to_frame(_rows())
    aware = datetime(2007, 3, 14, 3, 0, tzinfo=timezone(timedelta(hours=1)))  # = 02:00 UTC
    assert len(select(df, since=aware, kind="event")) == 3
    assert len(select(df, until=pd.Timestamp("2007-03-14 01:59", tz="UTC"), kind="event")) == 0
    assert len(select(df, since="2007-03-14 02:00", kind="event")) == 3


def test_endpoints_of_a_table_without_endpoints_has_endpoint_columns() -> None:
    from analyzer.query import ENDPOINT_COLUMNS, endpoints

    assert list(endpoints(table.rows_to_frame(_rows())).columns) == ENDPOINT_COLUMNS


def test_text_masks_of_a_large_table_are_kept_and_never_stale() -> None:
    """``query.text_in`` keeps the masks of a large table's columns: the
    same question is answered once, the answer cannot be changed by a
    caller, and another table (even of the same values) is asked anew."""
    import gc

    import numpy as np

    from analyzer import query
    from analyzer.query import _MASKS, text_in

    n = _MASKS.MIN_ROWS + 10
    kinds = np.array(["event", "process", "EVENT", None], dtype=object)[np.arange(n) % 4]
    col = pd.Series(pd.arrays.ArrowExtensionArray(pa.array(kinds).dictionary_encode()))
    first = text_in(col, {"event"})
    assert first.tolist() == [k is not None and k.lower() == "event" for k in kinds]
    assert text_in(col, ["EVENT"]) is first
    with pytest.raises(ValueError):
        first[0] = False
    other = pd.Series(pd.arrays.ArrowExtensionArray(pa.array(kinds[::-1]).dictionary_encode()))
    assert text_in(other, {"event"}).tolist() == first.tolist()[::-1]
    # a mask kept for a column that is gone never answers for a new column
    # that happens to get the same id (planted here: ids are reused by chance)
    import weakref
    gone = pa.chunked_array([pa.array(["event"]).dictionary_encode()])
    fresh = pd.Series(pd.arrays.ArrowExtensionArray(pa.array(["process"] * n).dictionary_encode()))
    key = (id(fresh.array.__arrow_array__()), query._ci_map, frozenset({"event"}))
    _MASKS._entries[key] = (weakref.ref(gone), np.ones(n, dtype=bool))
    del gone, col
    gc.collect()
    assert not text_in(fresh, {"event"}).any()


def test_event_id_masks_of_a_large_table_are_kept_apart_from_text_masks() -> None:
    """``select_mask(event_id=...)`` keeps its answer like the text masks,
    under its own test: the same values asked of one column as event ids
    and as text are two questions."""
    import numpy as np

    from analyzer import query

    n = query._MASKS.MIN_ROWS + 10
    ids = np.arange(n, dtype=np.int32) % 7
    df = pd.DataFrame({"event_id": pd.Series(pd.arrays.ArrowExtensionArray(pa.array(ids)))})
    want = np.isin(ids, [3, 5])
    assert query.select_mask(df, event_id=[5, 3]).tolist() == want.tolist()
    kept = query._MASKS.mask(df["event_id"], frozenset({3, 5}), query._numbers_in)
    assert kept.tolist() == want.tolist()
    assert query._MASKS.mask(df["event_id"], frozenset({5, 3}), query._numbers_in) is kept
    assert query.select_mask(df, event_id=4).tolist() == (ids == 4).tolist()


def test_one_array_keeps_a_single_chunk_without_copying():
    import pyarrow as pa

    from analyzer.table import one_array
    a = pa.array(["x" * 100, None, "y"])
    one = one_array(pa.chunked_array([a]))
    assert one.equals(a) and one.buffers()[2].address == a.buffers()[2].address
    assert one_array(a) is a
    two = one_array(pa.chunked_array([a, pa.array(["z"])]))
    assert two.to_pylist() == ["x" * 100, None, "y", "z"]
    assert one_array(pa.chunked_array([], pa.string())).to_pylist() == []
