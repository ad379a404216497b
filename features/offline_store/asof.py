"""The point-in-time engine: a sort-based as-of join (or a range join), as DataFrame functions.

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

The engine adapts to the training frame's shape.  When every view of a group has a TTL
and the entity rows are few per key compared with the feature rows their TTL windows
cover (monthly snapshots over a year, say: most feature rows can reach no entity row),
sorting every feature row is the wrong price.  The *range* strategy instead broadcasts
the (keys, entity timestamp) requests, cut into TTL-wide time buckets, and
streams the feature rows past them: a hash join on (keys, bucket) keeps only the pairs
inside a TTL window, with no shuffle and no sort of the feature rows; the pairs are
aggregated per request with the same ``max`` as the window (so the same winner, ties
included), and the winners join back to the entity rows.  Its work grows with the pairs,
about (entity rows per key) x (feature rows per key inside a TTL), so it is chosen only
where that estimate, from one aggregate over the entity rows, stays at most
:data:`RANGE_MAX_PAIRS_PER_FEATURE_ROW` per feature row, and the requests are few enough
to broadcast (:data:`RANGE_MAX_ENTITY_ROWS`), and the entity frame is deterministic by
Catalyst's flag: it is read twice, for the requests and for the output rows (so a frame
cut by ``limit`` without ``order by`` should be cached first).  Its memory is the broadcast
requests and the partial aggregates, not the TTL.
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
_ROW_VISIBLE = "__lh_row_visible_at"
_FEATURE_KIND, _ENTITY_KIND = 0, 1

# Where the range strategy pays (see the module's docstring): at most this many estimated
# (request, feature row) pairs per feature row in reach, and at most this many entity rows.
RANGE_MAX_PAIRS_PER_FEATURE_ROW = 1.0
RANGE_MAX_ENTITY_ROWS = 2_000_000
STRATEGIES = ("auto", "sort", "range")


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


@dataclasses.dataclass(frozen=True)
class EntityStats:
    """What the planner knows of the entity rows (one aggregate, run with the time bounds).

    Attributes:
        rows: Number of entity rows.
        span_seconds: Latest minus earliest entity timestamp.
        distinct_keys: Approximate number of distinct key tuples per group of join keys.
        deterministic: Whether the entity frame gives the same rows when read twice (the
            range strategy reads it twice: once for the requests, once for the output).
    """

    rows: int
    span_seconds: float
    distinct_keys: dict[tuple[str, ...], int]
    deterministic: bool = True


def pairs_per_feature_row(
    stats: EntityStats, join_keys: tuple[str, ...], ttl_seconds: int
) -> float:
    """Estimated (request, feature row) pairs per feature row in reach, keys evenly spread.

    A key's entity rows each reach the feature rows of one TTL, out of the span their
    feature rows cover (the entity span plus one TTL): rows per key x TTL / (span + TTL).
    """
    keys = max(1, stats.distinct_keys.get(join_keys, 1))
    return (stats.rows / keys) * ttl_seconds / (stats.span_seconds + ttl_seconds)


def choose_strategy(
    views: Sequence[ViewRequest], stats: EntityStats | None, *, strategy: str = "auto"
) -> str:
    """``sort`` or ``range`` for one group of views sharing join keys (see the docstring)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"join strategy must be one of {STRATEGIES}, not {strategy!r}")
    every_view_has_a_ttl = all(view.ttl_seconds for view in views)
    if strategy == "range" and not every_view_has_a_ttl:
        raise ValueError("the range join strategy needs a TTL on every view (TTL 0: use sort)")
    if strategy != "auto":
        return strategy
    if stats is None or stats.rows > RANGE_MAX_ENTITY_ROWS or not stats.deterministic:
        return "sort"
    if not every_view_has_a_ttl:
        return "sort"
    worst = max(pairs_per_feature_row(stats, v.join_keys, v.ttl_seconds) for v in views)
    return "range" if worst <= RANGE_MAX_PAIRS_PER_FEATURE_ROW else "sort"


def strategies(
    views: Sequence[ViewRequest], stats: EntityStats | None, *, strategy: str = "auto"
) -> dict[tuple[str, ...], str]:
    """The strategy of each group of views (by join keys) that :func:`point_in_time_join` uses."""
    return {
        keys: choose_strategy(group, stats, strategy=strategy)
        for keys, group in _group_by_join_keys(views).items()
    }


def point_in_time_join(
    entities: DataFrame,
    views: Sequence[ViewRequest],
    *,
    entity_timestamp_column: str,
    filter_by_created_timestamp: bool = False,
    skew_bucket_seconds: int | None = None,
    entity_stats: EntityStats | None = None,
    strategy: str = "auto",
) -> DataFrame:
    """Join each entity row with the as-of feature values of every view.

    Args:
        entities: Entity rows: join keys, the entity timestamp and any other columns.
        views: The views requested; those with the same join keys share one sort.
        entity_timestamp_column: Timestamp column of ``entities``.
        filter_by_created_timestamp: Count a feature row only once it was created.
        skew_bucket_seconds: Cut each key's timeline into buckets of this length (sort).
        entity_stats: What the planner knows of the entity rows; without it, ``auto``
            sorts.
        strategy: ``auto`` (chosen per group from ``entity_stats``), ``sort`` or ``range``.

    Returns:
        One row per entity row: all its columns, then every view's features in order.
    """
    result = entities
    chosen = strategies(views, entity_stats, strategy=strategy)
    for join_keys, group in _group_by_join_keys(views).items():
        join = _join_group_by_range if chosen[join_keys] == "range" else _join_group
        result = join(
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


def _feature_rows(
    view: ViewRequest, *, filter_by_created_timestamp: bool, key_types: dict[str, DataType]
) -> DataFrame:
    """The rows of a view that can ever match, with their visible-from instant.

    The join keys are cast to the entity frame's types first, and a key that the cast
    makes null (a string that is no number, say) never matches, as a null key.
    """
    rows = view.rows.withColumns({k: _col(k).cast(key_types[k]) for k in view.join_keys})
    rows = rows.where(_col(view.event_timestamp_column).isNotNull())
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


def _group_types(
    entities: DataFrame, views: list[ViewRequest], join_keys: tuple[str, ...]
) -> tuple[dict[str, DataType], list[DataType], list[Column]]:
    """The entity frame's key types, each view's payload type, and a typed null of each."""
    key_types = {f.name: f.dataType for f in entities.schema.fields if f.name in join_keys}
    payload_types = [view.rows.select(_view_payload(view)).schema[0].dataType for view in views]
    return key_types, payload_types, [F.lit(None).cast(t) for t in payload_types]


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
    key_types, payload_types, nulls = _group_types(entities, views, join_keys)

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
        rows = _feature_rows(
            view, filter_by_created_timestamp=filter_by_created_timestamp, key_types=key_types
        )
        union = union.unionByName(
            rows.select(
                *[_col(k) for k in join_keys],
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
        _best_payload(F.col(_payload_column(i)), t).over(window).alias(_payload_column(i))
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


def _join_group_by_range(
    entities: DataFrame,
    views: list[ViewRequest],
    *,
    join_keys: tuple[str, ...],
    entity_timestamp_column: str,
    filter_by_created_timestamp: bool,
    skew_bucket_seconds: int | None = None,
) -> DataFrame:
    """The range strategy: broadcast the requests, stream the feature rows, aggregate pairs.

    ``skew_bucket_seconds`` is accepted for the common signature and not needed: no key's
    rows meet in one task here.
    """
    del skew_bucket_seconds
    entity_columns = list(entities.columns)
    key_types, payload_types, nulls = _group_types(entities, views, join_keys)
    keys = [F.col(k) for k in join_keys]
    entity_ts = _col(entity_timestamp_column).cast("timestamp")

    # A request is (keys, instant): the winner depends on nothing else.  Entity rows that
    # repeat one are not made distinct first (a shuffle): their pairs meet in the aggregate.
    requests = entities.select(*[_col(k).alias(k) for k in join_keys], entity_ts.alias(_VISIBLE))
    for key in [*join_keys, _VISIBLE]:
        requests = requests.where(F.col(key).isNotNull())

    pairs = None
    for index, view in enumerate(views):
        width = int(view.ttl_seconds) * 1_000_000  # one bucket per TTL, in microseconds
        at = F.unix_micros(F.col(_VISIBLE))
        reach = requests.select(
            *keys,
            F.col(_VISIBLE),
            F.explode(
                F.sequence(F.floor((at - F.lit(width)) / F.lit(width)), F.floor(at / F.lit(width)))
            ).alias(_BUCKET),
        )
        rows = _feature_rows(
            view, filter_by_created_timestamp=filter_by_created_timestamp, key_types=key_types
        )
        event_ts = _col(view.event_timestamp_column).cast("timestamp")
        timestamps = [view.event_timestamp_column]
        if view.created_timestamp_column:
            timestamps.append(view.created_timestamp_column)
        rows = rows.select(
            *[_col(k) for k in join_keys],
            F.col(_VISIBLE).alias(_ROW_VISIBLE),
            F.floor(F.unix_micros(event_ts) / F.lit(width)).alias(_BUCKET),
            *[_col(c) for c in dict.fromkeys([*timestamps, *view.features])],
        )
        # The payload struct is built for the pairs only, after the join's filter.
        matched = rows.join(F.broadcast(reach), on=[*join_keys, _BUCKET]).where(
            (F.col(_ROW_VISIBLE) <= F.col(_VISIBLE))
            & (F.unix_micros(event_ts) >= F.unix_micros(F.col(_VISIBLE)) - F.lit(width))
        )
        matched = matched.select(
            *keys,
            F.col(_VISIBLE),
            *[
                (_view_payload(view) if i == index else null).alias(_payload_column(i))
                for i, null in enumerate(nulls)
            ],
        )
        pairs = matched if pairs is None else pairs.unionByName(matched)
    assert pairs is not None  # a group has views
    winners = pairs.groupBy(*keys, F.col(_VISIBLE)).agg(
        *[
            _best_payload(F.col(_payload_column(i)), t).alias(_payload_column(i))
            for i, t in enumerate(payload_types)
        ]
    )

    entity_part = entities.select(
        *[_col(k).alias(k) for k in join_keys],
        entity_ts.alias(_VISIBLE),
        F.struct(*[_col(c) for c in entity_columns]).alias(_ENTITY),
    )
    joined = entity_part.join(winners, on=[*join_keys, _VISIBLE], how="left")
    selected = [F.col(f"{_ENTITY}.`{c}`").alias(c) for c in entity_columns]
    for index, view in enumerate(views):
        winner = F.col(_payload_column(index))
        selected.extend(winner[f].alias(f) for f in view.features)
    return joined.select(*selected)


def _best_payload(payload: Column, payload_type: DataType) -> Column:
    """The best payload (latest event, then latest created): over the sort's window, or
    per request in the range strategy's group aggregate, so both pick the same row.

    (In the group aggregate a hash aggregate would need a fixed-width order: (event,
    created) takes a 38-digit decimal, whose arithmetic made the range strategy twice as
    slow as this sort aggregate.)
    """
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
