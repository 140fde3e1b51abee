// The /docs page in a real browser: Debian's Chromium driven by playwright-core, against a real
// server. The page must load with no console error, no CSP violation and no request leaving our
// origin, and "Try it out" must work with the examples exactly as the OpenAPI document gives them.
//
// Chromium is found at OBSERVIAN_CHROMIUM or as `chromium` on PATH (.ci/run installs Debian's).
// Without it the test is skipped with a warning, except under CI, where it fails.
import assert from "node:assert/strict";
import { chromium, type Locator, type Page } from "playwright-core";
import { buildApp } from "../src/app.ts";
import { preparedDatabase, testConfig } from "./helpers/db.ts";
import { onPath } from "./helpers/tools.ts";

const CHROMIUM = Deno.env.get("OBSERVIAN_CHROMIUM") || onPath("chromium");
const IN_CI = Deno.env.get("CI") === "true";
if (!CHROMIUM) {
  console.warn(
    "\n[docs-browser] Chromium not found (apt-get install chromium, or set OBSERVIAN_CHROMIUM): " +
      (IN_CI ? "FAILING, as CI must run it\n" : "SKIPPING the browser tests of /docs\n"),
  );
}
const API_KEY = "docs-browser-test-key-0123456789";
// Bounds for a shared, slow machine; none of them is a speed claim.
const STEP_MS = 60_000;

function browserTest(name: string, fn: () => Promise<void>): void {
  if (!CHROMIUM && IN_CI) {
    Deno.test(name, () => {
      throw new Error("Chromium is not installed, and CI must run the browser tests");
    });
    return;
  }
  Deno.test({ name, ignore: !CHROMIUM, fn, sanitizeOps: false, sanitizeResources: false });
}

/** The operation block for `method path`, however the document names its operationId. */
function operation(page: Page, method: string, path: string): Locator {
  return page.locator(`.opblock.opblock-${method}`).filter({
    has: page.locator(`.opblock-summary-path[data-path="${path}"]`),
  });
}

async function openAndTry(op: Locator): Promise<void> {
  await op.locator(".opblock-summary").first().click();
  await op.getByRole("button", { name: "Try it out" }).click();
}

/** Clicks Execute and answers the request it sent and the response it got. */
async function execute(page: Page, op: Locator, method: string, path: string) {
  const [response] = await Promise.all([
    page.waitForResponse(
      (r) => r.request().method() === method && new URL(r.url()).pathname === path,
      { timeout: STEP_MS },
    ),
    op.getByRole("button", { name: "Execute" }).click(),
  ]);
  const request = response.request();
  return {
    status: response.status(),
    requestHeaders: await request.allHeaders(),
    requestBody: request.postData(),
    url: new URL(response.url()),
    body: await response.text(),
  };
}

browserTest("[docs-browser] the page loads clean and try it out works", async () => {
  const db = await preparedDatabase();
  const app = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: API_KEY }) });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  const base = `http://127.0.0.1:${server.addr.port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM!, timeout: STEP_MS });
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(STEP_MS);
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    const offOrigin: string[] = [];
    // Requests sent with the document's examples as given that failed; asserted last, so that
    // one bad example does not hide what the rest of the page does.
    const badExamples: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(m.text());
    });
    page.on("pageerror", (e) => consoleErrors.push(`uncaught: ${e.message}`));
    // Every CSP violation, whether or not the browser also logs it.
    // (Source text: it runs in the page, before any of the page's own scripts.)
    await page.addInitScript({
      content: `globalThis.cspViolations = [];
        document.addEventListener("securitypolicyviolation", (e) => {
          globalThis.cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline"));
        });`,
    });
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith(`${base}/`) || url.startsWith("data:")) return route.continue();
      offOrigin.push(url);
      return route.abort();
    });

    await page.goto(`${base}/docs`);
    await page.locator(".opblock").first().waitFor();
    assert.match(await page.locator(".info .title").innerText(), /Observian/);

    // The API key, as a person types it into "Authorize".
    await page.locator(".auth-wrapper button.authorize").click();
    const dialog = page.locator(".dialog-ux");
    await dialog.locator("input").first().fill(API_KEY);
    await dialog.getByRole("button", { name: "Apply credentials" }).click();
    await dialog.getByRole("button", { name: "Remove authorization" }).waitFor();
    await dialog.locator("button.btn-done").click();

    // POST /logs with the body example and parameters as the document gives them.
    const post = operation(page, "post", "/logs");
    await openAndTry(post);
    const posted = await execute(page, post, "POST", "/logs");
    assert.equal(
      posted.status,
      201,
      `POST /logs ${JSON.stringify(posted.requestHeaders)} ${posted.requestBody}: ${posted.body}`,
    );
    const enc = posted.requestHeaders["content-encoding"];
    assert.ok(enc === undefined || enc === "identity", `the page sent Content-Encoding: ${enc}`);
    const { id } = JSON.parse(posted.body) as { id: number };
    assert.ok(Number.isInteger(id), posted.body);
    assert.equal(
      await post.locator(".live-responses-table tr.response .response-col_status").first()
        .innerText(),
      "201",
    );

    // GET /logs with the parameters as the document gives them (Swagger UI fills in every
    // parameter's example): a working request, checked at the end.
    const get = operation(page, "get", "/logs");
    await openAndTry(get);
    const listed = await execute(page, get, "GET", "/logs");
    if (listed.status !== 200) {
      badExamples.push(`GET /logs${listed.url.search} → ${listed.status} ${listed.body}`);
    }

    // Then without any filter: the event posted through the page is found.
    for (const input of await get.locator(".parameters input[type=text]").all()) {
      await input.fill("");
    }
    for (const select of await get.locator(".parameters select").all()) {
      await select.selectOption({ index: 0 });
    }
    const all = await execute(page, get, "GET", "/logs");
    assert.equal(all.status, 200, `GET ${all.url.search}: ${all.body}`);
    const events = JSON.parse(all.body) as { id: number }[] | { events?: { id: number }[] };
    const list = Array.isArray(events) ? events : events.events ?? [];
    assert.ok(list.some((e) => e.id === id), `event ${id} not in ${all.body.slice(0, 500)}`);

    // A protected control endpoint, with the key from "Authorize".
    const prune = operation(page, "post", "/control/prune");
    await openAndTry(prune);
    const pruned = await execute(page, prune, "POST", "/control/prune");
    assert.equal(pruned.requestHeaders["x-api-key"], API_KEY);
    if (pruned.status !== 200) {
      badExamples.push(`POST /control/prune${pruned.url.search} → ${pruned.status} ${pruned.body}`);
    }

    assert.deepEqual(badExamples, [], "requests made with the document's examples that failed");
    const violations = await page.evaluate<string[]>("globalThis.cspViolations");
    assert.deepEqual(violations, [], "CSP violations");
    assert.deepEqual(consoleErrors, [], "console errors");
    assert.deepEqual(offOrigin, [], "requests that left our origin");
  } finally {
    await browser.close();
    await server.shutdown();
    await db.drop();
  }
});
