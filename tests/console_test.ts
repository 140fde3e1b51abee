// The console as a whole (issue 15): every page loads in Chromium with no console error, no CSP
// violation, no request off our origin and no serious accessibility violation, in light and dark
// and at 375 px; assets are fingerprinted, cached for ever and compressed; pages revalidate by
// ETag; a browser gets the page and every other client the API at the shared paths.
import assert from "node:assert/strict";
import {
  ADMIN_KEY,
  axeViolations,
  browserTest,
  launch,
  openPage,
  startConsoleServer,
} from "./helpers/browser.ts";
import { dbTest } from "./helpers/db.ts";

const PAGES = ["/", "/services/checkout-service", "/explore", "/live", "/jobs", "/admin"];

browserTest("[console] every page loads clean and accessible, light and dark, 375 px", async () => {
  const server = await startConsoleServer();
  const browser = await launch();
  try {
    for (const scheme of ["light", "dark"] as const) {
      for (const viewport of [{ width: 1280, height: 800 }, { width: 375, height: 740 }]) {
        const w = await openPage(browser, server.base, {
          key: ADMIN_KEY,
          colorScheme: scheme,
          viewport,
        });
        for (const path of PAGES) {
          const res = await w.page.goto(`${server.base}${path}`);
          assert.equal(res?.status(), 200, path);
          // Signed in as the admin: the header names the caller once /auth/me has answered.
          await w.page.locator("#who .who").waitFor();
          // The live tail's stream never lets the network go idle; its page shows when it is on.
          if (path === "/live") await w.page.locator('#live-state:text-is("live")').waitFor();
          else await w.page.waitForLoadState("networkidle");
          const where = `${path} ${scheme} ${viewport.width}px`;
          assert.deepEqual(await axeViolations(w.page), [], `axe: ${where}`);
          // Nothing wider than the screen but what scrolls inside its own box (tables).
          const overflow = await w.page.evaluate<number>(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth",
          );
          assert.ok(overflow <= 0, `${where}: the page is ${overflow}px wider than the screen`);
        }
        await w.assertClean();
        await w.page.context().close();
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }
});

dbTest(
  "[console] assets are fingerprinted, immutable, gzipped; pages revalidate by ETag",
  async () => {
    const server = await startConsoleServer();
    try {
      const page = await fetch(`${server.base}/`, {
        headers: { accept: "text/html", "accept-encoding": "gzip" },
      });
      assert.equal(page.status, 200);
      assert.equal(page.headers.get("content-encoding"), "gzip");
      assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
      assert.doesNotMatch(page.headers.get("content-security-policy") ?? "", /unsafe/);
      const etag = page.headers.get("etag")!;
      const html = await page.text();
      const again = await fetch(`${server.base}/`, {
        headers: { accept: "text/html", "if-none-match": etag },
      });
      assert.equal(again.status, 304);
      await again.body?.cancel();

      const links = [...html.matchAll(/(?:href|src)="(console\/assets\/[^"]+)"/g)].map((m) => m[1]);
      assert.ok(links.length >= 2, html);
      for (const link of links) {
        assert.match(link, /\.[\w-]{12}\.(js|css)$/, "fingerprinted");
        const res = await fetch(`${server.base}/${link}`, {
          headers: { "accept-encoding": "gzip" },
        });
        assert.equal(res.status, 200, link);
        assert.equal(res.headers.get("cache-control"), "public, max-age=31536000, immutable");
        assert.equal(res.headers.get("content-encoding"), "gzip");
        const body = await res.text();
        // A module's imports name fingerprinted files too, which are served.
        for (const m of body.matchAll(/from "\.\/([^"]+)"/g)) {
          assert.match(m[1], /\.[\w-]{12}\.js$/, `${link} imports ${m[1]}`);
          const dep = await fetch(`${server.base}/console/assets/${m[1]}`);
          assert.equal(dep.status, 200, m[1]);
          await dep.body?.cancel();
        }
      }

      // The shared paths: the API for every client but a browser's navigation.
      const json = await server.api("/services/checkout-service");
      assert.equal(json.status, 200);
      assert.equal((await json.json()).name, "checkout-service");
      const root = await fetch(`${server.base}/`);
      assert.equal((await root.json()).service, "observian");
      const html2 = await fetch(`${server.base}/services/checkout-service`, {
        headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
      });
      assert.match(html2.headers.get("content-type") ?? "", /text\/html/);
      assert.match(await html2.text(), /<base href="\.\.\/">/);
    } finally {
      await server.close();
    }
  },
);

dbTest("[console] the API's answers to reads are gzipped when asked, streams are not", async () => {
  const server = await startConsoleServer();
  try {
    const gz = { "accept-encoding": "gzip" };
    const summary = await server.api("/logs/summary?window=1h", { headers: gz });
    assert.equal(summary.status, 200);
    assert.equal(summary.headers.get("content-encoding"), "gzip");
    assert.equal(typeof (await summary.json()).total_logs, "number");
    // (Deno's fetch asks for gzip by itself unless told otherwise.)
    const plain = await server.api("/logs/summary?window=1h", {
      headers: { "accept-encoding": "identity" },
    });
    assert.equal(plain.headers.get("content-encoding"), null);
    await plain.body?.cancel();

    // The live feed's stream is never compressed: each event must reach the client at once.
    const ctl = new AbortController();
    const sse = await server.api("/logs/live-feed", {
      headers: { ...gz, accept: "text/event-stream" },
      signal: ctl.signal,
    });
    assert.equal(sse.status, 200);
    assert.equal(sse.headers.get("content-encoding"), null);
    ctl.abort();
    await sse.body?.cancel().catch(() => {});
  } finally {
    await server.close();
  }
});
