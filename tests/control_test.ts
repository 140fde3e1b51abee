// The /control endpoints over the app, with a real database and a fake GitHub: API keys,
// switches shared by instances, status, health, manual runs, the OpenAPI document.
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { buildApp } from "../src/app.ts";
import { createDb } from "../src/db/connect.ts";
import { ensurePartitions, utcDay } from "../src/db/partitions.ts";
import { jsonLine } from "../src/logging.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { FakeGitHub, ghEvent } from "./helpers/fake-github.ts";

const db = await preparedDatabase();
const gh = FakeGitHub.start();
const KEY1 = "first-key-0123456789abcdef";
const KEY2 = "k2-short";
const env = {
  API_KEYS: `${KEY1},${KEY2}`,
  GITHUB_API_URL: gh.url,
  GITHUB_SOURCE: "repo:octo/ctl",
  RETENTION_DAYS: "7",
};
const config = testConfig(env);
const app = buildApp({ sql: db.sql, config });
const GH_PATH = "/repos/octo/ctl/events";

const PROTECTED = [
  "/control/ingestor-toggle",
  "/control/ingestor-run",
  "/control/pruner-toggle",
  "/control/prune",
];

const post = async (path: string, key?: string, init: RequestInit = {}): Promise<Response> =>
  await app.request(path, {
    method: "POST",
    ...init,
    headers: { ...(key === undefined ? {} : { "X-API-Key": key }), ...init.headers },
  });

async function switchOf(job: string): Promise<boolean> {
  const [row] = await db.sql`select enabled from job_control where job = ${job}`;
  return row.enabled;
}

async function setSwitch(job: string, enabled: boolean) {
  await db.sql`update job_control set enabled = ${enabled} where job = ${job}`;
}

dbTest("[auth] every protected endpoint refuses a missing, wrong or other-length key", async () => {
  const before = [await switchOf("ingestor"), await switchOf("pruner")];
  const wrongSameLength = KEY1.slice(0, -1) + (KEY1.endsWith("f") ? "e" : "f");
  for (const path of PROTECTED) {
    for (const key of [undefined, "", wrongSameLength, KEY1 + "x", "k", KEY2.toUpperCase()]) {
      // Auth comes before validation: a bad parameter without a key is still a 401.
      const res = await post(`${path}?days=abc&enable=maybe`, key);
      assert.equal(res.status, 401, `${path} with ${JSON.stringify(key)}`);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      assert.equal(res.headers.get("www-authenticate"), "ApiKey");
      const body = await res.json();
      assert.equal(body.status, 401);
      assert.match(body.detail, /X-API-Key/);
    }
  }
  assert.deepEqual([await switchOf("ingestor"), await switchOf("pruner")], before, "unchanged");
  assert.equal(gh.requests.length, 0, "no poll was made");
});

dbTest("[auth] with no API key configured the protected endpoints answer 403", async () => {
  const open = buildApp({ sql: db.sql, config: testConfig({ ...env, API_KEYS: "" }) });
  for (const path of PROTECTED) {
    for (const key of [undefined, KEY1]) {
      const res = await open.request(path, {
        method: "POST",
        headers: key ? { "X-API-Key": key } : {},
      });
      assert.equal(res.status, 403, path);
      assert.equal((await res.json()).detail, "control disabled: set API_KEYS");
    }
  }
  // The read-only endpoints stay open.
  assert.equal((await open.request("/control/ingestor-status")).status, 200);
});

dbTest("[auth] keys never reach the logs; the caller is recorded by position", async () => {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r: LogRecord) => records.push(r) },
    loggers: [
      { category: ["observian"], lowestLevel: "debug", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: ["mem"] },
    ],
  });
  try {
    await setSwitch("pruner", true);
    const res = await post("/control/pruner-toggle?enable=false", KEY2);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.updated_by, "api-key#2");
    await post("/control/pruner-toggle?enable=true", KEY1);
    await post("/control/pruner-toggle", "wrong-key-value");
    await post("/control/prune?dry_run=true", KEY1);
    const [row] = await db.sql`select updated_by from job_control where job = 'pruner'`;
    assert.equal(row.updated_by, "api-key#1");
    const text = records.map(jsonLine).join("");
    assert.ok(records.length > 0, "something was logged");
    for (const secret of [KEY1, KEY2, "wrong-key-value"]) {
      assert.ok(!text.includes(secret), `${secret} is not in the logs`);
    }
  } finally {
    await reset();
    await setSwitch("pruner", true);
  }
});

dbTest("[control] toggle by query, by body, or flip; the answer is the new state", async () => {
  await setSwitch("ingestor", false);
  const call = async (query = "", body?: unknown) => {
    const res = await post(`/control/ingestor-toggle${query}`, KEY1, {
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { "content-type": "application/json" },
    });
    return { status: res.status, body: await res.json() };
  };
  let r = await call("?enable=true");
  assert.equal(r.status, 200);
  assert.equal(r.body.enabled, true);
  assert.equal(r.body.job, "ingestor");
  assert.equal(await switchOf("ingestor"), true);
  r = await call("?enable=true"); // idempotent
  assert.equal(r.body.enabled, true);
  r = await call("", { enabled: false });
  assert.equal(r.body.enabled, false);
  r = await call();
  assert.equal(r.body.enabled, true, "neither: flips");
  r = await call("", {});
  assert.equal(r.body.enabled, false, "empty body: flips");
  assert.equal(await switchOf("ingestor"), false);

  for (
    const [q, b] of [["?enable=yes", undefined], ["?enable=true", { enabled: false }], [
      "",
      { enabled: "on" },
    ]] as const
  ) {
    const bad = await call(q, b);
    assert.equal(bad.status, 400, `${q} ${JSON.stringify(b)}`);
    assert.ok(Array.isArray(bad.body.errors));
  }
  const malformed = await post("/control/ingestor-toggle", KEY1, {
    body: "{nope",
    headers: { "content-type": "application/json" },
  });
  assert.equal(malformed.status, 400);
  assert.equal(await switchOf("ingestor"), false, "refused requests changed nothing");
});

dbTest("[control] a toggle through instance A is seen by instance B at once", async () => {
  const sqlA = createDb(db.url, { max: 2 });
  const sqlB = createDb(db.url, { max: 2 });
  try {
    const a = buildApp({ sql: sqlA, config });
    const b = buildApp({ sql: sqlB, config });
    await setSwitch("ingestor", false);
    assert.equal(
      (await (await b.request("/control/ingestor-status", { headers: { "X-API-Key": KEY1 } }))
        .json()).enabled,
      false,
    );
    const res = await a.request("/control/ingestor-toggle?enable=true", {
      method: "POST",
      headers: { "X-API-Key": KEY1 },
    });
    assert.equal(res.status, 200);
    assert.equal(
      (await (await b.request("/control/ingestor-status", { headers: { "X-API-Key": KEY1 } }))
        .json()).enabled,
      true,
    );
    await b.request("/control/pruner-toggle?enable=false", {
      method: "POST",
      headers: { "X-API-Key": KEY2 },
    });
    assert.equal(
      (await (await a.request("/control/pruner-status", { headers: { "X-API-Key": KEY1 } })).json())
        .enabled,
      false,
    );
  } finally {
    await setSwitch("ingestor", false);
    await setSwitch("pruner", true);
    await Promise.all([sqlA.end(), sqlB.end()]);
  }
});

dbTest("[control] concurrent flips are never lost", async () => {
  await setSwitch("pruner", true);
  const results = await Promise.all(
    Array.from(
      { length: 11 },
      () =>
        post("/control/pruner-toggle", KEY1).then((r) => r.json() as Promise<{ enabled: boolean }>),
    ),
  );
  // Eleven flips of "on": the answers alternate, six off and five on, and it ends off.
  assert.equal(results.filter((r) => r.enabled === false).length, 6);
  assert.equal(await switchOf("pruner"), false);
  await setSwitch("pruner", true);
});

dbTest("[control] ingestor-run polls now; status and health follow", async () => {
  await db.sql`
    update job_control set state = '{}', last_success_at = null, last_error = null,
      consecutive_failures = 0
    where job = 'ingestor'`;
  await setSwitch("ingestor", false);
  const health = async () => {
    const res = await app.request("/control/ingestor-health", { headers: { "X-API-Key": KEY1 } });
    return { status: res.status, body: await res.json() };
  };
  let h = await health();
  assert.equal(h.status, 503);
  assert.deepEqual([h.body.running, h.body.reason], [false, "disabled"]);

  // Switched off, a manual run is skipped like the cron's.
  let res = await post("/control/ingestor-run", KEY1);
  assert.equal(res.status, 200);
  let run = await res.json();
  assert.deepEqual([run.status, run.reason], ["skipped", "disabled"]);
  assert.equal(gh.requestsTo(GH_PATH).length, 0);

  await setSwitch("ingestor", true);
  h = await health();
  assert.deepEqual([h.status, h.body.reason], [503, "stale"], "never polled yet");

  gh.feed(GH_PATH, [ghEvent("801"), ghEvent("803"), ghEvent("802")]);
  res = await post("/control/ingestor-run", KEY1);
  run = await res.json();
  assert.equal(run.status, "success", JSON.stringify(run));
  assert.equal(run.new, 3);
  assert.equal(run.polls[0].status, 200);
  assert.equal(run.polls[0].source, "repo:octo/ctl");
  // A manual run does not wait for the poll interval.
  run = await (await post("/control/ingestor-run", KEY1)).json();
  assert.equal(run.polls[0].outcome, "not_modified");
  assert.equal(gh.requestsTo(GH_PATH).length, 2);

  const status =
    await (await app.request("/control/ingestor-status", { headers: { "X-API-Key": KEY1 } }))
      .json();
  assert.equal(status.enabled, true);
  assert.equal(status.source, "repo:octo/ctl");
  assert.equal(status.schedule, "* * * * *");
  assert.equal(status.events_ingested_total, 3);
  assert.equal(status.consecutive_failures, 0);
  assert.equal(status.last_error, null);
  assert.ok(status.last_run_at && status.last_success_at);
  assert.equal(typeof status.rate_limit_remaining, "number");
  assert.ok(new Date(status.next_run_at).getTime() > Date.now());
  assert.equal(status.sources[0].last_poll.outcome, "not_modified");

  h = await health();
  assert.equal(h.status, 200);
  assert.equal(h.body.running, true);

  // Three poll intervals without a success: stale.
  await db.sql`
    update job_control set last_success_at = now() - interval '181 seconds'
    where job = 'ingestor'`;
  h = await health();
  assert.deepEqual([h.status, h.body.reason], [503, "stale"]);
  await setSwitch("ingestor", false);
});

dbTest("[control] prune: days and dry_run, validated; pruner-status shows the result", async () => {
  for (const q of ["days=0", "days=-1", "days=abc", "days=1.5", "dry_run=maybe", "dry_run=1"]) {
    const res = await post(`/control/prune?${q}`, KEY1);
    assert.equal(res.status, 400, q);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
  }
  // One old row, in a partition of its own, and one recent row.
  const old = new Date(Date.now() - 20 * 86_400_000);
  await ensurePartitions(db.sql, utcDay(old), utcDay(old));
  const [svc] = await db.sql`select id from services order by id limit 1`;
  await db.sql`
    insert into log_events (service_id, "timestamp", status_code, latency_ms)
    values (${svc.id}, ${old}, 200, 1), (${svc.id}, now() - interval '1 hour', 200, 1)`;
  await db.sql`select observian_rollup_rebuild(${old}, now())`;
  const [{ n: total }] = await db.sql`select count(*)::int as n from log_events`;

  const dry = await (await post("/control/prune?days=10&dry_run=true", KEY1)).json();
  assert.equal(dry.status, "success");
  assert.equal(dry.dry_run, true);
  assert.ok(dry.deleted >= 1);
  assert.ok(dry.dropped_partitions >= 1);
  const [{ n: still }] = await db.sql`select count(*)::int as n from log_events`;
  assert.equal(still, total, "dry run deleted nothing");

  const res = await post("/control/prune?days=10", KEY1);
  assert.equal(res.status, 200);
  const done = await res.json();
  assert.equal(done.status, "success");
  assert.equal(done.dry_run, false);
  assert.equal(done.deleted, dry.deleted);
  assert.equal(done.dropped_partitions, dry.dropped_partitions);
  assert.ok(Math.abs(new Date(done.cutoff).getTime() - (Date.now() - 10 * 86_400_000)) < 60_000);
  const [{ n: after }] = await db.sql`select count(*)::int as n from log_events`;
  assert.equal(after, total - done.deleted);

  const status =
    await (await app.request("/control/pruner-status", { headers: { "X-API-Key": KEY1 } })).json();
  assert.equal(status.enabled, true);
  assert.equal(status.schedule, "0 3 * * *");
  assert.equal(status.retention_days, 7);
  assert.equal(status.last_result.deleted, done.deleted);
  assert.ok(status.next_run_at.endsWith("T03:00:00.000Z"));

  // Default days: RETENTION_DAYS.
  const def = await (await post("/control/prune?dry_run=true", KEY1)).json();
  assert.ok(Math.abs(new Date(def.cutoff).getTime() - (Date.now() - 7 * 86_400_000)) < 60_000);
});

dbTest("[openapi] the control endpoints are documented with their key and right", async () => {
  const doc = await (await app.request("/openapi.json")).json();
  const { description, ...scheme } = doc.components.securitySchemes.ApiKey;
  assert.deepEqual(scheme, { type: "apiKey", in: "header", name: "X-API-Key" });
  assert.match(description, /Authorization: Bearer/, "the other way to send a key is said");
  for (const path of PROTECTED) {
    const op = doc.paths[path]?.post;
    assert.ok(op, `${path} documented`);
    assert.deepEqual(op.security, [{ ApiKey: [] }], path);
    assert.ok(op.responses["401"] && op.responses["403"], path);
  }
  for (
    const path of ["/control/ingestor-status", "/control/ingestor-health", "/control/pruner-status"]
  ) {
    const op = doc.paths[path]?.get;
    assert.ok(op, `${path} documented`);
    // Job status is a reader's right once keys exist.
    assert.deepEqual(op.security, [{ ApiKey: [] }], path);
    assert.equal(op["x-observian-right"], "read", path);
  }
  const params = doc.paths["/control/prune"].post.parameters.map((p: { name: string }) => p.name);
  assert.deepEqual(params.sort(), ["days", "dry_run"]);
});

dbTest("[x] teardown", async () => {
  await gh.close();
  await db.drop();
});
