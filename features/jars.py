"""Delta Lake's JVM jars: which ones, where they are cached, how they are fetched.

``ensure_delta_jars`` puts the jars into the local Maven repository
(``~/.m2/repository``) once with ``mvn dependency:get``; the session then lists
them in ``spark.jars`` by path, so every later run needs no network and no Ivy
resolution (which would also drag in Delta's older copies of Spark's own jars).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# The python package delta-spark 4.4.1 is a Python-only patch release; the JVM
# artifacts of that line are published as 4.4.0, built per Spark minor version.
DELTA_JVM_VERSION = "4.4.0"
SPARK_MINOR = "4.2"
SCALA_BINARY = "2.13"
DELTA_GROUP = "io.delta"
DELTA_ARTIFACT = f"delta-spark_{SPARK_MINOR}_{SCALA_BINARY}"
DELTA_COORDINATE = f"{DELTA_GROUP}:{DELTA_ARTIFACT}:{DELTA_JVM_VERSION}"
# The jars Spark needs beyond its own: Delta and its storage layer.  Their other
# declared dependencies (Hadoop, Parquet, Jackson, RoaringBitmap) ship with Spark
# in newer versions; putting Delta's older copies on the classpath would clash.
DELTA_ARTIFACTS: tuple[str, ...] = (DELTA_ARTIFACT, "delta-storage")


class DeltaJarsUnavailable(RuntimeError):
    """Delta's jars are neither cached locally nor downloadable."""


def m2_repository() -> Path:
    """Return the local Maven repository where the jars are cached."""
    return Path.home() / ".m2" / "repository"


def jar_path(artifact: str, *, group: str = DELTA_GROUP, version: str = DELTA_JVM_VERSION) -> Path:
    """Return where one artifact's jar sits in the local Maven repository."""
    return (
        m2_repository() / group.replace(".", "/") / artifact / version / f"{artifact}-{version}.jar"
    )


def delta_jar_paths() -> list[Path]:
    """Return the paths of every jar Delta needs, cached or not."""
    return [jar_path(artifact) for artifact in DELTA_ARTIFACTS]


def missing_delta_jars() -> list[Path]:
    """Return the Delta jars not yet in the local Maven repository."""
    return [path for path in delta_jar_paths() if not path.is_file()]


def ensure_delta_jars(*, quiet: bool = True) -> list[Path]:
    """Make sure Delta's jars are in ``~/.m2``, fetching the missing ones with Maven.

    Returns:
        The paths of the jars, in classpath order.

    Raises:
        DeltaJarsUnavailable: when a jar is not cached and Maven cannot fetch it.
    """
    missing = missing_delta_jars()
    if not missing:
        return delta_jar_paths()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DeltaJarsUnavailable(
            f"Delta jars missing from {m2_repository()}: {', '.join(p.name for p in missing)}; "
            "'mvn' is not on PATH to fetch them. Install Maven (apt-get install maven) and "
            "run 'make setup', or copy the jars to those paths."
        )
    for artifact in DELTA_ARTIFACTS:
        if jar_path(artifact).is_file():
            continue
        coordinate = f"{DELTA_GROUP}:{artifact}:{DELTA_JVM_VERSION}"
        cmd = [mvn, "-B", "-q", "dependency:get", f"-Dartifact={coordinate}", "-Dtransitive=false"]
        if not quiet:
            cmd.remove("-q")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not jar_path(artifact).is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise DeltaJarsUnavailable(
                f"could not fetch {coordinate} with Maven (exit {proc.returncode}). Maven "
                "Central must be reachable once; the jars are then cached in "
                f"{m2_repository()} and later runs need no network.\n{tail}"
            )
    return delta_jar_paths()
