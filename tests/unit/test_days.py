"""The lake's end-of-day rule: Python's and dbt's macro's agree (no JVM)."""

from __future__ import annotations

import datetime as dt
import re

from features import days
from features.dbt_contracts import DBT_PROJECT


def test_python_and_the_dbt_macro_say_the_same_second() -> None:
    assert days.end_of_day(dt.date(2026, 3, 1)) == dt.datetime(
        2026, 3, 1, 23, 59, 59, tzinfo=dt.UTC
    )
    macro = (DBT_PROJECT / "macros" / "time.sql").read_text()
    body = re.search(r"macro end_of_day\(date_expr\) -%}(.*?){%- endmacro", macro, re.S)
    assert body is not None
    assert re.fullmatch(
        r"\s*timestampadd\(SECOND, (\d+), cast\(\{\{ date_expr \}\} as "
        r"timestamp\)\)\s*",
        body.group(1),
    ).group(1) == str(days.KNOWN_AT_SECONDS)
