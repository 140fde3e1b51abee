-- The rollup read views as they are now (a repeatable migration, like R__rollup_functions.sql:
-- edit it here; a changed column list or type needs `drop view if exists` first, as
-- create or replace view can only add columns at the end).
--
-- Each tier view is its table plus the pending deltas re-bucketed, so every read is exact and
-- consistent within its statement: a delta is either pending or compacted, never both, never
-- neither. Count maps are built for deltas with one status code and event type each (since
-- 008); deltas keep event_other 0 (each holds one type). row_version is the stored row's xmin:
-- every insert and update (compaction, a rebuild's delete and insert) writes a row version with
-- its transaction's xmin, and freezing keeps the raw value, so the summary keeps the latency
-- buckets of rows it has read (src/query/sketch-cache.ts) and asks for changed rows only.
-- Pending rows have none (null): they are always read.
do $do$
declare
  tier record;
begin
  for tier in
    select * from (values ('log_rollup_1m', 'minute'), ('log_rollup_1h', 'hour'),
                          ('log_rollup_1d', 'day')) t (name, unit)
  loop
    execute format($v$
      create or replace view %1$I as
        select service_id, bucket, count, errors, latency_sum, lat_min, lat_max, lat_idx,
          lat_cnt, status_counts, event_counts, event_other, xmin::text::bigint as row_version
        from %2$I
        union all
        select service_id, date_trunc(%3$L, bucket, 'UTC'), count, errors, latency_sum, lat_min,
          lat_max, lat_idx, lat_cnt,
          coalesce(status_counts, jsonb_build_object(status_code::text, count)),
          coalesce(event_counts, case when event_type is null then '{}'::jsonb
                                      else jsonb_build_object(event_type, count) end),
          0::bigint, null::bigint
        from log_rollup_pending
    $v$, tier.name, tier.name || '_store', tier.unit);
  end loop;
end;
$do$;

-- All services together, per hour and per day: the latency buckets only (the series' use).
do $do$
declare
  tier record;
begin
  for tier in
    select * from (values ('log_latency_1h', 'hour'), ('log_latency_1d', 'day')) t (name, unit)
  loop
    execute format($v$
      create or replace view %1$I as
        select bucket, lat_idx, lat_cnt, xmin::text::bigint as row_version from %2$I
        union all
        select date_trunc(%3$L, bucket, 'UTC'), lat_idx, lat_cnt, null::bigint
        from log_rollup_pending
    $v$, tier.name, tier.name || '_store', tier.unit);
  end loop;
end;
$do$;
