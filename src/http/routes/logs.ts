import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { timeQuery } from "../../metrics/query-timing.ts";
import type { AppContext } from "../context.ts";
import { MAX_LIMIT, MAX_OFFSET, queryLogs, toLogsRequest } from "../../query/logs.ts";
import { LogEvent } from "../schemas/events.ts";
import { EXAMPLE_CURSOR, LogsQuery } from "../schemas/logs.ts";
import { unlessClientGone } from "../client-gone.ts";
import { authResponses, problemResponse, unavailableResponse } from "../openapi.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { narrowToScope } from "../../access/principal.ts";

const listLogs = createRoute({
  method: "get",
  path: "/logs",
  operationId: "listLogs",
  tags: ["logs"],
  ...needs("read"),
  summary: "Query events, newest first",
  description: "Every filter is optional and they combine (AND); service_name may repeat " +
    "(OR between services). Ordered by timestamp, then id, newest first. Page with `limit` " +
    `(1-${MAX_LIMIT}) and either \`cursor\` (keyset: exact while events arrive) or \`offset\` ` +
    `(at most ${MAX_OFFSET}). When another page may follow, its URL is in the Link header ` +
    "(rel=next) and its cursor in X-Next-Cursor; the last page has neither.",
  request: { query: LogsQuery },
  responses: {
    200: {
      description: "Matching events (an empty array when nothing matches)",
      headers: z.object({
        Link: z.string().optional().openapi({
          description: "The next page: the same query with cursor set and offset removed.",
          example: `</logs?service_name=checkout-service&cursor=${EXAMPLE_CURSOR}>; rel="next"`,
        }),
        "X-Next-Cursor": z.string().optional().openapi({
          description: "The cursor of the next page.",
          example: EXAMPLE_CURSOR,
        }),
      }),
      content: { "application/json": { schema: z.array(LogEvent) } },
    },
    400: problemResponse(
      "A bad parameter, start_time after end_time, or offset with cursor; `errors` names each",
    ),
    ...authResponses,
    503: unavailableResponse("The query ran past QUERY_TIMEOUT_MS and was stopped (narrow it)"),
  },
});

/** GET /logs — filtered, paginated query. */
export function logsRoutes(app: OpenAPIHono, ctx: AppContext): void {
  app.openapi(guarded(listLogs, ctx.access), async (c) => {
    const q = c.req.valid("query");
    const services = await narrowToScope(ctx.sql, c.get("principal"), q.service_name);
    const request = toLogsRequest({ ...q, service_name: services });
    return unlessClientGone(c.req.raw, async (signal) => {
      const page = await timeQuery(
        ctx.metrics,
        "logs",
        () => queryLogs(ctx.sql, request, { timeoutMs: ctx.config.queryTimeoutMs, signal }),
      );
      if (page.nextCursor) {
        c.header("Link", `<${nextUrl(c.req.url, page.nextCursor)}>; rel="next"`);
        c.header("X-Next-Cursor", page.nextCursor);
      }
      return c.json(page.events, 200);
    });
  });
}

/** Path and query of the next page, relative so that it survives proxies and rewrites. */
export function nextUrl(requestUrl: string, cursor: string): string {
  const url = new URL(requestUrl);
  url.searchParams.delete("offset");
  url.searchParams.set("cursor", cursor);
  return `${url.pathname}?${url.searchParams}`;
}
