"""Feast offline store over Delta: ``type: features.offline_store.LakehouseOfflineStore``.

Modules, one topic each: :mod:`.config` (the ``offline_store:`` block), :mod:`.sources`
(SparkSource -> DataFrame, Delta version pinning, time and partition pruning),
:mod:`.asof` (the point-in-time engine, pure DataFrame functions: a sort, or a range join
where the training frame's shape favours it), :mod:`.job` (the lazy RetrievalJob) and
:mod:`.store` (Feast's OfflineStore interface).
"""

from __future__ import annotations

from features.offline_store.config import LakehouseOfflineStoreConfig
from features.offline_store.job import LakehouseRetrievalJob
from features.offline_store.sources import pinned_versions, source_id
from features.offline_store.store import LakehouseOfflineStore

__all__ = [
    "LakehouseOfflineStore",
    "LakehouseOfflineStoreConfig",
    "LakehouseRetrievalJob",
    "pinned_versions",
    "source_id",
]
