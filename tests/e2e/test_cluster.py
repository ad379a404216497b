"""The same pipeline on the cluster setup gives the embedded default's predictions.

The ``killed_lake`` is the daily lake's landing files run by ``features daily`` for its two
dates (the backfill, then the last day) on a Spark standalone cluster with the Hive metastore and
Feast's registry in PostgreSQL and Feast's online store in Redis (see
:mod:`tests.e2e.second_lake`).  Its predictions must equal those of the embedded default's
clean run.  (Several programs on the one catalog at once: ``tests/cluster/test_stack.py``.)
"""

from __future__ import annotations

import pytest

from features.cluster import postgres
from tests.e2e import lakes

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.second_lake]


def test_predictions_equal_the_embedded_default(daily_lake, killed_lake) -> None:
    spark, dates, versions = daily_lake.spark, daily_lake.dates, daily_lake.versions
    root, attempts, log = killed_lake
    name = "predictions.churn_scores"
    columns = "customer_id, score_date, churn_probability, risk_decile, model_version"
    clean = {
        (r.customer_id, r.score_date): r
        for r in lakes.read_version(spark, name, versions[name])
        .selectExpr(*columns.split(", "))
        .collect()
    }
    cluster = {
        (r.customer_id, r.score_date): r
        for r in lakes.read_folder(spark, root, name).selectExpr(*columns.split(", ")).collect()
    }
    assert {day for _, day in clean} == {dates[-2], dates[-1]}
    assert cluster.keys() == clean.keys(), f"kills {attempts}; see {log}"
    for key, row in cluster.items():
        assert row.churn_probability == pytest.approx(clean[key].churn_probability, abs=1e-9)
        assert (row.risk_decile, row.model_version) == (
            clean[key].risk_decile,
            clean[key].model_version,
        )


def test_the_registry_and_the_online_store_are_the_servers(second_lake_stack, killed_lake) -> None:
    import redis as redis_client

    servers = second_lake_stack
    views = postgres.psql(
        servers.postgres,
        "select feature_view_name from feature_views",
        database=servers.registry_db,
    ).split()
    assert sorted(views) == ["customer_billing", "customer_support", "customer_usage"]
    online = redis_client.Redis(host=servers.redis.host, port=servers.redis.port)
    assert online.dbsize() > 0  # materialized customers
