// Team and service scoping (issue 13) over real HTTP: a scoped reader's answers are the
// unscoped ones filtered by hand (same events, pages, totals, percentiles and series), asking
// outside the scope is 403, an empty scope is empty; a scoped writer writes only its services
// (a batch with any other is refused whole and stores nothing) and changes only its own.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { createKey } from "../src/access/keys.ts";
import type { Role } from "../src/access/principal.ts";
import type { LogEventOut } from "../src/query/events.ts";
import { LIVE_MAX_RESUME } from "../src/live/feed.ts";
import { compactAll, dbTest, preparedDatabase } from "./helpers/db.ts";
import { testConfig } from "./helpers/db.ts";

const ADMIN_KEY = "env-admin-key-scope-0123456789";
const SEED = "pay-api:Payments,pay-web:Payments,ship-api:Shipping,ship-worker:Shipping," +
  "ops-cron:Ops,loose-svc";
const PAYMENTS = ["pay-api", "pay-web"];

const db = await preparedDatabase({ SEED_SERVICES: SEED });
const app = buildApp({
  sql: db.sql,
  config: testConfig({ API_KEYS: ADMIN_KEY, SEED_SERVICES: SEED, LIVE_HEARTBEAT_S: "1" }),
});
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
const base = `http://127.0.0.1:${server.addr.port}`;

type Headers = Record<string, string>;
const admin: Headers = { "x-api-key": ADMIN_KEY };
const key = async (role: Role, scope: { teams?: string[]; services?: string[] }) => ({
  authorization: `Bearer ${
    (await createKey(db.sql, { name: role, role, ...scope }, { actor: "test" })).token
  }`,
});
const payReader = await key("reader", { teams: ["Payments"] });
const mixReader = await key("reader", { teams: ["Payments"], services: ["ops-cron"] });
const namedReader = await key("reader", { services: ["ship-api", "loose-svc"] });
const emptyReader = await key("reader", { teams: ["Empty Team"] });
const payWriter = await key("writer", { teams: ["Payments"] });
const shipNamedWriter = await key("writer", { services: ["ship-api"] });
const writer = await key("writer", {});

function call(method: string, path: string, who: Headers, body?: unknown): Promise<Response> {
  return fetch(`${base}${path}`, {
    method,
    headers: { ...who, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}
async function json<T = unknown>(method: string, path: string, who: Headers, body?: unknown) {
  const res = await call(method, path, who, body);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : null) as T };
}
async function ok<T = unknown>(path: string, who: Headers): Promise<T> {
  const r = await json<T>("GET", path, who);
  assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
  return r.body;
}
const names = (ss: string[]) => ss.map((s) => `service_name=${s}`).join("&");

// Events for every service, spread over the last three hours, with varied status, latency and
// type; the same pseudo-random sequence every run.
let seed = 7;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const ALL = ["pay-api", "pay-web", "ship-api", "ship-worker", "ops-cron", "loose-svc"];
const now = Date.now();
const posted = ALL.flatMap((service_name, s) =>
  Array.from({ length: 30 + 5 * s }, () => ({
    service_name,
    status_code: [200, 200, 201, 404, 500, 503][Math.floor(rand() * 6)],
    latency_ms: Math.round(rand() * 2000 * 10) / 10,
    event_type: [undefined, "charge", "ship"][Math.floor(rand() * 3)],
    timestamp: new Date(now - Math.floor(120_000 + rand() * 3 * 3600_000)).toISOString(),
  }))
);
{
  const res = await call("POST", "/logs", admin, posted);
  assert.equal(res.status, 201, await res.text());
  await compactAll(db.sql);
}
// An explicit range, so that two summaries asked a moment apart cover the same time.
const range = `start_time=${
  new Date(Math.floor(now / 3600_000) * 3600_000 - 4 * 3600_000)
    .toISOString()
}&end_time=${new Date(Math.floor(now / 60_000) * 60_000).toISOString()}`;

const byHand = (events: LogEventOut[], scope: string[]) =>
  events.filter((e) => scope.includes(e.service_name));

/** Every page of a /logs query, with each page's X-Next-Cursor. */
async function pages(query: string, who: Headers) {
  const out: { events: LogEventOut[]; cursor: string | null }[] = [];
  let path: string | null = `/logs?${query}`;
  while (path) {
    const r: { status: number; headers: globalThis.Headers; body: LogEventOut[] } = await json<
      LogEventOut[]
    >("GET", path, who);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    out.push({ events: r.body, cursor: r.headers.get("x-next-cursor") });
    path = r.headers.get("link")?.match(/^<([^>]+)>/)?.[1] ?? null;
    assert.ok(out.length < 100, "paging ends");
  }
  return out;
}

for (
  const [label, who, scope] of [
    ["team", payReader, PAYMENTS],
    ["team + named service", mixReader, [...PAYMENTS, "ops-cron"]],
    ["named services", namedReader, ["loose-svc", "ship-api"]],
  ] as [string, Headers, string[]][]
) {
  dbTest(`[scope] ${label}: GET /logs is the unscoped query filtered by hand`, async () => {
    const all = await ok<LogEventOut[]>("/logs?limit=1000", admin);
    assert.equal(all.length, posted.length);
    const mine = await ok<LogEventOut[]>("/logs?limit=1000", who);
    assert.ok(mine.length > 0);
    assert.deepEqual(mine, byHand(all, scope));
    assert.deepEqual(
      await ok(`/logs?limit=1000&${names(scope)}`, admin),
      mine,
      "and the same as naming the scope's services",
    );
    // Same pages, same cursors; other filters intersect with the scope.
    for (const q of ["limit=7", "limit=5&status_class=5xx", "limit=4&event_type=charge"]) {
      const scoped = await pages(q, who);
      assert.ok(scoped.length > 1, `${q}: several pages`);
      assert.deepEqual(scoped, await pages(`${q}&${names(scope)}`, admin), q);
    }
    assert.deepEqual(
      await ok("/logs?limit=10&offset=20", who),
      await ok(`/logs?limit=10&offset=20&${names(scope)}`, admin),
    );
    assert.deepEqual(
      await ok(`/logs?limit=1000&service_name=${scope[0]}`, who),
      byHand(all, [scope[0]]),
    );
  });

  dbTest(`[scope] ${label}: GET /logs/summary equals the summary of its services`, async () => {
    // The admin's first: what it reads (and caches) must not leak into the scoped one.
    const everything = await ok<{ total_logs: number }>(`/logs/summary?${range}`, admin);
    assert.equal(everything.total_logs, posted.length, "the admin's is not scoped");
    const mine = await ok<Record<string, unknown>>(`/logs/summary?${range}`, who);
    const theirs = await ok(`/logs/summary?${range}&${names(scope)}`, admin);
    assert.deepEqual(mine, theirs);
    const events = posted.filter((e) => scope.includes(e.service_name));
    assert.equal(mine.total_logs, events.length);
    assert.equal(mine.total_errors, events.filter((e) => e.status_code >= 500).length);
    assert.deepEqual(
      (mine.services as { service_name: string }[]).map((s) => s.service_name).sort(),
      scope.toSorted(),
    );
    // A named window too (computed a moment apart, so compared on what the window holds).
    const w = await ok<{ total_logs: number }>("/logs/summary?window=24h", who);
    assert.equal(w.total_logs, events.length);
  });

  dbTest(`[scope] ${label}: the live feed's JSON and GET /services`, async () => {
    assert.deepEqual(
      await ok("/logs/live-feed?limit=500", who),
      byHand(await ok<LogEventOut[]>("/logs/live-feed?limit=500", admin), scope),
    );
    const services = await ok<{ name: string }[]>("/services", who);
    assert.deepEqual(
      services,
      (await ok<{ name: string }[]>("/services", admin)).filter((s) => scope.includes(s.name)),
    );
    assert.deepEqual(services.map((s) => s.name), scope.toSorted());
    assert.equal((await json("GET", `/services/${scope[0]}`, who)).status, 200);
  });
}

dbTest("[scope] asking for a service outside the scope is 403, not an empty page", async () => {
  for (
    const path of [
      "/logs?service_name=ship-api",
      "/logs?service_name=pay-api&service_name=ship-api",
      "/logs?service_name=pay-api,loose-svc",
      "/logs/summary?service_name=ship-api",
      "/logs/live-feed?service_name=ops-cron",
      "/services/ship-api",
      "/services/loose-svc",
    ]
  ) {
    const r = await json<{ detail: string }>("GET", path, payReader);
    assert.equal(r.status, 403, path);
    assert.match(r.body.detail, /scope/, path);
    assert.ok(!r.body.detail.includes('"pay-api"'), `${path}: names only those outside`);
  }
  const sse = await fetch(`${base}/logs/live-feed?service_name=ship-api`, {
    headers: { ...payReader, accept: "text/event-stream" },
  });
  assert.equal(sse.status, 403);
  await sse.body?.cancel();
  // A named service without a row yet is the key's: not found, not forbidden.
  const named = await key("reader", { services: ["not-yet"] });
  assert.equal((await json("GET", "/services/not-yet", named)).status, 404);
  assert.deepEqual(await ok("/logs?service_name=not-yet", named), []);
});

dbTest("[scope] a scope whose teams own nothing is empty, not everything", async () => {
  assert.deepEqual(await ok("/logs", emptyReader), []);
  assert.deepEqual(await ok("/logs/live-feed?limit=500", emptyReader), []);
  assert.deepEqual(await ok("/services", emptyReader), []);
  const s = await ok<{ total_logs: number; services: unknown[]; series: { count: number }[] }>(
    `/logs/summary?${range}`,
    emptyReader,
  );
  assert.equal(s.total_logs, 0);
  assert.deepEqual(s.services, []);
  assert.ok(s.series.every((p) => p.count === 0));
  assert.equal((await json("GET", "/services/pay-api", emptyReader)).status, 403);
});

/** A Server-Sent Events reader keeping the `log` events. */
async function sse(path: string, who: Headers) {
  const res = await fetch(`${base}${path}`, { headers: { ...who, accept: "text/event-stream" } });
  assert.equal(res.status, 200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const logs: LogEventOut[] = [];
  const gaps: unknown[] = [];
  let buf = "";
  return {
    logs,
    gaps,
    /** Reads until `cond` holds; the bound only turns a hang into a failure. */
    async until(cond: () => boolean, what: string) {
      const deadline = Date.now() + 15_000;
      while (!cond()) {
        assert.ok(Date.now() < deadline, `waiting for ${what}; got ${logs.map((e) => e.id)}`);
        const r = await reader.read();
        assert.ok(!r.done, `stream ended before ${what}`);
        buf += r.value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i).split("\n");
          buf = buf.slice(i + 2);
          const data = block.find((l) => l.startsWith("data: "));
          if (block.includes("event: log") && data) logs.push(JSON.parse(data.slice(6)));
          if (block.includes("event: gap") && data) gaps.push(JSON.parse(data.slice(6)));
        }
      }
    },
    close: () => reader.cancel().catch(() => {}),
  };
}

const event = (service_name: string) => ({ service_name, status_code: 200, latency_ms: 1 });

dbTest("[scope] the SSE feed sends only the scope's events, old, new and missed", async () => {
  const stream = await sse("/logs/live-feed?limit=500", payReader);
  const expectBacklog = byHand(
    await ok<LogEventOut[]>("/logs/live-feed?limit=500", admin),
    PAYMENTS,
  );
  try {
    await stream.until(() => stream.logs.length >= expectBacklog.length, "the backlog");
    assert.deepEqual(stream.logs, expectBacklog.toReversed());
    // Another team's event committed first, then ours: ours arrives, theirs never does.
    const theirs = await json<{ id: number }>("POST", "/logs", admin, event("ship-api"));
    const ours = await json<{ id: number }>("POST", "/logs", admin, event("pay-web"));
    assert.equal(ours.status, 201);
    await stream.until(() => stream.logs.some((e) => e.id === ours.body.id), "our event");
    assert.ok(!stream.logs.some((e) => e.id === theirs.body.id));
    assert.ok(stream.logs.every((e) => PAYMENTS.includes(e.service_name)));
  } finally {
    await stream.close();
  }
  // Resuming after an id: the scope's events after it, as the admin's filtered resume.
  const after = expectBacklog[Math.floor(expectBacklog.length / 2)].id;
  const missed = byHand(await ok<LogEventOut[]>("/logs?limit=1000", admin), PAYMENTS)
    .filter((e) => e.id > after).length;
  const resumed = await sse(`/logs/live-feed?last_event_id=${after}`, payReader);
  const want = await sse(`/logs/live-feed?last_event_id=${after}&${names(PAYMENTS)}`, admin);
  try {
    await want.until(() => want.logs.length >= missed, "the admin's resume");
    await resumed.until(() => resumed.logs.length >= missed, "the resume");
    assert.deepEqual(resumed.logs, want.logs);
    assert.ok(resumed.logs.every((e) => PAYMENTS.includes(e.service_name) && e.id > after));
  } finally {
    await resumed.close();
    await want.close();
  }
  // Missed more than a resume sends: the gap counts the scope's events only.
  const last = (await ok<LogEventOut[]>("/logs?limit=1", admin))[0].id;
  const burst = Array.from({ length: 700 }, (_, i) => event(i % 7 ? PAYMENTS[i % 2] : "ship-api"));
  assert.equal((await call("POST", "/logs", admin, burst)).status, 201);
  const scoped = await sse(`/logs/live-feed?last_event_id=${last}`, payReader);
  const filtered = await sse(`/logs/live-feed?last_event_id=${last}&${names(PAYMENTS)}`, admin);
  try {
    for (const s of [scoped, filtered]) await s.until(() => s.gaps.length > 0, "the gap");
    assert.deepEqual(scoped.gaps, filtered.gaps);
    const ours = burst.filter((e) => PAYMENTS.includes(e.service_name)).length;
    assert.equal((scoped.gaps[0] as { skipped: number }).skipped, ours - LIVE_MAX_RESUME);
  } finally {
    await scoped.close();
    await filtered.close();
  }
});

const count = async () => {
  const [r] = await db.sql<{ events: number; services: number }[]>`
    select (select count(*) from log_events)::int as events,
           (select count(*) from services)::int as services`;
  return r;
};
const ev = (service_name: string) => ({ service_name, status_code: 200, latency_ms: 3 });

dbTest("[scope] a batch with any event outside the writer's scope is refused whole", async () => {
  const before = await count();
  for (
    const [who, batch, refused] of [
      [payWriter, ["pay-api", "ship-api", "pay-web", "loose-svc", "ops-cron"], [1, 3, 4]],
      // A new name with a refused one: nothing is stored and the new service is not created.
      [payWriter, ["pay-brand-new", "ship-worker"], [1]],
      [shipNamedWriter, ["ship-api", "ship-worker", "named-new"], [1, 2]],
    ] as [Headers, string[], number[]][]
  ) {
    const r = await json<{ errors: { field: string; message: string }[] }>(
      "POST",
      "/logs",
      who,
      batch.map(ev),
    );
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.deepEqual(r.body.errors.map((e) => e.field), refused.map((i) => `[${i}].service_name`));
    for (const [n, e] of r.body.errors.entries()) {
      assert.match(e.message, new RegExp(batch[refused[n]]));
    }
  }
  const single = await json<{ errors: { field: string }[] }>(
    "POST",
    "/logs",
    payWriter,
    ev("ops-cron"),
  );
  assert.equal(single.status, 403);
  assert.deepEqual(single.body.errors.map((e) => e.field), ["service_name"]);
  assert.deepEqual(await count(), before, "nothing stored, no service created");

  // Within the scope: stored.
  assert.equal((await call("POST", "/logs", payWriter, PAYMENTS.map(ev))).status, 201);
  assert.equal((await call("POST", "/logs", shipNamedWriter, [ev("ship-api")])).status, 201);
  assert.equal((await call("POST", "/logs", writer, ALL.map(ev))).status, 201, "unscoped");
  assert.equal((await count()).events, before.events + 2 + 1 + ALL.length);
});

dbTest("[scope] a new service from a team writer is its team's; others' are refused", async () => {
  const r = await call("POST", "/logs", payWriter, [ev("pay-fresh"), ev("pay-api")]);
  assert.equal(r.status, 201, await r.text());
  const [row] = await db.sql`select team_owner from services where name = 'pay-fresh'`;
  assert.equal(row.team_owner, "Payments");
  // It is in the team's scope at once.
  assert.ok((await ok<LogEventOut[]>("/logs?service_name=pay-fresh", payReader)).length === 1);
  // An existing unowned service, or another team's, is not taken over by writing to it.
  for (const name of ["loose-svc", "ship-api"]) {
    assert.equal((await call("POST", "/logs", payWriter, [ev(name)])).status, 403, name);
  }
  const owners = await db.sql`
    select name, team_owner from services where name in ('loose-svc', 'ship-api') order by name`;
  assert.deepEqual(owners.map((o) => [o.name, o.team_owner]), [
    ["loose-svc", null],
    ["ship-api", "Shipping"],
  ]);
  // An unscoped writer's new service has no owner.
  assert.equal((await call("POST", "/logs", writer, [ev("plain-new")])).status, 201);
  const [plain] = await db.sql`select team_owner from services where name = 'plain-new'`;
  assert.equal(plain.team_owner, null);
});

dbTest(
  "[scope] PUT /services/{name}: admin, or a writer of the owning team for its own",
  async () => {
    const owner = async (name: string) =>
      (await db.sql`select team_owner from services where name = ${name}`)[0]?.team_owner;
    const put = (name: string, who: Headers, team_owner: string | null) =>
      json<{ detail?: string }>("PUT", `/services/${name}`, who, { team_owner });

    for (
      const [name, who, team, status, what] of [
        ["ship-worker", writer, "Payments", 403, "an unscoped writer"],
        ["pay-web", payReader, "Payments", 403, "a reader"],
        ["ship-api", payWriter, "Payments", 403, "another team's service"],
        ["loose-svc", payWriter, "Payments", 403, "an unowned service"],
        ["pay-web", payWriter, "Shipping", 403, "giving its service to another team"],
        ["pay-web", payWriter, null, 403, "leaving its service without owner"],
        ["new-for-ship", payWriter, "Shipping", 403, "creating one for another team"],
        ["ship-api", shipNamedWriter, "Shipping", 403, "a writer limited to services only"],
      ] as const
    ) {
      const before = await owner(name);
      const r = await put(name, who, team);
      assert.equal(r.status, status, `${what}: ${JSON.stringify(r.body)}`);
      assert.equal(await owner(name), before, `${what}: unchanged`);
    }
    assert.equal((await put("pay-web", payWriter, "Payments")).status, 200);
    assert.equal((await put("pay-new-by-put", payWriter, "Payments")).status, 201);
    assert.equal(await owner("pay-new-by-put"), "Payments");
    assert.equal((await put("ship-worker", admin, "Ops")).status, 200);
    assert.equal(await owner("ship-worker"), "Ops");
    // The scope is read at each request: a change of owner applies at once.
    assert.equal((await json("GET", "/services/loose-svc", payReader)).status, 403);
    assert.equal((await put("loose-svc", admin, "Payments")).status, 200);
    assert.equal((await json("GET", "/services/loose-svc", payReader)).status, 200);
    assert.ok((await ok<LogEventOut[]>("/logs?service_name=loose-svc", payReader)).length > 0);
    assert.equal((await put("loose-svc", admin, null)).status, 200);
    assert.equal((await json("GET", "/logs?service_name=loose-svc", payReader)).status, 403);
  },
);

dbTest("[scope] markers: a team reader sees its services' markers only", async () => {
  await db.sql`
    insert into markers (service_id, at, kind, title, delivery)
    select id, now(), 'deployment', 'deployed ' || name, 'scope-' || name
    from services where name in ('pay-api', 'ship-api', 'ops-cron')`;
  const all = await ok<{ service_name: string }[]>("/markers", admin);
  assert.deepEqual(all.map((m) => m.service_name).sort(), ["ops-cron", "pay-api", "ship-api"]);
  const mine = await ok<{ service_name: string }[]>("/markers", payReader);
  assert.deepEqual(mine.map((m) => m.service_name), ["pay-api"]);
  assert.deepEqual(await ok("/markers", emptyReader), [], "an empty scope sees nothing");
  assert.equal((await json("GET", "/markers?service_name=ship-api", payReader)).status, 403);
});

dbTest(
  "[scope] an owner change committed while a writer's PUT waits is the one its check sees",
  async () => {
    assert.equal(
      (await json("PUT", "/services/race-svc", admin, { team_owner: "Payments" })).status,
      201,
    );
    // Another session moves the service to Shipping and holds the row until the PUT waits on it.
    const other = await db.sql.reserve();
    try {
      await other`begin`;
      await other`update services set team_owner = 'Shipping' where name = 'race-svc'`;
      const put = json("PUT", "/services/race-svc", payWriter, { team_owner: "Payments" });
      for (let waited = 0;; waited += 20) {
        const [w] = await db.sql`
        select count(*)::int as n from pg_stat_activity
         where datname = current_database() and wait_event_type = 'Lock'`;
        if (w.n > 0) break;
        if (waited > 10_000) assert.fail("the PUT never waited on the row");
        await new Promise((r) => setTimeout(r, 20));
      }
      await other`commit`;
      // Checked under the lock, after the commit: Shipping's service, outside Payments' scope.
      const res = await put;
      assert.equal(res.status, 403, JSON.stringify(res.body));
    } finally {
      other.release();
    }
    const [row] = await db.sql`select team_owner from services where name = 'race-svc'`;
    assert.equal(row.team_owner, "Shipping");
  },
);

dbTest("[scope] done", async () => {
  await server.shutdown();
  await db.drop();
});
