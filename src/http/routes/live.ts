import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import type { AppContext } from "../context.ts";
import {
  latestFeed,
  LIVE_DEFAULT_LIMIT,
  LIVE_MAX_LIMIT,
  LIVE_MAX_RESUME,
  openLiveFeed,
  toLiveRequest,
} from "../../live/feed.ts";
import { wantsEventStream } from "../accept.ts";
import { LogEvent } from "../schemas/events.ts";
import { LiveHeaders, LiveQuery } from "../schemas/live.ts";
import { timeQuery } from "../../metrics/query-timing.ts";
import { authResponses, problemResponse, unavailableResponse } from "../openapi.ts";
import { guarded, needs, stillHolds } from "../middleware/auth.ts";
import { narrowToScope } from "../../access/principal.ts";

const liveFeed = createRoute({
  method: "get",
  path: "/logs/live-feed",
  operationId: "getLiveFeed",
  tags: ["logs"],
  ...needs("read"),
  summary: "The latest events as JSON, or a live Server-Sent Events stream",
  description: "Without `Accept: text/event-stream` (no Accept, or JSON): the latest `limit` " +
    `matching events (default ${LIVE_DEFAULT_LIMIT}, at most ${LIVE_MAX_LIMIT}), newest ` +
    "first.\n\n" +
    "With it: a stream that first sends those events oldest first, then every matching " +
    "event as soon as it is committed. Each is `event: log`, `id: <event id>`, " +
    "`data: <LogEvent JSON>`; a `: ping` comment follows those first events (where the " +
    "backlog ends) and keeps idle connections open (LIVE_HEARTBEAT_S). With `Last-Event-ID` (EventSource sends it on reconnect) or " +
    `\`last_event_id\`, the stream starts with the matching events after that id instead: ` +
    `the newest ${LIVE_MAX_RESUME} of them, oldest first. When more were missed, an ` +
    "`event: gap` (no `id`) comes first, its `data` a JSON object: `after_id` (the id resumed " +
    "after), `first_id` and `last_id` (the lowest and highest id skipped), `skipped` (how many " +
    "matching events), `from` and `to` (their oldest and newest timestamps). To load them: " +
    "GET /logs with the stream's filters, `start_time=<from>&end_time=<to>` and the `cursor` " +
    "for further pages, keeping the events with `first_id <= id <= last_id`. A client too slow " +
    "to keep up, or every client when the server's listener is lost, is disconnected and " +
    "resumes the same way on reconnect. A stream opened with a key or session ends at the " +
    "next ping once that credential is revoked, expired or signed out. Filters are those of " +
    "GET /logs.",
  request: { query: LiveQuery, headers: LiveHeaders },
  responses: {
    200: {
      description: "The latest events, or the stream",
      headers: z.object({ vary: z.string().openapi({ example: "Accept" }) }),
      content: {
        "application/json": { schema: z.array(LogEvent) },
        "text/event-stream": {
          schema: z.string().openapi({
            description: "Server-Sent Events: `log` events carrying a LogEvent, a `gap` " +
              "event first when resuming skipped events, and pings",
            example: 'event: gap\ndata: {"after_id":310,"first_id":311,"last_id":1041,' +
              '"skipped":731,"from":"2026-11-28T06:02:11.004000Z",' +
              '"to":"2026-11-28T06:59:59.871532Z"}\n\n' +
              'event: log\ndata: {"id":1042,"timestamp":"2026-11-28T07:00:00.123Z",' +
              '"service_name":"checkout-service","team_owner":"Payments Team",' +
              '"status_code":503,"event_type":"payment.charge","latency_ms":182.4,' +
              '"message":"card declined by issuer","attributes":null}\nid: 1042\n\n: ping\n\n',
          }),
        },
      },
    },
    400: problemResponse(
      "A bad filter, limit or event id, or start_time after end_time; names each field",
    ),
    ...authResponses,
    503: unavailableResponse("Shutting down"),
  },
});

/** GET /logs/live-feed (JSON and Server-Sent Events). */
export function liveRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const retention = {
    retentionDays: ctx.config.retentionDays,
    queryTimeoutMs: ctx.config.queryTimeoutMs,
  };
  app.openapi(guarded(liveFeed, ctx.access), async (c) => {
    const q = c.req.valid("query");
    // The scope is taken when the feed opens; a change of owner applies on reconnect.
    const service_name = await narrowToScope(ctx.sql, c.get("principal"), q.service_name);
    const req = toLiveRequest({ ...q, service_name }, c.req.valid("header")["last-event-id"]);
    c.header("Vary", "Accept");
    if (!wantsEventStream(c.req.header("accept"))) {
      const events = await timeQuery(
        ctx.metrics,
        "live_latest",
        () => latestFeed(ctx.sql, req, retention),
      );
      return c.json(events, 200);
    }
    // Opened before the response starts, so a failure is still a proper problem answer.
    const feed = await timeQuery(
      ctx.metrics,
      "live_open",
      () => openLiveFeed(ctx.liveHub, req, retention),
    );
    const opened = c.get("principal") !== undefined;
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => feed.cancel());
      await feed.pipe({
        send: (e) => stream.writeSSE({ event: "log", id: String(e.id), data: JSON.stringify(e) }),
        // No id: the client's Last-Event-ID stays its own until a log event moves it.
        gap: (g) => stream.writeSSE({ event: "gap", data: JSON.stringify(g) }),
        ping: async () => {
          // A stream opened with a credential ends at the ping after it stops holding `read`.
          if (opened && !(await stillHolds(ctx.access, c, "read"))) return stream.abort();
          await stream.write(": ping\n\n");
        },
        abort: () => stream.abort(),
      }, ctx.config.liveHeartbeatS * 1000);
    });
  });
}
