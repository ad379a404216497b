"""Fitted models in the lake with their metadata, and in MLflow's tracking and registry.

Lake layout, under the lakehouse root::

    artifacts/models/<name>/<version>/model/          the PipelineModel (MLlib format)
    artifacts/models/<name>/<version>/metadata.json   features, sources, window, params, metrics
    artifacts/models/<name>/<version>/report/         report.md and its PNG plots
    artifacts/mlflow.db                               MLflow tracking + registry (SQLite)
    artifacts/mlruns/                                 MLflow artifacts (Spark model flavor)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.ml import PipelineModel

from features import lakehouse
from models_ml.churn.report import write_report

if TYPE_CHECKING:
    from models_ml.churn.train import TrainResult

DEFAULT_ALIAS = "champion"
METADATA_FILE = "metadata.json"
#: Tag of a registered version: the lake version it was logged from.
LAKE_VERSION_TAG = "lake_version"


class ModelNotFound(LookupError):
    """No saved model under the name (and version) asked for."""


@dataclasses.dataclass(frozen=True)
class SavedModel:
    """A model saved in the lake.

    Attributes:
        name: Model name (``churn``).
        version: Integer version, 1 for the first save of a name.
        path: Its directory, ``<root>/artifacts/models/<name>/<version>``.
        metadata: The content of ``metadata.json``.
    """

    name: str
    version: int
    path: Path
    metadata: dict[str, Any]


def models_dir(root: Path | None = None) -> Path:
    """``<lakehouse root>/artifacts/models``."""
    base = root if root is not None else lakehouse.settings().root
    return Path(base) / "artifacts" / "models"


def _jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts only; NaN becomes None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) or hasattr(value, "item"):
        number = float(value)
        return None if math.isnan(number) else number
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def build_metadata(
    result: TrainResult,
    *,
    name: str,
    feature_service: str | None = None,
    source_versions: Mapping[str, int] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata saved beside a model.

    Args:
        result: The training result.
        name: Model name.
        feature_service: Feast feature service the features came from (``churn_v1``).
        source_versions: Delta version of every feature table read, ``{table: version}``.
        extra: Anything else worth keeping (e.g. the entity frame's query).
    """
    import pyspark

    cfg = result.config
    return _jsonable(
        {
            "name": name,
            "created_at": datetime.now(UTC).isoformat(),
            "family": cfg.family,
            "task": "classification" if cfg.is_classifier else "regression",
            "label": cfg.label_col,
            "feature_service": feature_service,
            "feature_names": list(cfg.feature_cols),
            "numeric_features": list(cfg.numeric_cols),
            "categorical_features": list(cfg.categorical_cols),
            "feature_slots": result.feature_slots,
            "id_columns": list(cfg.id_cols),
            "timestamp_column": cfg.timestamp_col,
            "source_versions": dict(source_versions or {}),
            "split": result.split_kind,
            "training_window": result.windows.get("train"),
            "holdout_window": result.windows.get("holdout"),
            "config": cfg.to_dict(),
            "params": result.best_params,
            "tuning": {"metric": result.tuning_metric, "grid": result.grid_metrics},
            "threshold": result.threshold,
            "metrics": result.metrics,
            "lift": result.lift,
            "top_weights": [[n, w] for n, w in result.weights[:30]],
            # every feature's largest weight over its slots (a categorical has one per value)
            "feature_weights": _feature_weights(result.weights),
            "spark_version": pyspark.__version__,
            **dict(extra or {}),
        }
    )


def _feature_weights(weights: list[tuple[str, float]]) -> dict[str, float]:
    """The largest absolute weight of each feature over its slots (``plan=basic`` is a slot
    of ``plan``)."""
    largest: dict[str, float] = {}
    for slot, weight in weights:
        name = str(slot).split("=", 1)[0]
        largest[name] = max(largest.get(name, 0.0), abs(float(weight)))
    return largest


def is_champion_choice(metadata: Mapping[str, Any]) -> bool:
    """Whether training chose this version as ``champion`` (metadata of models saved
    before the comparison existed: yes)."""
    return bool((metadata.get("promotion") or {}).get("promoted", True))


def _versions(base: Path) -> list[int]:
    """Existing integer versions under a model's directory."""
    if not base.is_dir():
        return []
    return sorted(int(p.name) for p in base.iterdir() if p.name.isdigit())


def save_model(
    result: TrainResult,
    *,
    name: str,
    feature_service: str | None = None,
    source_versions: Mapping[str, int] | None = None,
    extra: Mapping[str, Any] | None = None,
    with_report: bool = True,
    report_notes: list[str] | None = None,
    root: Path | None = None,
) -> SavedModel:
    """Save the fitted pipeline, its metadata and report as the next version of ``name``.

    Args:
        result: The training result.
        name: Model name; its versions live under ``<root>/artifacts/models/<name>/``.
        feature_service: Feast feature service of the features.
        source_versions: Delta version of every feature table read.
        extra: More metadata.
        with_report: Also write the report and plots into ``report/``.
        report_notes: Extra lines for the report's metrics section.
        root: Lakehouse root; the settings' by default.
    """
    base = models_dir(root) / name
    version = (_versions(base) or [0])[-1] + 1
    path = base / str(version)
    metadata = build_metadata(
        result,
        name=name,
        feature_service=feature_service,
        source_versions=source_versions,
        extra=extra,
    )
    metadata["version"] = version
    # Written aside and renamed into place: a crash leaves no half version behind
    # (``_versions`` lists only whole numbers), and a reader never sees one.
    base.mkdir(parents=True, exist_ok=True)
    for stale in base.glob(".partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".partial-{version}-", dir=base))
    result.model.write().save(str(staging / "model"))
    if with_report:
        write_report(result, staging / "report", title=f"{name} v{version}", notes=report_notes)
    (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True))
    os.rename(staging, path)
    return SavedModel(name=name, version=version, path=path, metadata=metadata)


def load_model(
    name: str, *, version: int | None = None, root: Path | None = None
) -> tuple[PipelineModel, dict[str, Any]]:
    """Load a saved model (the latest version by default) and its metadata.

    Raises:
        ModelNotFound: When the name or version has not been saved.
    """
    base = models_dir(root) / name
    versions = _versions(base)
    chosen = version if version is not None else (versions[-1] if versions else None)
    if chosen is None or chosen not in versions:
        raise ModelNotFound(
            f"load_model: no model {name!r} version {version or 'latest'} under {base} "
            f"(saved versions: {versions}); train and save_model it first"
        )
    path = base / str(chosen)
    metadata = json.loads((path / METADATA_FILE).read_text())
    return PipelineModel.load(str(path / "model")), metadata


# --- MLflow -----------------------------------------------------------------------------


def mlflow_uris(root: Path | None = None) -> tuple[str, str]:
    """Tracking/registry URI (SQLite) and artifact root under the lakehouse root."""
    base = Path(root if root is not None else lakehouse.settings().root) / "artifacts"
    return f"sqlite:///{base / 'mlflow.db'}", (base / "mlruns").as_uri()


def configure_mlflow(root: Path | None = None) -> str:
    """Point MLflow's tracking and registry at the lake's local backend; return the URI."""
    import mlflow

    tracking, artifacts = mlflow_uris(root)
    database = Path(tracking.removeprefix("sqlite:///"))
    if not database.exists():
        # MLflow would create the store with its Default experiment's artifacts in
        # ./mlruns of whatever folder it first ran from: created here, they are the lake's.
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        database.parent.mkdir(parents=True, exist_ok=True)
        SqlAlchemyStore(tracking, artifacts)
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    return tracking


def _experiment_id(experiment: str, root: Path | None) -> str:
    """The id of an experiment whose artifacts live under the lake, created if needed."""
    import mlflow

    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    _, artifacts = mlflow_uris(root)
    return mlflow.create_experiment(experiment, artifact_location=f"{artifacts}/{experiment}")


def _dfs_tmpdir(root: Path | None) -> str:
    """Scratch directory Spark writes the model through when MLflow logs or loads it."""
    base = Path(root if root is not None else lakehouse.settings().root)
    path = base / "artifacts" / "tmp" / "mlflow"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


@dataclasses.dataclass(frozen=True)
class RegisteredModel:
    """A model version in MLflow's registry.

    Attributes:
        name: Registered model name.
        version: Registry version (string, as MLflow gives it).
        run_id: Tracking run that logged it.
        model_uri: ``models:/<name>/<version>``.
    """

    name: str
    version: str
    run_id: str
    model_uri: str


def run_name(metadata: Mapping[str, Any]) -> str:
    """An MLflow run's name, for what it is: task, lake version, family, the data's last day
    (``churn v3 logistic to 2026-03-30``)."""
    window = metadata.get("holdout_window") or metadata.get("training_window") or {}
    last = window.get("end") if isinstance(window, Mapping) else None
    parts = [str(metadata.get("name") or "model")]
    if metadata.get("version") is not None:
        parts.append(f"v{metadata['version']}")
    parts.append(str(metadata.get("family") or ""))
    if last:
        parts.append(f"to {str(last)[:10]}")
    return " ".join(part for part in parts if part)


def log_to_mlflow(
    result: TrainResult,
    *,
    name: str,
    metadata: Mapping[str, Any] | None = None,
    report_dir: Path | None = None,
    experiment: str | None = None,
    alias: str | None = DEFAULT_ALIAS,
    root: Path | None = None,
    input_example: Any = None,
) -> RegisteredModel:
    """Log a training result to MLflow (Spark flavor), register it and optionally alias it.

    With an ``input_example`` (a few rows of the feature columns, pandas), the model is
    logged with it and the signature MLflow infers from it, so that a client of
    ``mlflow models serve`` knows what to send; a classifier is logged as
    :func:`models_ml.churn.serving.serving_copy` makes it (its probabilities served).

    Args:
        result: The training result.
        name: Registered model name.
        metadata: Metadata to attach (e.g. ``SavedModel.metadata``); built if absent.
        report_dir: A directory of report files to log as artifacts (``report/``).
        experiment: Experiment name; ``name`` by default.
        alias: Alias to point at the new version (``champion``); ``None`` leaves aliases.
        root: Lakehouse root; the settings' by default.
    """
    import mlflow
    import mlflow.spark
    import pyspark

    configure_mlflow(root)
    meta = dict(metadata) if metadata is not None else build_metadata(result, name=name)
    with mlflow.start_run(
        experiment_id=_experiment_id(experiment or name, root), run_name=run_name(meta)
    ) as run:
        mlflow.log_params(
            {
                "family": result.config.family,
                "tuning": result.config.tuning,
                "threshold": result.threshold,
                **{f"best_{k}": v for k, v in result.best_params.items()},
            }
        )
        mlflow.log_metrics(
            {
                k: float(v)
                for k, v in result.metrics.items()
                if isinstance(v, (int, float)) and not math.isnan(float(v))
            }
        )
        mlflow.log_dict(_jsonable(meta), METADATA_FILE)
        if report_dir is not None:
            mlflow.log_artifacts(str(report_dir), artifact_path="report")
        from models_ml.churn import serving

        info = mlflow.spark.log_model(
            serving.serving_copy(result.model),
            artifact_path="model",
            input_example=input_example,
            registered_model_name=name,
            pip_requirements=[f"pyspark=={pyspark.__version__}"],
            dfs_tmpdir=_dfs_tmpdir(root),
            metadata={
                "feature_service": meta.get("feature_service"),
                "feature_names": list(result.config.feature_cols),
            },
        )
    version = str(info.registered_model_version)
    if meta.get("version") is not None:
        from mlflow import MlflowClient

        MlflowClient(tracking_uri=configure_mlflow(root)).set_model_version_tag(
            name, version, LAKE_VERSION_TAG, str(meta["version"])
        )
    if alias:
        promote(name, version, alias=alias, root=root)
    return RegisteredModel(
        name=name, version=version, run_id=run.info.run_id, model_uri=f"models:/{name}/{version}"
    )


def promote(
    name: str, version: str | int, *, alias: str = DEFAULT_ALIAS, root: Path | None = None
) -> None:
    """Point ``alias`` (``champion`` by default) of a registered model at ``version``."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=configure_mlflow(root))
    client.set_registered_model_alias(name, alias, str(version))


def load_registered(
    name: str,
    *,
    alias: str | None = DEFAULT_ALIAS,
    version: str | int | None = None,
    root: Path | None = None,
) -> PipelineModel:
    """Load a registered model as a PipelineModel, by alias (default) or version."""
    import mlflow.spark

    from models_ml.churn import serving

    configure_mlflow(root)
    uri = f"models:/{name}/{version}" if version is not None else f"models:/{name}@{alias}"
    return serving.restore_output_cols(mlflow.spark.load_model(uri, dfs_tmpdir=_dfs_tmpdir(root)))


def load_promoted(
    name: str, *, alias: str = DEFAULT_ALIAS, root: Path | None = None
) -> tuple[PipelineModel, dict[str, Any]]:
    """Load the registered version ``alias`` points at, with the metadata logged beside it.

    Raises:
        ModelNotFound: When no version of ``name`` carries ``alias``.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=configure_mlflow(root))
    try:
        entry = client.get_model_version_by_alias(name, alias)
    except MlflowException as error:
        raise ModelNotFound(
            f"load_promoted: no registered model {name!r} with alias {alias!r}; "
            f"train one, or promote a version with persist.promote"
        ) from error
    metadata = mlflow.artifacts.load_dict(f"runs:/{entry.run_id}/{METADATA_FILE}")
    metadata["registered_version"] = str(entry.version)
    return load_registered(name, version=entry.version, root=root), metadata


CHALLENGER_ALIAS = "challenger"


def champion_version(
    name: str, *, alias: str = DEFAULT_ALIAS, root: Path | None = None
) -> int | None:
    """The lake version of the registered version ``alias`` points at (None: none does, or
    it was registered without its lake version)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=configure_mlflow(root))
    try:
        entry = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    tag = (entry.tags or {}).get(LAKE_VERSION_TAG)
    return int(tag) if tag is not None and tag.isdigit() else None


def saved_versions(name: str, *, root: Path | None = None) -> list[int]:
    """Versions of ``name`` saved in the lake, oldest first."""
    return _versions(models_dir(root) / name)


def read_metadata(name: str, version: int, *, root: Path | None = None) -> dict[str, Any]:
    """The metadata of a saved version, without loading its model."""
    return json.loads((models_dir(root) / name / str(version) / METADATA_FILE).read_text())


def discard_version(name: str, version: int, *, root: Path | None = None) -> None:
    """Remove a saved version (moved aside first, so it vanishes in one rename)."""
    path = models_dir(root) / name / str(version)
    if path.is_dir():
        doomed = path.with_name(f".partial-discarded-{version}")
        shutil.rmtree(doomed, ignore_errors=True)
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def registered_version(name: str, lake_version: int, *, root: Path | None = None) -> str | None:
    """The registry version logged from lake version ``lake_version`` of ``name``, if any."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=configure_mlflow(root))
    try:
        found = client.search_model_versions(f"name='{name}'")
    except MlflowException:
        return None
    for entry in found:
        if (entry.tags or {}).get(LAKE_VERSION_TAG) == str(lake_version):
            return str(entry.version)
    return None
