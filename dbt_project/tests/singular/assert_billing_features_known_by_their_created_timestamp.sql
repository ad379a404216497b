{#- A billing feature row may only be created (become visible to point-in-time reads) by
    the landing of records dated on or before its feature date: invoices, payments and
    subscription versions.  A row whose created_timestamp is later read a record from
    the future; the ended subscription a churn sends, for one, lands on the churn date and
    once made every earlier row of a churner invisible until then, which told a model who
    was about to churn.  With the var tests_since, only the rows created since then. -#}
with billing as (
    select customer_id, feature_date, created_timestamp
    from {{ ref('customer_billing') }}
    where true{{ and_since('created_timestamp') }}
),

landings as (
    select customer_id, invoice_date as record_date, _batch_date
    from {{ ref('stg_bronze__invoices') }}
    union all
    select customer_id, payment_date, _batch_date
    from {{ ref('stg_bronze__payments') }}
    union all
    select customer_id, to_date(updated_at), _batch_date
    from {{ ref('stg_bronze__subscription_versions') }}
),

known as (
    select
        billing.customer_id,
        billing.feature_date,
        billing.created_timestamp,
        max(landings._batch_date) as last_landing
    from billing
    left join landings
        on billing.customer_id = landings.customer_id
        and landings.record_date <= billing.feature_date
    group by billing.customer_id, billing.feature_date, billing.created_timestamp
)

select *
from known
where created_timestamp > {{ created_timestamp('feature_date', 'last_landing') }}
