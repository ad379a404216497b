{#- The first day an incremental run of a feature mart recomputes: the earliest day that
    records landed since the last run can change, or the first new day, whichever is
    earlier.  The mart passes the candidates as `first_touched` SQL: one or more one-row
    aggregates (`select min(...) as first_touched_date ... union all ...`), which may read
    `loaded` (the mart's loaded_through, the end of the latest batch its rows contain, and
    last_feature_date).

    The run asks for the day first, in a query of its own, and the mart's SQL gets it as a
    date literal: written as a CTE the mart reads in several places, Spark would inline the
    candidates' scans into each of them (hundreds of scans to plan in the billing mart), and
    a literal lets Delta skip the files and partitions before it.  dbt's unit tests mock the
    mart's inputs inside the one query, so there the same SQL stays a scalar subquery.  An
    empty mart gives null: nothing is recomputed, as before. -#}
{% macro recompute_from(first_touched) -%}
    {%- set window_sql -%}
        with loaded as (
            select
                max(created_timestamp) as loaded_through,
                max(feature_date) as last_feature_date
            from {{ this }}
        ),

        new_records as (
            {{ first_touched }}
        )

        select
            least(
                coalesce(
                    min(new_records.first_touched_date), date_add(max(loaded.last_feature_date), 1)
                ),
                date_add(max(loaded.last_feature_date), 1)
            ) as recompute_from
        from loaded
        cross join new_records
    {%- endset -%}
    {%- if not execute -%}
        {{ return("cast(null as date)") }}
    {%- elif model.resource_type == 'unit_test' -%}
        {{ return("(" ~ window_sql ~ ")") }}
    {%- endif -%}
    {%- set day = run_query(window_sql).columns[0].values()[0] -%}
    {%- if day is none -%}
        {{ return("cast(null as date)") }}
    {%- endif -%}
    {{ return("date'" ~ (day | string)[:10] ~ "'") }}
{%- endmacro %}
