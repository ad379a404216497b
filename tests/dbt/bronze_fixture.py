"""A tiny, hand-written bronze layer for dbt tests (three customers, ten days)."""

from __future__ import annotations

import datetime as dt

from features.schemas import SOURCES

BRONZE_SCHEMA = "bronze_dbt_fixture"
D = dt.date
T = dt.datetime


def _ts(day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return T(2026, 1, day, hour, minute)


def _lineage(batch_day: int) -> tuple:
    return (f"landing/test/2026-01-{batch_day:02d}", D(2026, 1, batch_day), _ts(batch_day, 23, 0))


def batch_one() -> dict[str, list[tuple]]:
    """Batches of 2026-01-01 .. 2026-01-08."""
    usage = []
    for day in range(1, 9):
        for customer in (1, 2, 3):
            usage.append(
                (
                    f"c{customer}-{day}",
                    customer,
                    _ts(day, 9),
                    "call",
                    60 * customer * day,
                    None,
                    day % 4 == 0,
                    False,
                    f"cell{day % 3}",
                )
                + _lineage(day)
            )
            usage.append(
                (
                    f"s{customer}-{day}",
                    customer,
                    _ts(day, 10),
                    "sms",
                    None,
                    None,
                    False,
                    customer == 3,
                    f"cell{customer}",
                )
                + _lineage(day)
            )
    # customer 2 churns on day 6: no usage after it; customer 3 signs up on day 3.
    usage = [row for row in usage if not (row[1] == 2 and row[2].day > 6)]
    usage = [row for row in usage if not (row[1] == 3 and row[2].day < 3)]
    # an exact duplicate landed twice must count once.
    usage.append(usage[0][:9] + _lineage(2))
    return {
        "customers": [
            (1, D(2025, 6, 1), "north", "consumer", 1980, _ts(1, 0)) + _lineage(1),
            (2, D(2025, 12, 15), "south", "consumer", 1995, _ts(1, 0)) + _lineage(1),
            (3, D(2026, 1, 3), "north", "business", 1970, _ts(3, 0)) + _lineage(3),
        ],
        "plans": [
            ("basic", "Basic", 20.0, 5, D(2025, 1, 1), _ts(1, 0)) + _lineage(1),
            ("basic", "Basic", 25.0, 5, D(2026, 1, 5), _ts(1, 0)) + _lineage(1),
            ("max", "Max", 50.0, 50, D(2025, 1, 1), _ts(1, 0)) + _lineage(1),
        ],
        "subscriptions": [
            # A subscription is sent when it opens and again when it closes; features
            # read the version known on their date.
            (10, 1, "basic", "month-to-month", D(2025, 6, 1), None, _ts(1, 0)) + _lineage(1),
            (20, 2, "basic", "month-to-month", D(2025, 12, 15), None, _ts(1, 0)) + _lineage(1),
            (10, 1, "basic", "month-to-month", D(2025, 6, 1), D(2026, 1, 4), _ts(4, 0))
            + _lineage(4),
            (11, 1, "max", "one-year", D(2026, 1, 5), None, _ts(5, 0)) + _lineage(5),
            (20, 2, "basic", "month-to-month", D(2025, 12, 15), D(2026, 1, 6), _ts(6, 0))
            + _lineage(6),
            (30, 3, "max", "two-year", D(2026, 1, 3), None, _ts(3, 0)) + _lineage(3),
        ],
        "invoices": [
            (100, 1, D(2026, 1, 1), D(2026, 1, 1), D(2026, 1, 31), 20.0, D(2026, 1, 15), _ts(1, 6))
            + _lineage(1),
            (200, 2, D(2026, 1, 1), D(2026, 1, 1), D(2026, 1, 31), 20.0, D(2026, 1, 15), _ts(1, 6))
            + _lineage(1),
        ],
        "payments": [
            (1000, 100, 1, 20.0, "late", _ts(4, 8)) + _lineage(4),
            (2000, 200, 2, 20.0, "failed", _ts(3, 8)) + _lineage(3),
        ],
        "usage": usage,
        "chats": [
            (
                "h1",
                2,
                _ts(4, 15),
                "chat",
                "Angry about dropped calls, want to cancel and switch to a competitor",
                ["network"],
                ("a1", "care", 12),
                ("open", 1, True),
            )
            + _lineage(4),
            (
                "h2",
                1,
                _ts(5, 15),
                "phone",
                "Thanks, billing question resolved quickly",
                [],
                ("a2", "billing", 3),
                ("resolved", 5, False),
            )
            + _lineage(5),
        ],
        "churn": [(2, _ts(6, 18), "competitor") + _lineage(6)],
    }


def batch_two() -> dict[str, list[tuple]]:
    """Batches of 2026-01-09 and 2026-01-10; a call and a chat of 2026-01-03 land late, on
    2026-01-10, with a payment of 2026-01-04 sent again, moved to 2026-01-08."""
    usage = []
    for day in (9, 10):
        for customer in (1, 3):
            usage.append(
                (
                    f"c{customer}-{day}",
                    customer,
                    _ts(day, 9),
                    "call",
                    60 * customer * day,
                    None,
                    False,
                    False,
                    "cell9",
                )
                + _lineage(day)
            )
    usage.append(("late-1", 1, _ts(3, 20), "call", 600, None, True, False, "cell7") + _lineage(10))
    chats = [
        (
            "h3",
            3,
            _ts(9, 15),
            "chat",
            "The price is too high, thinking of leaving",
            [],
            ("a1", "care", 8),
            ("open", 2, False),
        )
        + _lineage(9),
        (
            "h-late",
            1,
            _ts(3, 16),
            "email",
            "Asked to cancel the extra line",
            [],
            ("a3", "care", 5),
            ("resolved", 4, False),
        )
        + _lineage(10),
    ]
    # Payment 1000 (late, 2026-01-04) sent again: on time, on 2026-01-08.
    payments = [(1000, 100, 1, 20.0, "on_time", _ts(8, 9)) + _lineage(10)]
    return {"usage": usage, "chats": chats, "payments": payments}


def write_bronze(spark, schema: str, batches: dict[str, list[tuple]], *, mode: str) -> None:
    """Write rows into ``<schema>.<table>`` with the bronze contract's columns."""
    spark.sql(f"create database if not exists {schema}")
    for name, source in SOURCES.items():
        rows = batches.get(name)
        if rows is None and mode == "append":
            continue
        frame = spark.createDataFrame(rows or [], schema=source.bronze_ddl)
        frame.write.format("delta").mode(mode).saveAsTable(f"{schema}.{source.table}")
