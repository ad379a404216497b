"""The same pipeline on the cluster setup gives the embedded default's predictions.

The ``killed_lake`` is the daily lake's seed run by ``features daily`` for its two dates (the
backfill, then the last day) on a Spark standalone cluster with the Hive metastore and
Feast's registry in PostgreSQL and Feast's online store in Redis (see
:mod:`tests.e2e.second_lake`).  Its predictions must equal those of the embedded default's
clean run; its catalog must serve several processes at once, which Derby cannot.
"""

from __future__ import annotations

import dataclasses
import subprocess
import threading

import pytest

from features import lakehouse, sql_server
from features.cluster import postgres, stack
from tests.e2e import lakes
from tests.e2e.conftest import free_port
from tests.e2e.second_lake import FEATURES, environment

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]


def test_predictions_equal_the_embedded_default(daily_lake, killed_lake) -> None:
    spark, dates, *_, versions = daily_lake
    root, attempts, log = killed_lake
    name = "predictions.churn_scores"
    columns = "customer_id, score_date, churn_probability, risk_decile, model_version"
    clean = {(r.customer_id, r.score_date): r for r in
             lakes.read_version(spark, name, versions[name]).selectExpr(
                 *columns.split(", ")).collect()}
    cluster = {(r.customer_id, r.score_date): r for r in
               lakes.read_folder(spark, root, name).selectExpr(*columns.split(", ")).collect()}
    assert {day for _, day in clean} == {dates[-2], dates[-1]}
    assert cluster.keys() == clean.keys(), f"kills {attempts}; see {log}"
    for key, row in cluster.items():
        assert row.churn_probability == pytest.approx(clean[key].churn_probability, abs=1e-9)
        assert (row.risk_decile, row.model_version) == (clean[key].risk_decile,
                                                        clean[key].model_version)


def test_the_registry_and_the_online_store_are_the_servers(cluster_stack, killed_lake) -> None:
    import redis as redis_client

    views = postgres.psql(cluster_stack.postgres, "select feature_view_name from feature_views",
                          database=cluster_stack.registry_db).split()
    assert sorted(views) == ["customer_billing", "customer_support", "customer_usage"]
    online = redis_client.Redis(host=cluster_stack.redis.host, port=cluster_stack.redis.port)
    assert online.dbsize() > 0  # materialized customers


def test_one_catalog_serves_several_processes_at_once(cluster_stack, killed_lake) -> None:
    """An analysts' Thrift Server and another Spark program query the shared metastore
    side by side (the embedded Derby metastore would refuse the second JVM)."""
    root, _, _ = killed_lake
    env = environment(root, stack.environment(cluster_stack))
    # Local masters: the cluster's two cores would all go to whichever program came first.
    cfg = dataclasses.replace(lakehouse.LakehouseSettings.from_env(env), master="local[1]",
                              driver_memory="1g")
    port = free_port()
    server = sql_server.start(cfg, port=port)
    query = "select count(*) from predictions.churn_scores"
    answers: dict[str, str] = {}
    try:
        def program() -> None:
            proc = subprocess.run([FEATURES, "sql", query], env={**env, "SPARK_MASTER": "local[1]"},
                                  capture_output=True, text=True, timeout=600, check=False)
            answers["features sql"] = proc.stdout if proc.returncode == 0 else proc.stderr

        other = threading.Thread(target=program)
        other.start()
        answers["beeline"] = sql_server.beeline(query, port=port)
        other.join()
    finally:
        sql_server.stop(server)
    expected = lakes.read_folder(lakehouse.spark_session(), root,
                                 "predictions.churn_scores").count()
    assert expected > 0
    assert str(expected) in answers["beeline"].split()
    assert str(expected) in answers["features sql"], answers["features sql"][-2000:]
