"""One small generated dataset shared by the generator and ingestion tests (made once)."""

from __future__ import annotations

import datetime as dt

from features.generate import DirtRates, GenerationSummary, GeneratorConfig, generate

TINY = GeneratorConfig(
    customers=50,
    days=10,
    start=dt.date(2026, 1, 1),
    seed=11,
    dirt=DirtRates(
        malformed=0.1,
        unparseable_timestamp=0.1,
        negative_duration=0.05,
        unknown_customer=0.05,
        missing_key=0.05,
        duplicate=0.05,
        late=0.05,
        non_finite=0.05,
        wrong_type=0.05,
        out_of_range=0.02,
        invalid_encoding=0.2,
        # file-level dirt has tests of its own (test_ingest_policy.py); tests here
        # read whole landing folders as the generator's data
        stray_file=0.0,
        corrupt_file=0.0,
    ),
    partitions=3,
)
_MADE: dict[GeneratorConfig, GenerationSummary] = {}


def tiny_lake(spark) -> GenerationSummary:
    """Generate :data:`TINY` into the session's lakehouse once; return its summary."""
    if TINY not in _MADE:
        _MADE[TINY] = generate(spark, TINY)
    return _MADE[TINY]
