"""Entities of the lakehouse feature repository."""

from feast import Entity, ValueType

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A telco customer, keyed by customer_id.",
)
