{{ config(materialized='table') }}

{#- One row per customer and day, from signup (or the start of the lake's data) to
    churn (inclusive) or the last landed batch: the spine every daily mart fills.  A
    table: three marts and their tests read it. -#}
with customers as (
    select * from {{ ref('stg_bronze__customers') }}
),

churn_events as (
    select * from {{ ref('stg_bronze__churn_events') }}
),

usage_events as (
    select * from {{ ref('stg_bronze__usage_events') }}
),

lake_bounds as (
    select
        min(_batch_date) as first_batch_date,
        max(_batch_date) as last_batch_date
    from usage_events
),

customer_spans as (
    select
        customers.customer_id,
        greatest(customers.signup_date, lake_bounds.first_batch_date) as first_day,
        least(
            coalesce(churn_events.churn_date, lake_bounds.last_batch_date),
            lake_bounds.last_batch_date
        ) as last_day
    from customers
    cross join lake_bounds
    left join churn_events on customers.customer_id = churn_events.customer_id
),

final as (
    select
        customer_id,
        explode(sequence(first_day, last_day, interval 1 day)) as feature_date
    from customer_spans
    where first_day <= last_day
)

select * from final
