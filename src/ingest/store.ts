// The statements that store events, shared by the ingest writer and the GitHub ingestor, so
// both write events, rollup deltas and the live-feed notice the same way.
import type { Sql, Tx } from "../db/connect.ts";
import { pendingCte } from "./rollup.ts";
import type { NewEvent } from "./validate.ts";

export const EVENTS_CHANNEL = "observian_events";

/** What a NOTIFY on EVENTS_CHANNEL carries: where the committed events are. */
export interface CommitNotice {
  from: string;
  to: string;
  ids: [number, number][];
}

/** A pool handle, or a transaction when the caller adds statements of its own. */
export type Queryable = Sql | Tx;

/**
 * Inserts the events with their rollup deltas and the notice for live feeds, in one statement
 * (one round trip; atomic on its own, or part of the caller's transaction). Returns the new ids
 * in input order. Rows travel as one JSON text parameter: postgres.js can serialise array
 * parameters wrongly on a connection that has not fetched its array types (porsager/postgres#789).
 */
export async function insertEvents(
  sql: Queryable,
  events: readonly NewEvent[],
  serviceIds: readonly number[],
): Promise<number[]> {
  const rows = JSON.stringify(events.map((e, i) => ({
    s: serviceIds[i],
    t: e.timestamp.toISOString(),
    c: e.statusCode,
    e: e.eventType,
    l: e.latencyMs,
    m: e.message,
    a: e.attributes,
  })));
  const [row] = await sql.unsafe<{ ids: number[] }[]>(INSERT_EVENTS, [rows], {
    prepare: true,
  });
  return row.ids;
}

/**
 * Ids of the named services, registering unknown ones. Two statements on purpose: a name
 * another transaction inserts concurrently is invisible to a single statement's snapshot.
 */
export async function registerServices(
  sql: Queryable,
  names: readonly string[],
): Promise<Map<string, number>> {
  const list = JSON.stringify(names);
  await sql.unsafe(
    `insert into services (name) select jsonb_array_elements_text($1::text::jsonb)
     on conflict (name) do nothing`,
    [list],
  );
  const rows = await sql.unsafe<{ id: number; name: string }[]>(
    `select id, name from services
     where name in (select jsonb_array_elements_text($1::text::jsonb))`,
    [list],
  );
  return new Map(rows.map((r) => [r.name, r.id]));
}

/** PostgreSQL's refusal of a row whose day has no partition. */
export function isMissingPartition(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === "23514" && /no partition/i.test(e.message ?? "");
}

// Ids come back sorted: one statement takes its sequence values in row order, so sorted ids
// line up with the input. The notice covers the commit's id span; listeners dedupe by id.
const INSERT_EVENTS = `
  with ins as (
    insert into log_events
      (service_id, "timestamp", status_code, event_type, latency_ms, message, attributes)
    select s, t, c, e, l, m, a
    from json_to_recordset($1::text::json)
      as r (s int, t timestamptz, c smallint, e text, l float8, m text, a jsonb)
    returning id, service_id, "timestamp", status_code, event_type, latency_ms
  ),
  ${pendingCte("ins")}
  select json_agg(id order by id) as ids,
    pg_notify('${EVENTS_CHANNEL}', json_build_object(
      'from', min("timestamp"), 'to', max("timestamp"),
      'ids', json_build_array(json_build_array(min(id), max(id))))::text) as notified
  from ins`;
