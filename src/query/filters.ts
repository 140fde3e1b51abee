// The filters GET /logs and the live feed share: one zod schema for the query string, one SQL
// fragment for the database, one predicate for events streamed from memory.
import { z } from "@hono/zod-openapi";
import type { Fragment } from "postgres";
import { SERVICE_NAME } from "../config.ts";
import type { Sql } from "../db/connect.ts";
import { ISO_TIME_PATTERN, MAX_LATENCY_MS, NO_NUL } from "../ingest/validate.ts";
import { exampleTime, HOUR_MS, parseIsoTime } from "../time.ts";

// Where GET /logs and the summary read their time bounds from.
export { EARLIEST_TIME, parseIsoTime } from "../time.ts";

const ISO_TIME = new RegExp(ISO_TIME_PATTERN);

const isoTime = (name: string, example?: string) =>
  z.string().refine((s) => ISO_TIME.test(s), {
    error: "must be an ISO 8601 time with a zone, e.g. 2026-11-28T07:00:00Z",
    abort: true,
  })
    .refine((s) => parseIsoTime(s) !== null, { error: "is not a valid time" })
    .optional().openapi({
      param: { name, in: "query" },
      // Not `format: date-time`: a space for the T and a zone without a colon are accepted too.
      pattern: ISO_TIME_PATTERN,
      ...(example === undefined ? {} : { example }),
    });

/** Letters, digits and . _ - /, comma-separated (spaces around commas allowed). */
const SERVICE_LIST = /^ *[A-Za-z0-9._\-/]{1,100} *(, *[A-Za-z0-9._\-/]{1,100} *)*$/;

const serviceNames = z.union([z.string(), z.array(z.string())]).optional()
  .transform((v, ctx) => {
    if (v === undefined) return undefined;
    const names = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")).map((s) => s.trim());
    for (const n of names) {
      // An empty name is refused rather than read as "no filter": a client that sent the
      // parameter meant to narrow the result.
      if (n === "") {
        ctx.addIssue({ code: "custom", message: "must not be empty" });
        return z.NEVER;
      }
      if (!SERVICE_NAME.test(n)) {
        ctx.addIssue({ code: "custom", message: `"${n.slice(0, 120)}" is not a service name` });
        return z.NEVER;
      }
    }
    // The SQL's `= any(...)` and the live filter take any number; a URL holds a few hundred.
    return [...new Set(names)];
  })
  .openapi({
    param: { name: "service_name", in: "query", style: "form", explode: true },
    description: "Repeatable (or comma-separated): events of any of these services.",
    // What clients send, rather than the union zod validates (a repeated parameter arrives as
    // an array, a single one as a string).
    type: "array",
    items: { type: "string", pattern: SERVICE_LIST.source, minLength: 1 },
    example: ["checkout-service"],
  });

const INTEGER = /^-?\d{1,16}$/;
// What JSON (and so most clients' number formatting) writes: 250, 0.5, 1e-7.
const NUMBER = /^-?\d{1,16}(\.\d{1,16})?([eE][+-]?\d{1,3})?$/;

/**
 * A query-string integer in [min, max], documented as an integer (so that a generated client
 * takes `limit: 5`) and parsed strictly: "5" is 5; "", "5.5", "0x10" and "1e2" are refused.
 */
export const intParam = (min: number, max: number, name: string) => {
  const rule = `must be a whole number from ${min} to ${max}`;
  return z.preprocess(
    (v) => (typeof v === "string" && INTEGER.test(v) ? Number(v) : v),
    z.number({ error: rule }).int({ error: rule }).min(min, { error: rule })
      .max(max, { error: rule }),
  ).optional().openapi({ param: { name, in: "query" } });
};

/** A query-string number in [min, max] (decimal or exponent notation), documented as one. */
export const numberParam = (min: number, max: number, name: string) => {
  const rule = `must be a number from ${min} to ${max}`;
  return z.preprocess(
    (v) => (typeof v === "string" && NUMBER.test(v) ? Number(v) : v),
    z.number({ error: rule }).min(min, { error: rule }).max(max, { error: rule }),
  ).optional().openapi({ param: { name, in: "query" } });
};

/** Query-string fields for filtering events (combine with paging fields per endpoint). */
export const filterQueryFields = {
  service_name: serviceNames,
  status_code: intParam(100, 599, "status_code").openapi({
    description: "Exactly this status. With status_class, both must hold.",
    example: 503,
  }),
  status_class: z.enum(["1xx", "2xx", "3xx", "4xx", "5xx"], {
    error: "must be one of 1xx, 2xx, 3xx, 4xx, 5xx",
  }).optional().openapi({ param: { name: "status_class", in: "query" }, example: "5xx" }),
  event_type: z.string().min(1, { error: "must not be empty" }).max(200, {
    error: "must be at most 200 characters",
  })
    .regex(NO_NUL, { error: "must not contain NUL characters" })
    .optional().openapi({ param: { name: "event_type", in: "query" }, example: "deploy" }),
  start_time: isoTime("start_time", exampleTime(-HOUR_MS)).openapi({
    description: "Inclusive: events at or after this time (ISO 8601 with a zone). Not after " +
      "end_time.",
  }),
  end_time: isoTime("end_time", exampleTime()).openapi({
    description: "Inclusive: events at or before this time (ISO 8601 with a zone). Not before " +
      "start_time.",
  }),
  min_latency_ms: numberParam(0, MAX_LATENCY_MS, "min_latency_ms").openapi({
    description: `Events at least this slow, 0 to ${MAX_LATENCY_MS} ms (24 hours).`,
    example: 250,
  }),
};

export const LogFilterQuery = z.object(filterQueryFields);
export type LogFilterQueryInput = z.infer<typeof LogFilterQuery>;

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

export class FilterRangeError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/** From the validated query; throws FilterRangeError for contradictions (start after end). */
export function toFilter(q: LogFilterQueryInput): LogFilter {
  const time = (field: string, s: string | undefined) => {
    if (s === undefined) return undefined;
    const t = parseIsoTime(s);
    if (!t) throw new FilterRangeError(field, "is not a valid time");
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
    throw new FilterRangeError("start_time", "must not be after end_time");
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
