-- A bound on the event types each rollup row keeps. A service that sends raw paths as its event
-- type ("GET /users/12345") gave one-minute rows ~100,000-key event_counts maps and hour rows
-- 1.5 MB ones; every summary touching them expanded every key (minutes at full CPU), and each
-- compaction rewrote the whole map of the hour and day rows it added to.
--
-- Now a row keeps at most max_types event types (ROLLUP_MAX_EVENT_TYPES, default 100); the
-- events of any other type are counted in event_other. So a row's types plus event_other always
-- add up to its typed events, exactly. Which types a row keeps is decided as deltas arrive
-- (compaction, about once a second), first come first kept:
--   - a type the row already keeps always stays, and its count stays exact;
--   - new types take the free places, those with the most events in the delta first (then by
--     name); once the row is full, a new type's events go to event_other, for good: a folded
--     type is never taken out of event_other again, even if it later becomes frequent.
-- Minute rows start empty every minute, so a type that keeps coming is listed there again.
-- Status codes are not capped: 100-599 bounds them to 500 keys.
-- The raw events keep their type: GET /logs still finds every one of them.

alter table log_rollup_1m_store add column event_other bigint not null default 0;
alter table log_rollup_1h_store add column event_other bigint not null default 0;
alter table log_rollup_1d_store add column event_other bigint not null default 0;

-- The read views gain event_other (pending deltas fold nothing: each holds one type).
do $do$
declare
  hist text := (select string_agg(format('h%s', lpad(i::text, 2, '0')), ', ')
                from generate_series(0, 19) i);
  tier record;
begin
  for tier in
    select * from (values ('log_rollup_1m', 'minute'), ('log_rollup_1h', 'hour'),
                          ('log_rollup_1d', 'day')) t (name, unit)
  loop
    execute format($v$
      create or replace view %1$I as
        select service_id, bucket, count, errors, latency_sum, %3$s, status_counts, event_counts,
          event_other
        from %2$I
        union all
        select service_id, date_trunc(%4$L, bucket, 'UTC'), count, errors, latency_sum, %3$s,
          coalesce(status_counts, jsonb_build_object(status_code::text, count)),
          coalesce(event_counts, case when event_type is null then '{}'::jsonb
                                      else jsonb_build_object(event_type, count) end),
          0::bigint
        from log_rollup_pending
    $v$, tier.name, tier.name || '_store', hist, tier.unit);
  end loop;
end;
$do$;

-- Types folded into event_other so far, per tier, across every instance; /metrics reports them
-- (observian_rollup_folded_event_types_total, observian_rollup_folded_events_total).
create table rollup_fold_stats (
  tier text primary key check (tier in ('1m', '1h', '1d')),
  folded_types bigint not null default 0,
  folded_events bigint not null default 0
);
insert into rollup_fold_stats (tier) values ('1m'), ('1h'), ('1d');

-- Events of one type in one (service, minute).
create type observian_type_count as (
  service_id integer,
  bucket timestamptz,
  event_type text,
  n bigint
);

-- Adds per-minute deltas (`minutes`: sums, histogram and status map; `types`: typed counts)
-- to the three tiers, keeping at most max_types types per row as described above. The rows are
-- created if missing and locked first, all in key order (writers that lock in one order cannot
-- deadlock), so the update then reads and writes rows no one else can change meanwhile.
-- record_folds: add what was folded to rollup_fold_stats.
create function observian_rollup_merge(
  minutes log_rollup_1m_store[],
  types observian_type_count[],
  max_types integer,
  record_folds boolean
) returns void
language plpgsql as $fn$
declare
  hist_sums text := (select string_agg(format('sum(h%1$s)::bigint as h%1$s', lpad(i::text, 2, '0')), ', ')
                     from generate_series(0, 19) i);
  hist_adds text := (select string_agg(format('h%1$s = r.h%1$s + d.h%1$s', lpad(i::text, 2, '0')), ', ')
                     from generate_series(0, 19) i);
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
          sum(errors)::bigint as errors, sum(latency_sum) as latency_sum, %3$s,
          observian_counts_add_all(array_agg(status_counts)) as status_counts,
          sum(event_other)::bigint as event_other
        from unnest($1) group by 1, 2
      ),
      typed as (
        select service_id, date_trunc(%2$L, bucket, 'UTC') as bucket, event_type,
          sum(n)::bigint as n
        from unnest($2) group by 1, 2, 3
      ),
      -- The types a row keeps and the new ones, ranked: kept ones first (a stored row over
      -- the limit, from before this migration, keeps its largest), then new ones by count.
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
          latency_sum = r.latency_sum + d.latency_sum,
          %4$s,
          status_counts = observian_counts_add(r.status_counts, d.status_counts),
          event_counts = coalesce(ev.counts, r.event_counts),
          event_other = r.event_other + d.event_other + coalesce(ev.folded_events, 0)
        from d left join ev on ev.service_id = d.service_id and ev.bucket = d.bucket
        where r.service_id = d.service_id and r.bucket = d.bucket
        returning ev.folded_types, ev.folded_events
      )
      select coalesce(sum(folded_types), 0), coalesce(sum(folded_events), 0) from up
    $q$, t.tbl, t.unit, hist_sums, hist_adds)
    into f_types, f_events
    using minutes, types, max_types;
    if record_folds and f_types > 0 then
      update rollup_fold_stats
        set folded_types = folded_types + f_types, folded_events = folded_events + f_events
        where tier = t.name;
    end if;
  end loop;
end;
$fn$;

-- Compaction as in 008, through observian_rollup_merge, and at most max_rows deltas a run: a
-- backlog (compaction failing for a while, a burst of distinct types) is worked off over
-- several runs instead of one statement that grows with it. Returns the deltas moved, or -1
-- when another session is compacting. The defaults are those of ROLLUP_MAX_EVENT_TYPES and
-- src/ingest/rollup.ts; an instance of the previous release calls it without arguments.
drop function observian_rollup_compact();
create function observian_rollup_compact(max_types integer default 100,
                                         max_rows integer default 100000)
returns bigint
language plpgsql as $fn$
declare
  moved_count bigint;
  minutes log_rollup_1m_store[];
  types observian_type_count[];
  hist text := (select string_agg(format('h%s', lpad(i::text, 2, '0')), ', ')
                from generate_series(0, 19) i);
  hist_sums text := (select string_agg(format('sum(h%1$s)::bigint as h%1$s', lpad(i::text, 2, '0')), ', ')
                     from generate_series(0, 19) i);
begin
  if not pg_try_advisory_xact_lock(7246330003) then
    return -1;
  end if;
  execute format($q$
    with moved as (
      delete from log_rollup_pending
      where ctid = any(array(select ctid from log_rollup_pending limit $1))
      returning *
    ),
    sums as (
      select service_id, bucket, sum(count)::bigint as count, sum(errors)::bigint as errors,
        sum(latency_sum) as latency_sum, %s
      from moved group by 1, 2
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
      array(select row(sums.service_id, sums.bucket, sums.count, sums.errors, sums.latency_sum, %s,
                       coalesce(status.m, '{}'::jsonb), '{}'::jsonb, 0)::log_rollup_1m_store
            from sums left join status using (service_id, bucket)),
      array(select row(service_id, bucket, k, n)::observian_type_count from typed)
  $q$, hist_sums, hist)
  into moved_count, minutes, types
  using max_rows;
  if moved_count = 0 then
    return 0;
  end if;
  perform observian_rollup_merge(minutes, types, max_types, true);
  return moved_count;
end;
$fn$;

-- Rebuilding from the facts folds the same way (an hour of events at a time).
drop function observian_rollup_add(integer[], timestamptz[], smallint[], text[],
                                   double precision[]);
create function observian_rollup_add(
  p_service integer[],
  p_ts timestamptz[],
  p_status smallint[],
  p_event text[],
  p_latency double precision[],
  max_types integer default 100
) returns void
language plpgsql as $fn$
declare
  bounds float8[] := '{1, 2.5, 5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 2500, 5000, 10000, 30000, 60000}';
  -- Upper bounds are inclusive, as in 004.
  hist_counts text := (
    select string_agg(format('count(*) filter (where %s) as h%s',
      case when i = 1 then format('latency_ms <= %s', bounds[1])
           when i = 20 then format('latency_ms > %s', bounds[19])
           else format('latency_ms > %s and latency_ms <= %s', bounds[i - 1], bounds[i]) end,
      lpad((i - 1)::text, 2, '0')), ', ')
    from generate_series(1, 20) i);
  minutes log_rollup_1m_store[];
  types observian_type_count[];
begin
  execute format($q$
    with ev as (
      select service_id, date_trunc('minute', ts, 'UTC') as bucket, status_code, event_type,
             latency_ms
      from unnest($1, $2, $3, $4, $5) as e (service_id, ts, status_code, event_type, latency_ms)
    ),
    sums as (
      select service_id, bucket, count(*) as count,
        count(*) filter (where status_code >= 500) as errors, sum(latency_ms) as latency_sum, %s
      from ev group by 1, 2
    ),
    status as (
      select service_id, bucket, jsonb_object_agg(status_code::text, n) as m
      from (select service_id, bucket, status_code, count(*) as n from ev group by 1, 2, 3) x
      group by 1, 2
    )
    select
      array(select row(sums.*, status.m, '{}'::jsonb, 0)::log_rollup_1m_store
            from sums join status using (service_id, bucket)),
      array(select row(service_id, bucket, event_type, count(*))::observian_type_count
            from ev where event_type is not null group by service_id, bucket, event_type)
  $q$, hist_counts)
  into minutes, types
  using p_service, p_ts, p_status, p_event, p_latency;
  if cardinality(minutes) > 0 then
    perform observian_rollup_merge(minutes, types, max_types, false);
  end if;
end;
$fn$;

drop function observian_rollup_rebuild(timestamptz, timestamptz);
create function observian_rollup_rebuild(from_ts timestamptz, to_ts timestamptz,
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

-- The largest max_types counts of a map (then by key), and what the rest add up to.
create function observian_event_counts_fold(
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

-- Rows stored before this migration with more than 100 types (the default) keep their 100
-- largest. A day row holds every type of its hours and minutes, so only the days over the
-- limit need their finer rows looked at: a few thousand small maps are counted, not millions.
-- Compaction waits meanwhile (its lock), so no delta lands in a row being folded.
do $do$
declare
  hot_services integer[];
  hot_days timestamptz[];
  t record;
  f_types bigint;
  f_events bigint;
begin
  perform pg_advisory_xact_lock(7246330003);
  select array_agg(service_id), array_agg(bucket) into hot_services, hot_days
  from log_rollup_1d_store
  where (select count(*) from jsonb_object_keys(event_counts)) > 100;
  if hot_services is null then
    return;
  end if;
  for t in
    select * from (values ('log_rollup_1m_store', '1m'), ('log_rollup_1h_store', '1h'),
                          ('log_rollup_1d_store', '1d')) x (tbl, name)
  loop
    execute format($q$
      with up as (
        update %1$I r set event_counts = f.kept, event_other = r.event_other + f.folded_events
        from (
          select s.service_id, s.bucket, fold.*
          from unnest($1, $2) as hot (service_id, day)
          join %1$I s on s.service_id = hot.service_id
            and s.bucket >= hot.day and s.bucket < hot.day + interval '1 day'
          cross join lateral observian_event_counts_fold(s.event_counts, 100) as fold
          where (select count(*) from jsonb_object_keys(s.event_counts)) > 100
        ) f
        where r.service_id = f.service_id and r.bucket = f.bucket
        returning f.folded_types, f.folded_events
      )
      select coalesce(sum(folded_types), 0), coalesce(sum(folded_events), 0) from up
    $q$, t.tbl)
    into f_types, f_events
    using hot_services, hot_days;
    update rollup_fold_stats
      set folded_types = folded_types + f_types, folded_events = folded_events + f_events
      where tier = t.name;
  end loop;
end;
$do$;
