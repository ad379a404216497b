{#- One row per customer and day with usage: the day's totals of each kind.  Minutes and
    megabytes are doubles: decimal division rounds each day, and rolling sums of rounded
    days drift from the events they came from. -#}
with usage_events as (
    select * from {{ ref('stg_bronze__usage_events') }}
),

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
        max(_batch_date) as last_batch_date
    from usage_events
    group by customer_id, event_date
)

select * from final
