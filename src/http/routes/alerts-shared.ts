// Pieces the alert definition routes share: the numeric id parameter, the JSON response helper,
// the middleware that refuses writers without a scope, and the reader's scope.
import { z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import type { Sql } from "../../db/connect.ts";
import { ForbiddenError } from "../../errors.ts";
import { isScoped, type Principal, scopeServices } from "../../access/principal.ts";
import { mayOwnDefinitions } from "../../alerts/scope.ts";

export const idParam = (what: string) =>
  z.object({
    id: z.coerce.number({ error: `must be ${what} id` }).int({ error: `must be ${what} id` })
      .min(1, { error: `must be ${what} id` }).max(2 ** 53 - 1, { error: `must be ${what} id` })
      .openapi({
        param: { name: "id", in: "path" },
        type: "integer",
        minimum: 1,
        maximum: 2 ** 53 - 1,
        example: 4242,
      }),
  });

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

/**
 * Before the input is read: a writer without teams or services may change no definition, so it
 * is refused (403) whatever it sent, as PUT /services/{name} refuses it.
 */
export const definitionOwners = (): MiddlewareHandler =>
  async function definitionOwners(c, next) {
    const refused = mayOwnDefinitions(c.get("principal"));
    if (refused) throw new ForbiddenError(refused);
    await next();
  };

/** The scope a scoped reader sees definitions in; undefined: everything. */
export async function readScope(
  sql: Sql,
  p: Principal | undefined,
): Promise<{ services: Set<string>; teams: string[] } | undefined> {
  if (!isScoped(p)) return undefined;
  return { services: new Set(await scopeServices(sql, p)), teams: p.teams };
}
