{#- The instant a day's values become known: the last second of that day (UTC). -#}
{% macro end_of_day(date_expr) -%}
    timestampadd(SECOND, 86399, cast({{ date_expr }} as timestamp))
{%- endmacro %}

{#- Whole days since 1970-01-01: an integer to order range windows by. -#}
{% macro day_number(date_expr) -%}
    unix_date(cast({{ date_expr }} as date))
{%- endmacro %}
