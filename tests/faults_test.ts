// The fault suite: a real Observian process (src/main.ts) under real HTTP load while the
// database or the process fails, with the invariants checked after each fault:
// - every 201 is in the database (each request's events carry a marker of their own);
// - no request waits longer than its bound (every client request has a timeout above it);
// - once the fault clears, ingest recovers within 5 s without a restart;
// - /health/ready is 503 while the database is unreachable and 200 within 1 s of its return;
// - the process exits within its shutdown bound on SIGTERM;
// - no PostgreSQL process is left behind.
// Each test runs against the embedded PostgreSQL (main starts it in a temporary data directory)
// and, where it makes sense and OBSERVIAN_FAULT_PG_URL is set, against an external server whose
// cluster (OBSERVIAN_FAULT_PG_CLUSTER) it may restart. The tests of this one file run one after
// the other, so that no load disturbs another's (see scripts/test.ts).
import assert from "node:assert/strict";
import postgres from "postgres";
import { surviveLostDbSockets } from "../src/db/connect.ts";
import {
  checkAnswers,
  checkStored,
  describe,
  ReadinessProbe,
  waitUntilAnswers,
} from "./helpers/faults/invariants.ts";
import { Load, post, recoveryTime, type RequestRecord, send } from "./helpers/faults/load.ts";
import {
  clusterProcesses,
  ctlCluster,
  embeddedTarget,
  EXTERNAL_CLUSTER,
  EXTERNAL_URL,
  externalTarget,
  leftovers,
  postmasterPid,
  type Target,
  type TargetKind,
  withSql,
} from "./helpers/faults/pg.ts";
import { type Server, sleep, startServer } from "../scripts/lib/server.ts";

// The suite's own connections die with the faults it injects.
surviveLostDbSockets();
// postgres.js 3.4.9 can write to a socket it has just dropped when the server ends the session as
// a query goes out (connection.js nextWrite: "Cannot read properties of null (reading 'write')").
// The suite ends its own sessions on purpose; that must not end the run.
addEventListener("error", (e) => {
  const err = e.error;
  if (err instanceof TypeError && String(err.stack).includes("postgres/src/connection.js")) {
    e.preventDefault();
    console.error(`  (the suite's own database session died: ${err.message})`);
  }
});

const COMMIT_TIMEOUT_MS = 3000;
const SHUTDOWN_TIMEOUT_S = 2;
/**
 * SIGTERM: main's backstop ends it SHUTDOWN_TIMEOUT_S + 10 s after the signal whatever state it is
 * in; 2 s more for a busy machine to run that timer and tear the process down.
 */
const EXIT_BOUND_MS = (SHUTDOWN_TIMEOUT_S + 10 + 2) * 1000;
/** A POST /logs is answered within INGEST_COMMIT_TIMEOUT_MS; the rest is room for the machine. */
const POST_BOUND_MS = COMMIT_TIMEOUT_MS + 2000;
/** The client's patience: above every bound, so reaching it means a hang. */
const CLIENT_TIMEOUT_MS = POST_BOUND_MS + 5000;
const RECOVERY_MS = 5000;
const READY_WITHIN_MS = 1000;
/** After SIGKILL of main, the time its PostgreSQL may take to notice and stop. */
const ORPHAN_BOUND_MS = 15_000;
/** The longest one scenario may take before it fails as hung. */
const SCENARIO_LIMIT_MS = 120_000;

const FAULT_ENV = {
  INGEST_COMMIT_TIMEOUT_MS: String(COMMIT_TIMEOUT_MS),
  SHUTDOWN_TIMEOUT_S: String(SHUTDOWN_TIMEOUT_S),
  LOG_LEVEL: "info",
};

if (!EXTERNAL_URL) {
  console.error(
    "faults: OBSERVIAN_FAULT_PG_URL is unset: the external-database variants are skipped " +
      "(.ci/run sets it up; see README, Failure behaviour)",
  );
}

/** What one test has at hand. */
class Scenario {
  readonly problems: string[] = [];
  readonly servers: Server[] = [];
  readonly service = `fault-${crypto.randomUUID().slice(0, 8)}`;
  constructor(readonly target: Target) {}

  /** Starts main on the target with the suite's settings, then `env`. */
  async start(env: Record<string, string> = {}, defaults = FAULT_ENV): Promise<Server> {
    const server = await startServer({ env: { ...defaults, ...this.target.env, ...env } });
    this.servers.push(server);
    return server;
  }

  load(server: Server, opts: Partial<ConstructorParameters<typeof Load>[0]> = {}): Load {
    return new Load({
      base: server.base,
      service: this.service,
      workers: 32,
      maxMs: 30_000,
      timeoutMs: CLIENT_TIMEOUT_MS,
      batchEvery: 8,
      batchMax: 10,
      ...opts,
    });
  }

  check(what: string, problems: string[]): void {
    for (const p of problems) this.problems.push(`${what}: ${p}`);
  }

  /** Every acknowledged request of `records` is stored (the database must be up). */
  async checkStored(records: RequestRecord[]): Promise<void> {
    const report = await checkStored(await this.target.url(), this.service, records);
    this.check("stored", report.problems);
    console.log(
      `  ${report.acked} acknowledged requests looked up in the database (after ` +
        `${report.retries} retries); ${report.storedUnacked} stored but never acknowledged`,
    );
  }

  /** Ingest answers 201 within RECOVERY_MS of `from`. */
  async checkRecovers(server: Server, from: number, what: string): Promise<RequestRecord[]> {
    const r = await recoveryTime(server.base, this.service, from, RECOVERY_MS);
    if (r.ms === undefined) {
      this.problems.push(`${what}: ingest did not recover in ${RECOVERY_MS} ms`);
    } else console.log(`  ${what}: ingest back ${Math.round(r.ms)} ms after the fault cleared`);
    return r.records;
  }

  /** SIGTERM: exits 0 within EXIT_BOUND_MS, leaving no PostgreSQL and no session behind. */
  async stop(server: Server, what = "SIGTERM"): Promise<void> {
    if (server.exited) {
      this.problems.push(`main exited by itself (code ${server.exited.code}) before ${what}`);
    }
    const stopped = await server.stop("SIGTERM", EXIT_BOUND_MS);
    if (!stopped) this.problems.push(`${what}: no exit within ${EXIT_BOUND_MS} ms`);
    else {
      console.log(`  ${what}: exited ${stopped.status.code} in ${Math.round(stopped.ms)} ms`);
      if (stopped.status.code !== 0) {
        this.problems.push(`${what}: exit code ${stopped.status.code}`);
      }
    }
    await this.checkNothingLeft(what, 2000);
  }

  /** No PostgreSQL process of the embedded cluster, no session of main on an external one. */
  async checkNothingLeft(what: string, ms: number): Promise<void> {
    if (this.target.pgDir) {
      const left = await leftovers(this.target.pgDir, ms);
      if (left.length) {
        this.problems.push(
          `${what}: PostgreSQL left running: ${
            left.map((p) => `${p.pid} ${p.cmdline}`).join("; ")
          }`,
        );
      }
    } else {
      const url = await this.target.url();
      const name = new URL(url).pathname.slice(1);
      const deadline = performance.now() + ms;
      let n = 0;
      do {
        n = await withSql(EXTERNAL_URL!, async (sql) => {
          const [r] = await sql`select count(*)::int as n from pg_stat_activity
            where datname = ${name} and pid <> pg_backend_pid()`;
          return r.n;
        });
        if (n === 0) break;
        await sleep(100);
      } while (performance.now() < deadline);
      if (n) this.problems.push(`${what}: ${n} session(s) of the exited server still open`);
    }
  }

  /** Fails with every problem found, the servers' warnings and errors, and where their logs are. */
  async assertClean(name: string): Promise<void> {
    if (this.problems.length === 0) return;
    const dir = await Deno.makeTempDir({ prefix: "observian-fault-logs-" });
    const logs: string[] = [];
    for (const [i, server] of this.servers.entries()) {
      const file = `${dir}/server-${i + 1}.log`;
      await Deno.writeTextFile(file, server.output());
      const notable = server.lines().filter((l) => !["info", "debug", "trace"].includes(l.level));
      logs.push(
        `--- server ${i + 1} (pid ${server.pid}), full log in ${file}; ` +
          `${notable.length} warning/error line(s), the last ones:`,
        ...notable.slice(-15).map((l) => JSON.stringify(l).slice(0, 600)),
      );
    }
    assert.fail(`${name}:\n- ${this.problems.join("\n- ")}\n${logs.join("\n")}`);
  }

  async dispose(): Promise<void> {
    for (const s of this.servers) {
      s.kill("SIGKILL");
      await s.status;
    }
    if (this.target.pgDir) await leftovers(this.target.pgDir, 5000);
    await this.target.dispose();
  }
}

/** Readies the first embedded data directory, which later tests copy. */
async function initialise(env: Record<string, string>): Promise<void> {
  const server = await startServer({ env: { ...FAULT_ENV, ...env } });
  const stopped = await server.stop("SIGTERM", 30_000);
  if (stopped?.status.code !== 0) throw new Error(`first start failed:\n${server.tail()}`);
}

function faultTest(
  name: string,
  kinds: TargetKind[],
  fn: (s: Scenario) => Promise<void>,
  opts: { restartsCluster?: boolean } = {},
): void {
  for (const kind of kinds) {
    const skip = kind !== "external"
      ? undefined
      : !EXTERNAL_URL
      ? "OBSERVIAN_FAULT_PG_URL unset"
      : opts.restartsCluster && !EXTERNAL_CLUSTER
      ? "OBSERVIAN_FAULT_PG_CLUSTER unset"
      : undefined;
    Deno.test({
      name: `[faults:${kind}] ${name}${skip ? ` (skipped: ${skip})` : ""}`,
      ignore: skip !== undefined,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const target = kind === "embedded"
          ? await embeddedTarget(initialise)
          : await externalTarget();
        const s = new Scenario(target);
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          // A scenario that hangs fails; it must not stall the run.
          const run = fn(s);
          run.catch(() => {}); // reported by the race below, or moot after the limit
          await Promise.race([
            run,
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`the scenario took over ${SCENARIO_LIMIT_MS} ms`)),
                SCENARIO_LIMIT_MS,
              );
            }),
          ]);
        } finally {
          clearTimeout(timer);
          await s.dispose();
        }
        await s.assertClean(name);
      },
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers of the scenarios.

/** The embedded cluster's, or the external server's, port. */
async function pgPort(s: Scenario): Promise<number> {
  return s.target.pgPort ?? Number(new URL(await s.target.url()).port || 5432);
}

/** Bytes a client sent to the backend on `clientPort` that it has not read yet (/proc/net/tcp). */
function unreadBytes(serverPort: number, clientPort: number): number {
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 5) continue;
      const local = parseInt(f[1].split(":")[1], 16);
      const remote = parseInt(f[2].split(":")[1], 16);
      if (local === serverPort && remote === clientPort) return parseInt(f[4].split(":")[1], 16);
    }
  }
  return 0;
}

interface Backend {
  pid: number;
  client_port: number;
  waiting: boolean;
}

/** main's sessions whose latest statement stores events (the lane's, under small writes). */
function insertingBackends(url: string): Promise<Backend[]> {
  return withSql(url, (sql) =>
    sql<Backend[]>`
      select pid, client_port, wait_event_type = 'Lock' as waiting
      from pg_stat_activity
      where datname = current_database() and application_name = 'observian'
        and query like '%insert into log_events%'
      order by state = 'active' desc, state_change desc`);
}

/**
 * Holds inserts into log_events back with a table lock until `release()`, so that commits stay
 * in flight: the lane's first group waits on the lock with the next one pipelined behind it.
 */
async function holdInserts(url: string): Promise<{ release: () => Promise<void> }> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  const tx = await sql.reserve();
  await tx`begin`;
  await tx`lock table log_events in share mode`;
  return {
    async release() {
      // The session may have been ended under it (a stopped database), and postgres.js never
      // answers a query sent on such a connection: bounded, like every wait here.
      await Promise.race([tx`commit`.catch(() => {}), sleep(2000)]);
      tx.release();
      await Promise.race([sql.end({ timeout: 0 }).catch(() => {}), sleep(1000)]);
    },
  };
}

/** Verifies `records` after main exited: an embedded cluster needs main running to be read. */
async function checkStoredAfterExit(s: Scenario, records: RequestRecord[]): Promise<void> {
  if (s.target.kind === "external") return await s.checkStored(records);
  const again = await s.start();
  await s.checkStored(records);
  await s.stop(again, "SIGTERM of the server started to verify");
}

/** A raw HTTP/1.1 client that declares `declared` bytes of body and sends one byte per beat. */
async function slowBody(
  port: number,
  declared: number,
  everyMs: number,
  patienceMs: number,
): Promise<{ status: number | undefined; ms: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = performance.now();
  const enc = new TextEncoder();
  let response = "";
  let answeredAt: number | undefined;
  const reading = (async () => {
    const buf = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        response += new TextDecoder().decode(buf.subarray(0, n));
        if (response.includes("\r\n\r\n")) break;
      }
    } catch { /* reset */ }
    answeredAt = performance.now();
  })();
  try {
    await conn.write(enc.encode(
      `POST /logs HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\ncontent-type: application/json\r\n` +
        `content-length: ${declared}\r\n\r\n[`,
    ));
    while (answeredAt === undefined && performance.now() - started < patienceMs) {
      await Promise.race([reading, sleep(everyMs)]);
      if (answeredAt !== undefined) break;
      await conn.write(enc.encode(" "));
    }
  } catch { /* the server closed the connection */ }
  await Promise.race([reading, sleep(100)]);
  try {
    conn.close();
  } catch { /* closed */ }
  await reading;
  const status = Number(response.match(/^HTTP\/1\.[01] (\d{3})/)?.[1]) || undefined;
  return { status, ms: (answeredAt ?? performance.now()) - started };
}

// ---------------------------------------------------------------------------------------------
// The faults.

faultTest(
  "backend terminated during pipelined commits, until a second pipelined group is hit",
  ["embedded", "external"],
  async (s) => {
    const server = await s.start();
    const url = await s.target.url();
    const port = await pgPort(s);
    // Singles from many workers: small groups go to the ingest lane and pipeline there.
    const load = s.load(server, { workers: 48 });
    const extra: RequestRecord[] = [];
    let pipelinedHits = 0;
    let attempts = 0;
    await sleep(1000);
    while (pipelinedHits === 0 && attempts < 8) {
      attempts++;
      // Odd attempts kill the lane wherever it is; even ones hold its commits on a lock first,
      // so that a first group waits with a second pipelined behind it.
      const held = attempts % 2 === 0 ? await holdInserts(url) : undefined;
      let victim: Backend | undefined;
      let unread = 0;
      const deadline = performance.now() + (held ? 2000 : 500);
      while (performance.now() < deadline) {
        const backends = await insertingBackends(url);
        victim = backends.find((b) => !held || b.waiting) ?? victim;
        unread = victim ? unreadBytes(port, victim.client_port) : 0;
        if (unread > 0) break;
        await sleep(10);
      }
      if (victim) {
        await withSql(url, (sql) => sql`select pg_terminate_backend(${victim.pid})`);
      }
      await held?.release();
      const cleared = performance.now();
      if (unread > 0) pipelinedHits++;
      console.log(
        `  attempt ${attempts}: ${held ? "held, " : ""}killed ${victim?.pid ?? "nothing"} with ` +
          `${unread} unread bytes (a pipelined group) behind its statement`,
      );
      extra.push(...await s.checkRecovers(server, cleared, `attempt ${attempts}`));
      await sleep(300);
    }
    if (pipelinedHits === 0) {
      s.problems.push(`no kill hit a pipelined group in ${attempts} attempts`);
    }
    const records = await load.stop();
    console.log("  load: " + describe(records));
    s.check("load", checkAnswers([...records, ...extra], { boundMs: POST_BOUND_MS }));
    await s.checkStored([...records, ...extra]);
    await s.stop(server);
  },
);

faultTest("external database restarted (fast shutdown) under load", ["external"], async (s) => {
  const server = await s.start();
  const url = await s.target.url();
  const load = s.load(server);
  const extra: RequestRecord[] = [];
  await sleep(1000);
  await ctlCluster("restart");
  extra.push(...await s.checkRecovers(server, performance.now(), "after restart"));
  await sleep(500);
  // Then down for a while: readiness must say so, and come back with the database.
  const readiness = new ReadinessProbe(server);
  await sleep(300);
  await ctlCluster("stop");
  const down = performance.now();
  await sleep(2500);
  const startCluster = performance.now();
  const back = waitUntilAnswers(url, 20_000);
  await ctlCluster("start");
  const { down: lastDown, up } = await back;
  console.log(`  the cluster answered ${Math.round((up ?? NaN) - startCluster)} ms into its start`);
  if (up === undefined) s.problems.push("the cluster did not answer within 20 s of its start");
  else extra.push(...await s.checkRecovers(server, up, "after stop and start"));
  await sleep(300);
  await readiness.stop();
  s.check(
    "readiness",
    readiness.check(down, lastDown ?? startCluster, up ?? Infinity, READY_WITHIN_MS),
  );
  const records = await load.stop();
  console.log("  load: " + describe(records));
  s.check("load", checkAnswers([...records, ...extra], { boundMs: POST_BOUND_MS }));
  await s.checkStored([...records, ...extra]);
  await s.stop(server);
}, { restartsCluster: true });

faultTest("embedded postmaster killed under load", ["embedded"], async (s) => {
  const server = await s.start();
  const url = await s.target.url();
  const pgDir = s.target.pgDir!;
  const load = s.load(server);
  await sleep(1000);
  const readiness = new ReadinessProbe(server);
  await sleep(300);
  const pid = await postmasterPid(pgDir);
  assert.ok(pid, "the embedded postmaster runs");
  const before = clusterProcesses(pgDir);
  Deno.kill(pid, "SIGKILL");
  const killed = performance.now();
  // main restarts it (or exits so that its supervisor does): either way, no hang.
  const { down: lastDown, up } = await Promise.race([
    waitUntilAnswers(url, 15_000),
    server.status.then(() => ({ down: undefined, up: undefined })),
  ]);
  const extra: RequestRecord[] = [];
  if (up === undefined) {
    const code = server.exited?.code;
    s.problems.push(
      server.exited
        ? `main exited (code ${code}) instead of restarting its PostgreSQL`
        : "the embedded PostgreSQL was not restarted within 15 s",
    );
    if (server.exited && code === 0) s.problems.push("main exited 0 after losing its database");
  } else {
    console.log(`  PostgreSQL answered again ${Math.round(up - killed)} ms after the kill`);
    extra.push(...await s.checkRecovers(server, up, "after the restart of PostgreSQL"));
    await sleep(300);
  }
  await readiness.stop();
  // The kill takes effect within moments; from then until the database is back, 503.
  s.check(
    "readiness",
    readiness.check(killed + 200, lastDown ?? killed + 2000, up ?? Infinity, READY_WITHIN_MS),
  );
  const left = await leftovers(undefined, 5000, before);
  if (left.length) {
    s.problems.push(`processes of the killed postmaster still run: ${left.map((p) => p.pid)}`);
  }
  const records = await load.stop();
  console.log("  load: " + describe(records));
  s.check(
    "load",
    checkAnswers([...records, ...extra], {
      boundMs: POST_BOUND_MS,
      goneAt: up === undefined ? killed : undefined,
    }),
  );
  if (up === undefined) {
    await s.checkNothingLeft("after main exited", 5000);
    await checkStoredAfterExit(s, [...records, ...extra]);
  } else {
    await s.checkStored([...records, ...extra]);
    await s.stop(server);
  }
});

faultTest("SIGTERM under load", ["embedded", "external"], async (s) => {
  const server = await s.start();
  const load = s.load(server);
  await sleep(1500);
  const sent = performance.now();
  await s.stop(server);
  const records = await load.stop();
  console.log("  load: " + describe(records));
  s.check("load", checkAnswers(records, { boundMs: POST_BOUND_MS, goneAt: sent }));
  const drained = records.filter((r) => r.sentAt < sent && r.sentAt + r.ms > sent);
  console.log(`  ${drained.length} request(s) in flight at SIGTERM were answered before exit`);
  await checkStoredAfterExit(s, records);
});

faultTest(
  "SIGTERM under load while commits are stuck behind a lock",
  ["embedded", "external"],
  async (s) => {
    const server = await s.start();
    const url = await s.target.url();
    const load = s.load(server);
    await sleep(1000);
    const held = await holdInserts(url);
    await sleep(1000);
    const sent = performance.now();
    const stopped = await server.stop("SIGTERM", EXIT_BOUND_MS);
    await held.release();
    if (!stopped) s.problems.push(`SIGTERM: no exit within ${EXIT_BOUND_MS} ms`);
    else console.log(`  exited ${stopped.status.code} in ${Math.round(stopped.ms)} ms`);
    await s.checkNothingLeft("SIGTERM", 3000);
    const records = await load.stop();
    console.log("  load: " + describe(records));
    s.check("load", checkAnswers(records, { boundMs: POST_BOUND_MS, goneAt: sent }));
    await checkStoredAfterExit(s, records);
  },
);

faultTest(
  "SIGKILL under load, then restart on the same data",
  ["embedded", "external"],
  async (s) => {
    const server = await s.start();
    const load = s.load(server);
    await sleep(1500);
    const before = s.target.pgDir ? clusterProcesses(s.target.pgDir) : [];
    const killed = performance.now();
    server.kill("SIGKILL");
    await server.status;
    await sleep(200);
    const records = await load.stop();
    console.log("  load: " + describe(records));
    s.check("load", checkAnswers(records, { boundMs: POST_BOUND_MS, goneAt: killed }));
    // Straight back up on the same data directory and port, whatever the old one left.
    const restarted = performance.now();
    const again = await s.start().catch((err) => {
      s.problems.push(`restart on the same data failed: ${String(err).slice(0, 400)}`);
      return undefined;
    });
    if (again) {
      console.log(`  restarted in ${Math.round(performance.now() - restarted)} ms`);
      const probe = await s.checkRecovers(again, performance.now(), "after the restart");
      // What the kill left unanswered, a shipper sends again with the same keys: each is then
      // stored once, whether or not the first attempt had committed.
      const answered = new Set(records.filter((r) => r.status === 201).map((r) => r.marker));
      const unanswered = new Map(
        records.filter((r) => !answered.has(r.marker)).map((r) => [r.marker, r.events]),
      );
      const storedEarlier =
        (await checkStored(await s.target.url(), s.service, records)).storedUnacked;
      const retried = await Promise.all(
        [...unanswered].map(([marker, events]) =>
          post(
            again.base,
            { service: s.service, timeoutMs: CLIENT_TIMEOUT_MS },
            marker,
            events,
            true,
          )
        ),
      );
      console.log(
        `  ${retried.length} unanswered request(s) sent again after the restart, ${storedEarlier} ` +
          `of which had been stored before the kill`,
      );
      s.check(
        "retries after the restart",
        checkAnswers(retried, { boundMs: POST_BOUND_MS, allowed: [201] }),
      );
      await s.checkStored([...records, ...probe, ...retried]);
    }
    if (before.length) {
      const left = await leftovers(undefined, ORPHAN_BOUND_MS, before);
      console.log(
        `  the killed server's PostgreSQL ${left.length ? "still ran" : "had gone"} ` +
          `${left.length ? "" : "by "}${Math.round(performance.now() - killed)} ms after the kill`,
      );
      if (left.length) {
        s.problems.push(
          `PostgreSQL processes of the SIGKILLed main still ran ${ORPHAN_BOUND_MS} ms later: ` +
            left.map((p) => `${p.pid} ${p.cmdline}`).join("; "),
        );
      }
    }
    if (again) await s.stop(again);
  },
);

faultTest("slow-body clients beside normal load", ["embedded"], async (s) => {
  const BODY_READ_TIMEOUT_MS = 2000;
  const server = await s.start({ BODY_READ_TIMEOUT_MS: String(BODY_READ_TIMEOUT_MS) });
  const load = s.load(server, { workers: 16 });
  await sleep(500);
  // Four declare the largest body allowed, a hundred a small one; all send a byte every 500 ms.
  const patience = BODY_READ_TIMEOUT_MS + 5000;
  const slow = await Promise.all([
    ...Array.from({ length: 4 }, () => slowBody(server.port, 10 * 1024 * 1024, 500, patience)),
    ...Array.from({ length: 100 }, () => slowBody(server.port, 2000, 500, patience)),
  ]);
  const records = await load.stop();
  console.log("  load: " + describe(records));
  const statuses: Record<string, number> = {};
  for (const r of slow) {
    statuses[String(r.status ?? "none")] = (statuses[String(r.status ?? "none")] ?? 0) + 1;
  }
  const worst = Math.max(...slow.map((r) => r.ms));
  console.log(`  slow clients: ${JSON.stringify(statuses)}, longest held ${Math.round(worst)} ms`);
  const bound = BODY_READ_TIMEOUT_MS + 2000;
  const held = slow.filter((r) => r.ms > bound);
  if (held.length) {
    s.problems.push(`${held.length} slow client(s) held longer than ${bound} ms`);
  }
  // 408 once the body is late; 503 (at capacity) is a fair answer too, silence is not.
  const unanswered = slow.filter((r) => r.status !== 408 && r.status !== 503);
  if (unanswered.length) {
    s.problems.push(
      `${unanswered.length} slow client(s) not answered 408 or 503 (${JSON.stringify(statuses)})`,
    );
  }
  // Normal clients are not refused for what the slow ones declared.
  s.check("load", checkAnswers(records, { boundMs: POST_BOUND_MS, allowed: [201] }));
  await s.checkStored(records);
  await s.stop(server);
});

faultTest(
  "oversized-batch burst: 40 x 10,000 events at once, RSS <= 300 MB with default settings",
  ["embedded"],
  async (s) => {
    const LIMIT = 300 * 1024 * 1024;
    // Default settings: only what ties main to its database and port.
    const server = await s.start({}, {} as typeof FAULT_ENV);
    const bodies = Array.from({ length: 40 }, (_, b) => {
      const marker = `burst-${b}`;
      const events = Array.from({ length: 10_000 }, (_, i) => ({
        service_name: s.service,
        status_code: 200 + (i % 5 === 0 ? 300 : 0),
        latency_ms: i % 997,
        event_type: "burst",
        message: marker,
      }));
      return { marker, body: JSON.stringify(events) };
    });
    console.log(`  bodies of ${Math.round(bodies[0].body.length / 1024)} KiB each`);
    let peak = server.memory()?.rss ?? 0;
    const sampler = setInterval(() => peak = Math.max(peak, server.memory()?.rss ?? 0), 20);
    const before = server.memory();
    // Commits wait up to INGEST_COMMIT_TIMEOUT_MS (10 s by default); parsing 10,000 events more.
    const bound = 10_000 + 10_000;
    // Single events beside it, with the patience that the default commit timeout asks for.
    const load = s.load(server, { workers: 8, timeoutMs: bound + 5000 });
    const burst = await Promise.all(
      bodies.map((b) => send(server.base, b.marker, 10_000, b.body, bound + 20_000)),
    );
    const records = await load.stop();
    clearInterval(sampler);
    const after = server.memory();
    peak = Math.max(peak, after?.peak ?? 0);
    const mb = (n = 0) => Math.round(n / 1024 / 1024);
    console.log(
      `  burst: ${describe(burst)}; RSS ${mb(before?.rss)} MB before, peak ${mb(peak)} MB ` +
        `(VmHWM ${mb(after?.peak)} MB)`,
    );
    console.log("  load beside it: " + describe(records));
    if (peak > LIMIT) s.problems.push(`RSS peaked at ${mb(peak)} MB (bound ${mb(LIMIT)} MB)`);
    s.check("burst", checkAnswers(burst, { boundMs: bound }));
    s.check("load", checkAnswers(records, { boundMs: bound }));
    await s.checkStored([...burst, ...records]);
    await s.stop(server);
  },
);

faultTest(
  "a burst of distinct event types, then summaries: answered in their bound, none left running",
  ["embedded"],
  async (s) => {
    const QUERY_TIMEOUT_MS = 5000;
    const server = await s.start({ QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS) });
    const url = await s.target.url();
    // 50,000 events, each of a type of its own, as a service sending raw paths would; sent as a
    // shipper does, retrying what was refused (each attempt with a marker of its own).
    const burst: RequestRecord[] = [];
    for (let b = 0; b < 5; b++) {
      const deadline = performance.now() + 30_000;
      for (let attempt = 0; performance.now() < deadline; attempt++) {
        const marker = `types-${b}-${attempt}`;
        const events = Array.from({ length: 10_000 }, (_, i) => ({
          service_name: s.service,
          status_code: 200,
          latency_ms: i % 300,
          event_type: `GET /users/${b * 10_000 + i}`,
          message: marker,
        }));
        const r = await send(server.base, marker, 10_000, JSON.stringify(events), 60_000);
        burst.push(r);
        if (r.status === 201) break;
        await sleep(1000);
      }
    }
    console.log("  burst: " + describe(burst));
    s.check("burst", checkAnswers(burst, { boundMs: POST_BOUND_MS }));
    // Rollups are compacted every second; give them a moment.
    await sleep(2000);
    const load = s.load(server, { workers: 8 });
    const bound = QUERY_TIMEOUT_MS + 2000;
    const paths = [
      `/logs/summary?window=1h&service_name=${s.service}`,
      `/logs/summary?window=24h&service_name=${s.service}`,
      `/logs/summary?window=15m`,
      `/logs/summary?window=7d`,
    ];
    const summaries = await Promise.all(paths.map(async (path) => {
      const started = performance.now();
      const status = await server.get(path, bound + 5000);
      return { path, status, ms: performance.now() - started };
    }));
    // Clients that give up: their queries must not keep running.
    await Promise.all(paths.map((path) => server.get(path, 300)));
    const abandoned = performance.now();
    for (const r of summaries) {
      console.log(`  ${r.path}: ${r.status} in ${Math.round(r.ms)} ms`);
      if (r.status === 0) s.problems.push(`${r.path}: no answer within ${bound + 5000} ms`);
      else if (r.ms > bound) s.problems.push(`${r.path}: answered after ${Math.round(r.ms)} ms`);
      if (r.status !== 0 && r.status !== 200 && r.status !== 503) {
        s.problems.push(`${r.path}: answered ${r.status}`);
      }
    }
    // Summaries read the rollups; ingest's own statements do not count.
    let running: { pid: number; ms: number; query: string }[] = [];
    while (performance.now() - abandoned < 3000) {
      running = await withSql(url, (sql) =>
        sql<{ pid: number; ms: number; query: string }[]>`
          select pid, (extract(epoch from now() - query_start) * 1000)::int as ms,
                 left(regexp_replace(query, '\s+', ' ', 'g'), 80) as query
          from pg_stat_activity
          where datname = current_database() and application_name = 'observian'
            and state = 'active' and query ilike '%log_rollup%'
            and query not ilike '%observian_rollup_compact%'
            and query not ilike '%insert into log_events%'`);
      if (running.length === 0) break;
      await sleep(100);
    }
    if (running.length) {
      s.problems.push(
        `${running.length} summary quer(ies) still running 3 s after their clients left: ` +
          running.map((r) => `${r.pid} (${r.ms} ms) ${r.query}`).join("; "),
      );
    }
    const records = await load.stop();
    console.log("  load beside them: " + describe(records));
    s.check("load", checkAnswers(records, { boundMs: POST_BOUND_MS }));
    await s.checkStored([...burst, ...records]);
    await s.stop(server);
  },
);
