{#- One row per customer per active day: support chats over 30/90 days, the share
    that read negative by the lexicon, mentions of cancelling, competitors and price,
    days since the last chat, and the text of the latest five chats in 30 days (one summary
    per line, latest first) for models that read the text itself. -#}
with spine as (
    select * from {{ ref('int_customer_days_spanned') }}
),

chats_daily as (
    select * from {{ ref('int_support_chats_summed_daily') }}
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
        chats_daily.last_batch_date
    from spine
    left join chats_daily
        on spine.customer_id = chats_daily.customer_id
            and spine.feature_date = chats_daily.chat_date
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
        max(chat_date) over w_all as last_chat_date,
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
)

select * from final
