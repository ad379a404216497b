"""Shared fixtures: one SparkSession for the whole run, on a temporary lakehouse."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def lakehouse_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary lakehouse root of this test run, exported as LAKEHOUSE_ROOT."""
    root = tmp_path_factory.mktemp("lakehouse")
    os.environ["LAKEHOUSE_ROOT"] = str(root)
    return root


@pytest.fixture(scope="session")
def spark(lakehouse_root: Path) -> Iterator:
    """The one SparkSession of the run: local[2], 2 shuffle partitions, UI off, UTC."""
    from features import lakehouse

    cfg = lakehouse.LakehouseSettings(
        root=lakehouse_root,
        master="local[2]",
        driver_memory="3g",
        shuffle_partitions=2,
        ui_enabled=False,
    )
    session = lakehouse.spark_session(cfg)
    lakehouse.ensure_databases(session)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def feature_marts(spark):
    """The dbt feature marts built once from the hand-written bronze fixture."""
    from tests.dbt.bronze_fixture import BRONZE_SCHEMA, batch_one, write_bronze
    from tests.dbt.dbt_runner import dbt, failures

    write_bronze(spark, BRONZE_SCHEMA, batch_one(), mode="overwrite")
    result = dbt("build", "--full-refresh")
    assert result.success, failures(result)
    # The project's unit tests run here (the daily job's builds leave them out).
    assert (
        sum(
            str(getattr(r.node, "resource_type", "")) == "unit_test" and str(r.status) == "pass"
            for r in result.result
        )
        >= 6
    )
    return spark


def empty_shared_lake(spark, root: Path) -> None:
    """Drop every database of the shared test lake and its landing files, then make the
    databases again, empty.  What earlier tests cached of its tables (data, Delta logs)
    goes too: it would outlive the tables.  Its artifacts (Feast's registry, MLflow's
    store, models) stay."""
    from features import lakehouse

    spark.catalog.clearCache()
    for database in lakehouse.DATABASES:
        spark.sql(f"drop database if exists {database} cascade")
    spark._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    shutil.rmtree(root / "landing", ignore_errors=True)
    lakehouse.ensure_databases(spark)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def cluster_stack():
    """The cluster setup on loopback, started and stopped by the tests themselves.

    A Spark standalone master with two workers of two cores, PostgreSQL (Hive metastore and
    Feast's SQL registry) and Redis (Feast's online store), on free ports, their files in a
    folder the ``postgres`` user can reach when the tests run as root.
    """
    from features.cluster import stack

    home = Path(tempfile.mkdtemp(prefix="lakehouse-cluster-"))
    home.chmod(0o755)
    ports = {name: free_port() for name in ("spark", "spark_webui", "postgres", "redis")}
    servers = stack.stack_for(
        home,
        postgres_dir=home / "postgres",
        workers=2,
        worker_cores=2,
        worker_memory="2g",
        ports=ports,
    )
    try:
        stack.up(servers)
        yield servers
    finally:
        stack.down(servers)
        shutil.rmtree(home, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests on the daily job's lake last: its fixture rebuilds the shared lake.

    Just before them, the young lake's (tests/spark/test_empty_lake.py), whose fixture
    empties the shared lake once every other test is done with it.  Among the daily lake's,
    those on the second lake first: they compare it with what the daily job left (model
    versions included), before other tests retrain or rescore.  The drift monitor's lake
    comes after them all: its fixture drops the shared lake for its own.
    """

    def order(item: pytest.Item) -> tuple[bool, bool, bool, bool]:
        names = getattr(item, "fixturenames", ())
        return (
            "drift_lake" in names,
            "daily_lake" in names,
            "young_lake" in names,
            "killed_lake" not in names,
        )

    items.sort(key=order)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The ``torch`` tests need the torch extra: skipped with the reason when it is missing,
    unless ``LAKEHOUSE_TORCH=required`` (``make test`` installs the extra and sets it), where
    a missing torch fails them."""
    if item.get_closest_marker("torch") is None:
        return
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        return
    message = "needs the torch extra: pip install -e '.[torch]'"
    if os.environ.get("LAKEHOUSE_TORCH") == "required":
        pytest.fail(f"LAKEHOUSE_TORCH=required but torch is not installed; {message}")
    pytest.skip(message)
