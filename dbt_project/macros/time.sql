{#- The instant a day's values become known: the last second of that day (UTC). -#}
{% macro end_of_day(date_expr) -%}
    timestampadd(SECOND, 86399, cast({{ date_expr }} as timestamp))
{%- endmacro %}

{#- When a feature row's values were known: the end of its day, or the end of the latest
    landing batch its windows contain when that came later (a late file re-stating the past);
    with no batch recorded, the end of its day.  Feast's created_timestamp of every mart. -#}
{% macro created_timestamp(date_expr, last_batch_expr) -%}
    greatest(
            {{ end_of_day(date_expr) }},
            coalesce({{ end_of_day(last_batch_expr) }}, {{ end_of_day(date_expr) }})
        )
{%- endmacro %}

{#- Whole days since 1970-01-01: an integer to order range windows by. -#}
{% macro day_number(date_expr) -%}
    unix_date(cast({{ date_expr }} as date))
{%- endmacro %}
