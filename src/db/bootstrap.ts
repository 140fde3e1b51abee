// The database side of start-up, shared by the server and `deno task migrate`: find or start
// PostgreSQL, wait for it, migrate, keep partitions ahead, seed services.
import type { Config } from "../config.ts";
import { logger } from "../logging.ts";
import { createDb, type Db, type DbOptions, describeUrl, waitForDb } from "./connect.ts";
import type { EmbeddedDb } from "./embedded.ts";
import { migrate } from "./migrate.ts";
import { ensurePartitionWindow } from "./partitions.ts";
import { seedServices } from "./default-services.ts";

export interface Database {
  sql: Db;
  /**
   * One connection of DB_POOL_MAX set apart for ingest's small commits, which pipeline on it
   * (see EventWriterOptions.lane); absent when DB_POOL_MAX is 1.
   */
  ingest?: Db;
  /**
   * One connection of DB_POOL_MAX (from 3 up) for readiness checks: a ping queued behind a long
   * query on a busy pool would report a healthy database as down. Below 3 it is the pool.
   */
  health: Db;
  embedded?: EmbeddedDb;
  /** Ends the handles (bounded) and stops an embedded PostgreSQL. */
  close(): Promise<void>;
}

/** Seconds close() gives the handles' connections to finish before dropping them. */
const CLOSE_GRACE_S = 1;

export async function openDatabase(
  config: Config,
  opts: Pick<DbOptions, "onReplace"> = {},
): Promise<Database> {
  const log = logger("db");
  let embedded: EmbeddedDb | undefined;
  let url = config.databaseUrl;
  if (!url) {
    // Loaded only when needed: with DATABASE_URL (Deno Deploy) no binary package is touched.
    const { startEmbeddedPostgres } = await import("./embedded.ts");
    embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.embeddedPgPort,
    });
    url = embedded.url;
  }
  const connectTimeoutS = Math.min(config.dbConnectTimeoutS, 10);
  const lane = config.dbPoolMax > 1;
  const ownHealth = config.dbPoolMax > 2;
  const common = { connectTimeoutS, onReplace: opts.onReplace };
  const max = config.dbPoolMax - (lane ? 1 : 0) - (ownHealth ? 1 : 0);
  const sql = createDb(url, { ...common, max, name: "pool" });
  // These connect on first use, so `deno task migrate` never opens them.
  // Its commits stop in PostgreSQL at the writer's timeout: rolled back for certain, not maybe.
  const ingest = lane
    ? createDb(url, {
      ...common,
      max: 1,
      name: "ingest",
      statementTimeoutMs: config.ingestCommitTimeoutMs,
    })
    : undefined;
  // Retries within 0.2 s, so readiness is back within a second of the database.
  const health = ownHealth
    ? createDb(url, { ...common, max: 1, name: "health", maxBackoffS: 0.2 })
    : sql;
  const close = async () => {
    // end() can wait forever on a connection postgres.js lost (porsager/postgres#1142); its
    // timeout destroys what is left, and the race bounds even that.
    const ends = [...new Set([sql, ingest, health])].map((h) => h?.end({ timeout: CLOSE_GRACE_S }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((r) => timer = setTimeout(r, (CLOSE_GRACE_S + 0.5) * 1000));
    await Promise.race([Promise.allSettled(ends), late]);
    clearTimeout(timer);
    await embedded?.stop();
  };
  try {
    await waitForDb(sql, { url, timeoutS: config.dbConnectTimeoutS });
    log.info("connected to {target}", { target: describeUrl(url) });
  } catch (err) {
    await close();
    throw err;
  }
  return { sql, ingest, health, embedded, close };
}

export async function prepareSchema(
  sql: Db,
  config: Config,
  opts: { migrate?: boolean } = {},
): Promise<void> {
  if (opts.migrate ?? config.migrateOnStart) await migrate(sql);
  const created = await ensurePartitionWindow(sql, { retentionDays: config.retentionDays });
  const seeded = await seedServices(sql, config.seedServices);
  logger("db").info("schema ready: {created} partitions created, {seeded} services seeded", {
    created,
    seeded,
  });
}
