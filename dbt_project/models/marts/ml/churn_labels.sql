{#- One row per active customer and snapshot date: did the customer cancel within the
    30 days after the snapshot?  Built only from events after the snapshot; customers
    gone by the snapshot are not labelled, and snapshots whose 30-day horizon has not
    been fully landed yet are left out.  next_invoice_amount (the first invoice issued
    in the 31 days after the snapshot) is the target of the invoice regression. -#}
with spine as (
    select * from {{ ref('int_customer_days_spanned') }}
),

churn_events as (
    select * from {{ ref('stg_bronze__churn_events') }}
),

invoices as (
    select * from {{ ref('stg_bronze__invoices') }}
),

lake_bounds as (
    select
        min(feature_date) as first_day,
        max(feature_date) as last_day
    from spine
),

snapshots as (
    select
        spine.customer_id,
        spine.feature_date as snapshot_date
    from spine
    cross join lake_bounds
    where pmod(
            datediff(spine.feature_date, lake_bounds.first_day),
            {{ var('label_snapshot_every_days', 7) }}
        ) = 0
        and datediff(spine.feature_date, lake_bounds.first_day)
        >= {{ var('label_min_history_days', 28) }}
        and date_add(spine.feature_date, 30) <= lake_bounds.last_day
),

invoices_after_snapshots as (
    select
        snapshots.customer_id,
        snapshots.snapshot_date,
        invoices.amount,
        row_number() over (
            partition by snapshots.customer_id, snapshots.snapshot_date
            order by invoices.invoice_date, invoices.invoice_id
        ) as invoice_rank
    from snapshots
    inner join invoices
        on snapshots.customer_id = invoices.customer_id
            and snapshots.snapshot_date < invoices.invoice_date
            and invoices.invoice_date <= date_add(snapshots.snapshot_date, 31)
),

next_invoices as (
    select
        customer_id,
        snapshot_date,
        amount as next_invoice_amount
    from invoices_after_snapshots
    where invoice_rank = 1
),

final as (
    select
        snapshots.customer_id,
        snapshots.snapshot_date,
        {{ end_of_day('snapshots.snapshot_date') }} as event_timestamp,
        cast(
            case
                when churn_events.churn_date > snapshots.snapshot_date
                    and churn_events.churn_date <= date_add(snapshots.snapshot_date, 30)
                    then 1
                else 0
            end as int
        ) as churned_within_30d,
        cast(next_invoices.next_invoice_amount as double) as next_invoice_amount
    from snapshots
    left join churn_events on snapshots.customer_id = churn_events.customer_id
    left join next_invoices
        on snapshots.customer_id = next_invoices.customer_id
            and snapshots.snapshot_date = next_invoices.snapshot_date
    where churn_events.churn_date is null or churn_events.churn_date > snapshots.snapshot_date
)

select * from final
