// /alerts/silences: hold back notifications of matching alerts until ends_at.
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { NotFoundError } from "../../errors.ts";
import type { Sql } from "../../db/connect.ts";
import {
  createSilence,
  expireSilence,
  getSilence,
  listSilencesOut,
  type SilenceMatchers,
} from "../../alerts/silences.ts";
import { getRule } from "../../alerts/rules.ts";
import { assertMayChange, type Coverage, touchesScope } from "../../alerts/scope.ts";
import type { AppContext } from "../context.ts";
import { auditOrigin } from "../audit-origin.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { authResponses, problemResponse } from "../openapi.ts";
import { boolParam } from "../schemas/params.ts";
import { Silence, SilenceInput } from "../schemas/alerts.ts";
import { definitionOwners, idParam, json, readScope } from "./alerts-shared.ts";

const IdParam = idParam("a silence");
const CHANGE_NOTE = "Needs admin, or a writer key whose scope holds the service and team " +
  "matched (or, matching a rule alone, everything the rule watches).";

/**
 * What a silence's matchers reach: its service and team, else its rule's; null when there is
 * nothing to judge (no matcher, or a rule that does not exist: a 400 from createSilence).
 */
async function coverage(sql: Sql, m: SilenceMatchers): Promise<Coverage | null> {
  if (m.service === undefined && m.team === undefined) {
    return m.rule === undefined ? null : await getRule(sql, m.rule);
  }
  return {
    services: m.service === undefined ? [] : [m.service],
    teams: m.team === undefined ? [] : [m.team],
  };
}

/** POST, GET /alerts/silences; DELETE /alerts/silences/{id}. */
export function silencesRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const owner = { ...needs("service_owner"), middleware: definitionOwners() };
  const tags = ["alerts"];

  app.openapi(
    guarded(
      createRoute({
        method: "post",
        path: "/alerts/silences",
        operationId: "createSilence",
        tags,
        summary: "Silence matching alerts' notifications from now until ends_at",
        description: CHANGE_NOTE,
        ...owner,
        request: {
          body: { required: true, content: { "application/json": { schema: SilenceInput } } },
        },
        responses: {
          201: json(Silence, "The silence"),
          400: problemResponse(
            "A bad field, no matcher, ends_at not ahead or over 30 days ahead, or a service or " +
              "rule that does not exist",
          ),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const b = c.req.valid("json");
      const input = { matchers: b.matchers, endsAt: new Date(b.ends_at), comment: b.comment };
      const cover = await coverage(ctx.sql, b.matchers);
      if (cover) await assertMayChange(ctx.sql, c.get("principal"), cover);
      return c.json(await createSilence(ctx.sql, input, auditOrigin(c)), 201);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/alerts/silences",
        operationId: "listSilences",
        tags,
        summary: "Active silences, newest first (?all=true: expired ones too)",
        description: "A scoped key sees those matching one of its services or teams, and those " +
          "matching a rule alone.",
        ...needs("read"),
        request: { query: z.strictObject({ all: boolParam("all") }) },
        responses: {
          200: json(z.array(Silence), "Silences"),
          400: problemResponse("Bad parameter"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const silences = await listSilencesOut(ctx.sql, { all: c.req.valid("query").all });
      const scope = await readScope(ctx.sql, c.get("principal"));
      if (!scope) return c.json(silences, 200);
      const shown = silences.filter((s) =>
        touchesScope({
          services: s.matchers.service === undefined ? [] : [s.matchers.service],
          teams: s.matchers.team === undefined ? [] : [s.matchers.team],
        }, scope)
      );
      return c.json(shown, 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "delete",
        path: "/alerts/silences/{id}",
        operationId: "expireSilence",
        tags,
        summary: "Expire a silence now (it stays listed with ?all=true)",
        description: CHANGE_NOTE,
        ...owner,
        request: { params: IdParam },
        responses: {
          204: { description: "Expired (or had ended already)" },
          400: problemResponse("Bad id"),
          404: problemResponse("No such silence"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      const silence = await getSilence(ctx.sql, id);
      if (!silence) throw new NotFoundError(`no silence with id ${id}`);
      // A silence whose rule was deleted since: judged as one for every service (admin).
      const cover = await coverage(ctx.sql, silence.matchers) ?? { services: [], teams: [] };
      await assertMayChange(ctx.sql, c.get("principal"), cover);
      await expireSilence(ctx.sql, id, auditOrigin(c));
      return c.body(null, 204);
    },
  );
}
