-- Watching (issue 16): alert rules and SLOs evaluated on the rollups by a third background job,
-- their state kept here so restarts and other instances continue the same episode, and the
-- notifications sent for them, routed to the owning team.

-- Where notifications go: an Alertmanager-style webhook or a Slack incoming webhook.
create table alert_channels (
  id bigint generated always as identity primary key,
  name text not null unique check (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
  type text not null check (type in ('webhook', 'slack')),
  url text not null check (char_length(url) <= 2000),
  -- HMAC key for X-Observian-Signature-256 (webhook channels).
  secret text check (char_length(secret) <= 256),
  created_at timestamptz not null default now()
);

-- A team's default channel (services.team_owner names the team). Small: a reference table.
create table teams (
  name text primary key check (char_length(name) between 1 and 100),
  channel_id bigint references alert_channels (id) on delete set null,
  updated_at timestamptz not null default now()
);

create table alert_rules (
  id bigint generated always as identity primary key,
  name text not null check (char_length(name) between 1 and 200),
  -- Service and team names the rule watches (both empty: every service).
  services jsonb not null default '[]'::jsonb,
  teams jsonb not null default '[]'::jsonb,
  kind text not null
    check (kind in ('error_rate', 'latency_p95', 'latency_p99', 'no_traffic', 'volume_drop')),
  threshold double precision not null,
  window_s integer not null check (window_s between 60 and 86400),
  for_s integer not null default 0 check (for_s between 0 and 86400),
  severity text not null check (severity in ('page', 'ticket', 'info')),
  -- Channel names; empty: the owning team's channel, else ALERT_DEFAULT_CHANNEL.
  channels jsonb not null default '[]'::jsonb,
  labels jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table slos (
  id bigint generated always as identity,
  service_id integer not null references services (id),
  name text not null check (char_length(name) between 1 and 200),
  objective double precision not null check (objective > 0 and objective < 100),
  period_days integer not null check (period_days in (28, 30)),
  indicator text not null check (indicator in ('availability', 'latency')),
  latency_threshold_ms double precision
    check (latency_threshold_ms is null or latency_threshold_ms > 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check ((indicator = 'latency') = (latency_threshold_ms is not null)),
  -- Keyed by service, like log_events (Citus); ids stay unique on their own.
  primary key (service_id, id),
  unique (service_id, name)
);
create unique index slos_id_idx on slos (id);

-- One row per watched thing: a rule on a service, or an SLO's page or ticket alert. An episode
-- runs from pending (or firing, with no `for`) to resolved; a new one starts with a new number.
create table alerts (
  service_id integer not null references services (id),
  source text not null check (source in ('rule', 'slo')),
  source_id bigint not null,
  -- '' for a rule; 'page' or 'ticket' for an SLO's two alerts.
  alert_key text not null default '',
  episode bigint not null default 1,
  state text not null check (state in ('pending', 'firing', 'resolved')),
  since timestamptz not null,
  -- The value that crossed (or, resolved, the last value seen), and when it was evaluated.
  value double precision,
  evaluated_at timestamptz not null default now(),
  fired_at timestamptz,
  resolved_at timestamptz,
  -- What was last sent for this episode, and when: one firing notice, repeats after
  -- repeat_interval while it fires, one resolved notice.
  notified_state text check (notified_state in ('firing', 'resolved')),
  last_notified_at timestamptz,
  primary key (service_id, source, source_id, alert_key)
);
create index alerts_open_idx on alerts (state) where state <> 'resolved';

-- Silences suppress notifications (state is still tracked) while now < ends_at.
create table alert_silences (
  id bigint generated always as identity primary key,
  -- {service?, team?, rule?}: every given matcher must match.
  matchers jsonb not null,
  starts_at timestamptz not null default now(),
  ends_at timestamptz not null,
  comment text not null check (char_length(comment) <= 1000),
  created_by text,
  created_at timestamptz not null default now()
);

-- Each delivery attempt of a notification.
create table alert_deliveries (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  channel_id bigint references alert_channels (id) on delete set null,
  channel_name text not null,
  service_id integer not null references services (id),
  source text not null,
  source_id bigint not null,
  alert_key text not null,
  episode bigint not null,
  status text not null check (status in ('firing', 'resolved')),
  attempt integer not null,
  outcome text not null check (outcome in ('delivered', 'failed', 'rejected')),
  http_status integer,
  error text check (char_length(error) <= 2000),
  duration_ms double precision
);
create index alert_deliveries_at_idx on alert_deliveries (at);

-- The third background job's switch and run record, beside the ingestor and the pruner.
alter table job_control drop constraint job_control_job_check;
alter table job_control add constraint job_control_job_check
  check (job in ('ingestor', 'pruner', 'alerts'));
insert into job_control (job, enabled, updated_by) values ('alerts', true, 'migration');
