"""The lakehouse session: Delta writes, MERGE, time travel, a metastore on disk."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from features import jars, jdk, lakehouse

pytestmark = pytest.mark.spark


def test_session_has_delta_hive_aqe_and_utc(spark, lakehouse_root: Path) -> None:
    conf = spark.conf
    assert conf.get("spark.sql.catalog.spark_catalog").endswith("DeltaCatalog")
    assert "DeltaSparkSessionExtension" in conf.get("spark.sql.extensions")
    assert conf.get("spark.sql.catalogImplementation") == "hive"
    assert conf.get("spark.sql.adaptive.enabled") == "true"
    assert conf.get("spark.sql.session.timeZone") == "UTC"
    warehouse = conf.get("spark.sql.warehouse.dir").removeprefix("file:")
    assert Path(warehouse) == lakehouse_root / "warehouse"
    assert lakehouse.spark_session() is spark
    dbs = {row[0] for row in spark.sql("show databases").collect()}
    assert set(lakehouse.DATABASES) <= dbs


def test_the_session_runs_on_the_chosen_jdk(spark) -> None:
    """The session's start made the JDK :mod:`features.jdk` chose this process's JAVA_HOME
    (for the JVMs it starts next), and Spark started that JVM, a release Spark supports.
    (Which JDK is chosen: tests/unit/test_jdk.py.)"""
    chosen = jdk.choose()
    assert chosen is not None and chosen.feature in jdk.SUPPORTED
    system = spark.sparkContext._jvm.java.lang.System
    assert Path(system.getProperty("java.home")).resolve() == chosen.home
    assert int(system.getProperty("java.specification.version")) == chosen.feature
    assert os.environ["JAVA_HOME"] == str(chosen.home)


def test_delta_write_merge_and_time_travel(spark) -> None:
    spark.sql("drop table if exists ops.t_merge")
    spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string").write.format(
        "delta"
    ).saveAsTable("ops.t_merge")
    spark.sql(
        """
        merge into ops.t_merge t
        using (select 2 as id, 'B' as v union all select 3, 'c') s
        on t.id = s.id
        when matched then update set *
        when not matched then insert *
        """
    )
    assertDataFrameEqual(
        spark.table("ops.t_merge"),
        spark.createDataFrame([(1, "a"), (2, "B"), (3, "c")], "id int, v string"),
    )
    assertDataFrameEqual(
        spark.sql("select * from ops.t_merge version as of 0"),
        spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string"),
    )
    history = spark.sql("describe history ops.t_merge").select("operation").collect()
    assert [row.operation for row in history][:1] == ["MERGE"]
    location = spark.sql("describe detail ops.t_merge").first().location
    assert Path(location.removeprefix("file:"), "_delta_log").is_dir()


_WRITER = """
from features import lakehouse
spark = lakehouse.spark_session()
lakehouse.ensure_databases(spark)
spark.sql("create table features.persisted (customer_id bigint, x double) using delta")
spark.sql("insert into features.persisted values (1, 0.5), (2, 1.5)")
"""

_READER = """
from features import lakehouse
spark = lakehouse.spark_session()
print("ROWS", spark.sql("select sum(x) as s, count(*) as n from features.persisted").first())
print("FORMAT", spark.sql("describe detail features.persisted").first().format)
"""


def _run_python(code: str, root: Path, **env_vars: str) -> str:
    env = dict(
        os.environ,
        LAKEHOUSE_ROOT=str(root),
        SPARK_MASTER="local[1]",
        LAKEHOUSE_DRIVER_MEMORY="1g",
        **env_vars,
    )
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_metastore_and_warehouse_persist_across_processes(tmp_path: Path) -> None:
    """Two processes, one after the other, see one lake; and a fresh process maps Spark's
    and Delta's classes from the environment's archive (``features setup`` records it: if
    it has not run, this test records it first, about a minute)."""
    from features import jvm_archive

    jvm_archive.record()
    # Derby admits one JVM at a time, so this pair uses a lake of its own.
    root = tmp_path / "lake"
    loaded = tmp_path / "classes.log"
    _run_python(_WRITER, root, LAKEHOUSE_JVM_OPTIONS=f"-Xlog:class+load=info:file={loaded}")
    sources = {}
    for line in loaded.read_text().splitlines():
        name, _, source = line.partition(" source: ")
        sources[name.rsplit(" ", 1)[-1]] = source
    archived = "shared objects file (top)"  # the archive on top of the JDK's own
    assert sources["org.apache.spark.sql.classic.SparkSession"] == archived
    assert sources["org.apache.spark.sql.delta.DeltaLog"] == archived
    assert sum(source == archived for source in sources.values()) > 10_000
    assert (root / "metastore_db").is_dir()
    assert (root / "warehouse" / "features.db" / "persisted" / "_delta_log").is_dir()
    out = _run_python(_READER, root)
    assert "ROWS Row(s=2.0, n=2)" in out
    assert "FORMAT delta" in out


def test_spark_conf_is_rendered_from_settings(tmp_path: Path) -> None:
    cfg = lakehouse.LakehouseSettings.from_env(
        {"LAKEHOUSE_ROOT": str(tmp_path), "SPARK_MASTER": "spark://h:7077"}
    )
    conf = lakehouse.spark_conf(cfg)
    assert conf["spark.master"] == "spark://h:7077"
    assert str(tmp_path / "metastore_db") in conf["spark.hadoop.javax.jdo.option.ConnectionURL"]
    assert conf["spark.jars"].split(",") == [str(p) for p in jars.delta_jar_paths()]


def test_missing_jars_without_maven_name_what_is_missing(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(jars.Path, "home", staticmethod(lambda: tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(jars.DeltaJarsUnavailable, match=jars.DELTA_ARTIFACT):
        jars.ensure_delta_jars()


def test_orphan_table_folder_of_a_killed_create_is_removed(spark, lakehouse_root: Path) -> None:
    """A kill between Delta's first commit and the metastore's registration leaves a folder
    that blocks the next CREATE TABLE; the clean-up removes it and nothing else."""
    from pyspark.errors import AnalysisException

    lakehouse.ensure_databases(spark, databases=("ops",))
    spark.sql("drop table if exists ops.orphan_probe")
    spark.sql("create table if not exists ops.kept_probe (id bigint) using delta")
    spark.sql("insert into ops.kept_probe values (1)")
    location = spark.sql("describe database ops").where("info_name = 'Location'").first()[1]
    orphan = Path(location.removeprefix("file:")) / "orphan_probe"
    # What the killed process left: the table's first Delta commit, never registered.
    spark.range(3).write.format("delta").save(str(orphan))
    with pytest.raises(AnalysisException, match="LOCATION_ALREADY_EXISTS|NON_EMPTY_LOCATION"):
        spark.sql("create table ops.orphan_probe (id bigint) using delta")
    lines: list[str] = []
    removed = lakehouse.remove_orphan_table_dirs(spark, databases=("ops",), log=lines.append)
    assert removed == [str(orphan)] and "orphan_probe" in lines[0]
    assert not orphan.exists()
    spark.sql("create table ops.orphan_probe (id bigint) using delta")
    assert spark.table("ops.orphan_probe").count() == 0
    assert spark.table("ops.kept_probe").count() == 1
    assert lakehouse.remove_orphan_table_dirs(spark, databases=("ops",)) == []
    spark.sql("drop table ops.orphan_probe")
    spark.sql("drop table ops.kept_probe")
