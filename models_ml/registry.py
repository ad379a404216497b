"""Models in MLflow: tracking runs, the registry and its aliases (``champion``, ``challenger``).

Under the lakehouse root::

    artifacts/mlflow.db       MLflow tracking + registry (SQLite)
    artifacts/mlruns/         MLflow artifacts (Spark model flavor)

A registered version carries the tag :data:`LAKE_VERSION_TAG`: the version of
:mod:`models_ml.model_store` it was logged from.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.ml import PipelineModel

from features import lakehouse
from models_ml.model_store import METADATA_FILE, ModelNotFound, build_metadata, jsonable

if TYPE_CHECKING:
    from models_ml.training import TrainResult

DEFAULT_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
#: Tag of a registered version: the lake version it was logged from.
LAKE_VERSION_TAG = "lake_version"


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
    :func:`models_ml.serving.serving_copy` makes it (its probabilities served).

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
        mlflow.log_dict(jsonable(meta), METADATA_FILE)
        if report_dir is not None:
            mlflow.log_artifacts(str(report_dir), artifact_path="report")
        from models_ml import serving

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

    from models_ml import serving

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
            f"train one, or promote a version with registry.promote"
        ) from error
    metadata = mlflow.artifacts.load_dict(f"runs:/{entry.run_id}/{METADATA_FILE}")
    metadata["registered_version"] = str(entry.version)
    return load_registered(name, version=entry.version, root=root), metadata


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
