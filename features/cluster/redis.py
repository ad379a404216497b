"""A Redis server of the project's own: Feast's online store in the cluster setup."""

from __future__ import annotations

import dataclasses
import shutil
import socket
from pathlib import Path

from features.cluster import daemons


@dataclasses.dataclass(frozen=True)
class RedisServer:
    """One Redis server on loopback, its pid file and log in ``home``."""

    home: Path
    host: str = "127.0.0.1"
    port: int = 6380

    @property
    def connection_string(self) -> str:
        """Feast's ``online_store.connection_string``."""
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        """The server's pid file."""
        return self.home / "redis.pid"

    @property
    def log_file(self) -> Path:
        """The server's log."""
        return self.home / "redis.log"


def ping(server: RedisServer) -> bool:
    """Whether the server answers PING."""
    try:
        with socket.create_connection((server.host, server.port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(server: RedisServer, *, timeout_s: float = 30) -> RedisServer:
    """Start the server unless it runs (no persistence: Feast rematerializes it)."""
    if ping(server):
        return server
    binary = shutil.which("redis-server")
    if binary is None:
        raise daemons.DaemonError(
            "redis-server is not installed: apt-get install -y redis-server (Debian)"
        )
    server.home.mkdir(parents=True, exist_ok=True)
    daemons.spawn(
        [
            binary,
            "--bind",
            server.host,
            "--port",
            str(server.port),
            "--dir",
            str(server.home),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ],
        pid_file=server.pid_file,
        log_file=server.log_file,
    )
    daemons.wait_for_port(
        server.host,
        server.port,
        timeout_s=timeout_s,
        what="redis-server",
        pid_file=server.pid_file,
        log_file=server.log_file,
    )
    return server


def stop(server: RedisServer) -> None:
    """Stop the server started by :func:`start`."""
    daemons.terminate(server.pid_file)
