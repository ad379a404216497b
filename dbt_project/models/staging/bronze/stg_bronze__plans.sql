with source as (
    select * from {{ source('bronze', 'plans') }}
),

renamed as (
    select
        trim(plan_id) as plan_id,
        plan_name,
        cast(monthly_price as double) as monthly_price,
        cast(data_gb as int) as data_gb,
        cast(effective_from as date) as effective_from,
        updated_at,
        _batch_date
    from source
    where plan_id is not null and effective_from is not null
),

deduplicated as (
    select
        *,
        row_number() over (
            partition by plan_id, effective_from order by updated_at desc, _batch_date desc
        ) as version_rank
    from renamed
),

final as (
    select
        plan_id,
        plan_name,
        monthly_price,
        data_gb,
        effective_from,
        updated_at,
        _batch_date
    from deduplicated
    where version_rank = 1
)

select * from final
