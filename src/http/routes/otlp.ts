import type { IngestDeps } from "./ingest.ts";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import {
  decodeRequest,
  encodeResponse,
  encodeRpcStatus,
  exportResult,
  LOGS,
  type Mapped,
  reject,
  type Signal,
  TRACES,
} from "../../ingest/otlp/common.ts";
import { spansToEvents } from "../../ingest/otlp/traces.ts";
import { NOT_A_REQUEST, recordsToEvents } from "../../ingest/otlp/logs.ts";
import {
  ACCEPTED_ENCODINGS,
  AtCapacityError,
  bodyEncoding,
  leasedRead,
  readBytes,
  utf8,
} from "../body.ts";
import { authResponses, problemResponse, retryLaterResponse } from "../openapi.ts";
import { InvalidInputError, TooManyRequestsError } from "../../errors.ts";
import { writeScopeRefusals } from "../../access/principal.ts";
import { needs, requireRight } from "../middleware/auth.ts";
import { spendEvents } from "../middleware/rate-limit.ts";

const PROTOBUF = "application/x-protobuf";

/** google.rpc.Status code INVALID_ARGUMENT, what OTLP/HTTP answers an undecodable body with. */
const INVALID_ARGUMENT = 3;

const RpcStatus = z.object({
  code: z.literal(INVALID_ARGUMENT),
  message: z.string().openapi({ example: "(body): is not valid JSON" }),
}).openapi("RpcStatus", { description: "google.rpc.Status, as OTLP/HTTP answers errors." });

/** What differs between the OTLP endpoints; the handling is the same. */
interface Endpoint {
  path: string;
  operationId: string;
  summary: string;
  description: string;
  signal: Signal;
  /** The request's outer fields, for the OpenAPI document. */
  requestSchema: z.ZodType;
  responseSchema: z.ZodType;
  /** What each item is called in messages ("server spans", "log records"). */
  items: string;
  toEvents: (body: unknown, opts: { retentionDays: number }) => Mapped;
}

const rejectedCount = (description: string) =>
  z.string().regex(/^\d+$/).openapi({ description, example: "1" });

const TRACES_ENDPOINT: Endpoint = {
  path: "/v1/traces",
  operationId: "ingestOtlpTraces",
  summary: "OTLP/HTTP traces: server spans in as request events",
  description: "Each span of kind SERVER or CONSUMER becomes one request event (see the " +
    "README's OpenTelemetry mapping), committed with those of POST /logs; other kinds are " +
    "skipped. Spans that cannot be stored (e.g. a start outside the retention window, a service " +
    "outside a writer key's scope) are counted in `partialSuccess`, the others are stored. A " +
    "span sent again (same trace and span id) is not stored twice.",
  signal: TRACES,
  requestSchema: z.object({
    resourceSpans: z.array(z.object({
      resource: z.unknown().optional(),
      scopeSpans: z.array(z.object({ spans: z.array(z.unknown()).optional() })).optional(),
    })).optional(),
  }).openapi({
    description: "An OTLP/JSON ExportTraceServiceRequest (lowerCamelCase, int64 as strings, " +
      "hex trace and span ids).",
  }),
  responseSchema: z.object({
    partialSuccess: z.object({
      rejectedSpans: rejectedCount(
        "Spans not stored (int64, a decimal string as OTLP/JSON writes it).",
      ),
      errorMessage: z.string().openapi({
        example: "1 span(s) not stored: resourceSpans[0].scopeSpans[0].spans[3]: timestamp " +
          "is older than the retention window (30 days)",
      }),
    }).optional(),
  }).openapi("ExportTraceServiceResponse"),
  items: "server spans",
  toEvents: spansToEvents,
};

const LOGS_ENDPOINT: Endpoint = {
  path: "/v1/logs",
  operationId: "ingestOtlpLogs",
  summary: "OTLP/HTTP logs: request log records in as request events",
  description: "A log record that describes a request (an `http.response.status_code` " +
    "attribute and a duration: `http.server.request.duration` in seconds or `duration_ms`) " +
    "becomes one request event (see the README's OpenTelemetry mapping), committed with those " +
    "of POST /logs. Every other record is not stored and is counted in `partialSuccess` with " +
    "the reason: Observian measures requests, it is not a full-text log store. A record sent " +
    "again unchanged is not stored twice.",
  signal: LOGS,
  requestSchema: z.object({
    resourceLogs: z.array(z.object({
      resource: z.unknown().optional(),
      scopeLogs: z.array(z.object({ logRecords: z.array(z.unknown()).optional() })).optional(),
    })).optional(),
  }).openapi({
    description: "An OTLP/JSON ExportLogsServiceRequest (lowerCamelCase, int64 as strings, " +
      "hex trace and span ids).",
  }),
  responseSchema: z.object({
    partialSuccess: z.object({
      rejectedLogRecords: rejectedCount(
        "Log records not stored (int64, a decimal string as OTLP/JSON writes it).",
      ),
      errorMessage: z.string().openapi({
        example: "1 log record(s) not stored: resourceLogs[0].scopeLogs[0].logRecords[0]: " +
          NOT_A_REQUEST,
      }),
    }).optional(),
  }).openapi("ExportLogsServiceResponse"),
  items: "request log records",
  toEvents: recordsToEvents,
};

export function otlpRoutes(app: OpenAPIHono, deps: IngestDeps): void {
  for (const endpoint of [TRACES_ENDPOINT, LOGS_ENDPOINT]) otlpRoute(app, deps, endpoint);
}

function otlpRoute(app: OpenAPIHono, deps: IngestDeps, ep: Endpoint): void {
  const request = ep.signal.request.name;
  const response = ep.signal.response.name;
  // Documented here, served below by hand: the protobuf body has no zod validator.
  app.openAPIRegistry.registerPath({
    method: "post",
    path: ep.path,
    operationId: ep.operationId,
    tags: ["logs"],
    ...needs("ingest"),
    summary: ep.summary,
    description: `The OpenTelemetry OTLP/HTTP ${ep.path} endpoint, in both encodings ` +
      "(`application/x-protobuf` and `application/json`), optionally gzip or deflate " +
      "compressed, under the same MAX_BODY_BYTES, INGEST_MAX_INFLIGHT_BYTES and " +
      `BODY_READ_TIMEOUT_MS rules as POST /logs. ${ep.description} The answer is an ` +
      `${response} in the request's encoding.`,
    request: {
      body: {
        required: true,
        content: {
          "application/json": { schema: ep.requestSchema },
          [PROTOBUF]: {
            schema: z.string().openapi({
              format: "binary",
              description: `A protobuf ${request}.`,
            }),
          },
        },
      },
    },
    responses: {
      200: {
        description: `Stored: every one of the ${ep.items} but those counted in partialSuccess`,
        content: {
          "application/json": { schema: ep.responseSchema },
          [PROTOBUF]: { schema: z.string().openapi({ format: "binary" }) },
        },
      },
      400: {
        description: `An undecodable body (not JSON / protobuf ${request}, or ` +
          "not valid for its Content-Encoding): a google.rpc.Status (code 3, " +
          "INVALID_ARGUMENT) in the request's encoding; nothing was stored",
        content: {
          "application/json": { schema: RpcStatus },
          [PROTOBUF]: { schema: z.string().openapi({ format: "binary" }) },
        },
      },
      408: problemResponse(
        "The body did not arrive within BODY_READ_TIMEOUT_MS; nothing was stored",
      ),
      413: problemResponse(
        `Body larger than MAX_BODY_BYTES, or more ${ep.items} than a rate-limited writer ` +
          "key's burst; nothing was stored",
      ),
      415: problemResponse(
        "Content type other than application/x-protobuf or application/json, or " +
          "Content-Encoding other than gzip or deflate",
        {
          "Accept-Encoding": z.string().optional().openapi({
            description: "With an unknown Content-Encoding: the encodings accepted.",
            example: ACCEPTED_ENCODINGS,
          }),
        },
      ),
      ...authResponses,
      503: retryLaterResponse(
        "INGEST_MAX_INFLIGHT_BYTES are already held, the commit did not finish in time, or " +
          "the database is unavailable; nothing was stored, retry after Retry-After (exporters " +
          "do)",
      ),
    },
  });

  app.post(ep.path, requireRight(deps.access, "ingest"), async function ingestOtlp(c) {
    const protobuf = encodingOf(c.req.header("content-type"));
    const lease = deps.admission.lease();
    try {
      const encoding = bodyEncoding(c.req.header("content-encoding"));
      const bytes = await readBytes(c.req.raw, leasedRead(lease, deps.config, encoding));
      const mapped = ep.toEvents(
        protobuf ? decodeRequest(ep.signal, bytes) : parseJson(bytes),
        { retentionDays: deps.config.retentionDays },
      );
      if (!lease.tryGrow(mapped.heldBytes)) throw new AtCapacityError();
      if (mapped.events.length > 0) {
        // Items outside a scoped writer key's services are refused one by one, not the batch.
        const refused = new Set(
          await writeScopeRefusals(
            deps.sql,
            c.get("principal"),
            mapped.events.map((e) => e.serviceName),
          ),
        );
        for (const i of refused) {
          reject(
            mapped,
            `service "${mapped.events[i].serviceName}"`,
            "is outside this key's scope",
          );
        }
        if (refused.size > 0) mapped.events = mapped.events.filter((_, i) => !refused.has(i));
      }
      if (mapped.rejected > 0) {
        deps.metrics.eventsRejected.inc({ reason: "invalid" }, mapped.rejected);
      }
      spendEvents(c, deps.access.rateLimits, c.get("principal"), mapped.events.length);
      if (mapped.events.length > 0) await deps.writer.write(mapped.events);
      const result = exportResult(ep.signal, mapped);
      if (!protobuf) return c.json(result, 200);
      return c.body(encodeResponse(ep.signal, result), 200, { "content-type": PROTOBUF });
    } catch (err) {
      // Undecodable (also as gzip / deflate): OTLP/HTTP's 400, a google.rpc.Status.
      if (err instanceof InvalidInputError && err.kind === "malformed") {
        deps.metrics.eventsRejected.inc({ reason: "malformed" });
        return rpcStatus(c, protobuf, err.message);
      }
      if (err instanceof TooManyRequestsError) {
        deps.metrics.eventsRejected.inc({ reason: "rate_limited" });
      } else if (err instanceof AtCapacityError) {
        deps.metrics.eventsRejected.inc({ reason: "overloaded" });
      }
      throw err;
    } finally {
      lease.release();
    }
  });
}

/** true for protobuf, false for JSON; 415 for anything else. */
function encodingOf(contentType: string | undefined): boolean {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (type === PROTOBUF || type === "application/protobuf") return true;
  if (type === "application/json") return false;
  throw new InvalidInputError(
    [{
      field: "content-type",
      message: `must be ${PROTOBUF} or application/json, not "${type || "(none)"}"`,
    }],
    "unsupported",
  );
}

function parseJson(bytes: Uint8Array): unknown {
  const text = utf8(bytes);
  if (!text.trim()) {
    throw new InvalidInputError([{ field: "(body)", message: "is empty" }], "malformed");
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(
      [{ field: "(body)", message: `is not valid JSON: ${(err as Error).message}` }],
      "malformed",
    );
  }
}

/** 400 as OTLP/HTTP answers it: a google.rpc.Status in the request's encoding. */
function rpcStatus(c: Context, protobuf: boolean, message: string): Response {
  if (!protobuf) return c.json({ code: INVALID_ARGUMENT, message }, 400);
  return c.body(encodeRpcStatus(INVALID_ARGUMENT, message), 400, { "content-type": PROTOBUF });
}
