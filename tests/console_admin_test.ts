// The console's Jobs and Administration pages (issue 15) in Chromium against a real server:
// keys created and revoked through the page (the token shown once, and it works, then stops
// working), the audit log showing it; a reader sees job status but no control and no
// administration; the pruner's switch and a prune that needs a dry run first; the sign-in
// dialog taking a key.
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import {
  ADMIN_KEY,
  axeViolations,
  browserTest,
  launch,
  openPage,
  startConsoleServer,
  STEP_MS,
} from "./helpers/browser.ts";
import { eventually } from "./helpers/wait.ts";
import { createKey } from "../src/access/keys.ts";

async function me(base: string, token: string): Promise<Response> {
  return await fetch(`${base}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
}

/** The audit table's rows as "action target" strings. */
async function auditRows(page: Page): Promise<string[]> {
  return await page.locator("#audit-table tbody tr").evaluateAll((rows) =>
    rows.map((r) => {
      const cells = [...r.querySelectorAll("td")].map((td) => td.textContent ?? "");
      return `${cells[2]} ${cells[3]}`;
    })
  );
}

browserTest(
  "[console admin] a key is created, shown once, works, and is revoked through the page",
  async () => {
    const server = await startConsoleServer();
    const browser = await launch();
    try {
      const w = await openPage(browser, server.base, { key: ADMIN_KEY });
      const { page } = w;
      await page.goto(`${server.base}/admin`);
      await page.locator("#keys-table tbody tr").first().waitFor();

      await page.getByLabel("Name", { exact: true }).fill("ci shipper");
      await page.locator("#key-role").selectOption("reader");
      await page.getByLabel("Teams (comma-separated, optional)").fill("Payments Team, Search");
      await page.getByLabel("Rate limit per second (optional)").fill("50");
      await page.getByRole("button", { name: "Create key" }).click();

      const tokenField = page.locator("#new-token");
      await tokenField.waitFor({ state: "visible" });
      const token = await tokenField.inputValue();
      assert.match(token, /^obs_/);
      assert.equal(await tokenField.getAttribute("readonly"), "");
      assert.equal(await page.getByRole("button", { name: "Copy" }).count(), 1);
      // The token works against the API, as the key the form described.
      const who = await me(server.base, token);
      assert.equal(who.status, 200);
      assert.deepEqual(await who.json(), {
        login: "ci shipper",
        role: "reader",
        teams: ["Payments Team", "Search"],
      });
      const listed = await (await server.api("/keys")).json() as {
        id: number;
        name: string;
        rate_limit_per_s: number | null;
      }[];
      const key = listed.find((k) => k.name === "ci shipper");
      assert.ok(key, JSON.stringify(listed));
      assert.equal(key.rate_limit_per_s, 50);
      const row = page.locator(`#keys-table tbody tr[data-key-id="${key.id}"]`);
      await row.waitFor();
      assert.match(await row.innerText(), /ci shipper[\s\S]*reader[\s\S]*Payments Team, Search/);
      assert.deepEqual(await axeViolations(page), [], "axe with the token shown");

      // Once: the token is nowhere on the page after a reload.
      await page.reload();
      await row.waitFor();
      assert.equal(await page.locator("#new-key").isVisible(), false);
      assert.ok(!(await page.content()).includes(token), "the token is shown only once");

      // Revoking asks first; cancelling keeps the key.
      await row.getByRole("button", { name: "Revoke ci shipper" }).click();
      await row.getByRole("button", { name: "Cancel" }).click();
      assert.equal((await me(server.base, token)).status, 200);
      await row.getByRole("button", { name: "Revoke ci shipper" }).click();
      await row.getByRole("button", { name: "Confirm revoke" }).click();
      await row.waitFor({ state: "detached" });
      assert.equal((await me(server.base, token)).status, 401);
      const after = await (await server.api("/keys")).json() as { id: number }[];
      assert.ok(!after.some((k) => k.id === key.id), "gone from GET /keys");

      // The audit section shows both, newest first, without a reload.
      await page.locator("#audit-table tbody tr", { hasText: "key.revoke" })
        .filter({ hasText: `key#${key.id}` }).waitFor();
      const rows = await auditRows(page);
      const revoked = rows.indexOf(`key.revoke key#${key.id}`);
      const created = rows.indexOf(`key.create key#${key.id}`);
      assert.ok(revoked >= 0 && created > revoked, rows.join("\n"));
      await w.assertClean();
    } finally {
      await browser.close();
      await server.close();
    }
  },
);

browserTest(
  "[console admin] revoking the last admin key is refused, and the page says why",
  async () => {
    // No API_KEYS and no sign-in: the one stored admin key is the only way to administer.
    const server = await startConsoleServer({ API_KEYS: "" });
    const browser = await launch();
    try {
      const admin = await createKey(server.db.sql, { name: "only admin", role: "admin" }, {
        actor: "test",
      });
      const w = await openPage(browser, server.base, { key: admin.token });
      const { page } = w;
      await page.goto(`${server.base}/admin`);
      const row = page.locator(`#keys-table tbody tr[data-key-id="${admin.id}"]`);
      await row.getByRole("button", { name: "Revoke only admin" }).click();
      await row.getByRole("button", { name: "Confirm revoke" }).click();
      await page.locator("#notice .notice.error", { hasText: "Not revoked" }).waitFor();
      assert.match(await page.locator("#notice").innerText(), /last admin key/);
      // Still listed, still working.
      await row.getByRole("button", { name: "Revoke only admin" }).waitFor();
      assert.equal((await me(server.base, admin.token)).status, 200);
    } finally {
      await browser.close();
      await server.close();
    }
  },
);

browserTest(
  "[console admin] a person's role and teams are changed in the users table",
  async () => {
    const server = await startConsoleServer();
    const browser = await launch();
    try {
      const put = await server.api("/users/octocat", {
        method: "PUT",
        json: { role: "reader", teams: ["Search"] },
      });
      assert.equal(put.status, 201, await put.text());
      const w = await openPage(browser, server.base, { key: ADMIN_KEY });
      const { page } = w;
      await page.goto(`${server.base}/admin`);
      const row = page.locator('#users-table tbody tr[data-login="octocat"]');
      await row.waitFor();
      assert.equal(await row.getByLabel("Role of octocat").inputValue(), "reader");
      assert.equal(
        await row.getByLabel("Teams of octocat (comma-separated)").inputValue(),
        "Search",
      );
      await row.getByLabel("Role of octocat").selectOption("writer");
      await row.getByLabel("Teams of octocat (comma-separated)").fill("Payments Team, Search");
      await row.getByRole("button", { name: "Save octocat" }).click();
      await row.getByText("Saved.").waitFor();
      const users = await (await server.api("/users")).json() as {
        login: string;
        role: string | null;
        teams: string[];
      }[];
      const octocat = users.find((u) => u.login === "octocat");
      assert.deepEqual(
        { role: octocat?.role, teams: octocat?.teams },
        { role: "writer", teams: ["Payments Team", "Search"] },
      );
      await page.locator("#audit-table tbody tr", { hasText: "user.update" })
        .filter({ hasText: "user:octocat" }).first().waitFor();
      // No role at all is a choice too.
      await row.getByLabel("Role of octocat").selectOption("");
      await row.getByRole("button", { name: "Save octocat" }).click();
      await eventually("octocat has no role", async () => {
        const all = await (await server.api("/users")).json() as { login: string; role: null }[];
        return all.find((u) => u.login === "octocat")?.role === null;
      }, STEP_MS);
      await w.assertClean();
    } finally {
      await browser.close();
      await server.close();
    }
  },
);

browserTest("[console admin] the audit log filters by action and pages with Older", async () => {
  const server = await startConsoleServer();
  const browser = await launch();
  try {
    // 55 switches: more than one page (50) of job.toggle.
    for (let i = 0; i < 55; i++) {
      const res = await server.api(`/control/pruner-toggle?enable=${i % 2 === 0}`, {
        method: "POST",
      });
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
    await server.createKey({ name: "noise", role: "writer" });
    const w = await openPage(browser, server.base, { key: ADMIN_KEY });
    const { page } = w;
    await page.goto(`${server.base}/admin`);
    await page.locator("#audit-table tbody tr").first().waitFor();
    assert.match((await auditRows(page))[0], /^key\.create /, "newest first");

    await page.getByLabel("Action").fill("job.toggle");
    await page.getByRole("button", { name: "Filter" }).click();
    await eventually("only job.toggle rows", async () => {
      const rows = await auditRows(page);
      return rows.length === 50 && rows.every((r) => r.startsWith("job.toggle "));
    }, STEP_MS);
    assert.equal((await auditRows(page)).length, 50);
    const older = page.getByRole("button", { name: "Older" });
    assert.equal(await older.isEnabled(), true);
    await older.click();
    await eventually("5 rows", async () => (await auditRows(page)).length === 5, STEP_MS);
    assert.ok((await auditRows(page)).every((r) => r === "job.toggle job:pruner"));
    await page.getByRole("button", { name: "Newer" }).click();
    await eventually("50 rows", async () => (await auditRows(page)).length === 50, STEP_MS);
    await w.assertClean();
  } finally {
    await browser.close();
    await server.close();
  }
});

browserTest(
  "[console admin] a reader sees job status but no control and no administration",
  async () => {
    const server = await startConsoleServer();
    const browser = await launch();
    try {
      const reader = await server.createKey({ name: "a reader", role: "reader" });
      const w = await openPage(browser, server.base, { key: reader });
      const { page } = w;
      await page.goto(`${server.base}/jobs`);
      await page.locator("#who .who").waitFor();
      // The status is there: both schedules.
      await page.locator("#pruner-facts dd").first().waitFor();
      await page.locator("#ingestor-facts dd").first().waitFor();
      assert.match(await page.locator("#pruner-facts").innerText(), /0 3 \* \* \*/);
      assert.match(await page.locator("#ingestor-facts").innerText(), /\* \* \* \* \*/);
      // No button in the page's content at all: no toggle, no run, no prune.
      assert.equal(await page.locator("main button").filter({ visible: true }).count(), 0);
      assert.equal(await page.locator("#prune-form").isVisible(), false);
      assert.equal(await page.getByRole("link", { name: "Administration" }).count(), 0);
      await w.assertClean();

      await page.goto(`${server.base}/admin`);
      await page.locator("#notice .notice.error").waitFor();
      assert.match(await page.locator("#notice").innerText(), /needs the admin right/);
      assert.equal(await page.locator("#key-create").isVisible(), false);
      assert.equal(await page.locator("#admin-sections").isVisible(), false);
      assert.equal(await page.getByRole("link", { name: "Administration" }).count(), 0);
    } finally {
      await browser.close();
      await server.close();
    }
  },
);

browserTest(
  "[console jobs] the admin switches the pruner, and a prune needs a dry run first",
  async () => {
    const server = await startConsoleServer();
    const browser = await launch();
    const prunerEnabled = async () =>
      ((await (await server.api("/control/pruner-status")).json()) as { enabled: boolean }).enabled;
    try {
      const w = await openPage(browser, server.base, { key: ADMIN_KEY });
      const { page } = w;
      await page.goto(`${server.base}/jobs`);
      const toggle = page.locator("#pruner-toggle");
      await page.locator("#pruner-toggle:enabled").waitFor();
      assert.equal(await prunerEnabled(), true);
      assert.equal(await toggle.getAttribute("aria-pressed"), "true");
      assert.match(await toggle.innerText(), /on/);
      // Admins see the three kinds of control.
      assert.equal(await page.locator("#ingestor-run").isVisible(), true);
      assert.equal(await page.locator("#prune-form").isVisible(), true);

      await toggle.click();
      await page.locator('#pruner-toggle[aria-pressed="false"]:enabled').waitFor();
      assert.equal(await prunerEnabled(), false);
      assert.match(await toggle.innerText(), /off/);
      assert.match(await page.locator("#pruner-facts").innerText(), /Switch\s+off/);
      await toggle.click();
      await page.locator('#pruner-toggle[aria-pressed="true"]:enabled').waitFor();
      assert.equal(await prunerEnabled(), true);

      // Confirm is disabled until a dry run for the same days.
      const days = page.getByLabel("Days of logs to keep");
      const confirm = page.getByRole("button", { name: "Confirm prune" });
      assert.equal(await confirm.isDisabled(), true);
      await days.fill("30");
      assert.equal(await confirm.isDisabled(), true);
      await page.getByRole("button", { name: "Dry run" }).click();
      await page.getByText("A prune now would remove").waitFor();
      await page.locator("#prune-confirm:enabled").waitFor();
      await days.fill("31");
      assert.equal(await confirm.isDisabled(), true, "a dry run for other days does not count");
      await days.fill("30");
      assert.equal(await confirm.isDisabled(), false);
      await days.fill("31");
      await page.getByRole("button", { name: "Dry run" }).click();
      await page.locator("#prune-confirm:enabled").waitFor();
      // The dry run changed nothing: no prune is recorded yet.
      const before = await (await server.api("/audit?action=job.prune")).json() as {
        detail: { days?: number; dry_run?: boolean };
      }[];
      assert.ok(before.every((e) => e.detail.dry_run !== false), JSON.stringify(before));
      await confirm.click();
      await page.getByText(/^Removed /).waitFor();
      // The status was refreshed: the run is in the table.
      await page.locator("#pruner-runs tbody tr td time").first().waitFor();
      assert.equal(await confirm.isDisabled(), true, "a second prune needs a new dry run");
      const audit = await (await server.api("/audit?action=job.prune")).json() as {
        detail: { days?: number; dry_run?: boolean };
      }[];
      assert.ok(
        audit.some((e) => e.detail.days === 31 && e.detail.dry_run !== true),
        JSON.stringify(audit),
      );
      assert.deepEqual(await axeViolations(page), [], "axe after a prune");
      await w.assertClean();
    } finally {
      await browser.close();
      await server.close();
    }
  },
);

browserTest(
  "[console] the sign-in dialog takes a key and the page reloads as its holder",
  async () => {
    const server = await startConsoleServer();
    const browser = await launch();
    try {
      const w = await openPage(browser, server.base);
      const { page } = w;
      await page.goto(`${server.base}/jobs`);
      const dialog = page.locator("dialog#sign-in[open]");
      await dialog.waitFor();
      await dialog.getByLabel("API key").fill("not a key");
      await dialog.getByRole("button", { name: "Use this key" }).click();
      await dialog.getByText("That key is not valid.").waitFor();
      await dialog.getByLabel("API key").fill(ADMIN_KEY);
      await Promise.all([
        page.waitForEvent("load"),
        dialog.getByRole("button", { name: "Use this key" }).click(),
      ]);
      await page.locator("#who .who").waitFor();
      assert.match(await page.locator("#who").innerText(), /API_KEYS #1/);
      assert.equal(await page.locator("dialog#sign-in[open]").count(), 0);
      await page.locator("#pruner-toggle:enabled").waitFor();
    } finally {
      await browser.close();
      await server.close();
    }
  },
);
