with source as (
    select * from {{ source('bronze', 'usage_events') }}
),

renamed as (
    select
        event_id,
        cast(customer_id as bigint) as customer_id,
        date_trunc('second', event_at) as event_at,
        to_date(event_at) as event_date,
        lower(trim(event_type)) as event_type,
        cast(duration_s as int) as duration_s,
        cast(bytes as bigint) as bytes,
        coalesce(is_dropped, false) as is_dropped,
        coalesce(is_roaming, false) as is_roaming,
        cell_id,
        _batch_date,
        _ingested_at
    from source
    where event_id is not null and customer_id is not null and event_at is not null
),

deduplicated as (
    select *,
        row_number() over (
            partition by event_id order by _batch_date asc, _ingested_at asc
        ) as copy_rank
    from renamed
),

final as (
    select
        event_id, customer_id, event_at, event_date, event_type, duration_s, bytes,
        is_dropped, is_roaming, cell_id, _batch_date, _ingested_at
    from deduplicated
    where copy_rank = 1
)

select * from final
