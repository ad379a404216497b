"""Feast's feature views take their features from the marts' dbt contracts (no JVM).

The repository's views are imported as ``feast apply`` imports them, over the repository's
dbt project or an edited copy of its YAML (``DBT_PROJECT_DIR``).  That the lake's apply
refuses a feature whose type changed is tests/feast/test_feature_repo.py's (a registry).
"""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path

import pytest

from features import dbt_contracts, feast_repo

REPO_MODULES = ("feature_views", "feature_services", "data_sources", "entities")
KEYS_AND_TIMES = {"customer_id", "feature_date", "event_timestamp", "created_timestamp"}


@pytest.fixture
def load_views(monkeypatch):
    """Import ``feature_repo/feature_views.py`` afresh (over ``project`` when given)."""

    def load(project: Path | None = None) -> dict:
        if project is not None:
            monkeypatch.setenv("DBT_PROJECT_DIR", str(project))
        for name in REPO_MODULES:
            sys.modules.pop(name, None)
        module = importlib.import_module("feature_views")
        return {
            view.name: view
            for view in (module.customer_usage, module.customer_billing, module.customer_support)
        }

    monkeypatch.delenv("DBT_PROJECT_DIR", raising=False)
    monkeypatch.syspath_prepend(str(feast_repo.REPO_PATH))
    yield load
    for name in REPO_MODULES:
        sys.modules.pop(name, None)


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the dbt project's models, to edit."""
    copy = tmp_path / "dbt_project"
    shutil.copytree(dbt_contracts.DBT_PROJECT / "models", copy / "models")
    return copy


def _marts_yaml(project: Path) -> Path:
    return project / "models" / "marts" / "features" / "_features__models.yml"


def test_every_view_holds_its_marts_contract_columns(load_views) -> None:
    views = load_views()
    for view in views.values():
        mart = dbt_contracts.contract(view.tags["mart"].split(".")[1])
        expected = [
            (c.name, dbt_contracts.feast_type_name(c.data_type))
            for c in mart.columns
            if c.name not in KEYS_AND_TIMES
        ]
        assert [(f.name, str(f.dtype)) for f in view.features] == expected
        assert len(expected) >= 9
    billing = {f.name: str(f.dtype) for f in views["customer_billing"].features}
    assert billing["tenure_days"] == "Int32" and billing["contract_type"] == "String"


def test_a_column_added_to_a_contract_is_a_feature_without_a_second_edit(
    load_views,
    project,
) -> None:
    path = _marts_yaml(project)
    text = path.read_text()
    anchor = "      - name: days_since_last_chat\n"
    assert text.count(anchor) == 1
    path.write_text(
        text.replace(
            anchor,
            (
                "      - name: refund_requests_90d\n        data_type: bigint\n"
                "        description: Refund requests in the 90 days to feature_date.\n"
            )
            + anchor,
        )
    )
    support = load_views(project)["customer_support"]
    names = [f.name for f in support.features]
    added = support.features[names.index("days_since_last_chat") - 1]  # where the contract has it
    assert (added.name, str(added.dtype)) == ("refund_requests_90d", "Int64")
    assert added.description == "Refund requests in the 90 days to feature_date."


def test_a_text_column_is_tagged_for_the_text_stage(load_views, project) -> None:
    support = load_views(project)["customer_support"]
    text = next(f for f in support.features if f.name == "recent_chat_text")
    assert str(text.dtype) == "String" and text.tags == {"feature_role": "text"}
    assert all(not f.tags for f in support.features if f.name != "recent_chat_text")


def test_a_type_feast_cannot_serve_stops_the_import_naming_column_and_mart(
    load_views,
    project,
) -> None:
    path = _marts_yaml(project)
    text = path.read_text()
    anchor = "      - name: open_balance\n        data_type: double\n"
    assert text.count(anchor) == 1
    path.write_text(text.replace(anchor, anchor.replace("double", "decimal(12,2)")))
    with pytest.raises(
        dbt_contracts.ContractError,
        match=r"column open_balance of mart features.customer_billing has "
        r"contract type 'decimal\(12,2\)'.*_features__models.yml",
    ):
        load_views(project)


def test_a_changed_type_is_named_with_its_mart(load_views, project) -> None:
    registered = load_views()
    path = _marts_yaml(project)
    text = path.read_text()
    anchor = "      - name: tenure_days\n        data_type: int\n"
    assert text.count(anchor) == 1
    path.write_text(text.replace(anchor, anchor.replace("int", "bigint")))
    declared = load_views(project)
    assert dbt_contracts.type_changes(registered.values(), declared.values()) == [
        "column tenure_days of mart features.customer_billing (feature view "
        "customer_billing) changed type Int32 -> Int64"
    ]
    assert dbt_contracts.type_changes(registered.values(), registered.values()) == []


def test_a_model_without_an_enforced_contract_is_refused(project) -> None:
    with pytest.raises(dbt_contracts.ContractError, match="no YAML under .* declares"):
        dbt_contracts.contract("no_such_mart", project=project)
    path = _marts_yaml(project)
    path.write_text(path.read_text().replace("enforced: true", "enforced: false", 1))
    with pytest.raises(dbt_contracts.ContractError, match="no enforced contract"):
        dbt_contracts.contract("customer_usage_daily", project=project)
