"""The JDK the lake's JVMs run on: the newest one on this machine that Spark supports.

Spark 4.2 runs on Java 17, 21 and 25.  A fresh process of the lake spends much of its time
in the JVM's start and just-in-time compilation, and a newer JDK does that work faster: a
forced daily run of the demo lake took 111-124 s on Temurin 25 against 131-153 s on the
Debian OpenJDK 17 of the same machine, alternating (bench/RESULTS.md, "Small runs").

Which JDK, in this order:

1. ``LAKEHOUSE_JAVA_HOME``, when set: that one (an error when it holds no ``bin/java``);
2. ``JAVA_HOME``, when set: that one, as Spark itself would take it;
3. the newest supported JDK among the one whose ``java`` is on the ``PATH`` and those
   installed under ``/usr/lib/jvm`` (Debian's and Temurin's packages install there);
4. when none of those is a supported release, the first one found (the ``PATH``'s, else
   the first under ``/usr/lib/jvm``; Spark then says what it lacks).

:func:`use` puts the choice into ``JAVA_HOME`` of this process, so that Spark's launch
scripts and every JVM the process starts (the session's, the cluster's daemons, the
Thrift Server, the class archive's recording) run the same JDK; the ``spark-env.sh`` that
``features setup`` writes does the same for programs started from a shell.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

#: The Java feature releases Spark 4.2 supports.
SUPPORTED = (17, 21, 25)
#: Where Debian's and Temurin's packages install JDKs.
JVM_DIR = Path("/usr/lib/jvm")
#: Names a JDK explicitly (wins over ``JAVA_HOME``).
SWITCH = "LAKEHOUSE_JAVA_HOME"
#: Where a JDK is looked for, for messages.
WHERE = (
    f"looked in {SWITCH}, JAVA_HOME, the PATH and {JVM_DIR}: install Java 17, 21 or 25 "
    "(Debian: openjdk-17-jre-headless)"
)


class NoJdk(RuntimeError):
    """``LAKEHOUSE_JAVA_HOME`` names a folder without ``bin/java``."""


@dataclass(frozen=True, kw_only=True)
class Jdk:
    """One JDK: its home folder and its feature release (17, 21, 25), None when unknown."""

    home: Path
    feature: int | None

    @classmethod
    def at(cls, home: Path) -> Jdk:
        """The JDK at ``home`` (links followed), its release read from its ``release`` file."""
        return cls(home=home.resolve(), feature=feature_release(home))


def feature_release(home: Path) -> int | None:
    """The feature release of the JDK at ``home`` from its ``release`` file, else None."""
    try:
        text = (home / "release").read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', text, re.MULTILINE)
    if match is None:
        return None
    major = int(match.group(1))
    # Java 8 and earlier called themselves 1.x.
    return int(match.group(2) or 0) if major == 1 else major


def _is_jdk(home: Path) -> bool:
    """Whether ``home`` is a JDK's (or JRE's) folder: ``bin/java`` and the ``release`` file or
    the class library (``lib/modules``) beside it."""
    return (home / "bin" / "java").is_file() and (
        (home / "release").is_file() or (home / "lib" / "modules").is_file()
    )


def _home_of(java: str | None) -> Path | None:
    """The JDK home of a ``java`` executable (``<home>/bin/java``), links followed; None for
    a ``java`` that is no JDK's (a version manager's shim, a wrapper script in
    ``/usr/local/bin``)."""
    if not java:
        return None
    home = Path(java).resolve().parent.parent
    return home if _is_jdk(home) else None


def candidates(jvm_dir: Path = JVM_DIR, *, path: str | None = None) -> list[Jdk]:
    """The JDKs found: the ``java`` on ``path`` (the ``PATH``) first, then ``jvm_dir``'s,
    each once."""
    homes: list[Path] = []
    path_home = _home_of(shutil.which("java", path=path))
    if path_home is not None:
        homes.append(path_home)
    if jvm_dir.is_dir():
        for entry in sorted(jvm_dir.iterdir()):
            if _is_jdk(entry):
                homes.append(entry.resolve())
    seen: set[Path] = set()
    found = []
    for home in homes:
        if home not in seen:
            seen.add(home)
            found.append(Jdk.at(home))
    return found


def choose(environ: Mapping[str, str] | None = None, *, jvm_dir: Path = JVM_DIR) -> Jdk | None:
    """The JDK the lake runs on (see the module's docstring); None when none is found.

    Raises:
        NoJdk: ``LAKEHOUSE_JAVA_HOME`` names a folder without ``bin/java``.
    """
    env = os.environ if environ is None else environ
    explicit = env.get(SWITCH)
    if explicit:
        home = Path(explicit).expanduser()
        if not (home / "bin" / "java").is_file():
            raise NoJdk(
                f"{SWITCH}={explicit} has no bin/java; point it at a JDK "
                "(Spark runs on Java 17, 21 or 25) or unset it"
            )
        return Jdk.at(home)
    if env.get("JAVA_HOME"):
        return Jdk.at(Path(env["JAVA_HOME"]).expanduser())
    found = candidates(jvm_dir, path=env.get("PATH"))
    supported = [jdk for jdk in found if jdk.feature in SUPPORTED]
    if supported:
        # The newest release; among equals, the one on the PATH (listed first).
        return max(supported, key=lambda jdk: (jdk.feature, -found.index(jdk)))
    return found[0] if found else None


def use(environ: MutableMapping[str, str] | None = None, *, jvm_dir: Path = JVM_DIR) -> Jdk | None:
    """Choose the JDK (:func:`choose`) and make it ``environ``'s ``JAVA_HOME`` (this
    process's by default: every JVM it starts, and every child process, runs that JDK).

    Returns:
        The JDK, None when none was found (``JAVA_HOME`` is then left alone, and Spark's own
        launch says what is missing).
    """
    env = os.environ if environ is None else environ
    jdk = choose(env, jvm_dir=jvm_dir)
    if jdk is not None and (jdk.home / "bin" / "java").is_file():
        env["JAVA_HOME"] = str(jdk.home)
    return jdk
