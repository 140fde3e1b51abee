// The query string and headers of GET /logs/live-feed.
import { z } from "@hono/zod-openapi";
import { LIVE_DEFAULT_LIMIT, LIVE_MAX_LIMIT } from "../../live/feed.ts";
import { filterQueryFields } from "./filters.ts";
import { intParam } from "./params.ts";

const ID = /^[0-9]{1,15}$/;
const MAX_EVENT_ID = 999_999_999_999_999;

export const LiveQuery = z.strictObject({
  ...filterQueryFields,
  limit: intParam(1, LIVE_MAX_LIMIT, "limit").openapi({
    description: `How many of the latest events, 1 to ${LIVE_MAX_LIMIT} (default ` +
      `${LIVE_DEFAULT_LIMIT}). For a stream: how many are sent before it goes live.`,
    example: 50,
  }),
  last_event_id: intParam(0, MAX_EVENT_ID, "last_event_id").openapi({
    description: "Streams only: resume after this event id (the Last-Event-ID header wins).",
    example: 1042,
  }),
});

// Accept is not declared: OpenAPI ignores a header parameter by that name; the two response
// content types document the negotiation.
export const LiveHeaders = z.object({
  "last-event-id": z.string().regex(ID, { error: "must be an event id (a whole number)" })
    .or(z.literal("")).optional().openapi({
      param: { name: "last-event-id", in: "header" },
      description: "Sent by EventSource on reconnect: resume after this event id.",
      example: "1042",
    }),
});
