with source as (
    select * from {{ source('bronze', 'churn_events') }}
),

renamed as (
    select
        cast(customer_id as bigint) as customer_id,
        churned_at,
        to_date(churned_at) as churn_date,
        lower(trim(reason)) as reason,
        _batch_date
    from source
    where customer_id is not null and churned_at is not null
),

first_churn as (
    select
        *,
        row_number() over (partition by customer_id order by churned_at asc) as churn_rank
    from renamed
),

final as (
    select
        customer_id,
        churned_at,
        churn_date,
        reason,
        _batch_date
    from first_churn
    where churn_rank = 1
)

select * from final
