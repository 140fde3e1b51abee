// Turns a request body into events, or refuses it whole with every bad index and field.
// Plain zod, documented through .meta(), which the OpenAPI generator reads like .openapi():
// the ingest room knows nothing of Hono. Over 300 lines for one thing: the event rules, the
// zod schema that names a broken field and the zod-free fast path that must agree with it.
import { z } from "zod";
import { SERVICE_NAME } from "../config.ts";
import { type FieldError, InvalidInputError } from "../errors.ts";
import { DAY_MS, exampleTime, parseTimestamp } from "../time.ts";

export const MAX_BATCH_EVENTS = 10_000;
export const MAX_ATTRIBUTES_BYTES = 8192;
/**
 * The slowest latency an event may report: 24 hours. Beyond it a value is a unit mistake, and
 * unbounded ones overflowed the rollups' sums (two events of 1e308 ms broke every summary).
 */
export const MAX_LATENCY_MS = DAY_MS;
const LATENCY_RULE = `must be a number from 0 to ${MAX_LATENCY_MS} (24 hours in ms)`;
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
/** The same as a pattern, so that the OpenAPI document says it too. */
// deno-lint-ignore no-control-regex -- NUL is the character refused
export const NO_NUL = /^[^\x00]*$/;

/** Idempotency keys (event_id, the Idempotency-Key header): printable ASCII, no spaces. */
export const KEY = /^[\x21-\x7e]{1,128}$/;
export const KEY_RULE = "must be 1-128 printable ASCII characters without spaces";
/**
 * The times the API accepts, as the OpenAPI document states them: an ISO 8601 time with a zone
 * (parseTimestamp, src/time.ts) with each field in its range: a year from 0001, a day the month has (29 February in leap years only), a zone
 * within ±23:59. Tools that generate requests from the document then send only real times.
 */
export const ISO_TIME_PATTERN = (() => {
  const year = "(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})";
  // Divisible by 4 and not a century, or a century divisible by 400 (0400, 0800, … 2000 …).
  const leapYear =
    "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)";
  const monthDay = "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|" +
    "(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))";
  const time = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,9})?)?";
  const zone = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])";
  return `^(?:${year}-${monthDay}|${leapYear}-02-29)[T ]${time}${zone}$`;
})();
const ISO_TIME = new RegExp(ISO_TIME_PATTERN);
const TIME_RULE = "must be an ISO 8601 time with a zone, e.g. 2026-11-28T07:00:00Z";

/** The shape of one event; documents the API and checks structure (ranges, types, sizes). */
export const LogEventInput = z.object({
  service_name: z.string().regex(SERVICE_NAME, {
    error: "must be 1-100 characters of letters, digits and . _ - /",
  }).meta({ example: "checkout-service" }),
  status_code: z.number({ error: "must be an integer from 100 to 599" }).int({
    error: "must be an integer from 100 to 599",
  }).min(100, { error: "must be an integer from 100 to 599" }).max(599, {
    error: "must be an integer from 100 to 599",
  }).meta({ example: 503 }),
  latency_ms: z.number({ error: LATENCY_RULE }).min(0, { error: LATENCY_RULE })
    .max(MAX_LATENCY_MS, { error: LATENCY_RULE })
    .meta({ example: 182.4, description: "Milliseconds, 0 to 86400000 (24 hours)." }),
  event_type: z.string().max(200, { error: "must be at most 200 characters" })
    .regex(NO_NUL, { error: "must not contain NUL characters" }).nullish()
    .meta({ example: "payment.charge" }),
  timestamp: z.string().regex(ISO_TIME, { error: TIME_RULE }).nullish().meta({
    description: "ISO 8601 with a zone; default: now. Must lie within the retention window " +
      "(now - RETENTION_DAYS) and at most one day ahead, else 422.",
    example: exampleTime(),
  }),
  message: z.string().max(65_536, { error: "must be at most 65536 characters" })
    .regex(NO_NUL, { error: "must not contain NUL characters" }).nullish()
    .meta({ example: "card declined by issuer" }),
  attributes: z.record(z.string(), z.unknown(), { error: "must be a JSON object" }).nullish()
    .meta({
      description: `Free-form JSON object, at most ${MAX_ATTRIBUTES_BYTES} bytes serialised.`,
      example: { region: "eu-west-1", attempt: 2 },
    }),
  event_id: z.string().regex(KEY, { error: KEY_RULE }).nullish().meta({
    description: "Idempotency key of the event, unique per service: sent again within " +
      "INGEST_DEDUPE_HOURS, the event is not stored twice and the answer names the id it was " +
      "stored with. Not stored with the event.",
    example: "0f8e2c1a-7c1b-4f7e-9d55-3b2b8f1e6a90",
  }),
}).meta({ id: "LogEventInput" });

export const LogBatchInput = z.array(LogEventInput).min(1).max(MAX_BATCH_EVENTS)
  .meta({
    id: "LogBatchInput",
    description: `1 to ${MAX_BATCH_EVENTS} events, stored all or none.`,
  });

type EventInput = z.infer<typeof LogEventInput>;

/** The fields checkedInput() knows; an event with any other key goes through zod. */
export const CHECKED_FIELDS = [
  "service_name",
  "status_code",
  "latency_ms",
  "event_type",
  "timestamp",
  "message",
  "attributes",
  "event_id",
] as const;
const CHECKED = new Set<string>(CHECKED_FIELDS);

const nullishText = (v: unknown, max: number) =>
  v === undefined || v === null || (typeof v === "string" && v.length <= max && noNul(v));

/**
 * The common case without zod: a decoded JSON object whose fields all satisfy LogEventInput is
 * used as it is. zod copies every event and leaves ~2.8 KB of garbage per event behind (28 MB
 * per 10,000-event batch, 86 ms of CPU; measured), which set the memory peak of big batches.
 * Anything else (a bad field, or a key not in CHECKED_FIELDS) returns null and goes through
 * zod, which names the problem; so this may only ever accept what zod accepts, as
 * tests/ingest_limits_test.ts checks. A field added to LogEventInput must be added here too.
 */
export function checkedInput(raw: Record<string, unknown>): EventInput | null {
  for (const key in raw) if (!CHECKED.has(key)) return null;
  const { service_name, status_code, latency_ms, timestamp, attributes } = raw;
  const ok = typeof service_name === "string" && SERVICE_NAME.test(service_name) &&
    Number.isInteger(status_code) && (status_code as number) >= 100 &&
    (status_code as number) <= 599 &&
    typeof latency_ms === "number" && latency_ms >= 0 && latency_ms <= MAX_LATENCY_MS &&
    nullishText(raw.event_type, 200) && nullishText(raw.message, 65_536) &&
    (timestamp === undefined || timestamp === null ||
      (typeof timestamp === "string" && ISO_TIME.test(timestamp))) &&
    (attributes === undefined || attributes === null ||
      (typeof attributes === "object" && !Array.isArray(attributes))) &&
    (raw.event_id === undefined || raw.event_id === null ||
      (typeof raw.event_id === "string" && KEY.test(raw.event_id)));
  return ok ? raw as EventInput : null;
}

/** Validates one decoded JSON value as an event; pushes problems to `errors` under `prefix`. */
function toEvent(
  raw: unknown,
  prefix: string,
  errors: FieldError[],
  window: { now: number; retentionDays: number },
  tally: Tally,
): NewEvent | null {
  const field = (name: string) => prefix ? `${prefix}.${name}` : name;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    errors.push({ field: prefix || "(body)", message: "must be a JSON object (one event)" });
    return null;
  }
  const checked = checkedInput(raw as Record<string, unknown>);
  const parsed = checked ? { success: true as const, data: checked } : LogEventInput.safeParse(raw);
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
  let timestamp: Date | null = null;
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
    const problem = checkAttributes(e.attributes, tally);
    if (problem) errors.push({ field: field("attributes"), message: problem });
  }
  if (errors.length > before) return null;
  return {
    serviceName: e.service_name,
    timestamp: timestamp ?? new Date(window.now),
    statusCode: e.status_code,
    eventType: e.event_type ?? null,
    latencyMs: e.latency_ms,
    message: e.message ?? null,
    attributes: e.attributes ?? null,
    key: e.event_id ? key(`e:${e.event_id}`, tally) : null,
  };
}

const encoder = new TextEncoder();

/**
 * PostgreSQL's jsonb refuses \u0000, and deep or huge blobs do not belong in a log line.
 * Counts the values it walks into `tally`, for heldBytes.
 */
function checkAttributes(
  attrs: Record<string, unknown>,
  tally: Tally,
): string | null {
  const size = encoder.encode(JSON.stringify(attrs)).length;
  if (size > MAX_ATTRIBUTES_BYTES) {
    return `is ${size} bytes serialised; at most ${MAX_ATTRIBUTES_BYTES}`;
  }
  const stack: [unknown, number][] = [[attrs, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    tally.attributeValues++;
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
  /**
   * Memory the events hold beyond their body's size until committed (an estimate for
   * admission): see EVENT_HELD_BYTES.
   */
  heldBytes: number;
}

/**
 * What a validated event holds in memory beyond its share of the body's bytes (which stand for
 * its strings): the object, its Date and numbers. Measured on Deno 2.9 (V8 heap after GC):
 * 133 B for a minimal event, 103 B for a typical one, 190 B with a small attributes object.
 */
export const EVENT_HELD_BYTES = 192;
/**
 * Each value inside `attributes` (object member or array element): a dense 700-key object
 * held 58 B per key, six times its JSON size.
 */
export const ATTRIBUTE_VALUE_HELD_BYTES = 48;
/** An idempotency key: its characters (one byte each, ASCII) and a string header. */
const KEY_HELD_BYTES = 24;

/** What validation counts on its way, for heldBytes. */
interface Tally {
  attributeValues: number;
  keyBytes: number;
}

function key(k: string, tally: Tally): string {
  tally.keyBytes += KEY_HELD_BYTES + k.length;
  return k;
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
  if (request) {
    const tally: Tally = { attributeValues: 0, keyBytes: 0 };
    decoded.events.forEach((e, i) => e.key ??= key(`r:${request}#${i}`, tally));
    decoded.heldBytes += tally.keyBytes;
  }
  return decoded;
}

function validateBody(body: unknown, opts: { retentionDays: number; now?: number }): Decoded {
  const window = { now: opts.now ?? Date.now(), retentionDays: opts.retentionDays };
  const errors: FieldError[] = [];
  const tally: Tally = { attributeValues: 0, keyBytes: 0 };
  const held = (n: number) =>
    n * EVENT_HELD_BYTES + tally.attributeValues * ATTRIBUTE_VALUE_HELD_BYTES + tally.keyBytes;
  if (!Array.isArray(body)) {
    const event = toEvent(body, "", errors, window, tally);
    if (!event) throw new InvalidInputError(errors);
    return { single: true, events: [event], heldBytes: held(1) };
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
    const e = toEvent(body[i], `[${i}]`, errors, window, tally);
    if (e) events.push(e);
  }
  if (errors.length) {
    // Capped so a batch of 10,000 bad events does not produce a megabyte of problems.
    const shown = errors.slice(0, 1000);
    const more = errors.length - shown.length;
    throw new InvalidInputError(
      shown,
      "invalid",
      `${errors.length} problem(s) in the batch; nothing was stored` +
        (more > 0 ? ` (first 1000 listed)` : ""),
    );
  }
  return { single: false, events, heldBytes: held(events.length) };
}
