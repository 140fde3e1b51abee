// /users — people who sign in, and the roles and teams admins give them. A change applies at
// the person's next request: sessions look the role up each time.
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { recordAudit } from "../../access/audit.ts";
import { listUsers, setUserRole, type User as UserRow } from "../../access/users.ts";
import { auditOrigin } from "../audit-origin.ts";
import type { AppContext } from "../context.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { authResponses, problemResponse } from "../openapi.ts";
import { LOGIN, User, UserInput } from "../schemas/users.ts";

const LoginParam = z.object({
  login: z.string().regex(LOGIN, { error: "must be a login or an email" })
    .openapi({ param: { name: "login", in: "path" }, example: "octocat" }),
});

const out = (u: UserRow) => ({
  login: u.login,
  email: u.email,
  provider: u.provider,
  role: u.role,
  teams: u.teams,
  created_at: u.created_at.toISOString(),
  last_seen_at: u.last_seen_at ? u.last_seen_at.toISOString() : null,
});

export function usersRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const admin = needs("admin");

  app.openapi(
    guarded(
      createRoute({
        method: "put",
        path: "/users/{login}",
        operationId: "setUser",
        tags: ["users"],
        summary: "Give a person a role and teams (before or after their first sign-in)",
        ...admin,
        request: {
          params: LoginParam,
          body: { content: { "application/json": { schema: UserInput } }, required: true },
        },
        responses: {
          200: { content: { "application/json": { schema: User } }, description: "Updated" },
          201: {
            content: { "application/json": { schema: User } },
            description: "Created in advance: the role holds from the first sign-in",
          },
          400: problemResponse("Bad login or body"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const { login } = c.req.valid("param");
      const body = c.req.valid("json");
      const { before, after } = await ctx.sql.begin(async (tx) => {
        const r = await setUserRole(tx, login, body.role, body.teams);
        await recordAudit(tx, auditOrigin(c), {
          action: "user.update",
          target: `user:${r.after.login}`,
          detail: {
            old: r.before ? { role: r.before.role, teams: r.before.teams } : null,
            new: { role: r.after.role, teams: r.after.teams },
          },
        });
        return r;
      });
      return before ? c.json(out(after), 200) : c.json(out(after), 201);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/users",
        operationId: "listUsers",
        tags: ["users"],
        summary: "Everyone who signed in or was given a role",
        ...admin,
        responses: {
          200: {
            content: { "application/json": { schema: z.array(User) } },
            description: "People by login",
          },
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => c.json((await listUsers(ctx.sql)).map(out), 200),
  );
}
