// Alerts and SLOs in the console (issue 16) in Chromium against a real server: events placed in
// the last hour, an SLO and an error-rate rule created through the API, one evaluation run; the
// overview lists what GET /alerts answers (silenced marked, the service's row badged), and the
// service page shows its SLO with the SLI, error budget and burn rates GET /slos/{id} answers,
// formatted as the page formats them. Empty states, a writer (no read) not shown the alerts,
// axe and 375 px.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import {
  ADMIN_KEY,
  axeViolations,
  browserTest,
  type ConsoleServer,
  launch,
  openPage,
  postEvents,
  startConsoleServer,
} from "./helpers/browser.ts";

const MIN = 60_000;

/**
 * `perMinute` events a minute over the last `minutes` (ending a second ago), every
 * `badEvery`-th a 503.
 */
function spread(service: string, minutes: number, perMinute: number, badEvery: number) {
  const end = Date.now() - 1000;
  return Array.from({ length: minutes * perMinute }, (_, i) => ({
    service_name: service,
    status_code: badEvery && i % badEvery === 0 ? 503 : 200,
    latency_ms: 20 + (i % 40),
    message: `request ${i}`,
    timestamp: new Date(end - Math.floor((i * MIN) / perMinute)).toISOString(),
  }));
}

async function call(server: ConsoleServer, method: string, path: string, json?: unknown) {
  const res = await server.api(path, { method, json });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The page's fmt.js (fingerprinted), imported in the page: the same formatting as the page. */
const FMT = `import(performance.getEntriesByType("resource").map((e) => e.name)
  .find((n) => /\\/fmt\\.[\\w-]+\\.js$/.test(n)))`;

async function fmt(page: Page, expr: string) {
  return await page.evaluate(`${FMT}.then((f) => ${expr})`);
}

async function overflow(page: Page) {
  return await page.evaluate<number>(
    "document.documentElement.scrollWidth - document.documentElement.clientWidth",
  );
}

interface OpenAlert {
  source: "rule" | "slo";
  source_id: number;
  name: string;
  service_name: string;
  severity: string;
  state: string;
  value: number;
  since: string;
  silenced: boolean;
}

browserTest(
  "[console alerts] the overview lists firing alerts; the service page shows its SLOs' figures",
  async () => {
    const server = await startConsoleServer();
    const browser = await launch();
    try {
      for (const [name, team] of [["pay-api", "Payments"], ["calm-svc", "Ops"]]) {
        await call(server, "PUT", `/services/${name}`, { team_owner: team });
      }
      // pay-api: a third of its requests 5xx over the last 55 minutes; calm-svc: none.
      await postEvents(server, [...spread("pay-api", 55, 6, 3), ...spread("calm-svc", 55, 2, 0)]);

      // Before any rule or SLO: nothing firing, and no SLO on the service page.
      const before = await openPage(browser, server.base, { key: ADMIN_KEY });
      await before.page.goto(`${server.base}/`);
      await before.page.locator("#alerts-empty").waitFor();
      assert.equal(await before.page.locator("#alerts-empty").textContent(), "No alerts firing.");
      assert.equal(await before.page.locator("#alerts-wrap").isVisible(), false);
      await before.assertClean();
      await before.page.context().close();

      const slo = await call(server, "POST", "/slos", {
        service: "pay-api",
        name: "pay availability",
        objective: 99.5,
        period_days: 30,
        indicator: "availability",
      });
      // Latencies run 20-59 ms, a quarter of them above 50: half the budget spent, no alert.
      const latency = await call(server, "POST", "/slos", {
        service: "pay-api",
        name: "pay latency",
        objective: 50,
        period_days: 28,
        indicator: "latency",
        latency_threshold_ms: 50,
      });
      const rule = await call(server, "POST", "/alerts/rules", {
        name: "pay 5xx",
        services: ["pay-api"],
        kind: "error_rate",
        threshold: 5,
        window: "1h",
        for: "0s",
        severity: "ticket",
      });
      await call(server, "POST", "/alerts/silences", {
        matchers: { rule: rule.id },
        ends_at: new Date(Date.now() + 60 * MIN).toISOString(),
        comment: "known",
      });
      const run = await call(server, "POST", "/control/alerts-run");
      assert.equal(run.status, "success", JSON.stringify(run));
      const open: OpenAlert[] = await call(server, "GET", "/alerts");
      assert.ok(
        open.some((a) => a.source === "rule" && a.state === "firing") &&
          open.some((a) => a.source === "slo" && a.state === "firing"),
        `the rule and the SLO's page alert fire: ${JSON.stringify(open)}`,
      );

      // The overview: one row per open alert, in GET /alerts' order, with its figures.
      const w = await openPage(browser, server.base, { key: ADMIN_KEY });
      const { page } = w;
      await page.goto(`${server.base}/`);
      await page.locator('#alerts[aria-busy="false"]').waitFor();
      const shown = await page.evaluate(`[...document.querySelectorAll("#alerts tbody tr")].map(
        (tr) => [".state", ".severity", ".name", ".service", ".value"].map((c) =>
          tr.querySelector(c).textContent).concat(tr.querySelector(".since time").dateTime))`);
      const expected = await fmt(
        page,
        `${JSON.stringify(open)}.map((a) => [a.state + (a.silenced ? " silenced" : ""),
          a.severity, a.name + (a.source === "slo" ? " (SLO)" : ""), a.service_name,
          a.source === "slo" ? f.rate(a.value) + " burn" : f.percent(a.value), a.since])`,
      );
      assert.deepEqual(shown, expected, "GET /alerts' alerts, formatted as the page formats them");
      assert.equal(
        await page.locator('#alerts tr[data-source="rule"] .badge.silenced').count(),
        1,
        "the silenced rule alert is marked",
      );
      assert.equal(await page.locator('#alerts tr[data-source="slo"] .badge.silenced').count(), 0);
      assert.equal(
        await page.locator('#alerts tr[data-source="rule"] .service a').getAttribute("href"),
        "services/pay-api",
      );
      assert.equal(await page.locator("#alerts-empty").isVisible(), false);
      // The services table marks the service with a firing alert, and only it.
      await page.locator('tr[data-service="pay-api"] .name .badge').waitFor();
      assert.equal(await page.locator('tr[data-service="calm-svc"] .name .badge').count(), 0);
      assert.deepEqual(await axeViolations(page), [], "axe, overview with alerts");
      await w.assertClean();

      // The service page: the SLO with GET /slos/{id}'s figures.
      await page.goto(`${server.base}/services/pay-api`);
      const card = page.locator(`article.slo[data-slo-id="${slo.id}"]`);
      await card.waitFor();
      const detail = await call(server, "GET", `/slos/${slo.id}`);
      assert.ok(detail.sli !== null && detail.sli < 99.5, `SLI below objective: ${detail.sli}`);
      assert.ok(detail.error_budget_remaining < 1, "budget spent in part");
      assert.equal(await card.locator("h3").textContent(), "pay availability");
      assert.equal(
        await card.locator(".sli").textContent(),
        await fmt(page, `f.percent(${detail.sli}, 3)`),
        "the SLI as GET /slos/{id} answers it",
      );
      assert.equal(
        await card.locator(".budget").textContent(),
        await fmt(page, `f.percent(${detail.error_budget_remaining} * 100, 1)`),
        "the error budget remaining as GET /slos/{id} answers it",
      );
      assert.equal(
        Number(await card.locator("meter").getAttribute("value")),
        Math.max(0, Math.min(1, detail.error_budget_remaining)),
      );
      // The short windows move as minutes pass; 1h and longer hold every event either way.
      for (const win of ["1h", "6h", "24h", "3d"]) {
        assert.equal(
          await card.locator(`td[data-window="${win}"]`).textContent(),
          await fmt(page, `f.rate(${detail.burn_rates[win]})`),
          `burn rate over ${win}`,
        );
      }
      assert.equal(await card.locator("td[data-window]").count(), 6, "every window's burn rate");
      assert.equal(
        await card.locator('.slo-alert[data-alert="page"][data-state="firing"]').count(),
        1,
        "the page alert firing",
      );
      // The latency SLO: its budget partly left, on the meter too, and no alert.
      const lat = await call(server, "GET", `/slos/${latency.id}`);
      const budget = lat.error_budget_remaining;
      assert.ok(budget > 0 && budget < 1, `budget partly spent: ${budget}`);
      const latCard = page.locator(`article.slo[data-slo-id="${latency.id}"]`);
      assert.equal(
        await latCard.locator(".budget").textContent(),
        await fmt(page, `f.percent(${budget} * 100, 1)`),
      );
      assert.equal(Number(await latCard.locator("meter").getAttribute("value")), budget);
      assert.equal(
        await latCard.locator(".sli").textContent(),
        await fmt(page, `f.percent(${lat.sli}, 3)`),
      );
      assert.match((await latCard.locator(".indicator").textContent())!, /under 50 ms/);
      assert.equal(await latCard.locator(".slo-alert").count(), 0, "no alert on the latency SLO");
      assert.equal(await page.locator("article.slo").count(), 2);
      assert.equal(await page.locator("#slos-empty").isVisible(), false);
      assert.deepEqual(await axeViolations(page), [], "axe, service page with an SLO");
      await w.assertClean();
      await page.context().close();

      // At 375 px in the dark theme, as a reader: both pages fit the screen and pass axe.
      const reader = await server.createKey({ name: "reader", role: "reader" });
      const narrow = await openPage(browser, server.base, {
        key: reader,
        viewport: { width: 375, height: 740 },
        colorScheme: "dark",
      });
      await narrow.page.goto(`${server.base}/`);
      await narrow.page.locator("#alerts tbody tr").first().waitFor();
      await narrow.page.locator('tr[data-service="pay-api"] .name .badge').waitFor();
      assert.deepEqual(await axeViolations(narrow.page), [], "axe, overview at 375 px");
      assert.ok((await overflow(narrow.page)) <= 0, "the overview is wider than 375 px");
      await narrow.page.goto(`${server.base}/services/pay-api`);
      await narrow.page.locator("article.slo").first().waitFor();
      await narrow.page.waitForLoadState("networkidle");
      assert.deepEqual(await axeViolations(narrow.page), [], "axe, service page at 375 px");
      assert.ok((await overflow(narrow.page)) <= 0, "the service page is wider than 375 px");

      // A service without an SLO says so.
      await narrow.page.goto(`${server.base}/services/calm-svc`);
      await narrow.page.locator("#slos-empty").waitFor();
      assert.equal(await narrow.page.locator("#slos").getAttribute("aria-busy"), "false");
      assert.equal(
        await narrow.page.locator("#slos-empty").textContent(),
        "This service has no SLO.",
      );
      assert.equal(await narrow.page.locator("article.slo").count(), 0);
      await narrow.assertClean();
      await narrow.page.context().close();

      // A writer may not read: the overview explains the refusal and shows no alerts.
      const writer = await server.createKey({ name: "writer", role: "writer" });
      const wr = await openPage(browser, server.base, { key: writer });
      await wr.page.goto(`${server.base}/`);
      await wr.page.locator("#notice", { hasText: "needs the read right" }).waitFor();
      assert.equal(await wr.page.locator("#alerts-section").isVisible(), false);
      await wr.page.context().close();
    } finally {
      await browser.close();
      await server.close();
    }
  },
);
