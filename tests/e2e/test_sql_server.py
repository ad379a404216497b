"""The Spark Thrift Server over a lake: real clients (beeline, PyHive, dbt) query it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from features import lakehouse, sql_server
from tests.conftest import REPO_ROOT, free_port

pytestmark = pytest.mark.e2e

_WRITE_PREDICTIONS = """
import datetime as dt
from features import lakehouse
spark = lakehouse.spark_session()
lakehouse.ensure_databases(spark)
rows = [(c, dt.date(2026, 3, 1), c / 10, c, "churn_lr", "1", dt.datetime(2026, 3, 2))
        for c in range(1, 11)]
spark.createDataFrame(rows, "customer_id bigint, score_date date, churn_probability double, "
                      "risk_decile int, model_name string, model_version string, "
                      "scored_at timestamp").write.format("delta").partitionBy("score_date") \
    .saveAsTable("predictions.churn_scores")
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Derby admits one JVM per metastore: the server gets a lake of its own.
    root = tmp_path_factory.mktemp("thrift_lake")
    env = dict(os.environ, LAKEHOUSE_ROOT=str(root), SPARK_MASTER="local[1]",
               LAKEHOUSE_DRIVER_MEMORY="1g")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_WRITE_PREDICTIONS)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = lakehouse.LakehouseSettings(root=root, master="local[1]", driver_memory="1g",
                                      shuffle_partitions=2)
    port = free_port()
    process = sql_server.start(cfg, port=port)
    yield root, port
    sql_server.stop(process)


def test_beeline_reads_predictions(server) -> None:
    _, port = server
    out = sql_server.beeline(
        "select count(*) as n, max(risk_decile) as top from predictions.churn_scores "
        "where score_date = '2026-03-01'",
        port=port,
    )
    assert "n,top" in out and "10,10" in out


def test_pyhive_client_queries_the_same_table(server) -> None:
    from pyhive import hive

    _, port = server
    with hive.connect(host="127.0.0.1", port=port, username="analyst") as conn:
        cursor = conn.cursor()
        cursor.execute(
            "select customer_id from predictions.churn_scores order by churn_probability desc "
            "limit 3"
        )
        assert [row[0] for row in cursor.fetchall()] == [10, 9, 8]


def test_dbt_thrift_target_runs_the_project_from_a_shell(server) -> None:
    root, port = server
    project = REPO_ROOT / "dbt_project"
    env = dict(os.environ, LAKEHOUSE_ROOT=str(root), LAKEHOUSE_THRIFT_PORT=str(port))
    dbt = Path(sys.executable).parent / "dbt"
    proc = subprocess.run(
        [str(dbt), "debug", "--project-dir", str(project), "--profiles-dir", str(project),
         "--target", "thrift"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "All checks passed" in proc.stdout
    # The same project builds through the server: its seed lands as a Delta table.
    proc = subprocess.run(
        [str(dbt), "seed", "--project-dir", str(project), "--profiles-dir", str(project),
         "--target", "thrift"],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    out = sql_server.beeline(
        "select count(*) as n from staging.sentiment_lexicon where category = 'cancel'",
        port=port,
    )
    assert int(out.strip().splitlines()[-1]) > 0
