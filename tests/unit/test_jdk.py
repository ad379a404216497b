"""Which JDK the lake's JVMs run on (no JVM here: stand-in JDK folders under tmp_path).

(That the test run's session starts on the JDK chosen is checked against the JVM itself in
tests/spark/test_lakehouse.py.)
"""

from __future__ import annotations

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


def _at(folder: Path) -> jdk.Jdk:
    return jdk.Jdk(home=folder.resolve(), feature=jdk.feature_release(folder))


@pytest.fixture
def machine(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A JVM folder with Java 8, 17, 22 (unsupported) and 25 and a folder that is no JDK,
    and an environment whose PATH holds Java 17's ``bin`` only."""
    jvm = tmp_path / "jvm"
    _jdk(jvm / "java-8", "1.8.0_402")
    on_path = _jdk(jvm / "java-17", "17.0.15")
    _jdk(jvm / "jdk-22", "22.0.1")
    _jdk(jvm / "temurin-25", "25.0.3")
    (jvm / "not-a-jdk").mkdir()
    return jvm, {"PATH": str(on_path / "bin")}


def test_the_release_file_gives_the_feature_release(tmp_path: Path) -> None:
    assert jdk.feature_release(_jdk(tmp_path / "a", "25.0.3")) == 25
    assert jdk.feature_release(_jdk(tmp_path / "b", "17")) == 17
    assert jdk.feature_release(_jdk(tmp_path / "c", "1.8.0_402")) == 8
    assert jdk.feature_release(_jdk(tmp_path / "d", None)) is None


def test_the_newest_supported_jdk_is_chosen(machine) -> None:
    jvm, env = machine
    found = jdk.candidates(jvm, path=env["PATH"])
    assert found[0] == _at(jvm / "java-17")  # the PATH's first
    assert sorted(j.feature or 0 for j in found) == [8, 17, 22, 25]  # each once, no plain folder
    assert jdk.choose(env, jvm_dir=jvm) == _at(jvm / "temurin-25")


def test_an_unknown_or_unsupported_release_is_passed_over(machine) -> None:
    jvm, env = machine
    (jvm / "temurin-25" / "release").unlink()
    assert jdk.choose(env, jvm_dir=jvm) == _at(jvm / "java-17")  # not 22, not 8, not the unknown


def test_of_two_equal_releases_the_one_on_the_path_is_chosen(machine, tmp_path: Path) -> None:
    jvm, _ = machine
    other = _jdk(tmp_path / "elsewhere" / "jdk-25", "25.0.1")
    assert jdk.choose({"PATH": str(other / "bin")}, jvm_dir=jvm) == _at(other)


def test_java_home_and_the_switch_win(machine) -> None:
    jvm, env = machine
    home = jvm / "java-8"
    assert jdk.choose({**env, "JAVA_HOME": str(home)}, jvm_dir=jvm) == _at(home)
    named = {**env, "JAVA_HOME": str(home), jdk.SWITCH: str(jvm / "jdk-22")}
    assert jdk.choose(named, jvm_dir=jvm) == _at(jvm / "jdk-22")
    with pytest.raises(jdk.NoJdk, match="has no bin/java"):
        jdk.choose({**env, jdk.SWITCH: str(jvm / "not-a-jdk")}, jvm_dir=jvm)


def test_use_sets_java_home_and_keeps_a_users_jdk(machine) -> None:
    jvm, env = machine
    mine = {**env, "JAVA_HOME": str(jvm / "java-17")}
    chosen = jdk.use(env, jvm_dir=jvm)
    assert chosen == _at(jvm / "temurin-25") and env["JAVA_HOME"] == str(chosen.home)
    assert jdk.use(mine, jvm_dir=jvm) == _at(jvm / "java-17")
    assert mine["JAVA_HOME"] == str((jvm / "java-17").resolve())  # the same JDK, resolved


@pytest.mark.parametrize("folder", ["manager/shims", "usr/local/bin"])
def test_a_wrapper_on_the_path_is_no_jdk(tmp_path: Path, folder: str) -> None:
    """A version manager's shim or a wrapper script (in a ``bin`` folder too, whose parent
    then has a ``bin/java``): no JDK from it, and ``JAVA_HOME`` is left alone, so Spark runs
    the PATH's ``java`` as before."""
    scripts = tmp_path / folder
    scripts.mkdir(parents=True)
    (scripts / "java").write_text('#!/bin/sh\nexec real-java "$@"\n')
    (scripts / "java").chmod(0o755)
    env = {"PATH": str(scripts)}
    assert jdk.candidates(tmp_path / "no-jvm-folder", path=env["PATH"]) == []
    assert jdk.use(env, jvm_dir=tmp_path / "no-jvm-folder") is None
    assert "JAVA_HOME" not in env


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "chosen"),
        ({"JAVA_HOME": "/users/jdk"}, "/users/jdk"),
        ({"JAVA_HOME": "/users/jdk", jdk.SWITCH: "/named/jdk"}, "/named/jdk"),
    ],
)
def test_shell_tools_take_the_same_jdk(tmp_path: Path, environment, expected) -> None:
    """The ``spark-env.sh`` lines, sourced as Spark's scripts source them (``set -a``), with
    a chosen JDK whose path a shell would misread unquoted."""
    import subprocess

    from features import lakehouse

    chosen = tmp_path / "odd } $dir" / "jdk 25"
    script = tmp_path / "spark-env.sh"
    script.write_text(lakehouse.spark_env_java_home(chosen))
    env = {"PATH": "/usr/bin:/bin", **environment}
    shown = subprocess.run(
        ["bash", "-c", f'set -a; . "{script}"; set +a; env | grep ^JAVA_HOME='],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert shown == f"JAVA_HOME={chosen if expected == 'chosen' else expected}"
    assert lakehouse.spark_env_java_home(None) == ""
