// Wires configuration, database, app, server and crons; owns start-up and shutdown.
import { buildApp, writerFor } from "./app.ts";
import { type Config, ConfigError, parseConfig } from "./config.ts";
import { anyKeyStored } from "./access/keys.ts";
import { openDatabase, prepareSchema } from "./db/bootstrap.ts";
import { type Sql, surviveLostDbSockets } from "./db/connect.ts";
import { backfillLatencySketches } from "./ingest/rollup.ts";
import type { EmbeddedDb } from "./db/embedded.ts";
import { registerJobCrons } from "./jobs/schedule.ts";
import { configureLogging, logger } from "./logging.ts";
import { createMetrics, embeddedPostgresMetrics } from "./metrics/registry.ts";
import { LiveHub } from "./live/hub.ts";

async function main(): Promise<void> {
  let config;
  try {
    // .env, if any, is already in it: the tasks run with --env-file (deno.json).
    const env = Deno.env.toObject();
    if (env.DENO_DEPLOYMENT_ID && !env.DATABASE_URL) {
      throw new ConfigError("DATABASE_URL", "required on Deno Deploy (no local disk there)");
    }
    config = parseConfig(env, { stdoutIsTerminal: Deno.stdout.isTerminal() });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      Deno.exit(1);
    }
    throw err;
  }
  await configureLogging({ level: config.logLevel, format: config.logFormat });
  const log = logger("main");
  surviveLostDbSockets();

  const metrics = createMetrics();
  let db;
  try {
    db = await openDatabase(config, {
      onReplace: (handle) => metrics.dbHandleReplacements.inc({ handle }),
    });
    await prepareSchema(db.sql, config);
  } catch (err) {
    log.fatal("start-up failed: {error}", { error: err instanceof Error ? err.message : err });
    if (db) await closeWithin(db, log);
    Deno.exit(1);
  }

  metrics.dbPoolMax.set(config.dbPoolMax);
  const writer = writerFor(db.sql, config, metrics, db.ingest);
  const liveHub = new LiveHub(db.sql);
  const embedded = db.embedded;
  const app = buildApp({
    sql: db.sql,
    health: db.health,
    // Readiness answers 503 at once while the embedded postmaster is down or restarting.
    embeddedUp: embedded && (() => embedded.state === "running"),
    config,
    metrics,
    writer,
    liveHub,
  });
  // After prepareSchema: the jobs need the migrated job_control rows and partitions.
  registerJobCrons({ sql: db.sql, config, metrics });
  await warnIfOpen(db.sql, config, log);
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: config.host,
      port: config.port,
      onListen: ({ hostname, port }) =>
        log.info("listening on http://{hostname}:{port} ({ms} ms after start)", {
          hostname,
          port,
          ms: Math.round(performance.now()),
        }),
    }, app.fetch);
  } catch (err) {
    // Port taken or not allowed: say so in one line and leave no database running.
    log.fatal("cannot listen on {host}:{port}: {error}", {
      host: config.host,
      port: config.port,
      error: err instanceof Error ? err.message : String(err),
    });
    await closeWithin(db, log);
    Deno.exit(1);
  }

  // Once after migration 012, in the background (minutes for tens of millions of events): a day
  // per transaction, logged; summaries answer meanwhile, the days not yet rebuilt with their
  // counts but without latency buckets. What a stop interrupts is done at the next start.
  backfillLatencySketches(db.sql, config.rollupMaxEventTypes).catch((err) =>
    log.warning("latency bucket backfill stopped: {error}; it goes on at the next start", {
      error: err instanceof Error ? err.message : String(err),
    })
  );

  // Every step of shutdown has a bound, and a step cut short is logged and makes the exit code
  // 1; a backstop ends the process if the steps together overrun (e.g. a starved event loop).
  const database = db;
  let stopping = false;
  const shutdown = async (reason: string, failed = false) => {
    if (stopping) {
      // The PostgreSQL watchdog sees us go and stops the embedded postmaster (fast shutdown).
      log.warning("{reason} again: exiting without waiting", { reason });
      Deno.exit(1);
    }
    stopping = true;
    const backstopS = config.shutdownTimeoutS + SHUTDOWN_BACKSTOP_EXTRA_S;
    setTimeout(() => {
      log.error("shutdown still running after {s}s; exiting now", { s: backstopS });
      database.embedded?.killNow();
      Deno.exit(1);
    }, backstopS * 1000);
    const cutShort: string[] = [];
    log.info("{reason}: draining requests (up to {s}s)", { reason, s: config.shutdownTimeoutS });
    // Live-feed streams never end by themselves; close them so draining can finish.
    if (!(await finishes(liveHub.close(), LIVE_CLOSE_MS))) {
      log.warning("live-feed streams still open after {ms} ms; going on", { ms: LIVE_CLOSE_MS });
      cutShort.push("live feeds");
    }
    if (!(await finishes(server.shutdown(), config.shutdownTimeoutS * 1000))) {
      log.warning("requests still running after the timeout; closing anyway");
      cutShort.push("requests");
    }
    // Pending commits normally finished with their requests; a wedged writer never idles.
    if (!(await finishes(writer.idle(), WRITER_IDLE_MS))) {
      log.warning("ingest writer still busy after {ms} ms; abandoning its pending commits", {
        ms: WRITER_IDLE_MS,
      });
      cutShort.push("ingest writer");
    }
    if (!(await closeWithin(database, log))) cutShort.push("database");
    if (cutShort.length === 0 && !failed) {
      log.info("stopped");
      Deno.exit(0);
    }
    log.warning("stopped ({reason}); cut short: {steps}", {
      reason,
      steps: cutShort.join(", ") || "nothing",
    });
    Deno.exit(1);
  };
  if (embedded) {
    const pgMetrics = embeddedPostgresMetrics(metrics.registry, {
      up: () => embedded.state === "running",
    });
    embedded.onStateChange((state, previous) => {
      if (state === "running" && previous === "down") pgMetrics.restarts.inc();
    });
    // Restarts kept failing: exit non-zero so that the supervisor (systemd, Kubernetes) acts.
    void embedded.gaveUp.then(() => {
      if (!stopping) void shutdown("embedded PostgreSQL failure", true);
    });
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void shutdown(signal));
  }
}

/** Most time live-feed streams get to end at shutdown. */
const LIVE_CLOSE_MS = 1_000;
/** Most time the ingest writer gets to finish its commits after the drain. */
const WRITER_IDLE_MS = 2_000;
/** Most time the database handles get to close before PostgreSQL is stopped under them. */
const DB_CLOSE_MS = 2_000;
/** The backstop: shutdown never takes longer than SHUTDOWN_TIMEOUT_S plus this. */
const SHUTDOWN_BACKSTOP_EXTRA_S = 10;

/** Whether `p` settles within `ms` (it keeps running when it does not). */
async function finishes(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p.then(() => true, () => true),
      new Promise<false>((r) => timer = setTimeout(() => r(false), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes the database handles within DB_CLOSE_MS (postgres.js end() can hang forever after a
 * lost connection, porsager/postgres#1142), then makes sure the embedded PostgreSQL is stopped,
 * which has bounds of its own. True when nothing had to be abandoned.
 */
async function closeWithin(
  db: { close(): Promise<void>; embedded?: EmbeddedDb },
  log: ReturnType<typeof logger>,
): Promise<boolean> {
  let clean = true;
  const closed = db.close().catch((err) => {
    log.error("closing the database: {err}", { err: String(err) });
  });
  if (!(await finishes(closed, DB_CLOSE_MS))) {
    // close() may already be stopping PostgreSQL (its last step): that is not a hang.
    const state = db.embedded?.state;
    if (state !== "stopping" && state !== "stopped") {
      log.warning("database connections still closing after {ms} ms; abandoning them", {
        ms: DB_CLOSE_MS,
      });
      clean = false;
    }
  }
  // Idempotent: the same stop close() started, or a first one when close() hung before it.
  if (db.embedded) {
    await db.embedded.stop();
    if (db.embedded.forced) clean = false;
  }
  return clean;
}

if (import.meta.main) await main();

/**
 * One warning line when anyone who reaches a non-loopback address may read and write every
 * service's data: no key exists anywhere and sign-in is not configured.
 */
async function warnIfOpen(sql: Sql, config: Config, log: ReturnType<typeof logger>) {
  if (/^(127\.|::1$|localhost$|\[::1\]$)/.test(config.host)) return;
  const signIn = !!(config.signIn.github || config.signIn.oidc);
  const open = !signIn && config.apiKeys.length === 0 &&
    !(await anyKeyStored(sql).catch(() => true));
  if (open) {
    log.warning(
      "access control is off: no API key exists and sign-in is not configured, so anyone " +
        "reaching {host}:{port} may read and write every service's events (set API_KEYS or " +
        "create a key with POST /keys)",
      { host: config.host, port: config.port },
    );
  }
}
