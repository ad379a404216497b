{#- Several columns' rules of one model checked in one query.

    One data test per rule and column (not_null, unique, unique_combination_of_columns,
    accepted_range, accepted_values, expression_is_true) means one query, and one scan of
    the model, each: a feature mart with twenty rules cost twenty Spark queries in every
    build.  This test checks them all in one query, with the meaning each single test had:

      not_null:        [column, ...]                 not null (as not_null)
      unique:          [column or [column, ...]]     no two rows share the column, nulls
                                                      aside (as unique), or the
                                                      combination, nulls alike (as
                                                      unique_combination_of_columns)
      ranges:          {column: {min_value, max_value}}
                                                      inclusive bounds, null passes (as
                                                      accepted_range)
      accepted_values: {column: [value, ...]}        one of the values, null passes (as
                       or {column: {values: [...], quote: false}}   accepted_values;
                                                      quoted unless quote is false)
      expressions:     [sql, ...]                    true for every row, null fails (as
                                                      expression_is_true)

    A key's repeated values are found by an aggregate of the key alone, joined back.  The
    test returns each failing row with `failed_rules`, the rules it breaks ("sms_7d < 0;
    customer_id is null"), so `dbt test --store-failures` shows what failed where. -#}

{% test column_rules(
    model, not_null=[], unique=[], ranges={}, accepted_values={}, expressions=[]
) %}
{%- set rules = [] -%}
{%- for column in not_null -%}
    {%- do rules.append((column ~ " is null", column ~ " is null")) -%}
{%- endfor -%}
{%- set keys = [] -%}
{%- for key in unique -%}
    {%- set columns = [key] if key is string else key -%}
    {%- do keys.append(columns) -%}
    {%- do rules.append((
        "_repeated_" ~ loop.index0 ~ "._repeated",
        (key if key is string else "(" ~ columns | join(", ") ~ ")") ~ " is not unique"
    )) -%}
{%- endfor -%}
{%- for column, bounds in ranges.items() -%}
    {%- set unknown = bounds.keys() | reject("in", ["min_value", "max_value"]) | list -%}
    {%- if unknown or (bounds.get("min_value") is none and bounds.get("max_value") is none) -%}
        {{ exceptions.raise_compiler_error(
            "column_rules of " ~ model ~ ": the range of " ~ column ~ " takes min_value "
            ~ "and/or max_value, got " ~ bounds) }}
    {%- endif -%}
    {%- for bound, broken in (("min_value", " < "), ("max_value", " > ")) -%}
        {%- if bounds.get(bound) is not none -%}
            {%- set condition = column ~ broken ~ bounds.get(bound) -%}
            {%- do rules.append((condition, condition)) -%}
        {%- endif -%}
    {%- endfor -%}
{%- endfor -%}
{%- for column, allowed in accepted_values.items() -%}
    {%- set quote = allowed.get("quote", true) if allowed is mapping else true -%}
    {%- set values = allowed["values"] if allowed is mapping else allowed -%}
    {%- set listed = [] -%}
    {%- for value in values -%}
        {%- if quote -%}
            {%- do listed.append(spark_string_literal(value)) -%}
        {%- else -%}
            {%- do listed.append(value | string) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set condition = column ~ " not in (" ~ listed | join(", ") ~ ")" -%}
    {%- do rules.append((condition, condition)) -%}
{%- endfor -%}
{%- for expression in expressions -%}
    {%- do rules.append(("not coalesce((" ~ expression ~ "), false)", "not (" ~ expression ~ ")")) -%}
{%- endfor -%}
{%- if not rules -%}
    {{ exceptions.raise_compiler_error("column_rules of " ~ model ~ " names no rule") }}
{%- endif -%}
with source as (
    select * from {{ model }}
),
{%- for columns in keys %}
{%- set key = loop.index0 %}

repeated_{{ key }} as (
    select
        {%- for column in columns %}
        {{ column }} as _key_{{ loop.index0 }},
        {%- endfor %}
        true as _repeated
    from source
    {%- if columns | length == 1 %}
    where {{ columns[0] }} is not null
    {%- endif %}
    group by {{ columns | join(", ") }}
    having count(*) > 1
),
{%- endfor %}

checked as (
    select
        source.*,
        concat_ws(
            '; ',
            {%- for condition, label in rules %}
            case when {{ condition }} then {{ spark_string_literal(label) }} end
            {%- if not loop.last %},{% endif %}
            {%- endfor %}
        ) as failed_rules
    from source
    {%- for columns in keys %}
    {%- set key = loop.index0 %}
    left join repeated_{{ key }} as _repeated_{{ key }}
        on
        {%- for column in columns %}
        {% if not loop.first %}and {% endif %}source.{{ column }} <=> _repeated_{{ key }}._key_{{ loop.index0 }}
        {%- endfor %}
    {%- endfor %}
)

select *
from checked
where failed_rules != ''
{% endtest %}
