-- Latency percentiles with a bounded relative error, never outside the data (issue 11, defect 9).
-- The 20-bucket histogram h00..h19 put p95 4.6% off over 1M events, and a single 12 ms event
-- at p50 17.5. Each rollup row now keeps:
--   lat_min, lat_max  the smallest and largest latency of its events (null: none known);
--   lat_idx, lat_cnt  a sparse log-bucketed histogram (DDSketch-style), parallel arrays sorted
--                     by bucket index: lat_cnt[k] events fell into bucket lat_idx[k].
-- Bucket i holds latencies in (γ^(i-1), γ^i] ms with γ = 1.02, so the bucket's representative
-- 2γ^i/(γ+1) is within (γ-1)/(γ+1) < 0.99% of every latency in it. Latencies below 0.001 ms
-- (and 0) share bucket -349 (the "zero" bucket, represented by 0); above γ^32767 ≈ 1e282 ms
-- everything is in bucket 32767. About 115 buckets cover each factor of 10, and a row holds only
-- the buckets its events fell into. The summary adds the buckets of the rows it reads, estimates
-- a percentile as percentile_cont does (interpolating between the two ranks around it), and
-- clamps it into [lat_min, lat_max] of the events summarised (src/ingest/histogram.ts).
--
-- Sums of latency are clamped per value at 1e250 ms: stored rows from before the input bounds
-- (latency_ms up to 1.8e308) overflowed double precision when two were added, which failed
-- every summary and every compaction. A real latency is many orders of magnitude below.
--
-- The series of a summary adds the buckets of every row of its step: per service, 50 services
-- over 7 days are 8,400 hour rows of ~130 buckets each. So the 1h and 1d tiers also keep one
-- row per bucket for all services together (log_latency_1h_store, log_latency_1d_store), which
-- the series reads when no service_name filter is given.

-- The bucket of a latency in ms (see above). NaN and +Infinity land in the last bucket.
create function observian_latency_index(x double precision)
returns smallint
language sql immutable parallel safe as $$
  select case when x < 0.001 then -349::smallint
              else least(32767, ceil(ln(x) / 0.019802627296179712))::smallint end
$$;

-- Two sparse histograms added bucket by bucket.
create function observian_sketch_add(
  a_idx smallint[], a_cnt bigint[], b_idx smallint[], b_cnt bigint[],
  out idx smallint[], out cnt bigint[]
)
language sql immutable parallel safe as $$
  select coalesce(array_agg(i order by i), '{}'), coalesce(array_agg(n order by i), '{}')
  from (select i, sum(n)::bigint as n
        from (select * from unnest(a_idx, a_cnt)
              union all
              select * from unnest(b_idx, b_cnt)) x (i, n)
        group by i) s
  where n <> 0
$$;

drop view log_rollup_1m, log_rollup_1h, log_rollup_1d;

do $do$
declare
  t text;
  i int;
begin
  foreach t in array array['log_rollup_1m_store', 'log_rollup_1h_store', 'log_rollup_1d_store',
                           'log_rollup_pending']
  loop
    for i in 0..19 loop
      execute format('alter table %I drop column %I', t, 'h' || lpad(i::text, 2, '0'));
    end loop;
    execute format($q$
      alter table %I
        add column lat_min double precision,
        add column lat_max double precision,
        add column lat_idx smallint[] not null default '{}',
        add column lat_cnt bigint[] not null default '{}'
    $q$, t);
  end loop;
end;
$do$;

-- All services together, per hour and per day: only the latency buckets (the series' use).
create table log_latency_1h_store (
  bucket timestamptz primary key,
  lat_idx smallint[] not null default '{}',
  lat_cnt bigint[] not null default '{}'
);
create table log_latency_1d_store (like log_latency_1h_store including all);

-- Rows older than every per-service row of their tier go with them (the pruner deletes those;
-- a rebuild deletes and writes back both).
create function observian_latency_prune()
returns trigger
language plpgsql as $fn$
begin
  if tg_table_name = 'log_rollup_1h_store' then
    delete from log_latency_1h_store
    where bucket < coalesce((select min(bucket) from log_rollup_1h_store), 'infinity');
  else
    delete from log_latency_1d_store
    where bucket < coalesce((select min(bucket) from log_rollup_1d_store), 'infinity');
  end if;
  return null;
end;
$fn$;
create trigger log_rollup_1h_store_prune_latency after delete on log_rollup_1h_store
  for each statement execute function observian_latency_prune();
create trigger log_rollup_1d_store_prune_latency after delete on log_rollup_1d_store
  for each statement execute function observian_latency_prune();

-- The read views: as in 010, with the latency columns instead of h00..h19, and a version for
-- every stored row, so that the summary can keep the latency buckets of rows it has already read
-- (src/query/sketch-cache.ts) and ask for the arrays of changed rows only. The version is the
-- row's xmin: every insert and update (compaction, ingest, a rebuild's delete and insert) writes
-- a row version with its transaction's xmin, and freezing keeps the raw value. Rows of
-- log_rollup_pending have none (null): they are always read.
do $do$
declare
  tier record;
begin
  for tier in
    select * from (values ('log_rollup_1m', 'minute'), ('log_rollup_1h', 'hour'),
                          ('log_rollup_1d', 'day')) t (name, unit)
  loop
    execute format($v$
      create view %1$I as
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

create view log_latency_1h as
  select bucket, lat_idx, lat_cnt, xmin::text::bigint as row_version from log_latency_1h_store
  union all
  select date_trunc('hour', bucket, 'UTC'), lat_idx, lat_cnt, null::bigint
  from log_rollup_pending;
create view log_latency_1d as
  select bucket, lat_idx, lat_cnt, xmin::text::bigint as row_version from log_latency_1d_store
  union all
  select date_trunc('day', bucket, 'UTC'), lat_idx, lat_cnt, null::bigint
  from log_rollup_pending;

-- One (service, minute) of deltas, summed.
create type observian_minute_delta as (
  service_id integer,
  bucket timestamptz,
  count bigint,
  errors bigint,
  latency_sum double precision,
  status_counts jsonb,
  lat_min double precision,
  lat_max double precision,
  lat_idx smallint[],
  lat_cnt bigint[]
);

-- As in 010 (the event-type cap unchanged), with the latency columns, and the all-services rows.
drop function observian_rollup_merge(log_rollup_1m_store[], observian_type_count[], integer,
                                     boolean);
create function observian_rollup_merge(
  minutes observian_minute_delta[],
  types observian_type_count[],
  max_types integer,
  record_folds boolean
) returns void
language plpgsql as $fn$
declare
  t record;
  f_types bigint;
  f_events bigint;
begin
  if max_types < 1 then
    raise exception 'max_types must be at least 1, not %', max_types;
  end if;
  for t in
    select * from (values ('log_rollup_1m_store', 'minute', '1m'),
                          ('log_rollup_1h_store', 'hour', '1h'),
                          ('log_rollup_1d_store', 'day', '1d')) x (tbl, unit, name)
  loop
    -- ON CONFLICT ... WHERE false updates nothing but still locks the existing row.
    execute format($q$
      insert into %1$I as r (service_id, bucket, count, errors, latency_sum)
      select service_id, b, 0, 0, 0
      from (select distinct service_id, date_trunc(%2$L, bucket, 'UTC') as b from unnest($1)) x
      order by 1, 2
      on conflict (service_id, bucket) do update set count = r.count where false
    $q$, t.tbl, t.unit) using minutes;
    execute format($q$
      with d as (
        select service_id, date_trunc(%2$L, bucket, 'UTC') as bucket, sum(count)::bigint as count,
          sum(errors)::bigint as errors, sum(least(latency_sum, 1e250)) as latency_sum,
          observian_counts_add_all(array_agg(status_counts)) as status_counts,
          min(lat_min) as lat_min, max(lat_max) as lat_max
        from unnest($1) group by 1, 2
      ),
      sk as (
        select service_id, bucket, array_agg(i order by i) as idx, array_agg(n order by i) as cnt
        from (
          select service_id, bucket, i, sum(n)::bigint as n
          from (
            select m.service_id, date_trunc(%2$L, m.bucket, 'UTC') as bucket, u.i, u.n
            from unnest($1) m, unnest(m.lat_idx, m.lat_cnt) as u (i, n)
            union all
            select r.service_id, r.bucket, u.i, u.n
            from %1$I r
            join (select distinct service_id, bucket from d) k
              on k.service_id = r.service_id and k.bucket = r.bucket
            cross join lateral unnest(r.lat_idx, r.lat_cnt) as u (i, n)
          ) x
          group by 1, 2, 3
        ) y
        where n <> 0
        group by 1, 2
      ),
      typed as (
        select service_id, date_trunc(%2$L, bucket, 'UTC') as bucket, event_type,
          sum(n)::bigint as n
        from unnest($2) group by 1, 2, 3
      ),
      ranked as (
        select service_id, bucket, event_type, n,
          row_number() over (partition by service_id, bucket
                             order by stored desc, n desc, event_type) as rank
        from (
          select service_id, bucket, event_type, sum(n)::bigint as n, bool_or(stored) as stored
          from (
            select r.service_id, r.bucket, kv.k, kv.v::bigint, true
            from %1$I r
            join (select distinct service_id, bucket from typed) tb
              on tb.service_id = r.service_id and tb.bucket = r.bucket
            cross join lateral jsonb_each_text(r.event_counts) as kv (k, v)
            union all
            select service_id, bucket, event_type, n, false from typed
          ) x (service_id, bucket, event_type, n, stored)
          group by 1, 2, 3
        ) merged
      ),
      ev as (
        select service_id, bucket,
          jsonb_object_agg(event_type, n) filter (where rank <= $3) as counts,
          count(*) filter (where rank > $3) as folded_types,
          coalesce(sum(n) filter (where rank > $3), 0)::bigint as folded_events
        from ranked group by 1, 2
      ),
      up as (
        update %1$I r set
          count = r.count + d.count,
          errors = r.errors + d.errors,
          latency_sum = least(r.latency_sum, 1e250) + d.latency_sum,
          lat_min = least(r.lat_min, d.lat_min),
          lat_max = greatest(r.lat_max, d.lat_max),
          lat_idx = coalesce(sk.idx, '{}'),
          lat_cnt = coalesce(sk.cnt, '{}'),
          status_counts = observian_counts_add(r.status_counts, d.status_counts),
          event_counts = coalesce(ev.counts, r.event_counts),
          event_other = r.event_other + coalesce(ev.folded_events, 0)
        from d
        left join ev on ev.service_id = d.service_id and ev.bucket = d.bucket
        left join sk on sk.service_id = d.service_id and sk.bucket = d.bucket
        where r.service_id = d.service_id and r.bucket = d.bucket
        returning ev.folded_types, ev.folded_events
      )
      select coalesce(sum(folded_types), 0), coalesce(sum(folded_events), 0) from up
    $q$, t.tbl, t.unit)
    into f_types, f_events
    using minutes, types, max_types;
    if record_folds and f_types > 0 then
      update rollup_fold_stats
        set folded_types = folded_types + f_types, folded_events = folded_events + f_events
        where tier = t.name;
    end if;
  end loop;
  for t in
    select * from (values ('log_latency_1h_store', 'hour'), ('log_latency_1d_store', 'day'))
      x (tbl, unit)
  loop
    execute format($q$
      insert into %1$I as g (bucket, lat_idx, lat_cnt)
      select bucket, array_agg(i order by i), array_agg(n order by i)
      from (select date_trunc(%2$L, m.bucket, 'UTC') as bucket, u.i, sum(u.n)::bigint as n
            from unnest($1) m, unnest(m.lat_idx, m.lat_cnt) as u (i, n)
            group by 1, 2) x
      group by 1
      order by 1
      on conflict (bucket) do update set (lat_idx, lat_cnt) = (
        select s.idx, s.cnt
        from observian_sketch_add(g.lat_idx, g.lat_cnt, excluded.lat_idx, excluded.lat_cnt) s)
    $q$, t.tbl, t.unit) using minutes;
  end loop;
end;
$fn$;

-- As in 010, with the latency columns.
create or replace function observian_rollup_compact(max_types integer default 100,
                                                    max_rows integer default 100000)
returns bigint
language plpgsql as $fn$
declare
  moved_count bigint;
  minutes observian_minute_delta[];
  types observian_type_count[];
begin
  if not pg_try_advisory_xact_lock(7246330003) then
    return -1;
  end if;
  with moved as (
    delete from log_rollup_pending
    where ctid = any(array(select ctid from log_rollup_pending limit max_rows))
    returning *
  ),
  sums as (
    select service_id, bucket, sum(count)::bigint as count, sum(errors)::bigint as errors,
      sum(least(latency_sum, 1e250)) as latency_sum, min(lat_min) as lat_min,
      max(lat_max) as lat_max
    from moved group by 1, 2
  ),
  sk as (
    select service_id, bucket, array_agg(i order by i) as idx, array_agg(n order by i) as cnt
    from (select service_id, bucket, u.i, sum(u.n)::bigint as n
          from moved, unnest(lat_idx, lat_cnt) as u (i, n)
          group by 1, 2, 3) x
    group by 1, 2
  ),
  status as (
    select service_id, bucket, jsonb_object_agg(k, n) as m
    from (select service_id, bucket, k, sum(n) as n
          from (select service_id, bucket, status_code::text as k, count as n
                from moved where status_counts is null
                union all
                select service_id, bucket, kv.k, kv.v::bigint
                from moved, jsonb_each_text(status_counts) as kv (k, v)) x
          group by 1, 2, 3) y
    group by 1, 2
  ),
  typed as (
    select service_id, bucket, k, sum(n)::bigint as n
    from (select service_id, bucket, event_type as k, count as n
          from moved where event_counts is null and event_type is not null
          union all
          select service_id, bucket, kv.k, kv.v::bigint
          from moved, jsonb_each_text(event_counts) as kv (k, v)) x
    group by 1, 2, 3
  )
  select (select count(*) from moved),
    array(select row(sums.service_id, sums.bucket, sums.count, sums.errors, sums.latency_sum,
                     coalesce(status.m, '{}'::jsonb), sums.lat_min, sums.lat_max,
                     coalesce(sk.idx, '{}'), coalesce(sk.cnt, '{}'))::observian_minute_delta
          from sums
          left join status using (service_id, bucket)
          left join sk using (service_id, bucket)),
    array(select row(service_id, bucket, k, n)::observian_type_count from typed)
  into moved_count, minutes, types;
  if moved_count = 0 then
    return 0;
  end if;
  perform observian_rollup_merge(minutes, types, max_types, true);
  return moved_count;
end;
$fn$;

-- One pending delta that compaction cannot fold, set aside (with why) so that the others can
-- be: src/ingest/rollup.ts moves one here only after a compaction of that single delta failed.
-- Its events stay in log_events; observian_rollup_rebuild() counts them again.
create table log_rollup_rejected (like log_rollup_pending);
alter table log_rollup_rejected
  add column rejected_at timestamptz not null default now(),
  add column error text not null;

-- Moves the delta a compaction of max_rows = 1 takes first; returns how many moved (0 or 1).
create function observian_rollup_reject_first(reason text)
returns integer
language plpgsql as $fn$
declare
  moved integer;
begin
  if not pg_try_advisory_xact_lock(7246330003) then
    return 0;
  end if;
  with gone as (
    delete from log_rollup_pending
    where ctid = any(array(select ctid from log_rollup_pending limit 1))
    returning *
  )
  insert into log_rollup_rejected select *, now(), reason from gone;
  get diagnostics moved = row_count;
  return moved;
end;
$fn$;

create or replace function observian_rollup_add(
  p_service integer[],
  p_ts timestamptz[],
  p_status smallint[],
  p_event text[],
  p_latency double precision[],
  max_types integer default 100
) returns void
language plpgsql as $fn$
declare
  minutes observian_minute_delta[];
  types observian_type_count[];
begin
  with ev as (
    select service_id, date_trunc('minute', ts, 'UTC') as bucket, status_code, event_type,
           latency_ms
    from unnest(p_service, p_ts, p_status, p_event, p_latency)
      as e (service_id, ts, status_code, event_type, latency_ms)
  ),
  sums as (
    select service_id, bucket, count(*) as count,
      count(*) filter (where status_code >= 500) as errors,
      sum(least(latency_ms, 1e250)) as latency_sum, min(latency_ms) as lat_min,
      max(latency_ms) as lat_max
    from ev group by 1, 2
  ),
  sk as (
    select service_id, bucket, array_agg(i order by i) as idx, array_agg(n order by i) as cnt
    from (select service_id, bucket, observian_latency_index(latency_ms) as i, count(*) as n
          from ev group by 1, 2, 3) x
    group by 1, 2
  ),
  status as (
    select service_id, bucket, jsonb_object_agg(status_code::text, n) as m
    from (select service_id, bucket, status_code, count(*) as n from ev group by 1, 2, 3) x
    group by 1, 2
  )
  select
    array(select row(sums.service_id, sums.bucket, sums.count, sums.errors, sums.latency_sum,
                     status.m, sums.lat_min, sums.lat_max, sk.idx, sk.cnt)::observian_minute_delta
          from sums join status using (service_id, bucket) join sk using (service_id, bucket)),
    array(select row(service_id, bucket, event_type, count(*))::observian_type_count
          from ev where event_type is not null group by service_id, bucket, event_type)
  into minutes, types;
  if cardinality(minutes) > 0 then
    perform observian_rollup_merge(minutes, types, max_types, false);
  end if;
end;
$fn$;

create or replace function observian_rollup_rebuild(from_ts timestamptz, to_ts timestamptz,
                                                    max_types integer default 100)
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
  delete from log_latency_1h_store where bucket >= day_start and bucket < day_end;
  delete from log_latency_1d_store where bucket >= day_start and bucket < day_end;
  h := day_start;
  while h < day_end loop
    select array_agg(service_id), array_agg("timestamp"), array_agg(status_code),
           array_agg(event_type), array_agg(latency_ms)
      into a_service, a_ts, a_status, a_event, a_latency
      from log_events where "timestamp" >= h and "timestamp" < h + interval '1 hour';
    if a_service is not null then
      perform observian_rollup_add(a_service, a_ts, a_status, a_event, a_latency, max_types);
      total := total + cardinality(a_service);
    end if;
    h := h + interval '1 hour';
  end loop;
  return total;
end;
$fn$;

-- Rows stored before this migration have no latency buckets. The days whose events are all
-- still in log_events are rebuilt from them after start-up migrations, a day per transaction
-- with progress in the log (src/ingest/rollup.ts, backfillLatencySketches); a day whose events
-- were pruned while its rollups were kept (ROLLUP_RETENTION_DAYS) keeps its counts, and its
-- latency is then unknown (no buckets, lat_min and lat_max null).
create table rollup_sketch_backfill (day timestamptz primary key);
insert into rollup_sketch_backfill (day)
  select distinct bucket from log_rollup_1d_store where count > 0;
