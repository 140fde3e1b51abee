// The console in a real browser: Debian's Chromium driven by playwright-core (never a downloaded
// browser), against a real server on a real database. Each page is watched for console errors,
// CSP violations and requests leaving our origin; axe-core checks accessibility.
//
// Chromium is found at OBSERVIAN_CHROMIUM or as `chromium` on PATH (.ci/run installs Debian's).
// Without it the tests are skipped with a warning, except under CI, where they fail.
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import axeSource from "axe-core/axe.min.js" with { type: "text" };
import { buildApp } from "../../src/app.ts";
import { preparedDatabase, testConfig, type TestDb } from "./db.ts";
import { onPath } from "./tools.ts";

export const CHROMIUM = Deno.env.get("OBSERVIAN_CHROMIUM") || onPath("chromium");
const IN_CI = Deno.env.get("CI") === "true";
/** Bounds for a shared, slow machine; none of them is a speed claim. */
export const STEP_MS = 30_000;
/** The admin key of API_KEYS in every console test server. */
export const ADMIN_KEY = "console-admin-key-0123456789";

let warned = false;

/** Deno.test for a browser test: skipped (with a warning) without Chromium, failed in CI. */
export function browserTest(name: string, fn: () => Promise<void>): void {
  if (!CHROMIUM && !warned) {
    warned = true;
    console.warn(
      "\n[console] Chromium not found (apt-get install chromium, or set OBSERVIAN_CHROMIUM): " +
        (IN_CI ? "FAILING, as CI must run it\n" : "SKIPPING the browser tests\n"),
    );
  }
  if (!CHROMIUM && IN_CI) {
    Deno.test(name, () => {
      throw new Error("Chromium is not installed, and CI must run the browser tests");
    });
    return;
  }
  Deno.test({ name, ignore: !CHROMIUM, fn, sanitizeOps: false, sanitizeResources: false });
}

/**
 * A browser budget (first paint, long tasks): timings, so run by `deno task budgets` on an idle
 * machine, one file at a time, not by the suite, whose parallel files would be measured instead.
 */
export function budgetTest(name: string, fn: () => Promise<void>): void {
  if (Deno.env.get("OBSERVIAN_BUDGETS") !== "1") {
    Deno.test({ name: `${name} (run by deno task budgets)`, ignore: true, fn });
    return;
  }
  browserTest(name, fn);
}

export interface ConsoleServer {
  db: TestDb;
  app: ReturnType<typeof buildApp>;
  /** http://127.0.0.1:<port> */
  base: string;
  /** Calls the API as the admin (API_KEYS), through real HTTP. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  /** Creates a stored key and answers its token. */
  createKey(body: { name: string; role: string; teams?: string[] }): Promise<string>;
  close(): Promise<void>;
}

/** A server on a fresh, prepared database with API_KEYS = ADMIN_KEY (plus `env`). */
export async function startConsoleServer(env: Record<string, string> = {}): Promise<ConsoleServer> {
  const db = await preparedDatabase();
  const app = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: ADMIN_KEY, ...env }) });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  const base = `http://127.0.0.1:${server.addr.port}`;
  const api = (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    headers.set("x-api-key", ADMIN_KEY);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set("content-type", "application/json");
      body = JSON.stringify(init.json);
    }
    return fetch(`${base}${path}`, { ...init, headers, body });
  };
  return {
    db,
    app,
    base,
    api,
    async createKey(body) {
      const res = await api("/keys", { method: "POST", json: body });
      assert.equal(res.status, 201, await res.clone().text());
      return (await res.json()).token as string;
    },
    async close() {
      await server.shutdown();
      await db.drop();
    },
  };
}

export async function launch(): Promise<Browser> {
  return await chromium.launch({ executablePath: CHROMIUM!, timeout: STEP_MS });
}

export interface Watched {
  page: Page;
  /** Console errors, uncaught errors, CSP violations and off-origin requests so far. */
  problems(): Promise<string[]>;
  /** Asserts none of the above happened. */
  assertClean(): Promise<void>;
}

/**
 * A new page (its own context: own sessionStorage and cookies) watched for problems. With `key`,
 * the tab holds that API key as if a person had typed it into the sign-in dialog.
 */
export async function openPage(
  browser: Browser,
  base: string,
  opts: {
    key?: string;
    viewport?: { width: number; height: number };
    colorScheme?: "light" | "dark";
  } = {},
): Promise<Watched> {
  const context = await browser.newContext({
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    colorScheme: opts.colorScheme ?? "light",
  });
  context.setDefaultTimeout(STEP_MS);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  // Runs in the page before any of its scripts (source text, not a closure).
  await page.addInitScript({
    content: `globalThis.cspViolations = [];
      document.addEventListener("securitypolicyviolation", (e) => {
        globalThis.cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
      });
      ${opts.key ? `sessionStorage.setItem("observian.key", ${JSON.stringify(opts.key)});` : ""}`,
  });
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(`${base}/`) || url.startsWith("data:")) return route.continue();
    errors.push(`left our origin: ${url}`);
    return route.abort();
  });
  const problems = async () => {
    const csp = await page.evaluate<string[]>("globalThis.cspViolations ?? []").catch(() => []);
    return [...errors, ...csp.map((v) => `CSP: ${v}`)];
  };
  return {
    page,
    problems,
    async assertClean() {
      assert.deepEqual(await problems(), [], "console errors, CSP violations, off-origin requests");
    },
  };
}

/** Serious and critical axe-core violations on the page as it is now. */
export async function axeViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, not as a page script: the CSP stays as served.
  await page.evaluate(axeSource);
  const result = await page.evaluate<
    { id: string; impact: string; nodes: { target: string[] }[] }[]
  >(
    `axe.run(document, { resultTypes: ["violations"] }).then((r) => r.violations.map((v) => ({
      id: v.id, impact: v.impact, nodes: v.nodes.map((n) => ({ target: n.target })),
    })))`,
  );
  return result
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.impact} ${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

/** POSTs events as the admin and insists on 201. */
export async function postEvents(server: ConsoleServer, events: unknown[]): Promise<void> {
  const res = await server.api("/logs", { method: "POST", json: events });
  assert.equal(res.status, 201, await res.text());
}
