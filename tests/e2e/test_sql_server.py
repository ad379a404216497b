"""The Spark Thrift Server over a lake: real clients (beeline, PyHive, dbt) query it.

One server for the module, started as an operator starts it (``features serve-sql`` in a
process of its own) with logins checked against an OpenLDAP directory that the module
starts: every client below logs in.  The module's last test stops it with SIGTERM, as a
service manager does, and checks that nothing of it is left holding the lake.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from features import lakehouse, sql_server
from features.cluster import daemons
from tests.conftest import REPO_ROOT, free_port
from tests.e2e import ldap_directory

pytestmark = pytest.mark.e2e

USER, PASSWORD = "analyst", "s3cret"
FEATURES = str(Path(sys.executable).with_name("features"))

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


@dataclasses.dataclass
class Server:
    root: Path
    port: int
    process: subprocess.Popen  # `features serve-sql`
    env: dict[str, str]


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    found = ldap_directory.start(
        tmp_path_factory.mktemp("ldap"), users={USER: PASSWORD}, port=free_port()
    )
    yield found
    found.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, directory):
    # Derby admits one JVM per metastore: the server gets a lake of its own.
    root = tmp_path_factory.mktemp("thrift_lake")
    env = dict(
        os.environ,
        LAKEHOUSE_ROOT=str(root),
        SPARK_MASTER="local[1]",
        LAKEHOUSE_DRIVER_MEMORY="1g",
        LAKEHOUSE_SHUFFLE_PARTITIONS="2",
    )
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_WRITE_PREDICTIONS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root / "secret.txt").write_text("not for SQL clients\n")
    port = free_port()
    process = subprocess.Popen(
        [
            FEATURES,
            "serve-sql",
            "--port",
            str(port),
            "--ldap-url",
            directory.url,
            "--ldap-base-dn",
            directory.base_dn,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    daemons.wait_for_port(
        "127.0.0.1", port, timeout_s=240, what="features serve-sql", process=process
    )
    yield Server(root=root, port=port, process=process, env=env)
    if process.poll() is None:  # the SIGTERM test failed before stopping it
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def test_beeline_reads_predictions(server) -> None:
    out = sql_server.beeline(
        "select count(*) as n, max(risk_decile) as top from predictions.churn_scores "
        "where score_date = '2026-03-01'",
        port=server.port,
        user=USER,
        password=PASSWORD,
    )
    assert "n,top" in out and "10,10" in out


def test_a_wrong_password_or_none_is_refused(server) -> None:
    with pytest.raises(sql_server.ThriftServerError, match="Error validating the login"):
        sql_server.beeline("select 1", port=server.port, user=USER, password="wrong")
    with pytest.raises(sql_server.ThriftServerError, match="Error validating the login"):
        sql_server.beeline("select 1", port=server.port, user="intruder", password="x")


def test_clients_cannot_read_the_servers_files(server) -> None:
    query = f"select * from text.`{server.root / 'secret.txt'}`"
    with pytest.raises(sql_server.ThriftServerError) as refused:
        sql_server.beeline(query, port=server.port, user=USER, password=PASSWORD)
    assert "not for SQL clients" not in str(refused.value)
    assert "TABLE_OR_VIEW_NOT_FOUND" in str(refused.value)


def test_pyhive_client_queries_the_same_table(server) -> None:
    from pyhive import hive

    with hive.connect(
        host="127.0.0.1", port=server.port, username=USER, password=PASSWORD, auth="LDAP"
    ) as conn:
        cursor = conn.cursor()
        cursor.execute(
            "select customer_id from predictions.churn_scores order by churn_probability desc "
            "limit 3"
        )
        assert [row[0] for row in cursor.fetchall()] == [10, 9, 8]


def test_dbt_thrift_target_runs_the_project_from_a_shell(server) -> None:
    project = REPO_ROOT / "dbt_project"
    env = dict(
        server.env,
        LAKEHOUSE_THRIFT_PORT=str(server.port),
        LAKEHOUSE_THRIFT_AUTH="LDAP",
        LAKEHOUSE_THRIFT_USER=USER,
        LAKEHOUSE_THRIFT_PASSWORD=PASSWORD,
    )
    dbt = Path(sys.executable).parent / "dbt"
    proc = subprocess.run(
        [
            str(dbt),
            "debug",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target",
            "thrift",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "All checks passed" in proc.stdout
    # The same project builds through the server: its seed lands as a Delta table.
    proc = subprocess.run(
        [
            str(dbt),
            "seed",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target",
            "thrift",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    out = sql_server.beeline(
        "select count(*) as n from staging.sentiment_lexicon where category = 'cancel'",
        port=server.port,
        user=USER,
        password=PASSWORD,
    )
    assert int(out.strip().splitlines()[-1]) > 0


def test_a_command_on_the_held_lake_names_the_holder_at_once(server) -> None:
    started = time.monotonic()
    proc = subprocess.run(
        [FEATURES, "sql", "show databases"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.monotonic() - started
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr  # the message and the log's path
    assert f"lake {server.root} is in use by process" in lines[0]
    assert "features serve-sql" in lines[0] and "features cluster up" in lines[0]
    assert "full trace:" in lines[1]
    # Without the check Derby retries for most of a minute; the check itself is instant
    # (the rest is Python's start).
    assert took < 40, f"{took:.0f}s"


def test_sigterm_stops_the_server_and_frees_the_lake(server) -> None:
    """Runs last in the module: it stops the module's server."""
    jvms = _children(server.process.pid)
    assert jvms, "the server's JVM is not a child of `features serve-sql`"
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=90) == 0
    out = server.process.stdout.read()
    assert "stopped (SIGTERM)" in out
    for pid in jvms:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    cfg = lakehouse.LakehouseSettings.from_env(server.env)
    lakehouse.check_lake_free(cfg)  # Derby's lock went with the JVM
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
