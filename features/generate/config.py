"""Configuration of the synthetic telco generator."""

from __future__ import annotations

import dataclasses
import datetime as dt


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
    """

    malformed: float = 0.01
    unparseable_timestamp: float = 0.01
    negative_duration: float = 0.01
    unknown_customer: float = 0.01
    missing_key: float = 0.01
    duplicate: float = 0.01
    late: float = 0.01

    @classmethod
    def none(cls) -> DirtRates:
        """Clean data: every rate zero."""
        return cls(**{field.name: 0.0 for field in dataclasses.fields(cls)})


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
    rows: int, *, days: int = 90, seed: int = 7, **options: object
) -> GeneratorConfig:
    """Return a config whose usage table has about ``rows`` events over ``days`` days."""
    active_share = 0.85
    customers = max(10, int(rows / (days * GeneratorConfig.events_per_day * active_share)))
    return GeneratorConfig(customers=customers, days=days, seed=seed, **options)
