// /slos: service level objective definitions. GET /slos/{id} answers the definition with the
// evaluator's figures (sli, error budget, burn rates, alerting), null until computed.
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { ForbiddenError, NotFoundError } from "../../errors.ts";
import { createSlo, deleteSlo, getSlo, listSlosOut, type SloOut } from "../../alerts/slos.ts";
import { sloStatusNow } from "../../alerts/slo-status.ts";
import { assertMayChange } from "../../alerts/scope.ts";
import type { AppContext } from "../context.ts";
import { auditOrigin } from "../audit-origin.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { authResponses, problemResponse } from "../openapi.ts";
import { Slo, SloDetail, SloInput } from "../schemas/slos.ts";
import { definitionOwners, idParam, json, readScope } from "./alerts-shared.ts";

const IdParam = idParam("an SLO");
const CHANGE_NOTE = "Needs admin, or a writer key whose scope holds the service.";

/** GET, POST /slos; GET, DELETE /slos/{id}. */
export function slosRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const owner = { ...needs("service_owner"), middleware: definitionOwners() };
  const tags = ["alerts"];
  const visible = async (p: Parameters<typeof readScope>[1], slo: SloOut) => {
    const scope = await readScope(ctx.sql, p);
    return !scope || scope.services.has(slo.service);
  };

  app.openapi(
    guarded(
      createRoute({
        method: "post",
        path: "/slos",
        operationId: "createSlo",
        tags,
        summary: "Create a service level objective",
        description: CHANGE_NOTE,
        ...owner,
        request: {
          body: { required: true, content: { "application/json": { schema: SloInput } } },
        },
        responses: {
          201: json(Slo, "The SLO's definition"),
          400: problemResponse("A bad field, or a service that does not exist"),
          409: problemResponse("The service has an SLO of that name already"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const b = c.req.valid("json");
      await assertMayChange(ctx.sql, c.get("principal"), { services: [b.service], teams: [] });
      const slo = await createSlo(ctx.sql, {
        service: b.service,
        name: b.name,
        objective: b.objective,
        periodDays: b.period_days,
        indicator: b.indicator,
        latencyThresholdMs: b.latency_threshold_ms ?? null,
      }, auditOrigin(c));
      return c.json(slo, 201);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/slos",
        operationId: "listSlos",
        tags,
        summary: "Every SLO's definition, by service and name",
        description: "A scoped key sees its services' SLOs.",
        ...needs("read"),
        responses: { 200: json(z.array(Slo), "SLO definitions"), ...authResponses },
      }),
      ctx.access,
    ),
    async (c) => {
      const slos = await listSlosOut(ctx.sql);
      const scope = await readScope(ctx.sql, c.get("principal"));
      return c.json(scope ? slos.filter((s) => scope.services.has(s.service)) : slos, 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/slos/{id}",
        operationId: "getSlo",
        tags,
        summary: "One SLO: its definition, SLI, error budget and burn rates",
        ...needs("read"),
        request: { params: IdParam },
        responses: {
          200: json(SloDetail, "The SLO"),
          400: problemResponse("Bad id"),
          404: problemResponse("No such SLO"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      const slo = await getSlo(ctx.sql, id);
      if (!slo) throw new NotFoundError(`no SLO with id ${id}`);
      if (!(await visible(c.get("principal"), slo))) {
        throw new ForbiddenError(`SLO ${id} is outside this key's scope`);
      }
      // Computed now from the rollups (a few statements), as the alerts job computes them.
      const status = await sloStatusNow(ctx.sql, slo);
      return c.json({ ...slo, ...status }, 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "delete",
        path: "/slos/{id}",
        operationId: "deleteSlo",
        tags,
        summary: "Delete an SLO and its alerts' state",
        description: CHANGE_NOTE,
        ...owner,
        request: { params: IdParam },
        responses: {
          204: { description: "Deleted" },
          400: problemResponse("Bad id"),
          404: problemResponse("No such SLO"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      const slo = await getSlo(ctx.sql, id);
      if (!slo) throw new NotFoundError(`no SLO with id ${id}`);
      await assertMayChange(ctx.sql, c.get("principal"), { services: [slo.service], teams: [] });
      await deleteSlo(ctx.sql, id, auditOrigin(c));
      return c.body(null, 204);
    },
  );
}
