"""Plain dbt, feast and mlflow from a shell follow the lake that LAKEHOUSE_ROOT names.

This needs a lake of its own (a second one, beside the tests' shared lake, to show that
the tools go where LAKEHOUSE_ROOT says rather than where `make setup` pointed them), and runs
the tools as a user does, each in its own process (dbt starts its own JVM: about 30 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.dbt

BIN = Path(sys.executable).parent


def _shell(script: str, *, root: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in bash with only LAKEHOUSE_ROOT (and the venv on PATH) set."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LAKEHOUSE_", "SPARK_", "MLFLOW_", "DBT_", "FEAST_"))
    }
    env.update(
        LAKEHOUSE_ROOT=str(root),
        PATH=f"{BIN}:{env.get('PATH', '')}",
        LAKEHOUSE_DRIVER_MEMORY="1g",
        SPARK_MASTER="local[1]",
        LAKEHOUSE_SHUFFLE_PARTITIONS="2",
    )
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_plain_tools_work_on_a_second_lake(tmp_path) -> None:
    root = tmp_path / "second"
    setup = _shell("features setup --no-databases", root=root, cwd=tmp_path)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    # dbt with nothing but LAKEHOUSE_ROOT: the install's spark-env.sh points its Spark there.
    dbt = _shell(
        "dbt seed --target session --profiles-dir . --select sentiment_lexicon",
        root=root,
        cwd=REPO_ROOT / "dbt_project",
    )
    assert dbt.returncode == 0, dbt.stdout[-3000:] + dbt.stderr[-3000:]
    assert (root / "metastore_db").is_dir()
    assert (root / "warehouse" / "staging.db" / "sentiment_lexicon" / "_delta_log").is_dir()
    # feast and mlflow after `eval "$(features env)"`, as README shows.
    tools = _shell(
        'eval "$(features env)"\n'
        'feast -c "$FEAST_REPO" apply --skip-source-validation > /dev/null\n'
        'feast -c "$FEAST_REPO" feature-views list\n'
        'echo "--- mlflow"\n'
        "mlflow experiments search\n",
        root=root,
        cwd=tmp_path,
    )
    assert tools.returncode == 0, tools.stdout[-3000:] + tools.stderr[-3000:]
    views, experiments = tools.stdout.split("--- mlflow")
    for view in ("customer_usage", "customer_billing", "customer_support"):
        assert view in views
    assert (root / "artifacts" / "feast" / "registry.db").is_file()
    assert str(root / "artifacts" / "mlruns") in experiments  # Default's artifacts: the lake's
