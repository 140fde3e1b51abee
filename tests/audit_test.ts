// The audit log (issue 13): each change made through the API leaves exactly one row, written in
// the change's transaction (a failure rolls back both); refusals on admin routes are recorded,
// bounded; GET /audit pages newest first; the pruner keeps AUDIT_RETENTION_DAYS.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { pruneLogs, runPruner } from "../src/jobs/pruner.ts";
import { createMetrics } from "../src/metrics/registry.ts";
import { DAY_MS } from "../src/time.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { FakeGitHub, ghEvent } from "./helpers/fake-github.ts";
import { eventually } from "./helpers/wait.ts";

const db = await preparedDatabase();
const gh = FakeGitHub.start();
const GH_PATH = "/repos/octo/audit/events";
const ENV_KEY = "audit-env-admin-key-0123456789";
const config = testConfig({
  API_KEYS: ENV_KEY,
  GITHUB_API_URL: gh.url,
  GITHUB_SOURCE: "repo:octo/audit",
});
const app = buildApp({ sql: db.sql, config });
const asEnv = { "X-API-Key": ENV_KEY };

interface Row {
  id: string;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
  client_addr: string | null;
  request_id: string | null;
}

let seq = 0;
/** A request with its own X-Request-Id, so that its audit rows can be found. */
async function call(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ res: Response; rid: string }> {
  const rid = `audit-test-${++seq}-${crypto.randomUUID()}`;
  const res = await app.request(path, {
    method,
    headers: {
      ...headers,
      "X-Request-Id": rid,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { res, rid };
}

const rowsOf = (rid: string) =>
  db.sql<Row[]>`select * from audit_log where request_id = ${rid} order by id`;

/** The one row a request left. */
async function oneRow(rid: string): Promise<Row> {
  const rows = await rowsOf(rid);
  assert.equal(rows.length, 1, `one audit row for ${rid}: ${JSON.stringify(rows)}`);
  return rows[0];
}

async function createKey(body: Record<string, unknown>) {
  const { res } = await call("POST", "/keys", asEnv, body);
  assert.equal(res.status, 201, await res.clone().text());
  return await res.json() as { id: number; token: string; prefix: string };
}

dbTest("[audit] creating and revoking a key leaves one row each, never the token", async () => {
  const { res, rid } = await call("POST", "/keys", asEnv, {
    name: "shipper",
    role: "writer",
    teams: ["Payments Team"],
  });
  assert.equal(res.status, 201);
  const key = await res.json();
  const row = await oneRow(rid);
  assert.equal(row.actor, "api-key#1");
  assert.equal(row.action, "key.create");
  assert.equal(row.target, `key#${key.id}`);
  assert.equal(row.detail.name, "shipper");
  assert.equal(row.detail.role, "writer");
  assert.deepEqual(row.detail.teams, ["Payments Team"]);
  assert.equal(row.detail.prefix, key.prefix);
  assert.ok(!JSON.stringify(row).includes(key.token.slice(4)), "no token in the audit log");

  // Revoked by a stored admin key: the actor is that key.
  const admin = await createKey({ name: "ops", role: "admin" });
  const del = await call("DELETE", `/keys/${key.id}`, { authorization: `Bearer ${admin.token}` });
  assert.equal(del.res.status, 204);
  const revoked = await oneRow(del.rid);
  assert.equal(revoked.actor, `key#${admin.id}`);
  assert.equal(revoked.action, "key.revoke");
  assert.equal(revoked.target, `key#${key.id}`);
  assert.equal(revoked.detail.name, "shipper");

  // Nothing revoked, nothing recorded.
  const again = await call("DELETE", `/keys/${key.id}`, asEnv);
  assert.equal(again.res.status, 404);
  assert.equal((await rowsOf(again.rid)).length, 0);
});

dbTest(
  "[audit] PUT /services records old and new owner; a refused body writes nothing",
  async () => {
    const created = await call("PUT", "/services/audit-svc", asEnv, { team_owner: "Team A" });
    assert.equal(created.res.status, 201);
    const c = await oneRow(created.rid);
    assert.deepEqual(
      [c.actor, c.action, c.target, c.detail],
      ["api-key#1", "service.create", "service:audit-svc", {
        old_owner: null,
        new_owner: "Team A",
      }],
    );
    const changed = await call("PUT", "/services/audit-svc", asEnv, { team_owner: "Team B" });
    assert.equal(changed.res.status, 200);
    const u = await oneRow(changed.rid);
    assert.deepEqual(
      [u.action, u.target, u.detail],
      ["service.update", "service:audit-svc", { old_owner: "Team A", new_owner: "Team B" }],
    );

    const [{ n: before }] = await db.sql`select count(*)::int as n from audit_log`;
    for (const body of [{ team_owner: 5 }, "{not json", { team_owner: "x".repeat(201) }]) {
      const bad = await call("PUT", "/services/audit-svc", asEnv, body);
      assert.equal(bad.res.status, 400, JSON.stringify(body));
      await bad.res.body?.cancel();
      assert.equal((await rowsOf(bad.rid)).length, 0);
    }
    const [{ n: after }] = await db.sql`select count(*)::int as n from audit_log`;
    assert.equal(after, before);
    const [svc] = await db.sql`select team_owner from services where name = 'audit-svc'`;
    assert.equal(svc.team_owner, "Team B");
  },
);

dbTest("[audit] when the audit row cannot be written, the change is rolled back too", async () => {
  const victim = await createKey({ name: "victim", role: "reader" });
  const [{ enabled: prunerBefore }] = await db
    .sql`select enabled from job_control where job = 'pruner'`;
  await db.sql`
    create function audit_test_refuse() returns trigger language plpgsql as
    $$ begin raise exception 'audit refused (test)'; end $$`;
  await db.sql`
    create trigger audit_test_refuse before insert on audit_log
    for each row execute function audit_test_refuse()`;
  try {
    const put = await call("PUT", "/services/audit-svc-2", asEnv, { team_owner: "Team C" });
    assert.equal(put.res.status, 500, await put.res.text());
    const post = await call("POST", "/keys", asEnv, { name: "never", role: "reader" });
    assert.equal(post.res.status, 500, await post.res.text());
    const del = await call("DELETE", `/keys/${victim.id}`, asEnv);
    assert.equal(del.res.status, 500, await del.res.text());
    const toggle = await call("POST", `/control/pruner-toggle?enable=${!prunerBefore}`, asEnv);
    assert.equal(toggle.res.status, 500, await toggle.res.text());
  } finally {
    await db.sql`drop trigger audit_test_refuse on audit_log`;
    await db.sql`drop function audit_test_refuse()`;
  }
  assert.equal((await db.sql`select 1 from services where name = 'audit-svc-2'`).length, 0);
  assert.equal((await db.sql`select 1 from api_keys where name = 'never'`).length, 0, "created");
  assert.equal((await db.sql`select 1 from api_keys where id = ${victim.id}`).length, 1, "revoked");
  const [{ enabled }] = await db.sql`select enabled from job_control where job = 'pruner'`;
  assert.equal(enabled, prunerBefore);
});

dbTest("[audit] job switches, a manual ingestor run and a prune leave one row each", async () => {
  const off = await call("POST", "/control/pruner-toggle?enable=false", asEnv);
  assert.equal(off.res.status, 200);
  const t = await oneRow(off.rid);
  assert.deepEqual(
    [t.actor, t.action, t.target, t.detail],
    ["api-key#1", "job.toggle", "job:pruner", { enabled: false, was: true, requested: false }],
  );
  const flip = await call("POST", "/control/pruner-toggle", asEnv);
  assert.equal((await flip.res.json()).enabled, true);
  assert.deepEqual((await oneRow(flip.rid)).detail, {
    enabled: true,
    was: false,
    requested: "flip",
  });

  // The ingestor: a skipped run and a real one, each with its outcome.
  await db.sql`update job_control set enabled = false where job = 'ingestor'`;
  const skipped = await call("POST", "/control/ingestor-run", asEnv);
  assert.equal((await skipped.res.json()).status, "skipped");
  const s = await oneRow(skipped.rid);
  assert.deepEqual([s.action, s.target, s.detail.status, s.detail.reason], [
    "job.run",
    "job:ingestor",
    "skipped",
    "disabled",
  ]);
  await db.sql`update job_control set enabled = true where job = 'ingestor'`;
  gh.feed(GH_PATH, [ghEvent("901"), ghEvent("902")]);
  const ran = await call("POST", "/control/ingestor-run", asEnv);
  const run = await ran.res.json();
  assert.equal(run.status, "success", JSON.stringify(run));
  const r = await oneRow(ran.rid);
  assert.deepEqual([r.actor, r.action, r.detail.status, r.detail.new, r.detail.polls], [
    "api-key#1",
    "job.run",
    "success",
    2,
    1,
  ]);

  // A prune: its days and what it removed (an event three days old, an audit entry past
  // AUDIT_RETENTION_DAYS).
  const old = new Date(Date.now() - 3 * DAY_MS).toISOString();
  const ingest = await call("POST", "/logs", asEnv, [
    { service_name: "auth-service", status_code: 200, latency_ms: 3, timestamp: old },
  ]);
  assert.equal(ingest.res.status, 201, await ingest.res.text());
  await db.sql`
    insert into audit_log (at, actor, action)
    values (now() - interval '91 days', 'tester', 'test.ancient')`;
  await db.sql`
    insert into markers (service_id, at, kind, title, delivery)
    select id, now() - interval '3 days', 'release', 'v0.1', 'audit-old-marker'
    from services where name = 'auth-service'`;
  const dry = await call("POST", "/control/prune?days=1&dry_run=true", asEnv);
  const dryResult = await dry.res.json();
  assert.ok(dryResult.deleted >= 1 && dryResult.audit_deleted >= 1, JSON.stringify(dryResult));
  assert.equal(dryResult.markers_deleted, 1, JSON.stringify(dryResult));
  assert.equal((await rowsOf(dry.rid)).length, 0, "a dry run changes nothing: no row");

  const prune = await call("POST", "/control/prune?days=1", asEnv);
  const result = await prune.res.json();
  assert.equal(result.status, "success", JSON.stringify(result));
  assert.ok(result.deleted >= 1 && result.audit_deleted >= 1, JSON.stringify(result));
  const p = await oneRow(prune.rid);
  assert.deepEqual([p.actor, p.action, p.target], ["api-key#1", "job.prune", "job:pruner"]);
  assert.equal(p.detail.days, 1);
  assert.equal(p.detail.status, "success");
  assert.equal(p.detail.deleted, result.deleted);
  assert.equal(p.detail.dropped_partitions, result.dropped_partitions);
  assert.equal(p.detail.audit_deleted, result.audit_deleted);
  assert.equal(result.markers_deleted, 1);
  assert.equal(p.detail.markers_deleted, 1);
  assert.equal(p.detail.cutoff, result.cutoff);
});

dbTest("[audit] 401 and 403 on admin routes are recorded; refusals elsewhere are not", async () => {
  const reader = await createKey({ name: "dash", role: "reader" });
  const writer = await createKey({ name: "ship", role: "writer" });
  const cases: [string, string, Record<string, string>, number, string, RegExp][] = [
    ["GET", "/keys", {}, 401, "anonymous", /missing credential/],
    ["POST", "/control/prune?days=3", { "X-API-Key": "obs_wrong" }, 401, "anonymous", /invalid/],
    ["DELETE", "/keys/1", { "X-API-Key": writer.token }, 403, `key#${writer.id}`, /admin right/],
    [
      "POST",
      "/control/pruner-toggle",
      { authorization: `Bearer ${reader.token}` },
      403,
      `key#${reader.id}`,
      /admin right/,
    ],
    ["GET", "/audit", { "X-API-Key": reader.token }, 403, `key#${reader.id}`, /admin right/],
  ];
  for (const [method, path, headers, status, actor, reason] of cases) {
    const { res, rid } = await call(method, path, headers);
    assert.equal(res.status, status, `${method} ${path}`);
    await res.body?.cancel();
    const row = await oneRow(rid);
    assert.equal(row.action, "auth.denied");
    assert.equal(row.actor, actor);
    assert.equal(row.target, `${method} ${path.split("?")[0]}`);
    assert.equal(row.detail.status, status);
    assert.match(String(row.detail.reason), reason);
  }
  // Not admin routes: refused, not recorded.
  for (
    const [method, path, headers, status] of [
      ["GET", "/logs", {}, 401],
      ["GET", "/services", { "X-API-Key": writer.token }, 403],
      ["POST", "/logs", { "X-API-Key": reader.token }, 403],
      ["PUT", "/services/auth-service", { "X-API-Key": reader.token }, 403],
    ] as const
  ) {
    const { res, rid } = await call(method, path, headers, method === "GET" ? undefined : {});
    assert.equal(res.status, status, `${method} ${path}`);
    await res.body?.cancel();
    assert.equal((await rowsOf(rid)).length, 0, `${method} ${path} not recorded`);
  }
});

dbTest(
  "[audit] a flood of refusals is capped per instance; what is dropped is counted",
  async () => {
    const metrics = createMetrics({ processMetrics: false });
    const flooded = buildApp({ sql: db.sql, config, metrics });
    const prefix = `flood-${crypto.randomUUID()}-`;
    const N = 60;
    const answers = await Promise.all(
      Array.from(
        { length: N },
        (_, i) => flooded.request("/keys", { headers: { "X-Request-Id": `${prefix}${i}` } }),
      ),
    );
    for (const res of answers) {
      assert.equal(res.status, 401);
      await res.body?.cancel();
    }
    const dropped = async () =>
      (await metrics.auditRefusalsDropped.get()).values.reduce((n, v) => n + v.value, 0);
    const recorded = async () =>
      (await db.sql`select count(*)::int as n from audit_log where request_id like ${
        prefix + "%"
      }`)[0]
        .n as number;
    // Every refusal is either a row or counted as dropped (an insert may still be finishing).
    await eventually(
      "rows + dropped = refusals",
      async () => (await recorded()) + (await dropped()) === N,
    );
    assert.ok((await dropped()) > 0, "some were dropped");
    const rows = await recorded();
    // RefusalLog's default: 50 a second, 4 at once.
    assert.ok(rows >= 1 && rows <= 50, `${rows} recorded`);
  },
);

dbTest("[audit] GET /audit pages newest first by cursor, within a time range", async () => {
  const base = Date.parse("2026-06-01T12:00:00Z");
  // 25 entries a second apart, and 5 more sharing one instant (ties are ordered by id).
  await db.sql`
    insert into audit_log (at, actor, action, target)
    select to_timestamp(${base / 1000} + i), case when i % 2 = 0 then 'even' else 'odd' end,
           'test.page', 'n' || i
    from generate_series(0, 24) as i`;
  await db.sql`
    insert into audit_log (at, actor, action, target)
    select to_timestamp(${base / 1000} + 100), 'tie', 'test.page', 'tie' || i
    from generate_series(0, 4) as i`;
  const expected = (await db.sql<{ id: string }[]>`
    select id::text from audit_log where action = 'test.page' order by at desc, id desc`)
    .map((r) => Number(r.id));
  assert.equal(expected.length, 30);

  const seen: number[] = [];
  let url: string | null = "/audit?action=test.page&limit=7";
  let pages = 0;
  while (url) {
    const { res }: { res: Response } = await call("GET", url, asEnv);
    assert.equal(res.status, 200);
    const page = await res.json();
    assert.ok(page.length <= 7);
    seen.push(...page.map((e: { id: number }) => e.id));
    const link = res.headers.get("link");
    const cursor = res.headers.get("x-next-cursor");
    assert.equal(link === null, cursor === null);
    url = link ? link.match(/^<([^>]+)>; rel="next"$/)![1] : null;
    if (url) assert.ok(url.includes(`cursor=${cursor}`) && url.includes("action=test.page"));
    pages++;
    assert.ok(pages <= 5, "paging ends");
  }
  assert.deepEqual(seen, expected, "every entry once, newest first");
  assert.equal(pages, 5);

  // A time range (inclusive at both ends) and an actor.
  const range = await call(
    "GET",
    `/audit?action=test.page&start_time=${new Date(base + 5000).toISOString()}` +
      `&end_time=${new Date(base + 9000).toISOString()}`,
    asEnv,
  );
  const inRange = await range.res.json();
  assert.deepEqual(inRange.map((e: { target: string }) => e.target), [
    "n9",
    "n8",
    "n7",
    "n6",
    "n5",
  ]);
  assert.match(inRange[0].at, /^2026-06-01T12:00:09\.000000Z$/);
  const odd = await (await call("GET", "/audit?action=test.page&actor=odd&limit=1000", asEnv))
    .res.json();
  assert.equal(odd.length, 12);
  assert.ok(odd.every((e: { actor: string }) => e.actor === "odd"));

  // The default limit is 100, the last page has no Link.
  const all = await call("GET", "/audit?action=test.page", asEnv);
  assert.equal((await all.res.json()).length, 30);
  assert.equal(all.res.headers.get("link"), null);

  for (
    const [query, field] of [
      ["limit=0", "limit"],
      ["limit=1001", "limit"],
      ["limit=abc", "limit"],
      ["cursor=bogus", "cursor"],
      ["start_time=yesterday", "start_time"],
      ["start_time=2026-06-02T00:00:00Z&end_time=2026-06-01T00:00:00Z", "start_time"],
      ["action=", "action"],
      ["colour=red", "colour"],
    ]
  ) {
    const { res } = await call("GET", `/audit?${query}`, asEnv);
    assert.equal(res.status, 400, query);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    const problem = await res.json();
    assert.ok(
      problem.errors?.some((e: { field: string }) => e.field === field),
      `${query}: ${JSON.stringify(problem)}`,
    );
  }
  // Admin only.
  assert.equal((await call("GET", "/audit")).res.status, 401);
  const writer = await createKey({ name: "w", role: "writer" });
  assert.equal((await call("GET", "/audit", { "X-API-Key": writer.token })).res.status, 403);
});

dbTest("[audit] the pruner removes entries older than AUDIT_RETENTION_DAYS", async () => {
  const now = new Date();
  const marked = () =>
    db.sql<{ target: string }[]>`
      select target from audit_log where action = 'test.retention' order by target`;
  const insert = () =>
    db.sql`
      insert into audit_log (at, actor, action, target)
      values (${new Date(now.getTime() - 31 * DAY_MS)}, 'tester', 'test.retention', 'a-31d'),
             (${new Date(now.getTime() - 29 * DAY_MS)}, 'tester', 'test.retention', 'b-29d'),
             (${new Date(now.getTime() - 91 * DAY_MS)}, 'tester', 'test.retention', 'c-91d')`;
  await db.sql`delete from audit_log where at < now() - interval '29 days' - interval '1 hour'`;
  await insert();

  // The default keeps 90 days; a dry run deletes nothing but counts.
  const dry = await pruneLogs(db.sql, config, null, { dryRun: true, now });
  assert.equal(dry.audit_deleted, 1);
  assert.equal((await marked()).length, 3);
  const metrics = createMetrics({ processMetrics: false });
  const report = await pruneLogs(db.sql, config, metrics, { now });
  assert.equal(report.audit_deleted, 1);
  assert.deepEqual((await marked()).map((r) => r.target), ["a-31d", "b-29d"]);
  assert.equal((await metrics.prunerDeletedAuditRows.get()).values[0].value, 1);

  // AUDIT_RETENTION_DAYS=30, through the job the cron runs.
  const short = testConfig({ AUDIT_RETENTION_DAYS: "30" });
  assert.equal(short.auditRetentionDays, 30);
  assert.equal(config.auditRetentionDays, 90);
  await db.sql`update job_control set enabled = true where job = 'pruner'`;
  const run = await runPruner({ sql: db.sql, config: short, metrics, now: () => now });
  assert.equal(run.outcome, "success", JSON.stringify(run));
  assert.equal(run.result?.audit_deleted, 1);
  assert.deepEqual((await marked()).map((r) => r.target), ["b-29d"]);
  const [state] = await db.sql`select state from job_control where job = 'pruner'`;
  assert.equal(state.state.last_result.audit_deleted, 1);
});

dbTest("[audit] over a socket, the client address and request id are kept", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  try {
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/keys`, {
      method: "POST",
      headers: { ...asEnv, "content-type": "application/json", "X-Request-Id": "sock-req-1" },
      body: JSON.stringify({ name: "over tcp", role: "reader" }),
    });
    assert.equal(res.status, 201);
    await res.body?.cancel();
    const row = await oneRow("sock-req-1");
    assert.equal(row.client_addr, "127.0.0.1");
    assert.equal(row.action, "key.create");
  } finally {
    await server.shutdown();
  }
});

dbTest("[audit] teardown", async () => {
  await gh.close();
  await db.drop();
});
