// Sign-in for people: /auth/login sends the browser to the provider (GitHub or an OIDC issuer)
// with state, PKCE and nonce kept in PostgreSQL; /auth/callback finishes on any instance, opens
// a session (cookie: a random id, stored as its digest) and sends the person back; /auth/logout
// ends it; /auth/me says who is signed in. All public: they are how one gets a credential.
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { recordAudit } from "../../access/audit.ts";
import {
  createSession,
  deleteSession,
  PENDING_LOGIN_MINUTES,
  pruneExpiredSessions,
  savePendingLogin,
  SESSION_COOKIE,
  takePendingLogin,
} from "../../access/sessions.ts";
import { isListedAdmin, userForSignIn } from "../../access/users.ts";
import { SignIn } from "../../access/oauth.ts";
import { InvalidInputError, NotFoundError, UnauthorizedError } from "../../errors.ts";
import { auditOrigin } from "../audit-origin.ts";
import type { AppContext } from "../context.ts";
import { checkOrigin, guarded, needs } from "../middleware/auth.ts";
import { problemResponse, unavailableResponse } from "../openapi.ts";
import { Me } from "../schemas/users.ts";

const LoginQuery = z.strictObject({
  provider: z.enum(["github", "oidc"], { error: "must be github or oidc" }).optional().openapi({
    description: "Which provider, when both are configured; GitHub by default.",
    example: "github",
  }),
  return_to: z.string().max(2000, { error: "must be at most 2000 characters" }).optional()
    .openapi({
      description: "A path on this server to come back to after signing in (default /).",
      example: "/logs/summary",
    }),
});

// Providers add parameters of their own (iss, scope, session_state): the query is not strict.
const CallbackQuery = z.looseObject({
  state: z.string().max(500).optional().openapi({ example: "k2Jd8xQ0" }),
  code: z.string().max(2000).optional().openapi({ example: "a1b2c3" }),
  error: z.string().max(500).optional().openapi({ example: "access_denied" }),
});

/** A path on this origin: one leading slash, no scheme or host (not //evil, not /\evil). */
function sameOriginPath(raw: string | undefined): string {
  if (raw === undefined || raw === "") return "/";
  const base = "http://observian.invalid";
  let u: URL | undefined;
  try {
    u = new URL(raw, base);
  } catch { /* refused below */ }
  // deno-lint-ignore no-control-regex
  if (!raw.startsWith("/") || /[\\\u0000-\u001f]/.test(raw) || u?.origin !== base) {
    throw new InvalidInputError(
      [{ field: "return_to", message: "must be a path on this server, starting with one /" }],
      "malformed",
    );
  }
  return u.pathname + u.search + u.hash;
}

/** Where the provider sends people back: under PUBLIC_URL, else this request's origin. */
function callbackUrl(c: Context, ctx: AppContext): string {
  return `${ctx.config.signIn.publicUrl ?? new URL(c.req.url).origin}/auth/callback`;
}

/** The login cookie goes to the callback only (its path as the browser sees it, under a proxy). */
const loginCookiePath = (c: Context, ctx: AppContext) => new URL(callbackUrl(c, ctx)).pathname;

/** Secure cookies when we are served over HTTPS (PUBLIC_URL, the URL, or the TLS proxy says). */
function secure(c: Context, ctx: AppContext): boolean {
  const pub = ctx.config.signIn.publicUrl;
  if (pub) return pub.startsWith("https:");
  return new URL(c.req.url).protocol === "https:" ||
    c.req.header("x-forwarded-proto")?.split(",")[0].trim() === "https";
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** The page a signed-in person without a role sees: why, and what to do. */
function noRolePage(login: string): string {
  const who = escapeHtml(login);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>No access yet · Observian</title></head>
<body>
<h1>Signed in, but no access yet</h1>
<p>You are signed in as <strong>${who}</strong>, but you have no role in Observian yet:
an admin must give you a role (<code>PUT /users/${who}</code>).</p>
<p>Once they have, reload any page; you need not sign in again.</p>
<form method="post" action="/auth/logout"><button>Sign out</button></form>
</body></html>
`;
}

/**
 * Binds a sign-in to the browser that began it: the state goes in this cookie too, and the
 * callback must bring both. Otherwise anyone could start a sign-in with their own account and
 * have another person's browser finish it (login CSRF), signing them in as the attacker.
 */
const LOGIN_COOKIE = "observian_login";

const PAGE_HEADERS = {
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; form-action 'self'",
};

export function authRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const signIn = new SignIn(ctx.config.signIn);
  const open = needs("public");
  const notConfigured = () =>
    new NotFoundError(
      "sign-in is not configured: set OAUTH_GITHUB_CLIENT_ID and OAUTH_GITHUB_CLIENT_SECRET, " +
        "or OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET",
    );
  const cookieOptions = (c: Context) => ({
    httpOnly: true,
    sameSite: "Lax" as const,
    path: "/",
    secure: secure(c, ctx),
  });

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/auth/login",
        operationId: "signIn",
        tags: ["sign-in"],
        summary: "Start signing in: a redirect to the provider",
        ...open,
        request: { query: LoginQuery },
        responses: {
          302: {
            description: "To the provider's authorization page",
            headers: z.object({ Location: z.string() }),
          },
          400: problemResponse("Bad parameter, or a provider that is not configured"),
          404: problemResponse("Sign-in is not configured"),
          503: unavailableResponse("the OIDC provider's discovery document cannot be read"),
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const q = c.req.valid("query");
      const providers = signIn.providers();
      if (providers.length === 0) throw notConfigured();
      const provider = q.provider ?? providers[0];
      if (!providers.includes(provider)) {
        throw new InvalidInputError(
          [{ field: "provider", message: `not configured here; use ${providers.join(" or ")}` }],
          "malformed",
        );
      }
      const returnTo = sameOriginPath(q.return_to);
      const start = await signIn.begin(provider, callbackUrl(c, ctx), returnTo);
      await savePendingLogin(ctx.sql, start.pending);
      setCookie(c, LOGIN_COOKIE, start.pending.state, {
        ...cookieOptions(c),
        path: loginCookiePath(c, ctx),
        maxAge: PENDING_LOGIN_MINUTES * 60,
      });
      c.header("cache-control", "no-store");
      return c.redirect(start.url.href, 302);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/auth/callback",
        operationId: "signInCallback",
        tags: ["sign-in"],
        summary: "Where the provider sends the person back: opens a session",
        ...open,
        request: { query: CallbackQuery },
        responses: {
          302: {
            description: "Signed in: the session cookie is set; back to return_to",
            headers: z.object({ Location: z.string(), "Set-Cookie": z.string() }),
          },
          400: problemResponse("No state, or one unknown or expired: start again"),
          401: problemResponse("The provider refused, or its answer did not check out"),
          403: {
            description: "Signed in (the cookie is set), but without a role: a page saying so; " +
              "or the login belongs to an account at the other provider (problem)",
            content: {
              "text/html": { schema: z.string() },
              ...problemResponse("").content,
            },
          },
          404: problemResponse("Sign-in is not configured"),
          503: unavailableResponse("the provider cannot be reached"),
        },
      }),
      ctx.access,
    ),
    async (c) => {
      if (!signIn.configured) throw notConfigured();
      const { state } = c.req.valid("query");
      if (!state) {
        throw new InvalidInputError([{ field: "state", message: "is missing" }], "malformed");
      }
      const bound = getCookie(c, LOGIN_COOKIE);
      deleteCookie(c, LOGIN_COOKIE, { ...cookieOptions(c), path: loginCookiePath(c, ctx) });
      if (bound !== state) {
        throw new InvalidInputError(
          [{
            field: "state",
            message: "this sign-in was not started in this browser: start again",
          }],
          "malformed",
        );
      }
      const pending = await takePendingLogin(ctx.sql, state);
      if (!pending) {
        throw new InvalidInputError(
          [{ field: "state", message: "unknown or expired: start again at /auth/login" }],
          "malformed",
        );
      }
      const who = await signIn.finish(pending, new URL(c.req.url));
      const listed = isListedAdmin(ctx.config.signIn.adminUsers, who);
      const previous = getCookie(c, SESSION_COOKIE);
      const { user, session } = await ctx.sql.begin(async (tx) => {
        await pruneExpiredSessions(tx);
        // A new session each sign-in; the one this browser had before ends.
        if (previous) await deleteSession(tx, previous);
        const { user, created } = await userForSignIn(tx, who, listed);
        const session = await createSession(tx, user.id, ctx.config.signIn.sessionTtlHours);
        const actor = `user:${user.login}`;
        await recordAudit(tx, { ...auditOrigin(c), actor }, {
          action: "auth.signin",
          target: actor,
          detail: { provider: who.provider, created, role: user.role },
        });
        return { user, session };
      });
      setCookie(c, SESSION_COOKIE, session.id, {
        ...cookieOptions(c),
        expires: session.expiresAt,
      });
      c.header("cache-control", "no-store");
      if (user.role === null) {
        return c.html(noRolePage(user.login), 403, PAGE_HEADERS);
      }
      return c.redirect(pending.returnTo, 302);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "post",
        path: "/auth/logout",
        operationId: "signOut",
        tags: ["sign-in"],
        summary: "End this session, on every instance",
        ...open,
        responses: {
          204: { description: "Signed out (or was not signed in); the cookie is cleared" },
          403: problemResponse("Sent from a page of another origin (CSRF)"),
          503: unavailableResponse(),
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const id = getCookie(c, SESSION_COOKIE);
      if (id) {
        checkOrigin(c);
        await ctx.sql.begin(async (tx) => {
          const login = await deleteSession(tx, id);
          if (!login) return;
          const actor = `user:${login}`;
          await recordAudit(tx, { ...auditOrigin(c), actor }, {
            action: "auth.signout",
            target: actor,
          });
        });
      }
      deleteCookie(c, SESSION_COOKIE, cookieOptions(c));
      return c.body(null, 204);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/auth/me",
        operationId: "whoAmI",
        tags: ["sign-in"],
        summary: "Who is calling (the signed-in person, or the key's name), role and teams",
        ...open,
        responses: {
          200: { content: { "application/json": { schema: Me } }, description: "This session's" },
          401: problemResponse("No session (or it expired or ended) and no valid key", {
            "WWW-Authenticate": z.string().openapi({ example: "ApiKey" }),
          }),
          503: unavailableResponse(),
        },
      }),
      ctx.access,
    ),
    async (c) => {
      // A key says who it is too (its name), so that a console given a key can tell its rights.
      const p = await ctx.access.identify(c);
      if (!p) {
        throw new UnauthorizedError(
          "not signed in (start at /auth/login) and no valid key in Authorization or X-API-Key",
        );
      }
      c.header("cache-control", "no-store");
      return c.json({ login: p.name, role: p.role, teams: p.teams }, 200);
    },
  );
}
