"""Configuration of the synthetic telco generator."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any


@dataclasses.dataclass(frozen=True)
class DirtRates:
    """Share of records of each kind of dirt (each record gets at most one kind).

    Attributes:
        malformed: Lines that cannot be parsed (truncated JSON, wrong CSV field count).
        unparseable_timestamp: Records whose event time is not a timestamp.
        negative_duration: Usage events with a negative duration.
        unknown_customer: Records naming a customer that does not exist.
        missing_key: Records whose key is null.
        duplicate: Records sent twice, byte for byte.
        late: Events landing 1-5 days after the day they happened (usable, not dirt).
        non_finite: Billing amounts sent as ``NaN``.
        wrong_type: Billing records whose customer id is sent as a decimal (``42.5``).
        out_of_range: Usage events with a duration of 2^31-1 seconds (a meter fault).
        invalid_encoding: Support chats whose summary holds a byte that is not UTF-8
            (Latin-1 text pasted into a UTF-8 feed).
        quoted_newline: Churn reasons with an agent's note on a second line, in a quoted
            CSV field (RFC 4180; usable, not dirt).
        stray_file: Landing folders (source and day) that also hold a ``notes.txt`` (not
            data: ingestion ignores it).
        corrupt_file: Usage days that also hold a truncated copy of the day's file (a
            partial re-send that cannot be read: quarantined whole; its records are in the
            day's whole file, so nothing is lost).
    """

    malformed: float = 0.01
    unparseable_timestamp: float = 0.01
    negative_duration: float = 0.01
    unknown_customer: float = 0.01
    missing_key: float = 0.01
    duplicate: float = 0.01
    late: float = 0.01
    non_finite: float = 0.002
    wrong_type: float = 0.002
    out_of_range: float = 0.002
    invalid_encoding: float = 0.002
    quoted_newline: float = 0.1
    stray_file: float = 0.02
    corrupt_file: float = 0.02

    @classmethod
    def every(cls, rate: float) -> DirtRates:
        """Every kind at ``rate``."""
        return cls(**{field.name: rate for field in dataclasses.fields(cls)})

    @classmethod
    def none(cls) -> DirtRates:
        """Clean data: every rate zero."""
        return cls(**{field.name: 0.0 for field in dataclasses.fields(cls)})


CHANGE_KINDS: dict[str, tuple[str, ...]] = {
    # kind: the churn_v1 features it moves (the windows dilute it: a 90-day sum moves by a
    # 90th of the change per day, a 7-day one by a 7th)
    "data_drop": ("data_mb_7d", "data_mb_30d", "data_mb_90d"),
    "price_rise": (
        "monthly_charge",
        "monthly_charge_change_90d",
        "last_invoice_amount",
        "open_balance",
    ),
}


@dataclasses.dataclass(frozen=True)
class Change:
    """A change of behaviour the generator injects from a day on (the drift monitor's test).

    Nothing before ``day`` differs from the same seed without the change, and the churn
    model of the customers is left as it is: only the features the change moves move.

    Attributes:
        kind: ``data_drop``: data sessions of the customers of region ``target`` carry
            ``factor`` times the bytes; ``price_rise``: plan ``target`` costs ``factor``
            times its price (invoices and the plan catalogue; a factor below 1 is a cut).
        day: Day index from which it holds (1 or later: day 0 is the catalogue's).
        target: A region (``data_drop``; ``all`` for every region) or a plan id.
        factor: Multiplier of the bytes or of the price.
    """

    kind: str
    day: int
    target: str = "all"
    factor: float = 0.5

    def __post_init__(self) -> None:
        from features.generate.customers import PLANS, REGIONS

        if self.kind not in CHANGE_KINDS:
            raise ValueError(f"change: unknown kind {self.kind!r}; one of {sorted(CHANGE_KINDS)}")
        if self.day < 1 or self.factor <= 0:
            raise ValueError(
                f"change: day must be >= 1 and factor > 0, got day={self.day} factor={self.factor}"
            )
        targets = [*REGIONS, "all"] if self.kind == "data_drop" else [p[0] for p in PLANS]
        if self.target not in targets:
            raise ValueError(
                f"change: {self.kind} target {self.target!r} is none of {', '.join(targets)}"
            )

    @property
    def moves(self) -> tuple[str, ...]:
        """The features of the churn service this change moves."""
        return CHANGE_KINDS[self.kind]

    @classmethod
    def parse(cls, text: str) -> Change:
        """``kind=data_drop,day=60,target=north,factor=0.3`` (the command line's form)."""
        fields = {field.name: field for field in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for part in filter(None, (piece.strip() for piece in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or key not in fields:
                raise ValueError(
                    f"change {text!r}: expected key=value pairs of "
                    f"{', '.join(fields)} (e.g. kind=data_drop,day=60,"
                    "target=north,factor=0.3)"
                )
            values[key] = {"day": int, "factor": float}.get(key, str)(value)
        if "kind" not in values or "day" not in values:
            raise ValueError(f"change {text!r}: kind= and day= are required")
        return cls(**values)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True)
class GeneratorConfig:
    """Scale, seed and behaviour of one generated dataset.

    Attributes:
        customers: Number of customers (ids 1..customers).
        days: Number of daily batches, starting at ``start``.
        start: Date of the first batch.
        seed: Seed; the same seed gives the same data whatever the partitioning.
        dirt: Dirt rates.
        events_per_day: Mean usage events of an average customer on an ordinary day.
        new_customer_share: Share of customers who sign up inside the window.
        base_hazard: Daily hazard of a dissatisfaction episode for a baseline customer.
        churn_given_episode: Probability that an episode ends in churn.
        price_rise_day: Day index of the price rise (default: 40% into the window).
        snapshot_every: Days between the snapshots of the ceiling AUC.
        horizon_days: Label horizon of the ceiling AUC (churn within this many days).
        partitions: Spark partitions of the usage grid (default: from the scale).
        changes: Changes injected from a day on (see :class:`Change`); none by default.
    """

    customers: int = 1000
    days: int = 60
    start: dt.date = dt.date(2026, 1, 1)
    seed: int = 7
    dirt: DirtRates = dataclasses.field(default_factory=DirtRates)
    events_per_day: float = 11.0
    new_customer_share: float = 0.25
    base_hazard: float = 0.002
    churn_given_episode: float = 0.8
    price_rise_day: int | None = None
    snapshot_every: int = 30
    horizon_days: int = 30
    partitions: int | None = None
    changes: tuple[Change, ...] = ()

    @property
    def rise_day(self) -> int:
        """Day index of the price rise."""
        return self.price_rise_day if self.price_rise_day is not None else int(self.days * 0.4)

    def date_of(self, day: int) -> dt.date:
        """Date of day index ``day``."""
        return self.start + dt.timedelta(days=day)

    @property
    def dates(self) -> list[dt.date]:
        """Every batch date of the window."""
        return [self.date_of(day) for day in range(self.days)]

    def usage_partitions(self) -> int:
        """Partitions of the customer-day grid: about 2M events each, at least 2."""
        if self.partitions:
            return self.partitions
        events = self.customers * self.days * self.events_per_day
        return max(2, int(events // 2_000_000) + 1)


def config_for_usage_rows(
    rows: int, *, days: int = 90, seed: int = 7, **options: Any
) -> GeneratorConfig:
    """Return a config whose usage table has about ``rows`` events over ``days`` days."""
    active_share = 0.85
    customers = max(10, int(rows / (days * GeneratorConfig.events_per_day * active_share)))
    return GeneratorConfig(customers=customers, days=days, seed=seed, **options)
