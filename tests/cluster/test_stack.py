"""The cluster setup's servers, started by the tests: programs on them share one catalog.

A Spark program runs on the standalone cluster (its tasks on the two workers) and writes a
Delta table through the PostgreSQL metastore; a Thrift Server and another Spark program
then read it at the same time, which the embedded Derby metastore would refuse; Feast's
registry lives in PostgreSQL and its online store in Redis.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from features import lakehouse, sql_server
from features.cluster import postgres, redis, stack, standalone
from tests.conftest import free_port

pytestmark = pytest.mark.cluster

_WRITE = """
import os
import socket
import time

from features import lakehouse

spark = lakehouse.spark_session()
lakehouse.ensure_databases(spark)
frame = spark.range(0, 1000, numPartitions=4).selectExpr("id", "id % 7 as k")
frame.write.format("delta").mode("overwrite").saveAsTable("ops.cluster_probe")
# Both workers' executors registered (the driver is listed too), then a task per slot.
status = spark.sparkContext._jsc.sc().getExecutorMemoryStatus
deadline = time.monotonic() + 60
while status().size() < 3 and time.monotonic() < deadline:
    time.sleep(0.5)


def where(_):
    time.sleep(0.5)  # long enough for every slot to take one
    # A Python worker's parent is its executor's Python daemon: one per executor.
    return socket.gethostname(), os.getpid(), os.getppid()


places = spark.range(0, 8, numPartitions=8).rdd.map(where).distinct().collect()
print("MASTER", spark.sparkContext.master)
print("EXECUTORS", status().size() - 1)
print("WORKER_PROCESSES", len({(host, pid) for host, pid, _ in places}))
print("EXECUTORS_WITH_TASKS", len({(host, parent) for host, _, parent in places}))
print("ROWS", spark.table("ops.cluster_probe").count())
"""
FEATURES = Path(sys.executable).with_name("features")
QUERY = "select count(*) as n, sum(k) as s from ops.cluster_probe"


@pytest.fixture(scope="module")
def cluster_lake(cluster_stack, tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster_lake")
    env = dict(
        os.environ,
        **stack.environment(cluster_stack),
        LAKEHOUSE_ROOT=str(root),
        LAKEHOUSE_DRIVER_MEMORY="1g",
        LAKEHOUSE_EXECUTOR_MEMORY="1g",
        LAKEHOUSE_SHUFFLE_PARTITIONS="2",
    )
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WRITE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, env, proc.stdout


def test_a_program_runs_on_the_workers(cluster_stack, cluster_lake) -> None:
    _, _, out = cluster_lake
    assert f"MASTER {cluster_stack.spark.master_url}" in out
    assert "ROWS 1000" in out

    # Python tasks ran in the executors' own Python workers, not in the driver, and in
    # both workers' executors.
    def printed(name: str) -> int:
        return int(out.split(f"{name} ")[1].split()[0])

    assert printed("EXECUTORS") == 2, out
    assert printed("WORKER_PROCESSES") >= 2, out
    assert printed("EXECUTORS_WITH_TASKS") == 2, out
    # The program's JVM logs to its lake's file, not to the pipe this test read: Python can
    # be gone while the JVM still shuts down, so the master may list the app a moment later.
    deadline = time.monotonic() + 60
    while True:
        apps = standalone.status(cluster_stack.spark)
        done = [app["name"] for app in apps.get("completedapps", [])]
        if "lakehouse" in done or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "lakehouse" in done, apps


def test_the_table_is_in_the_shared_metastore(cluster_stack, cluster_lake) -> None:
    names = postgres.psql(
        cluster_stack.postgres, 'select "TBL_NAME" from "TBLS"', database=cluster_stack.metastore_db
    ).split()
    assert "cluster_probe" in names


def test_one_catalog_serves_several_programs_at_once(cluster_lake) -> None:
    root, env, _ = cluster_lake
    # Local masters: the cluster's cores would all go to whichever program came first.
    cfg = dataclasses.replace(lakehouse.LakehouseSettings.from_env(env), master="local[1]")
    port = free_port()
    server = sql_server.start(cfg, port=port)
    answers: dict[str, str] = {}
    try:

        def program() -> None:
            proc = subprocess.run(
                [str(FEATURES), "sql", QUERY],
                env={**env, "SPARK_MASTER": "local[1]"},
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            answers["features sql"] = proc.stdout if proc.returncode == 0 else proc.stderr

        other = threading.Thread(target=program)
        other.start()
        answers["beeline"] = sql_server.beeline(QUERY, port=port)
        other.join()
    finally:
        sql_server.stop(server)
    expected = (1000, sum(i % 7 for i in range(1000)))
    assert f"{expected[0]},{expected[1]}" in answers["beeline"], answers["beeline"]
    sql_out = answers["features sql"]
    assert str(expected[0]) in sql_out and str(expected[1]) in sql_out, sql_out[-2000:]


def test_feast_registry_in_postgres_and_online_store_in_redis(
    cluster_stack, cluster_lake, monkeypatch
) -> None:
    from feast import Entity, FeatureStore

    from features import feast_repo

    root, env, _ = cluster_lake
    for key in ("LAKEHOUSE_FEAST_YAML", "LAKEHOUSE_FEAST_REGISTRY_URL", "LAKEHOUSE_REDIS"):
        monkeypatch.setenv(key, env[key])
    path = feast_repo.yaml_path()
    assert path.name == stack.FEAST_CLUSTER_YAML
    store = FeatureStore(repo_path=str(feast_repo.repo_path()), fs_yaml_file=path)
    assert store.config.registry.registry_type == "sql"
    assert store.config.online_store.type == "redis"
    store.apply([Entity(name="cluster_probe_customer", join_keys=["customer_id"])])
    again = FeatureStore(repo_path=str(feast_repo.repo_path()), fs_yaml_file=path)
    assert "cluster_probe_customer" in [e.name for e in again.list_entities()]
    rows = postgres.psql(
        cluster_stack.postgres,
        "select entity_name from entities",
        database=cluster_stack.registry_db,
    ).split()
    assert "cluster_probe_customer" in rows
    assert redis.ping(cluster_stack.redis)
