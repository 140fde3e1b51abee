// What OTLP traces and logs share: the protobuf definitions read, attribute values, ids, times,
// the status-code rules, and the answers (partialSuccess, google.rpc.Status). Works on the
// decoded request of either encoding (OTLP/JSON, or protobuf through protobufjs's toObject: the
// same lowerCamelCase names, ids as bytes instead of hex).
import protobuf from "protobufjs";
import { InvalidInputError } from "../../errors.ts";
import { MAX_BATCH_EVENTS, type NewEvent, validateEvents } from "../validate.ts";

/** What the SDKs call a service without service.name ("unknown_service:<process>" too). */
export const UNKNOWN_SERVICE = "unknown_service";

/** The attributes kept on the event besides trace_id and span_id; never the whole span. */
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

const MAX_REASONS = 5;

/** A decoded export request's events, and what was refused (spans or log records). */
export interface Mapped {
  events: NewEvent[];
  /** Items refused (not stored), and a few of their reasons for partialSuccess.errorMessage. */
  rejected: number;
  reasons: string[];
  heldBytes: number;
}

export function emptyMapped(): Mapped {
  return { events: [], rejected: 0, reasons: [], heldBytes: 0 };
}

export function reject(out: Mapped, where: string, reason: string): void {
  out.rejected++;
  if (out.reasons.length < MAX_REASONS) out.reasons.push(`${where}: ${reason}`);
}

/**
 * Validates one mapped item as POST /logs validates an event and adds it, or counts it refused
 * with the reason (a raw string is already a reason).
 */
export function admit(
  out: Mapped,
  where: string,
  raw: Record<string, unknown> | string,
  opts: { retentionDays: number; now: number },
): void {
  if (typeof raw === "string") return reject(out, where, raw);
  if (out.events.length >= MAX_BATCH_EVENTS) {
    return reject(out, where, `more than ${MAX_BATCH_EVENTS} events in one request`);
  }
  try {
    const decoded = validateEvents(raw, opts);
    out.events.push(decoded.events[0]);
    out.heldBytes += decoded.heldBytes;
  } catch (err) {
    if (!(err instanceof InvalidInputError)) throw err;
    reject(out, where, err.errors.map((e) => `${e.field} ${e.message}`).join("; "));
  }
}

/**
 * Walks resource → scope → item of an export request (`resourceSpans` / `scopeSpans` / `spans`,
 * or the logs' names), handing each item its path and the resource's service name. A body that
 * is not shaped like the request at all throws (400).
 */
export function eachItem(
  body: unknown,
  names: { request: string; resource: string; scope: string; item: string },
  visit: (item: unknown, service: string, where: string) => void,
): void {
  if (!isObject(body)) throw shape("(body)", `must be an ${names.request} object`);
  list(body[names.resource], names.resource).forEach((rs, r) => {
    const rWhere = `${names.resource}[${r}]`;
    if (!isObject(rs)) throw shape(rWhere, "must be an object");
    const resource = isObject(rs.resource) ? rs.resource : {};
    const service = serviceName(attributeMap(resource.attributes).get("service.name"));
    list(rs[names.scope], `${rWhere}.${names.scope}`).forEach((ss, s) => {
      const sWhere = `${rWhere}.${names.scope}[${s}]`;
      if (!isObject(ss)) throw shape(sWhere, "must be an object");
      list(ss[names.item], `${sWhere}.${names.item}`).forEach((item, i) => {
        visit(item, service, `${sWhere}.${names.item}[${i}]`);
      });
    });
  });
}

/**
 * http.response.status_code (or http.status_code) as a number, an error text when present but
 * invalid, undefined when neither is there.
 */
export function httpStatus(attrs: Map<string, unknown>): number | string | undefined {
  for (const k of ["http.response.status_code", "http.status_code"]) {
    const v = attrs.get(k);
    if (v === undefined) continue;
    const n = typeof v === "string" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 100 || n > 599) {
      return `${k} must be an integer from 100 to 599`;
    }
    return n;
  }
  return undefined;
}

/** `GET /users/{id}` from the HTTP method and route attributes, when both are there. */
export function methodAndRoute(attrs: Map<string, unknown>): string | undefined {
  const method = attrs.get("http.request.method") ?? attrs.get("http.method");
  const route = attrs.get("http.route");
  return typeof method === "string" && typeof route === "string" ? `${method} ${route}` : undefined;
}

/** trace_id, span_id (when valid) and the KEPT_ATTRIBUTES present. */
export function keptAttributes(
  attrs: Map<string, unknown>,
  ids: { traceId?: string | null; spanId?: string | null },
): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  if (ids.traceId) kept.trace_id = ids.traceId;
  if (ids.spanId) kept.span_id = ids.spanId;
  for (const k of KEPT_ATTRIBUTES) {
    const v = attrs.get(k);
    if (v !== undefined) kept[k] = v;
  }
  return kept;
}

export function serviceName(v: unknown): string {
  if (typeof v !== "string" || v === "" || v.startsWith(UNKNOWN_SERVICE)) return UNKNOWN_SERVICE;
  return v;
}

/** KeyValue list → key → plain value (strings, numbers, booleans; others dropped). */
export function attributeMap(v: unknown): Map<string, unknown> {
  const m = new Map<string, unknown>();
  if (!Array.isArray(v)) return m;
  for (const kv of v) {
    if (!isObject(kv) || typeof kv.key !== "string" || !isObject(kv.value)) continue;
    const value = anyValue(kv.value);
    if (value !== undefined) m.set(kv.key, value);
  }
  return m;
}

export function anyValue(v: Record<string, unknown>): unknown {
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
export function nanos(v: unknown): bigint | null {
  if (typeof v === "string" && /^\d{1,20}$/.test(v)) {
    const n = BigInt(v);
    return n < 1n << 64n ? n : null;
  }
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  return null;
}

/** Nanoseconds since the epoch as an ISO timestamp, to the millisecond. */
export function isoFromNanos(n: bigint): string {
  return new Date(Number(n / 1_000_000n)).toISOString();
}

/** A trace or span id as lowercase hex: hex text (OTLP/JSON) or bytes (protobuf). */
export function hexId(v: unknown, bytes: number): string | null {
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

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const shape = (field: string, message: string) =>
  new InvalidInputError([{ field, message }], "malformed");

// The subset of opentelemetry-proto (trace/v1, logs/v1, common/v1, resource/v1,
// collector/{trace,logs}/v1) this reads, with its field numbers; protobufjs skips every other
// field (span events, links, scopes, flags…).
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
    LogRecord: {
      fields: {
        timeUnixNano: { type: "fixed64", id: 1 },
        severityNumber: { type: "int32", id: 2 },
        severityText: { type: "string", id: 3 },
        body: { type: "AnyValue", id: 5 },
        attributes: { rule: "repeated", type: "KeyValue", id: 6 },
        traceId: { type: "bytes", id: 9 },
        spanId: { type: "bytes", id: 10 },
        observedTimeUnixNano: { type: "fixed64", id: 11 },
        eventName: { type: "string", id: 12 },
      },
    },
    ScopeLogs: { fields: { logRecords: { rule: "repeated", type: "LogRecord", id: 2 } } },
    ResourceLogs: {
      fields: {
        resource: { type: "Resource", id: 1 },
        scopeLogs: { rule: "repeated", type: "ScopeLogs", id: 2 },
      },
    },
    ExportLogsServiceRequest: {
      fields: { resourceLogs: { rule: "repeated", type: "ResourceLogs", id: 1 } },
    },
    ExportLogsPartialSuccess: {
      fields: {
        rejectedLogRecords: { type: "int64", id: 1 },
        errorMessage: { type: "string", id: 2 },
      },
    },
    ExportLogsServiceResponse: {
      fields: { partialSuccess: { type: "ExportLogsPartialSuccess", id: 1 } },
    },
    // google.rpc.Status, the body of an OTLP/HTTP error response.
    RpcStatus: {
      fields: { code: { type: "int32", id: 1 }, message: { type: "string", id: 2 } },
    },
  },
});

/** One OTLP signal: its request and response messages and the name of the rejected count. */
export interface Signal {
  request: protobuf.Type;
  response: protobuf.Type;
  rejectedField: "rejectedSpans" | "rejectedLogRecords";
  noun: string;
}

export const TRACES: Signal = {
  request: PROTO.lookupType("ExportTraceServiceRequest"),
  response: PROTO.lookupType("ExportTraceServiceResponse"),
  rejectedField: "rejectedSpans",
  noun: "span(s)",
};

export const LOGS: Signal = {
  request: PROTO.lookupType("ExportLogsServiceRequest"),
  response: PROTO.lookupType("ExportLogsServiceResponse"),
  rejectedField: "rejectedLogRecords",
  noun: "log record(s)",
};

const RpcStatus = PROTO.lookupType("RpcStatus");

/** A protobuf export request as the plain object the mappers read; 400 if it is not one. */
export function decodeRequest(signal: Signal, bytes: Uint8Array): unknown {
  try {
    // enums/int32 as numbers, int64 and fixed64 as decimal strings, bytes as Uint8Array.
    return signal.request.toObject(signal.request.decode(bytes), { longs: String });
  } catch (err) {
    throw shape(
      "(body)",
      `is not a protobuf ${signal.request.name}: ${(err as Error).message}`,
    );
  }
}

export interface ExportResult {
  partialSuccess?: Record<string, string>;
}

/** The Export…ServiceResponse for what was refused (an empty one when nothing was). */
export function exportResult(signal: Signal, mapped: Mapped): ExportResult {
  if (mapped.rejected === 0) return {};
  return {
    partialSuccess: {
      [signal.rejectedField]: String(mapped.rejected),
      errorMessage: `${mapped.rejected} ${signal.noun} not stored: ${mapped.reasons.join(" | ")}` +
        (mapped.rejected > mapped.reasons.length ? " | …" : ""),
    },
  };
}

// Copied into a plain ArrayBuffer-backed array, the type a Response body takes.
export function encodeResponse(signal: Signal, result: ExportResult): Uint8Array<ArrayBuffer> {
  return new Uint8Array(signal.response.encode(signal.response.fromObject(result)).finish());
}

/** google.rpc.Status {code, message} in protobuf. */
export function encodeRpcStatus(code: number, message: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(RpcStatus.encode(RpcStatus.fromObject({ code, message })).finish());
}
