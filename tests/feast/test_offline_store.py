"""LakehouseOfflineStore against Feast's own Spark store and a brute-force pandas oracle.

Randomized data with every edge case (exact hits, TTL boundaries, created-timestamp
ties, null values, keys without features, entity rows before any feature, duplicate
entity rows, composite keys), as a metastore Delta table, a Delta path and a parquet
path, read through real ``FeatureStore`` objects on the one SparkSession.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pytest
from feast import Entity, FeatureStore, FeatureView, Field
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast.repo_config import RegistryConfig, RepoConfig
from feast.table_format import DeltaFormat
from feast.types import Float64, Int64, String

from features.offline_store import LakehouseRetrievalJob, asof, pinned_versions

pytestmark = pytest.mark.feast

BASE = pd.Timestamp("2026-01-01", tz="UTC")
OURS = "features.offline_store.LakehouseOfflineStore"


@dataclasses.dataclass(frozen=True)
class ViewSpec:
    """What the oracle needs to know of a view."""

    name: str
    rows: pd.DataFrame  # keys, event_timestamp, [created_timestamp], features (Feast names)
    keys: tuple[str, ...]
    features: tuple[str, ...]
    ttl: dt.timedelta
    has_created: bool


def _minutes(values) -> pd.Series:
    return pd.to_timedelta(np.asarray(values, dtype="int64"), unit="m")


def _usage_rows(rng: np.random.Generator) -> pd.DataFrame:
    frames = []
    for customer in range(1, 11):  # customers 11 and 12 have no feature rows
        n = int(rng.integers(4, 16))
        event = BASE + _minutes(rng.integers(0, 10 * 24 * 60, n))
        lag = rng.choice([0, 5, 2 * 24 * 60], n)  # some rows are backfilled two days late
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": customer,
                    "event_timestamp": event,
                    "created_timestamp": event + _minutes(lag),
                    "minutes": np.where(
                        rng.random(n) < 0.2, np.nan, rng.normal(100, 30, n).round(2)
                    ),
                    "plan": rng.choice(np.array(["basic", "pro", None], dtype=object), n),
                }
            )
        )
    rows = pd.concat(frames, ignore_index=True)
    # Ties: same event timestamp, later created timestamp, other values.
    ties = rows.sample(8, random_state=1).copy()
    ties["created_timestamp"] += pd.Timedelta(hours=1)
    ties["minutes"] = -1.0
    ties["plan"] = "tie-winner"
    return pd.concat([rows, ties], ignore_index=True).drop_duplicates(
        ["customer_id", "event_timestamp", "created_timestamp"]
    )


def _billing_rows(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for customer in range(1, 11):
        days = sorted(rng.choice(np.arange(0, 10), 3, replace=False))
        for day in days:
            rows.append(
                {
                    "customer_id": customer,
                    "event_timestamp": BASE + pd.Timedelta(days=int(day), hours=12),
                    "charge_amount": float(rng.integers(10, 90)) if rng.random() > 0.15 else None,
                }
            )
    return pd.DataFrame(rows)


def _support_rows(rng: np.random.Generator) -> pd.DataFrame:
    n = 40
    event = BASE + _minutes(rng.integers(0, 10 * 24 * 60, n))
    rows = pd.DataFrame(
        {
            "customer_id": rng.integers(1, 11, n),
            "event_timestamp": event,
            "created_timestamp": event + _minutes(rng.integers(0, 600, n)),
            "tickets": pd.array(rng.integers(0, 5, n), dtype="Int64"),
        }
    )
    rows.loc[rows.index[:5], "tickets"] = pd.NA
    return rows.drop_duplicates(["customer_id", "event_timestamp", "created_timestamp"])


def _cell_rows(rng: np.random.Generator) -> pd.DataFrame:
    rows = [  # (1, 23) and (12, 3): the pair that collides in Feast's Spark store
        {
            "region_id": 1,
            "cell_id": 23,
            "event_timestamp": BASE + pd.Timedelta(days=1),
            "load": 0.123,
        },
        {
            "region_id": 12,
            "cell_id": 3,
            "event_timestamp": BASE + pd.Timedelta(days=1, hours=1),
            "load": 0.999,
        },
    ]
    for _ in range(30):
        rows.append(
            {
                "region_id": int(rng.integers(1, 4)),
                "cell_id": int(rng.integers(1, 4)),
                "event_timestamp": BASE + pd.Timedelta(minutes=int(rng.integers(0, 14400))),
                "load": round(float(rng.random()), 3),
            }
        )
    return pd.DataFrame(rows).drop_duplicates(["region_id", "cell_id", "event_timestamp"])


def _entity_rows(rng: np.random.Generator, usage: pd.DataFrame, ttl: dt.timedelta) -> pd.DataFrame:
    rows = []
    for customer in range(1, 13):
        for offset in rng.integers(-24 * 60, 12 * 24 * 60, 6):
            rows.append((customer, BASE + pd.Timedelta(minutes=int(offset))))
        rows.append((customer, BASE - pd.Timedelta(days=1)))  # before any feature
    for hit in usage.sample(10, random_state=2).itertuples():
        rows.append((hit.customer_id, hit.event_timestamp))  # exact hits
        rows.append((hit.customer_id, hit.event_timestamp + ttl))  # TTL boundary, inside
        rows.append((hit.customer_id, hit.event_timestamp + ttl + pd.Timedelta(seconds=1)))
        rows.append((hit.customer_id, hit.created_timestamp))  # just written
    frame = pd.DataFrame(rows, columns=["customer_id", "event_timestamp"])
    frame["region_id"] = rng.integers(1, 4, len(frame))
    frame["cell_id"] = rng.integers(1, 4, len(frame))
    frame["label"] = rng.integers(0, 2, len(frame))  # an extra column, kept
    collide = pd.DataFrame(
        {
            "customer_id": [1, 1],
            "event_timestamp": [BASE + pd.Timedelta(days=2)] * 2,
            "region_id": [1, 12],
            "cell_id": [23, 3],
            "label": [7, 8],
        }
    )
    frame = pd.concat([frame, collide, frame.iloc[:3]], ignore_index=True)  # + duplicates
    return frame


def oracle(
    entities: pd.DataFrame, views: list[ViewSpec], *, filter_created: bool, full_feature_names: bool
) -> pd.DataFrame:
    """Brute force: for every entity row and view, scan every feature row."""
    out = entities.copy()
    for view in views:
        names = [f"{view.name}__{f}" if full_feature_names else f for f in view.features]
        values: dict[str, list] = {n: [] for n in names}
        for row in entities.itertuples(index=False):
            ts = row.event_timestamp
            match = view.rows
            for key in view.keys:
                match = match[match[key] == getattr(row, key)]
            match = match[match.event_timestamp <= ts]
            if view.ttl:
                match = match[match.event_timestamp >= ts - view.ttl]
            if view.has_created and filter_created:
                match = match[match.created_timestamp <= ts]
            order = ["event_timestamp"] + (["created_timestamp"] if view.has_created else [])
            best = match.sort_values(order).tail(1)
            for feature, name in zip(view.features, names, strict=True):
                values[name].append(best[feature].iloc[0] if len(best) else None)
        for name in names:
            out[name] = values[name]
    return out


def normalized(frame: pd.DataFrame) -> list[tuple]:
    """Rows as sorted tuples: UTC timestamps, NaN/NA as None, floats rounded."""
    frame = frame.copy()
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"], utc=True)
    frame = frame[sorted(frame.columns)].astype(object)

    def cell(value):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, float | np.floating):
            return round(float(value), 6)
        if isinstance(value, np.integer):
            return int(value)
        return value

    rows = [tuple(cell(v) for v in row) for row in frame.itertuples(index=False)]
    return sorted(rows, key=repr)


def _python(value):
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """Write the randomized sources; return their pandas frames and locations."""
    rng = np.random.default_rng(20260101)
    root = tmp_path_factory.mktemp("pit")
    usage, billing = _usage_rows(rng), _billing_rows(rng)
    support, cells = _support_rows(rng), _cell_rows(rng)
    schemas = {
        "usage": "customer_id bigint, event_timestamp timestamp, created_timestamp timestamp, "
        "minutes double, plan string",
        "billing": "customer_id bigint, event_timestamp timestamp, charge_amount double",
        "support": "customer_id bigint, event_timestamp timestamp, "
        "created_timestamp timestamp, tickets bigint",
        "cells": "region_id bigint, cell_id bigint, event_timestamp timestamp, load double",
    }

    def frame(name: str, rows: pd.DataFrame):
        records = rows.astype(object).where(rows.notna(), None).to_dict("records")
        return spark.createDataFrame(
            [{k: _python(v) for k, v in r.items()} for r in records], schemas[name]
        )

    spark.sql("drop table if exists features.pit_usage")
    spark.sql("drop table if exists features.pit_cells")
    frame("usage", usage).write.format("delta").saveAsTable("features.pit_usage")
    frame("cells", cells).write.format("delta").saveAsTable("features.pit_cells")
    frame("billing", billing).write.format("delta").save(str(root / "billing"))
    frame("support", support).write.parquet(str(root / "support"))
    ttl = dt.timedelta(days=2)
    return {
        "root": root,
        "usage": usage,
        "billing": billing,
        "support": support,
        "cells": cells,
        "entities": _entity_rows(rng, usage, ttl),
        "usage_ttl": ttl,
    }


def _definitions(lake) -> list:
    customer = Entity(name="customer", join_keys=["customer_id"])
    region = Entity(name="region", join_keys=["region_id"])
    cell = Entity(name="cell", join_keys=["cell_id"])
    usage = FeatureView(
        name="customer_usage",
        entities=[customer],
        ttl=lake["usage_ttl"],
        schema=[Field(name="minutes", dtype=Float64), Field(name="plan", dtype=String)],
        source=SparkSource(
            name="usage_source",
            table="features.pit_usage",
            timestamp_field="event_timestamp",
            created_timestamp_column="created_timestamp",
        ),
    )
    billing = FeatureView(
        name="customer_billing",
        entities=[customer],
        ttl=dt.timedelta(0),
        schema=[Field(name="charge", dtype=Float64)],
        source=SparkSource(
            name="billing_source",
            path=str(lake["root"] / "billing"),
            table_format=DeltaFormat(),
            timestamp_field="event_timestamp",
            field_mapping={"charge_amount": "charge"},
        ),
    )
    support = FeatureView(
        name="customer_support",
        entities=[customer],
        ttl=dt.timedelta(days=1),
        schema=[Field(name="tickets", dtype=Int64)],
        source=SparkSource(
            name="support_source",
            path=str(lake["root"] / "support"),
            file_format="parquet",
            timestamp_field="event_timestamp",
            created_timestamp_column="created_timestamp",
        ),
    )
    cells = FeatureView(
        name="cell_load",
        entities=[region, cell],
        ttl=dt.timedelta(days=1),
        schema=[Field(name="load", dtype=Float64)],
        source=SparkSource(
            name="cells_source", table="features.pit_cells", timestamp_field="event_timestamp"
        ),
    )
    return [customer, region, cell, usage, billing, support, cells]


def _store(spark, path: Path, offline_store: dict, lake) -> FeatureStore:
    path.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(
        project="pit",
        provider="local",
        registry=RegistryConfig(path=str(path / "registry.db"), cache_ttl_seconds=0),
        online_store={"type": "sqlite", "path": str(path / "online.db")},
        offline_store=offline_store,
        entity_key_serialization_version=3,
    )
    store = FeatureStore(config=config, repo_path=str(path))
    store.apply(_definitions(lake))
    return store


@pytest.fixture(scope="module")
def ours(spark, lake, tmp_path_factory) -> FeatureStore:
    return _store(spark, tmp_path_factory.mktemp("ours"), {"type": OURS}, lake)


@pytest.fixture(scope="module")
def feasts(spark, lake, tmp_path_factory) -> FeatureStore:
    return _store(spark, tmp_path_factory.mktemp("feast"), {"type": "spark"}, lake)


@pytest.fixture(scope="module")
def ranged(spark, lake, tmp_path_factory) -> FeatureStore:
    """Our store with the range strategy forced (the tests' frames are too small for auto)."""
    offline_store = {"type": OURS, "join_strategy": "range"}
    return _store(spark, tmp_path_factory.mktemp("ranged"), offline_store, lake)


def _customer_views(lake) -> list[ViewSpec]:
    billing = lake["billing"].rename(columns={"charge_amount": "charge"})
    return [
        ViewSpec(
            "customer_usage",
            lake["usage"],
            ("customer_id",),
            ("minutes", "plan"),
            lake["usage_ttl"],
            True,
        ),
        ViewSpec(
            "customer_billing", billing, ("customer_id",), ("charge",), dt.timedelta(0), False
        ),
        ViewSpec(
            "customer_support",
            lake["support"],
            ("customer_id",),
            ("tickets",),
            dt.timedelta(days=1),
            True,
        ),
    ]


CUSTOMER_FEATURES = [
    "customer_usage:minutes",
    "customer_usage:plan",
    "customer_billing:charge",
    "customer_support:tickets",
]


@pytest.mark.parametrize(("full_feature_names", "filter_created"), [(False, False), (True, True)])
def test_agrees_with_feast_and_the_oracle(
    ours, feasts, lake, full_feature_names, filter_created
) -> None:
    entities = lake["entities"].drop(columns=["region_id", "cell_id"])
    expected = oracle(
        entities,
        _customer_views(lake),
        filter_created=filter_created,
        full_feature_names=full_feature_names,
    )
    kwargs = {
        "entity_df": entities,
        "features": CUSTOMER_FEATURES,
        "full_feature_names": full_feature_names,
        "filter_by_created_timestamp": filter_created,
    }
    job = ours.get_historical_features(**kwargs)
    assert isinstance(job, LakehouseRetrievalJob)
    got = job.to_df()
    theirs = feasts.get_historical_features(**kwargs).to_df()
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(entities)
    assert normalized(got) == normalized(expected)
    assert normalized(theirs[list(expected.columns)]) == normalized(expected)


# The customer views with a TTL (the range strategy needs one on every view).
TTL_FEATURES = ["customer_usage:minutes", "customer_usage:plan", "customer_support:tickets"]


@pytest.mark.parametrize(("full_feature_names", "filter_created"), [(False, False), (True, True)])
def test_the_range_strategy_agrees_with_the_oracle(
    ranged, lake, full_feature_names, filter_created
) -> None:
    entities = lake["entities"].drop(columns=["region_id", "cell_id"])
    views = [view for view in _customer_views(lake) if view.ttl]
    expected = oracle(
        entities, views, filter_created=filter_created, full_feature_names=full_feature_names
    )
    job = ranged.get_historical_features(
        entity_df=entities,
        features=TTL_FEATURES,
        full_feature_names=full_feature_names,
        filter_by_created_timestamp=filter_created,
    )
    assert job.join_strategies == {("customer_id",): "range"}
    got = job.to_df()
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(entities)
    assert normalized(got) == normalized(expected)
    cells = lake["entities"].drop(columns=["customer_id"])
    cell_view = ViewSpec(
        "cell_load", lake["cells"], ("region_id", "cell_id"), ("load",), dt.timedelta(days=1), False
    )
    got = ranged.get_historical_features(entity_df=cells, features=["cell_load:load"]).to_df()
    expected = oracle(cells, [cell_view], filter_created=False, full_feature_names=False)
    assert normalized(got) == normalized(expected)  # composite keys kept apart
    with pytest.raises(ValueError, match="needs a TTL on every view"):
        ranged.get_historical_features(entity_df=entities, features=CUSTOMER_FEATURES)


def test_auto_fits_the_strategy_to_the_frame(ours, lake) -> None:
    every_day = lake["entities"].drop(columns=["region_id", "cell_id"])
    one_snapshot = every_day.drop_duplicates("customer_id")  # one row per key: sparse
    job = ours.get_historical_features(entity_df=one_snapshot, features=TTL_FEATURES)
    assert job.join_strategies == {("customer_id",): "range"}
    views = [view for view in _customer_views(lake) if view.ttl]
    expected = oracle(one_snapshot, views, filter_created=False, full_feature_names=False)
    assert normalized(job.to_df()) == normalized(expected)
    # About 11 rows per key in 13 days with a 2-day TTL: every key's rows overlap; sort.
    dense = ours.get_historical_features(entity_df=every_day, features=TTL_FEATURES)
    assert dense.join_strategies == {("customer_id",): "sort"}


def test_composite_keys_do_not_collide(ours, feasts, lake) -> None:
    entities = lake["entities"].drop(columns=["customer_id"])
    views = [
        ViewSpec(
            "cell_load",
            lake["cells"],
            ("region_id", "cell_id"),
            ("load",),
            dt.timedelta(days=1),
            False,
        )
    ]
    expected = oracle(entities, views, filter_created=False, full_feature_names=False)
    got = ours.get_historical_features(entity_df=entities, features=["cell_load:load"]).to_df()
    assert normalized(got) == normalized(expected)
    pair = got[got.label.isin([7, 8])].sort_values("label")
    assert list(pair.load) == [0.123, 0.999]
    # Feast's Spark store concatenates "1"+"23" and "12"+"3" into one row id: the two
    # rows get each other's values as well (extra or swapped rows).
    theirs = feasts.get_historical_features(entity_df=entities, features=["cell_load:load"]).to_df()
    assert normalized(theirs) != normalized(expected)


def test_spark_entity_frame_gives_a_lazy_spark_result(spark, ours, lake) -> None:
    entities = lake["entities"].drop(columns=["region_id", "cell_id"])
    job = ours.get_historical_features(
        entity_df=spark.createDataFrame(entities), features=CUSTOMER_FEATURES
    )
    frame = job.to_spark_df()
    assert frame.columns[:3] == ["customer_id", "event_timestamp", "label"]
    expected = oracle(
        entities, _customer_views(lake), filter_created=False, full_feature_names=False
    )
    assert normalized(frame.toPandas()) == normalized(expected)


def test_persist_keeps_feasts_contract_on_an_existing_location(spark, ours, lake, tmp_path) -> None:
    from feast.errors import SavedDatasetLocationAlreadyExists
    from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
        SavedDatasetSparkStorage,
    )

    entities = lake["entities"].drop(columns=["region_id", "cell_id"]).head(20)
    job = ours.get_historical_features(entity_df=entities, features=CUSTOMER_FEATURES)
    path = str(tmp_path / "saved")
    job.persist(SavedDatasetSparkStorage(path=path, file_format="parquet"))
    saved = spark.read.parquet(path)
    assert saved.count() == 20
    with pytest.raises(SavedDatasetLocationAlreadyExists, match="saved"):
        job.persist(SavedDatasetSparkStorage(path=path, file_format="parquet"))
    job.persist(SavedDatasetSparkStorage(path=path, file_format="parquet"), allow_overwrite=True)
    assert spark.read.parquet(path).count() == 20
    table = "default.persisted_training_rows"
    spark.sql(f"drop table if exists {table}")
    job.persist(SavedDatasetSparkStorage(table=table))
    with pytest.raises(SavedDatasetLocationAlreadyExists, match=table):
        job.persist(SavedDatasetSparkStorage(table=table))
    spark.sql(f"drop table {table}")


def test_skew_buckets_give_the_same_answer(spark, lake) -> None:
    usage = spark.table("features.pit_usage")
    entities = spark.createDataFrame(lake["entities"][["customer_id", "event_timestamp", "label"]])
    view = asof.ViewRequest(
        name="customer_usage",
        join_keys=("customer_id",),
        rows=usage,
        features=("minutes", "plan"),
        event_timestamp_column="event_timestamp",
        created_timestamp_column="created_timestamp",
        ttl_seconds=2 * 86_400,
    )
    plain = asof.point_in_time_join(entities, [view], entity_timestamp_column="event_timestamp")
    bucketed = asof.point_in_time_join(
        entities, [view], entity_timestamp_column="event_timestamp", skew_bucket_seconds=6 * 3600
    )
    assert normalized(bucketed.toPandas()) == normalized(plain.toPandas())


def test_both_strategies_pick_the_same_row_on_exact_ties(spark, lake) -> None:
    usage = spark.table("features.pit_usage")
    # Every row twice with the same event and created timestamps and other values.
    tied = usage.unionByName(usage.withColumn("minutes", usage.minutes + 1))
    entities = spark.createDataFrame(lake["entities"][["customer_id", "event_timestamp", "label"]])
    view = asof.ViewRequest(
        name="customer_usage",
        join_keys=("customer_id",),
        rows=tied,
        features=("minutes", "plan"),
        event_timestamp_column="event_timestamp",
        created_timestamp_column="created_timestamp",
        ttl_seconds=2 * 86_400,
    )
    results = [
        normalized(
            asof.point_in_time_join(
                entities, [view], entity_timestamp_column="event_timestamp", strategy=strategy
            ).toPandas()
        )
        for strategy in ("sort", "range")
    ]
    assert results[0] == results[1]
    assert any(row[3] is not None for row in results[0])  # some rows found a value


def test_both_strategies_agree_on_odd_rows(spark) -> None:
    """Null keys and instants, a key the cast to the entity's type makes null, and instants
    before 1970 (negative microseconds in the range strategy's buckets)."""
    features = spark.createDataFrame(
        [
            ("1", dt.datetime(1969, 12, 30), dt.datetime(1969, 12, 30), 1.0),
            ("abc", dt.datetime(1969, 12, 31), dt.datetime(1969, 12, 31), 2.0),  # no number
            ("2", dt.datetime(1970, 1, 2), dt.datetime(1970, 1, 2), 3.0),
            ("2", dt.datetime(1969, 12, 1), dt.datetime(1969, 12, 1), 4.0),  # out of TTL
        ],
        "customer_id string, event_timestamp timestamp, created_timestamp timestamp, x double",
    )
    entities = spark.createDataFrame(
        [
            (1, dt.datetime(1969, 12, 31, 12), 0),
            (None, dt.datetime(1970, 1, 1), 1),  # a null key: never matches
            (2, None, 2),  # a null instant: never matches
            (2, dt.datetime(1970, 1, 3), 3),
            (2, dt.datetime(1970, 1, 3), 4),  # the same request again: its own row
            (2, dt.datetime(1969, 12, 2), 5),
            (2, dt.datetime(1969, 12, 3, 0, 0, 1), 6),  # one second past the TTL
        ],
        "customer_id bigint, event_timestamp timestamp, label int",
    )
    view = asof.ViewRequest(
        name="odd",
        join_keys=("customer_id",),
        rows=features,
        features=("x",),
        event_timestamp_column="event_timestamp",
        created_timestamp_column="created_timestamp",
        ttl_seconds=2 * 86_400,
    )
    expected = {0: 1.0, 1: None, 2: None, 3: 3.0, 4: 3.0, 5: 4.0, 6: None}
    for strategy in ("sort", "range"):
        joined = asof.point_in_time_join(
            entities, [view], entity_timestamp_column="event_timestamp", strategy=strategy
        )
        rows = joined.collect()
        assert len(rows) == len(expected), strategy
        assert {row.label: row.x for row in rows} == expected, strategy


def test_versions_are_recorded_and_pinned(spark, ours, lake) -> None:
    entities = pd.DataFrame(
        {
            "customer_id": [1, 1, 2],
            "label": [0, 1, 0],
            "event_timestamp": [BASE + pd.Timedelta(days=d) for d in (5, 11.5, 9)],
        }
    )
    features = ["customer_usage:minutes", "customer_usage:plan"]
    before = ours.get_historical_features(entity_df=entities, features=features)
    versions = dict(before.source_versions)
    assert versions == {"features.pit_usage": 0}
    first = normalized(before.to_df())
    instant = spark.sql("describe history features.pit_usage").first().timestamp
    # A late batch through offline_write_batch: one Delta commit on the table.
    late = pyarrow.Table.from_pandas(
        pd.DataFrame(
            {
                "customer_id": [1],
                "event_timestamp": [BASE + pd.Timedelta(days=11)],
                "created_timestamp": [BASE + pd.Timedelta(days=11)],
                "minutes": [5.0],
                "plan": ["late"],
            }
        ),
        preserve_index=False,
    )
    ours.write_to_offline_store("customer_usage", late.to_pandas())
    after = ours.get_historical_features(entity_df=entities, features=features)
    assert after.source_versions["features.pit_usage"] == 1
    assert normalized(after.to_df()) != first
    with pinned_versions(versions):
        assert (
            normalized(ours.get_historical_features(entity_df=entities, features=features).to_df())
            == first
        )
    with pinned_versions({"features.pit_usage": instant}):
        again = ours.get_historical_features(entity_df=entities, features=features)
        assert again.source_versions["features.pit_usage"] == 0
        assert normalized(again.to_df()) == first


def test_materialize_reads_the_latest_rows(ours, lake) -> None:
    end = (BASE + pd.Timedelta(days=30)).to_pydatetime()
    ours.materialize(
        start_date=(BASE - pd.Timedelta(days=1)).to_pydatetime(),
        end_date=end,
        feature_views=["customer_billing"],
    )
    online = ours.get_online_features(
        features=["customer_billing:charge"], entity_rows=[{"customer_id": 2}, {"customer_id": 12}]
    ).to_dict()
    billing = lake["billing"]
    latest = billing[billing.customer_id == 2].sort_values("event_timestamp").iloc[-1]
    expected = None if pd.isna(latest.charge_amount) else latest.charge_amount
    assert online["charge"] == [expected, None]
