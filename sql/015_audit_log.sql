-- The audit log (issue 13): every change made through the API, written in the same transaction
-- as the change, and every refusal on an admin route. Who (a key, an API_KEYS position or a
-- signed-in person, never a token), what, the target, when, from which address and request.
-- Kept AUDIT_RETENTION_DAYS by the pruner. Not keyed by service: changes concern keys, users and
-- jobs as much as services, and the table stays small (a Citus reference or local table).
create table audit_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default now(),
  actor text not null,
  action text not null,
  target text,
  detail jsonb not null default '{}'::jsonb,
  client_addr text,
  request_id text
);

-- GET /audit pages newest first by (at, id); the pruner deletes by at.
create index audit_log_at_id on audit_log (at desc, id desc);
