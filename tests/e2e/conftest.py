"""The generated lake the daily job builds once, shared by the end-to-end tests.

These tests run last (see tests/conftest.py): the fixture drops every database of the
shared test lake and rebuilds it from generated landing files with the daily job.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from tests.conftest import empty_shared_lake
from tests.e2e import lakes

CUSTOMERS = 80
DAYS = 75
SEED = 11


@pytest.fixture(scope="session")
def daily_lake(spark, lakehouse_root):
    from features.daily import DailyOptions, run_daily
    from features.generate import GeneratorConfig, generate

    # The daily-lake tests run last (see tests/conftest.py): they own the lake from here on.
    empty_shared_lake(spark, lakehouse_root)
    # Only the churn model's own versions go: MLflow keeps its SQLite store open.
    shutil.rmtree(lakehouse_root / "artifacts" / "models" / "churn", ignore_errors=True)
    config = GeneratorConfig(customers=CUSTOMERS, days=DAYS, seed=SEED)
    summary = generate(spark, config)
    dates = [config.start + dt.timedelta(days=i) for i in range(DAYS)]
    lakes.hold_back(lakehouse_root, dates[-2])
    backfill = run_daily(spark, dates[:-1], options=DailyOptions(retrain="always"))
    lakes.deliver(lakehouse_root, dates[-2])
    daily = run_daily(spark, dates[-1:])
    # Later tests change the lake (rescoring, drift rows, more models); what the daily job
    # itself left is kept by version, for comparing with other lakes built from its files.
    versions = lakes.delta_tables(spark)
    return lakes.DailyLake(
        spark=spark,
        dates=dates,
        summary=summary,
        backfill=backfill,
        daily=daily,
        versions=versions,
    )


@pytest.fixture(scope="session")
def second_lake_stack(cluster_stack):
    """The cluster setup with a metastore and a Feast registry of the second lake's own
    (``tests/cluster`` left a table and an entity in the first ones)."""
    from features.cluster import stack

    return stack.with_catalog(cluster_stack, "second_lake")


@pytest.fixture(scope="session")
def killed_lake(daily_lake, lakehouse_root, second_lake_stack, tmp_path_factory):
    """The second lake: the daily lake's files on the cluster setup, its runs killed at random.

    Returns ``(root, attempts, log)`` (see :func:`tests.e2e.second_lake.build`).
    """
    from features.cluster import stack
    from tests.e2e import second_lake

    root = tmp_path_factory.mktemp("killed_lake")
    return second_lake.build(daily_lake, lakehouse_root, root, stack.environment(second_lake_stack))
