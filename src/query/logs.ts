// GET /logs: filtered events, newest first, paged by offset (the original API's way) or by an
// opaque keyset cursor on ("timestamp", id) that stays exact while events keep arriving.
import type { Sql } from "../db/connect.ts";
import { boundedQueries, type QueryBounds } from "./bounded.ts";
import { InvalidInputError } from "../errors.ts";
import { eventColumns, type EventRow, type LogEventOut, toEventOut } from "./events.ts";
import { type FilterParams, filterSql, type LogFilter, toFilter } from "./filters.ts";
import { parseIsoTime } from "../time.ts";

export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 1000;
/** Deep offsets read and throw away every skipped row; past this, use the cursor. */
export const MAX_OFFSET = 100_000;

/** A position in the newest-first order: the last event a page ended with. */
export interface Cursor {
  /** Exact stored time, fixed-width UTC to the microsecond (EventRow.ts_text). */
  ts: string;
  /** The event id, as decimal text (bigint). */
  id: string;
}

/** What a cursor looks like (base64url); only those this API issued are accepted. */
export const CURSOR = /^[A-Za-z0-9_-]{1,200}$/;
export const CURSOR_RULE = "is not a cursor issued by this API (malformed or altered)";
const CURSOR_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const CURSOR_ID = /^[1-9]\d{0,18}$/;
const MAX_BIGINT = 9223372036854775807n;

/** FNV-1a, 32 bits. */
function checksum(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/**
 * base64url of "ts|id|check". The check is not a secret (a cursor only names a position the
 * client could reach with end_time anyway); it turns an edited or truncated cursor into a 400
 * instead of a silently different page.
 */
export function encodeCursor(c: Cursor): string {
  const payload = `${c.ts}|${c.id}`;
  return btoa(`${payload}|${checksum(payload)}`).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** The cursor, or null when it is not one this API issued. */
export function decodeCursor(s: string): Cursor | null {
  if (!CURSOR.test(s)) return null;
  let text: string;
  try {
    text = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    return null;
  }
  const parts = text.split("|");
  if (parts.length !== 3) return null;
  const [ts, id, check] = parts;
  if (check !== checksum(`${ts}|${id}`)) return null;
  if (!CURSOR_TS.test(ts) || parseIsoTime(ts) === null) return null;
  if (!CURSOR_ID.test(id) || BigInt(id) > MAX_BIGINT) return null;
  return { ts, id };
}

/** The parameters of GET /logs, as the query string gives them (validated). */
export interface LogsParams extends FilterParams {
  limit?: number;
  offset?: number;
  cursor?: Cursor;
}

export interface LogsRequest {
  filter: LogFilter;
  limit: number;
  offset: number;
  cursor?: Cursor;
}

/** From the validated parameters; contradictions are malformed input. */
export function toLogsRequest(q: LogsParams): LogsRequest {
  if (q.offset !== undefined && q.cursor !== undefined) {
    throw new InvalidInputError([
      { field: "offset", message: "cannot be combined with cursor" },
      { field: "cursor", message: "cannot be combined with offset" },
    ], "malformed");
  }
  return {
    filter: toFilter(q),
    limit: q.limit ?? DEFAULT_LIMIT,
    offset: q.offset ?? 0,
    cursor: q.cursor,
  };
}

export interface LogsPage {
  events: LogEventOut[];
  /** Where the next page starts; null when this page is the last. */
  nextCursor: string | null;
}

/**
 * One page of matching events, newest first ("timestamp" desc, id desc).
 *
 * With service_name, each service is read through its own primary-key range
 * (service_id, "timestamp", id) scanned backwards in a LATERAL subquery, which stops after
 * offset + limit + 1 rows per service; merging those few rows is cheap. (A plain
 * `service_id = any(…)` cannot use the key's order and walks the time index instead, filtering
 * out every other service's rows.) Without it, log_events_time_idx (or the status / event type
 * index) is walked newest first. The cursor bound is repeated on "timestamp" alone so that
 * partitions newer than the cursor are pruned. Bounded by `opts` (QUERY_TIMEOUT_MS, the
 * request's signal).
 */
export async function queryLogs(
  sql: Sql,
  req: LogsRequest,
  opts: QueryBounds,
): Promise<LogsPage> {
  const { filter, limit, offset, cursor } = req;
  const others = filterSql(sql, { ...filter, services: undefined });
  // The exact time goes in as text: a timestamptz parameter passes through a JS Date in
  // postgres.js and would lose its microseconds, so the cursor would skip or repeat rows. The
  // looser millisecond bound is a Date, a constant the planner prunes partitions with.
  const after = cursor
    ? sql`and e."timestamp" < ${new Date(Date.parse(cursor.ts) + 1)}
      and (e."timestamp", e.id) < (${cursor.ts}::text::timestamptz, ${cursor.id}::text::bigint)`
    : sql``;
  // The best plan depends on the values (5xx is 5% of rows or 0.01%; the range is a minute or a
  // week). A prepared statement switches to a value-blind generic plan after five runs,
  // measured at 50 ms instead of 2 ms for status_class + 24h; so every run is planned with its
  // values. SET LOCAL needs a transaction: begin and commit cost two local round trips; the
  // settings are pipelined with the query.
  const [, rows] = await boundedQueries(sql, opts, (tx) =>
    [
      tx`set local plan_cache_mode = force_custom_plan`,
      // One row more than the page tells whether a next page exists.
      filter.services
        ? tx<EventRow[]>`
        select ${eventColumns(sql)}
        from services s
        cross join lateral (
          select e.* from log_events e
          where e.service_id = s.id ${others} ${after}
          order by e."timestamp" desc, e.id desc
          limit ${offset + limit + 1}
        ) e
        where s.name = any(${filter.services}::text[])
        order by e."timestamp" desc, e.id desc
        limit ${limit + 1} offset ${offset}`
        : tx<EventRow[]>`
        select ${eventColumns(sql)}
        from log_events e
        join services s on s.id = e.service_id
        where true ${others} ${after}
        order by e."timestamp" desc, e.id desc
        limit ${limit + 1} offset ${offset}`,
    ] as const);
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    events: page.map(toEventOut),
    nextCursor: rows.length > limit
      ? encodeCursor({ ts: last.ts_text, id: String(last.id) })
      : null,
  };
}
