{#- Fails when the newest value of column_name is older than interval units before
    the reference instant (now, or the newest value of reference_column in the same model). -#}
{% test recency(model, column_name, interval, datepart='day', reference=none) %}
with newest as (
    select max({{ column_name }}) as newest_at
    from {{ model }}
),

final as (
    select *
    from newest
    where newest_at is null
       or timestampadd({{ datepart | upper }}, {{ interval }}, newest_at)
          < {{ reference if reference else 'current_timestamp()' }}
)

select * from final
{% endtest %}
