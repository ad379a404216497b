with source as (
    select * from {{ source('bronze', 'payments') }}
),

renamed as (
    select
        cast(payment_id as bigint) as payment_id,
        cast(invoice_id as bigint) as invoice_id,
        cast(customer_id as bigint) as customer_id,
        cast(amount as double) as amount,
        lower(trim(status)) as status,
        paid_at,
        to_date(paid_at) as payment_date,
        _batch_date
    from source
    where payment_id is not null and customer_id is not null and paid_at is not null
),

deduplicated as (
    select
        *,
        row_number() over (partition by payment_id order by _batch_date desc) as version_rank
    from renamed
),

final as (
    select
        payment_id,
        invoice_id,
        customer_id,
        amount,
        status,
        paid_at,
        payment_date,
        _batch_date
    from deduplicated
    where version_rank = 1
)

select * from final
