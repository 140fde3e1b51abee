// The statements that store events, shared by the ingest writer and the GitHub ingestor, so
// both write events, rollup deltas and the live-feed notice the same way.
import type { Sql, Tx } from "../db/connect.ts";
import { SQLSTATE } from "../db/sqlstate.ts";
import { ensurePartitions, partitionWindow, utcDay } from "../db/partitions.ts";
import { logger } from "../logging.ts";
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

export interface Inserted {
  /** In input order; an event already stored under its key gets the id it was stored with. */
  ids: number[];
  /** Events not stored because their key was (see sql/011_ingest_dedupe.sql). */
  duplicates: number;
}

/**
 * Inserts the events with their rollup deltas and the notice for live feeds, in one statement
 * (one round trip; atomic on its own, or part of the caller's transaction). Rows travel as one
 * JSON text parameter: postgres.js can serialise array parameters wrongly on a connection that
 * has not fetched its array types (porsager/postgres#789). Events with an idempotency key take
 * a statement of their own, so the common case pays nothing for them.
 */
export async function insertEvents(
  sql: Queryable,
  events: readonly NewEvent[],
  serviceIds: readonly number[],
): Promise<Inserted> {
  const keyed = events.some((e) => e.key);
  const rows = JSON.stringify(events.map((e, i) => ({
    s: serviceIds[i],
    t: e.timestamp.toISOString(),
    c: e.statusCode,
    e: e.eventType,
    l: e.latencyMs,
    m: e.message,
    a: e.attributes,
    ...(keyed ? { k: e.key ?? null, i } : {}),
  })));
  if (!keyed) {
    const [row] = await sql.unsafe<{ ids: number[] }[]>(INSERT_EVENTS, [rows], {
      prepare: true,
    });
    return { ids: row.ids, duplicates: 0 };
  }
  const [row] = await sql.unsafe<{ ids: (number | null)[]; duplicates: number }[]>(
    INSERT_KEYED_EVENTS,
    [rows],
    { prepare: true },
  );
  const ids = row.ids;
  const unseen = ids.flatMap((id, i) => id === null ? [i] : []);
  if (unseen.length) {
    // A copy committed by another transaction while this statement ran: its insert waited for
    // that commit, but the statement's snapshot predates it. Read it now.
    const found = await sql.unsafe<{ i: number; event_id: number }[]>(
      `select r.i, d.event_id from json_to_recordset($1::text::json) as r (i int, s int, k text)
       join ingest_dedupe d on d.service_id = r.s and d.key = r.k`,
      [JSON.stringify(unseen.map((i) => ({ i, s: serviceIds[i], k: events[i].key })))],
    );
    for (const f of found) ids[f.i] = Number(f.event_id);
  }
  return { ids: ids as number[], duplicates: row.duplicates };
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

/** Forgets idempotency keys older than `before`; returns how many. */
export async function deleteDedupeKeys(sql: Queryable, before: Date): Promise<number> {
  const res = await sql`delete from ingest_dedupe where created_at < ${before}`;
  return res.count;
}

/** PostgreSQL's refusal of a row whose day has no partition. */
export function isMissingPartition(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === SQLSTATE.check_violation && /no partition/i.test(e.message ?? "");
}

/**
 * Runs `insert`; when PostgreSQL refuses a day that has no partition (upkeep fell behind, e.g.
 * the server ran past midnight without a pruner run), creates the days `timestamps` span and
 * runs it once more. With `retentionDays`, days outside today's partition window are not
 * created: the refusal stands.
 */
export async function withMissingPartitions<T>(
  sql: Sql,
  timestamps: readonly Date[],
  insert: () => Promise<T>,
  opts: { retentionDays?: number } = {},
): Promise<T> {
  try {
    return await insert();
  } catch (err) {
    if (!isMissingPartition(err) || timestamps.length === 0) throw err;
    const days = timestamps.map(utcDay).sort();
    const [first, last] = [days[0], days[days.length - 1]];
    if (opts.retentionDays !== undefined) {
      const allowed = partitionWindow(new Date(), opts.retentionDays);
      if (first < allowed.from || last > allowed.to) throw err;
    }
    const created = await ensurePartitions(sql, first, last);
    logger("ingest").warning("created {created} missing partition(s) during ingest", { created });
    return await insert();
  }
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

// Ids are taken in the first CTE so that the key claims can carry them. A key already stored (or
// claimed by a concurrent transaction, whose commit the claim waits for) leaves its row out; the
// answer then names the id stored the first time (null when that commit came after this
// statement's snapshot: insertEvents reads those afterwards). Two rows with one key in the same
// statement: the first claims it, the second is a duplicate.
const INSERT_KEYED_EVENTS = `
  with r as (
    select s, t, c, e, l, m, a, k, i, nextval('log_events_id_seq') as id
    from json_to_recordset($1::text::json)
      as r (s int, t timestamptz, c smallint, e text, l float8, m text, a jsonb, k text, i int)
  ),
  claimed as (
    insert into ingest_dedupe (service_id, key, event_id)
    select s, k, id from r where k is not null order by i
    on conflict (service_id, key) do nothing
    returning event_id
  ),
  ins as (
    insert into log_events
      (id, service_id, "timestamp", status_code, event_type, latency_ms, message, attributes)
    select id, s, t, c, e, l, m, a from r
    where k is null or id in (select event_id from claimed)
    returning id, service_id, "timestamp", status_code, event_type, latency_ms
  ),
  ${pendingCte("ins")}
  select
    (select json_agg(case when r.k is null or c.event_id is not null then r.id
                          else d.event_id end order by r.i)
       from r
       left join claimed c on c.event_id = r.id
       left join ingest_dedupe d on d.service_id = r.s and d.key = r.k) as ids,
    (select count(*) from r)::int - (select count(*) from ins)::int as duplicates,
    (select pg_notify('${EVENTS_CHANNEL}', json_build_object(
       'from', min("timestamp"), 'to', max("timestamp"),
       'ids', json_build_array(json_build_array(min(id), max(id))))::text)
     from ins having count(*) > 0) as notified`;
