{#- A stable key from several columns: nulls and separators cannot collide. -#}
{% macro surrogate_key(columns) -%}
    sha2(to_json(named_struct(
    {%- for column in columns %}
        '{{ column }}', {{ column }}{{ "," if not loop.last }}
    {%- endfor %}
    )), 256)
{%- endmacro %}
