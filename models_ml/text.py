"""A pipeline stage that reads support-chat text: :class:`ChatTextScorer`, a pandas UDF.

The lexicon counts dbt computes (``features.customer_support``) see words, not what they
are about: "How to cancel the roaming add-on" mentions cancelling as much as "I want to
cancel and switch to a competitor" does.  This stage reads the latest chats' summaries
(``recent_chat_text``: one per line, latest first, as the mart serves them through Feast)
and scores each row in Python, vectorized over Arrow batches (``pandas_udf``), so it runs
where the rows are, on the executors, like any MLlib stage:

- ``<input>__leave_intent``: the chats that say the customer means to leave (a leaving word
  such as cancel, terminate, switch or port whose object is not an add-on or an option),
  each weighted by ``decay`` to the power of its rank (the latest counts 1);
- ``<input>__negative``: the chats whose words read negative once negation is read
  ("not happy" is negative, "no problem" is not), weighted the same way;
- ``<input>__chats``: the chats read (0 for a null text).

It is a plain ``Transformer`` with ``DefaultParamsWritable``/``DefaultParamsReadable``: it
is saved with the ``PipelineModel`` its params (word lists included) and loaded back by
``PipelineModel.load`` and MLflow's Spark flavor in a fresh process (``models_ml`` must be
importable there).  :func:`score_texts` is the same computation on a pandas Series: the
ONNX runtime (:mod:`models_ml.onnx_runtime`) calls it for online scores, so both paths
give the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyspark.sql.functions as F
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame

#: What each output column ends with, in order.
OUTPUTS: tuple[str, ...] = ("leave_intent", "negative", "chats")

LEAVE_WORDS = (
    "cancel",
    "cancelling",
    "terminate",
    "leave",
    "leaving",
    "switch",
    "switching",
    "port",
    "quit",
    "competitor",
    "rival",
)
#: A leaving word followed (within a few words) by one of these is about a product, not
#: the contract: "cancel the roaming add-on".
PRODUCT_WORDS = ("add", "addon", "option", "options", "bundle", "feature", "subscription")
NEGATIVE_WORDS = (
    "angry",
    "annoyed",
    "disappointed",
    "dropped",
    "error",
    "frustrated",
    "furious",
    "poor",
    "slow",
    "terrible",
    "useless",
    "worst",
)
POSITIVE_WORDS = ("fixed", "great", "happy", "quick", "resolved", "satisfied", "thanks")
NEGATIONS = ("not", "no", "never", "isn't", "wasn't", "don't", "didn't", "hardly")

_TOKEN = re.compile(r"[a-z']+")
_PRODUCT_SPAN = 4
_NEGATION_SPAN = 3


def output_cols(input_col: str) -> list[str]:
    """The columns a scorer of ``input_col`` adds."""
    return [f"{input_col}__{name}" for name in OUTPUTS]


def _chat_scores(
    text: str,
    *,
    leave: frozenset[str],
    product: frozenset[str],
    negative: frozenset[str],
    positive: frozenset[str],
    negations: frozenset[str],
) -> tuple[bool, bool]:
    """Whether one chat says the customer means to leave, and whether it reads negative."""
    tokens = _TOKEN.findall(text.lower())
    intent = False
    tone = 0
    for i, token in enumerate(tokens):
        if token in leave and not product.intersection(tokens[i + 1 : i + 1 + _PRODUCT_SPAN]):
            intent = True
        polarity = -1 if token in negative else 1 if token in positive else 0
        if polarity and negations.intersection(tokens[max(0, i - _NEGATION_SPAN) : i]):
            polarity = -polarity
        tone += polarity
    return intent, tone < 0


def score_texts(
    texts: pd.Series,
    *,
    decay: float = 0.7,
    leave_words: Sequence[str] = LEAVE_WORDS,
    product_words: Sequence[str] = PRODUCT_WORDS,
    negative_words: Sequence[str] = NEGATIVE_WORDS,
    positive_words: Sequence[str] = POSITIVE_WORDS,
    negations: Sequence[str] = NEGATIONS,
) -> pd.DataFrame:
    """Score chat texts (one chat per line, latest first); see the module's docstring.

    Returns:
        One row per text, columns :data:`OUTPUTS`, as doubles (0 for a null text).
    """
    words = {
        "leave": frozenset(leave_words),
        "product": frozenset(product_words),
        "negative": frozenset(negative_words),
        "positive": frozenset(positive_words),
        "negations": frozenset(negations),
    }
    rows: list[tuple[float, float, float]] = []
    for text in texts:
        intent = negative = 0.0
        chats = 0
        if isinstance(text, str):
            for rank, chat in enumerate(line for line in text.split("\n") if line.strip()):
                says_leave, reads_negative = _chat_scores(chat, **words)
                weight = decay**rank
                intent += weight * says_leave
                negative += weight * reads_negative
                chats += 1
        rows.append((intent, negative, float(chats)))
    return pd.DataFrame(rows, columns=list(OUTPUTS), dtype="float64", index=texts.index)


class ChatTextScorer(Transformer, HasInputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Score the latest support chats' text in a pandas UDF (see the module's docstring).

    Args:
        inputCol: The text column (one chat per line, latest first).
        decay: Weight of each older chat relative to the next newer one, in (0, 1].
        leaveWords, productWords, negativeWords, positiveWords, negations: Word lists.
    """

    decay: Param[float] = Param(
        Params._dummy(),
        "decay",
        "weight of each older chat relative to the next newer one, in (0, 1]",
        typeConverter=TypeConverters.toFloat,
    )
    leaveWords: Param[list[str]] = Param(
        Params._dummy(), "leaveWords", "words that say leaving", TypeConverters.toListString
    )
    productWords: Param[list[str]] = Param(
        Params._dummy(),
        "productWords",
        "words after a leaving word that make it about a product, not the contract",
        TypeConverters.toListString,
    )
    negativeWords: Param[list[str]] = Param(
        Params._dummy(), "negativeWords", "words that read negative", TypeConverters.toListString
    )
    positiveWords: Param[list[str]] = Param(
        Params._dummy(), "positiveWords", "words that read positive", TypeConverters.toListString
    )
    negations: Param[list[str]] = Param(
        Params._dummy(),
        "negations",
        "words that turn the tone of the next few words",
        TypeConverters.toListString,
    )

    _input_kwargs: dict[str, Any]  # set by @keyword_only

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str | None = None,
        decay: float = 0.7,
        leaveWords: list[str] | None = None,
        productWords: list[str] | None = None,
        negativeWords: list[str] | None = None,
        positiveWords: list[str] | None = None,
        negations: list[str] | None = None,
    ) -> None:
        super().__init__()
        self._setDefault(
            decay=0.7,
            leaveWords=list(LEAVE_WORDS),
            productWords=list(PRODUCT_WORDS),
            negativeWords=list(NEGATIVE_WORDS),
            positiveWords=list(POSITIVE_WORDS),
            negations=list(NEGATIONS),
        )
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    def getOutputCols(self) -> list[str]:
        """The columns this stage adds (:func:`output_cols` of the input column)."""
        return output_cols(self.getInputCol())

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`score_texts` this stage's params give."""
        return {
            "decay": self.getOrDefault(self.decay),
            "leave_words": self.getOrDefault(self.leaveWords),
            "product_words": self.getOrDefault(self.productWords),
            "negative_words": self.getOrDefault(self.negativeWords),
            "positive_words": self.getOrDefault(self.positiveWords),
            "negations": self.getOrDefault(self.negations),
        }

    def _transform(self, dataset: DataFrame) -> DataFrame:
        decay = self.getOrDefault(self.decay)
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"ChatTextScorer: decay {decay} is not in (0, 1]")
        options = self.options()
        schema = ", ".join(f"{name} double" for name in OUTPUTS)

        @F.pandas_udf(schema)  # type: ignore[call-overload]
        def scores(texts: pd.Series) -> pd.DataFrame:
            return score_texts(texts, **options)

        column = self.getInputCol()
        packed = f"{column}__scores"
        # One call of the UDF per row: the struct is computed once, then unpacked.
        scored = dataset.withColumn(packed, scores(F.col(f"`{column}`").cast("string")))
        return scored.withColumns(
            {
                out: F.col(f"`{packed}`")[name]
                for out, name in zip(self.getOutputCols(), OUTPUTS, strict=True)
            }
        ).drop(packed)
