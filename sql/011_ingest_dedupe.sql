-- Idempotency keys of ingested events: an event sent again with the same key (its event_id, or
-- the request's Idempotency-Key and its index in the body) within INGEST_DEDUPE_HOURS is not
-- stored again, and the retry is answered with the id stored the first time. Keyed by
-- service_id like log_events, so it distributes with it (Citus); the pruner deletes old keys.
create table ingest_dedupe (
  service_id integer not null references services (id),
  key text not null check (char_length(key) <= 300),
  event_id bigint not null,
  created_at timestamptz not null default now(),
  primary key (service_id, key)
);

create index ingest_dedupe_created_idx on ingest_dedupe (created_at);
