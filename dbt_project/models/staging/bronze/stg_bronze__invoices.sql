with source as (
    select * from {{ source('bronze', 'invoices') }}
),

renamed as (
    select
        cast(invoice_id as bigint) as invoice_id,
        cast(customer_id as bigint) as customer_id,
        cast(invoice_date as date) as invoice_date,
        cast(period_start as date) as period_start,
        cast(period_end as date) as period_end,
        cast(amount as double) as amount,
        cast(due_date as date) as due_date,
        issued_at,
        _batch_date
    from source
    where invoice_id is not null and customer_id is not null
),

deduplicated as (
    select
        *,
        row_number() over (partition by invoice_id order by _batch_date desc) as version_rank
    from renamed
),

final as (
    select
        invoice_id,
        customer_id,
        invoice_date,
        period_start,
        period_end,
        amount,
        due_date,
        issued_at,
        _batch_date
    from deduplicated
    where version_rank = 1
)

select * from final
