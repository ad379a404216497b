"""Feast imported through the lake's package skips typeguard's checks, and only Feast's.

Each case runs in a fresh interpreter: what matters is the first import of Feast in a
process (the pytest process may have imported it already).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

PROBE = """
import features, feast, typeguard

def outcome(call):
    try:
        call()
    except typeguard.TypeCheckError:
        return "checked"
    return "not checked"

@typeguard.typechecked
def ours(name: str) -> str:
    return name

# A wrong argument type: Feast's own check, then a decorator of someone else's.
print(outcome(lambda: feast.Entity(name=123, join_keys=["customer_id"])))
print(outcome(lambda: ours(123)))
"""


def _probe(folder: Path, **env: str) -> list[str]:
    """What the probe printed: Feast's check, then another caller's.  (A file: typeguard
    reads the source of what it instruments.)"""
    script = folder / "probe.py"
    script.write_text(PROBE)
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", str(script)],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()[-2:]


def test_feast_skips_its_type_checks_and_others_keep_theirs(tmp_path) -> None:
    from features import FEAST_TYPE_CHECKS_ENV

    assert _probe(tmp_path, **{FEAST_TYPE_CHECKS_ENV: "0"}) == ["not checked", "checked"]


def test_the_variable_keeps_feasts_checks(tmp_path) -> None:
    from features import FEAST_TYPE_CHECKS_ENV

    assert _probe(tmp_path, **{FEAST_TYPE_CHECKS_ENV: "1"}) == ["checked", "checked"]
