"""Background servers started by the project: spawn with a pid file, wait for a port, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


class DaemonError(RuntimeError):
    """A server of the cluster setup did not start, or would not stop."""


def spawn(
    command: list[str], *, pid_file: Path, log_file: Path, env: dict[str, str] | None = None
) -> int:
    """Start ``command`` in a session of its own, its output in ``log_file``; return its pid."""
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=pid_file.parent,
            start_new_session=True,
        )
    pid_file.write_text(str(process.pid))
    return process.pid


def alive(pid_file: Path) -> bool:
    """Whether the process of ``pid_file`` runs (and is no zombie)."""
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state != "Z"


def terminate(pid_file: Path, *, timeout_s: float = 30) -> None:
    """SIGTERM the process group of ``pid_file``, SIGKILL it after ``timeout_s``."""
    try:
        pid = int(pid_file.read_text())
    except (FileNotFoundError, ValueError):
        return
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and alive(pid_file):
            _reap(pid)
            time.sleep(0.2)
        if not alive(pid_file):
            break
    _reap(pid)
    pid_file.unlink(missing_ok=True)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_for_port(
    host: str,
    port: int,
    *,
    timeout_s: float,
    what: str,
    pid_file: Path | None = None,
    process=None,
    log_file: Path | None = None,
    error: type[Exception] = DaemonError,
) -> None:
    """Wait until ``host:port`` accepts connections; fail early when the server died.

    Args:
        what: The server, as the messages name it.
        pid_file: A daemon's pid file (the server is gone when its process is).
        process: A child process (``subprocess.Popen``) that is the server.
        log_file: Whose last lines a failure shows.
        error: The exception raised on failure.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid_file is not None and not alive(pid_file):
            raise error(f"{what} exited before listening on {host}:{port}" + _tail(log_file))
        if process is not None and process.poll() is not None:
            raise error(
                f"{what} exited with code {process.returncode} before listening on "
                f"{host}:{port}" + _tail(log_file)
            )
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.5)
    raise error(f"{what} did not listen on {host}:{port} in {timeout_s:.0f}s" + _tail(log_file))


def _tail(log_file: Path | None, lines: int = 20) -> str:
    if log_file is None or not log_file.is_file():
        return ""
    text = log_file.read_text(errors="replace").splitlines()[-lines:]
    return f"; log {log_file}:\n" + "\n".join(text)
