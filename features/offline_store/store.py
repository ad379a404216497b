"""``LakehouseOfflineStore``: Feast's offline-store interface over Delta, on our engine.

Selected in ``feature_store.yaml`` by::

    offline_store:
      type: features.offline_store.LakehouseOfflineStore

It reads Feast's own ``SparkSource`` definitions unchanged, so a user of Feast's Spark
store switches by that one line.  Sources are read by :mod:`.sources` (pinned Delta
versions, time and partition pruning) and joined by :mod:`.asof`; every method returns a
:class:`.job.LakehouseRetrievalJob`, a lazy plan on the lakehouse's one SparkSession.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, cast

import pandas as pd
import pyarrow
import pyspark.sql.functions as F
from feast.data_source import DataSource
from feast.errors import InvalidEntityType
from feast.feature_view import DUMMY_ENTITY_ID, DUMMY_ENTITY_VAL, FeatureView
from feast.infra.offline_stores import offline_utils
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast.infra.offline_stores.offline_store import OfflineStore, RetrievalMetadata
from feast.infra.registry.base_registry import BaseRegistry
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.repo_config import RepoConfig
from pyspark.sql import DataFrame, SparkSession

from features import lakehouse
from features.offline_store import asof, sources
from features.offline_store.config import LakehouseOfflineStoreConfig
from features.offline_store.job import LakehouseRetrievalJob

ENTITY_TIMESTAMP = offline_utils.DEFAULT_ENTITY_DF_EVENT_TIMESTAMP_COL


class LakehouseOfflineStore(OfflineStore):
    """Feast offline store over the lakehouse's Delta tables, joined by :mod:`.asof`."""

    supports_filter_by_created_timestamp = True

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str | DataFrame | None,
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
        **kwargs: Any,
    ) -> LakehouseRetrievalJob:
        """Point-in-time join of the entity rows with the requested features.

        Args:
            config: Repo configuration; its ``offline_store`` is ours.
            feature_views: The views of ``feature_refs``.
            feature_refs: ``view:feature`` references.
            entity_df: pandas or Spark DataFrame, or SQL; None with ``start_date`` /
                ``end_date`` in kwargs for every key seen in that range, as of its end.
            registry: Feast registry.
            project: Feast project.
            full_feature_names: Name features ``view__feature``.
            filter_by_created_timestamp: A value counts only if created by the entity
                timestamp (also on when the store's config says so).
            **kwargs: ``start_date`` / ``end_date`` when ``entity_df`` is None.
        """
        store_config = _store_config(config)
        spark = lakehouse.spark_session()
        filter_created = filter_by_created_timestamp or store_config.filter_by_created_timestamp
        for view in feature_views:
            _spark_source(view.batch_source, view.name)
        if entity_df is None:
            entities = _entities_from_date_range(
                spark, feature_views, kwargs.get("start_date"), kwargs.get("end_date")
            )
            timestamp_column = ENTITY_TIMESTAMP
        else:
            entities = _entity_frame(spark, entity_df)
            timestamp_column = _entity_timestamp_column(entities)
            expected = offline_utils.get_expected_join_keys(project, feature_views, registry)
            missing = sorted(set(expected) - set(entities.columns))
            if missing:
                raise ValueError(
                    f"entity dataframe lacks join key column(s) {missing} "
                    f"(it has {entities.columns}); add them or map them with join_key_map"
                )
        entities = entities.withColumn(timestamp_column, F.col(timestamp_column).cast("timestamp"))
        # One aggregate: the time range the request can need (to prune the sources), and
        # what the engine's planner needs to fit its strategy to the frame's shape.
        key_groups = list(dict.fromkeys(_join_keys(view) for view in feature_views))
        ts = F.col(f"`{timestamp_column}`")
        bounds = entities.agg(
            F.min(ts),
            F.max(ts),
            F.count(F.lit(1)),
            *[
                F.approx_count_distinct(F.struct(*[F.col(f"`{k}`") for k in keys]))
                if keys
                else F.lit(1)  # a view without entities: one key
                for keys in key_groups
            ],
        ).first()
        assert bounds is not None  # an aggregate has a row
        low, high, count = bounds[0], bounds[1], bounds[2]
        stats = asof.EntityStats(
            rows=int(count),
            span_seconds=(high - low).total_seconds() if low and high else 0.0,
            distinct_keys={keys: int(bounds[3 + i]) for i, keys in enumerate(key_groups)},
            # Catalyst's own flag (rand() and the like); cache such a frame to get the range.
            deterministic=bool(entities._jdf.queryExecution().analyzed().deterministic()),
        )
        epoch = dt.datetime(1970, 1, 1)
        contexts = offline_utils.get_feature_view_query_context(
            feature_refs, feature_views, registry, project, (low or epoch, high or epoch)
        )
        by_name = {view.projection.name_to_use(): view for view in feature_views}
        requests, versions = [], {}
        for context in contexts:
            view = by_name[context.name]
            request, version = _view_request(
                spark, view, context, low=low, high=high, full_feature_names=full_feature_names
            )
            requests.append(request)
            versions[sources.source_id(cast(SparkSource, view.batch_source))] = version
        bucket_days = store_config.skew_bucket_days
        chosen = asof.strategies(requests, stats, strategy=store_config.join_strategy)
        frame = asof.point_in_time_join(
            entities,
            requests,
            entity_timestamp_column=timestamp_column,
            filter_by_created_timestamp=filter_created,
            skew_bucket_seconds=bucket_days * 86_400 if bucket_days else None,
            entity_stats=stats,
            strategy=store_config.join_strategy,
        )
        return LakehouseRetrievalJob(
            frame=frame,
            full_feature_names=full_feature_names,
            on_demand_feature_views=OnDemandFeatureView.get_requested_odfvs(
                feature_refs, project, registry
            ),
            metadata=RetrievalMetadata(
                features=feature_refs,
                keys=[c for c in entities.columns if c != timestamp_column],
                min_event_timestamp=low,
                max_event_timestamp=high,
            ),
            source_versions=versions,
            join_strategies=chosen,
        )

    @staticmethod
    def pull_latest_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None,
        start_date: dt.datetime,
        end_date: dt.datetime,
    ) -> LakehouseRetrievalJob:
        """The latest row of each key with its timestamp in [start_date, end_date]."""
        _store_config(config)
        source = _spark_source(data_source)
        rows, version = sources.read_source(lakehouse.spark_session(), source)
        rows = sources.time_bounded(
            rows, source, timestamp_field=timestamp_field, start=start_date, end=end_date
        )
        columns = _pulled_columns(
            join_key_columns, feature_name_columns, timestamp_field, created_timestamp_column
        )
        latest = asof.latest_per_key(
            rows,
            join_keys=join_key_columns,
            columns=columns,
            event_timestamp_column=timestamp_field,
            created_timestamp_column=created_timestamp_column,
        )
        latest = _apply_field_mapping(latest, source.field_mapping)
        if not join_key_columns:
            latest = latest.withColumn(DUMMY_ENTITY_ID, F.lit(DUMMY_ENTITY_VAL))
        return LakehouseRetrievalJob(
            frame=latest,
            full_feature_names=False,
            source_versions={sources.source_id(source): version},
        )

    @staticmethod
    def pull_all_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None = None,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
    ) -> LakehouseRetrievalJob:
        """Every row with its timestamp in [start_date, end_date] (all columns if no features)."""
        _store_config(config)
        source = _spark_source(data_source)
        rows, version = sources.read_source(lakehouse.spark_session(), source)
        rows = sources.time_bounded(
            rows, source, timestamp_field=timestamp_field, start=start_date, end=end_date
        )
        if feature_name_columns:
            columns = _pulled_columns(
                join_key_columns, feature_name_columns, timestamp_field, created_timestamp_column
            )
            rows = rows.select(*[F.col(f"`{c}`") for c in columns])
        rows = _apply_field_mapping(rows, source.field_mapping)
        return LakehouseRetrievalJob(
            frame=rows,
            full_feature_names=False,
            source_versions={sources.source_id(source): version},
        )

    @staticmethod
    def offline_write_batch(
        config: RepoConfig,
        feature_view: FeatureView,
        table: pyarrow.Table,
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Append a batch of feature rows to the view's table or path, in one Delta commit."""
        _store_config(config)
        source = _spark_source(feature_view.batch_source, feature_view.name)
        if source.query:
            raise NotImplementedError(
                f"cannot write to {feature_view.name!r}: its source is a query; "
                f"give the SparkSource a table or a path"
            )
        spark = lakehouse.spark_session()
        existing, _ = sources.read_source(spark, source)
        expected = existing.columns
        if sorted(table.column_names) != sorted(expected):
            raise ValueError(
                f"batch for feature view {feature_view.name!r} has columns "
                f"{table.column_names}; {sources.source_id(source)} has {expected}"
            )
        batch = spark.createDataFrame(table)
        batch = batch.select(
            *[F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) for f in existing.schema.fields]
        )
        file_format = "delta" if source.table else sources.path_format(source)
        writer = batch.write.format(file_format).mode("append")
        if source.table:
            writer.saveAsTable(source.table)
        else:
            writer.save(source.path)
        if progress:
            progress(table.num_rows)


def _store_config(config: RepoConfig) -> LakehouseOfflineStoreConfig:
    if not isinstance(config.offline_store, LakehouseOfflineStoreConfig):
        raise TypeError(
            f"LakehouseOfflineStore needs offline_store type "
            f"features.offline_store.LakehouseOfflineStore in feature_store.yaml, "
            f"got {type(config.offline_store).__name__}"
        )
    return config.offline_store


def _spark_source(data_source: DataSource | None, view: str | None = None) -> SparkSource:
    if not isinstance(data_source, SparkSource):
        where = f" (feature view {view!r})" if view else ""
        raise ValueError(
            f"LakehouseOfflineStore reads SparkSource, got {type(data_source).__name__}{where}: "
            f"define the source as a SparkSource with a table, a path or a query"
        )
    return data_source


def _pulled_columns(
    join_keys: list[str], features: list[str], timestamp: str, created: str | None
) -> list[str]:
    return list(dict.fromkeys([*join_keys, *features, timestamp, *([created] if created else [])]))


def _entity_frame(spark: SparkSession, entity_df: pd.DataFrame | str | DataFrame) -> DataFrame:
    if isinstance(entity_df, DataFrame):
        return entity_df
    if isinstance(entity_df, str):
        return spark.sql(entity_df)
    if isinstance(entity_df, pd.DataFrame):
        return spark.createDataFrame(entity_df)
    raise InvalidEntityType(type(entity_df))


def _entity_timestamp_column(entities: DataFrame) -> str:
    """``event_timestamp``, else the one timestamp column, as Feast infers it."""
    if ENTITY_TIMESTAMP in entities.columns:
        return ENTITY_TIMESTAMP
    candidates = [
        f.name
        for f in entities.schema.fields
        if f.dataType.typeName() in ("timestamp", "timestamp_ntz")
    ]
    if len(candidates) != 1:
        raise ValueError(
            f"entity dataframe needs an {ENTITY_TIMESTAMP!r} column (or exactly one "
            f"timestamp column); it has {entities.columns}"
        )
    return candidates[0]


def _entities_from_date_range(
    spark: SparkSession,
    feature_views: list[FeatureView],
    start: dt.datetime | None,
    end: dt.datetime | None,
) -> DataFrame:
    """Without an entity frame: every key seen in [start, end], as of end."""
    end = end or dt.datetime.now(dt.UTC)
    frames = []
    for view in feature_views:
        source = _spark_source(view.batch_source, view.name)
        rows, _ = sources.read_source(spark, source)
        rows = sources.time_bounded(
            rows, source, timestamp_field=source.timestamp_field, start=start, end=end
        )
        reverse = {v: k for k, v in source.field_mapping.items()}
        frames.append(
            rows.select(
                *[
                    F.col(f"`{reverse.get(c.name, c.name)}`").alias(
                        view.projection.join_key_map.get(c.name, c.name)
                    )
                    for c in view.entity_columns
                ]
            )
        )
    entities = frames[0]
    for frame in frames[1:]:
        entities = entities.unionByName(frame, allowMissingColumns=True)
    return entities.distinct().withColumn(ENTITY_TIMESTAMP, sources.timestamp_literal(end))


def _join_keys(view: FeatureView) -> tuple[str, ...]:
    """The view's join keys as the entity frame names them (the engine groups views by them)."""
    return tuple(view.projection.join_key_map.get(c.name, c.name) for c in view.entity_columns)


def _view_request(
    spark: SparkSession,
    view: FeatureView,
    context: offline_utils.FeatureViewQueryContext,
    *,
    low: dt.datetime | None,
    high: dt.datetime | None,
    full_feature_names: bool,
) -> tuple[asof.ViewRequest, int | None]:
    """Read, prune and rename one view's rows for the engine."""
    source = _spark_source(view.batch_source, view.name)
    rows, version = sources.read_source(spark, source)
    if high is not None:
        start = low - dt.timedelta(seconds=context.ttl) if context.ttl and low else None
        rows = sources.time_bounded(
            rows, source, timestamp_field=context.timestamp_field, start=start, end=high
        )
    reverse = {v: k for k, v in source.field_mapping.items()}
    selected = [
        F.col(f"`{reverse.get(c.name, c.name)}`").alias(
            view.projection.join_key_map.get(c.name, c.name)
        )
        for c in view.entity_columns
    ]
    event_column, created_column = "__lh_source_event_ts", None
    selected.append(F.col(f"`{context.timestamp_field}`").alias(event_column))
    if context.created_timestamp_column:
        created_column = "__lh_source_created_ts"
        selected.append(F.col(f"`{context.created_timestamp_column}`").alias(created_column))
    outputs = []
    for feature in context.features:
        name = source.field_mapping.get(feature, feature)
        output = f"{context.name}__{name}" if full_feature_names else name
        selected.append(F.col(f"`{feature}`").alias(output))
        outputs.append(output)
    request = asof.ViewRequest(
        name=context.name,
        join_keys=tuple(context.entities),
        rows=rows.select(*selected),
        features=tuple(outputs),
        event_timestamp_column=event_column,
        created_timestamp_column=created_column,
        ttl_seconds=int(context.ttl or 0),
    )
    return request, version


def _apply_field_mapping(frame: DataFrame, field_mapping: dict[str, str]) -> DataFrame:
    for source_name, feast_name in (field_mapping or {}).items():
        if source_name in frame.columns:
            frame = frame.withColumnRenamed(source_name, feast_name)
    return frame
