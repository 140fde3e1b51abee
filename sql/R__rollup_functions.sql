-- The rollup functions as they are now: the one place to read and to change them. A repeatable
-- migration (src/db/migrate.ts): applied after every numbered migration, and again on the next
-- start whenever its text changes, so a changed body is an edit of this file, not a new copy in
-- a numbered one. The tables and types they use (log_rollup_*_store, log_rollup_pending,
-- log_latency_*_store, observian_minute_delta, observian_type_count) are schema: those change in
-- numbered migrations. A `${…}` placeholder is a number from src/db/rollup-constants.ts, which
-- the TypeScript reads too.
--
-- Rules for editing: every statement must be safe to run again (create or replace); a changed
-- argument list or result type needs `drop function if exists` of the old signature just above
-- the new definition (create or replace cannot change those).
--
-- History, for whoever reads the numbered files: 004 defined these for three tier tables with a
-- fixed 20-bucket histogram (h00..h19, bounds in its header); 006 moved writes to pending deltas
-- compacted in the background; 008 gave deltas one status code and event type each; 010 capped
-- the event types per row; 012 replaced h00..h19 by sparse log buckets (lat_idx, lat_cnt). The
-- comment of observian_rollup_add in 004 ("the only place rollups are computed: ingest calls it
-- per transaction") is stale since 006: ingest appends deltas (pendingCte, src/ingest/rollup.ts)
-- that observian_rollup_compact() folds, and observian_rollup_add serves rebuilds only. Its
-- header's h00..h19 bounds are stale since 012.

-- Adds two {"key": count} maps key by key.
create or replace function observian_counts_add(a jsonb, b jsonb)
returns jsonb
language sql immutable parallel safe as $$
  select coalesce(jsonb_object_agg(key, total), '{}'::jsonb)
  from (
    select key, sum(value::bigint) as total
    from (select * from jsonb_each_text(a) union all select * from jsonb_each_text(b)) kv
    group by key
  ) sums
$$;

-- The sum of several count maps ({"200": 3} + {"200": 1, "404": 2} = {"200": 4, "404": 2}).
create or replace function observian_counts_add_all(maps jsonb[])
returns jsonb
language sql immutable parallel safe as $$
  select coalesce(jsonb_object_agg(k, n), '{}'::jsonb)
  from (select kv.k, sum(kv.v::bigint) as n
        from unnest(maps) as m (map), jsonb_each_text(m.map) as kv (k, v)
        group by 1) sums
$$;

-- The bucket of a latency in ms: bucket i holds (γ^(i-1), γ^i] ms; below the smallest indexed
-- latency (and 0) the zero bucket; NaN and +Infinity land in the last bucket. The summary's
-- estimates from the buckets: src/ingest/histogram.ts.
create or replace function observian_latency_index(x double precision)
returns smallint
language sql immutable parallel safe as $$
  select case when x < ${latency_min_indexed_ms} then ${latency_zero_index}::smallint
              else least(${latency_max_index}, ceil(ln(x) / ${latency_ln_gamma}))::smallint end
$$;

-- Two sparse histograms added bucket by bucket.
create or replace function observian_sketch_add(
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

-- The largest max_types counts of a map (then by key), and what the rest add up to.
create or replace function observian_event_counts_fold(
  counts jsonb,
  max_types integer,
  out kept jsonb,
  out folded_types bigint,
  out folded_events bigint
)
language sql immutable parallel safe as $$
  select coalesce(jsonb_object_agg(k, n) filter (where rank <= max_types), '{}'::jsonb),
         count(*) filter (where rank > max_types),
         coalesce(sum(n) filter (where rank > max_types), 0)::bigint
  from (select kv.k, kv.v::bigint as n,
               row_number() over (order by kv.v::bigint desc, kv.k) as rank
        from jsonb_each_text(counts) as kv (k, v)) x
$$;

-- Adds per-minute deltas (`minutes`: sums, latency buckets and status map; `types`: typed
-- counts) to the three tiers and the all-services latency rows. Each row keeps at most
-- max_types event types, first come first kept: a type the row keeps stays, new ones take the
-- free places by count (then name), and once the row is full a new type's events go to
-- event_other for good. The rows are created if missing and locked first, all in key order
-- (writers that lock in one order cannot deadlock), so the update then reads and writes rows
-- no one else can change meanwhile. record_folds: add what was folded to rollup_fold_stats.
create or replace function observian_rollup_merge(
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
          sum(errors)::bigint as errors, sum(least(latency_sum, ${latency_sum_cap})) as latency_sum,
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
      -- The types a row keeps and the new ones, ranked: kept ones first (a stored row over
      -- the limit keeps its largest), then new ones by count.
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
          latency_sum = least(r.latency_sum, ${latency_sum_cap}) + d.latency_sum,
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

-- Moves at most max_rows pending deltas into the tiers (a backlog is worked off over several
-- runs instead of one statement that grows with it); returns the deltas moved, or -1 when
-- another session is compacting. The deltas are summed once per (service, minute), in both
-- shapes (maps, from deltas written before 008, or one status code and event type each). The
-- defaults are those of src/ingest/rollup.ts; an instance of an older release calls it without
-- arguments.
create or replace function observian_rollup_compact(
  max_types integer default ${rollup_max_event_types},
  max_rows integer default ${compact_max_rows}
)
returns bigint
language plpgsql as $fn$
declare
  moved_count bigint;
  minutes observian_minute_delta[];
  types observian_type_count[];
begin
  if not pg_try_advisory_xact_lock(${rollup_lock_key}) then
    return -1;
  end if;
  with moved as (
    delete from log_rollup_pending
    where ctid = any(array(select ctid from log_rollup_pending limit max_rows))
    returning *
  ),
  sums as (
    select service_id, bucket, sum(count)::bigint as count, sum(errors)::bigint as errors,
      sum(least(latency_sum, ${latency_sum_cap})) as latency_sum, min(lat_min) as lat_min,
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

-- Moves the delta a compaction of max_rows = 1 takes first into log_rollup_rejected (with why),
-- so that the others can be folded: src/ingest/rollup.ts calls it only after a compaction of
-- that single delta failed. Returns how many moved (0 or 1).
create or replace function observian_rollup_reject_first(reason text)
returns integer
language plpgsql as $fn$
declare
  moved integer;
begin
  if not pg_try_advisory_xact_lock(${rollup_lock_key}) then
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

-- Folds a set of events (as parallel arrays) into the tiers, by the same bucket rules as the
-- deltas ingest appends (pendingCte, src/ingest/rollup.ts). Used by observian_rollup_rebuild.
create or replace function observian_rollup_add(
  p_service integer[],
  p_ts timestamptz[],
  p_status smallint[],
  p_event text[],
  p_latency double precision[],
  max_types integer default ${rollup_max_event_types}
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
      sum(least(latency_ms, ${latency_sum_cap})) as latency_sum, min(latency_ms) as lat_min,
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

-- Recomputes every rollup for events in [from_ts, to_ts) from the fact table. Bounds are
-- widened to whole UTC days so no day bucket is left half counted; events are folded in an hour
-- at a time (rollups are additive) to bound memory. Used after bulk loads (COPY bypasses
-- ingest), by the pruner at the retention boundary and by the latency backfill of 012. Returns
-- the events folded.
create or replace function observian_rollup_rebuild(
  from_ts timestamptz,
  to_ts timestamptz,
  max_types integer default ${rollup_max_event_types}
)
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

-- Trigger function: all-services latency rows older than every per-service row of their tier go
-- with them (the pruner deletes those; a rebuild deletes and writes back both).
create or replace function observian_latency_prune()
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
