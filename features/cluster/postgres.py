"""A PostgreSQL server of the project's own: the shared Hive metastore and Feast's registry.

Debian's ``postgresql`` package provides the programs; this module makes a database
cluster in a folder of ours (``initdb``), starts and stops it with ``pg_ctl`` on a loopback
port, and creates the role and the databases the lake uses.  PostgreSQL refuses to run as
root: run as root (CI, containers), the server runs as the ``postgres`` system user that the
package creates, and its folder is handed to that user.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

SERVER_USER = "postgres"


class PostgresError(RuntimeError):
    """The PostgreSQL server could not be found, started or used."""


@dataclasses.dataclass(frozen=True)
class PostgresServer:
    """One PostgreSQL server on loopback.

    Attributes:
        data_dir: The database cluster's folder (made by :func:`start` when absent).
        port: TCP port on ``host``.
        host: Listen address (loopback).
        user: The role the lake connects as (owner of its databases).
        password: That role's password.
    """

    data_dir: Path
    port: int = 5433
    host: str = "127.0.0.1"
    user: str = "lakehouse"
    password: str = "lakehouse"

    def jdbc_url(self, database: str) -> str:
        """The JDBC URL of ``database`` (a Hive metastore's ``ConnectionURL``)."""
        return f"jdbc:postgresql://{self.host}:{self.port}/{database}"

    def sqlalchemy_url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (Feast's SQL registry ``path``)."""
        return (
            f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{database}"
        )

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.data_dir.parent / f"{self.data_dir.name}.log"


def bin_dir() -> Path:
    """Folder of PostgreSQL's server programs (``initdb``, ``pg_ctl``, ``psql``)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name)
    )
    found = candidates[-1] if candidates else shutil.which("pg_ctl")
    if not found or not (Path(found).parent / "psql").exists():
        raise PostgresError(
            "PostgreSQL's server programs (pg_ctl, initdb, psql) are not installed: "
            "apt-get install -y postgresql (Debian), or put them on PATH"
        )
    return Path(found).parent


def _as_server_user() -> list[str]:
    """The prefix that runs a command as the server's user (root may not run PostgreSQL)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError as error:
        raise PostgresError(
            f"running as root, PostgreSQL needs the system user {SERVER_USER!r} "
            "(created by Debian's postgresql package)"
        ) from error
    return ["runuser", "-u", SERVER_USER, "--"]


def _run(command: list[str], *, what: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env, cwd="/")
    if proc.returncode != 0:
        raise PostgresError(
            f"{what} failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-1500:]}"
        )
    return proc.stdout


def _give_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(SERVER_USER)
        for folder in (path, *path.rglob("*")):
            os.chown(folder, entry.pw_uid, entry.pw_gid)


def _initdb(server: PostgresServer) -> None:
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.data_dir.chmod(0o700)
    _give_to_server_user(server.data_dir)
    prefix = _as_server_user()
    if (
        prefix
        and subprocess.run(
            [*prefix, "test", "-w", str(server.data_dir)], check=False, cwd="/"
        ).returncode
        != 0
    ):
        raise PostgresError(
            f"{server.data_dir}: the {SERVER_USER!r} user cannot reach this folder (a parent "
            "folder is private to root); put the server's folder elsewhere "
            "(LAKEHOUSE_POSTGRES_DIR)"
        )
    # The superuser comes in over the server's own socket only; the lake's role over TCP
    # with its password.
    _run(
        [
            *prefix,
            str(bin_dir() / "initdb"),
            "-D",
            str(server.data_dir),
            "-U",
            SERVER_USER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        what=f"initdb {server.data_dir}",
    )


def is_running(server: PostgresServer) -> bool:
    """Whether the server of ``server.data_dir`` is up."""
    if not (server.data_dir / "postmaster.pid").is_file():
        return False
    proc = subprocess.run(
        [*_as_server_user(), str(bin_dir() / "pg_ctl"), "-D", str(server.data_dir), "status"],
        capture_output=True,
        check=False,
        cwd="/",
    )
    return proc.returncode == 0


def psql(server: PostgresServer, sql: str, *, database: str = "postgres") -> str:
    """Run SQL as the server's superuser (over its socket); return what psql printed."""
    return _run(
        [
            *_as_server_user(),
            str(bin_dir() / "psql"),
            "-h",
            str(server.data_dir),
            "-p",
            str(server.port),
            "-U",
            SERVER_USER,
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-tA",
            "-c",
            sql,
        ],
        what=f"psql {sql[:60]!r}",
    )


def start(
    server: PostgresServer, *, databases: tuple[str, ...] = (), timeout_s: float = 60
) -> PostgresServer:
    """Start the server (making its cluster first if needed) and create the role and databases.

    Idempotent: a running server is left running; existing databases are kept.
    """
    if not (server.data_dir / "PG_VERSION").is_file():
        _initdb(server)
    if not is_running(server):
        log = server.log_file
        log.touch()
        _give_to_server_user(log)
        options = (
            f"-p {server.port} -c listen_addresses={server.host} "
            f"-k {server.data_dir} -c max_connections=200"
        )
        _run(
            [
                *_as_server_user(),
                str(bin_dir() / "pg_ctl"),
                "-D",
                str(server.data_dir),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout_s)),
                "start",
            ],
            what=f"pg_ctl start ({log})",
        )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            psql(server, "select 1")
            break
        except PostgresError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    role = server.user.replace('"', "")
    exists = psql(server, f"select 1 from pg_roles where rolname = '{role}'").strip()
    verb = "alter" if exists else "create"
    psql(server, f"{verb} role \"{role}\" login password '{server.password}'")
    for name in databases:
        ensure_database(server, name)
    return server


def ensure_database(server: PostgresServer, name: str) -> None:
    """Create database ``name`` owned by the lake's role, unless it exists."""
    exists = psql(server, f"select 1 from pg_database where datname = '{name}'").strip()
    if not exists:
        psql(server, f'create database "{name}" owner "{server.user}"')


def stop(server: PostgresServer, *, timeout_s: float = 60) -> None:
    """Stop the server (fast shutdown); nothing happens when it is not running."""
    if not is_running(server):
        return
    _run(
        [
            *_as_server_user(),
            str(bin_dir() / "pg_ctl"),
            "-D",
            str(server.data_dir),
            "-m",
            "fast",
            "-w",
            "-t",
            str(int(timeout_s)),
            "stop",
        ],
        what="pg_ctl stop",
    )
