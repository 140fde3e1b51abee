-- One row per background job: its switch and its run record. All instances read and write
-- this row, so the switch and the job's cursor are shared, never kept in process memory.
create table job_control (
  job text primary key check (job in ('ingestor', 'pruner')),
  enabled boolean not null,
  updated_at timestamptz not null default now(),
  updated_by text,
  last_started_at timestamptz,
  last_finished_at timestamptz,
  last_success_at timestamptz,
  last_error text,
  consecutive_failures integer not null default 0,
  state jsonb not null default '{}'::jsonb
);

-- The GitHub poller is opt-in: a fresh install should not call out to the internet until
-- an operator switches it on. Retention is on from the start.
insert into job_control (job, enabled, updated_by) values
  ('ingestor', false, 'migration'),
  ('pruner', true, 'migration');
