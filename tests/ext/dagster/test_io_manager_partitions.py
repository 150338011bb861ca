"""MetaxyIOManager and Dagster partitions: static, time-window, multi-dimensional, mappings, ranges (G11)."""

import datetime as dt
from typing import Any

import dagster as dg
import polars as pl
import pytest
from mxd_helpers import materializations

import metaxy as mx
import metaxy.ext.dagster as mxd

STATIC = dg.StaticPartitionsDefinition(["a", "b", "c"])
DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01")
MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2024-01-01", end_date="2024-02-01")
EVENTS = dg.AssetKey(["part", "events"])
ROWS_PER_STATIC = {"a": 3, "b": 2, "c": 4}


@pytest.fixture
def events(graph: mx.FeatureGraph) -> type[mx.BaseFeature]:
    class Events(mx.BaseFeature, spec=mx.FeatureSpec(key="part/events", id_columns=["id"])):
        id: str
        part: str
        day: dt.date
        ts: dt.datetime
        region: str

    return Events


def _rows(part: str, n: int, *, day: str = "2024-01-01", region: str = "us") -> pl.DataFrame:
    ids = [f"{part}_{day}_{region}_{i}" for i in range(n)]
    when = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC) + dt.timedelta(hours=12)
    return pl.DataFrame(
        {
            "id": ids,
            "part": [part] * n,
            "day": [dt.date.fromisoformat(day)] * n,
            "ts": [when] * n,
            "region": [region] * n,
            "metaxy_provenance_by_field": [{"default": i} for i in ids],
        }
    )


def _producer(partitions_def: dg.PartitionsDefinition, partition_by: Any, make: Any, **kwargs: Any) -> Any:
    @mxd.metaxify
    @dg.asset(
        metadata={"metaxy/feature": "part/events", "partition_by": partition_by},
        partitions_def=partitions_def,
        **kwargs,
    )
    def events_asset(context: dg.AssetExecutionContext) -> mxd.MetaxyOutput:
        return pl.concat([make(key) for key in context.partition_keys])

    return events_asset


def _reader(name: str, **asset_kwargs: Any) -> Any:
    """A regular asset recording which event ids its input held."""

    @dg.asset(name=name, ins={"events": dg.AssetIn(key=EVENTS, **asset_kwargs.pop("in_kwargs", {}))}, **asset_kwargs)
    def reader(events: Any) -> list[str]:
        return sorted(events.collect()["id"].to_list())

    return reader


def _counts(instance: dg.DagsterInstance) -> list[tuple[Any, ...]]:
    return [
        (
            m.partition,
            m.metadata["dagster/row_count"].value,
            getattr(m.metadata.get("dagster/partition_row_count"), "value", None),
        )
        for m in materializations(instance, EVENTS)
    ]


def test_static_partitions_counts_and_identity_reads(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    producer = _producer(STATIC, "part", lambda key: _rows(key, ROWS_PER_STATIC[key]))
    reader = _reader("same_partition", partitions_def=STATIC, io_manager_key="memory")
    run_resources = {**resources, "memory": dg.InMemoryIOManager()}
    for key in ("a", "b", "c"):
        dg.materialize([producer], resources=run_resources, instance=instance, partition_key=key)
    assert _counts(instance) == [("a", 3, 3), ("b", 5, 2), ("c", 9, 4)]
    result = dg.materialize(
        [producer, reader], resources=run_resources, instance=instance, partition_key="b", selection=[reader.key]
    )
    assert result.output_for_node("same_partition") == [f"b_2024-01-01_us_{i}" for i in range(2)]


def test_partition_mappings(events: Any, resources: dict[str, Any], instance: dg.DagsterInstance) -> None:
    producer = _producer(STATIC, "part", lambda key: _rows(key, ROWS_PER_STATIC[key]))
    run_resources = {**resources, "memory": dg.InMemoryIOManager()}
    for key in ("a", "b", "c"):
        dg.materialize([producer], resources=run_resources, instance=instance, partition_key=key)
    everything = _reader(
        "all_of_it", io_manager_key="memory", in_kwargs={"partition_mapping": dg.AllPartitionMapping()}
    )
    specific = _reader(
        "only_a_and_c",
        io_manager_key="memory",
        in_kwargs={"partition_mapping": dg.SpecificPartitionsPartitionMapping(["a", "c"])},
    )
    result = dg.materialize(
        [producer, everything, specific],
        resources=run_resources,
        instance=instance,
        selection=[everything.key, specific.key],
    )
    assert len(result.output_for_node("all_of_it")) == 9
    assert {i.split("_")[0] for i in result.output_for_node("only_a_and_c")} == {"a", "c"}
    assert len(result.output_for_node("only_a_and_c")) == 7


def test_unpartitioned_upstream_read_by_a_partitioned_asset(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    @mxd.metaxify
    @dg.asset(metadata={"metaxy/feature": "part/events"})
    def events_asset() -> mxd.MetaxyOutput:
        return pl.concat([_rows("a", 2), _rows("b", 2)])

    reader = _reader(
        "partitioned_reader",
        partitions_def=STATIC,
        io_manager_key="memory",
        in_kwargs={"partition_mapping": dg.AllPartitionMapping()},
    )
    result = dg.materialize(
        [events_asset, reader],
        resources={**resources, "memory": dg.InMemoryIOManager()},
        instance=instance,
        partition_key="a",
    )
    assert len(result.output_for_node("partitioned_reader")) == 4


@pytest.mark.parametrize("column", ["day", "ts", "part"])
def test_daily_partitions_on_date_datetime_and_string_columns(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance, column: str
) -> None:
    """A Date column, a UTC Datetime column or a string column holding daily partition keys."""
    producer = _producer(DAILY, column, lambda key: _rows(key, int(key[-1]), day=key))
    reader = _reader("daily_reader", partitions_def=DAILY, io_manager_key="memory")
    run_resources = {**resources, "memory": dg.InMemoryIOManager()}
    for key in ("2024-01-01", "2024-01-02", "2024-01-03"):
        dg.materialize([producer], resources=run_resources, instance=instance, partition_key=key)
    assert _counts(instance) == [("2024-01-01", 1, 1), ("2024-01-02", 3, 2), ("2024-01-03", 6, 3)]
    result = dg.materialize(
        [producer, reader],
        resources=run_resources,
        instance=instance,
        partition_key="2024-01-02",
        selection=[reader.key],
    )
    assert result.output_for_node("daily_reader") == [f"2024-01-02_2024-01-02_us_{i}" for i in range(2)]


def test_time_window_mapping_to_a_coarser_partition(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance
) -> None:
    """A monthly reader of daily partitions gets the month's days (a range of time windows)."""
    producer = _producer(DAILY, "day", lambda key: _rows(key, 1, day=key))
    run_resources = {**resources, "memory": dg.InMemoryIOManager()}
    for key in ("2024-01-01", "2024-01-04"):
        dg.materialize([producer], resources=run_resources, instance=instance, partition_key=key)
    reader = _reader("monthly_reader", partitions_def=MONTHLY, io_manager_key="memory")
    result = dg.materialize(
        [producer, reader],
        resources=run_resources,
        instance=instance,
        partition_key="2024-01-01",
        selection=[reader.key],
    )
    assert len(result.output_for_node("monthly_reader")) == 2


def test_single_run_backfill_range(events: Any, resources: dict[str, Any], instance: dg.DagsterInstance) -> None:
    producer = _producer(
        DAILY, "day", lambda key: _rows(key, 2, day=key), backfill_policy=dg.BackfillPolicy.single_run()
    )
    tags = {"dagster/asset_partition_range_start": "2024-01-02", "dagster/asset_partition_range_end": "2024-01-04"}
    dg.materialize([producer], resources=resources, instance=instance, tags=tags)
    partition_rows = {
        m.partition: m.metadata["dagster/partition_row_count"].value for m in materializations(instance, EVENTS)
    }
    assert partition_rows == {"2024-01-02": 6, "2024-01-03": 6, "2024-01-04": 6}  # the whole range's rows

    @dg.asset(
        ins={"events": dg.AssetIn(key=EVENTS)},
        partitions_def=DAILY,
        io_manager_key="memory",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def range_reader(events: Any) -> int:
        return len(events.collect())

    narrower = {**tags, "dagster/asset_partition_range_end": "2024-01-03"}
    result = dg.materialize(
        [producer, range_reader],
        resources={**resources, "memory": dg.InMemoryIOManager()},
        instance=instance,
        tags=narrower,
        selection=[range_reader.key],
    )
    assert result.output_for_node("range_reader") == 4


MULTI = dg.MultiPartitionsDefinition({"date": DAILY, "region": dg.StaticPartitionsDefinition(["us", "eu"])})


def _multi_rows(key: Any) -> pl.DataFrame:
    dims = MULTI.get_partition_key_from_str(str(key)).keys_by_dimension
    return _rows(
        str(key).replace("|", "_"), 2 if dims["region"] == "us" else 3, day=dims["date"], region=dims["region"]
    )


@pytest.mark.parametrize("partition_by", [{"date": "day", "region": "region"}, "part"])
def test_multi_dimensional_partitions(
    events: Any, resources: dict[str, Any], instance: dg.DagsterInstance, partition_by: Any
) -> None:
    """Per-dimension columns, or one column holding the full ``date|region`` key."""

    def make(key: Any) -> pl.DataFrame:
        return _multi_rows(key).with_columns(part=pl.lit(str(key)))

    producer = _producer(MULTI, partition_by, make)
    run_resources = {**resources, "memory": dg.InMemoryIOManager()}
    for key in ("2024-01-01|us", "2024-01-01|eu", "2024-01-02|us"):
        dg.materialize([producer], resources=run_resources, instance=instance, partition_key=key)
    assert [c[1:] for c in _counts(instance)] == [(2, 2), (5, 3), (7, 2)]
    reader = _reader("multi_reader", partitions_def=MULTI, io_manager_key="memory")
    result = dg.materialize(
        [producer, reader],
        resources=run_resources,
        instance=instance,
        partition_key="2024-01-01|eu",
        selection=[reader.key],
    )
    assert len(result.output_for_node("multi_reader")) == 3
