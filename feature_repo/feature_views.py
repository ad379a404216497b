"""Feature views: one per feature mart.

The marts hold one row per customer per day, so a TTL of a few days means "the row of
that day, or of the last days if a batch is late"; older rows do not stand in for a
customer who has gone quiet (churned customers stop getting rows).
"""

from datetime import timedelta

from feast import FeatureView, Field
from feast.types import Float64, Int32, Int64, String

from data_sources import (
    customer_billing_source,
    customer_support_source,
    customer_usage_daily_source,
)
from entities import customer

customer_usage = FeatureView(
    name="customer_usage",
    entities=[customer],
    ttl=timedelta(days=3),
    schema=[
        *[
            field
            for days in (7, 30, 90)
            for field in (
                Field(name=f"call_minutes_{days}d", dtype=Float64),
                Field(name=f"sms_{days}d", dtype=Int64),
                Field(name=f"data_mb_{days}d", dtype=Float64),
                Field(name=f"dropped_call_rate_{days}d", dtype=Float64),
                Field(name=f"roaming_share_{days}d", dtype=Float64),
                Field(name=f"distinct_cells_{days}d", dtype=Int32),
            )
        ],
        Field(name="minutes_trend_7d_30d", dtype=Float64),
    ],
    source=customer_usage_daily_source,
    online=True,
    tags={"mart": "features.customer_usage_daily"},
)

customer_billing = FeatureView(
    name="customer_billing",
    entities=[customer],
    ttl=timedelta(days=3),
    schema=[
        Field(name="tenure_days", dtype=Int32),
        Field(name="contract_type", dtype=String),
        Field(name="monthly_charge", dtype=Float64),
        Field(name="monthly_charge_change_90d", dtype=Float64),
        Field(name="late_payments_90d", dtype=Int64),
        Field(name="failed_payments_90d", dtype=Int64),
        Field(name="open_balance", dtype=Float64),
        Field(name="plan_changes_365d", dtype=Int64),
        Field(name="last_invoice_amount", dtype=Float64),
    ],
    source=customer_billing_source,
    online=True,
    tags={"mart": "features.customer_billing"},
)

customer_support = FeatureView(
    name="customer_support",
    entities=[customer],
    ttl=timedelta(days=3),
    schema=[
        Field(name="chats_30d", dtype=Int64),
        Field(name="chats_90d", dtype=Int64),
        Field(name="negative_chat_share_90d", dtype=Float64),
        Field(name="cancel_mentions_90d", dtype=Int64),
        Field(name="competitor_mentions_90d", dtype=Int64),
        Field(name="price_mentions_90d", dtype=Int64),
        Field(name="escalations_90d", dtype=Int64),
        Field(name="sentiment_score_30d", dtype=Float64),
        Field(name="days_since_last_chat", dtype=Int32),
    ],
    source=customer_support_source,
    online=True,
    tags={"mart": "features.customer_support"},
)
