// The filters GET /logs and the live feed share: one zod schema for the query string, one SQL
// fragment for the database, one predicate for events streamed from memory.
import { z } from "@hono/zod-openapi";
import type { Fragment } from "postgres";
import { SERVICE_NAME } from "../config.ts";
import type { Sql } from "../db/connect.ts";

const ISO_WITH_ZONE =
  /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})$/;

const isoTime = (name: string) =>
  z.string().regex(ISO_WITH_ZONE, { error: "must be an ISO 8601 time with a zone" })
    .refine((s) => !Number.isNaN(Date.parse(s.replace(" ", "T"))), {
      error: "is not a valid time",
    })
    .optional().openapi({
      param: { name, in: "query" },
      example: "2026-11-28T00:00:00Z",
    });

const serviceNames = z.union([z.string(), z.array(z.string())]).optional()
  .transform((v, ctx) => {
    if (v === undefined) return undefined;
    const names = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")).map((s) => s.trim())
      .filter(Boolean);
    for (const n of names) {
      if (!SERVICE_NAME.test(n)) {
        ctx.addIssue({ code: "custom", message: `"${n.slice(0, 120)}" is not a service name` });
        return z.NEVER;
      }
    }
    return names.length ? names : undefined;
  })
  .openapi({
    param: { name: "service_name", in: "query", style: "form", explode: true },
    description: "Repeatable (or comma-separated): events of any of these services.",
    example: "checkout-service",
  });

const wholeNumber = (min: number, max: number, name: string, example: number) =>
  z.string().regex(/^\d+$/, { error: `must be a whole number from ${min} to ${max}` })
    .transform(Number)
    .pipe(
      z.number().int().min(min, { error: `must be at least ${min}` }).max(max, {
        error: `must be at most ${max}`,
      }),
    )
    .optional().openapi({ param: { name, in: "query" }, example });

/** Query-string fields for filtering events (combine with paging fields per endpoint). */
export const filterQueryFields = {
  service_name: serviceNames,
  status_code: wholeNumber(100, 599, "status_code", 503),
  status_class: z.enum(["1xx", "2xx", "3xx", "4xx", "5xx"], {
    error: "must be one of 1xx, 2xx, 3xx, 4xx, 5xx",
  }).optional().openapi({ param: { name: "status_class", in: "query" }, example: "5xx" }),
  event_type: z.string().min(1).max(200, { error: "must be at most 200 characters" })
    .refine((s) => !s.includes("\0"), { error: "must not contain NUL characters" })
    .optional().openapi({ param: { name: "event_type", in: "query" }, example: "deploy" }),
  start_time: isoTime("start_time"),
  end_time: isoTime("end_time"),
  min_latency_ms: z.string().regex(/^\d+(\.\d+)?$/, { error: "must be a number >= 0" })
    .transform(Number).optional()
    .openapi({ param: { name: "min_latency_ms", in: "query" }, example: "250" }),
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
  minLatencyMs?: number;
}

export class FilterRangeError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

/** From the validated query; throws FilterRangeError for contradictions (start after end). */
export function toFilter(q: LogFilterQueryInput): LogFilter {
  const f: LogFilter = {
    services: q.service_name,
    statusCode: q.status_code,
    statusClass: q.status_class ? Number(q.status_class[0]) : undefined,
    eventType: q.event_type,
    start: q.start_time ? new Date(q.start_time.replace(" ", "T")) : undefined,
    end: q.end_time ? new Date(q.end_time.replace(" ", "T")) : undefined,
    minLatencyMs: q.min_latency_ms,
  };
  if (f.start && f.end && f.start > f.end) {
    throw new FilterRangeError("start_time", "must not be after end_time");
  }
  return f;
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
  if (f.start) parts.push(sql`and e."timestamp" >= ${f.start}`);
  if (f.end) parts.push(sql`and e."timestamp" <= ${f.end}`);
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
