with source as (
    select * from {{ source('bronze', 'subscriptions') }}
),

renamed as (
    select
        cast(subscription_id as bigint) as subscription_id,
        cast(customer_id as bigint) as customer_id,
        trim(plan_id) as plan_id,
        lower(trim(contract_type)) as contract_type,
        cast(start_date as date) as start_date,
        cast(end_date as date) as end_date,
        updated_at,
        _batch_date
    from source
    where subscription_id is not null and customer_id is not null
),

deduplicated as (
    select *,
        row_number() over (
            partition by subscription_id order by updated_at desc, _batch_date desc
        ) as version_rank
    from renamed
),

final as (
    select
        subscription_id, customer_id, plan_id, contract_type, start_date, end_date,
        updated_at, _batch_date
    from deduplicated
    where version_rank = 1
)

select * from final
