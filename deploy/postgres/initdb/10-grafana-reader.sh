#!/bin/sh
# Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d):
# creates grafana_reader, the role Grafana's PostgreSQL datasource uses. It may read every
# table, including those the API's migrations create later, and can change nothing.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v reader=grafana_reader \
  -v password="${GRAFANA_DB_PASSWORD:?set GRAFANA_DB_PASSWORD}" \
  -v owner="$POSTGRES_USER" \
  -v db="$POSTGRES_DB" <<'SQL'
create role :"reader" login password :'password';
alter role :"reader" set default_transaction_read_only = on;
alter role :"reader" set statement_timeout = '30s';
grant connect on database :"db" to :"reader";
grant usage on schema public to :"reader";
grant select on all tables in schema public to :"reader";
alter default privileges for role :"owner" in schema public grant select on tables to :"reader";
SQL
