-- Markers: what changed, and when (deployments, releases), for charts to draw beside the events.
-- One per GitHub delivery and service, so a redelivered webhook adds none.
create table markers (
  id bigint generated always as identity,
  service_id integer not null references services (id),
  at timestamptz not null,
  kind text not null check (kind in ('deployment', 'release')),
  title text not null check (char_length(title) <= 300),
  url text check (char_length(url) <= 2000),
  delivery text not null check (char_length(delivery) <= 100),
  -- Keyed by service, like log_events, so the table can be distributed with them (Citus).
  primary key (service_id, id),
  unique (service_id, delivery)
);

create index markers_at_idx on markers (at, service_id);
