// API keys stored in PostgreSQL (issue 13): created with a token shown once and kept only as its
// SHA-256, listed without it, refused at once when deleted or expired, sent either way.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { eventually } from "./helpers/wait.ts";

const db = await preparedDatabase();
const ENV_KEY = "env-admin-key-0123456789";
const app = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: ENV_KEY }) });

const call = (method: string, path: string, headers: Record<string, string>, body?: unknown) =>
  app.request(path, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const asEnv = { "X-API-Key": ENV_KEY };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function create(body: unknown) {
  const res = await call("POST", "/keys", asEnv, body);
  assert.equal(res.status, 201, await res.clone().text());
  return await res.json();
}

dbTest("[keys] a created key's token is shown once, stored only as its hash", async () => {
  const key = await create({ name: "ci", role: "admin", teams: ["Payments Team"] });
  assert.match(key.token, /^obs_[A-Za-z0-9_-]{43}$/);
  assert.equal(key.prefix, key.token.slice(4, 12));
  assert.deepEqual(key.teams, ["Payments Team"]);
  assert.equal(key.role, "admin");
  const [row] = await db.sql`
    select token_sha256, prefix from api_keys where id = ${key.id}`;
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key.token)),
  );
  assert.deepEqual(new Uint8Array(row.token_sha256), digest);
  const stored = JSON.stringify(await db.sql`select * from api_keys`);
  assert.ok(!stored.includes(key.token.slice(4)), "the token itself is nowhere in the table");

  const list = await (await call("GET", "/keys", asEnv)).json();
  const listed = list.find((k: { id: number }) => k.id === key.id);
  assert.ok(listed, "listed");
  assert.equal(listed.token, undefined);
  assert.equal(listed.token_sha256, undefined);
  assert.equal(listed.prefix, key.prefix);
});

dbTest("[keys] a stored admin key works as Bearer and as X-API-Key, until deleted", async () => {
  const key = await create({ name: "ops", role: "admin" });
  for (const headers of [bearer(key.token), { "X-API-Key": key.token }]) {
    const res = await call("GET", "/keys", headers);
    assert.equal(res.status, 200, JSON.stringify(headers));
    await res.body?.cancel();
  }
  // It can revoke itself; from then on it is refused, on every instance (looked up each time).
  const other = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: ENV_KEY }) });
  assert.equal((await other.request("/keys", { headers: bearer(key.token) })).status, 200);
  const del = await call("DELETE", `/keys/${key.id}`, bearer(key.token));
  assert.equal(del.status, 204);
  for (const a of [app, other]) {
    const res = await a.request("/keys", { headers: bearer(key.token) });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    assert.ok(res.headers.get("www-authenticate"));
  }
  assert.equal((await call("DELETE", `/keys/${key.id}`, asEnv)).status, 404);
});

dbTest(
  "[keys] a live feed opened with a key ends at the next ping once it is revoked",
  async () => {
    // Another instance serves the stream, pinging every second; the key is revoked through `app`.
    const other = buildApp({
      sql: db.sql,
      config: testConfig({ API_KEYS: ENV_KEY, LIVE_HEARTBEAT_S: "1" }),
    });
    const key = await create({ name: "tail", role: "reader" });
    const res = await other.request("/logs/live-feed?service_name=nothing-here", {
      headers: { accept: "text/event-stream", ...bearer(key.token) },
    });
    assert.equal(res.status, 200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let ended = false;
    const readUntil = async (what: string, cond: () => boolean, ms: number) => {
      const deadline = Date.now() + ms;
      while (!cond()) {
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`not within ${ms} ms: ${what}`);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const r = await Promise.race([
          reader.read(),
          new Promise<null>((ok) => timer = setTimeout(() => ok(null), left)),
        ]);
        clearTimeout(timer);
        if (r?.done) ended = true;
        else if (r) text += r.value;
      }
    };
    try {
      // The key holds: pings come and the stream stays open.
      await readUntil("three pings", () => text.split(": ping").length > 3, 10_000);
      assert.equal(ended, false);
      assert.equal((await call("DELETE", `/keys/${key.id}`, asEnv)).status, 204);
      await readUntil("the stream's end", () => ended, 10_000);
    } finally {
      await reader.cancel().catch(() => {});
    }
  },
);

dbTest("[keys] an expired key is refused; a key without the right gets 403", async () => {
  const expired = await create({
    name: "old",
    role: "admin",
    expires_at: new Date(Date.now() + 60_000).toISOString(),
  });
  assert.equal((await call("GET", "/keys", bearer(expired.token))).status, 200);
  await db
    .sql`update api_keys set expires_at = now() - interval '1 second' where id = ${expired.id}`;
  // Set by hand: every instance hears of it from the table's trigger (tests/key_cache_test.ts).
  await eventually(
    "the expiry is seen",
    async () => (await call("GET", "/keys", bearer(expired.token))).status === 401,
    2000,
  );

  for (const role of ["writer", "reader"]) {
    const key = await create({ name: role, role });
    const res = await call("GET", "/keys", bearer(key.token));
    assert.equal(res.status, 403, role);
    assert.match((await res.json()).detail, new RegExp(`${role}.*admin right`));
    const toggle = await call("POST", "/control/pruner-toggle", bearer(key.token));
    assert.equal(toggle.status, 403, `${role} on a control endpoint`);
    await toggle.body?.cancel();
  }
});

dbTest("[keys] bad bodies are 400 naming the field, and store nothing", async () => {
  const [{ n: before }] = await db.sql`select count(*)::int as n from api_keys`;
  for (
    const [body, field] of [
      [{ role: "admin" }, "name"],
      [{ name: "x", role: "root" }, "role"],
      [{ name: "", role: "admin" }, "name"],
      [{ name: "x", role: "reader", rate_limit_per_s: 0 }, "rate_limit_per_s"],
      [{ name: "x", role: "reader", expires_at: "tomorrow" }, "expires_at"],
      [{ name: "x", role: "reader", services: ["no spaces"] }, "services"],
      [{ name: "x", role: "reader", extra: 1 }, ""],
    ] as const
  ) {
    const res = await call("POST", "/keys", asEnv, body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    const problem = await res.json();
    assert.ok(
      JSON.stringify(problem.errors ?? problem.detail).includes(field),
      `${JSON.stringify(body)}: ${JSON.stringify(problem)}`,
    );
  }
  for (const id of ["abc", "0", "-1", "1.5"]) {
    assert.equal((await call("DELETE", `/keys/${id}`, asEnv)).status, 400, id);
  }
  const [{ n: after }] = await db.sql`select count(*)::int as n from api_keys`;
  assert.equal(after, before);
});

dbTest("[keys] with no key anywhere, /keys answers 403 like the control endpoints", async () => {
  await db.sql`delete from api_keys`;
  const open = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: "" }) });
  const res = await open.request("/keys");
  assert.equal(res.status, 403);
  assert.equal((await res.json()).detail, "control disabled: set API_KEYS");
  // A stored admin key alone turns it on.
  const key = await create({ name: "bootstrap", role: "admin" });
  assert.equal((await open.request("/keys", { headers: bearer(key.token) })).status, 200);
  // Another instance's view of "any key exists" is at most a second old.
  await eventually(
    "the other instance asks for a key",
    async () => (await open.request("/keys")).status === 401,
    5000,
  );
});

dbTest(
  "[keys] without API_KEYS or sign-in, the last admin key cannot be revoked (409)",
  async () => {
    await db.sql`delete from api_keys`;
    const first = await create({ name: "first admin", role: "admin" });
    const second = await create({ name: "second admin", role: "admin" });
    const writer = await create({ name: "a shipper", role: "writer" });
    const closed = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: "" }) });
    const del = (id: number, token: string) =>
      closed.request(`/keys/${id}`, { method: "DELETE", headers: bearer(token) });
    assert.equal((await del(second.id, first.token)).status, 204);
    const refused = await del(first.id, first.token);
    assert.equal(refused.status, 409);
    assert.match((await refused.json()).detail, /last admin key/);
    const [{ n }] = await db.sql`select count(*)::int as n from api_keys where id = ${first.id}`;
    assert.equal(n, 1, "still there");
    // Writers and readers may go; with API_KEYS set, an admin key may go too.
    assert.equal((await del(writer.id, first.token)).status, 204);
    assert.equal((await call("DELETE", `/keys/${first.id}`, asEnv)).status, 204);
  },
);

dbTest("[keys] another instance asks for a key from its first request a second later", async () => {
  await db.sql`delete from api_keys`;
  const other = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: "" }) });
  assert.equal((await other.request("/services")).status, 200, "open: no key anywhere");
  await create({ name: "the first key", role: "admin" });
  await new Promise((r) => setTimeout(r, 1100));
  // Not the answer of a second ago while it asks again: the very first request is refused.
  assert.equal((await other.request("/services")).status, 401);
  await db.sql`delete from api_keys`;
});
