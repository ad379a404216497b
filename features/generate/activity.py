"""Usage events and support chats: exploded from a customer x day grid, no Python loops."""

from __future__ import annotations

import pyspark.sql.functions as F
from pyspark.sql import Column, DataFrame, SparkSession

from features.generate.config import GeneratorConfig
from features.generate.customers import day_date, day_time, in_episode
from features.generate.hashing import dirt_kind, pick, uniform, weighted

UNKNOWN_CUSTOMER_OFFSET = 1_000_000_000
LATE_MAX_DAYS = 5

_GRID_COLUMNS = [
    "customer_id",
    "active_day",
    "churn_day",
    "onset_day",
    "episode_end",
    "usage_mult",
    "drop_base",
    "roam_p",
    "home_cell",
    "late_p",
    "region",
]


def data_factor(cfg: GeneratorConfig, day: Column) -> Column:
    """Multiplier of a data session's bytes: 1, or the injected ``data_drop`` changes'."""
    factor = F.lit(1.0)
    for change in cfg.changes:
        if change.kind != "data_drop":
            continue
        hit = day >= change.day
        if change.target != "all":
            hit = hit & (F.col("region") == change.target)
        factor = factor * F.when(hit, F.lit(change.factor)).otherwise(F.lit(1.0))
    return factor


def customer_days(
    spark: SparkSession, cfg: GeneratorConfig, state: DataFrame, *, partitions: int | None = None
) -> DataFrame:
    """Active customer-days, day-major so that each task covers a few consecutive days.

    Adds ``day``, ``is_episode`` and ``episode_progress`` (0 at onset, towards 1 at its end).
    """
    n = cfg.customers
    grid = spark.range(0, n * cfg.days, numPartitions=partitions or cfg.usage_partitions())
    grid = grid.select(
        F.expr(f"id div {n}").cast("int").alias("day"), (F.col("id") % n + 1).alias("customer_id")
    )
    frame = grid.join(F.broadcast(state.select(*_GRID_COLUMNS)), "customer_id")
    day = F.col("day")
    frame = frame.where(
        (day >= F.col("active_day")) & (F.col("churn_day").isNull() | (day < F.col("churn_day")))
    )
    episode = in_episode(day)
    return frame.select(
        "*",
        episode.alias("is_episode"),
        F.when(episode, (day - F.col("onset_day")) / (F.col("episode_end") - F.col("onset_day")))
        .otherwise(0.0)
        .alias("episode_progress"),
    )


def landing_day(cfg: GeneratorConfig, day: Column, is_late: Column, u: Column) -> Column:
    """The day a record lands: its own day, or 1-5 days later when it arrives late."""
    shifted = day + 1 + F.floor(u * LATE_MAX_DAYS).cast("int")
    return F.when(is_late, F.least(shifted, F.lit(cfg.days - 1))).otherwise(day)


def usage_events(cfg: GeneratorConfig, grid: DataFrame) -> DataFrame:
    """One row per call, SMS or data session, with dirt; ``day`` is the landing day."""
    seed, dirt = cfg.seed, cfg.dirt
    cid, day = F.col("customer_id"), F.col("day")
    mean = cfg.events_per_day * F.col("usage_mult") * (1.0 - 0.75 * F.col("episode_progress"))
    count = F.floor(
        mean * (0.5 + uniform(seed, "n1", cid, day)) + uniform(seed, "n2", cid, day)
    ).cast("int")
    frame = grid.select("*", count.alias("n")).where(F.col("n") > 0)
    frame = frame.select("*", F.explode(F.sequence(F.lit(0), F.col("n") - 1)).alias("seq"))
    seq = F.col("seq")

    def u(salt: str) -> Column:
        return uniform(seed, salt, cid, day, seq)

    kind = weighted([("call", 0.3), ("sms", 0.3), ("data", 0.4)], u("type"))
    frame = frame.select(
        "*",
        kind.alias("event_type"),
        dirt_kind(
            u("dirt"),
            [
                ("negative_duration", dirt.negative_duration),
                ("unknown_customer", dirt.unknown_customer),
                ("missing_key", dirt.missing_key),
                ("duplicate", dirt.duplicate),
                ("late", dirt.late),
                ("out_of_range", dirt.out_of_range),
            ],
        ).alias("dirt"),
    )
    etype, kind_of = F.col("event_type"), F.col("dirt")
    duration = F.when(etype == "call", 1 + F.floor(-180.0 * F.log(1.0 - u("dur"))))
    duration = duration.when(etype == "data", 30 + F.floor(-600.0 * F.log(1.0 - u("dur"))))
    duration = (
        F.when(kind_of == "negative_duration", -F.coalesce(duration, F.lit(0)) - 1)
        .when(kind_of == "out_of_range", F.lit(2**31 - 1))
        .otherwise(duration)
        .cast("int")
    )
    drop_p = F.col("drop_base") * (1.0 + 2.5 * F.col("is_episode").cast("double"))
    cell = F.when(u("away") < 0.8, F.col("home_cell")).otherwise(
        F.format_string("cell-%04d", F.floor(u("cell") * 500).cast("int"))
    )
    events = frame.select(
        F.when(kind_of == "missing_key", F.lit(None).cast("string"))
        .otherwise(F.format_string("e%d-%d-%d", cid, day, seq))
        .alias("event_id"),
        F.when(kind_of == "unknown_customer", cid + UNKNOWN_CUSTOMER_OFFSET)
        .otherwise(cid)
        .alias("customer_id"),
        day_time(cfg, day, F.floor(u("time") * 86400)).alias("event_at"),
        etype.alias("event_type"),
        duration.alias("duration_s"),
        F.when(
            etype == "data",
            F.floor(-20e6 * F.log(1.0 - u("bytes")) * data_factor(cfg, day)).cast("long"),
        ).alias("bytes"),
        F.when(etype == "call", u("drop") < drop_p).otherwise(F.lit(False)).alias("is_dropped"),
        (u("roam") < F.col("roam_p")).alias("is_roaming"),
        cell.alias("cell_id"),
        landing_day(cfg, day, kind_of == "late", u("late")).alias("day"),
        kind_of.alias("dirt"),
        F.when(kind_of == "duplicate", 2).otherwise(1).alias("copies"),
    )
    return events.select("*", F.explode(F.sequence(F.lit(1), F.col("copies"))).alias("copy")).drop(
        "copies"
    )


_SUMMARIES = {
    "angry": [
        "Furious about dropped calls again, I want to cancel and switch to a competitor",
        "Terrible service, the rival offer is cheaper, thinking of leaving",
        "Angry customer says network is useless and asks how to terminate the contract",
        "Customer frustrated with price rise, wants to port number to a competitor",
    ],
    "complaint": [
        "Customer reports dropped calls and slow data at home",
        "Question about a charge on the last bill, customer annoyed",
        "Complaint about poor coverage in the area",
        "Customer disappointed with billing error, asked for a refund",
    ],
    "question": [
        "Asked how to set up voicemail, resolved quickly",
        "Question about roaming options before travel",
        "Customer wants to change billing address, done",
        "How to cancel the roaming add-on, explained",
    ],
    "praise": [
        "Thanks for the quick help, very happy with the service",
        "Great support, issue fixed, customer satisfied",
    ],
}
_TAGS = {
    "angry": ["cancel", "competitor"],
    "complaint": ["network"],
    "question": ["how-to"],
    "praise": ["feedback"],
}


_LATIN1_MARK = "<<caf-latin1>>"


def _template(category: Column, u: Column) -> Column:
    """Pick a summary of the chat's category."""
    expr = None
    for name, texts in _SUMMARIES.items():
        expr = (
            F.when(category == name, pick(texts, u))
            if expr is None
            else expr.when(category == name, pick(texts, u))
        )
    assert expr is not None, "no categories"
    return expr


def _tags(category: Column) -> Column:
    expr = None
    for name, tags in _TAGS.items():
        value = F.array(*[F.lit(tag) for tag in tags])
        expr = (
            F.when(category == name, value) if expr is None else expr.when(category == name, value)
        )
    assert expr is not None, "no categories"
    return expr


def support_chats(cfg: GeneratorConfig, grid: DataFrame) -> DataFrame:
    """Support chats as JSON lines (``value``), with dirt; ``day`` is the landing day."""
    seed, dirt = cfg.seed, cfg.dirt
    cid, day = F.col("customer_id"), F.col("day")

    def u(salt: str) -> Column:
        return uniform(seed, salt, cid, day)

    episode = F.col("is_episode")
    p_chat = (
        0.01 + 0.12 * episode.cast("double") + 0.1 * F.col("drop_base") + 0.05 * F.col("late_p")
    )
    frame = grid.where(u("chat") < p_chat)
    category = F.when(episode & (u("angry") < 0.7), "angry").otherwise(
        weighted([("question", 0.55), ("complaint", 0.3), ("praise", 0.15)], u("category"))
    )
    frame = frame.select(
        "*",
        category.alias("category"),
        dirt_kind(
            u("dirt"),
            [
                ("malformed", dirt.malformed),
                ("unparseable_timestamp", dirt.unparseable_timestamp),
                ("unknown_customer", dirt.unknown_customer),
                ("missing_key", dirt.missing_key),
                ("duplicate", dirt.duplicate),
                ("late", dirt.late),
                ("invalid_encoding", dirt.invalid_encoding),
            ],
        ).alias("dirt"),
    )
    cat, kind = F.col("category"), F.col("dirt")
    chat_at = F.date_format(
        day_time(cfg, day, 8 * 3600 + F.floor(u("time") * 12 * 3600)), "yyyy-MM-dd'T'HH:mm:ss'Z'"
    )
    csat = (
        F.when(cat == "angry", 1 + F.floor(u("csat") * 2))
        .when(cat == "complaint", 2 + F.floor(u("csat") * 3))
        .otherwise(3 + F.floor(u("csat") * 3))
        .cast("int")
    )
    record = F.struct(
        F.when(kind == "missing_key", F.lit(None).cast("string"))
        .otherwise(F.format_string("h%d-%d", cid, day))
        .alias("chat_id"),
        F.when(kind == "unknown_customer", cid + UNKNOWN_CUSTOMER_OFFSET)
        .otherwise(cid)
        .alias("customer_id"),
        F.when(kind == "unparseable_timestamp", F.lit("31/02/2026 25:61"))
        .otherwise(chat_at)
        .alias("chat_at"),
        pick(["chat", "phone", "email", "app"], u("channel")).alias("channel"),
        F.when(
            kind == "invalid_encoding",
            F.concat(_template(cat, u("summary")), F.lit(f" {_LATIN1_MARK}")),
        )
        .otherwise(_template(cat, u("summary")))
        .alias("summary"),
        F.when(u("has_tags") < 0.8, _tags(cat)).alias("tags"),
        F.when(
            u("has_agent") < 0.9,
            F.struct(
                F.format_string("a%03d", F.floor(u("agent") * 40).cast("int")).alias("agent_id"),
                pick(["care", "billing", "network", "retention"], u("team")).alias("team"),
                F.floor(u("tenure") * 60).cast("int").alias("tenure_months"),
            ),
        ).alias("agent"),
        F.when(
            u("has_resolution") < 0.85,
            F.struct(
                F.when(cat == "angry", pick(["open", "escalated"], u("status")))
                .otherwise(pick(["resolved", "resolved", "open"], u("status")))
                .alias("status"),
                F.when(u("has_csat") < 0.7, csat).alias("csat"),
                ((cat == "angry") & (u("escalated") < 0.5)).alias("is_escalated"),
            ),
        ).alias("resolution"),
    )
    line = F.to_json(record)
    line = F.when(kind == "malformed", F.substring(line, 1, 40)).otherwise(line)
    # Spark strings are bytes: a Latin-1 "é" (0xE9) put in place of the mark stays invalid
    # UTF-8 in the file, as a feed that mixes encodings sends it.
    line = F.when(
        kind == "invalid_encoding",
        F.replace(line, F.lit(_LATIN1_MARK), F.unbase64(F.lit("6Q==")).cast("string")),
    ).otherwise(line)
    chats = frame.select(
        line.alias("value"),
        landing_day(cfg, day, kind == "late", u("late")).alias("day"),
        (cid * 100000 + F.col("day")).alias("ord"),
        F.lit(1).alias("is_record"),
        kind.alias("dirt"),
        F.when(kind == "duplicate", 2).otherwise(1).alias("copies"),
    )
    return chats.select("*", F.explode(F.sequence(F.lit(1), F.col("copies"))).alias("copy")).drop(
        "copies"
    )


def usage_day_dates(cfg: GeneratorConfig, frame: DataFrame) -> DataFrame:
    """Replace the landing day index by its date string ``d``."""
    return frame.withColumn("d", F.date_format(day_date(cfg, F.col("day")), "yyyy-MM-dd"))
