{#- Every version of every subscription, as landed: a subscription is re-sent when it
    changes (closed by a plan change, ended by a churn).  Point-in-time models read the
    version known on a date from here; exact re-sends of a version keep their first
    landing. -#}
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
    where subscription_id is not null and customer_id is not null and updated_at is not null
),

first_landings as (
    select
        *,
        row_number() over (
            partition by subscription_id, updated_at order by _batch_date
        ) as landing_rank
    from renamed
),

final as (
    select
        subscription_id,
        customer_id,
        plan_id,
        contract_type,
        start_date,
        end_date,
        updated_at,
        _batch_date
    from first_landings
    where landing_rank = 1
)

select * from final
