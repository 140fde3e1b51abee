import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { timeQuery } from "../../metrics/query-timing.ts";
import { bodyLimit } from "hono/body-limit";
import type { AppContext } from "../context.ts";
import { auditOrigin } from "../audit-origin.ts";
import { SERVICE_NAME } from "../../config.ts";
import { ForbiddenError, InvalidInputError, NotFoundError } from "../../errors.ts";
import { isScoped, mayChangeService, scopeServices } from "../../access/principal.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { getService, listServices, upsertService } from "../../query/services.ts";
import { Service } from "../schemas/services.ts";
import { authResponses, problemResponse } from "../openapi.ts";

/** The body is a team name; anything near this size is not one. */
const MAX_PUT_BYTES = 16 * 1024;

const NameParam = z.object({
  name: z.string().regex(SERVICE_NAME, {
    error: "must be 1-100 characters of letters, digits and . _ - /",
  }).openapi({
    param: { name: "name", in: "path" },
    description: "The service name; write a / inside it as %2F.",
    example: "checkout-service",
  }),
});

const ServiceInput = z.object({
  team_owner: z.string({ error: "must be a string or null" })
    .max(200, { error: "must be at most 200 characters" })
    .refine((s) => !s.includes("\0"), { error: "must not contain NUL characters" })
    .nullable().openapi({ example: "Payments Team" }),
}).openapi("ServiceInput");

const LAST_24H_NOTE = "last_24h is counted from the per-minute and per-hour rollups: from the " +
  "start of the minute 24 hours ago through the current minute (UTC), so it is precise to the " +
  "minute; errors are events with status_code >= 500.";

const list = createRoute({
  method: "get",
  path: "/services",
  operationId: "listServices",
  tags: ["services"],
  ...needs("read"),
  summary: "Every service with its owner and last 24 hours",
  description: LAST_24H_NOTE,
  responses: {
    200: {
      description: "Services by name",
      content: { "application/json": { schema: z.array(Service) } },
    },
    ...authResponses,
  },
});

const get = createRoute({
  method: "get",
  path: "/services/{name}",
  operationId: "getService",
  tags: ["services"],
  ...needs("read"),
  summary: "One service with its owner and last 24 hours",
  description: LAST_24H_NOTE,
  request: { params: NameParam },
  responses: {
    200: { description: "The service", content: { "application/json": { schema: Service } } },
    400: problemResponse("Not a valid service name"),
    404: problemResponse("No service of that name"),
    ...authResponses,
  },
});

const put = createRoute({
  method: "put",
  path: "/services/{name}",
  operationId: "putService",
  tags: ["services"],
  ...needs("service_owner"),
  summary: "Create a service or set its team owner",
  description: "Creates the service (201) or replaces its team_owner (200); answers the " +
    `service. ${LAST_24H_NOTE}`,
  middleware: [
    bodyLimit({
      maxSize: MAX_PUT_BYTES,
      onError: () => {
        throw new InvalidInputError(
          [{ field: "(body)", message: `larger than the limit of ${MAX_PUT_BYTES} bytes` }],
          "too_large",
        );
      },
    }),
  ] as const,
  request: {
    params: NameParam,
    body: { required: true, content: { "application/json": { schema: ServiceInput } } },
  },
  responses: {
    200: { description: "Updated", content: { "application/json": { schema: Service } } },
    201: { description: "Created", content: { "application/json": { schema: Service } } },
    400: problemResponse("Bad name, malformed JSON or an invalid team_owner"),
    413: problemResponse("Body too large"),
    415: problemResponse("Body not application/json"),
    ...authResponses,
  },
});

/** GET /services, GET and PUT /services/{name}. */
export function servicesRoutes(app: OpenAPIHono, ctx: AppContext): void {
  app.openapi(guarded(list, ctx.access), async (c) => {
    const all = await timeQuery(ctx.metrics, "services", () => listServices(ctx.sql));
    const p = c.get("principal");
    if (!isScoped(p)) return c.json(all, 200);
    const scope = new Set(await scopeServices(ctx.sql, p));
    return c.json(all.filter((s) => scope.has(s.name)), 200);
  });

  app.openapi(guarded(get, ctx.access), async (c) => {
    const { name } = c.req.valid("param");
    const p = c.get("principal");
    if (isScoped(p) && !(await scopeServices(ctx.sql, p)).includes(name)) {
      throw new ForbiddenError(`outside this key's scope: "${name}"`);
    }
    const service = await getService(ctx.sql, name);
    if (!service) throw new NotFoundError(`No service named "${name}"`);
    return c.json(service, 200);
  });

  app.openapi(guarded(put, ctx.access), async (c) => {
    const { name } = c.req.valid("param");
    const { team_owner } = c.req.valid("json");
    const { created } = await upsertService(
      ctx.sql,
      name,
      team_owner,
      auditOrigin(c),
      (current) => {
        const refused = mayChangeService(c.get("principal"), current, team_owner);
        if (refused) throw new ForbiddenError(refused);
      },
    );
    const service = await getService(ctx.sql, name);
    if (!service) throw new Error(`service "${name}" vanished after its upsert`);
    return c.json(service, created ? 201 : 200);
  });
}
