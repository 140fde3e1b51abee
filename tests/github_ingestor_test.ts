// The GitHub ingestor against a fake GitHub (a real HTTP server) and a real PostgreSQL.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { createDb } from "../src/db/connect.ts";
import { nextLink } from "../src/jobs/github/client.ts";
import { runIngestor } from "../src/jobs/github/job.ts";
import { toLogEvent } from "../src/jobs/github/mapping.ts";
import { readIngestorState } from "../src/jobs/github/state.ts";
import { storeGitHubEvents } from "../src/jobs/github/store.ts";
import type { JobDeps } from "../src/jobs/runner.ts";
import { createMetrics } from "../src/metrics/registry.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { FakeGitHub, type GhEvent, ghEvent } from "./helpers/fake-github.ts";

const db = await preparedDatabase();
const gh = FakeGitHub.start();
const REPO = "/repos/octo/hello/events";

/** A clock the tests move forward to pass poll intervals and resets. */
let clock = Date.now();
const now = () => new Date(clock);

function deps(env: Record<string, string> = {}, sql = db.sql): JobDeps {
  const config = testConfig({
    GITHUB_API_URL: gh.url,
    GITHUB_SOURCE: "repo:octo/hello",
    GITHUB_TIMEOUT_S: "1",
    ...env,
  });
  return { sql, config, metrics: createMetrics({ processMetrics: false }), now };
}

/** A fresh start for each test: switched on, no state, no events. */
async function reset() {
  await db.sql`
    update job_control set enabled = true, state = '{}', last_error = null,
      consecutive_failures = 0, last_success_at = null, last_started_at = null,
      last_finished_at = null
    where job = 'ingestor'`;
  await db
    .sql`truncate github_seen_events, log_events, log_rollup_pending, log_rollup_1m_store, log_rollup_1h_store, log_rollup_1d_store`;
  gh.requests.length = 0;
  gh.pollInterval = 60;
  gh.pageSize = 100;
  gh.rateLimit.remaining = 4990;
  clock = Date.now();
}

async function storedIds(): Promise<string[]> {
  const rows = await db.sql<{ id: string }[]>`
    select attributes->>'github_id' as id from log_events order by 1`;
  return rows.map((r) => r.id);
}

async function control() {
  const [row] = await db.sql`select * from job_control where job = 'ingestor'`;
  return row;
}

/** ids deliberately unsorted, as GitHub serves them. */
function timeline(ids: string[], startMinutesAgo = 5): GhEvent[] {
  return ids.map((id, i) => ghEvent(id, { minutesAgo: startMinutesAgo + i }));
}

dbTest("[github] Link pages, ETag 304 and overlapping polls store each event once", async () => {
  await reset();
  gh.pageSize = 5; // 12 events: three pages of 5, 5 and 2
  const first = ["9000000003", "9000000005", "9000000002", "9000000001", "9000000004"];
  const older = ["8000000010", "8000000012", "8000000011", "8000000009", "8000000013"];
  const oldest = ["7000000002", "7000000001"];
  const known = timeline([...first, ...older, ...oldest]);
  gh.feed(REPO, known);
  const d = deps();

  const run1 = await runIngestor(d);
  assert.equal(run1.outcome, "success", run1.error ?? "");
  assert.equal(run1.result!.new, 12);
  const reqs = gh.requestsTo(REPO);
  assert.equal(reqs.length, 3, "followed rel=next to the end");
  assert.equal(reqs[0].query.get("per_page"), "100");
  assert.equal(reqs[0].headers.get("if-none-match"), null, "no ETag on the first poll");
  assert.deepEqual(reqs.map((r) => r.query.get("page") ?? "1"), ["1", "2", "3"]);
  assert.equal((await storedIds()).length, 12);

  // Nothing new: the stored weak ETag goes back verbatim and GitHub answers 304.
  clock += 61_000;
  const etag = readIngestorState((await control()).state).sources["repo:octo/hello"].etag!;
  assert.match(etag, /^W\/"/);
  const run2 = await runIngestor(d);
  assert.equal(run2.outcome, "success");
  assert.equal(run2.result!.polls[0].outcome, "not_modified");
  assert.equal(gh.requestsTo(REPO).length, 4, "one conditional request, no paging");
  assert.equal(gh.requestsTo(REPO)[3].headers.get("if-none-match"), etag);

  // Three new events push two known ones onto page 1: stored once, paging stops there.
  const fresh = ["9100000002", "9100000003", "9100000001"];
  gh.feed(REPO, [...timeline(fresh, 1), ...known]);
  clock += 61_000;
  const run3 = await runIngestor(d);
  assert.equal(run3.result!.new, 3);
  assert.equal(run3.result!.duplicates, 2);
  assert.equal(gh.requestsTo(REPO).length, 5, "page 1 reached the cursor: no page 2");

  const ids = await storedIds();
  assert.equal(ids.length, 15);
  assert.equal(new Set(ids).size, 15, "no event stored twice");
  const [seen] = await db.sql`select count(*)::int as n from github_seen_events`;
  assert.equal(seen.n, 15);
  assert.equal(readIngestorState((await control()).state).events_ingested_total, 15);
});

dbTest("[github] X-Poll-Interval: no request before it has passed", async () => {
  await reset();
  gh.pollInterval = 120;
  gh.feed(REPO, timeline(["1", "3", "2"]));
  const d = deps();
  assert.equal((await runIngestor(d)).outcome, "success");
  assert.equal(gh.requestsTo(REPO).length, 1);

  clock += 60_000; // the configured 60 s passed, GitHub's 120 s did not
  const early = await runIngestor(d);
  assert.equal(early.outcome, "idle");
  assert.equal(early.result!.polls[0].outcome, "skipped_interval");
  assert.equal(gh.requestsTo(REPO).length, 1, "no request");

  clock += 61_000;
  const due = await runIngestor(d);
  assert.equal(due.result!.polls[0].outcome, "not_modified");
  assert.equal(gh.requestsTo(REPO).length, 2);

  // A manual run does not wait for the interval.
  assert.equal((await runIngestor(d, { force: true })).result!.polls[0].status, 304);
  assert.equal(gh.requestsTo(REPO).length, 3);
});

dbTest(
  "[github] a 403 with x-ratelimit-remaining: 0 stops every request until the reset",
  async () => {
    await reset();
    gh.feed(REPO, timeline(["11", "12"]));
    const resetAt = Math.floor(clock / 1000) + 1800;
    gh.script(REPO, {
      status: 403,
      headers: {
        "x-ratelimit-limit": "60",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": String(resetAt),
      },
      body: { message: "API rate limit exceeded for 127.0.0.1." },
    });
    const d = deps();
    const limited = await runIngestor(d, { force: true });
    assert.equal(limited.outcome, "failure");
    assert.equal(limited.result!.polls[0].outcome, "rate_limited");
    assert.match(limited.error!, /rate limited/);
    const state = readIngestorState((await control()).state);
    assert.equal(state.rate_limit.remaining, 0);
    assert.equal(state.rate_limit.blocked_until, new Date(resetAt * 1000).toISOString());
    assert.equal((await d.metrics.githubRateLimitRemaining.get()).values[0].value, 0);
    const polls = (await d.metrics.githubPolls.get()).values;
    assert.deepEqual(polls.map((v) => v.labels), [{ outcome: "rate_limited", status: "403" }]);
    assert.equal(gh.requestsTo(REPO).length, 1);

    // Neither the cron nor a manual run asks again before the reset.
    for (const step of [60_000, 600_000, 1_000_000]) {
      clock += step;
      const run = await runIngestor(d, { force: step > 60_000 });
      assert.equal(run.outcome, "idle");
      assert.equal(run.result!.polls[0].outcome, "skipped_rate_limit");
    }
    assert.equal(gh.requestsTo(REPO).length, 1, "no request before the reset");
    // The failure stays on record while waiting.
    assert.equal((await control()).consecutive_failures, 1);

    clock = resetAt * 1000 + 1000;
    const after = await runIngestor(d);
    assert.equal(after.outcome, "success");
    assert.equal(after.result!.new, 2);
    assert.equal(gh.requestsTo(REPO).length, 2);
    assert.equal((await control()).consecutive_failures, 0);
  },
);

dbTest("[github] Retry-After (429) also blocks requests for that long", async () => {
  await reset();
  gh.feed(REPO, timeline(["21"]));
  gh.script(REPO, { status: 429, headers: { "retry-after": "120" }, body: { message: "slow" } });
  const d = deps();
  assert.equal((await runIngestor(d, { force: true })).result!.polls[0].outcome, "rate_limited");
  clock += 119_000;
  assert.equal((await runIngestor(d, { force: true })).outcome, "idle");
  assert.equal(gh.requestsTo(REPO).length, 1);
  clock += 2_000;
  assert.equal((await runIngestor(d, { force: true })).outcome, "success");
  assert.equal(gh.requestsTo(REPO).length, 2);
});

dbTest(
  "[github] 500, timeout and malformed JSON are recorded; health 503 until a good poll",
  async () => {
    await reset();
    gh.feed(REPO, timeline(["31", "33", "32"]));
    gh.script(
      REPO,
      { status: 500, body: { message: "Server Error" } },
      { status: 200, delayMs: 2500, body: [] }, // GITHUB_TIMEOUT_S is 1
      { status: 200, raw: '[{"id": "34", "type": ' },
    );
    const d = deps();
    const app = buildApp({ sql: db.sql, config: d.config, metrics: d.metrics });
    const health = async () => {
      const res = await app.request("/control/ingestor-health");
      return { status: res.status, body: await res.json() };
    };

    const expected = [/HTTP 500/, /no answer within 1s/, /malformed/];
    for (let i = 0; i < expected.length; i++) {
      const run = await runIngestor(d, { force: true });
      assert.equal(run.outcome, "failure");
      assert.match(run.error!, expected[i]);
      const row = await control();
      assert.equal(row.consecutive_failures, i + 1);
      assert.match(row.last_error, expected[i]);
      assert.match(row.last_error, /^repo:octo\/hello: /, "names the source");
      const h = await health();
      assert.equal(h.status, 503);
      assert.equal(h.body.running, false);
      assert.match(h.body.reason, /^failing: /);
    }
    assert.equal((await storedIds()).length, 0);
    const timeoutPolls = await d.metrics.githubPolls.get();
    const outcomes = timeoutPolls.values.map((v) => v.labels.outcome);
    assert.ok(outcomes.includes("timeout") && outcomes.includes("error"));

    const good = await runIngestor(d, { force: true });
    assert.equal(good.outcome, "success");
    const row = await control();
    assert.equal(row.consecutive_failures, 0);
    assert.equal(row.last_error, null);
    assert.equal((await storedIds()).length, 3);
    const h = await health();
    assert.equal(h.status, 200);
    assert.equal(h.body.running, true);
  },
);

dbTest("[github] a failure half-way through the pages keeps the old ETag and cursor", async () => {
  await reset();
  gh.pageSize = 2;
  const known = timeline(["41", "43", "42", "44"]);
  gh.feed(REPO, known);
  const d = deps();
  await runIngestor(d);
  const before = readIngestorState((await control()).state).sources["repo:octo/hello"];

  const fresh = timeline(["52", "51", "54", "53"], 1);
  gh.feed(REPO, [...fresh, ...known]);
  gh.script(
    REPO,
    {
      status: 200,
      headers: { link: `<${gh.url}${REPO}?per_page=2&page=2>; rel="next"`, etag: 'W/"p1"' },
      body: fresh.slice(0, 2),
    }, // page 1 answered …
    { status: 502, body: { message: "Bad Gateway" } }, // … page 2 fails
  );
  clock += 61_000;
  const broken = await runIngestor(d);
  assert.equal(broken.outcome, "failure");
  assert.equal(broken.result!.new, 2, "page 1's events are kept");
  const mid = readIngestorState((await control()).state).sources["repo:octo/hello"];
  assert.equal(mid.etag, before.etag);
  assert.equal(mid.cursor, before.cursor);

  // The next poll pages down again, past the duplicates, to the old cursor.
  clock += 61_000;
  const again = await runIngestor(d);
  assert.equal(again.outcome, "success");
  assert.equal(again.result!.new, 2);
  assert.equal(again.result!.duplicates, 4, "page 1 again, and page 3 at the cursor");
  assert.equal(again.result!.polls[0].pages, 3);
  assert.equal((await storedIds()).length, 8);
});

dbTest("[github] a restart resumes from the stored ETag and cursor", async () => {
  await reset();
  gh.pageSize = 3;
  const known = timeline(["61", "63", "62", "65", "64"]);
  gh.feed(REPO, known);
  const a = createDb(db.url, { max: 3 });
  try {
    assert.equal((await runIngestor(deps({}, a))).result!.new, 5);
  } finally {
    await a.end();
  }
  const etag = readIngestorState((await control()).state).sources["repo:octo/hello"].etag;

  // A new process: new pool, new metrics, nothing in memory.
  const b = createDb(db.url, { max: 3 });
  try {
    clock += 61_000;
    const resumed = await runIngestor(deps({}, b));
    assert.equal(resumed.result!.polls[0].outcome, "not_modified");
    assert.equal(gh.requestsTo(REPO).at(-1)!.headers.get("if-none-match"), etag);

    gh.feed(REPO, [...timeline(["67", "66"], 1), ...known]);
    clock += 61_000;
    const before = gh.requestsTo(REPO).length;
    const more = await runIngestor(deps({}, b));
    assert.equal(more.result!.new, 2);
    assert.equal(gh.requestsTo(REPO).length - before, 1, "stopped at the stored cursor");
  } finally {
    await b.end();
  }
  assert.equal((await storedIds()).length, 7);
});

dbTest(
  "[github] mapping: service, type, time, status, latency, attributes; any payload",
  async () => {
    await reset();
    const fixture = JSON.parse(
      await Deno.readTextFile(new URL("./fixtures/github/event-shapes.json", import.meta.url)),
    );
    const shapes: GhEvent[] = fixture.events.map((e: GhEvent, i: number) => ({
      ...e,
      created_at: new Date(Date.now() - (i + 1) * 60_000).toISOString(),
    }));
    const tooOld = ghEvent("48100000000", { at: new Date(Date.now() - 8 * 86_400_000) });
    gh.feed("/orgs/octo-org/events", [...shapes, tooOld]);
    gh.feed("/events", [ghEvent("48300000001", { repo: "someone/else", type: "ForkEvent" })]);
    const d = deps({ GITHUB_SOURCE: "org:octo-org,public", RETENTION_DAYS: "7" });

    const run = await runIngestor(d);
    assert.equal(run.outcome, "success", run.error ?? "");
    const [org, pub] = run.result!.polls;
    assert.equal(org.new, shapes.length, "every payload shape accepted");
    assert.equal(org.too_old, 1, "older than retention: skipped and counted, not an error");
    assert.equal(pub.new, 1);

    const rows = await db.sql`
    select s.name as service, e.event_type, e."timestamp", e.status_code, e.latency_ms,
           e.message, e.attributes
    from log_events e join services s on s.id = e.service_id`;
    const byId = new Map(rows.map((r) => [r.attributes.github_id, r]));
    const push = byId.get("48200000015")!;
    assert.equal(push.service, "octo-org/api", "org stream: one service per repository");
    assert.equal(push.event_type, "PushEvent");
    assert.equal(push.status_code, 200);
    assert.ok(push.latency_ms >= 0);
    assert.equal(new Date(push.timestamp).toISOString(), shapes[1].created_at);
    assert.deepEqual(push.attributes, {
      github_id: "48200000015",
      repo: "octo-org/api",
      actor: "bob",
      org: "octo-org",
    });
    const pr = byId.get("48200000011")!;
    assert.equal(pr.attributes.action, "opened");
    assert.equal(pr.service, "octo-org/web");
    assert.match(pr.message, /PullRequestEvent opened on octo-org\/web by carol/);
    const issue = byId.get("48200000014")!; // no org, an actor id beyond 2^53
    assert.deepEqual(issue.attributes, {
      github_id: "48200000014",
      repo: "octo-org/web",
      actor: "dave",
      action: "closed",
    });
    assert.equal(byId.get("48200000009")!.attributes.actor, "erin", "display_login fallback");
    assert.equal(byId.get("48300000001")!.service, "github", "public stream: GITHUB_SERVICE");
    assert.ok(!byId.has("48100000000"));

    // Rollups written in the same transaction agree with the rows.
    const [sums] = await db.sql`
    select (select sum(count)::int from log_rollup_1m) as m,
           (select sum(count)::int from log_rollup_1d) as d,
           (select count(*)::int from log_events) as n`;
    assert.equal(sums.m, sums.n);
    assert.equal(sums.d, sums.n);
    const ingested = await d.metrics.eventsIngested.get();
    assert.equal(ingested.values.find((v) => v.labels.source === "github")!.value, rows.length);
  },
);

dbTest("[github] concurrent stores of overlapping events keep each exactly once", async () => {
  await reset();
  const config = deps().config;
  const toRow = (id: string) => {
    const m = toLogEvent(ghEvent(id), {
      source: { key: "public", kind: "public", path: "/events" },
      config,
      statusCode: 200,
      latencyMs: 12,
      now: new Date(),
    });
    assert.ok("row" in m);
    return m.row;
  };
  const ids = Array.from({ length: 40 }, (_, i) => String(5_000_000 + i * 7919 % 1000));
  const pools = [createDb(db.url, { max: 2 }), createDb(db.url, { max: 2 })];
  try {
    // Overlapping, differently ordered batches from two "instances" at once.
    const results = await Promise.all([
      storeGitHubEvents(pools[0], ids.slice(0, 30).map(toRow)),
      storeGitHubEvents(pools[1], ids.slice(10).reverse().map(toRow)),
      storeGitHubEvents(pools[0], ids.slice(5, 35).map(toRow)),
    ]);
    const inserted = results.reduce((n, r) => n + r.inserted, 0);
    assert.equal(inserted, new Set(ids).size);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
  const stored = await storedIds();
  assert.equal(stored.length, new Set(ids).size);
  assert.equal(new Set(stored).size, stored.length);
});

dbTest("[github] a missing partition for an event's day is created on demand", async () => {
  await reset();
  // Tomorrow (UTC), within the day ahead GitHub's clock may run: its partition is empty.
  const tomorrow = new Date(Date.now() + 86_400_000);
  const day = new Date(`${tomorrow.toISOString().slice(0, 10)}T00:00:01Z`);
  const name = `log_events_p${day.toISOString().slice(0, 10).replaceAll("-", "")}`;
  await db.sql`drop table if exists ${db.sql(name)}`;
  gh.feed(REPO, [ghEvent("49000000002", { at: day }), ...timeline(["49000000001"])]);
  const run = await runIngestor(deps());
  assert.equal(run.outcome, "success", run.error ?? "");
  assert.equal(run.result!.new, 2);
  const [r] = await db.sql`select to_regclass(${name}) is not null as present`;
  assert.equal(r.present, true);
  assert.deepEqual(await storedIds(), ["49000000001", "49000000002"]);
  const [seen] = await db.sql`select count(*)::int as n from github_seen_events`;
  assert.equal(seen.n, 2);
});

dbTest("[github] requests carry the token, a user agent and JSON accept", async () => {
  await reset();
  gh.feed(REPO, timeline(["59000000001"]));
  const run = await runIngestor(deps({ GITHUB_TOKEN: "ghp_test123" }));
  assert.equal(run.outcome, "success", run.error ?? "");
  const [req] = gh.requestsTo(REPO);
  assert.equal(req.method, "GET");
  assert.equal(req.headers.get("authorization"), "Bearer ghp_test123");
  assert.match(req.headers.get("user-agent") ?? "", /^observian\//);
  assert.match(req.headers.get("accept") ?? "", /application\/vnd\.github/);
});

dbTest("[github] rel=next is followed only on GitHub's own origin", () => {
  const base = "https://api.github.com";
  assert.equal(
    nextLink('<https://api.github.com/events?page=2>; rel="next", <x>; rel="last"', base),
    "https://api.github.com/events?page=2&per_page=100",
  );
  assert.equal(nextLink('<https://evil.example/events?page=2>; rel="next"', base), null);
  assert.equal(nextLink('<https://api.github.com/events?page=1>; rel="prev"', base), null);
  assert.equal(nextLink(undefined, base), null);
  return Promise.resolve();
});

dbTest("[x] teardown", async () => {
  await gh.close();
  await db.drop();
});
