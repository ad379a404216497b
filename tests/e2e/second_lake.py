"""The second lake of the end-to-end tests: the daily job in subprocesses, killed at random.

It is built from the daily lake's landing files on the cluster setup (Spark standalone,
PostgreSQL metastore, Feast's SQL registry and Redis), while the daily lake is the embedded
default's clean run in the tests' own process.  The backfill is killed once and the last day
twice, each time inside a step drawn at random and a random number of seconds into it, the
whole process group at once (Spark's driver JVM included), and rerun until it finishes.  The
same lake thus shows that a killed and rerun daily job ends where a clean run ends (issue:
reliability) and that the cluster runs the same code to the same results (issue: cluster).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from features.daily import STEPS
from tests.e2e import lakes

KILL_SEED = int(os.environ.get("RELIABILITY_SEED", "20261201"))
MAX_DELAY_S = 20.0
ATTEMPT_TIMEOUT_S = 1200.0
FEATURES = str(Path(sys.executable).with_name("features"))


def environment(root: Path, cluster_env: dict[str, str]) -> dict[str, str]:
    """The environment of the second lake's processes: its own root, the cluster setup."""
    env = dict(os.environ)
    env.update(
        {
            "LAKEHOUSE_ROOT": str(root),
            # The tests' Spark shape (their session: local[2], 2 shuffle partitions): two
            # task slots, and the same partitioning of every shuffle.  The slots are one
            # executor's (two cores of one worker): a second executor JVM would compile and
            # JIT the same code again, on a machine of two cores.  (Tasks on both workers:
            # tests/cluster/test_stack.py.)
            "PYSPARK_SUBMIT_ARGS": (
                "--conf spark.executor.cores=2 --conf spark.cores.max=2 pyspark-shell"
            ),
            "LAKEHOUSE_SHUFFLE_PARTITIONS": "2",
            "LAKEHOUSE_DRIVER_MEMORY": "2g",
            "LAKEHOUSE_EXECUTOR_MEMORY": "1536m",
            "PYTHONUNBUFFERED": "1",
            **cluster_env,
        }
    )
    return env


def run_features(
    args: list[str],
    *,
    env: dict[str, str],
    log: Path,
    kill_in: str | None = None,
    delay: float = 0.0,
) -> int:
    """Run ``features ARGS``; SIGKILL its process group ``delay`` s after step ``kill_in`` starts.

    Returns:
        The exit code (``-9`` when the kill landed).
    """
    process = subprocess.Popen(
        [FEATURES, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )

    def kill() -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    timed_out = threading.Event()

    def give_up() -> None:
        timed_out.set()
        kill()

    watchdog = threading.Timer(ATTEMPT_TIMEOUT_S, give_up)
    watchdog.start()
    began = time.monotonic()
    timer: threading.Timer | None = None
    started = re.compile(rf"^\[daily [0-9-]+\] {kill_in} \.\.\.$") if kill_in else None
    with log.open("a") as out:
        out.write(f"$ features {' '.join(args)}  (kill {delay:.1f}s into {kill_in})\n")
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            if started is not None and timer is None and started.match(line.strip()):
                timer = threading.Timer(delay, kill)
                timer.start()
        code = process.wait()
        out.write(f"exit {code} after {time.monotonic() - began:.1f}s\n")
    watchdog.cancel()
    if timer is not None:
        timer.cancel()
    kill()  # nothing of the group may outlive it (Spark's JVM is a child of the CLI)
    assert not timed_out.is_set(), f"features {' '.join(args)} timed out; see {log}"
    return code


def run_with_kills(
    args: list[str], *, kills: int, rng: random.Random, env: dict[str, str], log: Path
) -> list[tuple[str, float, int]]:
    """Run ``args`` killed in ``kills`` random steps (in step order), then to the end."""
    steps = sorted(rng.sample(STEPS, kills), key=STEPS.index)
    attempts = []
    for step in steps:
        delay = rng.uniform(0.0, MAX_DELAY_S)
        code = run_features(args, env=env, log=log, kill_in=step, delay=delay)
        attempts.append((step, round(delay, 1), code))
    final = run_features(args, env=env, log=log)
    assert final == 0, f"the run after the kills failed (exit {final}); see {log}"
    return attempts


def build(
    daily_lake: lakes.DailyLake, source: Path, root: Path, cluster_env: dict[str, str]
) -> tuple[Path, list, Path]:
    """Land the daily lake's files under ``root`` and run its two daily runs with kills.

    Args:
        daily_lake: The clean lake, built.
        source: Its root, whose landing files (every feed delivered) are copied.
        root: The second lake's root.
        cluster_env: Where the cluster setup's servers are.

    Returns:
        ``(root, attempts, log)``: attempts as (step, delay, exit code) per killed attempt.
    """
    dates = daily_lake.dates
    env = environment(root, cluster_env)
    log = root / "attempts.log"
    rng = random.Random(KILL_SEED)
    # The generator makes the test's input, it is not the job under test: the daily lake's
    # landing files are the very files a run of it with the same seed writes
    # (tests/spark/test_generate.py), and copying them saves a fresh process.  Their times
    # are kept, as a delivery's are.
    shutil.copytree(source / "landing", root / "landing")
    lakes.hold_back(root, dates[-2])  # delivered late, as in the daily lake
    backfill = run_with_kills(
        [
            "daily",
            "--from",
            dates[0].isoformat(),
            "--to",
            dates[-2].isoformat(),
            "--retrain",
            "always",
        ],
        kills=1,
        rng=rng,
        env=env,
        log=log,
    )
    lakes.deliver(root, dates[-2])
    last = run_with_kills(
        ["daily", "--date", dates[-1].isoformat()], kills=2, rng=rng, env=env, log=log
    )
    return root, backfill + last, log
