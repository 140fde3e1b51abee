// The filters GET /logs and the live feed share: one SQL fragment for the database, one
// predicate for events streamed from memory. Their query-string schemas are in
// src/http/schemas/filters.ts.
import type { Fragment } from "postgres";
import type { Sql } from "../db/connect.ts";
import { InvalidInputError } from "../errors.ts";
import { parseIsoTime } from "../time.ts";

/** The filter parameters of a query, as the query string gives them (validated). */
export interface FilterParams {
  service_name?: string[];
  status_code?: number;
  status_class?: "1xx" | "2xx" | "3xx" | "4xx" | "5xx";
  event_type?: string;
  start_time?: string;
  end_time?: string;
  min_latency_ms?: number;
}

export interface LogFilter {
  services?: string[];
  statusCode?: number;
  /** 1..5 for 1xx..5xx. */
  statusClass?: number;
  eventType?: string;
  start?: Date;
  end?: Date;
  /**
   * `start`/`end` as UTC ISO text to the microsecond (set by toFilter); a Date keeps only
   * milliseconds. Used by filterSql only while it still denotes the same millisecond as the
   * Date, so code that replaces `start` or `end` need not know about these.
   */
  startExact?: string;
  endExact?: string;
  minLatencyMs?: number;
}

/** From the validated parameters; a contradiction (start after end) is malformed input. */
export function toFilter(q: FilterParams): LogFilter {
  const invalid = (field: string, message: string) =>
    new InvalidInputError([{ field, message }], "malformed");
  const time = (field: string, s: string | undefined) => {
    if (s === undefined) return undefined;
    const t = parseIsoTime(s);
    if (!t) throw invalid(field, "is not a valid time");
    return t;
  };
  const start = time("start_time", q.start_time);
  const end = time("end_time", q.end_time);
  const f: LogFilter = {
    services: q.service_name,
    statusCode: q.status_code,
    statusClass: q.status_class ? Number(q.status_class[0]) : undefined,
    eventType: q.event_type,
    start: start?.date,
    end: end?.date,
    startExact: start?.exact,
    endExact: end?.exact,
    minLatencyMs: q.min_latency_ms,
  };
  // Fixed-width UTC text compares like the instants it denotes.
  if (start && end && start.exact > end.exact) {
    throw invalid("start_time", "must not be after end_time");
  }
  return f;
}

/**
 * The exact bound when it carries digits below the millisecond (and still denotes `d`), else
 * undefined. It is sent as text, cast in SQL: postgres.js serialises timestamptz parameters
 * through a JS Date, which would drop the microseconds.
 */
function subMillisecond(d: Date, exact: string | undefined): string | undefined {
  if (exact === undefined || Date.parse(exact) !== d.getTime()) return undefined;
  return /\.\d{3}000Z$/.test(exact) ? undefined : exact;
}

/** `and …` conditions on log_events aliased `e`; every value is a bound parameter. */
export function filterSql(sql: Sql, f: LogFilter): Fragment {
  const parts: Fragment[] = [];
  if (f.services) {
    parts.push(sql`and e.service_id = any(array(
      select id from services where name = any(${f.services}::text[])))`);
  }
  if (f.statusCode !== undefined) parts.push(sql`and e.status_code = ${f.statusCode}`);
  if (f.statusClass !== undefined) {
    parts.push(
      sql`and e.status_code between ${f.statusClass * 100} and ${f.statusClass * 100 + 99}`,
    );
  }
  if (f.eventType !== undefined) parts.push(sql`and e.event_type = ${f.eventType}`);
  // The Date bounds are constants to the planner, which prunes partitions with them while
  // planning; a cast from text is only known when the query runs. So the millisecond bound
  // always goes in as a Date (widened to whole milliseconds), and an exact bound joins it
  // only when there are microseconds to respect.
  if (f.start) {
    parts.push(sql`and e."timestamp" >= ${f.start}`);
    const exact = subMillisecond(f.start, f.startExact);
    if (exact) parts.push(sql`and e."timestamp" >= ${exact}::text::timestamptz`);
  }
  if (f.end) {
    const exact = subMillisecond(f.end, f.endExact);
    if (exact) {
      parts.push(sql`and e."timestamp" < ${new Date(f.end.getTime() + 1)}
        and e."timestamp" <= ${exact}::text::timestamptz`);
    } else parts.push(sql`and e."timestamp" <= ${f.end}`);
  }
  if (f.minLatencyMs !== undefined) parts.push(sql`and e.latency_ms >= ${f.minLatencyMs}`);
  return parts.reduce((acc, p) => sql`${acc} ${p}`, sql``);
}

/** The same filter applied to an event already in memory (live feed). */
export function matches(
  f: LogFilter,
  e: {
    service_name: string;
    status_code: number;
    event_type: string | null;
    timestamp: string;
    latency_ms: number;
  },
): boolean {
  if (f.services && !f.services.includes(e.service_name)) return false;
  if (f.statusCode !== undefined && e.status_code !== f.statusCode) return false;
  if (f.statusClass !== undefined && Math.floor(e.status_code / 100) !== f.statusClass) {
    return false;
  }
  if (f.eventType !== undefined && e.event_type !== f.eventType) return false;
  if (f.minLatencyMs !== undefined && e.latency_ms < f.minLatencyMs) return false;
  const t = Date.parse(e.timestamp);
  if (f.start && t < f.start.getTime()) return false;
  if (f.end && t > f.end.getTime()) return false;
  return true;
}
