{#- Several columns' rules of one model checked in one query.

    One data test per rule and column (not_null, unique, unique_combination_of_columns,
    accepted_range, accepted_values, expression_is_true) means one query, and one scan of
    the model, each: a feature mart with twenty rules cost twenty Spark queries in every
    build.  This test checks them all in one scan (a uniqueness rule adds a window over the
    key), with the same meaning as each single test:

      not_null:        [column, ...]                      the column is not null
      unique:          [column or [column, ...], ...]     no two rows share the column
                                                           (nulls aside, as in unique) or
                                                           the combination (nulls too, as
                                                           in unique_combination_of_columns)
      ranges:          {column: {min_value, max_value}}    inclusive bounds; null passes
      accepted_values: {column: [value, ...]}              one of the values; null passes
      expressions:     [sql, ...]                          true for every row (null fails,
                                                           as in expression_is_true)

    It returns each failing row with `failed_rules`, the rules it breaks ("sms_7d < 0;
    customer_id is null"), so `dbt test --store-failures` shows what failed where. -#}

{% test column_rules(
    model, not_null=[], unique=[], ranges={}, accepted_values={}, expressions=[]
) %}
{%- set failed = [] -%}
{%- set labels = {} -%}
{%- for column in not_null -%}
    {%- do failed.append(column ~ " is null") -%}
{%- endfor -%}
{%- for key in unique -%}
    {%- if key is string -%}
        {%- do failed.append(key ~ " is not null and count(*) over (partition by " ~ key ~ ") > 1") -%}
        {%- do labels.update({failed | length - 1: key ~ " is not unique"}) -%}
    {%- else -%}
        {%- do failed.append("count(*) over (partition by " ~ key | join(", ") ~ ") > 1") -%}
        {%- do labels.update({failed | length - 1: "(" ~ key | join(", ") ~ ") is not unique"}) -%}
    {%- endif -%}
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
            {%- set label = labels.get(loop.index0, condition) %}
            case when {{ condition }} then '{{ label | replace("\\", "\\\\") | replace("'", "\\'") }}' end
            {%- if not loop.last %},{% endif %}
            {%- endfor %}
        ) as failed_rules
    from {{ model }}
)

select *
from checked
where failed_rules != ''
{% endtest %}
