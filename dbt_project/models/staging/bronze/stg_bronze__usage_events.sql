{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}

{#- One row per usage event: the first copy landed wins.

    A table, not a view: every usage model and test downstream reads it, and
    deduplicating every event again for each of them was most of a daily `dbt build`.
    Incremental runs take the bronze records ingested since the newest one staged,
    deduplicate them among themselves and keep those whose event_id is not staged yet
    (a copy staged earlier landed first). -#}

with source as (
    select * from {{ source('bronze', 'usage_events') }}
    {% if is_incremental() %}
        where _ingested_at > (
                select coalesce(max(already._ingested_at), timestamp '1900-01-01 00:00:00')
                from {{ this }} as already
            )
    {% endif %}
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
    select
        *,
        row_number() over (
            partition by event_id order by _batch_date asc, _ingested_at asc
        ) as copy_rank
    from renamed
),

first_copies as (
    select
        event_id,
        customer_id,
        event_at,
        event_date,
        event_type,
        duration_s,
        bytes,
        is_dropped,
        is_roaming,
        cell_id,
        _batch_date,
        _ingested_at
    from deduplicated
    where copy_rank = 1
),

final as (
    select first_copies.*
    from first_copies
    {% if is_incremental() %}
        left anti join {{ this }} as staged on first_copies.event_id = staged.event_id
    {% endif %}
)

select * from final
