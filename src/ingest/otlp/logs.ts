// OTLP logs → request events. Observian measures requests; a log record becomes an event only
// when it describes one (an HTTP status and a duration), like an access-log line. The others are
// refused and counted in partialSuccess: full-text log storage is another product's job.
import { createHash } from "node:crypto";
import {
  admit,
  anyValue,
  attributeMap,
  eachItem,
  emptyMapped,
  hexId,
  httpStatus,
  isObject,
  isoFromNanos,
  keptAttributes,
  type Mapped,
  methodAndRoute,
  nanos,
} from "./common.ts";

/** Duration attributes read, in order, and the factor from their unit to milliseconds. */
export const DURATION_ATTRIBUTES: readonly (readonly [string, number])[] = [
  ["http.server.request.duration", 1000], // semantic conventions: seconds
  ["duration_ms", 1],
  ["http.server.duration", 1], // the older semantic conventions: milliseconds
];

export const NOT_A_REQUEST = "not a request (no http.response.status_code attribute); " +
  "Observian stores request events, not free-text logs";

/**
 * The events of a decoded ExportLogsServiceRequest: each record that describes a request,
 * validated as POST /logs validates an event. Every other record is counted in `rejected` with
 * its reason; only a body that is not an ExportLogsServiceRequest at all throws (400).
 */
export function recordsToEvents(
  body: unknown,
  opts: { retentionDays: number; now?: number },
): Mapped {
  const check = { retentionDays: opts.retentionDays, now: opts.now ?? Date.now() };
  const out = emptyMapped();
  const names = {
    request: "ExportLogsServiceRequest",
    resource: "resourceLogs",
    scope: "scopeLogs",
    item: "logRecords",
  };
  eachItem(body, names, (record, service, where) => {
    admit(
      out,
      where,
      isObject(record) ? toRawEvent(record, service) : "is not an object",
      check,
    );
  });
  return out;
}

/** One log record as a POST /logs event, or why it cannot be one. */
function toRawEvent(
  record: Record<string, unknown>,
  service: string,
): Record<string, unknown> | string {
  const attrs = attributeMap(record.attributes);
  const status = httpStatus(attrs);
  if (status === undefined) return NOT_A_REQUEST;
  if (typeof status === "string") return status;
  const latency = duration(attrs);
  if (latency === undefined) {
    return "has a status code but no duration (http.server.request.duration in seconds, " +
      "or duration_ms)";
  }
  if (typeof latency === "string") return latency;
  // The time of the event, else when the SDK or Collector saw it (the specification's rule).
  let time = nanos(record.timeUnixNano);
  if (time === null || time === 0n) time = nanos(record.observedTimeUnixNano);
  if (time === null || time === 0n) {
    return "timeUnixNano or observedTimeUnixNano must be a positive uint64";
  }
  const body = isObject(record.body) ? anyValue(record.body) : undefined;
  const text = typeof body === "string" && body !== "" ? body : null;
  const eventName = typeof record.eventName === "string" && record.eventName !== ""
    ? record.eventName
    : null;
  const eventType = methodAndRoute(attrs) ?? eventName ?? firstLine(text);
  const traceId = hexId(record.traceId, 16);
  const spanId = hexId(record.spanId, 8);
  const kept = keptAttributes(attrs, { traceId, spanId });
  if (typeof record.severityText === "string" && record.severityText !== "") {
    kept.severity = record.severityText.slice(0, 32);
  }
  return {
    service_name: service,
    status_code: status,
    latency_ms: latency,
    event_type: eventType ? eventType.slice(0, 200) : null,
    timestamp: isoFromNanos(time),
    message: text ? text.slice(0, 65_536) : null,
    attributes: kept,
    // Records have no id: the same record sent again (an exporter's retry) hashes the same.
    event_id: `otlp-log:${recordHash(record, service)}`,
  };
}

/** Milliseconds from the first duration attribute present, an error text if it is invalid. */
function duration(attrs: Map<string, unknown>): number | string | undefined {
  for (const [key, toMs] of DURATION_ATTRIBUTES) {
    const v = attrs.get(key);
    if (v === undefined) continue;
    const n = typeof v === "string" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n) || n < 0) {
      return `${key} must be a non-negative number`;
    }
    return n * toMs;
  }
  return undefined;
}

function firstLine(text: string | null): string | null {
  if (text === null) return null;
  const line = text.split("\n", 1)[0].trim();
  return line === "" ? null : line;
}

function recordHash(record: Record<string, unknown>, service: string): string {
  const canonical = JSON.stringify([
    service,
    String(record.timeUnixNano ?? ""),
    String(record.observedTimeUnixNano ?? ""),
    hexId(record.traceId, 16),
    hexId(record.spanId, 8),
    record.eventName ?? null,
    record.body ?? null,
    record.attributes ?? null,
  ]);
  return createHash("sha256").update(canonical).digest("hex").slice(0, 40);
}
