"""The fitted churn pipeline exported to ONNX (onnxmltools) and run by onnxruntime.

A request for one customer's score through Spark costs a job (a frame made, planned and
collected: about 250 ms warm on two cores, ``bench/bench_online.py``); onnxruntime runs the
same pipeline in well under a millisecond.  onnxmltools converts the fitted stages
(``Imputer``, ``StringIndexer``, ``OneHotEncoder``, ``VectorAssembler``, ``StandardScaler``
and the classifier); the pipeline's first stage, a ``SQLTransformer`` that casts the numeric
features to double, has no converter and is done here (a number, or NaN for a missing one,
which the imputer replaces as Spark's does).  These fixes are applied to what onnxmltools
1.16 writes: it declares the default operator set twice (8 and 13, under its two names) and
its imputer splits columns with the ``Split`` attribute of opsets before 13 (one declaration,
13, is kept, and the sizes become the operator's input, as opset 13 has it);
its scaler divides by a zero standard deviation where Spark's ``StandardScaler`` writes 0
(the scale becomes 0); and its string indexer maps a missing or unseen value to -1 where
Spark's (``handleInvalid="keep"``) gives it the index after the labels.  A text stage
(:class:`~models_ml.text.ChatTextScorer`, a pandas UDF) has no converter either: its
numbers are computed here by the same function, :func:`models_ml.text.score_texts`, and fed
to the graph as inputs.  ONNX-ML's operators
compute in float32: probabilities agree with Spark's to about 1e-6 for a linear model, not
bit for bit (``tests/e2e/test_serving.py``); a tree's float32 thresholds may send a value
near one down the other branch, so :meth:`OnnxPipeline.verify` compares the two runtimes on
sample rows before the export is used.

Needs the ``onnx`` extra (``pip install -e '.[onnx]'``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections.abc import Sequence
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.ml.feature import ImputerModel, SQLTransformer, StringIndexerModel

from models_ml.pipeline import numeric_stage_cols
from models_ml.text import OUTPUTS, ChatTextScorer, score_texts

LOGGER = logging.getLogger(__name__)
# Probabilities in float32 differ from Spark's double ones by about this much at most.
TOLERANCE = 1e-6
# Fed for a missing categorical value: never one of a StringIndexer's labels.
_MISSING = "\x00missing"


class NotConvertible(ValueError):
    """The pipeline has a stage, or a shape, the ONNX export does not cover."""


def available() -> bool:
    """Whether the ``onnx`` extra is installed."""
    try:
        import onnxmltools  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _fix_graph(model: Any) -> None:
    """Mend what onnxmltools 1.16 writes (see the module's docstring), in place."""
    import numpy as np
    from onnx import helper, numpy_helper

    # The default domain is declared twice ("" and its alias "ai.onnx", opsets 8 and 13),
    # and which one onnxruntime reads varies between processes: keep one, the newer.
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        domain = "" if entry.domain in ("", "ai.onnx") else entry.domain
        versions[domain] = max(versions.get(domain, 0), entry.version)
    del model.opset_import[:]
    model.opset_import.extend(
        helper.make_opsetid(domain, version) for domain, version in versions.items()
    )
    for node in model.graph.node:
        if node.op_type == "Split" and versions.get("", 0) >= 13:
            sizes = [list(a.ints) for a in node.attribute if a.name == "split"]
            if sizes:
                kept = [a for a in node.attribute if a.name != "split"]
                del node.attribute[:]
                node.attribute.extend(kept)
                name = f"{node.name}_sizes"
                model.graph.initializer.append(
                    numpy_helper.from_array(np.array(sizes[0], dtype=np.int64), name)
                )
                node.input.append(name)
        elif node.op_type == "LabelEncoder":
            # Spark's StringIndexer(handleInvalid="keep") gives a missing or unseen value
            # the index after its labels (a one-hot slot of its own when training saw one);
            # onnxmltools leaves ONNX's default, -1 (all zeros).
            keys = [a for a in node.attribute if a.name == "keys_strings"]
            if keys and not any(a.name == "default_int64" for a in node.attribute):
                node.attribute.append(helper.make_attribute("default_int64", len(keys[0].strings)))
        elif node.op_type == "Scaler":
            for attribute in node.attribute:
                if attribute.name == "scale":
                    finite = [v if math.isfinite(v) else 0.0 for v in attribute.floats]
                    del attribute.floats[:]
                    attribute.floats.extend(finite)


class OnnxPipeline:
    """A fitted classification pipeline as an onnxruntime session.

    Args:
        model: The fitted pipeline (its first stage the numeric casts).
        config: The model's ``ModelConfig`` (its numeric features).
        spark: A session (the converter reads the imputer's surrogates through it).
    """

    def __init__(self, model: PipelineModel, *, config: Any, spark: Any) -> None:
        import numpy as np
        import onnxruntime
        from onnxmltools import convert_sparkml
        from onnxmltools.convert.common.data_types import FloatTensorType, StringTensorType

        stages = list(model.stages)
        if not stages or not isinstance(stages[0], SQLTransformer):
            raise NotConvertible("the pipeline does not start with its numeric casts")
        numeric: list[tuple[str, str]] = []  # (feature, the imputer's input)
        categorical: list[str] = []
        texts = [s for s in stages[1:] if isinstance(s, ChatTextScorer)]
        stages = [s for s in stages if not isinstance(s, ChatTextScorer)]
        cast, _ = numeric_stage_cols(config)
        feature_of = dict(zip(cast, config.numeric_cols, strict=True))
        for stage in stages[1:]:
            if isinstance(stage, ImputerModel):
                numeric = [(feature_of[c], c) for c in stage.getInputCols()]
            elif isinstance(stage, StringIndexerModel):
                categorical = list(stage.getInputCols())
        text_inputs = [name for scorer in texts for name in scorer.getOutputCols()]
        initial = (
            [(name, FloatTensorType([None, 1])) for _, name in numeric]
            + [(name, StringTensorType([None, 1])) for name in categorical]
            + [(name, FloatTensorType([None, 1])) for name in text_inputs]
        )
        printed = io.StringIO()  # onnxmltools 1.16 pretty-prints the classifier's attributes
        try:
            with contextlib.redirect_stdout(printed), np.errstate(divide="ignore"):
                converted = convert_sparkml(
                    PipelineModel(stages=stages[1:]), "churn", initial, spark_session=spark
                )
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise NotConvertible(f"onnxmltools: {error}") from error
        finally:
            LOGGER.debug("onnxmltools printed: %s", printed.getvalue())
        _fix_graph(converted)
        try:
            self.session = onnxruntime.InferenceSession(
                converted.SerializeToString(), providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # noqa: BLE001 - onnxruntime's errors share no base class
            raise NotConvertible(
                f"onnxruntime refused the export: {str(error).splitlines()[0][:300]}"
            ) from error
        outputs = [o.name for o in self.session.get_outputs()]
        if "probability" not in outputs:
            raise NotConvertible(f"the ONNX graph has no probability output ({outputs})")
        self.numeric = numeric
        self.categorical = categorical
        self.texts = texts
        self.size = converted.ByteSize()

    def probabilities(self, rows: Sequence[dict[str, Any]]) -> list[float]:
        """P(class 1) of each row (feature name to value; None: missing)."""
        import numpy as np
        import pandas as pd

        feeds: dict[str, Any] = {}
        for feature, name in self.numeric:
            feeds[name] = np.array(
                [[math.nan if row[feature] is None else float(row[feature])] for row in rows],
                dtype=np.float32,
            )
        for name in self.categorical:
            feeds[name] = np.array(
                [[_MISSING if row[name] is None else str(row[name])] for row in rows], dtype=object
            )
        for scorer in self.texts:
            column = scorer.getInputCol()
            scores = score_texts(pd.Series([row[column] for row in rows]), **scorer.options())
            for name, output in zip(scorer.getOutputCols(), OUTPUTS, strict=True):
                feeds[name] = scores[output].to_numpy(dtype=np.float32).reshape(-1, 1)
        probability = self.session.run(["probability"], feeds)[0]
        return [float(p) for p in np.asarray(probability)[:, 1]]

    def verify(self, rows: Sequence[dict[str, Any]], expected: Sequence[float]) -> None:
        """Check the export against Spark's probabilities ``expected`` for ``rows``.

        Raises:
            NotConvertible: When a probability differs by more than :data:`TOLERANCE`.
        """
        if not rows:
            return
        worst = max(abs(a - b) for a, b in zip(self.probabilities(rows), expected, strict=True))
        if worst > TOLERANCE:
            raise NotConvertible(
                f"its probabilities differ from Spark's by up to {worst:.1e} "
                f"on {len(rows)} sample rows (more than {TOLERANCE})"
            )
