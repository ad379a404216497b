"""``LakehouseRetrievalJob``: a lazy Spark plan, with the Delta versions it reads."""

from __future__ import annotations

import pandas as pd
import pyarrow
from feast.errors import SavedDatasetLocationAlreadyExists
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
    SavedDatasetSparkStorage,
)
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.on_demand_feature_view import OnDemandFeatureView
from feast.saved_dataset import SavedDatasetStorage
from pyspark.sql import DataFrame


class LakehouseRetrievalJob(RetrievalJob):
    """A retrieval as a lazy Spark DataFrame: nothing runs until rows are asked for.

    Attributes:
        source_versions: Delta version read of each source (by table, path or
            ``query:<sql>``; None when not a Delta source).  Pass it to
            :func:`features.offline_store.pinned_versions` to rebuild the same result.
        join_strategies: The point-in-time join's strategy (``sort`` or ``range``) for
            each group of views, by their join keys (see :mod:`.asof`).
    """

    def __init__(
        self,
        *,
        frame: DataFrame,
        full_feature_names: bool,
        on_demand_feature_views: list[OnDemandFeatureView] | None = None,
        metadata: RetrievalMetadata | None = None,
        source_versions: dict[str, int | None] | None = None,
        join_strategies: dict[tuple[str, ...], str] | None = None,
    ) -> None:
        super().__init__()
        self._frame = frame
        self._full_feature_names = full_feature_names
        self._on_demand_feature_views = on_demand_feature_views or []
        self._metadata = metadata
        self.source_versions: dict[str, int | None] = dict(source_versions or {})
        self.join_strategies: dict[tuple[str, ...], str] = dict(join_strategies or {})

    @property
    def full_feature_names(self) -> bool:
        """Whether feature columns are named ``view__feature``."""
        return self._full_feature_names

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        """On-demand views Feast applies after the retrieval."""
        return self._on_demand_feature_views

    @property
    def metadata(self) -> RetrievalMetadata | None:
        """Features, keys and the entity time range of the retrieval."""
        return self._metadata

    def to_spark_df(self) -> DataFrame:
        """Return the result as a lazy Spark DataFrame (nothing is collected)."""
        return self._frame

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._frame.toPandas()

    def _to_arrow_internal(self, timeout: int | None = None) -> pyarrow.Table:
        return self._frame.toArrow()

    def persist(
        self,
        storage: SavedDatasetStorage,
        allow_overwrite: bool | None = False,
        timeout: int | None = None,
    ) -> None:
        """Write the result to the table or path of a ``SavedDatasetSparkStorage``."""
        if not isinstance(storage, SavedDatasetSparkStorage):
            raise TypeError(
                f"LakehouseRetrievalJob.persist needs SavedDatasetSparkStorage, "
                f"got {type(storage).__name__}"
            )
        options = storage.spark_options
        if not allow_overwrite:  # Feast's contract: its error, before anything is written
            location = options.path or options.table
            if location and self._location_exists(path=options.path, table=options.table):
                raise SavedDatasetLocationAlreadyExists(location=location)
        mode = "overwrite" if allow_overwrite else "errorifexists"
        writer = self._frame.write.format(options.file_format or "delta").mode(mode)
        if options.path:
            writer.save(options.path)
        elif options.table:
            writer.saveAsTable(options.table)
        else:
            raise ValueError("SavedDatasetSparkStorage needs a table or a path to persist to")

    def _location_exists(self, *, path: str | None, table: str | None) -> bool:
        """Whether the table, or anything at the path (any Hadoop file system), exists."""
        spark = self._frame.sparkSession
        if not path:
            return table is not None and bool(table) and spark.catalog.tableExists(table)
        jvm = spark.sparkContext._jvm
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        return bool(fs.exists(hadoop_path))
