// GET /markers: deployments and releases (from GitHub webhooks) in a time range, for charts.
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { listMarkers, MARKERS_LIMIT } from "../../query/markers.ts";
import { toFilter } from "../../query/filters.ts";
import type { AppContext } from "../context.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { narrowToScope } from "../../access/principal.ts";
import { authResponses, problemResponse, unavailableResponse } from "../openapi.ts";
import { filterQueryFields } from "../schemas/filters.ts";
import { Marker } from "../schemas/markers.ts";

const MarkersQuery = z.strictObject({
  service_name: filterQueryFields.service_name,
  start_time: filterQueryFields.start_time.openapi({
    description: "Inclusive: markers at or after this time (ISO 8601 with a zone).",
  }),
  end_time: filterQueryFields.end_time.openapi({
    description: "Inclusive: markers at or before this time (ISO 8601 with a zone).",
  }),
});

const listMarkersRoute = createRoute({
  method: "get",
  path: "/markers",
  operationId: "listMarkers",
  tags: ["logs"],
  ...needs("read"),
  summary: "Deployments and releases in a time range, oldest first",
  description: "What changed, for charts: each deployment_status and each published release " +
    `received through POST /webhooks/github. At most ${MARKERS_LIMIT}, oldest first.`,
  request: { query: MarkersQuery },
  responses: {
    200: {
      description: "Matching markers (an empty array when none)",
      content: { "application/json": { schema: z.array(Marker) } },
    },
    400: problemResponse("A bad parameter, or start_time after end_time"),
    ...authResponses,
    503: unavailableResponse(),
  },
});

export function markersRoutes(app: OpenAPIHono, ctx: AppContext): void {
  app.openapi(guarded(listMarkersRoute, ctx.access), async (c) => {
    const q = c.req.valid("query");
    // A scoped key sees its services' markers only, as with every other read.
    const service_name = await narrowToScope(ctx.sql, c.get("principal"), q.service_name);
    const f = toFilter({
      service_name,
      start_time: q.start_time,
      end_time: q.end_time,
    });
    const markers = await listMarkers(ctx.sql, {
      services: f.services,
      start: f.startExact,
      end: f.endExact,
    });
    return c.json([...markers], 200);
  });
}
