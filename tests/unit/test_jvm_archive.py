"""The JVM class archive's launch settings: which JVM option and class path a session gets.

(No JVM here: that a fresh session really maps Spark's classes from the archive is
tests/spark/test_lakehouse.py's ``test_metastore_and_warehouse_persist_across_processes``.)
"""

from __future__ import annotations

import os
import shutil
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
    # A stand-in JDK that checks the leading entries only (17, 21); the whole class path:
    # below.
    stand_in = tmp_path / "jdk"
    (stand_in / "lib" / "server").mkdir(parents=True)
    (stand_in / "lib" / "server" / "libjvm.so").write_bytes(b"\x7fELF")
    monkeypatch.setattr(jvm_archive, "_java_home", lambda: stand_in)
    monkeypatch.setattr(jvm_archive, "checks_whole_class_path", lambda: False)
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


def test_a_jdk_that_checks_the_whole_class_path_maps_it_where_the_path_can_match(
    jar_files, monkeypatch
) -> None:
    """JDK 24 and later: a tool's settings (its configuration folder is the lake's) and a
    driver with class path entries of its own go without the archive; executors keep it."""
    path = _recorded()
    monkeypatch.setattr(jvm_archive, "checks_whole_class_path", lambda: True)
    tool: dict[str, str] = {}
    assert not jvm_archive.apply(tool, tool=True) and tool == {}
    plain: dict[str, str] = {}
    assert jvm_archive.apply(plain)
    assert plain["spark.driver.extraJavaOptions"] == f"-XX:SharedArchiveFile={path}"
    own = {"spark.driver.extraClassPath": "/drivers/postgresql.jar"}
    assert not jvm_archive.apply(own)
    assert own == {"spark.driver.extraClassPath": "/drivers/postgresql.jar"}
    assert jvm_archive.apply(own, executors=True)
    assert own["spark.driver.extraClassPath"] == "/drivers/postgresql.jar"
    assert own["spark.executor.extraJavaOptions"] == f"-XX:SharedArchiveFile={path}"
    assert own["spark.executor.extraClassPath"].split(os.pathsep) == list(map(str, jar_files))


def test_the_launch_folder_is_kept_empty_and_the_layout_is_part_of_the_name(
    jar_files, tmp_path, monkeypatch
) -> None:
    """What lands in the empty configuration folder goes (files, folders, links, without
    following a link); the class path's layout is part of the archive's name (an archive
    recorded with another layout is recorded again)."""
    folder = jvm_archive.launch_conf_dir()
    assert folder.is_dir() and not any(folder.iterdir())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not ours")
    (folder / "spark-defaults.conf").write_text("spark.x 1\n")
    (folder / "sub").mkdir()
    (folder / "sub" / "f").write_text("x")
    (folder / "link").symlink_to(elsewhere)
    assert jvm_archive.launch_conf_dir() == folder and not any(folder.iterdir())
    assert (elsewhere / "keep.txt").is_file()
    # A link in the folder's place is replaced by a folder, and what it pointed at is kept.
    folder.rmdir()
    folder.symlink_to(elsewhere)
    assert jvm_archive.launch_conf_dir().is_dir() and not folder.is_symlink()
    assert (elsewhere / "keep.txt").is_file()
    before = jvm_archive.archive_path()
    monkeypatch.setattr(jvm_archive, "_LAYOUT", jvm_archive._LAYOUT + 1)
    after = jvm_archive.archive_path()
    assert before is not None and after is not None and before.name != after.name
    # A file in the folder's place is replaced too.
    shutil.rmtree(folder)
    folder.write_text("not a folder")
    assert jvm_archive.launch_conf_dir().is_dir()
