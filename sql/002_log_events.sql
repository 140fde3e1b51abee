-- The fact table, range-partitioned by day on "timestamp" (UTC days).
-- No default partition: a row whose day has no partition is refused (SQLSTATE 23514)
-- instead of piling up in a catch-all that retention can never drop cheaply. Ingest
-- only accepts times inside the window that partition upkeep keeps covered.
create sequence log_events_id_seq as bigint;

create table log_events (
  id bigint not null default nextval('log_events_id_seq'),
  service_id integer not null references services (id),
  "timestamp" timestamptz not null,
  status_code smallint not null check (status_code between 100 and 599),
  event_type text check (char_length(event_type) <= 200),
  latency_ms double precision not null check (latency_ms >= 0 and latency_ms < 'Infinity'),
  message text,
  attributes jsonb,
  ingested_at timestamptz not null default now(),
  -- Includes service_id (the Citus distribution column) and "timestamp" (the partition
  -- key). It doubles as the index for "one service, newest first" (scanned backwards).
  primary key (service_id, "timestamp", id)
) partition by range ("timestamp");

alter sequence log_events_id_seq owned by log_events.id;

-- Unfiltered newest-first reads (live feed, GET /logs without filters) and keyset
-- pagination on ("timestamp", id).
create index log_events_time_idx on log_events ("timestamp" desc, id desc);

-- Filters by status code or class (status_class=5xx is a range on status_code).
create index log_events_status_time_idx on log_events (status_code, "timestamp" desc);

-- Filters by event type; partial because most request logs carry none.
create index log_events_event_type_time_idx on log_events (event_type, "timestamp" desc)
  where event_type is not null;

-- Creates the missing daily partitions covering [from_day, to_day] (UTC); returns how many
-- it created. Serialised by an advisory lock so instances starting together do not race.
create function observian_ensure_partitions(from_day date, to_day date)
returns integer
language plpgsql as $$
declare
  d date;
  part text;
  created integer := 0;
begin
  perform pg_advisory_xact_lock(7246330002);
  d := from_day;
  while d <= to_day loop
    part := 'log_events_p' || to_char(d, 'YYYYMMDD');
    if to_regclass(part) is null then
      execute format(
        'create table %I partition of log_events for values from (%L) to (%L)',
        part,
        (d::timestamp at time zone 'UTC'),
        ((d + 1)::timestamp at time zone 'UTC'));
      created := created + 1;
    end if;
    d := d + 1;
  end loop;
  return created;
end;
$$;

-- The days that have a partition, for health checks, metrics and the pruner.
create view log_event_partitions as
select c.relname as partition_name,
       to_date(substring(c.relname from 'p(\d{8})$'), 'YYYYMMDD') as day
from pg_inherits i
join pg_class c on c.oid = i.inhrelid
where i.inhparent = 'log_events'::regclass;
