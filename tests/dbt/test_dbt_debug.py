"""dbt's session target works against the shared SparkSession."""

from __future__ import annotations

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.dbt


def test_dbt_debug_passes_on_session_target(spark, monkeypatch) -> None:
    from features import dbt_runs

    project = REPO_ROOT / "dbt_project"
    monkeypatch.chdir(project)
    result = dbt_runs.invoke(["debug"], project=project)
    assert result.success, result.exception
