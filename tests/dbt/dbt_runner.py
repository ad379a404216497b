"""dbt invoked in-process on the session target, over the test bronze fixture."""

from __future__ import annotations

from tests.conftest import REPO_ROOT
from tests.dbt.bronze_fixture import BRONZE_SCHEMA

PROJECT = REPO_ROOT / "dbt_project"
VARS = f"{{bronze_schema: {BRONZE_SCHEMA}}}"


def dbt(*args: str, vars: str = VARS):
    """Invoke dbt in-process on the session target; return the result."""
    from dbt.cli.main import dbtRunner

    return dbtRunner().invoke(
        [*args, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT),
         "--target", "session", "--vars", vars]
    )


def failures(result) -> list[str]:
    """Names and messages of the nodes of a dbt result that did not succeed."""
    if result.result is None:
        return [str(result.exception)]
    try:
        nodes = list(result.result)
    except TypeError:
        return [str(result.result)]
    return [
        f"{r.node.name}: {r.status} {r.message}"
        for r in nodes
        if str(r.status) not in ("success", "pass")
    ]
