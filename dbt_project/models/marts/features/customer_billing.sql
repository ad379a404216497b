{{
    config(
        materialized='incremental',
        incremental_strategy='insert_overwrite',
        partition_by=['feature_date'],
        on_schema_change='fail',
    )
}}

{#- One row per customer per active day: contract, plan price and its change over
    three months, payment behaviour over 90 days, open balance, plan changes.

    Incremental as the usage mart: runs recompute from the earliest day that batches
    landed since the last run can change (a billing record's day and its earlier copy's,
    the first day a new subscription version or plan price applies, every day of a
    customer whose signup date was restated) or the first new day, whichever is earlier.
    They read 364 days of history before it for the 365-day window (the subscriptions and
    prices of 90 days, for the charge's change over 90 days) and carry each customer's
    open balance and last invoice from before that history; they overwrite the recomputed
    days' feature_date partitions (macros/recompute_from.sql gives the first of them).
    Not seen: a subscription sent again with an earlier start, or one backdated before
    another, moves a plan change to a day before its batch; rerun with --full-refresh
    after such a correction. -#}
with spine as (
    select * from {{ ref('int_customer_days_spanned') }}
),

customers as (
    select * from {{ ref('stg_bronze__customers') }}
),

subscription_versions as (
    select * from {{ ref('stg_bronze__subscription_versions') }}
),

plans as (
    select * from {{ ref('stg_bronze__plans') }}
),

billing_daily as (
    select * from {{ ref('int_billing_events_summed_daily') }}
),

{% if is_incremental() %}
    {#- The first day each kind of newly landed record can change. -#}
    {%- set first_touched -%}
        select min(billing_daily.activity_date) as first_touched_date
        from {{ ref('int_billing_events_summed_daily') }} as billing_daily
        cross join loaded
        where {{ end_of_day('billing_daily.last_batch_date') }} > loaded.loaded_through
        union all
        select min(greatest(versions._batch_date, versions.start_date))
        from {{ ref('stg_bronze__subscription_versions') }} as versions
        cross join loaded
        where {{ end_of_day('versions._batch_date') }} > loaded.loaded_through
        union all
        select min(plans.effective_from)
        from {{ ref('stg_bronze__plans') }} as plans
        cross join loaded
        where {{ end_of_day('plans._batch_date') }} > loaded.loaded_through
        union all
        -- an invoice or a payment sent again (the latest copy wins) also changes the day
        -- of its earlier copy
        select min(cast(copies.invoice_date as date))
        from {{ source('bronze', 'invoices') }} as copies
        inner join {{ source('bronze', 'invoices') }} as landed
            on copies.invoice_id = landed.invoice_id
        cross join loaded
        where {{ end_of_day('landed._batch_date') }} > loaded.loaded_through
        union all
        select min(to_date(copies.paid_at))
        from {{ source('bronze', 'payments') }} as copies
        inner join {{ source('bronze', 'payments') }} as landed
            on copies.payment_id = landed.payment_id
        cross join loaded
        where {{ end_of_day('landed._batch_date') }} > loaded.loaded_through
        union all
        -- a customer's record landed again with another signup date (the tenure of every
        -- day); a changed segment or region, the usual update, changes nothing here
        select min(spine.feature_date)
        from {{ ref('int_customer_days_spanned') }} as spine
        inner join {{ source('bronze', 'customers') }} as landed
            on spine.customer_id = cast(landed.customer_id as bigint)
        inner join {{ source('bronze', 'customers') }} as copies
            on landed.customer_id = copies.customer_id
        cross join loaded
        where {{ end_of_day('landed._batch_date') }} > loaded.loaded_through
            and cast(landed.signup_date as date) != cast(copies.signup_date as date)
    {%- endset -%}
    {%- set recompute_day = recompute_from(first_touched) -%}
{% endif %}

-- What the unbounded windows saw before the history read (nothing in a full refresh,
-- which reads all of it): each customer's invoiced and paid sums and latest invoice,
-- over active days.
earlier_billing as (
    select
        billing_daily.customer_id,
        sum(billing_daily.invoiced_amount) as invoiced_amount,
        sum(billing_daily.paid_amount) as paid_amount,
        max_by(billing_daily.last_invoice_amount, billing_daily.activity_date)
        filter (where billing_daily.last_invoice_amount is not null)
            as last_invoice_amount
    from billing_daily
    inner join spine
        on billing_daily.customer_id = spine.customer_id
            and billing_daily.activity_date = spine.feature_date
    {% if is_incremental() %}
        where billing_daily.activity_date < date_sub({{ recompute_day }}, 364)
    {% else %}
        where false
    {% endif %}
    group by billing_daily.customer_id
),

spine_in_scope as (
    select spine.*
    from spine
    {% if is_incremental() %}
        where spine.feature_date >= date_sub({{ recompute_day }}, 364)
    {% endif %}
),

-- The days whose subscription and price the rows recomputed read (90 days back at most).
spine_priced as (
    select spine.*
    from spine
    {% if is_incremental() %}
        where spine.feature_date >= date_sub({{ recompute_day }}, 90)
    {% endif %}
),

-- Point in time: each subscription as the lake knew it on the feature date (its latest
-- version landed by then), never a later version such as the one a churn sends.
subscription_versions_ranked as (
    select
        spine.customer_id,
        spine.feature_date,
        versions.subscription_id,
        versions.plan_id,
        versions.contract_type,
        versions.start_date,
        versions.end_date,
        versions._batch_date,
        row_number() over (
            partition by spine.customer_id, spine.feature_date, versions.subscription_id
            order by versions.updated_at desc, versions._batch_date desc
        ) as version_rank
    from spine_priced as spine
    inner join subscription_versions as versions
        on spine.customer_id = versions.customer_id
            and spine.feature_date >= versions._batch_date
            and spine.feature_date >= versions.start_date
),

known_subscriptions as (
    select * from subscription_versions_ranked
    where version_rank = 1
),

subscriptions_ranked as (
    select
        customer_id,
        feature_date,
        plan_id,
        contract_type,
        _batch_date as subscription_batch_date,
        row_number() over (
            partition by customer_id, feature_date
            order by start_date desc, subscription_id desc
        ) as subscription_rank
    from known_subscriptions
    where end_date is null or end_date >= feature_date
),

current_subscription as (
    select
        customer_id,
        feature_date,
        plan_id,
        contract_type,
        subscription_batch_date
    from subscriptions_ranked
    where subscription_rank = 1
),

prices_ranked as (
    select
        current_subscription.customer_id,
        current_subscription.feature_date,
        plans.monthly_price,
        row_number() over (
            partition by current_subscription.customer_id, current_subscription.feature_date
            order by plans.effective_from desc
        ) as price_rank
    from current_subscription
    inner join plans
        on current_subscription.plan_id = plans.plan_id
            and current_subscription.feature_date >= plans.effective_from
),

current_price as (
    select
        customer_id,
        feature_date,
        monthly_price
    from prices_ranked
    where price_rank = 1
),

filled as (
    select
        spine.customer_id,
        spine.feature_date,
        {{ day_number('spine.feature_date') }} as day_number,
        customers.signup_date,
        current_subscription.contract_type,
        current_price.monthly_price,
        coalesce(billing_daily.invoiced_amount, 0) as invoiced_amount,
        coalesce(billing_daily.paid_amount, 0) as paid_amount,
        coalesce(billing_daily.late_payments, 0) as late_payments,
        coalesce(billing_daily.failed_payments, 0) as failed_payments,
        coalesce(billing_daily.plan_changes, 0) as plan_changes,
        billing_daily.last_invoice_amount,
        greatest(
            coalesce(billing_daily.last_batch_date, spine.feature_date),
            coalesce(current_subscription.subscription_batch_date, spine.feature_date)
        ) as last_batch_date,
        coalesce(earlier_billing.invoiced_amount, 0) as earlier_invoiced_amount,
        coalesce(earlier_billing.paid_amount, 0) as earlier_paid_amount,
        earlier_billing.last_invoice_amount as earlier_last_invoice_amount
    from spine_in_scope as spine
    inner join customers on spine.customer_id = customers.customer_id
    left join current_subscription
        on spine.customer_id = current_subscription.customer_id
            and spine.feature_date = current_subscription.feature_date
    left join current_price
        on spine.customer_id = current_price.customer_id
            and spine.feature_date = current_price.feature_date
    left join billing_daily
        on spine.customer_id = billing_daily.customer_id
            and spine.feature_date = billing_daily.activity_date
    left join earlier_billing on spine.customer_id = earlier_billing.customer_id
),

windowed as (
    select
        *,
        first_value(monthly_price) over w_90_days_ago as monthly_charge_90d_ago,
        sum(late_payments) over w90 as late_payments_90d,
        sum(failed_payments) over w90 as failed_payments_90d,
        sum(plan_changes) over w365 as plan_changes_365d,
        (earlier_invoiced_amount + sum(invoiced_amount) over w_all)
        - (earlier_paid_amount + sum(paid_amount) over w_all) as open_balance,
        coalesce(last_value(last_invoice_amount, true) over w_all, earlier_last_invoice_amount)
            as last_invoice_amount_to_date,
        max(last_batch_date) over w90 as last_batch_date_90d
    from filled
    window
        w90 as (partition by customer_id order by day_number range between 89 preceding and current row),
        w365 as (partition by customer_id order by day_number range between 364 preceding and current row),
        w_all as (
            partition by customer_id order by day_number
            range between unbounded preceding and current row
        ),
        w_90_days_ago as (
            partition by customer_id order by day_number
            range between 90 preceding and 90 preceding
        )
),

final as (
    select
        customer_id,
        feature_date,
        {{ end_of_day('feature_date') }} as event_timestamp,
        {{ created_timestamp('feature_date', 'last_batch_date_90d') }} as created_timestamp,
        cast(datediff(feature_date, signup_date) as int) as tenure_days,
        contract_type,
        cast(monthly_price as double) as monthly_charge,
        cast(monthly_price - monthly_charge_90d_ago as double) as monthly_charge_change_90d,
        cast(late_payments_90d as bigint) as late_payments_90d,
        cast(failed_payments_90d as bigint) as failed_payments_90d,
        cast(round(open_balance, 2) as double) as open_balance,
        cast(plan_changes_365d as bigint) as plan_changes_365d,
        cast(last_invoice_amount_to_date as double) as last_invoice_amount
    from windowed
    {% if is_incremental() %}
        where feature_date >= {{ recompute_day }}
    {% endif %}
)

select * from final
