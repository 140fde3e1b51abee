-- GitHub event ids already stored, so each event is stored exactly once across polls,
-- restarts and instances. The ingestor inserts here in the same transaction as the events
-- (ON CONFLICT DO NOTHING RETURNING tells it which ids are new). GitHub ids are strings and
-- unsorted, so no "highest id seen" shortcut. created_at is the event's own time: the pruner
-- forgets ids once their events are older than the ingest window, since the ingestor skips
-- such events anyway and cannot store them twice.
create table github_seen_events (
  github_id text primary key,
  created_at timestamptz not null,
  seen_at timestamptz not null default now()
);

create index github_seen_events_created_idx on github_seen_events (created_at);
