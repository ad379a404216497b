{#- One row per customer per active day: contract, plan price and its change over
    three months, payment behaviour over 90 days, open balance, plan changes. -#}
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
    from spine
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
        ) as last_batch_date
    from spine
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
),

windowed as (
    select
        *,
        first_value(monthly_price) over w_90_days_ago as monthly_charge_90d_ago,
        sum(late_payments) over w90 as late_payments_90d,
        sum(failed_payments) over w90 as failed_payments_90d,
        sum(plan_changes) over w365 as plan_changes_365d,
        sum(invoiced_amount) over w_all - sum(paid_amount) over w_all as open_balance,
        last_value(last_invoice_amount, true) over w_all as last_invoice_amount_to_date,
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
)

select * from final
