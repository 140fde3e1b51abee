-- Rollups without hot rows. Upserting the same (service, minute/hour/day) rows from every
-- ingest transaction serialised writers on those rows and cost several upserts per event.
-- Now ingest appends its per-minute deltas to log_rollup_pending (no keys, no indexes: the
-- cheapest insert there is), and observian_rollup_compact() folds them into the tier tables
-- about once a second. Readers use views with the tables' old names, each the tier table
-- plus the pending deltas re-bucketed, so every read is exact and consistent within its
-- statement: a delta is either pending or compacted, never both, never neither.

alter table log_rollup_1m rename to log_rollup_1m_store;
alter table log_rollup_1h rename to log_rollup_1h_store;
alter table log_rollup_1d rename to log_rollup_1d_store;

-- Minute-bucket deltas, same columns as the tiers; several rows per (service, bucket).
create table log_rollup_pending (like log_rollup_1m_store including defaults);

create view log_rollup_1m as
  select service_id, bucket, count, errors, latency_sum, h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, status_counts, event_counts from log_rollup_1m_store
  union all
  select service_id, bucket, count, errors, latency_sum, h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, status_counts, event_counts
  from log_rollup_pending;

create view log_rollup_1h as
  select service_id, bucket, count, errors, latency_sum, h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, status_counts, event_counts from log_rollup_1h_store
  union all
  select service_id, date_trunc('hour', bucket, 'UTC'), count, errors, latency_sum, h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, status_counts, event_counts
  from log_rollup_pending;

create view log_rollup_1d as
  select service_id, bucket, count, errors, latency_sum, h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, status_counts, event_counts from log_rollup_1d_store
  union all
  select service_id, date_trunc('day', bucket, 'UTC'), count, errors, latency_sum, h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, status_counts, event_counts
  from log_rollup_pending;

-- Moves every pending delta into the three tiers in one statement; returns the deltas moved,
-- or -1 when another session is compacting (it will take these too). Deltas committed while
-- it runs are not in its snapshot and stay for the next run.
create function observian_rollup_compact()
returns bigint
language plpgsql as $fn$
declare
  moved_count bigint;
begin
  if not pg_try_advisory_xact_lock(7246330003) then
    return -1;
  end if;
  with moved as (delete from log_rollup_pending returning *),
  moved_status as (
    select service_id, bucket, k, sum(v::bigint) as n
    from moved, jsonb_each_text(status_counts) as kv (k, v) group by 1, 2, 3
  ),
  moved_events as (
    select service_id, bucket, k, sum(v::bigint) as n
    from moved, jsonb_each_text(event_counts) as kv (k, v) group by 1, 2, 3
  ),
  m as (
    insert into log_rollup_1m_store as r (service_id, bucket, count, errors, latency_sum, h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, status_counts, event_counts)
    select a.*, coalesce(s.m, '{}'::jsonb), coalesce(e.m, '{}'::jsonb)
    from (select service_id, bucket as bucket, sum(count)::bigint as count, sum(errors)::bigint as errors, sum(latency_sum) as latency_sum, sum(h00)::bigint as h00, sum(h01)::bigint as h01, sum(h02)::bigint as h02, sum(h03)::bigint as h03, sum(h04)::bigint as h04, sum(h05)::bigint as h05, sum(h06)::bigint as h06, sum(h07)::bigint as h07, sum(h08)::bigint as h08, sum(h09)::bigint as h09, sum(h10)::bigint as h10, sum(h11)::bigint as h11, sum(h12)::bigint as h12, sum(h13)::bigint as h13, sum(h14)::bigint as h14, sum(h15)::bigint as h15, sum(h16)::bigint as h16, sum(h17)::bigint as h17, sum(h18)::bigint as h18, sum(h19)::bigint as h19
          from moved group by 1, 2) a
    left join (select service_id, b as bucket, jsonb_object_agg(k, n) as m
               from (select service_id, bucket as b, k, sum(n) as n
                     from moved_status group by 1, 2, 3) x
               group by 1, 2) s using (service_id, bucket)
    left join (select service_id, b as bucket, jsonb_object_agg(k, n) as m
               from (select service_id, bucket as b, k, sum(n) as n
                     from moved_events group by 1, 2, 3) x
               group by 1, 2) e using (service_id, bucket)
    order by a.service_id, a.bucket
    on conflict (service_id, bucket) do update set
      count = r.count + excluded.count,
      errors = r.errors + excluded.errors,
      latency_sum = r.latency_sum + excluded.latency_sum,
      h00 = r.h00 + excluded.h00,
      h01 = r.h01 + excluded.h01,
      h02 = r.h02 + excluded.h02,
      h03 = r.h03 + excluded.h03,
      h04 = r.h04 + excluded.h04,
      h05 = r.h05 + excluded.h05,
      h06 = r.h06 + excluded.h06,
      h07 = r.h07 + excluded.h07,
      h08 = r.h08 + excluded.h08,
      h09 = r.h09 + excluded.h09,
      h10 = r.h10 + excluded.h10,
      h11 = r.h11 + excluded.h11,
      h12 = r.h12 + excluded.h12,
      h13 = r.h13 + excluded.h13,
      h14 = r.h14 + excluded.h14,
      h15 = r.h15 + excluded.h15,
      h16 = r.h16 + excluded.h16,
      h17 = r.h17 + excluded.h17,
      h18 = r.h18 + excluded.h18,
      h19 = r.h19 + excluded.h19,
      status_counts = r.status_counts || coalesce((select jsonb_object_agg(k, coalesce((r.status_counts ->> k)::bigint, 0)
      + v::bigint) from jsonb_each_text(excluded.status_counts) as t (k, v)), '{}'::jsonb),
      event_counts = r.event_counts || coalesce((select jsonb_object_agg(k, coalesce((r.event_counts ->> k)::bigint, 0)
      + v::bigint) from jsonb_each_text(excluded.event_counts) as t (k, v)), '{}'::jsonb)
    returning 1
  ),
  h as (
    insert into log_rollup_1h_store as r (service_id, bucket, count, errors, latency_sum, h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, status_counts, event_counts)
    select a.*, coalesce(s.m, '{}'::jsonb), coalesce(e.m, '{}'::jsonb)
    from (select service_id, date_trunc('hour', bucket, 'UTC') as bucket, sum(count)::bigint as count, sum(errors)::bigint as errors, sum(latency_sum) as latency_sum, sum(h00)::bigint as h00, sum(h01)::bigint as h01, sum(h02)::bigint as h02, sum(h03)::bigint as h03, sum(h04)::bigint as h04, sum(h05)::bigint as h05, sum(h06)::bigint as h06, sum(h07)::bigint as h07, sum(h08)::bigint as h08, sum(h09)::bigint as h09, sum(h10)::bigint as h10, sum(h11)::bigint as h11, sum(h12)::bigint as h12, sum(h13)::bigint as h13, sum(h14)::bigint as h14, sum(h15)::bigint as h15, sum(h16)::bigint as h16, sum(h17)::bigint as h17, sum(h18)::bigint as h18, sum(h19)::bigint as h19
          from moved group by 1, 2) a
    left join (select service_id, b as bucket, jsonb_object_agg(k, n) as m
               from (select service_id, date_trunc('hour', bucket, 'UTC') as b, k, sum(n) as n
                     from moved_status group by 1, 2, 3) x
               group by 1, 2) s using (service_id, bucket)
    left join (select service_id, b as bucket, jsonb_object_agg(k, n) as m
               from (select service_id, date_trunc('hour', bucket, 'UTC') as b, k, sum(n) as n
                     from moved_events group by 1, 2, 3) x
               group by 1, 2) e using (service_id, bucket)
    order by a.service_id, a.bucket
    on conflict (service_id, bucket) do update set
      count = r.count + excluded.count,
      errors = r.errors + excluded.errors,
      latency_sum = r.latency_sum + excluded.latency_sum,
      h00 = r.h00 + excluded.h00,
      h01 = r.h01 + excluded.h01,
      h02 = r.h02 + excluded.h02,
      h03 = r.h03 + excluded.h03,
      h04 = r.h04 + excluded.h04,
      h05 = r.h05 + excluded.h05,
      h06 = r.h06 + excluded.h06,
      h07 = r.h07 + excluded.h07,
      h08 = r.h08 + excluded.h08,
      h09 = r.h09 + excluded.h09,
      h10 = r.h10 + excluded.h10,
      h11 = r.h11 + excluded.h11,
      h12 = r.h12 + excluded.h12,
      h13 = r.h13 + excluded.h13,
      h14 = r.h14 + excluded.h14,
      h15 = r.h15 + excluded.h15,
      h16 = r.h16 + excluded.h16,
      h17 = r.h17 + excluded.h17,
      h18 = r.h18 + excluded.h18,
      h19 = r.h19 + excluded.h19,
      status_counts = r.status_counts || coalesce((select jsonb_object_agg(k, coalesce((r.status_counts ->> k)::bigint, 0)
      + v::bigint) from jsonb_each_text(excluded.status_counts) as t (k, v)), '{}'::jsonb),
      event_counts = r.event_counts || coalesce((select jsonb_object_agg(k, coalesce((r.event_counts ->> k)::bigint, 0)
      + v::bigint) from jsonb_each_text(excluded.event_counts) as t (k, v)), '{}'::jsonb)
    returning 1
  ),
  d as (
    insert into log_rollup_1d_store as r (service_id, bucket, count, errors, latency_sum, h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19, status_counts, event_counts)
    select a.*, coalesce(s.m, '{}'::jsonb), coalesce(e.m, '{}'::jsonb)
    from (select service_id, date_trunc('day', bucket, 'UTC') as bucket, sum(count)::bigint as count, sum(errors)::bigint as errors, sum(latency_sum) as latency_sum, sum(h00)::bigint as h00, sum(h01)::bigint as h01, sum(h02)::bigint as h02, sum(h03)::bigint as h03, sum(h04)::bigint as h04, sum(h05)::bigint as h05, sum(h06)::bigint as h06, sum(h07)::bigint as h07, sum(h08)::bigint as h08, sum(h09)::bigint as h09, sum(h10)::bigint as h10, sum(h11)::bigint as h11, sum(h12)::bigint as h12, sum(h13)::bigint as h13, sum(h14)::bigint as h14, sum(h15)::bigint as h15, sum(h16)::bigint as h16, sum(h17)::bigint as h17, sum(h18)::bigint as h18, sum(h19)::bigint as h19
          from moved group by 1, 2) a
    left join (select service_id, b as bucket, jsonb_object_agg(k, n) as m
               from (select service_id, date_trunc('day', bucket, 'UTC') as b, k, sum(n) as n
                     from moved_status group by 1, 2, 3) x
               group by 1, 2) s using (service_id, bucket)
    left join (select service_id, b as bucket, jsonb_object_agg(k, n) as m
               from (select service_id, date_trunc('day', bucket, 'UTC') as b, k, sum(n) as n
                     from moved_events group by 1, 2, 3) x
               group by 1, 2) e using (service_id, bucket)
    order by a.service_id, a.bucket
    on conflict (service_id, bucket) do update set
      count = r.count + excluded.count,
      errors = r.errors + excluded.errors,
      latency_sum = r.latency_sum + excluded.latency_sum,
      h00 = r.h00 + excluded.h00,
      h01 = r.h01 + excluded.h01,
      h02 = r.h02 + excluded.h02,
      h03 = r.h03 + excluded.h03,
      h04 = r.h04 + excluded.h04,
      h05 = r.h05 + excluded.h05,
      h06 = r.h06 + excluded.h06,
      h07 = r.h07 + excluded.h07,
      h08 = r.h08 + excluded.h08,
      h09 = r.h09 + excluded.h09,
      h10 = r.h10 + excluded.h10,
      h11 = r.h11 + excluded.h11,
      h12 = r.h12 + excluded.h12,
      h13 = r.h13 + excluded.h13,
      h14 = r.h14 + excluded.h14,
      h15 = r.h15 + excluded.h15,
      h16 = r.h16 + excluded.h16,
      h17 = r.h17 + excluded.h17,
      h18 = r.h18 + excluded.h18,
      h19 = r.h19 + excluded.h19,
      status_counts = r.status_counts || coalesce((select jsonb_object_agg(k, coalesce((r.status_counts ->> k)::bigint, 0)
      + v::bigint) from jsonb_each_text(excluded.status_counts) as t (k, v)), '{}'::jsonb),
      event_counts = r.event_counts || coalesce((select jsonb_object_agg(k, coalesce((r.event_counts ->> k)::bigint, 0)
      + v::bigint) from jsonb_each_text(excluded.event_counts) as t (k, v)), '{}'::jsonb)
    returning 1
  )
  select count(*) into moved_count from moved;
  return moved_count;
end;
$fn$;

-- The same functions as in 004, now writing the tier tables under their new names; the
-- rebuild also clears the pending deltas of the range it recomputes.
create or replace function observian_rollup_add(
  p_service integer[],
  p_ts timestamptz[],
  p_status smallint[],
  p_event text[],
  p_latency double precision[]
) returns void
language plpgsql as $fn$
declare
  tier record;
begin
  for tier in
    select * from (values ('log_rollup_1m_store', 'minute'), ('log_rollup_1h_store', 'hour'),
                          ('log_rollup_1d_store', 'day')) t (tbl, unit)
  loop
    execute format($q$
      with ev as (
        select service_id, date_trunc(%L, ts, 'UTC') as bucket, status_code, event_type,
               latency_ms
        from unnest($1, $2, $3, $4, $5)
          as e (service_id, ts, status_code, event_type, latency_ms)
      ),
      stats as (
        select service_id, bucket, count(*) as count,
          count(*) filter (where status_code >= 500) as errors,
          sum(latency_ms) as latency_sum,
          count(*) filter (where latency_ms <= 1) as h00,
          count(*) filter (where latency_ms > 1 and latency_ms <= 2.5) as h01,
          count(*) filter (where latency_ms > 2.5 and latency_ms <= 5) as h02,
          count(*) filter (where latency_ms > 5 and latency_ms <= 10) as h03,
          count(*) filter (where latency_ms > 10 and latency_ms <= 25) as h04,
          count(*) filter (where latency_ms > 25 and latency_ms <= 50) as h05,
          count(*) filter (where latency_ms > 50 and latency_ms <= 75) as h06,
          count(*) filter (where latency_ms > 75 and latency_ms <= 100) as h07,
          count(*) filter (where latency_ms > 100 and latency_ms <= 150) as h08,
          count(*) filter (where latency_ms > 150 and latency_ms <= 200) as h09,
          count(*) filter (where latency_ms > 200 and latency_ms <= 300) as h10,
          count(*) filter (where latency_ms > 300 and latency_ms <= 500) as h11,
          count(*) filter (where latency_ms > 500 and latency_ms <= 750) as h12,
          count(*) filter (where latency_ms > 750 and latency_ms <= 1000) as h13,
          count(*) filter (where latency_ms > 1000 and latency_ms <= 2500) as h14,
          count(*) filter (where latency_ms > 2500 and latency_ms <= 5000) as h15,
          count(*) filter (where latency_ms > 5000 and latency_ms <= 10000) as h16,
          count(*) filter (where latency_ms > 10000 and latency_ms <= 30000) as h17,
          count(*) filter (where latency_ms > 30000 and latency_ms <= 60000) as h18,
          count(*) filter (where latency_ms > 60000) as h19
        from ev group by service_id, bucket
      ),
      st as (
        select service_id, bucket, jsonb_object_agg(status_code::text, n) as m
        from (select service_id, bucket, status_code, count(*) as n
              from ev group by 1, 2, 3) x
        group by service_id, bucket
      ),
      et as (
        select service_id, bucket, jsonb_object_agg(event_type, n) as m
        from (select service_id, bucket, event_type, count(*) as n
              from ev where event_type is not null group by 1, 2, 3) x
        group by service_id, bucket
      )
      insert into %I as r (service_id, bucket, count, errors, latency_sum, h00, h01, h02, h03, h04, h05, h06, h07, h08, h09, h10, h11, h12, h13, h14, h15, h16, h17, h18, h19,
                           status_counts, event_counts)
      select stats.*, st.m, coalesce(et.m, '{}'::jsonb)
      from stats
      join st using (service_id, bucket)
      left join et using (service_id, bucket)
      order by service_id, bucket
      on conflict (service_id, bucket) do update set
          count = r.count + excluded.count,
          errors = r.errors + excluded.errors,
          latency_sum = r.latency_sum + excluded.latency_sum,
          h00 = r.h00 + excluded.h00,
          h01 = r.h01 + excluded.h01,
          h02 = r.h02 + excluded.h02,
          h03 = r.h03 + excluded.h03,
          h04 = r.h04 + excluded.h04,
          h05 = r.h05 + excluded.h05,
          h06 = r.h06 + excluded.h06,
          h07 = r.h07 + excluded.h07,
          h08 = r.h08 + excluded.h08,
          h09 = r.h09 + excluded.h09,
          h10 = r.h10 + excluded.h10,
          h11 = r.h11 + excluded.h11,
          h12 = r.h12 + excluded.h12,
          h13 = r.h13 + excluded.h13,
          h14 = r.h14 + excluded.h14,
          h15 = r.h15 + excluded.h15,
          h16 = r.h16 + excluded.h16,
          h17 = r.h17 + excluded.h17,
          h18 = r.h18 + excluded.h18,
          h19 = r.h19 + excluded.h19,
          status_counts = observian_counts_add(r.status_counts, excluded.status_counts),
          event_counts = observian_counts_add(r.event_counts, excluded.event_counts)
    $q$, tier.unit, tier.tbl)
    using p_service, p_ts, p_status, p_event, p_latency;
  end loop;
end;
$fn$;


create or replace function observian_rollup_rebuild(from_ts timestamptz, to_ts timestamptz)
returns bigint
language plpgsql as $fn$
declare
  day_start timestamptz := date_trunc('day', from_ts, 'UTC');
  day_end timestamptz := date_trunc('day', to_ts - interval '1 microsecond', 'UTC')
                         + interval '1 day';
  h timestamptz;
  total bigint := 0;
  a_service integer[];
  a_ts timestamptz[];
  a_status smallint[];
  a_event text[];
  a_latency double precision[];
begin
  delete from log_rollup_pending where bucket >= day_start and bucket < day_end;
  delete from log_rollup_1m_store where bucket >= day_start and bucket < day_end;
  delete from log_rollup_1h_store where bucket >= day_start and bucket < day_end;
  delete from log_rollup_1d_store where bucket >= day_start and bucket < day_end;
  h := day_start;
  while h < day_end loop
    select array_agg(service_id), array_agg("timestamp"), array_agg(status_code),
           array_agg(event_type), array_agg(latency_ms)
      into a_service, a_ts, a_status, a_event, a_latency
      from log_events where "timestamp" >= h and "timestamp" < h + interval '1 hour';
    if a_service is not null then
      perform observian_rollup_add(a_service, a_ts, a_status, a_event, a_latency);
      total := total + cardinality(a_service);
    end if;
    h := h + interval '1 hour';
  end loop;
  return total;
end;
$fn$;
