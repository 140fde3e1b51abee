// The query-string filters GET /logs, the live feed and the summary share.
import { z } from "@hono/zod-openapi";
import { SERVICE_NAME } from "../../config.ts";
import { ISO_TIME_PATTERN, MAX_LATENCY_MS, NO_NUL } from "../../ingest/validate.ts";
import { exampleTime, HOUR_MS, parseIsoTime } from "../../time.ts";
import { intParam, numberParam } from "./params.ts";

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
