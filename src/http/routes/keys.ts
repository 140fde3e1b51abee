import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { createKey, deleteKey, listKeys } from "../../access/keys.ts";
import { NotFoundError } from "../../errors.ts";
import { auditOrigin } from "../audit-origin.ts";
import type { AppContext } from "../context.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { authResponses, problemResponse } from "../openapi.ts";
import { CreatedKey, Key, KeyInput } from "../schemas/keys.ts";

const IdParam = z.object({
  id: z.coerce.number({ error: "must be a key id" }).int({ error: "must be a key id" })
    .min(1, { error: "must be a key id" }).max(2 ** 53 - 1, { error: "must be a key id" })
    .openapi({
      param: { name: "id", in: "path" },
      type: "integer",
      minimum: 1,
      maximum: 2 ** 53 - 1,
      example: 12,
    }),
});

const iso = (d: Date | null) => d ? d.toISOString() : null;
const out = <T extends { expires_at: Date | null; created_at: Date; last_used_at: Date | null }>(
  k: T,
) => ({
  ...k,
  expires_at: iso(k.expires_at),
  created_at: k.created_at.toISOString(),
  last_used_at: iso(k.last_used_at),
});

/** /keys — API keys stored in PostgreSQL (admin). */
export function keysRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const admin = needs("admin");

  app.openapi(
    guarded(
      createRoute({
        method: "post",
        path: "/keys",
        operationId: "createKey",
        tags: ["keys"],
        summary: "Create an API key; its token is shown in this answer only",
        ...admin,
        request: {
          body: { content: { "application/json": { schema: KeyInput } }, required: true },
        },
        responses: {
          201: {
            content: { "application/json": { schema: CreatedKey } },
            description: "The key, with its token",
          },
          400: problemResponse("Bad body"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const body = c.req.valid("json");
      const key = await createKey(ctx.sql, {
        ...body,
        expires_at: body.expires_at ? new Date(body.expires_at) : null,
      }, auditOrigin(c));
      ctx.access.forget();
      return c.json(out(key), 201);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/keys",
        operationId: "listKeys",
        tags: ["keys"],
        summary: "Every stored key, without its token",
        ...admin,
        responses: {
          200: {
            content: { "application/json": { schema: z.array(Key) } },
            description: "Keys by id",
          },
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => c.json((await listKeys(ctx.sql)).map(out), 200),
  );

  app.openapi(
    guarded(
      createRoute({
        method: "delete",
        path: "/keys/{id}",
        operationId: "deleteKey",
        tags: ["keys"],
        summary: "Revoke a key, at once on every instance",
        ...admin,
        request: { params: IdParam },
        responses: {
          204: { description: "Revoked" },
          400: problemResponse("Bad id"),
          404: problemResponse("No such key"),
          409: problemResponse(
            "The last admin key, while neither API_KEYS nor sign-in is configured: deleting it " +
              "would leave no way to administer (and, as the last key, turn access control off)",
          ),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const { id } = c.req.valid("param");
      // Without API_KEYS or sign-in, the last admin key is the only way back in.
      const keepLastAdmin = ctx.access.envKeyCount === 0 && !ctx.access.signInConfigured;
      if (!(await deleteKey(ctx.sql, id, auditOrigin(c), { keepLastAdmin }))) {
        throw new NotFoundError(`no key with id ${id}`);
      }
      ctx.access.forget();
      return c.body(null, 204);
    },
  );
}
