-- Rollups of log_events per service and UTC minute, hour and day, written in the same
-- transaction as the events (so counts are exact and never lag). Summaries read these
-- instead of the fact table, like TimescaleDB's continuous aggregates: a 7-day summary reads
-- a few thousand rollup rows instead of millions of events.
--
-- errors: events with status_code >= 500.
-- h00..h19: latency histogram; bucket upper bounds in ms, inclusive:
--   1, 2.5, 5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2500, 5000, 10000,
--   30000, 60000, +Inf. (Separate columns, not an array: sum() over columns is what keeps a
--   summary over thousands of rows fast.)
-- status_counts: {"200": n, ...}; event_counts: {"deploy": n, ...} (events without a type
-- are left out of event_counts).
-- The primary keys lead with service_id, the Citus distribution column; (bucket) serves
-- reads across all services and retention deletes.

create table log_rollup_1m (
  service_id integer not null references services (id),
  bucket timestamptz not null,
  count bigint not null,
  errors bigint not null,
  latency_sum double precision not null,
  h00 bigint not null default 0,
  h01 bigint not null default 0,
  h02 bigint not null default 0,
  h03 bigint not null default 0,
  h04 bigint not null default 0,
  h05 bigint not null default 0,
  h06 bigint not null default 0,
  h07 bigint not null default 0,
  h08 bigint not null default 0,
  h09 bigint not null default 0,
  h10 bigint not null default 0,
  h11 bigint not null default 0,
  h12 bigint not null default 0,
  h13 bigint not null default 0,
  h14 bigint not null default 0,
  h15 bigint not null default 0,
  h16 bigint not null default 0,
  h17 bigint not null default 0,
  h18 bigint not null default 0,
  h19 bigint not null default 0,
  status_counts jsonb not null default '{}'::jsonb,
  event_counts jsonb not null default '{}'::jsonb,
  primary key (service_id, bucket)
);
create index log_rollup_1m_bucket_idx on log_rollup_1m (bucket);

create table log_rollup_1h (
  service_id integer not null references services (id),
  bucket timestamptz not null,
  count bigint not null,
  errors bigint not null,
  latency_sum double precision not null,
  h00 bigint not null default 0,
  h01 bigint not null default 0,
  h02 bigint not null default 0,
  h03 bigint not null default 0,
  h04 bigint not null default 0,
  h05 bigint not null default 0,
  h06 bigint not null default 0,
  h07 bigint not null default 0,
  h08 bigint not null default 0,
  h09 bigint not null default 0,
  h10 bigint not null default 0,
  h11 bigint not null default 0,
  h12 bigint not null default 0,
  h13 bigint not null default 0,
  h14 bigint not null default 0,
  h15 bigint not null default 0,
  h16 bigint not null default 0,
  h17 bigint not null default 0,
  h18 bigint not null default 0,
  h19 bigint not null default 0,
  status_counts jsonb not null default '{}'::jsonb,
  event_counts jsonb not null default '{}'::jsonb,
  primary key (service_id, bucket)
);
create index log_rollup_1h_bucket_idx on log_rollup_1h (bucket);

create table log_rollup_1d (
  service_id integer not null references services (id),
  bucket timestamptz not null,
  count bigint not null,
  errors bigint not null,
  latency_sum double precision not null,
  h00 bigint not null default 0,
  h01 bigint not null default 0,
  h02 bigint not null default 0,
  h03 bigint not null default 0,
  h04 bigint not null default 0,
  h05 bigint not null default 0,
  h06 bigint not null default 0,
  h07 bigint not null default 0,
  h08 bigint not null default 0,
  h09 bigint not null default 0,
  h10 bigint not null default 0,
  h11 bigint not null default 0,
  h12 bigint not null default 0,
  h13 bigint not null default 0,
  h14 bigint not null default 0,
  h15 bigint not null default 0,
  h16 bigint not null default 0,
  h17 bigint not null default 0,
  h18 bigint not null default 0,
  h19 bigint not null default 0,
  status_counts jsonb not null default '{}'::jsonb,
  event_counts jsonb not null default '{}'::jsonb,
  primary key (service_id, bucket)
);
create index log_rollup_1d_bucket_idx on log_rollup_1d (bucket);

-- Adds two {"key": count} maps key by key.
create function observian_counts_add(a jsonb, b jsonb)
returns jsonb
language sql immutable parallel safe as $$
  select coalesce(jsonb_object_agg(key, total), '{}'::jsonb)
  from (
    select key, sum(value::bigint) as total
    from (select * from jsonb_each_text(a) union all select * from jsonb_each_text(b)) kv
    group by key
  ) sums
$$;

-- Folds a set of events (as parallel arrays, the same ones ingest inserts) into all three
-- rollup tiers. Rows are upserted in (service_id, bucket) order so concurrent writers lock
-- them in the same order and cannot deadlock. The only place rollups are computed: ingest
-- calls it per transaction, observian_rollup_rebuild per chunk of existing events.
create function observian_rollup_add(
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
    select * from (values ('log_rollup_1m', 'minute'), ('log_rollup_1h', 'hour'),
                          ('log_rollup_1d', 'day')) t (tbl, unit)
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

-- Recomputes every rollup tier for events in [from_ts, to_ts) from the fact table. Bounds
-- are widened to whole UTC days so no day bucket is left half counted; events are folded in
-- an hour at a time (rollups are additive) to bound memory. Used after bulk loads (COPY
-- bypasses ingest) and by the pruner at the retention boundary. Returns the events folded.
create function observian_rollup_rebuild(from_ts timestamptz, to_ts timestamptz)
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
  delete from log_rollup_1m where bucket >= day_start and bucket < day_end;
  delete from log_rollup_1h where bucket >= day_start and bucket < day_end;
  delete from log_rollup_1d where bucket >= day_start and bucket < day_end;
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
