"""When a day's values are known: the last second of the day, UTC.

The lake's one rule for it: a mart row of ``feature_date`` D is Feast's ``event_timestamp``
D 23:59:59, a churn-label snapshot of D is taken then, and a daily run for D materializes
and scores as of then.  dbt's macro ``end_of_day`` (``dbt_project/macros/time.sql``) says the
same in SQL (``tests/unit/test_days.py`` checks that the two agree).
"""

from __future__ import annotations

import datetime as dt

#: The instant of a day at which its values are known.
KNOWN_AT = dt.time(23, 59, 59)
#: The same, in seconds after midnight (what the dbt macro adds to the day's start).
KNOWN_AT_SECONDS = KNOWN_AT.hour * 3600 + KNOWN_AT.minute * 60 + KNOWN_AT.second


def end_of_day(day: dt.date) -> dt.datetime:
    """``day`` at :data:`KNOWN_AT`, UTC."""
    return dt.datetime.combine(day, KNOWN_AT, tzinfo=dt.UTC)


def end_of_day_column(column):  # Column -> Column
    """The Spark expression of :func:`end_of_day` for a date column."""
    import pyspark.sql.functions as F

    return F.timestamp_add("SECOND", F.lit(KNOWN_AT_SECONDS), column.cast("timestamp"))
