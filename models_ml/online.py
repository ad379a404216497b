"""Online scores: the champion on customers' latest features from Feast's online store.

``features predict --customer-id N`` and ``features serve-model --online`` answer with
:class:`OnlineScorer`: the feature service's features of the asked customers as Feast's
online store holds them (what ``features materialize`` / the daily job loaded: SQLite by
default, Redis on the cluster setup), scored by the lake's serving version of the churn
model (the champion, as batch scoring uses): exported to ONNX and run by onnxruntime when the
``onnx`` extra is installed (:mod:`models_ml.onnx_runtime`; under a millisecond, float32),
else by its Spark pipeline (exact; about 250 ms a request), in a Spark session without the
metastore (the embedded one admits one process, and the daily job needs it).

The risk decile places a probability among the batch scores of the newest score date of
the same model version: decile ``d``'s cut is the highest probability batch scoring put in
deciles ``1..d``, so a customer's online decile is the batch decile of the same
probability.  For a customer materialized on day D, the online answer therefore equals
that customer's row of ``predictions.churn_scores`` for D.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyspark.sql.functions as F
from pyspark.ml.classification import LogisticRegressionModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    BooleanType,
    DataType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from features import feast_repo, lakehouse
from models_ml import churn, lake, model_store, onnx_runtime
from models_ml.training import score

# Feast's value types of the feature service, as the batch frame's Spark types.
_SPARK_TYPES: dict[str, DataType] = {
    "Int32": IntegerType(),
    "Int64": LongType(),
    "Float32": FloatType(),
    "Float64": DoubleType(),
    "String": StringType(),
    "Bool": BooleanType(),
}
LOGGER = logging.getLogger("features")
NO_FEATURES = "no features in the online store"
RUNTIMES = ("auto", "onnx", "spark")


class NoModel(RuntimeError):
    """The lake has no churn model to score with yet."""


class RuntimeUnavailable(RuntimeError):
    """The runtime asked for cannot run this model here."""


def _predictions(spark: SparkSession) -> DataFrame | None:
    """The batch scores, through the catalog or (a session without the metastore) by the
    managed table's folder; None when nothing was scored yet."""
    if spark.conf.get("spark.sql.catalogImplementation", "in-memory") == "hive":
        if not spark.catalog.tableExists(churn.PREDICTIONS_TABLE):
            return None
        return spark.table(churn.PREDICTIONS_TABLE)
    database, table = churn.PREDICTIONS_TABLE.split(".")
    folder = lakehouse.settings().warehouse_dir / f"{database}.db" / table
    if not (folder / "_delta_log").is_dir():
        return None
    return spark.read.format("delta").load(str(folder))


def _scores_of(spark: SparkSession, version: str) -> DataFrame | None:
    """The batch scores of the churn model's ``version`` (None when nothing was scored)."""
    scores = _predictions(spark)
    if scores is None:
        return None
    return scores.where(
        (F.col("model_name") == churn.MODEL_NAME) & (F.col("model_version") == version)
    )


def newest_score_date(spark: SparkSession, version: str) -> dt.date | None:
    """The newest date batch scoring scored with ``version`` (None: never)."""
    scores = _scores_of(spark, version)
    return None if scores is None else scores.agg(F.max("score_date")).first()[0]


def decile_cuts(spark: SparkSession, version: str) -> tuple[dt.date | None, list[float]]:
    """The newest score date of ``version`` and its nine decile cuts (none: not scored).

    Cut ``d`` is the highest probability in deciles ``1..d`` of that date (a decile left
    empty by ties takes the cut below it).
    """
    day = newest_score_date(spark, version)
    if day is None:
        return None, []
    highest = dict(
        _scores_of(spark, version)
        .where(F.col("score_date") == F.lit(day))
        .groupBy("risk_decile")
        .agg(F.max("churn_probability"))
        .collect()
    )
    cuts: list[float] = []
    for decile in range(1, 10):
        below = [highest[d] for d in range(1, decile + 1) if d in highest]
        cuts.append(max(below) if below else float("-inf"))
    return day, cuts


def risk_decile(probability: float, cuts: Sequence[float], tolerance: float = 0.0) -> int:
    """1 (least likely to churn) .. 10: one more than the cuts ``probability`` exceeds by
    more than ``tolerance`` (a float32 runtime's probability of the customer that makes a
    cut may land a hair above it)."""
    return 1 + sum(probability > cut + tolerance for cut in cuts)


@dataclasses.dataclass
class OnlineScorer:
    """The champion and the online store, loaded once, scoring customers by id.

    Attributes:
        spark: The session the pipeline runs in.
        model: The serving version's fitted pipeline.
        version: Its version (as ``predictions.churn_scores.model_version`` writes it).
        store: Feast's ``FeatureStore``.
        schema: ``customer_id`` and the feature service's features as Spark types.
        config: The model's configuration over the feature service.
        threshold: The model's decision threshold.
        score_date: The batch score date the deciles come from (None: never scored).
        cuts: The decile cuts of that date.
        service: The feature service the model reads (Feast's ``FeatureService``).
        onnx: The pipeline in onnxruntime (None: scored by Spark).
        note: Why the runtime is Spark when ONNX was wanted (None otherwise).
    """

    spark: SparkSession
    model: Any
    version: str
    store: Any
    schema: StructType
    config: Any
    threshold: float | None
    score_date: dt.date | None
    cuts: list[float]
    service: Any = None
    onnx: Any = None
    note: str | None = None

    @property
    def runtime(self) -> str:
        """``onnx`` or ``spark``: what scores the rows."""
        return "onnx" if self.onnx is not None else "spark"

    @classmethod
    def load(cls, spark: SparkSession | None = None, *, runtime: str = "auto") -> OnlineScorer:
        """Load the serving version and its decile cuts (a session without the
        metastore unless one runs already).

        Args:
            spark: The session to use (a new one without the metastore by default).
            runtime: ``onnx`` (the pipeline exported to onnxruntime: sub-millisecond,
                float32), ``spark`` (the pipeline as batch scoring runs it: exact, about
                250 ms a request) or ``auto`` (ONNX when the ``onnx`` extra is installed
                and the pipeline converts, else Spark).

        Raises:
            NoModel: When no churn model has been trained in this lake.
            RuntimeUnavailable: When ``onnx`` is asked for and cannot run the model.
        """
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime: one of {RUNTIMES}, not {runtime!r}")
        spark = spark or lakehouse.spark_session(metastore=False)
        version = churn.serving_version()
        if version is None:
            raise NoModel(
                f"no {churn.MODEL_NAME} model in this lake yet: `features train` "
                "(or `features daily`) makes one"
            )
        model, metadata = model_store.load_model(churn.MODEL_NAME, version=version)
        store = feast_repo.feature_store()
        fields = [StructField("customer_id", LongType())]
        service = store.get_feature_service(lake.FEATURE_SERVICE)
        for projection in service.feature_view_projections:
            for field in projection.features:
                fields.append(StructField(field.name, _SPARK_TYPES[str(field.dtype)]))
        served = str(metadata.get("version", version))
        day, cuts = decile_cuts(spark, served)
        scorer = cls(
            spark=spark,
            model=model,
            version=served,
            store=store,
            schema=StructType(fields),
            config=lake.model_config(store),
            threshold=metadata.get("threshold"),
            score_date=day,
            cuts=cuts,
            service=service,
        )
        if runtime != "spark":
            try:
                scorer.onnx = scorer._export()
            except onnx_runtime.NotConvertible as error:
                if runtime == "onnx":
                    raise RuntimeUnavailable(f"ONNX cannot score v{version}: {error}") from None
                scorer.note = f"scored by Spark: {error}"
        return scorer

    def _export(self) -> onnx_runtime.OnnxPipeline:
        """The pipeline in onnxruntime, checked against Spark on up to 50 customers of the
        version's newest score date (a linear model's export when it was never scored).

        Raises:
            onnx_runtime.NotConvertible: When the export is missing, fails or differs.
        """
        if not onnx_runtime.available():
            raise onnx_runtime.NotConvertible(
                "the onnx extra is not installed (pip install -e '.[onnx]')"
            )
        exported = onnx_runtime.OnnxPipeline(self.model, config=self.config, spark=self.spark)
        sample: list[dict[str, Any]] = []
        if self.score_date is not None:
            ids = [
                row[0]
                for row in _scores_of(self.spark, self.version)
                .where(F.col("score_date") == F.lit(self.score_date))
                .select("customer_id")
                .orderBy("customer_id")
                .limit(50)
                .collect()
            ]
            sample = [row for row in self.features(ids) if self._has_features(row)]
        if sample:
            expected = self._spark_probabilities(sample)
            exported.verify(sample, [expected[row["customer_id"]] for row in sample])
        elif not isinstance(self.model.stages[-1], LogisticRegressionModel):
            raise onnx_runtime.NotConvertible(
                f"no batch scores of v{self.version} to check the export of a "
                f"{type(self.model.stages[-1]).__name__} against"
            )
        return exported

    def stale(self) -> bool:
        """Whether the lake serves another version now, or scored this one on a newer date
        (new decile cuts), than when this scorer was loaded."""
        version = churn.serving_version()
        if version is None or str(version) != self.version:
            return True
        return newest_score_date(self.spark, self.version) != self.score_date

    def _has_features(self, row: dict[str, Any]) -> bool:
        return any(row[name] is not None for name in self.schema.names[1:])

    def _spark_probabilities(self, rows: Sequence[dict[str, Any]]) -> dict[int, float]:
        """P(churn) by customer id, by the Spark pipeline as batch scoring runs it."""
        frame = self.spark.createDataFrame(list(rows), self.schema)
        out = score(self.model, frame, config=self.config, threshold=self.threshold)
        return {
            row["customer_id"]: float(row["score"])
            for row in out.select("customer_id", "score").collect()
        }

    def features(self, customer_ids: Sequence[int]) -> list[dict[str, Any]]:
        """The customers' latest features in the online store, one dict per id, in order
        (a feature the store lacks is None)."""
        online = self.store.get_online_features(
            features=self.service,
            entity_rows=[{"customer_id": int(c)} for c in customer_ids],
        ).to_dict()
        names = [field.name for field in self.schema.fields]
        return [
            {
                name: (int(customer_ids[i]) if name == "customer_id" else online[name][i])
                for name in names
            }
            for i in range(len(customer_ids))
        ]

    def predict(self, customer_ids: Sequence[int]) -> list[dict[str, Any]]:
        """One answer per id, in order: ``customer_id``, ``churn_probability``,
        ``risk_decile`` (None when the version was never batch-scored) and
        ``model_version``; a customer without any feature in the online store gets
        ``error`` instead of a probability."""
        if not customer_ids:
            return []
        rows = self.features(customer_ids)
        known = [row for row in rows if self._has_features(row)]
        scored: dict[int, float] = {}
        if known and self.onnx is not None:
            scored = dict(
                zip(
                    [row["customer_id"] for row in known],
                    self.onnx.probabilities(known),
                    strict=True,
                )
            )
        elif known:
            scored = self._spark_probabilities(known)
        tolerance = onnx_runtime.TOLERANCE if self.onnx is not None else 0.0
        answers = []
        for row in rows:
            customer = row["customer_id"]
            answer: dict[str, Any] = {
                "customer_id": customer,
                "churn_probability": None,
                "risk_decile": None,
                "model_version": self.version,
            }
            if customer in scored:
                probability = scored[customer]
                answer["churn_probability"] = probability
                if self.cuts:
                    answer["risk_decile"] = risk_decile(probability, self.cuts, tolerance)
            else:
                answer["error"] = (
                    f"{NO_FEATURES} for customer {customer}: not a customer, or none of its "
                    "features materialized yet (`features materialize --to DATE`, which "
                    "the daily job runs)"
                )
            answers.append(answer)
        return answers


MAX_CUSTOMERS = 1000  # per request
REFRESH_S = 300.0  # how often the server asks whether the lake serves a newer model or day
_ID = re.compile(r"[0-9]{1,18}")


class _Serving:
    """What the server's threads share: the scorer, reloaded when it is stale (checked at
    most every :data:`REFRESH_S` seconds), and the lock that keeps one scoring at a time
    (the Spark session and onnxruntime's session are shared)."""

    def __init__(self, scorer: OnlineScorer, runtime: str) -> None:
        self.scorer = scorer
        self.runtime = runtime
        self.lock = threading.Lock()
        self.checked = time.monotonic()

    def predict(self, ids: list[int]) -> list[dict[str, Any]]:
        with self.lock:
            if time.monotonic() - self.checked > REFRESH_S:
                self.checked = time.monotonic()
                if self.scorer.stale():
                    LOGGER.info("online: the lake serves a newer model or score date; reloading")
                    self.scorer = OnlineScorer.load(self.scorer.spark, runtime=self.runtime)
            return self.scorer.predict(ids)


class _Handler(BaseHTTPRequestHandler):
    """``GET /predict?customer_id=N[&customer_id=M...]`` or ``POST /predict`` with
    ``{"customer_ids": [N, ...]}``: ``{"predictions": [...]}`` (one answer per id, see
    :meth:`OnlineScorer.predict`); ``GET /ping``: 200 when it can answer."""

    serving: _Serving
    server_version = "lakehouse-online"
    timeout = 30  # seconds a client may take to send its request

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        LOGGER.info("online: %s", format % args)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, raw: Sequence[Any]) -> None:
        ids = [
            int(value)
            for value in raw
            if (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
            or (isinstance(value, str) and _ID.fullmatch(value))
        ]
        if len(ids) != len(raw):
            self._send(400, {"error": f"customer ids are integers, not {list(raw)!r}"})
            return
        if not ids or len(ids) > MAX_CUSTOMERS:
            self._send(
                400, {"error": f"ask for 1 to {MAX_CUSTOMERS} customer ids (got {len(ids)})"}
            )
            return
        try:
            predictions = self.serving.predict(ids)
        except Exception as error:  # noqa: BLE001 - the client gets one line, the log the rest
            LOGGER.exception("online: scoring %s failed", ids[:10])
            self._send(
                500,
                {
                    "error": f"scoring failed ({type(error).__name__}: "
                    f"{str(error).splitlines()[0] if str(error) else ''}); "
                    "see the server's log"
                },
            )
            return
        self._send(200, {"predictions": predictions})

    def do_GET(self) -> None:  # noqa: N802 - the base's name
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/ping":
            scorer = self.serving.scorer
            self._send(200, {"model_version": scorer.version, "runtime": scorer.runtime})
        elif url.path == "/predict":
            self._answer(urllib.parse.parse_qs(url.query).get("customer_id", []))
        else:
            self._send(404, {"error": "GET /predict?customer_id=N or POST /predict"})

    def do_POST(self) -> None:  # noqa: N802 - the base's name
        if urllib.parse.urlsplit(self.path).path != "/predict":
            self._send(404, {"error": 'POST /predict with {"customer_ids": [...]}'})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= 64 * MAX_CUSTOMERS:
                raise ValueError
            body = json.loads(self.rfile.read(length) or b"{}")
            raw = body["customer_ids"]
            if not isinstance(raw, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._send(400, {"error": 'the body is {"customer_ids": [N, ...]}'})
            return
        self._answer(raw)


def make_server(
    scorer: OnlineScorer, *, host: str, port: int, runtime: str = "auto"
) -> ThreadingHTTPServer:
    """An HTTP server of ``scorer``'s answers on ``host:port`` (loopback: it checks no
    logins; see :func:`models_ml.serving.check_host`); ``serve_forever`` runs it.
    A scorer gone stale is reloaded with ``runtime``."""
    from models_ml.serving import check_host

    check_host(host)
    handler = type("OnlineHandler", (_Handler,), {"serving": _Serving(scorer, runtime)})
    server = type(
        "OnlineServer",
        (ThreadingHTTPServer,),
        {
            "daemon_threads": True,
            "address_family": socket.AF_INET6 if ":" in host else socket.AF_INET,
        },
    )
    return server((host, port), handler)
