-- Sign-in for people (issue 13). A person is known by login (case-insensitive), gets a role from
-- an admin (or ADMIN_USERS); null means signed in but without any right. Sessions are stored as
-- the SHA-256 of their random id, never the id itself, and look the user's role up at each
-- request, so a change of role or a deleted session applies at once on every instance. Pending
-- logins live here too, so any instance can finish a sign-in another began.
create table users (
  id bigint generated always as identity primary key,
  login text not null check (length(login) between 1 and 200),
  email text,
  -- Null until the first sign-in (an admin may create the row in advance); then the provider
  -- that vouched for the login, so another provider cannot claim the same name.
  provider text check (provider in ('github', 'oidc')),
  role text check (role in ('admin', 'writer', 'reader')),
  teams text[] not null default '{}',
  created_at timestamptz not null default now(),
  last_seen_at timestamptz
);
create unique index users_login on users (lower(login));

create table sessions (
  id_sha256 bytea primary key,
  user_id bigint not null references users (id) on delete cascade,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index sessions_user_id on sessions (user_id);
create index sessions_expires_at on sessions (expires_at);

create table pending_logins (
  state text primary key,
  provider text not null check (provider in ('github', 'oidc')),
  code_verifier text not null,
  nonce text,
  redirect_uri text not null,
  return_to text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index pending_logins_expires_at on pending_logins (expires_at);
