// OTLP traces → request events: a server (or consumer) span is one request.
import {
  admit,
  attributeMap,
  eachItem,
  emptyMapped,
  GRPC_TO_HTTP,
  hexId,
  httpStatus,
  isObject,
  isoFromNanos,
  keptAttributes,
  type Mapped,
  methodAndRoute,
  nanos,
} from "./common.ts";

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CONSUMER = 5;
const STATUS_CODE_ERROR = 2;

/**
 * The events of a decoded ExportTraceServiceRequest: SERVER and CONSUMER spans, each validated
 * as POST /logs validates an event. A span that fails is counted in `rejected`, never fails the
 * request; only a body that is not an ExportTraceServiceRequest at all throws (400).
 */
export function spansToEvents(
  body: unknown,
  opts: { retentionDays: number; now?: number },
): Mapped {
  const check = { retentionDays: opts.retentionDays, now: opts.now ?? Date.now() };
  const out = emptyMapped();
  const names = {
    request: "ExportTraceServiceRequest",
    resource: "resourceSpans",
    scope: "scopeSpans",
    item: "spans",
  };
  eachItem(body, names, (span, service, where) => {
    if (!isObject(span)) return admit(out, where, "is not an object", check);
    const kind = spanKind(span.kind);
    if (kind !== SPAN_KIND_SERVER && kind !== SPAN_KIND_CONSUMER) return;
    admit(out, where, toRawEvent(span, service), check);
  });
  return out;
}

/** One span as a POST /logs event, or why it cannot be one. */
function toRawEvent(
  span: Record<string, unknown>,
  service: string,
): Record<string, unknown> | string {
  const traceId = hexId(span.traceId, 16);
  if (!traceId) return "traceId must be 16 bytes (32 hex digits), not all zero";
  const spanId = hexId(span.spanId, 8);
  if (!spanId) return "spanId must be 8 bytes (16 hex digits), not all zero";
  const start = nanos(span.startTimeUnixNano);
  const end = nanos(span.endTimeUnixNano);
  if (start === null || start === 0n) return "startTimeUnixNano must be a positive uint64";
  if (end === null || end < start) return "endTimeUnixNano must be a uint64 not before the start";
  const attrs = attributeMap(span.attributes);
  const status = statusCode(attrs, span.status);
  if (typeof status === "string") return status;
  const name = typeof span.name === "string" ? span.name : "";
  const eventType = methodAndRoute(attrs) ?? name;
  const statusMessage = isObject(span.status) && typeof span.status.message === "string" &&
      span.status.message !== ""
    ? span.status.message.slice(0, 65_536)
    : null;
  return {
    service_name: service,
    status_code: status,
    // Nanoseconds to milliseconds, sub-millisecond kept (a double holds µs exactly up to days).
    latency_ms: Number(end - start) / 1e6,
    event_type: eventType ? eventType.slice(0, 200) : null,
    timestamp: isoFromNanos(start),
    message: statusMessage,
    attributes: keptAttributes(attrs, { traceId, spanId }),
    // An exporter retries a batch it got no answer for: its spans are then not stored twice.
    event_id: `otlp:${traceId}:${spanId}`,
  };
}

/** The HTTP status attribute, else the gRPC status, else the span status. */
function statusCode(attrs: Map<string, unknown>, status: unknown): number | string {
  const http = httpStatus(attrs);
  if (http !== undefined) return http;
  const grpc = attrs.get("rpc.grpc.status_code");
  if (grpc !== undefined) {
    const n = typeof grpc === "string" ? Number(grpc) : grpc;
    if (typeof n === "number" && Number.isInteger(n) && n >= 0 && n < GRPC_TO_HTTP.length) {
      return GRPC_TO_HTTP[n];
    }
    return "rpc.grpc.status_code must be a gRPC status code from 0 to 16";
  }
  const code = isObject(status) ? status.code : undefined;
  return code === STATUS_CODE_ERROR || code === "STATUS_CODE_ERROR" ? 500 : 200;
}

function spanKind(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (v === "SPAN_KIND_SERVER") return SPAN_KIND_SERVER;
  if (v === "SPAN_KIND_CONSUMER") return SPAN_KIND_CONSUMER;
  return undefined;
}
