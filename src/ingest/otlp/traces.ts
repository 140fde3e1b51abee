// OTLP traces → request events: a server (or consumer) span is one request. Reads the decoded
// ExportTraceServiceRequest of either encoding (OTLP/JSON, or protobuf through protobufjs's
// toObject: the same lowerCamelCase names, ids as bytes instead of hex).
import protobuf from "protobufjs";
import { InvalidInputError } from "../../errors.ts";
import { MAX_BATCH_EVENTS, type NewEvent, validateEvents } from "../validate.ts";

/** What the SDKs call a service without service.name ("unknown_service:<process>" too). */
export const UNKNOWN_SERVICE = "unknown_service";

/** The span attributes kept on the event besides trace_id and span_id; never the whole span. */
export const KEPT_ATTRIBUTES = [
  "http.request.method",
  "http.route",
  "server.address",
  "rpc.system",
  "rpc.service",
  "rpc.method",
  "rpc.grpc.status_code",
] as const;

/** The standard gRPC → HTTP status table (google.rpc.Code; 499 for CANCELLED). */
export const GRPC_TO_HTTP: readonly number[] = [
  200, // OK
  499, // CANCELLED
  500, // UNKNOWN
  400, // INVALID_ARGUMENT
  504, // DEADLINE_EXCEEDED
  404, // NOT_FOUND
  409, // ALREADY_EXISTS
  403, // PERMISSION_DENIED
  429, // RESOURCE_EXHAUSTED
  400, // FAILED_PRECONDITION
  409, // ABORTED
  400, // OUT_OF_RANGE
  501, // UNIMPLEMENTED
  500, // INTERNAL
  503, // UNAVAILABLE
  500, // DATA_LOSS
  401, // UNAUTHENTICATED
];

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CONSUMER = 5;
const STATUS_CODE_ERROR = 2;
const MAX_REASONS = 5;

export interface MappedSpans {
  events: NewEvent[];
  /** Spans refused (not stored), and a few of their reasons for partialSuccess.errorMessage. */
  rejected: number;
  reasons: string[];
  heldBytes: number;
}

/**
 * The events of a decoded request: SERVER and CONSUMER spans, each validated as POST /logs
 * validates an event. A span that fails is counted in `rejected`, never fails the request;
 * only a body that is not an ExportTraceServiceRequest at all throws (400).
 */
export function spansToEvents(
  body: unknown,
  opts: { retentionDays: number; now?: number },
): MappedSpans {
  const now = opts.now ?? Date.now();
  const out: MappedSpans = { events: [], rejected: 0, reasons: [], heldBytes: 0 };
  const reject = (where: string, reason: string) => {
    out.rejected++;
    if (out.reasons.length < MAX_REASONS) out.reasons.push(`${where}: ${reason}`);
  };
  if (!isObject(body)) throw shape("(body)", "must be an ExportTraceServiceRequest object");
  const resourceSpans = list(body.resourceSpans, "resourceSpans");
  resourceSpans.forEach((rs, r) => {
    if (!isObject(rs)) throw shape(`resourceSpans[${r}]`, "must be an object");
    const resource = isObject(rs.resource) ? rs.resource : {};
    const service = serviceName(attributeMap(resource.attributes).get("service.name"));
    list(rs.scopeSpans, `resourceSpans[${r}].scopeSpans`).forEach((ss, s) => {
      if (!isObject(ss)) throw shape(`resourceSpans[${r}].scopeSpans[${s}]`, "must be an object");
      list(ss.spans, `resourceSpans[${r}].scopeSpans[${s}].spans`).forEach((span, i) => {
        const where = `resourceSpans[${r}].scopeSpans[${s}].spans[${i}]`;
        if (!isObject(span)) return reject(where, "is not an object");
        const kind = spanKind(span.kind);
        if (kind !== SPAN_KIND_SERVER && kind !== SPAN_KIND_CONSUMER) return;
        if (out.events.length >= MAX_BATCH_EVENTS) {
          return reject(where, `more than ${MAX_BATCH_EVENTS} server spans in one request`);
        }
        const raw = toRawEvent(span, service);
        if (typeof raw === "string") return reject(where, raw);
        try {
          const decoded = validateEvents(raw, { retentionDays: opts.retentionDays, now });
          out.events.push(decoded.events[0]);
          out.heldBytes += decoded.heldBytes;
        } catch (err) {
          if (!(err instanceof InvalidInputError)) throw err;
          reject(where, err.errors.map((e) => `${e.field} ${e.message}`).join("; "));
        }
      });
    });
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
  const method = attrs.get("http.request.method") ?? attrs.get("http.method");
  const route = attrs.get("http.route");
  const name = typeof span.name === "string" ? span.name : "";
  const eventType = typeof method === "string" && typeof route === "string"
    ? `${method} ${route}`
    : name;
  const kept: Record<string, unknown> = { trace_id: traceId, span_id: spanId };
  for (const k of KEPT_ATTRIBUTES) {
    const v = attrs.get(k);
    if (v !== undefined) kept[k] = v;
  }
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
    timestamp: new Date(Number(start / 1_000_000n)).toISOString(),
    message: statusMessage,
    attributes: kept,
    // An exporter retries a batch it got no answer for: its spans are then not stored twice.
    event_id: `otlp:${traceId}:${spanId}`,
  };
}

/** http.response.status_code (or http.status_code), else the gRPC status, else span status. */
function statusCode(attrs: Map<string, unknown>, status: unknown): number | string {
  for (const k of ["http.response.status_code", "http.status_code"]) {
    const v = attrs.get(k);
    if (v === undefined) continue;
    const n = typeof v === "string" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 100 || n > 599) {
      return `${k} must be an integer from 100 to 599`;
    }
    return n;
  }
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

function serviceName(v: unknown): string {
  if (typeof v !== "string" || v === "" || v.startsWith(UNKNOWN_SERVICE)) return UNKNOWN_SERVICE;
  return v;
}

function spanKind(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (v === "SPAN_KIND_SERVER") return SPAN_KIND_SERVER;
  if (v === "SPAN_KIND_CONSUMER") return SPAN_KIND_CONSUMER;
  return undefined;
}

/** KeyValue list → key → plain value (strings, numbers, booleans; others dropped). */
function attributeMap(v: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (!Array.isArray(v)) return m;
  for (const kv of v) {
    if (!isObject(kv) || typeof kv.key !== "string" || !isObject(kv.value)) continue;
    const value = anyValue(kv.value);
    if (value !== undefined) m.set(kv.key, value);
  }
  return m;
}

function anyValue(v: Record<string, unknown>): unknown {
  if (typeof v.stringValue === "string") return v.stringValue;
  if (typeof v.boolValue === "boolean") return v.boolValue;
  if (typeof v.doubleValue === "number" && Number.isFinite(v.doubleValue)) return v.doubleValue;
  const i = v.intValue;
  if (typeof i === "number" && Number.isSafeInteger(i)) return i;
  // int64 arrives as a string (OTLP/JSON, protobufjs with longs: String).
  if (typeof i === "string" && /^-?\d{1,15}$/.test(i)) return Number(i);
  return undefined;
}

/** A uint64 of nanoseconds: a decimal string (int64 in OTLP/JSON) or a safe integer. */
function nanos(v: unknown): bigint | null {
  if (typeof v === "string" && /^\d{1,20}$/.test(v)) {
    const n = BigInt(v);
    return n < 1n << 64n ? n : null;
  }
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return null;
}

/** A trace or span id as lowercase hex: hex text (OTLP/JSON) or bytes (protobuf). */
function hexId(v: unknown, bytes: number): string | null {
  let hex: string | null = null;
  if (typeof v === "string" && v.length === bytes * 2 && /^[0-9a-fA-F]+$/.test(v)) {
    hex = v.toLowerCase();
  } else if (v instanceof Uint8Array && v.length === bytes) {
    hex = Array.from(v, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  return hex && /[^0]/.test(hex) ? hex : null;
}

function list(v: unknown, field: string): unknown[] {
  // Absent is empty (protobuf omits empty repeated fields); null is no array.
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw shape(field, "must be an array");
  return v;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const shape = (field: string, message: string) =>
  new InvalidInputError([{ field, message }], "malformed");

// The subset of opentelemetry-proto (trace/v1, common/v1, resource/v1, collector/trace/v1) this
// reads, with its field numbers; protobufjs skips every other field (events, links, scope…).
const PROTO = protobuf.Root.fromJSON({
  nested: {
    AnyValue: {
      oneofs: {
        value: {
          oneof: [
            "stringValue",
            "boolValue",
            "intValue",
            "doubleValue",
            "arrayValue",
            "kvlistValue",
            "bytesValue",
          ],
        },
      },
      fields: {
        stringValue: { type: "string", id: 1 },
        boolValue: { type: "bool", id: 2 },
        intValue: { type: "int64", id: 3 },
        doubleValue: { type: "double", id: 4 },
        arrayValue: { type: "ArrayValue", id: 5 },
        kvlistValue: { type: "KeyValueList", id: 6 },
        bytesValue: { type: "bytes", id: 7 },
      },
    },
    ArrayValue: { fields: { values: { rule: "repeated", type: "AnyValue", id: 1 } } },
    KeyValueList: { fields: { values: { rule: "repeated", type: "KeyValue", id: 1 } } },
    KeyValue: {
      fields: { key: { type: "string", id: 1 }, value: { type: "AnyValue", id: 2 } },
    },
    Resource: { fields: { attributes: { rule: "repeated", type: "KeyValue", id: 1 } } },
    Status: { fields: { message: { type: "string", id: 2 }, code: { type: "int32", id: 3 } } },
    Span: {
      fields: {
        traceId: { type: "bytes", id: 1 },
        spanId: { type: "bytes", id: 2 },
        name: { type: "string", id: 5 },
        kind: { type: "int32", id: 6 },
        startTimeUnixNano: { type: "fixed64", id: 7 },
        endTimeUnixNano: { type: "fixed64", id: 8 },
        attributes: { rule: "repeated", type: "KeyValue", id: 9 },
        status: { type: "Status", id: 15 },
      },
    },
    ScopeSpans: { fields: { spans: { rule: "repeated", type: "Span", id: 2 } } },
    ResourceSpans: {
      fields: {
        resource: { type: "Resource", id: 1 },
        scopeSpans: { rule: "repeated", type: "ScopeSpans", id: 2 },
      },
    },
    ExportTraceServiceRequest: {
      fields: { resourceSpans: { rule: "repeated", type: "ResourceSpans", id: 1 } },
    },
    ExportTracePartialSuccess: {
      fields: {
        rejectedSpans: { type: "int64", id: 1 },
        errorMessage: { type: "string", id: 2 },
      },
    },
    ExportTraceServiceResponse: {
      fields: { partialSuccess: { type: "ExportTracePartialSuccess", id: 1 } },
    },
    // google.rpc.Status, the body of an OTLP/HTTP error response.
    RpcStatus: {
      fields: { code: { type: "int32", id: 1 }, message: { type: "string", id: 2 } },
    },
  },
});
const Request = PROTO.lookupType("ExportTraceServiceRequest");
const Response = PROTO.lookupType("ExportTraceServiceResponse");
const RpcStatus = PROTO.lookupType("RpcStatus");

/** A protobuf ExportTraceServiceRequest as the plain object spansToEvents reads; 400 if not. */
export function decodeTraceRequest(bytes: Uint8Array): unknown {
  try {
    // enums/int32 as numbers, int64 and fixed64 as decimal strings, bytes as Uint8Array.
    return Request.toObject(Request.decode(bytes), { longs: String });
  } catch (err) {
    throw shape("(body)", `is not a protobuf ExportTraceServiceRequest: ${(err as Error).message}`);
  }
}

export interface TraceExportResult {
  partialSuccess?: { rejectedSpans: string; errorMessage: string };
}

/** The ExportTraceServiceResponse for what was refused (an empty one when nothing was). */
export function exportResult(mapped: { rejected: number; reasons: string[] }): TraceExportResult {
  if (mapped.rejected === 0) return {};
  return {
    partialSuccess: {
      rejectedSpans: String(mapped.rejected),
      errorMessage: `${mapped.rejected} span(s) not stored: ${mapped.reasons.join(" | ")}` +
        (mapped.rejected > mapped.reasons.length ? " | …" : ""),
    },
  };
}

// Copied into a plain ArrayBuffer-backed array, the type a Response body takes.
export function encodeTraceResponse(result: TraceExportResult): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Response.encode(Response.fromObject(result)).finish());
}

/** google.rpc.Status {code, message} in protobuf. */
export function encodeRpcStatus(code: number, message: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(RpcStatus.encode(RpcStatus.fromObject({ code, message })).finish());
}
