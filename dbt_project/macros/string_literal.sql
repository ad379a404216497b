{#- `text` as a Spark SQL string literal: quoted, its backslashes and quotes escaped. -#}
{% macro spark_string_literal(text) -%}
    '{{ text | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
{%- endmacro %}
