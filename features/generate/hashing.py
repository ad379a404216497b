"""Seeded randomness from hashes: the same value for an entity whatever the partitioning."""

from __future__ import annotations

import math

import pyspark.sql.functions as F
from pyspark.sql import Column

_MANTISSA = (1 << 53) - 1


def uniform(seed: int, salt: str, *cols: Column) -> Column:
    """Return a column uniform on [0, 1) derived from ``(seed, salt, *cols)``."""
    hashed = F.xxhash64(F.lit(seed), F.lit(salt), *cols)
    return hashed.bitwiseAND(F.lit(_MANTISSA)).cast("double") / float(_MANTISSA + 1)


def normal(seed: int, salt: str, *cols: Column) -> Column:
    """Return a standard normal column (Box-Muller on two hashed uniforms)."""
    u1 = uniform(seed, salt + ".1", *cols)
    u2 = uniform(seed, salt + ".2", *cols)
    return F.sqrt(-2.0 * F.log(1.0 - u1)) * F.cos(2.0 * math.pi * u2)


def pick(options: list[str], u: Column) -> Column:
    """Pick one of ``options`` uniformly with the uniform column ``u``."""
    index = F.least(F.floor(u * len(options)).cast("int"), F.lit(len(options) - 1)) + 1
    return F.element_at(F.array(*[F.lit(option) for option in options]), index)


def weighted(options: list[tuple[str, float]], u: Column) -> Column:
    """Pick one of ``options`` (value, weight) with the uniform column ``u``."""
    total = sum(weight for _, weight in options)
    expr, cumulative = None, 0.0
    for value, weight in options[:-1]:
        cumulative += weight / total
        expr = (
            F.when(u < cumulative, F.lit(value))
            if expr is None
            else expr.when(u < cumulative, F.lit(value))
        )
    last = F.lit(options[-1][0])
    return last if expr is None else expr.otherwise(last)


def dirt_kind(u: Column, rates: list[tuple[str, float]]) -> Column:
    """Assign at most one dirt kind per record: disjoint intervals of the uniform ``u``."""
    expr, cumulative = None, 0.0
    for kind, rate in rates:
        if rate <= 0:
            continue
        cumulative += rate
        expr = (
            F.when(u < cumulative, F.lit(kind))
            if expr is None
            else expr.when(u < cumulative, F.lit(kind))
        )
    return F.lit(None).cast("string") if expr is None else expr
