{#- One row per customer and day with billing activity: invoiced and paid amounts,
    late and failed payments, plan changes. -#}
with invoices as (
    select * from {{ ref('stg_bronze__invoices') }}
),

payments as (
    select * from {{ ref('stg_bronze__payments') }}
),

subscriptions as (
    select * from {{ ref('stg_bronze__subscriptions') }}
),

ranked_subscriptions as (
    select
        *,
        row_number() over (partition by customer_id order by start_date, subscription_id)
            as subscription_number
    from subscriptions
),

activity as (
    select
        customer_id,
        invoice_date as activity_date,
        amount as invoiced_amount,
        cast(0 as double) as paid_amount,
        0 as late_payments,
        0 as failed_payments,
        0 as plan_changes,
        amount as last_invoice_amount,
        _batch_date
    from invoices
    union all
    select
        customer_id,
        payment_date as activity_date,
        0 as invoiced_amount,
        case when status in ('on_time', 'late') then amount else 0 end as paid_amount,
        case when status = 'late' then 1 else 0 end as late_payments,
        case when status = 'failed' then 1 else 0 end as failed_payments,
        0 as plan_changes,
        cast(null as double) as last_invoice_amount,
        _batch_date
    from payments
    union all
    -- a plan change is known from the batch that first brought the new subscription,
    -- not from its latest version (which lands when it ends)
    select
        customer_id,
        start_date as activity_date,
        0 as invoiced_amount,
        0 as paid_amount,
        0 as late_payments,
        0 as failed_payments,
        1 as plan_changes,
        cast(null as double) as last_invoice_amount,
        first_batch_date as _batch_date
    from ranked_subscriptions
    where subscription_number > 1
),

final as (
    select
        customer_id,
        activity_date,
        sum(invoiced_amount) as invoiced_amount,
        sum(paid_amount) as paid_amount,
        cast(sum(late_payments) as bigint) as late_payments,
        cast(sum(failed_payments) as bigint) as failed_payments,
        cast(sum(plan_changes) as bigint) as plan_changes,
        max(last_invoice_amount) as last_invoice_amount,
        max(_batch_date) as last_batch_date
    from activity
    group by customer_id, activity_date
)

select * from final
