import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { listAudit } from "../../access/audit.ts";
import { toFilter } from "../../query/filters.ts";
import type { AppContext } from "../context.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { authResponses, problemResponse } from "../openapi.ts";
import {
  AUDIT_DEFAULT_LIMIT,
  AUDIT_MAX_LIMIT,
  AuditEntry,
  AuditQuery,
  EXAMPLE_AUDIT_CURSOR,
} from "../schemas/audit.ts";
import { nextUrl } from "./logs.ts";

const listAuditRoute = createRoute({
  method: "get",
  path: "/audit",
  operationId: "listAudit",
  tags: ["audit"],
  ...needs("admin"),
  summary: "The audit log, newest first",
  description: "Every change made through the API (keys, services, job switches, manual runs, " +
    "prunes, users, sign-in) and every refusal (401/403) on an admin route, with who, what, " +
    "the target, when, the client address and the request id. Kept AUDIT_RETENTION_DAYS. " +
    `Filters combine (AND). Page with \`limit\` (1-${AUDIT_MAX_LIMIT}, default ` +
    `${AUDIT_DEFAULT_LIMIT}) and \`cursor\`: when another page may follow, its URL is in the ` +
    "Link header (rel=next) and its cursor in X-Next-Cursor.",
  request: { query: AuditQuery },
  responses: {
    200: {
      description: "Matching entries (an empty array when nothing matches)",
      headers: z.object({
        Link: z.string().optional().openapi({
          description: "The next page: the same query with cursor set.",
          example: `</audit?action=key.create&cursor=${EXAMPLE_AUDIT_CURSOR}>; rel="next"`,
        }),
        "X-Next-Cursor": z.string().optional().openapi({
          description: "The cursor of the next page.",
          example: EXAMPLE_AUDIT_CURSOR,
        }),
      }),
      content: { "application/json": { schema: z.array(AuditEntry) } },
    },
    400: problemResponse("A bad parameter, or start_time after end_time; `errors` names each"),
    ...authResponses,
  },
});

/** GET /audit — the audit log (admin). */
export function auditRoutes(app: OpenAPIHono, ctx: AppContext): void {
  app.openapi(guarded(listAuditRoute, ctx.access), async (c) => {
    const q = c.req.valid("query");
    // The same time rules as GET /logs: inclusive, exact to the microsecond, start <= end.
    const range = toFilter({ start_time: q.start_time, end_time: q.end_time });
    const page = await listAudit(ctx.sql, {
      start: range.startExact,
      end: range.endExact,
      action: q.action,
      actor: q.actor,
      limit: q.limit ?? AUDIT_DEFAULT_LIMIT,
      cursor: q.cursor,
    });
    if (page.nextCursor) {
      c.header("Link", `<${nextUrl(c.req.url, page.nextCursor)}>; rel="next"`);
      c.header("X-Next-Cursor", page.nextCursor);
    }
    return c.json(page.entries, 200);
  });
}
