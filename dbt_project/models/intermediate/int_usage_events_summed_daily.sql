{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['customer_id', 'usage_date'],
        on_schema_change='fail',
    )
}}

{#- One row per customer and day with usage: the day's totals of each kind.  Minutes and
    megabytes are doubles: decimal division rounds each day, and rolling sums of rounded
    days drift from the events they came from.

    Incremental runs sum again, from every staged event of theirs, the customer-days that
    events staged since the last run fall on (late arrivals included), and MERGE them;
    _ingested_at (the newest event's) marks what has been summed. -#}

with usage_events as (
    select * from {{ ref('stg_bronze__usage_events') }}
),

{% if is_incremental() %}
    touched as (
        select distinct
            customer_id,
            event_date
        from usage_events
        where _ingested_at > (
                select coalesce(max(already._ingested_at), timestamp '1900-01-01 00:00:00')
                from {{ this }} as already
            )
    ),

    events_in_scope as (
        select usage_events.*
        from usage_events
        left semi join touched
            on usage_events.customer_id = touched.customer_id
                and usage_events.event_date = touched.event_date
        where usage_events.event_date >= (select min(first_touched.event_date) from touched as first_touched)
    ),
{% else %}
    events_in_scope as (
        select * from usage_events
    ),
{% endif %}

final as (
    select
        customer_id,
        event_date as usage_date,
        cast(sum(case when event_type = 'call' then duration_s else 0 end) as double) / 60
            as call_minutes,
        cast(sum(case when event_type = 'call' then 1 else 0 end) as bigint) as calls,
        cast(sum(case when event_type = 'call' and is_dropped then 1 else 0 end) as bigint)
            as dropped_calls,
        cast(sum(case when event_type = 'sms' then 1 else 0 end) as bigint) as sms,
        cast(sum(case when event_type = 'data' then bytes else 0 end) as double) / 1e6 as data_mb,
        cast(count(*) as bigint) as events,
        cast(sum(case when is_roaming then 1 else 0 end) as bigint) as roaming_events,
        collect_set(cell_id) as cells,
        max(_batch_date) as last_batch_date,
        max(_ingested_at) as _ingested_at
    from events_in_scope
    group by customer_id, event_date
)

select * from final
