// The job runner: advisory lock across instances, the switch, the run record, metrics; and
// the cron arithmetic behind next_run_at.
import assert from "node:assert/strict";
import { createDb } from "../src/db/connect.ts";
import { runIngestor } from "../src/jobs/github/job.ts";
import { type JobDeps, runJob } from "../src/jobs/runner.ts";
import { createMetrics, type Metrics } from "../src/metrics/registry.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { FakeGitHub, ghEvent } from "./helpers/fake-github.ts";

const db = await preparedDatabase();

function deps(sql = db.sql, env: Record<string, string> = {}): JobDeps {
  return {
    sql,
    config: testConfig(env),
    metrics: createMetrics({ processMetrics: false }),
  };
}

async function control(job: string) {
  const [row] = await db.sql`select * from job_control where job = ${job}`;
  return row;
}

async function runs(metrics: Metrics, job: string, outcome: string): Promise<number> {
  const m = await metrics.jobRuns.get();
  return m.values.find((v) => v.labels.observian_job === job && v.labels.outcome === outcome)
    ?.value ?? 0;
}

dbTest("[jobs] a run records start, finish, success, state and metrics", async () => {
  const d = deps();
  const run = await runJob(
    d,
    "pruner",
    () =>
      Promise.resolve({
        outcome: "success" as const,
        state: { last_result: { n: 1 } },
        result: 42,
      }),
  );
  assert.equal(run.outcome, "success");
  assert.equal(run.result, 42);
  const row = await control("pruner");
  assert.ok(row.last_started_at && row.last_finished_at && row.last_success_at);
  assert.ok(row.last_finished_at >= row.last_started_at);
  assert.equal(row.last_error, null);
  assert.equal(row.consecutive_failures, 0);
  assert.deepEqual(row.state, { last_result: { n: 1 } });
  assert.equal(await runs(d.metrics, "pruner", "success"), 1);
  const duration = await d.metrics.jobDuration.get();
  assert.equal(duration.values.find((v) => v.metricName?.endsWith("_count"))?.value, 1);
  const last = await d.metrics.jobLastSuccess.get();
  assert.ok(last.values[0].value > 0);
});

dbTest("[jobs] failures are recorded and counted; a success clears them", async () => {
  const d = deps();
  const fail = await runJob(d, "pruner", () => Promise.reject(new Error("disk on fire")));
  assert.equal(fail.outcome, "failure");
  assert.equal(fail.error, "disk on fire");
  await runJob(
    d,
    "pruner",
    () => Promise.resolve({ outcome: "failure" as const, error: "still on fire", result: null }),
  );
  let row = await control("pruner");
  assert.equal(row.consecutive_failures, 2);
  assert.equal(row.last_error, "still on fire");
  const successAt = row.last_success_at;

  // An idle run (nothing was due) neither clears nor adds to the record.
  await runJob(d, "pruner", () => Promise.resolve({ outcome: "idle" as const, result: null }));
  row = await control("pruner");
  assert.equal(row.consecutive_failures, 2);
  assert.deepEqual(row.last_success_at, successAt);

  await runJob(d, "pruner", () => Promise.resolve({ outcome: "success" as const, result: null }));
  row = await control("pruner");
  assert.equal(row.consecutive_failures, 0);
  assert.equal(row.last_error, null);
  assert.equal(await runs(d.metrics, "pruner", "failure"), 2);
});

dbTest("[jobs] a switched-off job is skipped without running or touching its record", async () => {
  await db.sql`update job_control set enabled = false where job = 'pruner'`;
  try {
    const before = await control("pruner");
    const d = deps();
    let ran = false;
    const run = await runJob(d, "pruner", () => {
      ran = true;
      return Promise.resolve({ outcome: "success" as const, result: null });
    });
    assert.equal(run.outcome, "skipped_disabled");
    assert.equal(ran, false);
    assert.deepEqual((await control("pruner")).last_started_at, before.last_started_at);
    assert.equal(await runs(d.metrics, "pruner", "skipped_disabled"), 1);
  } finally {
    await db.sql`update job_control set enabled = true where job = 'pruner'`;
  }
});

dbTest(
  "[jobs] a run never overlaps itself, across instances; the lock is freed after",
  async () => {
    const a = createDb(db.url, { max: 2 });
    const b = createDb(db.url, { max: 2 });
    try {
      const started = Promise.withResolvers<void>();
      const gate = Promise.withResolvers<void>();
      const first = runJob(deps(a), "pruner", async () => {
        started.resolve();
        await gate.promise;
        return { outcome: "success" as const, result: "a" };
      });
      await started.promise;
      // Instance B ticks while A runs: skipped, its work never starts.
      const second = await runJob(deps(b), "pruner", () => {
        throw new Error("must not run");
      });
      assert.equal(second.outcome, "skipped_locked");
      // The other job has its own lock.
      const other = await runJob(
        deps(b),
        "ingestor",
        () => Promise.resolve({ outcome: "idle" as const, result: null }),
      );
      assert.notEqual(other.outcome, "skipped_locked");
      gate.resolve();
      assert.equal((await first).outcome, "success");

      // Released after a run, and after a run whose work threw.
      const thrown = await runJob(deps(b), "pruner", () => Promise.reject(new Error("boom")));
      assert.equal(thrown.outcome, "failure");
      const again = await runJob(
        deps(a),
        "pruner",
        () => Promise.resolve({ outcome: "success" as const, result: null }),
      );
      assert.equal(again.outcome, "success");
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  },
);

dbTest("[jobs] a cron tick on two instances at once polls GitHub once", async () => {
  const gh = FakeGitHub.start();
  const a = createDb(db.url, { max: 3 });
  const b = createDb(db.url, { max: 3 });
  try {
    await db.sql`update job_control set enabled = true, state = '{}' where job = 'ingestor'`;
    const path = "/repos/octo/tick/events";
    const events = [ghEvent("701"), ghEvent("703"), ghEvent("702")];
    const held = FakeGitHub.hold();
    gh.script(path, {
      status: 200,
      body: events,
      headers: { etag: 'W/"t1"', "x-poll-interval": "60" },
      waitFor: held.promise,
    });
    const env = { GITHUB_API_URL: gh.url, GITHUB_SOURCE: "repo:octo/tick" };
    const arrived = gh.nextRequest();
    const tickA = runIngestor(deps(a, env));
    await arrived; // A holds the lock and waits for GitHub
    const tickB = await runIngestor(deps(b, env));
    held.release();
    const tickAResult = await tickA;
    assert.equal(tickAResult.outcome, "success");
    assert.equal(tickB.outcome, "skipped_locked");
    assert.equal(gh.requestsTo(path).length, 1);

    // B's next tick right after sees A's poll in the shared state: not due yet.
    const later = await runIngestor(deps(b, env));
    assert.equal(later.outcome, "idle");
    assert.equal(gh.requestsTo(path).length, 1);
    const [n] = await db.sql`
      select count(*)::int as n from log_events where attributes->>'github_id' in ('701','702','703')`;
    assert.equal(n.n, 3);
  } finally {
    await db.sql`update job_control set enabled = false where job = 'ingestor'`;
    await Promise.all([a.end(), b.end()]);
    await gh.close();
  }
});

dbTest("[x] teardown", () => db.drop());
