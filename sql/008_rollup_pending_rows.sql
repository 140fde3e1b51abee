-- Pending deltas per (service, minute, status code, event type) instead of per (service,
-- minute) with jsonb count maps. Ingest then appends them with one plain GROUP BY and no jsonb
-- (backend CPU per event, 32-event commits: ~43 µs before, ~35 µs after, ~29 µs without any
-- rollup), and compaction no longer expands two jsonb values per delta.
--
-- A delta in the new shape has status_counts and event_counts null; the views build the maps
-- from status_code and event_type. Deltas in the old shape (from an instance not yet upgraded
-- during a rolling deploy) keep their maps and are read and compacted as before.

alter table log_rollup_pending
  add column status_code smallint,
  add column event_type text,
  alter column status_counts drop not null,
  alter column status_counts drop default,
  alter column event_counts drop not null,
  alter column event_counts drop default;

-- The three read views (same columns as before), each its tier table plus the pending deltas
-- re-bucketed, with count maps built for deltas in the new shape.
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
        select service_id, bucket, count, errors, latency_sum, %3$s, status_counts, event_counts
        from %2$I
        union all
        select service_id, date_trunc(%4$L, bucket, 'UTC'), count, errors, latency_sum, %3$s,
          coalesce(status_counts, jsonb_build_object(status_code::text, count)),
          coalesce(event_counts, case when event_type is null then '{}'::jsonb
                                      else jsonb_build_object(event_type, count) end)
        from log_rollup_pending
    $v$, tier.name, tier.name || '_store', hist, tier.unit);
  end loop;
end;
$do$;

-- The sum of several count maps ({"200": 3} + {"200": 1, "404": 2} = {"200": 4, "404": 2}).
create function observian_counts_add_all(maps jsonb[])
returns jsonb
language sql immutable parallel safe as $$
  select coalesce(jsonb_object_agg(k, n), '{}'::jsonb)
  from (select kv.k, sum(kv.v::bigint) as n
        from unnest(maps) as m (map), jsonb_each_text(m.map) as kv (k, v)
        group by 1) sums
$$;

-- Moves every pending delta into the three tiers; returns the deltas moved, or -1 when another
-- session is compacting. The deltas are summed once per (service, minute), in both shapes, and
-- each tier is upserted from those few rows rather than from every delta again.
create or replace function observian_rollup_compact()
returns bigint
language plpgsql as $fn$
declare
  moved_count bigint;
  minutes log_rollup_1m_store[];
  hist text := (select string_agg(format('h%s', lpad(i::text, 2, '0')), ', ')
                from generate_series(0, 19) i);
  hist_sums text := (select string_agg(format('sum(h%1$s)::bigint as h%1$s', lpad(i::text, 2, '0')), ', ')
                     from generate_series(0, 19) i);
  hist_adds text := (select string_agg(format('h%1$s = r.h%1$s + excluded.h%1$s', lpad(i::text, 2, '0')), ', ')
                     from generate_series(0, 19) i);
  tier record;
begin
  if not pg_try_advisory_xact_lock(7246330003) then
    return -1;
  end if;
  execute format($q$
    with moved as (delete from log_rollup_pending returning *),
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
    types as (
      select service_id, bucket, jsonb_object_agg(k, n) as m
      from (select service_id, bucket, k, sum(n) as n
            from (select service_id, bucket, event_type as k, count as n
                  from moved where event_counts is null and event_type is not null
                  union all
                  select service_id, bucket, kv.k, kv.v::bigint
                  from moved, jsonb_each_text(event_counts) as kv (k, v)) x
            group by 1, 2, 3) y
      group by 1, 2
    )
    select (select count(*) from moved),
      array(select row(sums.service_id, sums.bucket, sums.count, sums.errors, sums.latency_sum, %s,
                       coalesce(status.m, '{}'::jsonb), coalesce(types.m, '{}'::jsonb)
                      )::log_rollup_1m_store
            from sums
            left join status using (service_id, bucket)
            left join types using (service_id, bucket))
  $q$, hist_sums, hist) into moved_count, minutes;
  if moved_count = 0 then
    return 0;
  end if;
  for tier in
    select * from (values ('log_rollup_1m_store', 'minute'), ('log_rollup_1h_store', 'hour'),
                          ('log_rollup_1d_store', 'day')) t (tbl, unit)
  loop
    execute format($q$
      insert into %1$I as r (service_id, bucket, count, errors, latency_sum, %3$s,
                            status_counts, event_counts)
      select service_id, date_trunc(%2$L, bucket, 'UTC') as b, sum(count)::bigint,
        sum(errors)::bigint, sum(latency_sum), %4$s,
        observian_counts_add_all(array_agg(status_counts)),
        observian_counts_add_all(array_agg(event_counts))
      from unnest($1) group by 1, 2
      order by 1, 2
      on conflict (service_id, bucket) do update set
        count = r.count + excluded.count,
        errors = r.errors + excluded.errors,
        latency_sum = r.latency_sum + excluded.latency_sum,
        %5$s,
        status_counts = observian_counts_add(r.status_counts, excluded.status_counts),
        event_counts = observian_counts_add(r.event_counts, excluded.event_counts)
    $q$, tier.tbl, tier.unit, hist, hist_sums, hist_adds)
    using minutes;
  end loop;
  return moved_count;
end;
$fn$;
