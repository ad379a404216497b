with source as (
    select * from {{ source('bronze', 'support_chats') }}
),

renamed as (
    select
        chat_id,
        cast(customer_id as bigint) as customer_id,
        date_trunc('second', chat_at) as chat_at,
        to_date(chat_at) as chat_date,
        lower(trim(channel)) as channel,
        coalesce(summary, '') as summary,
        coalesce(tags, array()) as tags,
        agent.agent_id,
        agent.team as agent_team,
        resolution.status as resolution_status,
        resolution.csat,
        coalesce(resolution.is_escalated, false) as is_escalated,
        _batch_date
    from source
    where chat_id is not null and customer_id is not null and chat_at is not null
),

deduplicated as (
    select
        *,
        row_number() over (partition by chat_id order by _batch_date asc) as copy_rank
    from renamed
),

final as (
    select
        chat_id,
        customer_id,
        chat_at,
        chat_date,
        channel,
        summary,
        tags,
        agent_id,
        agent_team,
        resolution_status,
        csat,
        is_escalated,
        _batch_date
    from deduplicated
    where copy_rank = 1
)

select * from final
