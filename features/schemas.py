"""The contract between landing files, bronze tables and dbt's sources.

Each source has a landing schema (what upstream systems send: column names and the
types they should parse as) and lands in ``bronze.<table>`` with those columns plus
the lineage columns below.  dbt's ``sources`` and the generator follow these names.
Rows that cannot be used go to ``quarantine.<table>`` with :data:`QUARANTINE_DDL`.
"""

from __future__ import annotations

import dataclasses

LINEAGE_DDL = "_source_file string, _batch_date date, _ingested_at timestamp"

QUARANTINE_DDL = (
    "source_file string, line_number bigint, reason string, raw_record string, "
    "_batch_date date, _quarantined_at timestamp"
)
# Files that could not be read at all (quarantined whole; the file stays where it landed).
QUARANTINED_FILES_TABLE = "quarantine.landing_files"
QUARANTINED_FILES_DDL = (
    "source string, source_file string, size bigint, reason string, "
    "_batch_date date, _quarantined_at timestamp"
)
# Landing column names starting with this are the lake's own (lineage and ingestion's
# working columns): a feed that sends one fails its batch.
RESERVED_PREFIX = "_"
# An event's time must fall in [EARLIEST_EVENT, end of the day after its batch date]:
# 1900 or 2099 is a broken clock, not an event.
EARLIEST_EVENT = "2000-01-01"
EVENT_DAYS_AHEAD = 1
# File names each landing format may have (anything else in a landing folder is not data:
# ignored and logged); Spark decompresses the compressed ones by their extension.
DATA_SUFFIXES: dict[str, tuple[str, ...]] = {
    "csv": (".csv", ".csv.gz", ".csv.bz2"),
    "json": (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz"),
    "parquet": (".parquet",),
}


@dataclasses.dataclass(frozen=True)
class Source:
    """One upstream feed.

    Attributes:
        name: Feed name; also the landing folder ``landing/<name>/<batch_date>/``.
        table: Bronze table (and quarantine table) name.
        file_format: Landing format: ``csv``, ``parquet`` or ``json`` (JSON lines).
        ddl: Columns and types of the landing records, in order.
        key: Columns that identify a record (exact duplicates are dropped on them).
        event_time: Column giving the event's time, checked against the batch date.
        partition_by: Bronze partition columns.
        optional: Columns that JSON records may leave out (nested, optional fields).
        ranges: ``(column, low, high)``: a value outside ``[low, high]`` (either may be None)
            sends its record to quarantine (``out_of_range: <column>``).
        allowed: ``(column, values)``: a value (trimmed, lower-cased, as staging reads it)
            not in ``values`` sends its record to quarantine (``not_allowed: <column>``).
        daily: Delivered every day: a batch date without this source's files is waiting
            for its delivery, not done.
    """

    name: str
    table: str
    file_format: str
    ddl: str
    key: tuple[str, ...]
    event_time: str | None = None
    partition_by: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    ranges: tuple[tuple[str, float | None, float | None], ...] = ()
    allowed: tuple[tuple[str, tuple[str, ...]], ...] = ()
    daily: bool = False

    @property
    def columns(self) -> list[str]:
        """Column names of the landing records, in order."""
        return [part.strip().split(" ", 1)[0] for part in _split_ddl(self.ddl)]

    @property
    def bronze_ddl(self) -> str:
        """Columns of the bronze table: the landing columns plus lineage."""
        return f"{self.ddl}, {LINEAGE_DDL}"


def _split_ddl(ddl: str) -> list[str]:
    """Split a DDL column list on top-level commas (not those inside struct<...>)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(ddl):
        if char in "<(":
            depth += 1
        elif char in ">)":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(ddl[start:i])
            start = i + 1
    parts.append(ddl[start:])
    return [p for p in (part.strip() for part in parts) if p]


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            name="customers",
            table="customers",
            file_format="csv",
            ddl=(
                "customer_id bigint, signup_date date, region string, segment string, "
                "birth_year int, updated_at timestamp"
            ),
            key=("customer_id", "updated_at"),
            event_time="updated_at",
            ranges=(("birth_year", 1900, 2030),),
        ),
        Source(
            name="plans",
            table="plans",
            file_format="csv",
            ddl=(
                "plan_id string, plan_name string, monthly_price double, data_gb int, "
                "effective_from date, updated_at timestamp"
            ),
            key=("plan_id", "effective_from"),
            event_time="updated_at",
            ranges=(("monthly_price", 0, 10_000), ("data_gb", 0, 1_000_000)),
        ),
        Source(
            name="subscriptions",
            table="subscriptions",
            file_format="csv",
            ddl=(
                "subscription_id bigint, customer_id bigint, plan_id string, "
                "contract_type string, start_date date, end_date date, updated_at timestamp"
            ),
            key=("subscription_id", "updated_at"),
            event_time="updated_at",
            allowed=(("contract_type", ("month-to-month", "one-year", "two-year")),),
        ),
        Source(
            name="invoices",
            table="invoices",
            file_format="csv",
            ddl=(
                "invoice_id bigint, customer_id bigint, invoice_date date, period_start date, "
                "period_end date, amount double, due_date date, issued_at timestamp"
            ),
            key=("invoice_id",),
            event_time="issued_at",
            ranges=(("amount", -1_000_000, 1_000_000),),
        ),
        Source(
            name="payments",
            table="payments",
            file_format="csv",
            ddl=(
                "payment_id bigint, invoice_id bigint, customer_id bigint, amount double, "
                "status string, paid_at timestamp"
            ),
            key=("payment_id",),
            event_time="paid_at",
            ranges=(("amount", -1_000_000, 1_000_000),),
            allowed=(("status", ("on_time", "late", "failed")),),
        ),
        Source(
            name="usage",
            table="usage_events",
            file_format="parquet",
            ddl=(
                "event_id string, customer_id bigint, event_at timestamp, event_type string, "
                "duration_s int, bytes bigint, is_dropped boolean, is_roaming boolean, "
                "cell_id string"
            ),
            key=("event_id",),
            event_time="event_at",
            partition_by=("_batch_date",),
            # A call or session longer than a day, or more than a terabyte, is a meter fault.
            ranges=(("duration_s", None, 86_400), ("bytes", 0, 10**12)),
            allowed=(("event_type", ("call", "sms", "data")),),
            daily=True,
        ),
        Source(
            name="chats",
            table="support_chats",
            file_format="json",
            ddl=(
                "chat_id string, customer_id bigint, chat_at timestamp, channel string, "
                "summary string, tags array<string>, "
                "agent struct<agent_id:string,team:string,tenure_months:int>, "
                "resolution struct<status:string,csat:int,is_escalated:boolean>"
            ),
            key=("chat_id",),
            event_time="chat_at",
            optional=("tags", "agent", "resolution"),
        ),
        Source(
            name="churn",
            table="churn_events",
            file_format="csv",
            ddl="customer_id bigint, churned_at timestamp, reason string",
            key=("customer_id",),
            event_time="churned_at",
        ),
    )
}
