// Turns a request body into events, or refuses it whole with every bad index and field.
import { z } from "@hono/zod-openapi";
import { SERVICE_NAME } from "../config.ts";
import { type FieldError, InvalidInputError } from "../errors.ts";
import { DAY_MS } from "../time.ts";

export const MAX_BATCH_EVENTS = 10_000;
export const MAX_ATTRIBUTES_BYTES = 8192;
const MAX_ATTRIBUTES_DEPTH = 16;

export interface NewEvent {
  serviceName: string;
  timestamp: Date;
  statusCode: number;
  eventType: string | null;
  latencyMs: number;
  message: string | null;
  attributes: Record<string, unknown> | null;
  /**
   * Idempotency key: the event's event_id, or the request's Idempotency-Key with the event's
   * index; an event stored under its key within INGEST_DEDUPE_HOURS is not stored again.
   */
  key?: string | null;
}

const noNul = (s: string) => !s.includes("\0");

/** Idempotency keys (event_id, the Idempotency-Key header): printable ASCII, no spaces. */
export const KEY = /^[\x21-\x7e]{1,128}$/;
export const KEY_RULE = "must be 1-128 printable ASCII characters without spaces";
const ISO_WITH_ZONE =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|z|[+-]\d{2}:?\d{2})$/;

/** The shape of one event; documents the API and checks structure (ranges, types, sizes). */
export const LogEventInput = z.object({
  service_name: z.string().regex(SERVICE_NAME, {
    error: "must be 1-100 characters of letters, digits and . _ - /",
  }).openapi({ example: "checkout-service" }),
  status_code: z.number({ error: "must be an integer from 100 to 599" }).int({
    error: "must be an integer from 100 to 599",
  }).min(100, { error: "must be an integer from 100 to 599" }).max(599, {
    error: "must be an integer from 100 to 599",
  }).openapi({ example: 503 }),
  latency_ms: z.number({ error: "must be a finite number >= 0" }).min(0, {
    error: "must be a finite number >= 0",
  }).refine(Number.isFinite, { error: "must be a finite number >= 0" })
    .openapi({ example: 182.4 }),
  event_type: z.string().max(200, { error: "must be at most 200 characters" })
    .refine(noNul, { error: "must not contain NUL characters" }).nullish()
    .openapi({ example: "payment.charge" }),
  timestamp: z.string().regex(ISO_WITH_ZONE, {
    error: "must be an ISO 8601 time with a zone, e.g. 2026-11-28T07:00:00Z",
  }).nullish().openapi({
    description: "ISO 8601 with a zone; default: now. Must lie within the retention window " +
      "(now - RETENTION_DAYS) and at most one day ahead.",
    example: "2026-11-28T07:00:00.000Z",
  }),
  message: z.string().max(65_536, { error: "must be at most 65536 characters" })
    .refine(noNul, { error: "must not contain NUL characters" }).nullish()
    .openapi({ example: "card declined by issuer" }),
  attributes: z.record(z.string(), z.unknown(), { error: "must be a JSON object" }).nullish()
    .openapi({
      description: `Free-form JSON object, at most ${MAX_ATTRIBUTES_BYTES} bytes serialised.`,
      example: { region: "eu-west-1", attempt: 2 },
    }),
  event_id: z.string().regex(KEY, { error: KEY_RULE }).nullish().openapi({
    description: "Idempotency key of the event, unique per service: sent again within " +
      "INGEST_DEDUPE_HOURS, the event is not stored twice and the answer names the id it was " +
      "stored with. Not stored with the event.",
    example: "0f8e2c1a-7c1b-4f7e-9d55-3b2b8f1e6a90",
  }),
}).openapi("LogEventInput");

export const LogBatchInput = z.array(LogEventInput).max(MAX_BATCH_EVENTS)
  .openapi("LogBatchInput");

/** Validates one decoded JSON value as an event; pushes problems to `errors` under `prefix`. */
function toEvent(
  raw: unknown,
  prefix: string,
  errors: FieldError[],
  window: { now: number; retentionDays: number },
): NewEvent | null {
  const field = (name: string) => prefix ? `${prefix}.${name}` : name;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    errors.push({ field: prefix || "(body)", message: "must be a JSON object (one event)" });
    return null;
  }
  const parsed = LogEventInput.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = issue.path.length ? String(issue.path[0]) : "(event)";
      const message = issue.code === "invalid_type" && issue.input === undefined
        ? "is required"
        : issue.message;
      errors.push({ field: field(name), message });
    }
    return null;
  }
  const e = parsed.data;
  const before = errors.length;
  let timestamp = new Date(window.now);
  if (e.timestamp) {
    const t = parseTimestamp(e.timestamp);
    if (t === null) {
      errors.push({ field: field("timestamp"), message: "is not a real calendar time" });
    } else if (t.getTime() < window.now - window.retentionDays * DAY_MS) {
      errors.push({
        field: field("timestamp"),
        message: `is older than the retention window (${window.retentionDays} days)`,
      });
    } else if (t.getTime() > window.now + DAY_MS) {
      errors.push({ field: field("timestamp"), message: "is more than one day in the future" });
    } else timestamp = t;
  }
  if (e.attributes) {
    const problem = checkAttributes(e.attributes);
    if (problem) errors.push({ field: field("attributes"), message: problem });
  }
  if (errors.length > before) return null;
  return {
    serviceName: e.service_name,
    timestamp,
    statusCode: e.status_code,
    eventType: e.event_type ?? null,
    latencyMs: e.latency_ms,
    message: e.message ?? null,
    attributes: e.attributes ?? null,
    key: e.event_id ? `e:${e.event_id}` : null,
  };
}

function parseTimestamp(s: string): Date | null {
  const m = s.match(ISO_WITH_ZONE)!;
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number);
  // Date would roll 2026-02-30 over to March; refuse days and times that do not exist.
  const day = new Date(Date.UTC(y, mo - 1, d));
  if (day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || h > 23 || mi > 59 || sec > 59) {
    return null;
  }
  const normalised = s.replace(" ", "T").replace(/([+-]\d{2})(\d{2})$/, "$1:$2")
    .replace(/(\.\d{3})\d+/, "$1");
  const t = new Date(normalised);
  return Number.isNaN(t.getTime()) ? null : t;
}

/** PostgreSQL's jsonb refuses \u0000, and deep or huge blobs do not belong in a log line. */
function checkAttributes(attrs: Record<string, unknown>): string | null {
  const size = new TextEncoder().encode(JSON.stringify(attrs)).length;
  if (size > MAX_ATTRIBUTES_BYTES) {
    return `is ${size} bytes serialised; at most ${MAX_ATTRIBUTES_BYTES}`;
  }
  const stack: [unknown, number][] = [[attrs, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v === "string") {
      if (v.includes("\0")) return "must not contain NUL characters";
    } else if (v !== null && typeof v === "object") {
      if (depth > MAX_ATTRIBUTES_DEPTH) return `is nested deeper than ${MAX_ATTRIBUTES_DEPTH}`;
      for (const [k, child] of Object.entries(v)) {
        if (k.includes("\0")) return "must not contain NUL characters";
        stack.push([child, depth + 1]);
      }
    }
  }
  return null;
}

export interface Decoded {
  /** true when the body was one event object (answered with its id). */
  single: boolean;
  events: NewEvent[];
}

/**
 * Validates a decoded body: one event object, or an array / NDJSON lines of them. With an
 * `idempotencyKey` (the request's), events without an event_id are keyed by it and their index.
 */
export function validateEvents(
  body: unknown,
  opts: { retentionDays: number; now?: number; idempotencyKey?: string },
): Decoded {
  const decoded = validateBody(body, opts);
  const request = opts.idempotencyKey;
  if (request) decoded.events.forEach((e, i) => e.key ??= `r:${request}#${i}`);
  return decoded;
}

function validateBody(body: unknown, opts: { retentionDays: number; now?: number }): Decoded {
  const window = { now: opts.now ?? Date.now(), retentionDays: opts.retentionDays };
  const errors: FieldError[] = [];
  if (!Array.isArray(body)) {
    const event = toEvent(body, "", errors, window);
    if (!event) throw new InvalidInputError(errors);
    return { single: true, events: [event] };
  }
  if (body.length === 0) {
    throw new InvalidInputError([{ field: "(body)", message: "the batch is empty" }]);
  }
  if (body.length > MAX_BATCH_EVENTS) {
    throw new InvalidInputError([{
      field: "(body)",
      message: `a batch holds at most ${MAX_BATCH_EVENTS} events; this one has ${body.length}`,
    }]);
  }
  const events: NewEvent[] = [];
  for (let i = 0; i < body.length; i++) {
    const e = toEvent(body[i], `[${i}]`, errors, window);
    if (e) events.push(e);
  }
  if (errors.length) {
    // Capped so a batch of 10,000 bad events does not produce a megabyte of problems.
    const shown = errors.slice(0, 1000);
    const more = errors.length - shown.length;
    throw new InvalidInputError(
      shown,
      422,
      `${errors.length} problem(s) in the batch; nothing was stored` +
        (more > 0 ? ` (first 1000 listed)` : ""),
    );
  }
  return { single: false, events };
}
