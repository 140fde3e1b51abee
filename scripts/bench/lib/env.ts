// The PostgreSQL a benchmark runs against: an embedded cluster (a throwaway one in a temp
// folder, or a kept one for the 10M dataset), or a fresh database on DATABASE_URL that is
// dropped afterwards.
import postgres from "postgres";
import { describeUrl } from "../../../src/db/connect.ts";
import { startEmbeddedPostgres } from "../../../src/db/embedded.ts";
import { log } from "./report.ts";
import { createScratchDatabase } from "../../lib/scratch-db.ts";

export interface BenchDb {
  url: string;
  /** What it is, for the report. */
  description: string;
  close(): Promise<void>;
}

/** A database that exists only for this benchmark. */
export async function throwawayDatabase(bench: string): Promise<BenchDb> {
  const external = Deno.env.get("DATABASE_URL");
  if (external) return await freshDatabase(bench, external);
  const dir = await Deno.makeTempDir({ prefix: `observian-bench-${bench}-` });
  await Deno.chmod(dir, 0o755); // as root, PostgreSQL runs as "postgres" and must enter it
  log(bench, `starting an embedded PostgreSQL in ${dir}`);
  const pg = await startEmbeddedPostgres({ dataDir: dir });
  await tune(pg.url, "8GB");
  return {
    url: pg.url,
    description: "embedded PostgreSQL (temporary cluster, durable settings)",
    async close() {
      await pg.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** The embedded cluster kept in `dir` between runs (the seeded dataset), or a fresh database. */
export async function keptDatabase(bench: string, dir: string): Promise<BenchDb> {
  const external = Deno.env.get("DATABASE_URL");
  if (external) return await freshDatabase(bench, external);
  log(bench, `starting the embedded PostgreSQL kept in ${dir}`);
  const pg = await startEmbeddedPostgres({ dataDir: dir });
  // Smaller: WAL segments kept for recycling stay on disk with the dataset between runs.
  await tune(pg.url, "2GB");
  return {
    url: pg.url,
    description: `embedded PostgreSQL kept in ${dir}`,
    close: () => pg.stop(),
  };
}

async function freshDatabase(bench: string, adminUrl: string): Promise<BenchDb> {
  const db = await createScratchDatabase(adminUrl, "observian_bench_");
  log(bench, `created database ${db.name} on ${describeUrl(adminUrl)} (dropped at the end)`);
  return { url: db.url, description: `DATABASE_URL, fresh database ${db.name}`, close: db.drop };
}

/**
 * Checkpoint spacing for bulk loads on our own clusters (the default checkpoints every 1 GB of
 * WAL, which a 10M-row COPY crosses many times). Needs no restart.
 */
async function tune(url: string, maxWalSize: "2GB" | "8GB"): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    // ALTER SYSTEM takes no bind parameters; the value is one of two constants.
    await sql.unsafe(`alter system set max_wal_size = '${maxWalSize}'`);
    await sql`alter system set checkpoint_timeout = '30min'`;
    await sql`select pg_reload_conf()`;
  } finally {
    await sql.end();
  }
}
