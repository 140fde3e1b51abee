// The query string and answer of GET /audit.
import { z } from "@hono/zod-openapi";
import { CURSOR, CURSOR_RULE, decodeCursor, encodeCursor } from "../../query/logs.ts";
import { NO_NUL } from "../../ingest/validate.ts";
import { filterQueryFields } from "./filters.ts";
import { intParam } from "./params.ts";

export const AUDIT_DEFAULT_LIMIT = 100;
export const AUDIT_MAX_LIMIT = 1000;

export const EXAMPLE_AUDIT_CURSOR = encodeCursor({ ts: "2026-12-02T08:00:00.123456Z", id: "310" });

const text = (name: string, max: number, description: string, example: string) =>
  z.string().min(1, { error: "must not be empty" }).max(max, {
    error: `must be at most ${max} characters`,
  }).regex(NO_NUL, { error: "must not contain NUL characters" }).optional().openapi({
    param: { name, in: "query" },
    description,
    example,
  });

export const AuditQuery = z.strictObject({
  start_time: filterQueryFields.start_time.openapi({
    description: "Inclusive: entries at or after this time (ISO 8601 with a zone). Not after " +
      "end_time.",
  }),
  end_time: filterQueryFields.end_time.openapi({
    description: "Inclusive: entries at or before this time (ISO 8601 with a zone). Not before " +
      "start_time.",
  }),
  action: text(
    "action",
    100,
    "Only this action: key.create, key.revoke, service.create, service.update, job.toggle, " +
      "job.run, job.prune, auth.denied, …",
    "key.create",
  ),
  actor: text(
    "actor",
    300,
    'Only this actor: "key#12", "api-key#1", "user:octocat" or "anonymous".',
    "api-key#1",
  ),
  limit: intParam(1, AUDIT_MAX_LIMIT, "limit").openapi({
    description: `Entries per page, 1 to ${AUDIT_MAX_LIMIT} (default ${AUDIT_DEFAULT_LIMIT}).`,
    example: 50,
  }),
  // No example: a request built from every example must work.
  cursor: z.string().regex(CURSOR, { error: CURSOR_RULE }).transform((s, ctx) => {
    const c = decodeCursor(s);
    if (!c) {
      ctx.addIssue({ code: "custom", message: CURSOR_RULE });
      return z.NEVER;
    }
    return c;
  }).optional().openapi({
    param: { name: "cursor", in: "query" },
    description: "Opaque: the X-Next-Cursor of the previous page (also in its Link header); " +
      "any other value is a 400.",
  }),
});

export const AuditEntry = z.object({
  id: z.number().int().openapi({ example: 310 }),
  at: z.string().openapi({
    description: "When the transaction that made the change began (UTC, to the microsecond).",
    example: "2026-12-02T08:00:00.123456Z",
  }),
  actor: z.string().openapi({
    description: 'Who: "key#<id>", "api-key#<position in API_KEYS>", "user:<login>" or ' +
      '"anonymous". Never a token.',
    example: "api-key#1",
  }),
  action: z.string().openapi({ example: "key.create" }),
  target: z.string().nullable().openapi({
    description: 'What: "key#12", "service:checkout-service", "job:pruner", or for ' +
      'auth.denied "METHOD /path".',
    example: "key#12",
  }),
  detail: z.record(z.string(), z.unknown()).openapi({
    description: "The figures of the change (a prune's days and what it removed, a key's " +
      "role, a service's old and new owner, a refusal's status and reason).",
    example: { name: "checkout shipper", role: "writer", teams: ["Payments Team"] },
  }),
  client_addr: z.string().nullable().openapi({
    description: "The peer address of the request's connection (not X-Forwarded-For).",
    example: "10.0.3.7",
  }),
  request_id: z.string().nullable().openapi({
    description: "The request's X-Request-Id.",
    example: "6c1f0f7e-3b1e-4a57-9d0c-6f1a2b3c4d5e",
  }),
}).openapi("AuditEntry");
