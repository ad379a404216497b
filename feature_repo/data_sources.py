"""Feast sources over the Delta feature marts that `dbt build` writes."""

from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource


def _daily_mart(table: str, description: str) -> SparkSource:
    return SparkSource(
        name=f"{table.split('.')[-1]}_source",
        table=table,
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        date_partition_column="feature_date",
        description=description,
        owner="analytics-engineering",
    )


customer_usage_daily_source = _daily_mart(
    "features.customer_usage_daily", "Rolling 7/30/90-day usage per customer and day."
)
customer_billing_source = _daily_mart(
    "features.customer_billing", "Contract, charges and payment behaviour per customer and day."
)
customer_support_source = _daily_mart(
    "features.customer_support", "Support chat activity and sentiment per customer and day."
)
