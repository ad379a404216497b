"""Feature views: one per feature mart, its features the mart's dbt contract.

Each view's fields are the columns of its mart's enforced contract (dbt YAML) other than the
join key and the time columns, with their types (see :mod:`features.dbt_contracts`): a
column added to a mart with its contract is a feature at the next apply, without an edit
here.

The marts hold one row per customer per day, so a TTL of a few days means "the row of
that day, or of the last days if a batch is late"; older rows do not stand in for a
customer who has gone quiet (churned customers stop getting rows).
"""

from datetime import timedelta

from feast import FeatureView

from data_sources import (
    customer_billing_source,
    customer_support_source,
    customer_usage_daily_source,
)
from entities import customer
from features.dbt_contracts import source_fields


customer_usage = FeatureView(
    name="customer_usage",
    entities=[customer],
    ttl=timedelta(days=3),
    schema=source_fields(customer_usage_daily_source, join_keys=[customer.join_key]),
    source=customer_usage_daily_source,
    online=True,
    tags={"mart": customer_usage_daily_source.table},
)

customer_billing = FeatureView(
    name="customer_billing",
    entities=[customer],
    ttl=timedelta(days=3),
    schema=source_fields(customer_billing_source, join_keys=[customer.join_key]),
    source=customer_billing_source,
    online=True,
    tags={"mart": customer_billing_source.table},
)

customer_support = FeatureView(
    name="customer_support",
    entities=[customer],
    ttl=timedelta(days=3),
    schema=source_fields(customer_support_source, join_keys=[customer.join_key]),
    source=customer_support_source,
    online=True,
    tags={"mart": customer_support_source.table},
)
