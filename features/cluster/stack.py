"""The whole cluster setup at once: Spark standalone, PostgreSQL (metastore, Feast registry)
and Redis (Feast's online store), and the environment that points the lake at them.

``features cluster up`` starts what is not running and prints that environment;
``features cluster down`` stops it all.  The lake's processes started with that environment
(``features daily``, ``features serve-sql``, ``dbt``, ``feast``) share one catalog: unlike the
embedded Derby metastore, PostgreSQL admits many of them at once.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from features import lakehouse
from features.cluster import metastore, postgres, redis, standalone

FEAST_CLUSTER_YAML = "feature_store.cluster.yaml"


@dataclasses.dataclass(frozen=True)
class ClusterStack:
    """The servers of the cluster setup.

    Attributes:
        spark: The standalone cluster.
        postgres: The PostgreSQL server.
        redis: The Redis server.
        metastore_db: Database of the Hive metastore.
        registry_db: Database of Feast's SQL registry.
    """

    spark: standalone.StandaloneCluster
    postgres: postgres.PostgresServer
    redis: redis.RedisServer
    metastore_db: str = "metastore"
    registry_db: str = "feast_registry"


def stack_for(
    home: Path | None = None,
    *,
    postgres_dir: Path | None = None,
    workers: int = 2,
    worker_cores: int = 1,
    worker_memory: str = "3g",
    ports: dict[str, int] | None = None,
) -> ClusterStack:
    """The cluster setup with its files under ``home``.

    Args:
        home: Folder of pid files, logs and worker directories; ``LAKEHOUSE_CLUSTER_DIR`` or
            ``<lakehouse root>/cluster`` by default.
        postgres_dir: PostgreSQL's data folder; ``LAKEHOUSE_POSTGRES_DIR`` or
            ``<home>/postgres`` by default (run as root, the ``postgres`` user must be able
            to reach it).
        workers: Number of Spark workers.
        worker_cores: Cores each worker offers its executors.
        worker_memory: Memory each worker offers.
        ports: Ports other than the servers' defaults, by name: ``spark`` (the master),
            ``spark_webui`` (the master's web UI), ``postgres``, ``redis``.
    """
    home = Path(
        home or os.environ.get("LAKEHOUSE_CLUSTER_DIR") or lakehouse.settings().root / "cluster"
    )
    postgres_dir = Path(
        postgres_dir or os.environ.get("LAKEHOUSE_POSTGRES_DIR") or home / "postgres"
    )
    ports = ports or {}
    unknown = set(ports) - {"spark", "spark_webui", "postgres", "redis"}
    if unknown:
        raise ValueError(f"unknown ports {sorted(unknown)}: spark, spark_webui, postgres, redis")

    def given(**fields: str) -> dict[str, Any]:
        """The server's port fields for the names given a port (others keep defaults)."""
        return {field: ports[name] for field, name in fields.items() if name in ports}

    return ClusterStack(
        spark=standalone.StandaloneCluster(
            home=home / "spark",
            workers=workers,
            worker_cores=worker_cores,
            worker_memory=worker_memory,
            **given(port="spark", webui_port="spark_webui"),
        ),
        postgres=postgres.PostgresServer(data_dir=postgres_dir, **given(port="postgres")),
        redis=redis.RedisServer(home=home / "redis", **given(port="redis")),
    )


def environment(stack: ClusterStack) -> dict[str, str]:
    """The variables that point the lake's processes at the cluster setup."""
    pg = stack.postgres
    return {
        "SPARK_MASTER": stack.spark.master_url,
        "SPARK_LOCAL_IP": stack.spark.host,
        "LAKEHOUSE_METASTORE_URL": pg.jdbc_url(stack.metastore_db),
        "LAKEHOUSE_METASTORE_USER": pg.user,
        "LAKEHOUSE_METASTORE_PASSWORD": pg.password,
        "LAKEHOUSE_FEAST_YAML": FEAST_CLUSTER_YAML,
        "LAKEHOUSE_FEAST_REGISTRY_URL": pg.sqlalchemy_url(stack.registry_db),
        "LAKEHOUSE_REDIS": stack.redis.connection_string,
    }


def ensure_catalog(stack: ClusterStack, *, log=print) -> None:
    """Create the stack's metastore (with its schema) and registry databases if missing."""
    postgres.ensure_database(stack.postgres, stack.registry_db)
    if metastore.init_schema(stack.postgres, stack.metastore_db):
        log(f"cluster: Hive metastore schema created in database {stack.metastore_db}")


def with_catalog(stack: ClusterStack, name: str, *, log=print) -> ClusterStack:
    """The same running servers with a catalog of their own, made if missing.

    The metastore is database ``<name>_metastore`` and Feast's registry
    ``<name>_registry``, so that a second lake (a test's, a staging copy) shares the
    servers without seeing the first one's databases, tables or feature views.
    """
    other = dataclasses.replace(
        stack, metastore_db=f"{name}_metastore", registry_db=f"{name}_registry"
    )
    ensure_catalog(other, log=log)
    return other


def up(stack: ClusterStack, *, log=print) -> dict[str, str]:
    """Start every server that is not running; return :func:`environment`."""
    postgres.start(stack.postgres)
    log(
        f"cluster: PostgreSQL on {stack.postgres.host}:{stack.postgres.port} "
        f"({stack.postgres.data_dir})"
    )
    ensure_catalog(stack, log=log)
    redis.start(stack.redis)
    log(f"cluster: Redis on {stack.redis.connection_string}")
    standalone.start(stack.spark)
    log(
        f"cluster: Spark master {stack.spark.master_url} with {stack.spark.workers} workers "
        f"(status http://{stack.spark.host}:{stack.spark.webui_port})"
    )
    return environment(stack)


def down(stack: ClusterStack, *, log=print) -> None:
    """Stop the Spark cluster, Redis and PostgreSQL (their data stays)."""
    standalone.stop(stack.spark)
    redis.stop(stack.redis)
    postgres.stop(stack.postgres)
    log("cluster: stopped")
