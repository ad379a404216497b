"""``features serve-sql``: a Spark Thrift Server over the lakehouse.

Analysts connect with beeline (shipped with pyspark) or any HiveServer2 client, and
dbt's ``thrift`` target runs the project through it.  The server is started with
``spark-submit`` from the installed pyspark and the same settings as every other
Spark process of the lakehouse (:func:`features.lakehouse.spark_conf`).

Secure by default: it listens on loopback; SQL on raw files (``select * from
text.`/etc/passwd```) is off for its clients; and it refuses to listen on any other
address unless clients must authenticate, against an LDAP directory
(HiveServer2's ``LDAP`` mode: a simple bind as ``uid=<user>,<base DN>``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import signal
import subprocess
from pathlib import Path

from features import console, jdk, lakehouse
from features.cluster import daemons

THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"


class ThriftServerError(RuntimeError):
    """The Thrift Server did not come up."""


class InsecureServer(ValueError):
    """The server was asked to listen beyond loopback without authentication."""


@dataclasses.dataclass(frozen=True)
class LdapAuth:
    """Clients authenticate with a user name and password, checked by an LDAP bind.

    Attributes:
        url: The directory, ``ldap://host:port`` (or ``ldaps://``).
        base_dn: Where the users are: user ``u`` binds as ``uid=u,<base_dn>``.
    """

    url: str
    base_dn: str

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> LdapAuth | None:
        """``LAKEHOUSE_THRIFT_LDAP_URL`` and ``LAKEHOUSE_THRIFT_LDAP_BASE_DN``, if set."""
        env = os.environ if environ is None else environ
        url = env.get("LAKEHOUSE_THRIFT_LDAP_URL")
        if not url:
            return None
        base_dn = env.get("LAKEHOUSE_THRIFT_LDAP_BASE_DN")
        if not base_dn:
            raise InsecureServer(
                "LAKEHOUSE_THRIFT_LDAP_URL is set without "
                "LAKEHOUSE_THRIFT_LDAP_BASE_DN (e.g. ou=people,dc=example,dc=com)"
            )
        return cls(url=url, base_dn=base_dn)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it resolves to whatever the network says
        return False


def check_exposure(host: str, auth: LdapAuth | None) -> None:
    """Refuse a server that anyone on the network could use without a password.

    Raises:
        InsecureServer: ``host`` is not loopback and ``auth`` is None.
    """
    if auth is None and not is_loopback(host):
        raise InsecureServer(
            f"listening on {host} would let anyone who reaches this machine read "
            "the lake without a password. Give an LDAP directory (--ldap-url and "
            "--ldap-base-dn, or LAKEHOUSE_THRIFT_LDAP_URL / LAKEHOUSE_THRIFT_LDAP_BASE_DN), "
            "or listen on 127.0.0.1 (the default)"
        )


def thrift_command(
    cfg: lakehouse.LakehouseSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 10000,
    auth: LdapAuth | None = None,
) -> list[str]:
    """Return the command line that starts the Thrift Server over the lake.

    Raises:
        InsecureServer: see :func:`check_exposure`.
    """
    check_exposure(host, auth)
    submit = lakehouse.spark_home() / "bin" / "spark-submit"
    command = [str(submit), "--class", THRIFT_CLASS, "--name", "lakehouse-thrift-server"]
    conf = lakehouse.spark_conf(cfg)
    conf["spark.app.name"] = "lakehouse-thrift-server"
    # Clients read tables, not the server's files: no `select * from text.`<path>``.
    conf["spark.sql.runSQLOnFiles"] = "false"
    # The server's sessions load the catalog class from the driver's own classpath,
    # which spark.jars alone does not extend in client mode.
    # (All of spark.jars, a shared metastore's JDBC driver among them: that is the whole of
    # spark.driver.extraClassPath, which --driver-class-path sets.)
    command += [
        "--jars",
        conf["spark.jars"],
        "--driver-class-path",
        conf["spark.jars"].replace(",", ":"),
    ]
    for key, value in conf.items():
        if key != "spark.driver.extraClassPath":
            command += ["--conf", f"{key}={value}"]
    command += [
        "--hiveconf",
        f"hive.server2.thrift.port={port}",
        "--hiveconf",
        f"hive.server2.thrift.bind.host={host}",
    ]
    if auth is None:
        command += ["--hiveconf", "hive.server2.authentication=NONE"]
    else:
        command += [
            "--hiveconf",
            "hive.server2.authentication=LDAP",
            "--hiveconf",
            f"hive.server2.authentication.ldap.url={auth.url}",
            "--hiveconf",
            f"hive.server2.authentication.ldap.baseDN={auth.base_dn}",
        ]
    return command + ["spark-internal"]


def start(
    cfg: lakehouse.LakehouseSettings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 10000,
    auth: LdapAuth | None = None,
    log_path: Path | None = None,
    timeout_s: float = 180,
) -> subprocess.Popen:
    """Start the Thrift Server in the background and wait until it listens.

    Returns:
        The server process; stop it with :func:`stop`.

    Raises:
        InsecureServer: see :func:`check_exposure` (before anything starts).
        features.lakehouse.LakeInUse: another process holds the lake's embedded metastore.
    """
    cfg = cfg or lakehouse.settings()
    command = thrift_command(cfg, host=host, port=port, auth=auth)
    cfg.root.mkdir(parents=True, exist_ok=True)
    lakehouse.check_lake_free(cfg)
    lakehouse.ensure_jvm_jars(cfg)
    # The lake's own settings (not the install's, nor a detour through spark-env.sh), on
    # the lake's JDK (features/jdk.py), as its sessions run.
    env = dict(os.environ, SPARK_CONF_DIR=str(lakehouse.write_lake_conf(cfg)))
    jdk.use(env)
    log_path = log_path or cfg.root / "thrift-server.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cfg.root,
        start_new_session=True,
        env=env,
    )
    try:
        daemons.wait_for_port(
            host,
            port,
            timeout_s=timeout_s,
            what="Thrift Server",
            process=process,
            error=ThriftServerError,
        )
    except ThriftServerError as err:
        stop(process)
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise ThriftServerError(
            f"{err}; its output {log_path}:\n{tail}\nits JVM's log: {console.jvm_log(cfg.root)}"
        ) from err
    except BaseException:  # interrupted while it starts: it must not outlive the caller
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen, *, timeout_s: float = 30) -> None:
    """Stop a Thrift Server started by :func:`start`, and everything it started.

    SIGTERM first (the JVM's shutdown hooks close the sessions and the metastore), SIGKILL
    to the whole process group after ``timeout_s``.
    """

    def signal_group(sig: signal.Signals) -> None:
        try:
            os.killpg(process.pid, sig)  # start() made the server a group leader
        except (ProcessLookupError, PermissionError):
            pass

    if process.poll() is None:
        signal_group(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            signal_group(signal.SIGKILL)
            process.wait()
    signal_group(signal.SIGKILL)  # nothing of its group may outlive it


def beeline(
    query: str,
    *,
    host: str = "127.0.0.1",
    port: int = 10000,
    user: str | None = None,
    password: str | None = None,
) -> str:
    """Run one query with beeline, the JDBC client pyspark ships; return its output."""
    command = [
        str(lakehouse.spark_home() / "bin" / "beeline"),
        "-u",
        f"jdbc:hive2://{host}:{port}/default",
        "--silent=true",
        "--outputformat=csv2",
        "-e",
        query,
    ]
    if user is not None:
        command += ["-n", user, "-p", password or ""]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
        said = errors[0][:1000] if errors else proc.stderr[-2000:]
        raise ThriftServerError(f"beeline failed ({proc.returncode}): {said}")
    return proc.stdout
