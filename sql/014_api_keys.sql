-- API keys for machines (issue 13): stored only as the SHA-256 of the token, which is 32 random
-- bytes and shown once, at creation. A key has one role (a fixed set of rights) and may be
-- limited to teams (services.team_owner) and to named services. Small, so a Citus reference
-- table; deleting a row revokes the key on every instance at once (each request looks it up).
create table api_keys (
  id bigint generated always as identity primary key,
  name text not null check (length(name) between 1 and 100),
  role text not null check (role in ('admin', 'writer', 'reader')),
  teams text[] not null default '{}',
  services text[] not null default '{}',
  rate_limit_per_s double precision check (rate_limit_per_s > 0),
  expires_at timestamptz,
  -- The first characters of the token after "obs_", so people can tell keys apart.
  prefix text not null,
  token_sha256 bytea not null unique,
  created_at timestamptz not null default now(),
  last_used_at timestamptz
);
