{#- Recomputes the 7- and 90-day call minutes of every feature row from the events whose
    time is at or before the row's event_timestamp (and inside the window), and fails on
    every row whose stored value is larger: durations are never negative in staging, so a
    value that used an event later than its event_timestamp shows up here.  (A stored
    value may be smaller: events before a customer's first day in the lake are not
    features.)  With the var tests_since, only the rows created since then. -#}
with features as (
    select * from {{ ref('customer_usage_daily') }}
    where true{{ and_since('created_timestamp') }}
),

events as (
    select * from {{ ref('stg_bronze__usage_events') }}
    where event_type = 'call'
),

recomputed as (
    select
        features.customer_id,
        features.feature_date,
        coalesce(sum(case when events.event_at > timestampadd(DAY, -7, features.event_timestamp)
                          then events.duration_s end), 0) / 60.0d as call_minutes_7d,
        coalesce(sum(events.duration_s), 0) / 60.0d as call_minutes_90d
    from features
    left join events
        on features.customer_id = events.customer_id
        and events.event_at <= features.event_timestamp
        and events.event_at > timestampadd(DAY, -90, features.event_timestamp)
    group by features.customer_id, features.feature_date
),

final as (
    select features.customer_id, features.feature_date,
        features.call_minutes_7d, recomputed.call_minutes_7d as expected_7d,
        features.call_minutes_90d, recomputed.call_minutes_90d as expected_90d
    from features
    inner join recomputed
        on features.customer_id = recomputed.customer_id
        and features.feature_date = recomputed.feature_date
    where features.call_minutes_7d > recomputed.call_minutes_7d + 1e-6
       or features.call_minutes_90d > recomputed.call_minutes_90d + 1e-6
)

select * from final
