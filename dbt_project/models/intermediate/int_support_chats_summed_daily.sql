{#- Support chats per customer and day: how many, how many read negative by the lexicon,
    mentions of cancelling, competitors and price, escalations, the summed sentiment, the
    day's summaries (latest first, one per line; blank ones left out: '' when all are), and
    the latest landing batch among them. -#}
with chats as (
    select * from {{ ref('int_support_chats_scored') }}
),

final as (
    select
        customer_id,
        chat_date,
        cast(count(*) as bigint) as chats,
        cast(sum(case when is_negative then 1 else 0 end) as bigint) as negative_chats,
        cast(sum(case when mentions_cancel then 1 else 0 end) as bigint) as cancel_mentions,
        cast(sum(case when mentions_competitor then 1 else 0 end) as bigint) as competitor_mentions,
        cast(sum(case when mentions_price then 1 else 0 end) as bigint) as price_mentions,
        cast(sum(case when is_escalated then 1 else 0 end) as bigint) as escalations,
        sum(sentiment_score) as sentiment_score,
        array_join(
            transform(
                filter(
                    reverse(array_sort(collect_list(struct(chat_at, chat_id, summary)))),
                    chat -> trim(chat.summary) != ''
                ),
                chat -> regexp_replace(chat.summary, '[\\r\\n]+', ' ')
            ),
            '\n'
        ) as summaries,
        max(_batch_date) as last_batch_date
    from chats
    group by customer_id, chat_date
)

select * from final
