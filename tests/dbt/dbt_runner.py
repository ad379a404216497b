"""dbt invoked in-process on the session target, over the test bronze fixture."""

from __future__ import annotations

from features import dbt_runs
from tests.conftest import REPO_ROOT
from tests.dbt.bronze_fixture import BRONZE_SCHEMA

PROJECT = REPO_ROOT / "dbt_project"
VARS = f"{{bronze_schema: {BRONZE_SCHEMA}}}"
failures = dbt_runs.failures


def dbt(*args: str, vars: str = VARS):
    """Invoke dbt in-process on the session target; return the result."""
    return dbt_runs.invoke([*args, "--vars", vars], project=PROJECT)
