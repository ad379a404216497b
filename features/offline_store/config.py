"""Configuration of the lakehouse offline store (``offline_store:`` in feature_store.yaml)."""

from __future__ import annotations

from typing import Literal

from feast.repo_config import FeastConfigBaseModel
from pydantic import StrictInt, StrictStr

STORE_TYPE: Literal["features.offline_store.LakehouseOfflineStore"] = (
    "features.offline_store.LakehouseOfflineStore"
)


class LakehouseOfflineStoreConfig(FeastConfigBaseModel):
    """Configuration of :class:`features.offline_store.LakehouseOfflineStore`.

    Feast finds this class from the store's type string by appending ``Config`` to the
    class name and importing it from the same module (``features.offline_store``).

    Attributes:
        type: The store's import path.
        spark_conf: Accepted so a Feast Spark store configuration switches unchanged;
            ignored: the session always comes from :func:`features.lakehouse.spark_session`.
        staging_location: Accepted for the same reason; unused.
        filter_by_created_timestamp: Default for retrievals that do not ask for it
            (Feast's ``FeatureStore`` only passes it when True).  Off, like Feast.
        skew_bucket_days: When set, every key's timeline is cut into buckets of this many
            days so that one hot key is sorted by many tasks (see
            :mod:`features.offline_store.asof`).  Off by default: one sort per key.
        join_strategy: ``auto`` (the default) fits the point-in-time join to the entity
            frame's shape: the range strategy where entity rows are few per key against
            the feature rows their TTL windows cover, else the sort.  ``sort`` or ``range``
            force one (``range`` needs a TTL on every view).
    """

    type: Literal["features.offline_store.LakehouseOfflineStore"] = STORE_TYPE
    spark_conf: dict[str, str] | None = None
    staging_location: StrictStr | None = None
    filter_by_created_timestamp: bool = False
    skew_bucket_days: StrictInt | None = None
    join_strategy: Literal["auto", "sort", "range"] = "auto"


# Feast also goes the other way, from a config object to its store: it imports
# ``LakehouseOfflineStore`` from the config class's ``__module__``.  Both are exported
# by the package, so the config class names the package as its home.
LakehouseOfflineStoreConfig.__module__ = "features.offline_store"
