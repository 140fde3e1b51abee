// The console: Observian's own web UI, server-rendered shells (hono/jsx) with small browser
// modules, served from this process with no build step and nothing from another origin.
//
// Pages are not in the OpenAPI document: they are pages about the data, not part of the API.
// `/` and `/services/{name}` are shared with the API: a browser's navigation (which prefers
// text/html) gets the page, every other client the JSON.
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, Next } from "hono";
import { ROLE_RIGHTS } from "../../access/principal.ts";
import { wantsHtml } from "../accept.ts";
import type { AppContext } from "../context.ts";
import { buildConsoleAssets } from "../console/bundle.ts";
import { type Frame, render } from "../console/layout.tsx";
import { OverviewPage } from "../console/pages/overview.tsx";
import { ServicePage } from "../console/pages/service.tsx";
import { ExplorePage } from "../console/pages/explore.tsx";
import { LivePage } from "../console/pages/live.tsx";
import { JobsPage } from "../console/pages/jobs.tsx";
import { AdminPage } from "../console/pages/admin.tsx";
import { htmlPage, serveAssets } from "../static-assets.ts";

/** Where the console's assets are served; fingerprinted names, cached for ever. */
export const CONSOLE_ASSETS = "/console/assets/";

/** The console's pages (besides `/` and `/services/{name}`), for the access-matrix test. */
export const CONSOLE_PAGES = ["/explore", "/live", "/jobs", "/admin"] as const;

export const CONSOLE_CSP = [
  "default-src 'none'",
  // Scripts and styles from our origin only: nothing inline, no eval.
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  // The API, and the live feed's stream.
  "connect-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

export function consoleRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const assets = buildConsoleAssets();
  serveAssets(app, CONSOLE_ASSETS, assets.byName);
  const signIn = [
    ...(ctx.config.signIn.github ? ["github" as const] : []),
    ...(ctx.config.signIn.oidc ? ["oidc" as const] : []),
  ];
  const frame = async (base: string): Promise<Frame> => ({
    assets,
    base,
    accessOn: await ctx.access.enforced().catch(() => true),
    signIn,
    roleRights: ROLE_RIGHTS,
  });
  const page = async (c: Context, node: { toString(): string | Promise<string> }) =>
    await htmlPage(c, await render(node), { "content-security-policy": CONSOLE_CSP });

  app.get("/", async (c: Context, next: Next) => {
    if (!wantsHtml(c.req.header("accept"))) return await next();
    return await page(c, <OverviewPage frame={await frame("./")} />);
  });
  app.get("/services/:name", async (c: Context, next: Next) => {
    if (!wantsHtml(c.req.header("accept"))) return await next();
    return await page(
      c,
      <ServicePage frame={await frame("../")} name={c.req.param("name") ?? ""} />,
    );
  });
  app.get("/explore", async (c) => await page(c, <ExplorePage frame={await frame("./")} />));
  app.get("/live", async (c) => await page(c, <LivePage frame={await frame("./")} />));
  app.get("/jobs", async (c) => await page(c, <JobsPage frame={await frame("./")} />));
  app.get("/admin", async (c) => await page(c, <AdminPage frame={await frame("./")} />));
}
