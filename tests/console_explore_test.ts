// The explore page (issue 15) in a real browser: filters set through the form show exactly what
// GET /logs answers for the same query, "Older" / "Newer" walk the API's cursor pages, the URL
// carries filters and page (a reload keeps them), a row opens its every field and attribute, and
// a refused query names the field.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import {
  ADMIN_KEY,
  browserTest,
  type ConsoleServer,
  launch,
  openPage,
  postEvents,
  startConsoleServer,
} from "./helpers/browser.ts";

const SERVICES = ["alpha-svc", "beta-svc", "gamma-svc", "team/delta"];
const STATUSES = [200, 201, 204, 301, 404, 429, 500, 503, 101];
const TYPES = ["deploy", "payment.charge", null, null, null];
const BASE = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;
/** Whole seconds, so that a datetime-local field (seconds precision) can name them exactly. */
const at = (i: number) => new Date(BASE - Math.floor(i / 3) * 60_000);

function seed(): Record<string, unknown>[] {
  // 240 events over four hours; every three share one timestamp, so pages break ties by id.
  return Array.from({ length: 240 }, (_, i) => ({
    service_name: SERVICES[i % 4],
    status_code: STATUSES[(i * 7) % 9],
    event_type: TYPES[i % 5],
    latency_ms: ((i * 13) % 1000) + 0.5,
    timestamp: at(i).toISOString(),
    message: `event ${i}`,
    attributes: i % 10 === 0
      ? { trace_id: `4bf92f3577b34da6a3ce929d0e0e${String(i).padStart(4, "0")}`, repo: "o/r" }
      : null,
  }));
}

/** What GET /logs answers for a query: the ids and the next page's cursor. */
async function apiPage(server: ConsoleServer, query: URLSearchParams) {
  const res = await server.api(`/logs?${query}`);
  assert.equal(res.status, 200, await res.clone().text());
  const events = (await res.json()) as { id: number }[];
  return { ids: events.map((e) => e.id), next: res.headers.get("x-next-cursor") };
}

const shownIds = (page: Page) =>
  page.locator("#events tbody tr").evaluateAll((rows) =>
    rows.map((r) => Number(r.getAttribute("data-id")))
  );

const loaded = (page: Page) => page.locator('#events[data-state="loaded"]').waitFor();

/** A datetime-local value for a time, in the browser's (and this process's) zone. */
function local(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

interface Filters {
  service_name?: string;
  status_code?: string;
  status_class?: string;
  event_type?: string;
  start_time?: Date;
  end_time?: Date;
  min_latency_ms?: string;
  limit?: string;
}

/** Fills the form from a clean page and submits it, as a person would. */
async function search(page: Page, base: string, f: Filters): Promise<void> {
  await page.goto(`${base}/explore`);
  await loaded(page);
  for (const name of ["service_name", "status_code", "event_type", "min_latency_ms"] as const) {
    if (f[name] !== undefined) await page.fill(`#filters [name=${name}]`, f[name]!);
  }
  for (const name of ["start_time", "end_time"] as const) {
    if (f[name]) await page.fill(`#filters [name=${name}]`, local(f[name]!));
  }
  if (f.status_class) await page.selectOption("#filters [name=status_class]", f.status_class);
  if (f.limit) await page.selectOption("#filters [name=limit]", f.limit);
  await page.getByRole("button", { name: "Search" }).click();
  await loaded(page);
}

browserTest(
  "[console] explore: the form's filters and pages show what GET /logs does",
  async () => {
    const server = await startConsoleServer();
    const browser = await launch();
    try {
      await postEvents(server, seed());
      const w = await openPage(browser, server.base, { key: ADMIN_KEY });
      const { page } = w;

      const cases: { filters: Filters; query: [string, string][] }[] = [
        { filters: {}, query: [["limit", "50"]] },
        {
          filters: { service_name: "alpha-svc, team/delta", status_class: "5xx" },
          query: [
            ["service_name", "alpha-svc"],
            ["service_name", "team/delta"],
            ["status_class", "5xx"],
            ["limit", "50"],
          ],
        },
        {
          filters: { event_type: "deploy", min_latency_ms: "300", limit: "20" },
          query: [["event_type", "deploy"], ["min_latency_ms", "300"], ["limit", "20"]],
        },
        {
          filters: { status_code: "404", start_time: at(150), end_time: at(30), limit: "100" },
          query: [
            ["status_code", "404"],
            ["start_time", at(150).toISOString()],
            ["end_time", at(30).toISOString()],
            ["limit", "100"],
          ],
        },
        {
          filters: { service_name: "beta-svc", status_class: "2xx", status_code: "201" },
          query: [
            ["service_name", "beta-svc"],
            ["status_code", "201"],
            ["status_class", "2xx"],
            ["limit", "50"],
          ],
        },
      ];
      for (const { filters, query } of cases) {
        await search(page, server.base, filters);
        const want = await apiPage(server, new URLSearchParams(query));
        assert.ok(want.ids.length > 0, `the seed matches ${JSON.stringify(query)}`);
        assert.deepEqual(await shownIds(page), want.ids, JSON.stringify(query));
        // The URL is the query: shared or reloaded, it shows the same.
        const url = new URL(page.url());
        assert.deepEqual(
          [...url.searchParams].sort(),
          [...new URLSearchParams(query)].sort(),
          "the URL carries the filters",
        );
        await page.reload();
        await loaded(page);
        assert.deepEqual(await shownIds(page), want.ids, `reloaded: ${url.search}`);
        assert.equal(
          await page.inputValue("#filters [name=service_name]"),
          filters.service_name ?? "",
        );
        if (filters.status_class) {
          assert.equal(
            await page.inputValue("#filters [name=status_class]"),
            filters.status_class,
          );
        }
        // Each row is a 4xx/5xx at a glance.
        const classes = await page.locator("#events tbody tr td:nth-child(3)").evaluateAll(
          (cells) => cells.map((c) => [Number(c.textContent), c.className]),
        );
        for (const [status, cls] of classes as [number, string][]) {
          assert.equal(cls.includes("status-5xx"), status >= 500, `${status} ${cls}`);
          assert.equal(
            cls.includes("status-4xx"),
            status >= 400 && status < 500,
            `${status} ${cls}`,
          );
        }
      }

      // Paging: "Older" walks the API's cursor pages to the end, "Newer" comes back; the URL
      // holds the page, so a reload stays on it.
      const query = new URLSearchParams([["service_name", "alpha-svc"], ["limit", "20"]]);
      await search(page, server.base, { service_name: "alpha-svc", limit: "20" });
      const pages: number[][] = [];
      let api = await apiPage(server, query);
      for (;;) {
        assert.deepEqual(await shownIds(page), api.ids, `page ${pages.length + 1}`);
        pages.push(api.ids);
        if (pages.length === 2) {
          await page.reload();
          await loaded(page);
          assert.deepEqual(await shownIds(page), api.ids, "reloaded on page 2");
        }
        if (!api.next) break;
        assert.equal(await page.locator("#older").isEnabled(), true);
        await page.click("#older");
        await loaded(page);
        assert.equal(new URL(page.url()).searchParams.get("cursor"), api.next);
        api = await apiPage(server, new URLSearchParams([...query, ["cursor", api.next]]));
      }
      assert.equal(pages.length, 3, "60 alpha-svc events: three pages of 20");
      assert.equal(await page.locator("#older").isDisabled(), true, "no page after the last");
      for (let i = pages.length - 2; i >= 0; i--) {
        await page.click("#newer");
        await loaded(page);
        assert.deepEqual(await shownIds(page), pages[i], `back to page ${i + 1}`);
      }
      assert.equal(await page.locator("#newer").isDisabled(), true, "the first page is the newest");
      assert.equal(new URL(page.url()).searchParams.has("cursor"), false);
      // The browser's Back button goes back a page too.
      await page.goBack();
      await loaded(page);
      assert.deepEqual(await shownIds(page), pages[1]);

      // A row opens the event with its fields and attributes.
      await search(page, server.base, {});
      const traced = (await (await server.api("/logs?limit=50")).json() as {
        id: number;
        attributes: { trace_id?: string } | null;
      }[]).find((e) => e.attributes?.trace_id)!;
      await page.locator(`#events tbody tr[data-id="${traced.id}"] td:nth-child(4)`).click();
      const dialog = page.locator("dialog#event");
      await dialog.waitFor();
      assert.equal(
        await dialog.locator('dd[data-field="trace_id"]').textContent(),
        traced.attributes!.trace_id,
      );
      assert.equal(await dialog.locator('dd[data-field="repo"]').textContent(), "o/r");
      assert.equal(await dialog.locator('dd[data-field="id"]').textContent(), String(traced.id));
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "hidden" });
      // By keyboard: the time is a button.
      await page.locator(`#events tbody tr[data-id="${traced.id}"] button.open`).focus();
      await page.keyboard.press("Enter");
      await dialog.waitFor();
      await page.getByRole("button", { name: "Close" }).click();
      await dialog.waitFor({ state: "hidden" });
      await w.assertClean();
    } finally {
      await browser.close();
      await server.close();
    }
  },
);

browserTest("[console] explore: a refused query names the field next to the form", async () => {
  const server = await startConsoleServer();
  const browser = await launch();
  try {
    await postEvents(server, seed().slice(0, 10));
    const { page, problems } = await openPage(browser, server.base, { key: ADMIN_KEY });
    // Through the form: a start after the end.
    await search(page, server.base, {});
    await page.fill("#filters [name=start_time]", local(at(0)));
    await page.fill("#filters [name=end_time]", local(at(30)));
    await page.getByRole("button", { name: "Search" }).click();
    await page.locator('#events[data-state="error"]').waitFor();
    const alert = page.locator("#notice .notice.error");
    assert.match(await alert.textContent() ?? "", /start_time/);
    assert.equal(await page.locator("#events tbody tr").count(), 0);
    // Through a shared link the form cannot express.
    await page.goto(`${server.base}/explore?status_code=99`);
    await page.locator('#events[data-state="error"]').waitFor();
    assert.match(await alert.textContent() ?? "", /status_code/);
    assert.equal(
      await page.getAttribute("#filters [name=status_code]", "aria-invalid"),
      "true",
    );
    // The browser logs each refused request; nothing else went wrong.
    assert.deepEqual(
      (await problems()).filter((p) => !/status of 400/.test(p)),
      [],
    );
  } finally {
    await browser.close();
    await server.close();
  }
});
