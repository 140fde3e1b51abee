// Each test file gets its own database on the test server, so files run in parallel.
import { createScratchDatabase } from "../../scripts/lib/scratch-db.ts";
import { createDb, type Db, surviveLostDbSockets } from "../../src/db/connect.ts";
import { migrate } from "../../src/db/migrate.ts";
import { ensurePartitionWindow } from "../../src/db/partitions.ts";
import { seedServices } from "../../src/db/default-services.ts";
import { compactRollups } from "../../src/ingest/rollup.ts";
import { parseConfig } from "../../src/config.ts";

// As main does: tests kill backends on purpose, and the writes postgres.js still had queued for
// them must not fail the whole file.
surviveLostDbSockets();

export function adminUrl(): string {
  const url = Deno.env.get("OBSERVIAN_TEST_ADMIN_URL");
  if (!url) {
    throw new Error("OBSERVIAN_TEST_ADMIN_URL is unset: run the suite with `deno task test`");
  }
  return url;
}

export interface TestDb {
  name: string;
  url: string;
  sql: Db;
  drop(): Promise<void>;
}

/** A new, empty database. */
export async function emptyDatabase(): Promise<TestDb> {
  const db = await createScratchDatabase(adminUrl(), "observian_t_");
  const sql = createDb(db.url, { max: 8 });
  return {
    name: db.name,
    url: db.url,
    sql,
    async drop() {
      await sql.end({ timeout: 1 });
      await db.drop();
    },
  };
}

/** A database as the server prepares it at start-up: migrated, partitioned, seeded. */
export async function preparedDatabase(env: Record<string, string> = {}): Promise<TestDb> {
  const db = await emptyDatabase();
  const config = testConfig(env);
  await migrate(db.sql);
  await ensurePartitionWindow(db.sql, { retentionDays: config.retentionDays });
  await seedServices(db.sql, config.seedServices);
  return db;
}

export function testConfig(env: Record<string, string> = {}) {
  return parseConfig({ DATABASE_URL: adminUrl(), LOG_LEVEL: "warning", ...env });
}

/** Deno.test for tests holding pooled connections across awaits (sockets outlive one test). */
export function dbTest(name: string, fn: () => Promise<void>): void {
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });
}

/**
 * Folds every pending rollup delta into the tiers, waiting out a compaction that a writer of an
 * earlier test may still be running (compactRollups answers -1 while another holds the lock).
 */
export async function compactAll(sql: Db): Promise<void> {
  while (await compactRollups(sql) < 0) await new Promise((r) => setTimeout(r, 10));
}

/**
 * Holds a lock that makes inserts into log_events wait, so writes stay in flight; `release()`
 * lets them go and resolves once the lock is gone.
 */
export async function holdInserts(sql: Db): Promise<{ release: () => Promise<void> }> {
  const unblock = Promise.withResolvers<void>();
  const locked = Promise.withResolvers<void>();
  const locker = sql.begin(async (tx) => {
    await tx`lock table log_events in share mode`;
    locked.resolve();
    await unblock.promise;
  });
  await locked.promise;
  return {
    release: async () => {
      unblock.resolve();
      await locker;
    },
  };
}
