-- The dimension: one row per service. Small by design, so a distributed deployment
-- (Citus) can make it a reference table copied to every node.
create table services (
  id integer generated always as identity primary key,
  name text not null unique
    check (name ~ '^[A-Za-z0-9._/-]{1,100}$'),
  team_owner text check (char_length(team_owner) <= 200),
  created_at timestamptz not null default now()
);
