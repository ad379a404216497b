"""feature_repo/ over the dbt marts: apply, point-in-time retrieval, online reads."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from features import feast_repo

pytestmark = pytest.mark.feast


@pytest.fixture(scope="module")
def store(feature_marts):
    views = feast_repo.apply()
    assert views == ["customer_billing", "customer_support", "customer_usage"]
    return feast_repo.feature_store()


def test_apply_says_what_changes_and_nothing_when_nothing_does(
    store, tmp_path, monkeypatch
) -> None:
    import shutil

    views, changed = feast_repo.apply_changes()
    assert changed == []  # Feast's own plan would "update" every view (its timestamps)
    edited = tmp_path / "feature_repo"
    shutil.copytree(feast_repo.REPO_PATH, edited)
    definitions = edited / "feature_views.py"
    text = definitions.read_text()
    assert text.count("ttl=timedelta(days=3)") == 3
    definitions.write_text(text.replace("ttl=timedelta(days=3)", "ttl=timedelta(days=4)", 1))
    monkeypatch.setenv("LAKEHOUSE_FEATURE_REPO", str(edited))
    _, changed = feast_repo.apply_changes()
    assert changed == ["update feature view customer_usage: ttl"]
    monkeypatch.delenv("LAKEHOUSE_FEATURE_REPO")
    _, changed = feast_repo.apply_changes()  # the repository's own definitions again
    assert changed == ["update feature view customer_usage: ttl"]
    assert feast_repo.apply_changes()[1] == []


def test_apply_refuses_a_feature_whose_contract_type_changed(store, tmp_path, monkeypatch) -> None:
    """The views take their features from the marts' dbt contracts: a registered feature's
    type changed there stops the apply, naming column and mart; the registry keeps its
    views."""
    import shutil

    from features import dbt_contracts

    project = tmp_path / "dbt_project"
    shutil.copytree(dbt_contracts.DBT_PROJECT / "models", project / "models")
    marts = project / "models" / "marts" / "features" / "_features__models.yml"
    anchor = "      - name: tenure_days\n        data_type: int\n"
    marts.write_text(marts.read_text().replace(anchor, anchor.replace("int", "double")))
    monkeypatch.setenv("DBT_PROJECT_DIR", str(project))
    with pytest.raises(
        feast_repo.FeatureTypeChanged,
        match=r"column tenure_days of mart features.customer_billing \(feature "
        r"view customer_billing\) changed type Int32 -> Float64",
    ):
        feast_repo.apply_changes()
    monkeypatch.delenv("DBT_PROJECT_DIR")
    tenure = next(
        f for f in store.get_feature_view("customer_billing").features if f.name == "tenure_days"
    )
    assert str(tenure.dtype) == "Int32"
    assert feast_repo.apply_changes()[1] == []


def test_registry_holds_the_churn_service(store) -> None:
    service = store.get_feature_service("churn_v1")
    assert {p.name for p in service.feature_view_projections} == {
        "customer_usage",
        "customer_billing",
        "customer_support",
    }
    assert [e.name for e in store.list_entities()] == ["customer"]


def test_the_churn_config_reads_the_service_roles_and_fits_each_family(store) -> None:
    from models_ml import build_pipeline
    from models_ml.lake import model_config, service_features

    numeric, categorical, text = service_features(store)
    assert text == ["recent_chat_text"] and "recent_chat_text" not in categorical
    assert model_config(store).text_cols == ()
    assert model_config(store, text_features=True).text_cols == ("recent_chat_text",)
    for family in ("logistic", "gbt", "torch_mlp"):
        config = model_config(store, family=family)
        estimator = build_pipeline(config).getStages()[-1]
        assert set(config.grid()) <= {p.name for p in estimator.params}, family


def test_historical_features_are_point_in_time(store) -> None:
    entity_df = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 3],
            "event_timestamp": pd.to_datetime(
                [
                    "2026-01-04 23:59:59",
                    "2026-01-05 12:00:00",
                    "2026-01-05 23:59:59",
                    "2026-01-02 23:59:59",
                ],
                utc=True,
            ),
            "label": [0, 0, 1, 0],
        }
    )
    frame = (
        store.get_historical_features(
            entity_df=entity_df,
            features=store.get_feature_service("churn_v1"),
        )
        .to_df()
        .sort_values(["customer_id", "event_timestamp"])
        .reset_index(drop=True)
    )
    assert len(frame) == 4 and list(frame.label) == [0, 0, 1, 0]
    # At the end of Jan 4 customer 1 is on the month-to-month basic plan; at noon on
    # Jan 5 the row of Jan 5 is not known yet, so Jan 4's values still hold.
    assert list(frame.contract_type[:2]) == ["month-to-month", "month-to-month"]
    assert list(frame.monthly_charge[:2]) == [20.0, 20.0]
    assert frame.contract_type[2] == "month-to-month"
    # Customer 3 signed up on Jan 3: nothing is known on Jan 2.
    assert pd.isna(frame.tenure_days[3]) and pd.isna(frame.call_minutes_7d[3])


def test_materialize_and_read_online(store) -> None:
    # The fixture's days lie in the past: the first materialization of each view covers
    # [end - ttl, end], not Feast's [now - ttl, end], which would find nothing.
    end = dt.datetime(2026, 1, 8, 23, 59, 59, tzinfo=dt.UTC)
    starts = feast_repo.materialize_incremental(end)
    assert starts["customer_billing"] == end - dt.timedelta(days=3)
    store = feast_repo.feature_store()
    assert store.get_feature_view("customer_billing").most_recent_end_time == end
    online = store.get_online_features(
        features=["customer_billing:contract_type", "customer_billing:monthly_charge"],
        entity_rows=[{"customer_id": 1}, {"customer_id": 99}],
    ).to_dict()
    assert online["contract_type"] == ["one-year", None]
    assert online["monthly_charge"] == [50.0, None]
    # The next call continues from where this one ended.
    later = feast_repo.materialize_incremental(end + dt.timedelta(days=1))
    assert later["customer_billing"] == end
