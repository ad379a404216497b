"""The point-in-time engine: a sort-based as-of join, as pure DataFrame functions.

Feast's Spark store joins every entity row to every feature row of its key inside the
TTL and ranks the pairs: entity rows x feature rows per key, growing with the TTL.
Here the entity rows and the feature rows of every view with the same join keys go into
ONE union, partitioned by the join keys (separate columns, never a concatenated
string, so composite keys cannot collide) and sorted by time; a running ``max`` over
the sorted rows hands each entity row the winning row of every view at once.

* Every row has a *visible-from* instant: an entity row its timestamp; a feature row
  its event timestamp or, with ``filter_by_created_timestamp``, the later of its event
  and created timestamps (a value counts only once it was written: no leakage from
  backfills).  At equal instants feature rows sort before entity rows ("at or before").
* The running value of a view is ``max(struct(event_ts, created_ts, features...))``: the
  latest event wins, ties go to the latest created timestamp, and the winner is taken
  whole (a null inside it stays null).  A running max, not ``last``, because with
  ``filter_by_created_timestamp`` the visible order is not the event order.  On exact
  ties (same event and created timestamps) the max picks one row deterministically.
* The TTL is checked afterwards on the winner's event timestamp, both ends inclusive:
  if the latest visible row is too old, so is every older one.  TTL 0 means no limit.
* Feast's rules on odd rows are kept: feature rows with a null join key, a null event
  timestamp or (when the view has a created timestamp column) a null created timestamp
  never match; entity rows with a null key or timestamp get nulls.
* Entity rows carry all their columns through the union in one struct: no row id, no
  join back, and duplicate entity rows each keep their own output row.

Cost: one shuffle and one sort of (entity rows + feature rows) per group of views that
share join keys, whatever the TTL.  The window spills to disk, so a key with millions
of rows completes, but on one task.  ``skew_bucket_seconds`` spreads such a key: the
window is partitioned by (keys, time bucket) and each bucket starts from a *carry*,
the best feature row of the key's earlier buckets, computed from one aggregate per
(key, bucket) and a running max over the (few) buckets of each key, then joined back on
(keys, bucket).  It costs one more (small) shuffle and a join, so it is opt-in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql.types import ArrayType, DataType, MapType, StructType

_KIND = "__lh_kind"
_VISIBLE = "__lh_visible_at"
_BUCKET = "__lh_bucket"
_ENTITY = "__lh_entity"
_EVENT_TS = "__lh_event_ts"
_CREATED_TS = "__lh_created_ts"
_FEATURE_KIND, _ENTITY_KIND = 0, 1


@dataclasses.dataclass(frozen=True)
class ViewRequest:
    """One feature view of a retrieval, its rows already read, pruned and renamed.

    Attributes:
        name: Name of the view (diagnostics only).
        join_keys: Join key columns, named as in the entity frame.
        rows: Feature rows with the join keys, the timestamp column(s) and the
            feature columns under their output names.
        features: Output names of the feature columns, in order.
        event_timestamp_column: Event timestamp column of ``rows``.
        created_timestamp_column: Created timestamp column of ``rows``, or None.
        ttl_seconds: Maximum age of a value in seconds; 0 means no limit.
    """

    name: str
    join_keys: tuple[str, ...]
    rows: DataFrame
    features: tuple[str, ...]
    event_timestamp_column: str
    created_timestamp_column: str | None = None
    ttl_seconds: int = 0


def point_in_time_join(
    entities: DataFrame,
    views: Sequence[ViewRequest],
    *,
    entity_timestamp_column: str,
    filter_by_created_timestamp: bool = False,
    skew_bucket_seconds: int | None = None,
) -> DataFrame:
    """Join each entity row with the as-of feature values of every view.

    Args:
        entities: Entity rows: join keys, the entity timestamp and any other columns.
        views: The views requested; those with the same join keys share one sort.
        entity_timestamp_column: Timestamp column of ``entities``.
        filter_by_created_timestamp: Count a feature row only once it was created.
        skew_bucket_seconds: Cut each key's timeline into buckets of this length.

    Returns:
        One row per entity row: all its columns, then every view's features in order.
    """
    result = entities
    for join_keys, group in _group_by_join_keys(views).items():
        result = _join_group(
            result,
            group,
            join_keys=join_keys,
            entity_timestamp_column=entity_timestamp_column,
            filter_by_created_timestamp=filter_by_created_timestamp,
            skew_bucket_seconds=skew_bucket_seconds,
        )
    ordered = list(entities.columns) + [f for view in views for f in view.features]
    return result.select(*[_col(name) for name in ordered])


def latest_per_key(
    rows: DataFrame,
    *,
    join_keys: Sequence[str],
    columns: Sequence[str],
    event_timestamp_column: str,
    created_timestamp_column: str | None,
) -> DataFrame:
    """Return the latest row of each key (ties to the latest created), for materialization.

    An aggregation, not a window: one shuffle of the rows and no sort.
    """
    created = _col(created_timestamp_column) if created_timestamp_column else _null_ts()
    order = F.struct(_col(event_timestamp_column).alias(_EVENT_TS), created.alias(_CREATED_TS))
    payload = F.struct(*[_col(c).alias(c) for c in columns])
    best = _best(order, payload, payload_type=rows.select(payload).schema[0].dataType)
    grouped = rows.groupBy(*[_col(k) for k in join_keys]) if join_keys else rows.groupBy()
    return grouped.agg(best.alias("__lh_latest")).select("__lh_latest.*")


def _col(name: str) -> Column:
    return F.col(f"`{name}`")


def _null_ts() -> Column:
    return F.lit(None).cast("timestamp")


def _orderable(data_type: DataType) -> bool:
    if isinstance(data_type, MapType):
        return False
    if isinstance(data_type, StructType):
        return all(_orderable(f.dataType) for f in data_type.fields)
    if isinstance(data_type, ArrayType):
        return _orderable(data_type.elementType)
    return True


def _best(order: Column, payload: Column, *, payload_type: DataType) -> Column:
    """The payload of the greatest ``order``; ties broken on the payload when it can be."""
    if _orderable(payload_type):
        return F.max(F.struct(order.alias("o"), payload.alias("p")))["p"]
    return F.max_by(payload, order)


def _group_by_join_keys(views: Sequence[ViewRequest]) -> dict[tuple[str, ...], list[ViewRequest]]:
    groups: dict[tuple[str, ...], list[ViewRequest]] = {}
    for view in views:
        groups.setdefault(tuple(view.join_keys), []).append(view)
    return groups


def _payload_column(index: int) -> str:
    return f"__lh_view_{index}"


def _view_payload(view: ViewRequest) -> Column:
    created = _col(view.created_timestamp_column) if view.created_timestamp_column else _null_ts()
    return F.struct(
        _col(view.event_timestamp_column).cast("timestamp").alias(_EVENT_TS),
        created.cast("timestamp").alias(_CREATED_TS),
        *[_col(feature).alias(feature) for feature in view.features],
    )


def _feature_rows(view: ViewRequest, *, filter_by_created_timestamp: bool) -> DataFrame:
    """The rows of a view that can ever match, with their visible-from instant."""
    rows = view.rows.where(_col(view.event_timestamp_column).isNotNull())
    for key in view.join_keys:
        rows = rows.where(_col(key).isNotNull())
    event_ts = _col(view.event_timestamp_column).cast("timestamp")
    visible = event_ts
    if view.created_timestamp_column:
        rows = rows.where(_col(view.created_timestamp_column).isNotNull())
        if filter_by_created_timestamp:
            visible = F.greatest(event_ts, _col(view.created_timestamp_column).cast("timestamp"))
    return rows.withColumn(_VISIBLE, visible)


def _bucket(instant: Column, seconds: int | None) -> Column:
    if not seconds:
        return F.lit(0).cast("long")
    return F.floor(F.unix_seconds(instant) / F.lit(seconds)).cast("long")


def _join_group(
    entities: DataFrame,
    views: list[ViewRequest],
    *,
    join_keys: tuple[str, ...],
    entity_timestamp_column: str,
    filter_by_created_timestamp: bool,
    skew_bucket_seconds: int | None,
) -> DataFrame:
    entity_columns = list(entities.columns)
    key_types = {f.name: f.dataType for f in entities.schema.fields if f.name in join_keys}
    payload_types = [view.rows.select(_view_payload(view)).schema[0].dataType for view in views]
    nulls = [F.lit(None).cast(t) for t in payload_types]

    entity_part = entities.select(
        *[_col(k).alias(k) for k in join_keys],
        _col(entity_timestamp_column).cast("timestamp").alias(_VISIBLE),
        F.lit(_ENTITY_KIND).alias(_KIND),
        F.struct(*[_col(c) for c in entity_columns]).alias(_ENTITY),
        *[null.alias(_payload_column(i)) for i, null in enumerate(nulls)],
    )
    entity_type = entity_part.schema[_ENTITY].dataType
    union = entity_part
    for index, view in enumerate(views):
        rows = _feature_rows(view, filter_by_created_timestamp=filter_by_created_timestamp)
        union = union.unionByName(
            rows.select(
                *[_col(k).cast(key_types[k]).alias(k) for k in join_keys],
                F.col(_VISIBLE),
                F.lit(_FEATURE_KIND).alias(_KIND),
                F.lit(None).cast(entity_type).alias(_ENTITY),
                *[
                    (_view_payload(view) if i == index else null).alias(_payload_column(i))
                    for i, null in enumerate(nulls)
                ],
            )
        )
    union = union.withColumn(_BUCKET, _bucket(F.col(_VISIBLE), skew_bucket_seconds))

    keys = [F.col(k) for k in join_keys]
    window = (
        Window.partitionBy(*keys, F.col(_BUCKET))
        .orderBy(F.col(_VISIBLE).asc(), F.col(_KIND).asc())
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    running = [
        _running_best(F.col(_payload_column(i)), t).over(window).alias(_payload_column(i))
        for i, t in enumerate(payload_types)
    ]
    winners = union.select(*keys, F.col(_BUCKET), F.col(_KIND), F.col(_ENTITY), *running)
    winners = winners.where(F.col(_KIND) == _ENTITY_KIND)
    if skew_bucket_seconds:
        winners = _add_carry(union, winners, join_keys=join_keys, payload_types=payload_types)

    entity_ts = F.col(f"{_ENTITY}.`{entity_timestamp_column}`").cast("timestamp")
    selected = [F.col(f"{_ENTITY}.`{c}`").alias(c) for c in entity_columns]
    for index, view in enumerate(views):
        winner = F.col(_payload_column(index))
        qualifies = winner[_EVENT_TS] <= entity_ts
        if view.ttl_seconds:
            oldest = F.unix_micros(entity_ts) - F.lit(int(view.ttl_seconds) * 1_000_000)
            qualifies = qualifies & (F.unix_micros(winner[_EVENT_TS]) >= oldest)
        selected.extend(F.when(qualifies, winner[f]).alias(f) for f in view.features)
    return winners.select(*selected)


def _running_best(payload: Column, payload_type: DataType) -> Column:
    """Window aggregate: the best payload so far (latest event, then latest created)."""
    if _orderable(payload_type):
        return F.max(payload)
    return F.max_by(payload, F.struct(payload[_EVENT_TS], payload[_CREATED_TS]))


def _add_carry(
    union: DataFrame,
    winners: DataFrame,
    *,
    join_keys: tuple[str, ...],
    payload_types: list[DataType],
) -> DataFrame:
    """Combine each entity row's in-bucket winner with the best of the earlier buckets."""
    if not all(_orderable(t) for t in payload_types):
        raise ValueError("skew_bucket_days needs orderable feature types (no map columns)")
    keys = [F.col(k) for k in join_keys]
    payloads = [_payload_column(i) for i in range(len(payload_types))]
    per_bucket = union.groupBy(*keys, F.col(_BUCKET)).agg(*[F.max(p).alias(p) for p in payloads])
    # Running max over a key's buckets, excluding the bucket itself: the carry-in.
    over_buckets = (
        Window.partitionBy(*keys).orderBy(F.col(_BUCKET)).rowsBetween(Window.unboundedPreceding, -1)
    )
    carry = per_bucket.select(
        *keys,
        F.col(_BUCKET),
        *[F.max(p).over(over_buckets).alias(f"{p}__carry") for p in payloads],
    )
    joined = winners.join(carry, on=[*join_keys, _BUCKET], how="left")
    return joined.select(
        F.col(_ENTITY),
        *[F.greatest(F.col(p), F.col(f"{p}__carry")).alias(p) for p in payloads],
    )
