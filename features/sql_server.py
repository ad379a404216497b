"""``features serve-sql``: a Spark Thrift Server over the lakehouse.

Analysts connect with beeline (shipped with pyspark) or any HiveServer2 client, and
dbt's ``thrift`` target runs the project through it.  The server is started with
``spark-submit`` from the installed pyspark and the same settings as every other
Spark process of the lakehouse (:func:`features.lakehouse.spark_conf`).
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from features import console, lakehouse

THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"


class ThriftServerError(RuntimeError):
    """The Thrift Server did not come up."""


def thrift_command(
    cfg: lakehouse.LakehouseSettings, *, host: str = "127.0.0.1", port: int = 10000
) -> list[str]:
    """Return the command line that starts the Thrift Server over the lake."""
    submit = lakehouse.spark_home() / "bin" / "spark-submit"
    command = [str(submit), "--class", THRIFT_CLASS, "--name", "lakehouse-thrift-server"]
    conf = lakehouse.spark_conf(cfg)
    conf["spark.app.name"] = "lakehouse-thrift-server"
    # The server's sessions load the catalog class from the driver's own classpath,
    # which spark.jars alone does not extend in client mode.
    # (All of spark.jars, a shared metastore's JDBC driver among them: that is the whole of
    # spark.driver.extraClassPath, which --driver-class-path sets.)
    command += ["--jars", conf["spark.jars"],
                "--driver-class-path", conf["spark.jars"].replace(",", ":")]
    for key, value in conf.items():
        if key != "spark.driver.extraClassPath":
            command += ["--conf", f"{key}={value}"]
    command += [
        "--hiveconf", f"hive.server2.thrift.port={port}",
        "--hiveconf", f"hive.server2.thrift.bind.host={host}",
        "--hiveconf", "hive.server2.authentication=NONE",
        "spark-internal",
    ]
    return command


def wait_for_port(host: str, port: int, *, timeout_s: float, process=None) -> None:
    """Wait until ``host:port`` accepts connections (or the process dies)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ThriftServerError(f"Thrift Server exited with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(1)
    raise ThriftServerError(f"Thrift Server did not listen on {host}:{port} in {timeout_s:.0f}s")


def start(
    cfg: lakehouse.LakehouseSettings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 10000,
    log_path: Path | None = None,
    timeout_s: float = 180,
) -> subprocess.Popen:
    """Start the Thrift Server in the background and wait until it listens.

    Returns:
        The server process; stop it with :func:`stop`.
    """
    cfg = cfg or lakehouse.settings()
    cfg.root.mkdir(parents=True, exist_ok=True)
    lakehouse.ensure_jvm_jars(cfg)
    console.write_log4j_config(cfg.root)
    log_path = log_path or cfg.root / "thrift-server.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        thrift_command(cfg, host=host, port=port),
        stdout=log, stderr=subprocess.STDOUT, cwd=cfg.root, start_new_session=True,
    )
    try:
        wait_for_port(host, port, timeout_s=timeout_s, process=process)
    except ThriftServerError as err:
        stop(process)
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise ThriftServerError(f"{err}; its output {log_path}:\n{tail}\n"
                                f"its JVM's log: {console.jvm_log(cfg.root)}") from err
    return process


def stop(process: subprocess.Popen, *, timeout_s: float = 30) -> None:
    """Stop a Thrift Server started by :func:`start`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def beeline(query: str, *, host: str = "127.0.0.1", port: int = 10000) -> str:
    """Run one query with beeline, the JDBC client pyspark ships; return its output."""
    command = [
        str(lakehouse.spark_home() / "bin" / "beeline"),
        "-u", f"jdbc:hive2://{host}:{port}/default",
        "--silent=true", "--outputformat=csv2", "-e", query,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise ThriftServerError(f"beeline failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout
