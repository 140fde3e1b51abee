-- A version for every stored rollup row, so that the summary can keep the latency buckets of
-- rows it has already read (src/query/sketch-cache.ts) and ask PostgreSQL for the arrays of the
-- rows that changed only. A 7-day summary at 1M events read ~90k bucket counts as array text,
-- most of its time, though finished days rarely change.
--
-- The version is the row's xmin: every insert and update (compaction, ingest, a rebuild's
-- delete and insert) writes a row version with the xmin of its transaction, and freezing keeps
-- the raw value. Rows of log_rollup_pending have none (null): they are always read.
-- The views gain the column at their end (create or replace keeps the others as they are).
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

create or replace view log_latency_1h as
  select bucket, lat_idx, lat_cnt, xmin::text::bigint as row_version from log_latency_1h_store
  union all
  select date_trunc('hour', bucket, 'UTC'), lat_idx, lat_cnt, null::bigint
  from log_rollup_pending;
create or replace view log_latency_1d as
  select bucket, lat_idx, lat_cnt, xmin::text::bigint as row_version from log_latency_1d_store
  union all
  select date_trunc('day', bucket, 'UTC'), lat_idx, lat_cnt, null::bigint
  from log_rollup_pending;
