// `deno task screenshots`: a screenshot of each console page, light and dark, for the README.
//
// Starts a throwaway PostgreSQL (embedded, or a fresh database on DATABASE_URL), loads a week of
// synthetic events for a dozen services plus a few deploy markers, runs the server as a real
// process, and drives Debian's Chromium (OBSERVIAN_CHROMIUM or `chromium` on PATH) through every
// page as an admin. Writes scripts/screenshots/<page>-<light|dark>.png. Progress on stderr.
import postgres from "postgres";
import { chromium } from "playwright-core";
import { throwawayDatabase } from "./bench/lib/env.ts";
import { progressPrinter, seedDatabase } from "./synthetic-events.ts";
import { startServer } from "./lib/server.ts";
import { onPath } from "../tests/helpers/tools.ts";

const OUT = new URL("./screenshots/", import.meta.url);
const KEY = "screenshots-admin-key-0123456789";
const PAGES = [
  { name: "overview", path: "/?window=24h" },
  { name: "service", path: "/services/checkout-service?window=24h" },
  { name: "explore", path: "/explore" },
  { name: "live", path: "/live" },
  { name: "jobs", path: "/jobs" },
  { name: "admin", path: "/admin" },
];
const log = (msg: string) => console.error(`[screenshots] ${msg}`);

const executablePath = Deno.env.get("OBSERVIAN_CHROMIUM") || onPath("chromium");
if (!executablePath) {
  console.error("Chromium not found: apt-get install chromium, or set OBSERVIAN_CHROMIUM");
  Deno.exit(1);
}

const db = await throwawayDatabase("screenshots");
let server: Awaited<ReturnType<typeof startServer>> | undefined;
let feeding: ReturnType<typeof setInterval> | undefined;
try {
  log("loading a week of synthetic events for 12 services");
  await seedDatabase(db.url, { events: 300_000, days: 7, services: 12 }, progressPrinter("seed"));
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  // The busiest service, for the service page.
  const rows = await sql`
    select s.name from services s join log_rollup_1d r on r.service_id = s.id
    group by s.name order by sum(r.count) desc limit 1`;
  const service = rows[0].name as string;
  // A deployment and a release, for the service page's markers.
  await sql`
    insert into markers (service_id, at, kind, title, url, delivery)
    select id, now() - interval '5 hours', 'deployment', 'production: success',
           'https://github.com/example/shop/deployments', 'screenshots-1'
      from services where name = ${service}
    union all
    select id, now() - interval '14 hours', 'release', 'v2.4.0',
           'https://github.com/example/shop/releases/tag/v2.4.0', 'screenshots-2'
      from services where name = ${service}`;
  await sql.end();
  PAGES[1].path = `/services/${encodeURIComponent(service)}?window=24h`;

  log("starting the server");
  server = await startServer({
    env: { DATABASE_URL: db.url, API_KEYS: KEY, RETENTION_DAYS: "8", LOG_LEVEL: "warning" },
    readyTimeoutMs: 90_000,
  });
  const base = server.base;
  // SLOs for the service page and rules for the overview's alerts, evaluated once.
  const call = async (path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { "x-api-key": KEY, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    await res.body?.cancel();
  };
  const slo = { service, period_days: 28 };
  await call("/slos", { ...slo, name: "availability", objective: 99.9, indicator: "availability" });
  await call("/slos", {
    ...slo,
    name: "checkout under 250 ms",
    objective: 99,
    indicator: "latency",
    latency_threshold_ms: 250,
  });
  const rule = { window: "15m", for: "0s" };
  await call("/alerts/rules", {
    ...rule,
    name: "5xx above 1%",
    kind: "error_rate",
    threshold: 1,
    severity: "page",
  });
  await call("/alerts/rules", {
    ...rule,
    name: "p95 above 400 ms",
    kind: "latency_p95",
    threshold: 400,
    severity: "ticket",
  });
  await call("/control/alerts-run");
  // A trickle of events, so the live tail has something to show.
  feeding = setInterval(() => {
    const now = Date.now();
    const events = Array.from({ length: 20 }, (_, i) => ({
      service_name: service,
      status_code: i % 9 === 0 ? 503 : 200,
      latency_ms: 20 + (i * 37) % 180,
      event_type: i % 3 === 0 ? "POST /checkout" : "GET /cart",
      timestamp: new Date(now - i * 10).toISOString(),
    }));
    fetch(`${base}/logs`, {
      method: "POST",
      headers: { "x-api-key": KEY, "content-type": "application/json" },
      body: JSON.stringify(events),
    }).then((r) => r.body?.cancel()).catch(() => {});
  }, 250);

  await Deno.mkdir(OUT, { recursive: true });
  const browser = await chromium.launch({ executablePath, timeout: 30_000 });
  try {
    for (const scheme of ["light", "dark"] as const) {
      const context = await browser.newContext({
        viewport: { width: 1280, height: 860 },
        colorScheme: scheme,
      });
      context.setDefaultTimeout(30_000);
      await context.addInitScript({
        content: `sessionStorage.setItem("observian.key", ${JSON.stringify(KEY)});`,
      });
      const page = await context.newPage();
      for (const p of PAGES) {
        await page.goto(`${base}${p.path}`);
        await page.locator("#who .who").waitFor();
        // The live tail never goes idle: give it a couple of seconds of events instead.
        if (p.name === "live") await page.waitForTimeout(2500);
        else await page.waitForLoadState("networkidle");
        const file = new URL(`${p.name}-${scheme}.png`, OUT);
        await page.screenshot({ path: file.pathname });
        log(`wrote ${file.pathname.replace(Deno.cwd() + "/", "")}`);
      }
      await context.close();
    }
  } finally {
    await browser.close();
  }
} finally {
  if (feeding !== undefined) clearInterval(feeding);
  if (server) {
    await server.stop("SIGTERM", 15_000);
    await server.finished();
  }
  await db.close();
}
