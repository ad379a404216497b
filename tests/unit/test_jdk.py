"""Which JDK the lake's JVMs run on (no JVM here: stand-in JDK folders under tmp_path).

(That the sessions of the test run start on the chosen JDK is checked against the JVM
itself in tests/spark/test_lakehouse.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from features import jdk


def _jdk(folder: Path, version: str | None) -> Path:
    """A stand-in JDK: ``bin/java`` and, unless ``version`` is None, a ``release`` file."""
    (folder / "bin").mkdir(parents=True)
    java = folder / "bin" / "java"
    java.write_text("#!/bin/sh\n")
    java.chmod(0o755)
    if version is not None:
        (folder / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return folder


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A JVM folder with Java 8, 17, 22 (unsupported) and 25, and Java 17's on the PATH."""
    jvm = tmp_path / "jvm"
    _jdk(jvm / "java-8", "1.8.0_402")
    on_path = _jdk(jvm / "java-17", "17.0.15")
    _jdk(jvm / "jdk-22", "22.0.1")
    _jdk(jvm / "temurin-25", "25.0.3")
    (jvm / "not-a-jdk").mkdir()
    monkeypatch.setenv("PATH", f"{on_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    return jvm


def test_the_release_file_gives_the_feature_release(tmp_path: Path) -> None:
    assert jdk.feature_release(_jdk(tmp_path / "a", "25.0.3")) == 25
    assert jdk.feature_release(_jdk(tmp_path / "b", "17")) == 17
    assert jdk.feature_release(_jdk(tmp_path / "c", "1.8.0_402")) == 8
    assert jdk.feature_release(_jdk(tmp_path / "d", None)) is None


def test_the_newest_supported_jdk_is_chosen(machine: Path) -> None:
    found = jdk.candidates(machine)
    assert found[0] == jdk.Jdk((machine / "java-17").resolve(), 17)  # the PATH's first
    assert {j.feature for j in found} == {8, 17, 22, 25}  # each once, no plain folder
    chosen = jdk.choose({}, machine)
    assert chosen == jdk.Jdk((machine / "temurin-25").resolve(), 25)


def test_an_unsupported_newer_release_is_passed_over(machine: Path) -> None:
    (machine / "temurin-25" / "release").unlink()  # unknown release: not taken
    chosen = jdk.choose({}, machine)
    assert chosen is not None and chosen.feature == 17  # not 22, not 8


def test_java_home_and_the_switch_win(machine: Path) -> None:
    home = str(machine / "java-8")
    assert jdk.choose({"JAVA_HOME": home}, machine) == jdk.Jdk(Path(home).resolve(), 8)
    chosen = jdk.choose({"JAVA_HOME": home, jdk.SWITCH: str(machine / "jdk-22")}, machine)
    assert chosen is not None and chosen.feature == 22
    with pytest.raises(jdk.NoJdk, match="has no bin/java"):
        jdk.choose({jdk.SWITCH: str(machine / "not-a-jdk")}, machine)


def test_use_sets_java_home(machine: Path) -> None:
    env: dict[str, str] = {"PATH": os.environ["PATH"]}
    chosen = jdk.use(env, machine)
    assert chosen is not None and env["JAVA_HOME"] == str((machine / "temurin-25").resolve())
    # Once set, the choice stands (every later call and child process keeps it).
    assert jdk.use(env, machine) == chosen


def test_no_jdk_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    env: dict[str, str] = {}
    assert jdk.use(env, tmp_path / "no-jvm-folder") is None
    assert "JAVA_HOME" not in env
