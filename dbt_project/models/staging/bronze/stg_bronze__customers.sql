with source as (
    select * from {{ source('bronze', 'customers') }}
),

renamed as (
    select
        cast(customer_id as bigint) as customer_id,
        cast(signup_date as date) as signup_date,
        lower(trim(region)) as region,
        lower(trim(segment)) as segment,
        cast(birth_year as int) as birth_year,
        updated_at,
        _batch_date
    from source
    where customer_id is not null
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by customer_id order by updated_at desc, _batch_date desc
        ) as version_rank
    from renamed
),

final as (
    select
        customer_id,
        signup_date,
        region,
        segment,
        birth_year,
        updated_at,
        _batch_date
    from deduplicated
    where version_rank = 1
)

select * from final
