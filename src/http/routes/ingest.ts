import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Config } from "../../config.ts";
import {
  KEY,
  KEY_RULE,
  LogBatchInput,
  LogEventInput,
  MAX_BATCH_EVENTS,
  validateEvents,
} from "../../ingest/validate.ts";
import type { IngestAdmission } from "../../ingest/admission.ts";
import type { EventWriter } from "../../ingest/writer.ts";
import { bodyBound, bodyEncoding, bodyFormat, decodeBody, readText } from "../body.ts";
import { problemResponse } from "../openapi.ts";
import type { Metrics } from "../../metrics/registry.ts";
import { InvalidInputError, UnavailableError } from "../../errors.ts";

const Created = z.object({
  id: z.number().int().openapi({ example: 1042 }),
  status: z.literal("created"),
}).openapi("LogCreated");

const BatchCreated = z.object({
  status: z.literal("created"),
  accepted: z.number().int().openapi({ example: 1000 }),
}).openapi("LogBatchCreated");

export function ingestRoutes(
  app: OpenAPIHono,
  deps: { writer: EventWriter; admission: IngestAdmission; config: Config; metrics: Metrics },
): void {
  // Documented here, validated by hand below: a batch must report every bad index at once,
  // and NDJSON has no zod body validator.
  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/logs",
    tags: ["logs"],
    summary: "Ingest one event, a JSON array of events, or NDJSON",
    description: `One event answers {id, status}. A batch (a JSON array, or ` +
      `application/x-ndjson with one event per line) of up to ${MAX_BATCH_EVENTS} events is ` +
      `atomic: every event is stored, or none is and the 422 lists each bad index and field. ` +
      `201 means committed. An unknown service_name registers the service. The body may be ` +
      `compressed (Content-Encoding: gzip or deflate); MAX_BODY_BYTES then limits its ` +
      `decompressed size.`,
    request: {
      headers: z.object({
        "content-encoding": z.enum(["gzip", "x-gzip", "deflate", "identity"]).optional()
          .openapi({ description: "Compression of the body; none when absent" }),
        "idempotency-key": z.string().regex(KEY).optional().openapi({
          description: "Makes a retry safe: events of a request sent again with the same key " +
            "(and the same events in the same order) within INGEST_DEDUPE_HOURS are not stored " +
            "twice, and the answer is the first one's. An event's own event_id takes precedence.",
          example: "batch-2026-12-02T10:00:00Z-7f3a",
        }),
      }),
      body: {
        required: true,
        content: {
          "application/json": { schema: z.union([LogEventInput, LogBatchInput]) },
          "application/x-ndjson": {
            schema: z.string().openapi({
              description: "One LogEventInput JSON object per line",
              example: '{"service_name":"api","status_code":200,"latency_ms":12}\n',
            }),
          },
        },
      },
    },
    responses: {
      201: {
        description: "Committed",
        content: { "application/json": { schema: z.union([Created, BatchCreated]) } },
      },
      400: problemResponse("Malformed JSON or NDJSON"),
      413: problemResponse("Body larger than MAX_BODY_BYTES"),
      415: problemResponse(
        "Content type other than JSON or NDJSON, or Content-Encoding other than gzip or deflate",
      ),
      422: problemResponse("Invalid events; nothing was stored"),
      503: problemResponse(
        "INGEST_MAX_INFLIGHT_BYTES of request bodies are already being stored, or the database " +
          "is unavailable; nothing was stored, retry after Retry-After",
      ),
    },
  });

  app.post("/logs", async function ingestLogs(c) {
    try {
      const format = bodyFormat(c.req.header("content-type"));
      const encoding = bodyEncoding(c.req.header("content-encoding"));
      const max = deps.config.maxBodyBytes;
      const bytes = bodyBound(c.req.raw, max, encoding);
      if (!deps.admission.tryAcquire(bytes)) {
        deps.metrics.eventsRejected.inc({ reason: "overloaded" });
        throw new UnavailableError(
          "Ingest is at capacity (INGEST_MAX_INFLIGHT_BYTES of request bodies are being " +
            "stored); nothing was stored, retry shortly.",
          1,
        );
      }
      try {
        const text = await readText(c.req.raw, max, encoding);
        const { single, events } = validateEvents(decodeBody(text, format), {
          retentionDays: deps.config.retentionDays,
          idempotencyKey: idempotencyKey(c.req.header("idempotency-key")),
        });
        const ids = await deps.writer.write(events);
        if (single) return c.json({ id: ids[0], status: "created" as const }, 201);
        return c.json({ status: "created" as const, accepted: ids.length }, 201);
      } finally {
        deps.admission.release(bytes);
      }
    } catch (err) {
      if (err instanceof InvalidInputError) {
        deps.metrics.eventsRejected.inc({ reason: REJECT_REASON[err.status] });
      }
      throw err;
    }
  });
}

function idempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!KEY.test(header)) {
    throw new InvalidInputError([{ field: "idempotency-key", message: KEY_RULE }], 400);
  }
  return header;
}

/** Like Loki's discarded-samples reasons: why a body was refused. */
const REJECT_REASON: Record<InvalidInputError["status"], string> = {
  400: "malformed",
  413: "too_large",
  415: "unsupported_media_type",
  422: "invalid",
};
