// The process and its embedded PostgreSQL, with real processes: the postmaster dying under a
// running server, SIGTERM in bad states, Deno SIGKILLed, two Observians on one data directory.
// Each test has a data directory of its own and leaves no process behind.
import assert from "node:assert/strict";
import postgres from "postgres";
import { spawnServer } from "../scripts/lib/server.ts";
import { surviveLostDbSockets } from "../src/db/connect.ts";
import { startEmbeddedPostgres } from "../src/db/embedded.ts";
import { childrenOf, isPostgresOf, postgresProcessesOf, ppid } from "./helpers/processes.ts";
import { eventually } from "./helpers/wait.ts";

// The lock-holding connection of the SIGTERM step is cut by PostgreSQL's shutdown.
surviveLostDbSockets();

const SHUTDOWN_TIMEOUT_S = 1;
/** What main promises (SHUTDOWN_TIMEOUT_S + its 10 s backstop), plus room for a slow machine. */
const EXIT_BOUND_MS = (SHUTDOWN_TIMEOUT_S + 10 + 5) * 1000;

interface Server {
  port: number;
  child: Deno.ChildProcess;
  output: () => string;
  /** JSON log lines so far. */
  lines: () => { level: string; msg: string; [k: string]: unknown }[];
}

function spawnMain(env: Record<string, string>): Server {
  const s = spawnServer({
    env: { DATABASE_URL: "", SHUTDOWN_TIMEOUT_S: String(SHUTDOWN_TIMEOUT_S), ...env },
  });
  return {
    port: s.port,
    child: s.child,
    output: () => s.output(),
    lines: () =>
      s.output().split("\n").filter((l) => l.startsWith("{")).map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return { level: "?", msg: l };
        }
      }),
  };
}

async function startServer(env: Record<string, string>): Promise<Server> {
  const s = spawnMain(env);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if ((await exitedWithin(s, 0)) !== undefined) break;
    if ((await ready(s)) === 200) return s;
    await sleep(100);
  }
  if ((await exitedWithin(s, 0)) === undefined) s.child.kill("SIGKILL");
  throw new Error(`server did not become ready:\n${s.output()}`);
}

async function ready(s: Server): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${s.port}/health/ready`, {
      signal: AbortSignal.timeout(5_000),
    });
    await res.body?.cancel();
    return res.status;
  } catch {
    return undefined;
  }
}

/** The exit status, or undefined when the process is still running after `ms`. */
async function exitedWithin(s: Server, ms: number): Promise<Deno.CommandStatus | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      s.child.status,
      new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends SIGTERM and asserts the process exits within main's bound; its status. */
async function terminate(s: Server, why: string): Promise<Deno.CommandStatus> {
  const began = Date.now();
  s.child.kill("SIGTERM");
  const status = await exitedWithin(s, EXIT_BOUND_MS);
  if (!status) {
    s.child.kill("SIGKILL");
    assert.fail(`${why}: no exit ${EXIT_BOUND_MS} ms after SIGTERM\n${s.output()}`);
  }
  const last = s.lines().findLast((l) => /^stopped/.test(l.msg))?.msg ?? "no stop line";
  console.log(
    `  ${why}: exited ${Date.now() - began} ms after SIGTERM, code ${status.code}: ${last}`,
  );
  return status;
}

function postmasterPid(pgDir: string): number {
  return Number(Deno.readTextFileSync(`${pgDir}/postmaster.pid`).split("\n")[0]);
}

const waitFor = (what: string, cond: () => boolean | Promise<boolean>, ms = 20_000) =>
  eventually(what, cond, ms, 50);

/** No PostgreSQL process of the cluster remains (a SIGKILLed postmaster's backends need a moment). */
async function assertNoPostgres(pgDir: string, why: string) {
  await waitFor(
    `${why}: no PostgreSQL left on ${pgDir}`,
    async () => (await postgresProcessesOf(pgDir)).length === 0,
    3_000,
  );
}

/** Leaves nothing running, whatever a failed step left. */
async function cleanUp(servers: Server[], pgDir: string) {
  for (const s of servers) {
    if ((await exitedWithin(s, 0)) === undefined) {
      s.child.kill("SIGKILL");
      await s.child.status;
    }
  }
  for (const pid of await postgresProcessesOf(pgDir)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
  await assertNoPostgres(pgDir, "clean-up");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function postEvent(s: Server): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${s.port}/logs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ service_name: "lifecycle", status_code: 200, latency_ms: 1 }),
    signal: AbortSignal.timeout(15_000),
  });
  await res.body?.cancel();
  return res.status;
}

let template: Promise<string> | undefined;

/** A stopped cluster that the tests copy: one initdb per file, not one per test. */
function clusterTemplate(): Promise<string> {
  template ??= (async () => {
    const root = await Deno.makeTempDir({ prefix: "observian-lifecycle-template-" });
    globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));
    await Deno.chmod(root, 0o755);
    const pg = await startEmbeddedPostgres({ dataDir: `${root}/data` });
    await pg.stop();
    return `${root}/data`;
  })();
  return template;
}

/** A test with its own data directory, which leaves no process and no file behind. */
function lifecycleTest(
  name: string,
  fn: (
    ctx: {
      env: Record<string, string>;
      dataDir: string;
      pgDir: string;
      track: (s: Server) => Server;
    },
  ) => Promise<void>,
) {
  Deno.test({
    name: `[lifecycle] ${name}`,
    ignore: Deno.build.os !== "linux", // reads /proc to find processes
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const root = await Deno.makeTempDir({ prefix: "observian-lifecycle-" });
      await Deno.chmod(root, 0o755); // as root, PostgreSQL runs as `postgres` and must enter it
      const dataDir = `${root}/data`;
      const pgDir = `${dataDir}/pg`;
      const servers: Server[] = [];
      try {
        const copy = await new Deno.Command("cp", {
          args: ["-a", await clusterTemplate(), dataDir],
        })
          .output();
        assert.ok(copy.success, new TextDecoder().decode(copy.stderr));
        await fn({
          env: { OBSERVIAN_DATA_DIR: dataDir },
          dataDir,
          pgDir,
          track: (s) => (servers.push(s), s),
        });
      } finally {
        await cleanUp(servers, pgDir);
        await Deno.remove(root, { recursive: true }).catch(() => {});
      }
    },
  });
}

lifecycleTest(
  "the postmaster SIGKILLed: logged, 503 while down, restarted, ingest recovers; SIGTERM then ends in bound",
  async ({ env, pgDir, track }) => {
    const s = track(await startServer(env));
    const first = postmasterPid(pgDir);
    assert.ok(await isPostgresOf(first, pgDir));

    Deno.kill(first, "SIGKILL");
    // Readiness knows the postmaster is down without waiting for a ping to fail.
    await waitFor("/health/ready 503, embedded not running, while PostgreSQL is down", async () => {
      const res = await fetch(`http://127.0.0.1:${s.port}/health/ready`, {
        signal: AbortSignal.timeout(5_000),
      }).catch(() => undefined);
      const body = await res?.json().catch(() => undefined);
      return res?.status === 503 && body?.database?.embedded?.running === false;
    });
    await waitFor(
      "/health/ready 200 after the restart",
      async () => (await ready(s)) === 200,
    );
    const died = s.lines().find((l) => l.level === "error" && /exited unexpectedly/.test(l.msg));
    assert.ok(died, s.output());
    assert.ok(
      s.lines().some((l) => /restarted \(pid \d+\)/.test(l.msg)),
      s.output(),
    );
    const restarted = postmasterPid(pgDir);
    assert.notEqual(restarted, first);
    assert.ok(!(await isPostgresOf(first, pgDir)));
    assert.equal(await postEvent(s), 201, s.output());
    const metrics = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
    assert.match(metrics, /^observian_embedded_postgres_restarts_total 1$/m);
    assert.match(metrics, /^observian_embedded_postgres_up 1$/m);

    // SIGTERM right after the postmaster died again (a restart pending): still bounded.
    const before = s.lines().length;
    Deno.kill(restarted, "SIGKILL");
    await waitFor(
      "the second death noticed",
      () => s.lines().slice(before).some((l) => /exited unexpectedly/.test(l.msg)),
    );
    await terminate(s, "SIGTERM with the postmaster dead");
    assert.ok(s.lines().some((l) => /^stopped/.test(l.msg)), s.output());
    await assertNoPostgres(pgDir, "after SIGTERM with the postmaster dead");
  },
);

lifecycleTest(
  "SIGTERM while a commit is held in the database: bounded, nothing left",
  async ({ env, dataDir, pgDir, track }) => {
    const s = track(await startServer(env));
    const password = Deno.readTextFileSync(`${dataDir}/password`).trim();
    const port = Deno.readTextFileSync(`${pgDir}/postmaster.pid`).split("\n")[3];
    const sql = postgres(
      `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
      { max: 2, onnotice: () => {} },
    );
    const locker = await sql.reserve();
    await locker`begin`;
    await locker`lock table log_rollup_pending in exclusive mode`;
    const held = postEvent(s).catch(() => "no answer");
    await waitFor("the commit waits for the lock", async () => {
      const [r] = await sql`select count(*)::int as n from pg_stat_activity
              where wait_event_type = 'Lock' and application_name = 'observian'`;
      return r.n > 0;
    });
    const status = await terminate(s, "SIGTERM with a commit held");
    assert.equal(status.code, 1, "something was abandoned, so not a clean exit");
    assert.ok(
      s.lines().some((l) => l.level === "warning" && /cut short/.test(l.msg)),
      s.output(),
    );
    await held;
    // postgres.js end() can hang after its server went away (porsager/postgres#1142).
    void sql.end({ timeout: 0 }).catch(() => {});
    await assertNoPostgres(pgDir, "after SIGTERM with a commit held");
  },
);

lifecycleTest(
  "a second start on a live data dir refuses; Deno SIGKILLed: PostgreSQL follows, next start recovers",
  async ({ env, pgDir, track }) => {
    // The watchdog stops PostgreSQL when Deno dies.
    const a = track(await startServer(env));
    const pmA = postmasterPid(pgDir);

    // A second Observian on the same data directory refuses, in one line, and leaves the
    // first one's PostgreSQL alone.
    const second = spawnMain(env);
    const refused = await exitedWithin(second, 30_000);
    if (!refused) second.child.kill("SIGKILL");
    assert.equal(refused?.code, 1, second.output());
    const text = second.output().trim().split("\n");
    assert.equal(text.length, 1, second.output());
    assert.match(
      JSON.parse(text[0]).msg,
      /in use by another running Observian \(pid \d+\)/,
    );
    assert.ok(await isPostgresOf(pmA, pgDir), "the first server's PostgreSQL still runs");
    assert.equal(await ready(a), 200);

    a.child.kill("SIGKILL");
    await a.child.status;
    await waitFor(
      "the watchdog stops PostgreSQL",
      async () => !(await isPostgresOf(pmA, pgDir)),
    );
    await assertNoPostgres(pgDir, "after Deno was SIGKILLed");

    // The watchdog killed with Deno (as by an OOM killer taking the whole group): the
    // postmaster is orphaned, and the next start stops it first.
    const b = track(await startServer(env));
    const pmB = postmasterPid(pgDir);
    const watchdog = ppid(pmB);
    for (const pid of [...childrenOf(watchdog).filter((p) => p !== pmB), watchdog]) {
      Deno.kill(pid, "SIGKILL");
    }
    b.child.kill("SIGKILL");
    await b.child.status;
    await sleep(200);
    assert.ok(await isPostgresOf(pmB, pgDir), "precondition: an orphaned postmaster");
    const c = track(await startServer(env));
    assert.ok(
      c.lines().some((l) => /left running by an earlier Observian/.test(l.msg)),
      c.output(),
    );
    assert.ok(!(await isPostgresOf(pmB, pgDir)));
    assert.equal(await postEvent(c), 201);
    assert.equal((await terminate(c, "SIGTERM after adopting the data dir")).code, 0);

    // A postmaster.pid naming a live process that is not our PostgreSQL (a pid reused after
    // a container restart) is stale. PostgreSQL itself takes a live pid of its own user for a
    // running postmaster, so the stand-in runs as that user.
    const { uid, gid } = Deno.statSync(pgDir);
    const standIn = new Deno.Command("sleep", {
      args: ["60"],
      ...(Deno.uid() === 0 ? { uid: uid!, gid: gid! } : {}),
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await Deno.writeTextFile(`${pgDir}/postmaster.pid`, `${standIn.pid}\n${pgDir}\n`);
      const d = track(await startServer(env));
      assert.ok(d.lines().some((l) => /removing stale/.test(l.msg)), d.output());
      assert.equal((await terminate(d, "SIGTERM after a stale pid file")).code, 0);
    } finally {
      standIn.kill("SIGKILL");
      await standIn.status;
    }
    await assertNoPostgres(pgDir, "after the last stop");
  },
);
