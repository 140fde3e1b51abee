// The live tail (issue 15) in a real browser: an event posted through POST /logs appears within
// 2 s; pause holds rows back and keeps counting; filters narrow the stream; a dropped connection
// is announced, resumed with Last-Event-ID and a server-reported gap is shown; and the budget:
// 1,000 events/s for 10 s are all counted, the table stays within its cap and no long task over
// 100 ms shows in the Performance timeline.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import {
  ADMIN_KEY,
  browserTest,
  budgetTest,
  launch,
  openPage,
  postEvents,
  startConsoleServer,
  STEP_MS,
} from "./helpers/browser.ts";

/** The bound for "appears in the live tail". */
const APPEARS_MS = 2_000;
const CAP = 500;

const event = (over: Record<string, unknown> = {}) => ({
  service_name: "live-svc",
  status_code: 200,
  latency_ms: 12.5,
  timestamp: new Date().toISOString(),
  ...over,
});

const received = async (page: Page) =>
  Number((await page.locator("#received").textContent() ?? "").replace(/\D/g, ""));

/** Waits until the page has counted `n` events (polls: the page's CSP forbids eval). */
async function counted(page: Page, n: number, timeout = STEP_MS): Promise<void> {
  const until = Date.now() + timeout;
  let seen = await received(page);
  while (seen !== n) {
    if (Date.now() > until) assert.fail(`the page counted ${seen} events, not ${n}`);
    await new Promise((r) => setTimeout(r, 50));
    seen = await received(page);
  }
}

const live = (page: Page) => page.locator('#live-state:text-is("live")').waitFor();
const row = (page: Page, text: string) => page.locator("#events tbody tr", { hasText: text });

browserTest(
  "[console] live: a posted event appears within 2 s; pause, resume, filters",
  async () => {
    const server = await startConsoleServer();
    const browser = await launch();
    try {
      await postEvents(server, [event({ message: "before-1" }), event({ message: "before-2" })]);
      const w = await openPage(browser, server.base, { key: ADMIN_KEY });
      const { page } = w;
      await page.goto(`${server.base}/live`);
      await live(page);
      // The stream starts with the latest events.
      await row(page, "before-2").waitFor();
      const start = await received(page);
      assert.ok(start >= 2, `${start}`);

      await postEvents(server, [event({ message: "hello-live" })]);
      await row(page, "hello-live").waitFor({ timeout: APPEARS_MS });
      assert.equal(
        await page.locator("#events tbody tr").first().textContent().then((t) =>
          t?.includes("hello-live")
        ),
        true,
        "newest first",
      );

      // Paused: counted, not drawn; resumed: drawn.
      await page.getByRole("button", { name: "Pause" }).click();
      await postEvents(server, [event({ message: "while-paused", status_code: 503 })]);
      await counted(page, start + 2);
      assert.equal(await row(page, "while-paused").count(), 0, "nothing drawn while paused");
      await page.getByRole("button", { name: "Resume" }).click();
      await row(page, "while-paused").waitFor({ timeout: APPEARS_MS });
      assert.match(
        await row(page, "while-paused").locator("td:nth-child(3)").getAttribute("class") ?? "",
        /status-5xx/,
      );

      // The explorer's filters: only the chosen service's events come.
      await page.fill("#filters [name=service_name]", "svc-b");
      await page.selectOption("#filters [name=status_class]", "5xx");
      await page.getByRole("button", { name: "Apply" }).click();
      await live(page);
      const url = new URL(page.url());
      assert.deepEqual(url.searchParams.getAll("service_name"), ["svc-b"]);
      assert.equal(url.searchParams.get("status_class"), "5xx");
      await postEvents(server, [
        event({ service_name: "svc-a", status_code: 500, message: "other-service" }),
        event({ service_name: "svc-b", status_code: 200, message: "not-an-error" }),
        event({ service_name: "svc-b", status_code: 502, message: "wanted-one" }),
      ]);
      await row(page, "wanted-one").waitFor({ timeout: APPEARS_MS });
      assert.equal(await row(page, "other-service").count(), 0);
      assert.equal(await row(page, "not-an-error").count(), 0);
      assert.equal(await received(page), 1, "a new filter starts a new count");
      // The row opens the event.
      await row(page, "wanted-one").locator("td:nth-child(4)").click();
      await page.locator('dialog#event dd[data-field="message"]', { hasText: "wanted-one" })
        .waitFor();
      await page.keyboard.press("Escape");
      // A reload keeps the filters.
      await page.reload();
      await live(page);
      assert.equal(await page.inputValue("#filters [name=service_name]"), "svc-b");
      await row(page, "wanted-one").waitFor();
      await w.assertClean();
    } finally {
      await browser.close();
      await server.close();
    }
  },
);

/** A TCP proxy in front of the server that can cut every connection and refuse new ones. */
function cuttableProxy(target: string) {
  const port = Number(new URL(target).port);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let refusing = false;
  const close = (c: Deno.Conn) => {
    open.delete(c);
    try {
      c.close();
    } catch { /* already closed */ }
  };
  (async () => {
    for await (const client of listener) {
      if (refusing) {
        close(client);
        continue;
      }
      const upstream = await Deno.connect({ hostname: "127.0.0.1", port });
      open.add(client);
      open.add(upstream);
      const end = () => {
        close(client);
        close(upstream);
      };
      client.readable.pipeTo(upstream.writable).catch(() => {}).finally(end);
      upstream.readable.pipeTo(client.writable).catch(() => {}).finally(end);
    }
  })().catch(() => {});
  return {
    base: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    /** Cuts every connection; with `refuse`, new ones are closed at once until allow(). */
    cut(refuse: boolean) {
      refusing = refuse;
      for (const c of [...open]) close(c);
    },
    allow() {
      refusing = false;
    },
    close() {
      listener.close();
      this.cut(false);
    },
  };
}

browserTest("[console] live: a dropped feed is announced and resumed; a gap is shown", async () => {
  const server = await startConsoleServer();
  const proxy = cuttableProxy(server.base);
  const browser = await launch();
  try {
    const w = await openPage(browser, proxy.base, { key: ADMIN_KEY });
    const { page } = w;
    await page.goto(`${proxy.base}/live`);
    await live(page);
    const start = await received(page);
    await postEvents(server, [event({ message: "first" })]);
    await row(page, "first").waitFor({ timeout: APPEARS_MS });

    // Cut while three events arrive: announced, then resumed after the last event seen.
    proxy.cut(true);
    await page.locator("#notice .notice.warn", { hasText: "dropped" }).waitFor();
    await postEvents(server, [1, 2, 3].map((i) => event({ message: `missed-${i}` })));
    proxy.allow();
    await page.locator("#notice .notice", { hasText: "Reconnected" }).waitFor();
    await live(page);
    await counted(page, start + 4);
    for (const i of [1, 2, 3]) await row(page, `missed-${i}`).waitFor();

    // More than the server replays (500): the gap is named, the newest 500 arrive.
    proxy.cut(true);
    await page.locator("#notice .notice.warn", { hasText: "dropped" }).waitFor();
    await postEvents(
      server,
      Array.from({ length: 620 }, (_, i) => event({ message: `burst-${i}` })),
    );
    proxy.allow();
    const gap = page.locator("#notice .notice.warn", { hasText: "skipped 120 matching events" });
    await gap.waitFor();
    assert.equal(await gap.getByRole("link").count(), 1, "a link to look them up");
    await counted(page, start + 4 + 500);
    // Drawn over a few frames, oldest first: the newest comes last.
    await row(page, "burst-619").waitFor();
    assert.equal(await page.locator("#events tbody tr").count(), CAP);
    const problems = (await w.problems()).filter((p) => !/ERR_|network|Failed to fetch/i.test(p));
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
    proxy.close();
    await server.close();
  }
});

budgetTest(
  "[budget] console live tail at 1,000 events/s for 10 s: all counted, DOM capped, no long task",
  async () => {
    const server = await startConsoleServer();
    const browser = await launch();
    try {
      const w = await openPage(browser, server.base, { key: ADMIN_KEY });
      const { page } = w;
      await page.addInitScript({
        content: `globalThis.longTasks = [];
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) {
            globalThis.longTasks.push([Math.round(e.startTime), Math.round(e.duration)]);
          }
        }).observe({ type: "longtask", buffered: true });`,
      });
      await page.goto(`${server.base}/live`);
      await live(page);
      const before = await received(page);
      // The budget is for the flood, not for loading the page.
      const from = await page.evaluate<number>("performance.now()");

      // 10 POSTs a second of 100 events each, paced from the start (not from each answer).
      const t0 = performance.now();
      const posts: Promise<void>[] = [];
      for (let i = 0; i < 100; i++) {
        const wait = t0 + i * 100 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        posts.push(postEvents(
          server,
          Array.from({ length: 100 }, (_, j) =>
            event({
              service_name: `load-${j % 5}`,
              status_code: j % 10 === 0 ? 500 : 200,
              latency_ms: j,
              message: `load ${i}-${j}`,
            })),
        ));
      }
      await Promise.all(posts);
      await counted(page, before + 10_000);
      assert.match(await page.locator("#received").textContent() ?? "", /events received$/);
      assert.ok((await page.locator("#events tbody tr").count()) <= CAP, "the DOM is capped");
      await row(page, "load 99-99").waitFor();
      const longTasks = (await page.evaluate<[number, number][]>("globalThis.longTasks"))
        .filter(([at]) => at >= from).map(([, d]) => d);
      console.log(
        `[budget] live tail: ${longTasks.length} tasks over 50 ms during the flood, the longest ` +
          `${Math.max(0, ...longTasks)} ms`,
      );
      assert.deepEqual(longTasks.filter((d) => d > 100), [], `long tasks (ms): ${longTasks}`);
      await w.assertClean();
    } finally {
      await browser.close();
      await server.close();
    }
  },
);
