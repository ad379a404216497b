{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite',
        partition_by=['feature_date'],
        on_schema_change='fail',
    )
}}

{#- One row per customer per active day: support chats over 30/90 days, the share
    that read negative by the lexicon, mentions of cancelling, competitors and price,
    days since the last chat, and the text of the latest five chats in 30 days (one summary
    per line, latest first) for models that read the text itself.

    Incremental as the usage mart: runs recompute from the earliest chat day touched by
    batches landed since the last run, or the first new day, whichever is earlier, reading
    89 days of history before it for the windows and, for the days since the last chat,
    each customer's latest chat day before that history; they overwrite the recomputed
    days' feature_date partitions. -#}
with spine as (
    select * from {{ ref('int_customer_days_spanned') }}
),

chats_daily as (
    select * from {{ ref('int_support_chats_summed_daily') }}
),

{% if is_incremental() %}
    {%- set first_touched -%}
        select min(chats_daily.chat_date) as first_touched_date
        from {{ ref('int_support_chats_summed_daily') }} as chats_daily
        cross join loaded
        where {{ end_of_day('chats_daily.last_batch_date') }} > loaded.loaded_through
    {%- endset -%}
    {%- set recompute_day = recompute_from(first_touched) -%}
{% endif %}

-- Each customer's latest chat on an active day before the history the windows read (none
-- in a full refresh, which reads all of it).
earlier_chats as (
    select
        chats_daily.customer_id,
        max(chats_daily.chat_date) as last_chat_date
    from chats_daily
    inner join spine
        on chats_daily.customer_id = spine.customer_id
            and chats_daily.chat_date = spine.feature_date
    {% if is_incremental() %}
        where chats_daily.chat_date < date_sub({{ recompute_day }}, 89)
            and chats_daily.chats > 0
    {% else %}
        where false
    {% endif %}
    group by chats_daily.customer_id
),

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
        coalesce(chats_daily.chats, 0) as chats,
        coalesce(chats_daily.negative_chats, 0) as negative_chats,
        coalesce(chats_daily.cancel_mentions, 0) as cancel_mentions,
        coalesce(chats_daily.competitor_mentions, 0) as competitor_mentions,
        coalesce(chats_daily.price_mentions, 0) as price_mentions,
        coalesce(chats_daily.escalations, 0) as escalations,
        coalesce(chats_daily.sentiment_score, 0) as sentiment_score,
        case when chats_daily.chats > 0 then spine.feature_date end as chat_date,
        case
            when chats_daily.summaries != ''
                then named_struct('day_number', {{ day_number('spine.feature_date') }}, 'text', chats_daily.summaries)
        end as day_summaries,
        chats_daily.last_batch_date,
        earlier_chats.last_chat_date as earlier_chat_date
    from spine_in_scope as spine
    left join chats_daily
        on spine.customer_id = chats_daily.customer_id
            and spine.feature_date = chats_daily.chat_date
    left join earlier_chats on spine.customer_id = earlier_chats.customer_id
),

windowed as (
    select
        customer_id,
        feature_date,
        sum(chats) over w30 as chats_30d,
        sum(chats) over w90 as chats_90d,
        sum(negative_chats) over w90 as negative_chats_90d,
        sum(cancel_mentions) over w90 as cancel_mentions_90d,
        sum(competitor_mentions) over w90 as competitor_mentions_90d,
        sum(price_mentions) over w90 as price_mentions_90d,
        sum(escalations) over w90 as escalations_90d,
        sum(sentiment_score) over w30 as sentiment_score_30d,
        greatest(max(chat_date) over w_all, earlier_chat_date) as last_chat_date,
        max(last_batch_date) over w90 as last_batch_date_90d,
        collect_list(day_summaries) over w30 as summaries_30d
    from filled
    window
        w30 as (partition by customer_id order by day_number range between 29 preceding and current row),
        w90 as (partition by customer_id order by day_number range between 89 preceding and current row),
        w_all as (
            partition by customer_id order by day_number
            range between unbounded preceding and current row
        )
),

final as (
    select
        customer_id,
        feature_date,
        {{ end_of_day('feature_date') }} as event_timestamp,
        {{ created_timestamp('feature_date', 'last_batch_date_90d') }} as created_timestamp,
        cast(chats_30d as bigint) as chats_30d,
        cast(chats_90d as bigint) as chats_90d,
        cast(case when chats_90d > 0 then negative_chats_90d / chats_90d else 0 end as double)
            as negative_chat_share_90d,
        cast(cancel_mentions_90d as bigint) as cancel_mentions_90d,
        cast(competitor_mentions_90d as bigint) as competitor_mentions_90d,
        cast(price_mentions_90d as bigint) as price_mentions_90d,
        cast(escalations_90d as bigint) as escalations_90d,
        cast(sentiment_score_30d as double) as sentiment_score_30d,
        cast(datediff(feature_date, last_chat_date) as int) as days_since_last_chat,
        nullif(
            array_join(
                slice(
                    split(
                        array_join(transform(reverse(array_sort(summaries_30d)), d -> d.text), '\n'),
                        '\n'
                    ),
                    1,
                    5
                ),
                '\n'
            ),
            ''
        ) as recent_chat_text
    from windowed
    {% if is_incremental() %}
        where feature_date >= {{ recompute_day }}
    {% endif %}
)

select * from final
