"""A class-data archive of the lake's JVM: Spark's classes loaded once per machine.

A fresh JVM of the lake loads and verifies about 20,000 classes of Spark, Delta, Hive and
Hadoop before and during its first queries: a quarter of a small command's start (a session
and three Delta statements: 16.6 s, 12.5 s with the archive; JVM CPU 28.5 s against 22 s).
The JDK can map those classes from an archive instead (application class-data sharing).
``features setup`` records the archive once (:func:`record`: a short Spark workload in a
JVM that writes the classes it loaded when it exits, ``-XX:ArchiveClassesAtExit``), and
every later session of this environment maps it (``-XX:SharedArchiveFile``, see
:func:`apply`).

The JDK archives classes only from jars, and a folder on the class path must be empty:
Spark's launcher builds the class path as the extra class path, then the configuration
folder (``SPARK_CONF_DIR``), then Spark's jars.  A session that records or maps the archive
therefore lists Spark's and Delta's jars first (``spark.driver.extraClassPath``), the same
ones in the same order, and starts with an empty configuration folder of the archive's own
(:func:`launch_conf_dir`; its settings come with its launch).  JDK 17 and 21 check only the
leading entries an archive used; from JDK 24 on the JVM checks the whole class path against
the recording's, so a JVM whose class path differs further on (a shell tool over the lake's
configuration folder, a driver with a JDBC jar of its own) goes without the archive there.
An archive belongs to one JDK, one set of jars and one layout of the class path: its name
is a digest of them, so a new JDK or an upgraded pyspark or Delta makes the next
``features setup`` record a new one; meanwhile sessions start as before (and the JVM itself
ignores an archive that does not match it).  ``LAKEHOUSE_CLASS_ARCHIVE=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from features import jars, jdk

#: The environment variable that turns the archive off ("0").
SWITCH = "LAKEHOUSE_CLASS_ARCHIVE"
#: Set for the recording process only: where its JVM writes the archive when it exits.
_RECORD_TO = "LAKEHOUSE_CLASS_ARCHIVE_RECORD"
#: How the class path of a recording is laid out (part of the archive's name, so that an
#: archive recorded another way is recorded again): 2 is the jars of :func:`class_path`,
#: then :func:`launch_conf_dir`, then Spark's jars.
_LAYOUT = 2


def _java_home() -> Path | None:
    """The JDK that the lake's sessions start (:func:`features.jdk.choose`)."""
    found = jdk.choose()
    return found.home if found else None


def class_path() -> list[Path]:
    """The jars a session puts first on its class path: Spark's own, then Delta's."""
    from features.lakehouse import spark_home

    return sorted((spark_home() / "jars").glob("*.jar")) + [jar.path for jar in jars.DELTA_JARS]


def cache_dir() -> Path:
    """Where archives are kept: ``$XDG_CACHE_HOME/lakehouse/jvm`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lakehouse" / "jvm"


def archive_path() -> Path | None:
    """The archive of this JDK and these jars (whether recorded yet or not); None without
    a JDK."""
    home = _java_home()
    if home is None:
        return None
    digest = hashlib.sha256()
    digest.update(f"layout {_LAYOUT}\n".encode())
    for path in [*sorted(home.glob("lib/server/libjvm.so")), *class_path()]:
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return cache_dir() / f"spark-{digest.hexdigest()[:16]}.jsa"


def enabled() -> bool:
    """False when ``LAKEHOUSE_CLASS_ARCHIVE=0``."""
    return os.environ.get(SWITCH, "1").lower() not in ("0", "false", "no", "off")


def _launch_conf_path() -> Path:
    return cache_dir() / "empty-conf"


def launch_conf_dir() -> Path:
    """The ``SPARK_CONF_DIR`` of the JVMs that record or map the archive: an empty folder
    beside it, the same path in every one of them.

    Spark's launcher puts the configuration folder on the class path, after the jars of
    :func:`class_path`.  From JDK 24 on, the JVM checks the whole class path it maps an
    archive with against the recording's, and a folder on it must be empty: the lake's
    sessions and the cluster's daemons (whose executors inherit their folder) start with
    this one, and take their settings from their launch's arguments instead.
    """
    folder = _launch_conf_path()
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        folder.unlink()  # a link or a file in its place: a plain folder instead
    folder.mkdir(parents=True, exist_ok=True)
    for stray in folder.iterdir():  # it must stay empty
        if stray.is_dir() and not stray.is_symlink():
            shutil.rmtree(stray, ignore_errors=True)
        else:
            stray.unlink(missing_ok=True)
    if any(folder.iterdir()):
        raise RuntimeError(
            f"{folder} must stay empty (Spark's JVMs start with it as their SPARK_CONF_DIR) "
            "and could not be emptied; remove what is in it"
        )
    return folder


def checks_whole_class_path() -> bool:
    """Whether the lake's JDK maps an archive only with the recording's whole class path
    (JDK 24 and later), not just the leading entries it used."""
    found = jdk.choose()
    return found is not None and (found.feature or 0) >= 24


def apply(conf: dict[str, str], *, executors: bool = False, tool: bool = False) -> bool:
    """Make a session's launch settings ``conf`` map the archive, or record it.

    Adds the JVM option and puts :func:`class_path` first on the driver's class path (before
    what ``conf`` already lists there); on ``executors`` too when asked (workers on this
    machine).  Nothing changes when the archive is off or not recorded yet.  On a JDK that
    checks the whole class path, a JVM whose class path cannot be the recording's goes
    without it: a ``tool`` (the settings of ``spark-sql`` and other programs started from a
    shell, whose ``SPARK_CONF_DIR`` is the lake's folder) and a driver with class path
    entries of its own (the shared metastore's JDBC driver); executors still map it.

    Returns:
        True when ``conf`` was changed.
    """
    record_to = os.environ.get(_RECORD_TO)
    whole = not record_to and checks_whole_class_path()
    if tool and (record_to or whole):
        return False
    path = archive_path()
    if record_to:
        option = f"-XX:ArchiveClassesAtExit={record_to}"
    elif enabled() and path is not None and path.is_file():
        option = f"-XX:SharedArchiveFile={path}"
    else:
        return False
    jar_list = [str(jar) for jar in class_path()]
    roles = ["driver", "executor"] if executors and not record_to else ["driver"]
    if whole and conf.get("spark.driver.extraClassPath"):
        roles.remove("driver")
    if not roles:
        return False
    for role in roles:
        options = f"spark.{role}.extraJavaOptions"
        conf[options] = f"{conf.get(options, '')} {option}".strip()
        paths = f"spark.{role}.extraClassPath"
        conf[paths] = os.pathsep.join(jar_list + [p for p in [conf.get(paths)] if p])
    return True


def record(*, timeout_s: float = 600.0) -> tuple[Path, float] | None:
    """Record the archive of this environment unless it is there.

    Runs :func:`_workload` in a child process on a throwaway lake (local master, Derby),
    whose JVM writes the archive as it exits; then moves it into :func:`cache_dir` and
    removes the archives of other JDKs or jars.

    Returns:
        ``(path, seconds)`` of a new recording, None when it was there already.

    Raises:
        RuntimeError: when no JDK is found or the recording fails (the message names the
            log that says why).
    """
    path = archive_path()
    if path is None:
        raise RuntimeError(f"no JDK found; {jdk.WHERE}")
    if path.is_file():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lakehouse-jvm-archive-") as scratch:
        partial = Path(scratch) / "partial.jsa"
        log = path.with_suffix(".log")
        env = {
            **os.environ,
            "LAKEHOUSE_ROOT": str(Path(scratch) / "lake"),
            "SPARK_MASTER": "local[2]",
            "LAKEHOUSE_SHUFFLE_PARTITIONS": "2",
            "LAKEHOUSE_DRIVER_MEMORY": "1g",
            _RECORD_TO: str(partial),
        }
        env.pop("LAKEHOUSE_METASTORE_URL", None)
        with log.open("w") as out:
            proc = subprocess.run(
                [sys.executable, "-m", "features.jvm_archive"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
                check=False,
            )
            jvm_log = Path(scratch) / "lake" / "logs" / "spark.log"
            if jvm_log.is_file():
                out.write(jvm_log.read_text(errors="replace"))
        if proc.returncode != 0 or not partial.is_file():
            raise RuntimeError(
                f"the recording JVM wrote no archive (exit {proc.returncode}); see {log}"
            )
        shutil.move(partial, path.with_suffix(".part"))
        os.replace(path.with_suffix(".part"), path)
    for other in path.parent.glob("spark-*.jsa"):
        if other != path:
            other.unlink(missing_ok=True)
            other.with_suffix(".log").unlink(missing_ok=True)
    return path, time.perf_counter() - started


def _workload() -> None:
    """What the recording JVM runs: the statements a day of the lake uses, on a few rows
    (Delta DDL, writes, merge, history; joins, windows, aggregates; JSON and CSV reads;
    Arrow to pandas; an MLlib pipeline fit), then a clean exit so that the JVM writes
    the archive."""
    from features import lakehouse

    spark = lakehouse.spark_session()
    root = lakehouse.settings().root
    lakehouse.ensure_databases(spark)
    sql = spark.sql
    sql(
        "create table ops.archive_probe (id bigint, name string, at timestamp, day date, "
        "amount decimal(12, 2), score double) using delta partitioned by (day)"
    )
    sql(
        "insert into ops.archive_probe select id, cast(id as string), "
        "timestamp_seconds(1767225600 + id * 3600), "
        "date'2026-01-01' + cast(id % 3 as int), id * 1.5, rand(1) from range(200)"
    )
    sql(
        "merge into ops.archive_probe t using (select id, 'x' as name from range(150, 250)) s "
        "on t.id = s.id when matched then update set t.name = s.name "
        "when not matched then insert (id, name) values (s.id, s.name)"
    )
    sql("update ops.archive_probe set score = 0 where id < 5")
    sql("delete from ops.archive_probe where id > 240")
    sql("describe history ops.archive_probe").collect()
    sql("describe table extended ops.archive_probe").collect()
    sql("show table extended in ops like '*'").collect()
    sql(
        "create or replace view ops.archive_probe_daily as select day, count(*) as n, "
        "sum(amount) as amount, avg(score) as score, max(at) as last_at "
        "from ops.archive_probe group by day"
    )
    sql("""select a.id, b.n, row_number() over (partition by a.day order by a.at desc) as r,
           sum(a.amount) over (partition by a.day order by a.at
                               rows between 6 preceding and current row) as amount_7,
           lag(a.score) over (partition by a.day order by a.id) as previous
           from ops.archive_probe a join ops.archive_probe_daily b using (day)
           where a.name is not null""").collect()
    folder = root / "archive_probe"
    frame = spark.range(50).selectExpr(
        "id", "cast(id as string) as text", "to_json(named_struct('id', id)) as body"
    )
    frame.write.mode("overwrite").csv(str(folder / "csv"), header=True)
    frame.select("body").write.mode("overwrite").text(str(folder / "json"))
    spark.read.csv(str(folder / "csv"), header=True, inferSchema=False).count()
    spark.read.schema("id bigint").json(str(folder / "json")).count()
    spark.table("ops.archive_probe").toPandas()

    from pyspark.ml import Pipeline
    from pyspark.ml.classification import GBTClassifier, LogisticRegression
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    train = spark.table("ops.archive_probe").selectExpr(
        "cast(id % 2 as double) as label",
        "coalesce(score, 0) as score",
        "cast(coalesce(amount, 0) as double) as amount",
    )
    assembled = VectorAssembler(inputCols=["score", "amount"], outputCol="raw")
    scaled = StandardScaler(inputCol="raw", outputCol="features")
    for model in (LogisticRegression(maxIter=5), GBTClassifier(maxIter=3, maxDepth=2)):
        fitted = Pipeline(stages=[assembled, scaled, model]).fit(train)
        BinaryClassificationEvaluator().evaluate(fitted.transform(train))
    sql("drop view ops.archive_probe_daily")
    sql("drop table ops.archive_probe")
    gateway = spark.sparkContext._gateway
    spark.stop()
    # The JVM exits (and writes the archive) when its standard input closes; wait for it.
    process = gateway.proc
    process.stdin.close()
    process.wait(timeout=300)


if __name__ == "__main__":
    _workload()
