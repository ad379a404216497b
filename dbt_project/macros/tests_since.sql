{#- Tests of the tables that grow every day may check only the rows that the batches of
    a run can have changed.  `--vars '{tests_since: "2026-03-01"}'` (the daily job passes
    the first batch date it ingested) turns a test's `where: "<column> >= __tests_since__"`
    into that filter; without the var every row is checked, as a plain `dbt build` does.
    Rows are chosen by when the lake learnt them (_batch_date, created_timestamp), so a
    late event that changes an older feature row brings that row into scope. -#}

{% macro tests_since() -%}
    {%- set since = var('tests_since', none) -%}
    {%- if since is none or since == '' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', since | string) -%}
        {{ exceptions.raise_compiler_error(
            "var tests_since must be a date (YYYY-MM-DD), got '" ~ since ~ "'") }}
    {%- endif -%}
    {{ return("timestamp'" ~ since ~ " 00:00:00'") }}
{%- endmacro %}

{#- `and <column> >= <tests_since>` for singular tests, or nothing. -#}
{% macro and_since(column) -%}
    {%- set since = tests_since() -%}
    {%- if since is not none %} and {{ column }} >= {{ since }}{% endif -%}
{%- endmacro %}

{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') or '' -%}
    {%- if '__tests_since__' in where -%}
        {%- set since = tests_since() -%}
        {%- if since is none -%}
            {{ return(relation) }}
        {%- endif -%}
        {%- set where = where | replace('__tests_since__', since) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}
