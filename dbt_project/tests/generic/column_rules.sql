{#- Several columns' rules of one model checked in one query.

    One data test per rule and column (not_null, accepted_range, accepted_values,
    expression_is_true) means one query, and one scan of the model, each: a feature mart
    with twenty rules cost twenty Spark queries in every build.  This test checks them all
    in one scan, with the same meaning as each single test:

      not_null:        [column, ...]                      the column is not null
      ranges:          {column: {min_value, max_value}}    inclusive bounds; null passes
      accepted_values: {column: [value, ...]}              one of the values; null passes
      expressions:     [sql, ...]                          true for every row (null fails,
                                                           as in expression_is_true)

    It returns each failing row with `failed_rules`, the rules it breaks ("sms_7d < 0;
    customer_id is null"), so `dbt test --store-failures` shows what failed where. -#}

{% test column_rules(model, not_null=[], ranges={}, accepted_values={}, expressions=[]) %}
{%- set failed = [] -%}
{%- for column in not_null -%}
    {%- do failed.append(column ~ " is null") -%}
{%- endfor -%}
{%- for column, bounds in ranges.items() -%}
    {%- if bounds.min_value is defined and bounds.min_value is not none -%}
        {%- do failed.append(column ~ " < " ~ bounds.min_value) -%}
    {%- endif -%}
    {%- if bounds.max_value is defined and bounds.max_value is not none -%}
        {%- do failed.append(column ~ " > " ~ bounds.max_value) -%}
    {%- endif -%}
{%- endfor -%}
{%- for column, values in accepted_values.items() -%}
    {%- set listed = [] -%}
    {%- for value in values -%}
        {%- do listed.append("'" ~ value ~ "'" if value is string else value | string) -%}
    {%- endfor -%}
    {%- do failed.append(column ~ " not in (" ~ listed | join(", ") ~ ")") -%}
{%- endfor -%}
{%- for expression in expressions -%}
    {%- do failed.append("not coalesce((" ~ expression ~ "), false)") -%}
{%- endfor -%}
{%- if not failed -%}
    {{ exceptions.raise_compiler_error("column_rules of " ~ model ~ " names no rule") }}
{%- endif -%}
with checked as (
    select
        *,
        concat_ws(
            '; ',
            {%- for condition in failed %}
            case when {{ condition }} then '{{ condition | replace("\\", "\\\\") | replace("'", "\\'") }}' end
            {%- if not loop.last %},{% endif %}
            {%- endfor %}
        ) as failed_rules
    from {{ model }}
)

select *
from checked
where failed_rules != ''
{% endtest %}
