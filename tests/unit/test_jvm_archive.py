"""The JVM class archive's launch settings: which JVM option and class path a session gets.

(No JVM here: that a fresh session really maps Spark's classes from the archive is
tests/spark/test_lakehouse.py's ``test_metastore_and_warehouse_persist_across_processes``.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from features import jvm_archive


@pytest.fixture
def jar_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Two stand-in jars as the class path, and an empty cache under ``tmp_path``."""
    made = []
    for name in ("a.jar", "b.jar"):
        jar = tmp_path / "jars" / name
        jar.parent.mkdir(exist_ok=True)
        jar.write_bytes(b"PK")
        made.append(jar)
    monkeypatch.setattr(jvm_archive, "class_path", lambda: list(made))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(jvm_archive.SWITCH, raising=False)
    return made


def _recorded() -> Path:
    path = jvm_archive.archive_path()
    assert path is not None and path.parent.name == "jvm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"archive")
    return path


def test_nothing_changes_before_the_archive_is_recorded(jar_files) -> None:
    conf = {"spark.driver.extraJavaOptions": "-Duser.timezone=UTC"}
    assert not jvm_archive.apply(conf)
    assert conf == {"spark.driver.extraJavaOptions": "-Duser.timezone=UTC"}


def test_a_recorded_archive_is_mapped_with_its_jars_first(jar_files) -> None:
    path = _recorded()
    conf = {
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.driver.extraClassPath": "/drivers/postgresql.jar",
    }
    assert jvm_archive.apply(conf)
    assert conf["spark.driver.extraJavaOptions"] == (
        f"-Duser.timezone=UTC -XX:SharedArchiveFile={path}"
    )
    # The archived jars lead, in the recorded order; what the session listed follows.
    assert conf["spark.driver.extraClassPath"].split(os.pathsep) == [
        *map(str, jar_files),
        "/drivers/postgresql.jar",
    ]
    assert "spark.executor.extraJavaOptions" not in conf  # workers elsewhere lack the file
    jvm_archive.apply(conf, executors=True)
    assert conf["spark.executor.extraClassPath"].split(os.pathsep) == list(map(str, jar_files))


def test_switched_off_it_is_not_mapped(jar_files, monkeypatch) -> None:
    _recorded()
    monkeypatch.setenv(jvm_archive.SWITCH, "0")
    conf: dict[str, str] = {}
    assert not jvm_archive.apply(conf) and conf == {}


def test_other_jars_make_another_archive(jar_files) -> None:
    before = jvm_archive.archive_path()
    jar_files[1].write_bytes(b"PK, upgraded")
    assert jvm_archive.archive_path() != before
