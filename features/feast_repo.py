"""Feast over the lakehouse: the feature repository, applied and materialized in-process.

The repository itself (``feature_repo/``) is declarations only; this module opens it
with the lakehouse's settings (registry and online store under the lakehouse root) on
the one SparkSession, so that Feast's Spark code finds our session already configured.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from features import lakehouse

REPO_PATH = Path(__file__).resolve().parent.parent / "feature_repo"


def repo_path() -> Path:
    """Return the Feast repository directory (``LAKEHOUSE_FEATURE_REPO`` overrides)."""
    return Path(os.environ.get("LAKEHOUSE_FEATURE_REPO") or REPO_PATH)


def _prepare(cfg: lakehouse.LakehouseSettings | None = None) -> lakehouse.LakehouseSettings:
    cfg = cfg or lakehouse.settings()
    os.environ["LAKEHOUSE_ROOT"] = str(cfg.root)
    (cfg.artifacts_dir / "feast").mkdir(parents=True, exist_ok=True)
    lakehouse.spark_session(cfg)
    return cfg


def feature_store(cfg: lakehouse.LakehouseSettings | None = None):  # -> FeatureStore
    """Return a ``FeatureStore`` over ``feature_repo/`` and the lakehouse."""
    from feast import FeatureStore

    _prepare(cfg)
    return FeatureStore(repo_path=str(repo_path()))


def apply(cfg: lakehouse.LakehouseSettings | None = None) -> list[str]:
    """Run ``feast apply`` on the repository; return the names of the feature views."""
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    _prepare(cfg)
    path = repo_path()
    config = load_repo_config(path, path / "feature_store.yaml")
    # Feast imports the repository's modules by their path relative to the working
    # directory, as `feast apply` does when run inside the repository.
    if str(path) not in sys.path:
        sys.path.append(str(path))
    previous = Path.cwd()
    os.chdir(path)
    try:
        apply_total(config, path, skip_source_validation=False)
    finally:
        os.chdir(previous)
    store = feature_store(cfg)
    return sorted(view.name for view in store.list_feature_views())


def materialize_incremental(
    end: dt.datetime, cfg: lakehouse.LakehouseSettings | None = None
) -> None:
    """Load the latest feature values up to ``end`` into the online store."""
    feature_store(cfg).materialize_incremental(end_date=end)
