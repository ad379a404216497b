{#- Each chat scored with the sentiment lexicon (a seed): summed term weights, and
    whether it mentions cancelling, a competitor or price. -#}
with chats as (
    select * from {{ ref('stg_bronze__support_chats') }}
),

lexicon as (
    select * from {{ ref('sentiment_lexicon') }}
),

tokens as (
    select
        chat_id,
        explode(split(lower(summary), '[^a-z]+')) as term
    from chats
),

matched as (
    select
        tokens.chat_id,
        sum(case when lexicon.category in ('negative', 'positive') then lexicon.weight else 0 end)
            as sentiment_score,
        max(case when lexicon.category = 'cancel' then 1 else 0 end) as mentions_cancel,
        max(case when lexicon.category = 'competitor' then 1 else 0 end) as mentions_competitor,
        max(case when lexicon.category = 'price' then 1 else 0 end) as mentions_price
    from tokens
    inner join lexicon on tokens.term = lexicon.term
    group by tokens.chat_id
),

final as (
    select
        chats.chat_id,
        chats.customer_id,
        chats.chat_at,
        chats.chat_date,
        chats.is_escalated,
        chats.summary,
        chats._batch_date,
        coalesce(matched.sentiment_score, 0) as sentiment_score,
        coalesce(matched.sentiment_score, 0) < 0 as is_negative,
        coalesce(matched.mentions_cancel, 0) = 1
        or array_contains(chats.tags, 'cancel') as mentions_cancel,
        coalesce(matched.mentions_competitor, 0) = 1
        or array_contains(chats.tags, 'competitor') as mentions_competitor,
        coalesce(matched.mentions_price, 0) = 1
        or array_contains(chats.tags, 'price') as mentions_price
    from chats
    left join matched on chats.chat_id = matched.chat_id
)

select * from final
