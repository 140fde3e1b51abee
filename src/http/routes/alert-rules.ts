// /alerts/rules: alert rule definitions (evaluated by src/alerts/evaluate*.ts).
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { ForbiddenError, InvalidInputError, NotFoundError } from "../../errors.ts";
import {
  createRule,
  deleteRule,
  getRule,
  listRulesOut,
  type RuleInput as DomainRuleInput,
  updateRule,
} from "../../alerts/rules.ts";
import { assertMayChange, touchesScope } from "../../alerts/scope.ts";
import { parseDuration } from "../../alerts/duration.ts";
import type { AppContext } from "../context.ts";
import { auditOrigin } from "../audit-origin.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { authResponses, problemResponse } from "../openapi.ts";
import { Rule, RuleInput } from "../schemas/alerts.ts";
import { definitionOwners, idParam, json, readScope } from "./alerts-shared.ts";

const IdParam = idParam("an alert rule");
const CHANGE_NOTE = "Needs admin, or a writer key whose scope holds every service and team " +
  "the rule names (before and after the change); a rule naming neither watches every service " +
  "and needs admin.";

const body = {
  body: { required: true, content: { "application/json": { schema: RuleInput } } },
};

/** The body as the domain takes it: durations in seconds. */
function toInput(b: z.infer<typeof RuleInput>): DomainRuleInput {
  const windowS = parseDuration(b.window), forS = parseDuration(b.for);
  if (windowS === null || forS === null) {
    throw new InvalidInputError([
      { field: windowS === null ? "window" : "for", message: "is not a duration" },
    ], "malformed");
  }
  return { ...b, windowS, forS };
}

/** GET, POST /alerts/rules; GET, PUT, DELETE /alerts/rules/{id}. */
export function alertRulesRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const owner = { ...needs("service_owner"), middleware: definitionOwners() };
  const tags = ["alerts"];

  app.openapi(
    guarded(
      createRoute({
        method: "post",
        path: "/alerts/rules",
        operationId: "createAlertRule",
        tags,
        summary: "Create an alert rule",
        description: CHANGE_NOTE,
        ...owner,
        request: body,
        responses: {
          201: json(Rule, "The rule"),
          400: problemResponse("A bad field, or a service or channel that does not exist"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const input = toInput(c.req.valid("json"));
      await assertMayChange(ctx.sql, c.get("principal"), {
        services: input.services ?? [],
        teams: input.teams ?? [],
      });
      return c.json(await createRule(ctx.sql, input, auditOrigin(c)), 201);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/alerts/rules",
        operationId: "listAlertRules",
        tags,
        summary: "Every alert rule, by id",
        description: "A key scoped to teams or services sees the rules that watch one of its " +
          "services or teams, and those that watch every service.",
        ...needs("read"),
        responses: { 200: json(z.array(Rule), "Rules by id"), ...authResponses },
      }),
      ctx.access,
    ),
    async (c) => {
      const rules = await listRulesOut(ctx.sql);
      const scope = await readScope(ctx.sql, c.get("principal"));
      return c.json(scope ? rules.filter((r) => touchesScope(r, scope)) : rules, 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/alerts/rules/{id}",
        operationId: "getAlertRule",
        tags,
        summary: "One alert rule",
        ...needs("read"),
        request: { params: IdParam },
        responses: {
          200: json(Rule, "The rule"),
          400: problemResponse("Bad id"),
          404: problemResponse("No such rule"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      const rule = await getRule(ctx.sql, id);
      if (!rule) throw new NotFoundError(`no alert rule with id ${id}`);
      const scope = await readScope(ctx.sql, c.get("principal"));
      if (scope && !touchesScope(rule, scope)) {
        throw new ForbiddenError(`alert rule ${id} is outside this key's scope`);
      }
      return c.json(rule, 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "put",
        path: "/alerts/rules/{id}",
        operationId: "putAlertRule",
        tags,
        summary: "Replace an alert rule's definition",
        description: CHANGE_NOTE,
        ...owner,
        request: { params: IdParam, ...body },
        responses: {
          200: json(Rule, "The rule as changed"),
          400: problemResponse("A bad field, or a service or channel that does not exist"),
          404: problemResponse("No such rule"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      const input = toInput(c.req.valid("json"));
      const before = await getRule(ctx.sql, id);
      if (!before) throw new NotFoundError(`no alert rule with id ${id}`);
      const p = c.get("principal");
      await assertMayChange(ctx.sql, p, before);
      await assertMayChange(ctx.sql, p, {
        services: input.services ?? [],
        teams: input.teams ?? [],
      });
      return c.json(await updateRule(ctx.sql, id, input, auditOrigin(c)), 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "delete",
        path: "/alerts/rules/{id}",
        operationId: "deleteAlertRule",
        tags,
        summary: "Delete an alert rule and its alerts' state",
        description: CHANGE_NOTE,
        ...owner,
        request: { params: IdParam },
        responses: {
          204: { description: "Deleted" },
          400: problemResponse("Bad id"),
          404: problemResponse("No such rule"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      const before = await getRule(ctx.sql, id);
      if (!before) throw new NotFoundError(`no alert rule with id ${id}`);
      await assertMayChange(ctx.sql, c.get("principal"), before);
      await deleteRule(ctx.sql, id, auditOrigin(c));
      return c.body(null, 204);
    },
  );
}
