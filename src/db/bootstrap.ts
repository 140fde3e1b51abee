// The database side of start-up, shared by the server and `deno task migrate`: find or start
// PostgreSQL, wait for it, migrate, keep partitions ahead, seed services.
import type { Config } from "../config.ts";
import { logger } from "../logging.ts";
import { createDb, describeUrl, type Sql, waitForDb } from "./connect.ts";
import type { EmbeddedDb } from "./embedded.ts";
import { migrate } from "./migrate.ts";
import { ensurePartitionWindow } from "./partitions.ts";
import { seedServices } from "./seed.ts";

export interface Database {
  sql: Sql;
  /**
   * One connection of DB_POOL_MAX set apart for ingest's small commits, which pipeline on it
   * (see EventWriterOptions.lane); absent when DB_POOL_MAX is 1.
   */
  ingest?: Sql;
  embedded?: EmbeddedDb;
  close(): Promise<void>;
}

export async function openDatabase(config: Config): Promise<Database> {
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
  const sql = createDb(url, { max: config.dbPoolMax - (lane ? 1 : 0), connectTimeoutS });
  // Connects on first use, so `deno task migrate` never opens it.
  const ingest = lane ? createDb(url, { max: 1, connectTimeoutS }) : undefined;
  const close = async () => {
    await Promise.all([sql.end({ timeout: 5 }), ingest?.end({ timeout: 5 })]);
    await embedded?.stop();
  };
  try {
    await waitForDb(sql, { url, timeoutS: config.dbConnectTimeoutS });
    log.info("connected to {target}", { target: describeUrl(url) });
  } catch (err) {
    await close();
    throw err;
  }
  return { sql, ingest, embedded, close };
}

export async function prepareSchema(
  sql: Sql,
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
