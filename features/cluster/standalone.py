"""A Spark standalone cluster on this machine: one master and its workers.

Started with ``spark-class`` from the installed pyspark (the same Spark the lake's driver
runs), each daemon in the background with a pid file and a log under the cluster's folder.
Point the lake at it with ``SPARK_MASTER=spark://127.0.0.1:7077``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from features import jdk, jvm_archive, lakehouse
from features.cluster import daemons

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


@dataclasses.dataclass(frozen=True)
class StandaloneCluster:
    """Where and how big the cluster is.

    Attributes:
        home: Folder of its pid files, logs and worker directories.
        host: Address the master and workers bind (loopback).
        port: The master's port.
        webui_port: The master's web UI (its JSON status tells which workers are alive).
        workers: Number of workers.
        worker_cores: Cores each worker offers.
        worker_memory: Memory each worker offers its executors.
    """

    home: Path
    host: str = "127.0.0.1"
    port: int = 7077
    webui_port: int = 8080
    workers: int = 2
    worker_cores: int = 1
    worker_memory: str = "3g"

    @property
    def master_url(self) -> str:
        """The ``SPARK_MASTER`` of the cluster."""
        return f"spark://{self.host}:{self.port}"

    def pid_file(self, name: str) -> Path:
        """Pid file of daemon ``name`` (``master``, ``worker-1`` ...)."""
        return self.home / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        """Log of daemon ``name``."""
        return self.home / f"{name}.log"

    @property
    def daemons(self) -> list[str]:
        """Names of its daemons, master first."""
        return ["master", *(f"worker-{i}" for i in range(1, self.workers + 1))]


def _environment(cluster: StandaloneCluster) -> dict[str, str]:
    env = dict(os.environ)
    jdk.use(env)  # the executors run the drivers' JDK (and can map its class archive)
    env.update(
        {
            "SPARK_HOME": str(lakehouse.spark_home()),
            "SPARK_LOCAL_IP": cluster.host,
            "SPARK_LOG_DIR": str(cluster.home),
            # The daemons serve every lake: no lake's spark-defaults.conf (nor the install's
            # spark-env.sh, which follows LAKEHOUSE_ROOT) is theirs.  An empty folder, the one
            # on the class path of the recorded class archive (their executors map it; the
            # daemons keep the folder of the cache of whoever started them).
            "SPARK_CONF_DIR": str(jvm_archive.launch_conf_dir()),
            "SPARK_DAEMON_JAVA_OPTS": "-Duser.timezone=UTC",
            # Executors' Python workers run this environment's Python, as the driver does.
            "PYSPARK_PYTHON": sys.executable,
        }
    )
    return env


def status(cluster: StandaloneCluster) -> dict:
    """The master's JSON status (``aliveworkers``, ``workers`` ...); empty when it is down."""
    try:
        url = f"http://{cluster.host}:{cluster.webui_port}/json/"
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return json.loads(response.read())
    except OSError:
        return {}


def start(cluster: StandaloneCluster, *, timeout_s: float = 120) -> StandaloneCluster:
    """Start the master and the workers that are not running; wait until all are alive."""
    env = _environment(cluster)
    spark_class = str(lakehouse.spark_home() / "bin" / "spark-class")
    if not daemons.alive(cluster.pid_file("master")):
        daemons.spawn(
            [
                spark_class,
                MASTER_CLASS,
                "--host",
                cluster.host,
                "--port",
                str(cluster.port),
                "--webui-port",
                str(cluster.webui_port),
            ],
            pid_file=cluster.pid_file("master"),
            log_file=cluster.log_file("master"),
            env=env,
        )
    daemons.wait_for_port(
        cluster.host,
        cluster.port,
        timeout_s=timeout_s,
        what="Spark master",
        pid_file=cluster.pid_file("master"),
        log_file=cluster.log_file("master"),
    )
    for name in cluster.daemons[1:]:
        if daemons.alive(cluster.pid_file(name)):
            continue
        work = cluster.home / name
        work.mkdir(exist_ok=True)
        daemons.spawn(
            [
                spark_class,
                WORKER_CLASS,
                "--host",
                cluster.host,
                "--cores",
                str(cluster.worker_cores),
                "--memory",
                cluster.worker_memory,
                "--work-dir",
                str(work),
                "--webui-port",
                "0",
                cluster.master_url,
            ],
            pid_file=cluster.pid_file(name),
            log_file=cluster.log_file(name),
            env=env,
        )
    deadline = time.monotonic() + timeout_s
    while status(cluster).get("aliveworkers", 0) < cluster.workers:
        dead = [n for n in cluster.daemons if not daemons.alive(cluster.pid_file(n))]
        if dead or time.monotonic() > deadline:
            logs = ", ".join(str(cluster.log_file(n)) for n in cluster.daemons)
            raise daemons.DaemonError(
                f"Spark standalone cluster at {cluster.master_url}: "
                f"{status(cluster).get('aliveworkers', 0)} of {cluster.workers} workers alive"
                + (f"; exited: {', '.join(dead)}" if dead else "")
                + f" (logs {logs})"
            )
        time.sleep(1)
    return cluster


def stop(cluster: StandaloneCluster) -> None:
    """Stop the workers, then the master."""
    for name in reversed(cluster.daemons):
        daemons.terminate(cluster.pid_file(name))
