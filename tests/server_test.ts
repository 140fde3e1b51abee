// The real process over real HTTP: start-up, readiness, graceful shutdown, data reuse.
import assert from "node:assert/strict";
import { spawnServer, startServer as startMain } from "../scripts/lib/server.ts";
import { freePort } from "../src/db/embedded.ts";
import { dbTest, emptyDatabase } from "./helpers/db.ts";
import { eventually } from "./helpers/wait.ts";

interface Running {
  port: number;
  child: Deno.ChildProcess;
  output: () => string;
}

function startServer(env: Record<string, string>): Promise<Running> {
  return startMain({ env });
}

/** Runs main with `env` until it exits (start-up failures); its code and all it printed. */
async function runToExit(env: Record<string, string>): Promise<{ code: number; text: string }> {
  const s = spawnServer({ env });
  const { code } = await s.finished();
  return { code, text: s.output() };
}

const waitFor = (cond: () => boolean, ms = 20_000) => eventually("the condition", cond, ms, 20);

dbTest("[server] starts on DATABASE_URL, serves, and drains on SIGTERM", async () => {
  const db = await emptyDatabase();
  try {
    const s = await startServer({ DATABASE_URL: db.url, OBSERVIAN_DATA_DIR: "/nonexistent/x" });
    const res = await fetch(`http://127.0.0.1:${s.port}/health`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    // A request under way when the signal arrives still gets its answer: its commit is held
    // back by a table lock until the server has begun draining.
    const locker = await db.sql.reserve();
    await locker`begin`;
    await locker`lock table log_rollup_pending in exclusive mode`;
    const inFlight = fetch(`http://127.0.0.1:${s.port}/logs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service_name: "drain-test", status_code: 200, latency_ms: 1 }),
    });
    const waiting = async () => {
      const [r] = await db.sql`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`;
      return r.n > 0;
    };
    while (!(await waiting())) await new Promise((r) => setTimeout(r, 20));
    s.child.kill("SIGTERM");
    await waitFor(() => s.output().includes("draining requests"));
    await locker`commit`;
    locker.release();
    const late = await inFlight;
    assert.equal(late.status, 201, s.output());
    const { id } = await late.json();
    const [row] = await db.sql`select count(*)::int as n from log_events where id = ${id}`;
    assert.equal(row.n, 1, "the drained request's event was committed");
    const status = await s.child.status;
    assert.equal(status.code, 0, s.output());
    const lines = s.output().trim().split("\n").map((l) => JSON.parse(l));
    assert.ok(lines.some((l) => l.logger === "observian.http.access" && l.route === "/health"));
    assert.ok(lines.some((l) => l.msg === "stopped"));
    const password = new URL(db.url).password;
    if (password) assert.ok(!s.output().includes(password), "no password in logs");
    // With DATABASE_URL nothing was written locally.
    await assert.rejects(() => Deno.stat("/nonexistent/x"));
  } finally {
    await db.drop();
  }
});

dbTest("[server] with DB_POOL_MAX=1, ingest and reads share the one connection", async () => {
  const db = await emptyDatabase();
  try {
    const s = await startServer({ DATABASE_URL: db.url, DB_POOL_MAX: "1" });
    try {
      const base = `http://127.0.0.1:${s.port}`;
      const posts = Array.from({ length: 60 }, (_, i) =>
        fetch(`${base}/logs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ service_name: "pool-of-one", status_code: 200, latency_ms: i }),
        }).then(async (r) => (await r.body?.cancel(), r.status)));
      const read = fetch(`${base}/logs?service_name=pool-of-one`).then(async (r) => {
        await r.body?.cancel();
        return r.status;
      });
      assert.deepEqual(new Set(await Promise.all(posts)), new Set([201]));
      assert.equal(await read, 200);
      const [sessions] = await db.sql`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and application_name = 'observian'
          and pid <> pg_backend_pid()`;
      assert.equal(sessions.n, 1, "no connection beyond DB_POOL_MAX");
    } finally {
      s.child.kill("SIGTERM");
      await s.child.status;
    }
  } finally {
    await db.drop();
  }
});

dbTest(
  "[server] with no DATABASE_URL it runs an embedded PostgreSQL and reuses its data",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "observian-embedded-" });
    await Deno.chmod(dir, 0o755);
    try {
      const env = { DATABASE_URL: "", OBSERVIAN_DATA_DIR: `${dir}/data` };
      const first = await startServer(env);
      first.child.kill("SIGINT");
      assert.equal((await first.child.status).code, 0, first.output());
      assert.match(first.output(), /new cluster/);
      await Deno.stat(`${dir}/data/pg/PG_VERSION`);

      const second = await startServer(env);
      const res = await fetch(`http://127.0.0.1:${second.port}/health/ready`);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      second.child.kill("SIGINT");
      assert.equal((await second.child.status).code, 0, second.output());
      assert.match(second.output(), /reused data/);
      assert.ok(!second.output().includes("applied migration"), "nothing to migrate the 2nd time");
      // PostgreSQL was stopped cleanly: no server process keeps the data folder.
      await assert.rejects(() => Deno.stat(`${dir}/data/pg/postmaster.pid`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

dbTest("[server] an unreachable DATABASE_URL fails start-up with one clear line", async () => {
  const port = freePort();
  const out = await runToExit({
    DATABASE_URL: `postgres://u:topsecret@127.0.0.1:${port}/db`,
    DB_CONNECT_TIMEOUT_S: "1",
  });
  const text = out.text;
  assert.equal(out.code, 1);
  const fatal = text.trim().split("\n").map((l) => JSON.parse(l)).find((l) => l.level === "fatal");
  assert.ok(fatal, text);
  assert.match(fatal.msg, new RegExp(`127\\.0\\.0\\.1:${port}/db unreachable after 1s`));
  assert.ok(!text.includes("topsecret"));
});

dbTest("[server] a port already in use stops start-up with one clear line", async () => {
  const db = await emptyDatabase();
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const out = await runToExit({
      DATABASE_URL: db.url,
      HOST: "127.0.0.1",
      PORT: String((taken.addr as Deno.NetAddr).port),
    });
    const text = out.text;
    assert.equal(out.code, 1, text);
    const lines = text.trim().split("\n").map((l) => JSON.parse(l));
    const fatal = lines.find((l) => l.level === "fatal");
    assert.match(fatal?.msg ?? "", /cannot listen on 127\.0\.0\.1:\d+/);
  } finally {
    taken.close();
    await db.drop();
  }
});
