import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { EventWriter } from "../src/ingest/writer.ts";
import { getService, listServices } from "../src/query/services.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { newEvent, postEvents } from "./helpers/events.ts";

const db = await preparedDatabase();
const app = buildApp({ sql: db.sql, config: testConfig() });
const writer = new EventWriter(db.sql);

const MIN = 60_000;
const HOUR = 3_600_000;

const post = (events: Record<string, unknown>[]) => postEvents(app, events);

const ev = (service_name: string, status_code: number, at: number) => ({
  service_name,
  status_code,
  latency_ms: 5,
  timestamp: new Date(at).toISOString(),
});

/** Straight from log_events: the events of [from, to) and those with status >= 500. */
async function direct(name: string, from: number, to: number) {
  const [r] = await db.sql`
    select count(*)::int as total, count(*) filter (where e.status_code >= 500)::int as errors
    from log_events e join services s on s.id = e.service_id
    where s.name = ${name} and e."timestamp" >= ${new Date(from)}
      and e."timestamp" < ${new Date(to)}`;
  return r as { total: number; errors: number };
}

/** The documented window: the start of the minute 24 h ago through the end of this minute. */
function documentedWindow(now: number): [number, number] {
  return [Math.floor((now - 24 * HOUR) / MIN) * MIN, Math.floor(now / MIN) * MIN + MIN];
}

const put = (name: string, body: unknown, contentType = "application/json") =>
  app.request(`/services/${name}`, {
    method: "PUT",
    headers: { "content-type": contentType },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

async function assertProblem(res: Response, status: number, field?: string) {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const body = JSON.parse(text);
  assert.equal(body.status, status);
  if (field) {
    assert.ok(
      body.errors?.some((e: { field: string }) => e.field === field),
      `expected an error on ${field}: ${text}`,
    );
  }
}

dbTest("[services] lists every service by name, zero figures without events", async () => {
  const res = await app.request("/services");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body.map((s: { name: string }) => s.name), [
    "auth-service",
    "checkout-service",
    "inventory-service",
  ]);
  const auth = body[0];
  assert.deepEqual(Object.keys(auth).sort(), ["created_at", "last_24h", "name", "team_owner"]);
  assert.equal(auth.team_owner, "Identity Team");
  assert.ok(Math.abs(Date.parse(auth.created_at) - Date.now()) < 3_600_000);
  assert.equal(auth.created_at, new Date(auth.created_at).toISOString());
  assert.deepEqual(auth.last_24h, { total: 0, errors: 0, error_rate_percent: 0 });
});

dbTest("[services] last_24h matches counts taken straight from log_events", async () => {
  const now = Date.now();
  // Times well clear of the window's edges, so a minute passing changes nothing.
  const plan: [string, number, number][] = [];
  const offsets = [2 * MIN, 17 * MIN, 50 * MIN, 3 * HOUR, 9.5 * HOUR, 23 * HOUR + 20 * MIN];
  const statuses = [200, 503, 404, 500, 201, 599, 302, 499];
  for (const [k, service] of ["checkout-service", "pay-api", "team/ledger"].entries()) {
    for (let i = 0; i < 40 + k * 7; i++) {
      plan.push([service, statuses[(i + k) % statuses.length], now - offsets[i % offsets.length]]);
    }
    // Outside: older than 24 h, and ahead of now (ingest takes up to a day ahead).
    plan.push([service, 500, now - 25 * HOUR]);
    plan.push([service, 500, now - 3 * 24 * HOUR]);
    plan.push([service, 500, now + 2 * HOUR]);
  }
  await post(plan.map(([s, status, at]) => ev(s, status, at)));
  const res = await app.request("/services");
  assert.equal(res.status, 200);
  const body: { name: string; last_24h: Record<string, number> }[] = await res.json();
  const [from, to] = documentedWindow(Date.now());
  for (const name of ["checkout-service", "pay-api", "team/ledger"]) {
    const got = body.find((s) => s.name === name)!.last_24h;
    const want = await direct(name, from, to);
    assert.ok(want.total >= 40 && want.errors > 0 && want.errors < want.total, name);
    assert.equal(got.total, want.total, name);
    assert.equal(got.errors, want.errors, name);
    assert.equal(got.error_rate_percent, Math.round(want.errors / want.total * 10_000) / 100);
  }
  assert.deepEqual(
    body.find((s) => s.name === "auth-service")!.last_24h,
    { total: 0, errors: 0, error_rate_percent: 0 },
  );
});

dbTest("[services] the window is exact to the minute at both ends and across hours", async () => {
  // A fixed "now" in the middle of a minute and of an hour; events just inside and just outside
  // every boundary the rollups are cut at.
  const now = Math.floor((Date.now() - 3 * HOUR) / HOUR) * HOUR + 37 * MIN + 21_500;
  const from = Math.floor((now - 24 * HOUR) / MIN) * MIN;
  const firstHour = Math.ceil(from / HOUR) * HOUR;
  const thisHour = Math.floor(now / HOUR) * HOUR;
  const thisMinute = Math.floor(now / MIN) * MIN;
  const inside = [
    from,
    from + 59_999,
    firstHour - 1,
    firstHour,
    thisHour - 1,
    thisHour,
    now,
    thisMinute + 59_999, // later than now, but the current minute is counted whole
  ];
  const outside = [from - 1, from - HOUR, thisMinute + MIN, now + HOUR];
  const events = [
    ...inside.map((at, i) => ev("edge-svc", i % 2 ? 500 : 200, at)),
    ...outside.map((at) => ev("edge-svc", 503, at)),
  ];
  // Through the writer as well as HTTP: both keep the rollups.
  await writer.write(
    events.slice(0, 6).map((e) =>
      newEvent({
        serviceName: e.service_name,
        timestamp: new Date(e.timestamp),
        statusCode: e.status_code,
        latencyMs: e.latency_ms,
      })
    ),
  );
  await post(events.slice(6));
  const one = await getService(db.sql, "edge-svc", { now: new Date(now) });
  assert.deepEqual(one?.last_24h, { total: 8, errors: 4, error_rate_percent: 50 });
  const want = await direct("edge-svc", ...documentedWindow(now));
  assert.deepEqual(want, { total: 8, errors: 4 });
  const all = await listServices(db.sql, { now: new Date(now) });
  assert.deepEqual(all.find((s) => s.name === "edge-svc")?.last_24h, one?.last_24h);
  // An hour-aligned window start (no partial first hour).
  const aligned = thisHour + HOUR;
  const w = await getService(db.sql, "edge-svc", { now: new Date(aligned) });
  const d = await direct("edge-svc", ...documentedWindow(aligned));
  assert.ok(d.total >= 6);
  assert.equal(w?.last_24h.total, d.total);
  assert.equal(w?.last_24h.errors, d.errors);
});

dbTest("[services] error_rate_percent: 2 decimals, 0 to 100", async () => {
  const now = Date.now();
  await post([
    ev("third-svc", 500, now - 10 * MIN),
    ev("third-svc", 200, now - 10 * MIN),
    ev("third-svc", 200, now - 10 * MIN),
    ev("twothirds-svc", 500, now - 10 * MIN),
    ev("twothirds-svc", 502, now - 10 * MIN),
    ev("twothirds-svc", 499, now - 10 * MIN),
    ev("all-bad-svc", 503, now - 10 * MIN),
    ev("all-good-svc", 200, now - 10 * MIN),
  ]);
  const body: { name: string; last_24h: Record<string, number> }[] =
    await (await app.request("/services")).json();
  const rate = (n: string) => body.find((s) => s.name === n)!.last_24h.error_rate_percent;
  assert.equal(rate("third-svc"), 33.33);
  assert.equal(rate("twothirds-svc"), 66.67);
  assert.equal(rate("all-bad-svc"), 100);
  assert.equal(rate("all-good-svc"), 0);
});

dbTest("[services] PUT creates (201) then updates (200) and answers the service", async () => {
  let res = await put("billing-api", { team_owner: "Money Team" });
  assert.equal(res.status, 201);
  const created = await res.json();
  assert.equal(created.name, "billing-api");
  assert.equal(created.team_owner, "Money Team");
  assert.deepEqual(created.last_24h, { total: 0, errors: 0, error_rate_percent: 0 });
  res = await put("billing-api", { team_owner: "Revenue Team" });
  assert.equal(res.status, 200);
  const updated = await res.json();
  assert.equal(updated.team_owner, "Revenue Team");
  assert.equal(updated.created_at, created.created_at);
  res = await put("billing-api", { team_owner: null });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).team_owner, null);
  const [row] = await db.sql`select team_owner from services where name = 'billing-api'`;
  assert.equal(row.team_owner, null);
  // A seeded service keeps its figures when its owner changes.
  res = await put("checkout-service", { team_owner: "Checkout Crew", ignored: 1 });
  assert.equal(res.status, 200);
  const checkout = await res.json();
  assert.equal(checkout.team_owner, "Checkout Crew");
  assert.ok(checkout.last_24h.total > 0);
  // 200 characters exactly is fine.
  res = await put("billing-api", { team_owner: "é".repeat(200) });
  assert.equal(res.status, 200);
});

dbTest("[services] names with a slash work when written as %2F", async () => {
  let res = await put("payments%2Fapi", { team_owner: "Payments" });
  assert.equal(res.status, 201, await res.clone().text());
  assert.equal((await res.json()).name, "payments/api");
  res = await app.request("/services/payments%2Fapi");
  assert.equal(res.status, 200);
  assert.equal((await res.json()).team_owner, "Payments");
  const ledger = await (await app.request("/services/team%2Fledger")).json();
  assert.ok(ledger.last_24h.total >= 40);
});

dbTest("[services] GET /services/{name}: the service, 404 when unknown, 400 when bad", async () => {
  const res = await app.request("/services/auth-service");
  assert.equal(res.status, 200);
  const one = await res.json();
  const all = await (await app.request("/services")).json();
  assert.deepEqual(one, all.find((s: { name: string }) => s.name === "auth-service"));
  await assertProblem(await app.request("/services/no-such-service"), 404);
  await assertProblem(
    await app.request(`/services/${encodeURIComponent("' or 1=1 --")}`),
    400,
    "name",
  );
  await assertProblem(await app.request(`/services/${"a".repeat(101)}`), 400, "name");
});

dbTest("[services] PUT validation: each bad input is a problem naming the field", async () => {
  const before = await db.sql`select name, team_owner from services order by name`;
  await assertProblem(await put("bad%20name", { team_owner: "x" }), 400, "name");
  await assertProblem(
    await put(encodeURIComponent("' or 1=1 --"), { team_owner: "x" }),
    400,
    "name",
  );
  await assertProblem(await put("a".repeat(101), { team_owner: "x" }), 400, "name");
  await assertProblem(await put("ok-name", { team_owner: "x".repeat(201) }), 400, "team_owner");
  await assertProblem(await put("ok-name", { team_owner: "a\u0000b" }), 400, "team_owner");
  await assertProblem(await put("ok-name", { team_owner: 42 }), 400, "team_owner");
  await assertProblem(await put("ok-name", {}), 400, "team_owner");
  await assertProblem(await put("ok-name", [{ team_owner: "x" }]), 400);
  await assertProblem(await put("ok-name", "{not json"), 400);
  await assertProblem(await put("ok-name", "team_owner=x", "text/plain"), 415);
  await assertProblem(await put("ok-name", '{"team_owner":"x"}', "application/x-ndjson"), 415);
  await assertProblem(
    await put("ok-name", { team_owner: "x", pad: "y".repeat(20_000) }),
    413,
  );
  const after = await db.sql`select name, team_owner from services order by name`;
  assert.deepEqual(after, before, "nothing was written");
  // SQL metacharacters in a valid team name are just text.
  const res = await put("ok-name", { team_owner: "'; drop table services; --" });
  assert.equal(res.status, 201);
  assert.equal((await res.json()).team_owner, "'; drop table services; --");
});

dbTest("[services] the OpenAPI document describes the services endpoints", async () => {
  const doc = await (await app.request("/openapi.json")).json();
  const list = doc.paths["/services"].get;
  assert.ok(list);
  assert.match(list.description, /minute/);
  assert.ok(doc.paths["/services/{name}"].get.responses["404"]);
  const put = doc.paths["/services/{name}"].put;
  assert.ok(put.responses["201"] && put.responses["200"] && put.responses["415"]);
  assert.ok(put.requestBody.content["application/json"]);
});

dbTest("[services] teardown", () => db.drop());
