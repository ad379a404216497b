{#- One row per subscription: its latest version, and the batch that first brought the
    subscription (when the lake first knew it).  Point-in-time features must not read the
    latest version (an ended subscription lands on the churn date): they read
    stg_bronze__subscription_versions. -#}
with versions as (
    select * from {{ ref('stg_bronze__subscription_versions') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by subscription_id order by updated_at desc, _batch_date desc
        ) as version_rank,
        min(_batch_date) over (partition by subscription_id) as first_batch_date
    from versions
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
        _batch_date,
        first_batch_date
    from ranked
    where version_rank = 1
)

select * from final
