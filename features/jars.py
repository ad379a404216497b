"""Delta Lake's JVM jars: which ones, where they are cached, how they are fetched.

``ensure_delta_jars`` puts the jars into the local Maven repository
(``~/.m2/repository``) once with ``mvn dependency:get``; the session then lists
them in ``spark.jars`` by path, so every later run needs no network and no Ivy
resolution (which would also drag in Delta's older copies of Spark's own jars).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

# The python package delta-spark 4.4.1 is a Python-only patch release; the JVM
# artifacts of that line are published as 4.4.0, built per Spark minor version.
DELTA_JVM_VERSION = "4.4.0"
SPARK_MINOR = "4.2"
SCALA_BINARY = "2.13"
DELTA_GROUP = "io.delta"
DELTA_ARTIFACT = f"delta-spark_{SPARK_MINOR}_{SCALA_BINARY}"
# The jars Spark needs beyond its own: Delta and its storage layer.  Their other
# declared dependencies (Hadoop, Parquet, Jackson, RoaringBitmap) ship with Spark
# in newer versions; putting Delta's older copies on the classpath would clash.
DELTA_ARTIFACTS: tuple[str, ...] = (DELTA_ARTIFACT, "delta-storage")


class JarsUnavailable(RuntimeError):
    """A JVM jar the lakehouse needs is neither cached locally nor downloadable."""


class DeltaJarsUnavailable(JarsUnavailable):
    """Delta's jars are neither cached locally nor downloadable."""


@dataclasses.dataclass(frozen=True)
class MavenJar:
    """One jar of Maven Central, by coordinate."""

    group: str
    artifact: str
    version: str

    @property
    def coordinate(self) -> str:
        """``group:artifact:version``."""
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def path(self) -> Path:
        """Where the jar sits in the local Maven repository."""
        return jar_path(self.artifact, group=self.group, version=self.version)


DELTA_JARS: tuple[MavenJar, ...] = tuple(
    MavenJar(DELTA_GROUP, artifact, DELTA_JVM_VERSION) for artifact in DELTA_ARTIFACTS
)
# The JDBC driver of a shared Hive metastore on PostgreSQL (the cluster setup).
POSTGRES_JDBC = MavenJar("org.postgresql", "postgresql", "42.7.4")


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
    return [jar.path for jar in DELTA_JARS]


def ensure_jars(
    wanted: Sequence[MavenJar],
    *,
    quiet: bool = True,
    error: type[JarsUnavailable] = JarsUnavailable,
) -> list[Path]:
    """Make sure the jars are in ``~/.m2``, fetching the missing ones with Maven.

    Returns:
        The paths of the jars, in the order given.

    Raises:
        JarsUnavailable: (or ``error``) when a jar is not cached and Maven cannot fetch it.
    """
    missing = [jar for jar in wanted if not jar.path.is_file()]
    if not missing:
        return [jar.path for jar in wanted]
    mvn = shutil.which("mvn")
    if mvn is None:
        raise error(
            f"jars missing from {m2_repository()}: {', '.join(j.path.name for j in missing)}; "
            "'mvn' is not on PATH to fetch them. Install Maven (apt-get install maven) and "
            "run 'make setup', or copy the jars to those paths."
        )
    for jar in missing:
        cmd = [
            mvn,
            "-B",
            "-q",
            "dependency:get",
            f"-Dartifact={jar.coordinate}",
            "-Dtransitive=false",
        ]
        if not quiet:
            cmd.remove("-q")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not jar.path.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise error(
                f"could not fetch {jar.coordinate} with Maven (exit {proc.returncode}). Maven "
                "Central must be reachable once; the jars are then cached in "
                f"{m2_repository()} and later runs need no network.\n{tail}"
            )
    return [jar.path for jar in wanted]


def ensure_delta_jars(*, quiet: bool = True) -> list[Path]:
    """Make sure Delta's jars are in ``~/.m2``, fetching the missing ones with Maven.

    Returns:
        The paths of the jars, in classpath order.

    Raises:
        DeltaJarsUnavailable: when a jar is not cached and Maven cannot fetch it.
    """
    return ensure_jars(DELTA_JARS, quiet=quiet, error=DeltaJarsUnavailable)
