// Wires configuration, database, app, server and crons; owns start-up and shutdown.
import { buildApp, writerFor } from "./app.ts";
import { ConfigError, loadEnv, parseConfig } from "./config.ts";
import { openDatabase, prepareSchema } from "./db/bootstrap.ts";
import { surviveLostDbSockets } from "./db/connect.ts";
import { registerJobCrons } from "./jobs/schedule.ts";
import { configureLogging, logger } from "./logging.ts";
import { createMetrics } from "./metrics/registry.ts";
import { LiveHub } from "./query/live.ts";

async function main(): Promise<void> {
  let config;
  try {
    const env = await loadEnv();
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
    await db?.close().catch(() => {});
    Deno.exit(1);
  }

  metrics.dbPoolMax.set(config.dbPoolMax);
  const writer = writerFor(db.sql, config, metrics, db.ingest);
  const liveHub = new LiveHub(db.sql);
  const app = buildApp({ sql: db.sql, health: db.health, config, metrics, writer, liveHub });
  // After prepareSchema: the jobs need the migrated job_control rows and partitions.
  registerJobCrons({ sql: db.sql, config, metrics });
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
    await db.close().catch(() => {});
    Deno.exit(1);
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) {
      log.warning("{signal} again: exiting without waiting", { signal });
      Deno.exit(1);
    }
    stopping = true;
    log.info("{signal}: draining requests (up to {s}s)", { signal, s: config.shutdownTimeoutS });
    // Live-feed streams never end by themselves; close them so draining can finish.
    await liveHub.close();
    const drained = await Promise.race([
      server.shutdown().then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), config.shutdownTimeoutS * 1000)),
    ]);
    if (!drained) log.warning("requests still running after the timeout; closing anyway");
    await writer.idle();
    await db.close().catch((err) => log.error("closing the database: {err}", { err: String(err) }));
    log.info("stopped");
    Deno.exit(0);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void shutdown(signal));
  }
}

if (import.meta.main) await main();
