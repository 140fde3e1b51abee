-- Instances remember stored keys while they LISTEN on observian_keys (src/access/key-cache.ts).
-- Any change that could revoke or narrow a key notifies them, whether it comes through the API
-- (DELETE /keys) or from SQL typed by an operator: a deleted row, a new expiry, a new role or
-- scope. Writes of last_used_at alone do not.
create function observian_keys_changed() returns trigger
language plpgsql as $$
begin
  perform pg_notify('observian_keys', tg_op);
  return null;
end;
$$;

create trigger api_keys_changed
  after update of name, role, teams, services, rate_limit_per_s, expires_at, token_sha256
  or delete or truncate on api_keys
  for each statement execute function observian_keys_changed();
