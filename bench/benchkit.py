"""What the benchmarks share: peak-memory sampling and the I/O floor baseline."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessSample:
    """One process of the sampled tree: its parent, name, command line and RSS."""

    pid: int
    ppid: int
    name: str
    cmdline: tuple[str, ...]
    rss: int


def spawning(sample: ProcessSample, tree: dict[int, ProcessSample]) -> bool:
    """Whether ``sample`` is a JVM's child caught between its fork and its exec.

    The JVM starts every program (Hadoop's shell commands, Python workers) with
    ``posix_spawn``: for a moment the child shares the JVM's whole address space, so its
    RSS is the JVM's own, and it still has the JVM's command line (its name is the
    spawning thread's).  Counted, it doubled the JVM in a sampled total (one demo run:
    13.6 GiB against 6.7 GiB the run before).  An executor JVM that a worker JVM started
    has its own command line.  A child of a Python process caught the same way still counts
    (Python's own RSS, for a moment): forked Python workers share their parent's command
    line and must count.
    """
    parent = tree.get(sample.ppid)
    return (
        parent is not None
        and "java" in parent.name
        and bool(sample.cmdline)
        and sample.cmdline == parent.cmdline
    )


def tree_rss(samples: list[ProcessSample], root: int) -> tuple[int, int, int]:
    """``(python, jvm, total)`` RSS of a process tree, without JVM children mid-spawn.

    ``python`` is the root's, ``jvm`` the java processes', ``total`` every process's.
    """
    tree = {sample.pid: sample for sample in samples}
    counted = [s for s in samples if not spawning(s, tree)]
    python = sum(s.rss for s in counted if s.pid == root)
    jvm = sum(s.rss for s in counted if s.pid != root and "java" in s.name)
    return python, jvm, sum(s.rss for s in counted)


class PeakMemory:
    """Peak RSS of this process (Python) and of its children (the JVM), sampled in a thread.

    ``phase`` names what runs now; :attr:`phase_peaks` keeps the peak total RSS per phase.
    A JVM's child caught between fork and exec is not counted (see :func:`spawning`).
    """

    def __init__(self, interval: float = 0.2) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.python_peak = 0
        self.jvm_peak = 0
        self.peak = 0
        self.phase = "start"
        self.phase_peaks: dict[str, int] = defaultdict(int)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> list[ProcessSample]:
        import psutil

        samples = []
        for process in [self._process, *self._process.children(recursive=True)]:
            try:
                with process.oneshot():
                    samples.append(
                        ProcessSample(
                            pid=process.pid,
                            ppid=process.ppid(),
                            name=process.name(),
                            cmdline=tuple(process.cmdline()),
                            rss=process.memory_info().rss,
                        )
                    )
            except psutil.Error:
                continue
        return samples

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                python, jvm, total = tree_rss(self._sample(), self._process.pid)
                self.python_peak = max(self.python_peak, python)
                self.jvm_peak = max(self.jvm_peak, jvm)
                self.peak = max(self.peak, total)
                self.phase_peaks[self.phase] = max(self.phase_peaks[self.phase], total)
            except psutil.Error:
                pass
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def io_floor_seconds(spark, rows: int, path: str) -> float:
    """Seconds to write ``rows`` rows of nine cheap columns to Parquet: the I/O floor.

    As many columns as a usage event, derived from ``spark.range``: the fastest Spark
    writes rows at all on this machine, measured in the same run as what it is compared to.
    """
    import pyspark.sql.functions as F

    frame = spark.range(rows).select(
        F.col("id").cast("string").alias("event_id"),
        (F.col("id") % 100000).alias("customer_id"),
        F.timestamp_seconds(F.col("id") % 8640000).alias("event_at"),
        F.when(F.col("id") % 3 == 0, "call").otherwise("data").alias("event_type"),
        (F.col("id") % 600).cast("int").alias("duration_s"),
        (F.col("id") * 7).alias("bytes"),
        (F.col("id") % 50 == 0).alias("is_dropped"),
        (F.col("id") % 70 == 0).alias("is_roaming"),
        F.format_string("cell-%04d", (F.col("id") % 500).cast("int")).alias("cell_id"),
    )
    started = time.perf_counter()
    frame.write.mode("overwrite").parquet(path)
    return time.perf_counter() - started
