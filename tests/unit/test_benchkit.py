"""The benchmarks' memory figure: a process tree's RSS, a JVM counted once (no JVM)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from benchkit import PeakMemory, ProcessSample, tree_rss  # noqa: E402

GIB = 2**30
JAVA = ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "-cp", "jars/*", "SparkSubmit")


def test_a_jvm_child_between_fork_and_exec_is_not_counted_twice() -> None:
    samples = [
        ProcessSample(1, 0, "python", ("python", "-m", "bench"), 1 * GIB),
        ProcessSample(2, 1, "java", JAVA, 6 * GIB),
        # posix_spawn in flight: the JVM's address space, its command line, a thread's name
        ProcessSample(3, 2, "Thread-4", JAVA, 6 * GIB),
        # what the JVM started once it ran: a shell command, a Python worker
        ProcessSample(4, 2, "chmod", ("chmod", "644", "part-0.parquet"), 1_000_000),
        ProcessSample(5, 2, "python", ("python", "-m", "pyspark.daemon"), 50_000_000),
        # the daemon's forked worker shares its command line but is not a JVM's child
        ProcessSample(6, 5, "python", ("python", "-m", "pyspark.daemon"), 40_000_000),
    ]
    python, jvm, total = tree_rss(samples, root=1)
    assert python == 1 * GIB
    assert jvm == 6 * GIB
    assert total == 7 * GIB + 1_000_000 + 50_000_000 + 40_000_000


def test_an_executor_jvm_a_worker_jvm_started_counts() -> None:
    worker = ("java", "-cp", "jars/*", "org.apache.spark.deploy.worker.Worker")
    executor = ("java", "-cp", "jars/*", "CoarseGrainedExecutorBackend")
    samples = [
        ProcessSample(1, 0, "python", ("python",), 100),
        ProcessSample(2, 1, "java", worker, 1000),
        ProcessSample(3, 2, "java", executor, 2000),
    ]
    assert tree_rss(samples, root=1) == (100, 3000, 3100)


def test_peak_memory_samples_a_live_child() -> None:
    """The sampler sees a child process and its memory (in ``make test`` a session's JVM is
    a child too: the check is on this child's own sample)."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; block = bytearray(200 * 2**20); time.sleep(5)"]
    )
    try:
        memory = PeakMemory(interval=0.05)
        deadline = time.monotonic() + 4.0
        seen = 0
        while seen < 200 * 2**20 and time.monotonic() < deadline:
            seen = max((s.rss for s in memory._sample() if s.pid == child.pid), default=0)
            time.sleep(0.05)
        assert seen >= 200 * 2**20  # the child's block
        with memory:
            time.sleep(0.3)
        assert memory.peak >= memory.python_peak + seen
    finally:
        child.kill()
        child.wait()
