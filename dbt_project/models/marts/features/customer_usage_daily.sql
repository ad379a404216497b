{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite',
        partition_by=['feature_date'],
        on_schema_change='fail',
    )
}}

{#- One row per customer per active day: rolling 7/30/90-day usage aggregates.

    Incremental runs recompute every day that new events can change: from the earliest
    day touched by events landed since the last run (late arrivals included) or the first
    new day, whichever is earlier, reading 89 days of history before it for the windows,
    and overwrite the result's feature_date partitions (every customer of each day
    recomputed: the full refresh's rows for those days, with no join to the table).

    event_timestamp is the end of the feature day; created_timestamp is the end of the
    latest landing batch whose events the row's windows contain: the moment the lake
    knew the value. -#}

with spine as (
    select * from {{ ref('int_customer_days_spanned') }}
),

daily_usage as (
    select * from {{ ref('int_usage_events_summed_daily') }}
),

{% if is_incremental() %}
    {%- set first_touched -%}
        select min(daily_usage.usage_date) as first_touched_date
        from {{ ref('int_usage_events_summed_daily') }} as daily_usage
        cross join loaded
        where {{ end_of_day('daily_usage.last_batch_date') }} > loaded.loaded_through
    {%- endset -%}
    {%- set recompute_day = recompute_from(first_touched) -%}
{% endif %}

spine_in_scope as (
    select spine.*
    from spine
    {% if is_incremental() %}
        where spine.feature_date >= date_sub({{ recompute_day }}, 89)
    {% endif %}
),

filled as (
    select
        spine.customer_id,
        spine.feature_date,
        {{ day_number('spine.feature_date') }} as day_number,
        coalesce(daily_usage.call_minutes, 0) as call_minutes,
        coalesce(daily_usage.calls, 0) as calls,
        coalesce(daily_usage.dropped_calls, 0) as dropped_calls,
        coalesce(daily_usage.sms, 0) as sms,
        coalesce(daily_usage.data_mb, 0) as data_mb,
        coalesce(daily_usage.events, 0) as events,
        coalesce(daily_usage.roaming_events, 0) as roaming_events,
        coalesce(daily_usage.cells, array()) as cells,
        daily_usage.last_batch_date
    from spine_in_scope as spine
    left join daily_usage
        on spine.customer_id = daily_usage.customer_id
            and spine.feature_date = daily_usage.usage_date
),

windowed as (
    select
        customer_id,
        feature_date,
        {% for days in [7, 30, 90] %}
            sum(call_minutes) over w{{ days }} as call_minutes_{{ days }}d,
            sum(calls) over w{{ days }} as calls_{{ days }}d,
            sum(dropped_calls) over w{{ days }} as dropped_calls_{{ days }}d,
            sum(sms) over w{{ days }} as sms_{{ days }}d,
            sum(data_mb) over w{{ days }} as data_mb_{{ days }}d,
            sum(events) over w{{ days }} as events_{{ days }}d,
            sum(roaming_events) over w{{ days }} as roaming_events_{{ days }}d,
            size(array_distinct(flatten(collect_list(cells) over w{{ days }}))) as distinct_cells_{{ days }}d,
            count(*) over w{{ days }} as days_in_window_{{ days }}d,
        {% endfor %}
        max(last_batch_date) over w90 as last_batch_date_90d
    from filled
    window
        w7 as (partition by customer_id order by day_number range between 6 preceding and current row),
        w30 as (partition by customer_id order by day_number range between 29 preceding and current row),
        w90 as (partition by customer_id order by day_number range between 89 preceding and current row)
),

final as (
    select
        customer_id,
        feature_date,
        {{ end_of_day('feature_date') }} as event_timestamp,
        {{ created_timestamp('feature_date', 'last_batch_date_90d') }} as created_timestamp,
        {% for days in [7, 30, 90] %}
            cast(call_minutes_{{ days }}d as double) as call_minutes_{{ days }}d,
            cast(sms_{{ days }}d as bigint) as sms_{{ days }}d,
            cast(data_mb_{{ days }}d as double) as data_mb_{{ days }}d,
            cast(case when calls_{{ days }}d > 0 then dropped_calls_{{ days }}d / calls_{{ days }}d
                else 0
            end as double) as dropped_call_rate_{{ days }}d,
            cast(case when events_{{ days }}d > 0 then roaming_events_{{ days }}d / events_{{ days }}d
                else 0
            end as double) as roaming_share_{{ days }}d,
            cast(distinct_cells_{{ days }}d as int) as distinct_cells_{{ days }}d,
        {% endfor %}
        cast(
            case
                when call_minutes_30d > 0
                    then (call_minutes_7d / days_in_window_7d)
                        / (call_minutes_30d / days_in_window_30d)
            end as double
        ) as minutes_trend_7d_30d
    from windowed
    {% if is_incremental() %}
        where feature_date >= {{ recompute_day }}
    {% endif %}
)

select * from final
