import type { AppContext } from "../context.ts";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import type { Config } from "../../config.ts";
import {
  type Decoded,
  KEY,
  KEY_RULE,
  LogBatchInput,
  LogEventInput,
  MAX_BATCH_EVENTS,
  validateEvents,
} from "../../ingest/validate.ts";
import type { AdmissionLease } from "../../ingest/admission.ts";
import {
  ACCEPTED_ENCODINGS,
  AtCapacityError,
  bodyEncoding,
  bodyFormat,
  decodeBody,
  leasedRead,
  readText,
} from "../body.ts";
import { authResponses, problemResponse, retryLaterResponse } from "../openapi.ts";
import { rejectionReason } from "../problem.ts";
import { ForbiddenError, InvalidInputError, TooManyRequestsError } from "../../errors.ts";
import type { Sql } from "../../db/connect.ts";
import { type Principal, writeScopeRefusals } from "../../access/principal.ts";
import { needs, requireRight } from "../middleware/auth.ts";
import { spendEvents } from "../middleware/rate-limit.ts";

const Created = z.object({
  id: z.number().int().min(1).openapi({ example: 1042 }),
  status: z.literal("created"),
}).openapi("LogCreated");

const BatchCreated = z.object({
  status: z.literal("created"),
  accepted: z.number().int().min(1).max(MAX_BATCH_EVENTS).openapi({ example: 1000 }),
}).openapi("LogBatchCreated");

/** What a route that writes events needs (POST /logs, POST /v1/traces). */
export type IngestDeps = Pick<
  AppContext,
  "sql" | "writer" | "admission" | "config" | "metrics" | "access"
>;

export function ingestRoutes(
  app: OpenAPIHono,
  deps: IngestDeps,
): void {
  // Documented here, validated by hand below: a batch must report every bad index at once,
  // and NDJSON has no zod body validator.
  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/logs",
    operationId: "ingestLogs",
    tags: ["logs"],
    ...needs("ingest"),
    summary: "Ingest one event, a JSON array of events, or NDJSON",
    description: `One event answers {id, status}. A batch (a JSON array, or ` +
      `application/x-ndjson with one event per line) of 1 to ${MAX_BATCH_EVENTS} events is ` +
      `atomic: every event is stored, or none is and the 422 lists each bad index and field. ` +
      `201 means committed. An unknown service_name registers the service.\n\n` +
      `The body may be compressed: send \`Content-Encoding: gzip\` (or \`x-gzip\`, ` +
      `\`deflate\`) with a body compressed so; MAX_BODY_BYTES then limits its decompressed ` +
      `size. Any other encoding is a 415 whose Accept-Encoding names those accepted.\n\n` +
      `A writer key limited to teams or services may write only to its services: a batch with ` +
      `any event outside them is refused whole (403, \`errors\` naming each index). A new ` +
      `service name sent by a team-scoped key is created owned by the key's first team.\n\n` +
      `A writer key with rate_limit_per_s spends one unit per event (an admin key one per ` +
      `request): a batch that does not fit now is a 429 with Retry-After, one larger than the ` +
      `burst a 413.`,
    request: {
      headers: z.object({
        "idempotency-key": z.string().regex(KEY).optional().openapi({
          description: "Makes a retry safe: events of a request sent again with the same key " +
            "(and the same events in the same order) within INGEST_DEDUPE_HOURS are not stored " +
            "twice, and the answer is the first one's. An event's own event_id takes precedence.",
          example: "batch-7f3a9c",
        }),
      }),
      body: {
        required: true,
        content: {
          "application/json": { schema: z.union([LogEventInput, LogBatchInput]) },
          "application/x-ndjson": {
            schema: LogBatchInput.openapi({
              description: "One LogEventInput JSON object per line (shown here as the array " +
                "of those lines' events); blank lines are skipped.",
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
      400: problemResponse(
        "Malformed JSON or NDJSON, a body that is not valid for its Content-Encoding, or a " +
          "bad Idempotency-Key",
      ),
      408: problemResponse(
        "The body did not arrive within BODY_READ_TIMEOUT_MS; nothing was stored",
      ),
      413: problemResponse(
        "Body larger than MAX_BODY_BYTES, or a batch of more events than a rate-limited " +
          "writer key's burst (two seconds of its rate_limit_per_s), which could never pass; " +
          "nothing was stored",
      ),
      415: problemResponse(
        "Content type other than JSON or NDJSON, or Content-Encoding other than gzip or deflate",
        {
          "Accept-Encoding": z.string().optional().openapi({
            description: "With an unknown Content-Encoding: the encodings accepted.",
            example: ACCEPTED_ENCODINGS,
          }),
        },
      ),
      ...authResponses,
      422: problemResponse("Invalid events; nothing was stored"),
      503: retryLaterResponse(
        "INGEST_MAX_INFLIGHT_BYTES of request bodies and parsed events are already held (checked " +
          "as the body arrives), the commit did not finish within INGEST_COMMIT_TIMEOUT_MS, or " +
          "the database is unavailable; nothing was stored, retry after Retry-After",
      ),
    },
  });

  app.post("/logs", requireRight(deps.access, "ingest"), async function ingestLogs(c) {
    // Released on every path: committed, refused, failed, timed out or the client gone.
    const lease = deps.admission.lease();
    try {
      const { single, events } = await receive(c.req.raw, lease, deps.config);
      // Before the scope check, which may register services: a refused batch writes nothing.
      spendEvents(c, deps.access.rateLimits, c.get("principal"), events.length);
      await checkWriteScope(deps.sql, c.get("principal"), events);
      const ids = await deps.writer.write(events);
      if (single) return c.json({ id: ids[0], status: "created" as const }, 201);
      return c.json({ status: "created" as const, accepted: ids.length }, 201);
    } catch (err) {
      if (err instanceof InvalidInputError) {
        deps.metrics.eventsRejected.inc({ reason: rejectionReason(err) });
      } else if (err instanceof ForbiddenError) {
        deps.metrics.eventsRejected.inc({ reason: "forbidden" });
      } else if (err instanceof TooManyRequestsError) {
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

/**
 * Reads, decodes and validates a body, growing `lease` as its bytes arrive and then by what
 * its events hold. A function of its own so that the body's text is garbage, not a live
 * variable, while the events wait for their commit.
 */
async function receive(req: Request, lease: AdmissionLease, config: Config): Promise<Decoded> {
  const format = bodyFormat(req.headers.get("content-type") ?? undefined);
  const encoding = bodyEncoding(req.headers.get("content-encoding") ?? undefined);
  const key = idempotencyKey(req.headers.get("idempotency-key") ?? undefined);
  const text = await readText(req, leasedRead(lease, config, encoding));
  const decoded = validateEvents(decodeBody(text, format), {
    retentionDays: config.retentionDays,
    idempotencyKey: key,
  });
  // The events wait for their commit in place of the body, and hold more than it did.
  if (!lease.tryGrow(decoded.heldBytes)) throw new AtCapacityError();
  return decoded;
}

function idempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!KEY.test(header)) {
    throw new InvalidInputError([{ field: "idempotency-key", message: KEY_RULE }], "malformed");
  }
  return header;
}

/** Refuses the whole body (403 naming each index) when an event lies outside the key's scope. */
async function checkWriteScope(
  sql: Sql,
  p: Principal | undefined,
  events: readonly { serviceName: string }[],
): Promise<void> {
  const names = events.map((e) => e.serviceName);
  const refused = await writeScopeRefusals(sql, p, names);
  if (refused.length === 0) return;
  throw new ForbiddenError(
    `${refused.length} event(s) name services outside this key's scope; nothing was stored`,
    refused.slice(0, 100).map((i) => ({
      field: events.length === 1 ? "service_name" : `[${i}].service_name`,
      message: `"${names[i]}" is outside this key's scope`,
    })),
  );
}
