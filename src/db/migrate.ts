// Numbered plain-SQL migrations, each in its own transaction, serialised across
// instances by a transaction-level advisory lock and recorded with a checksum.
import type { Sql } from "./connect.ts";
import { logger } from "../logging.ts";

export const MIGRATIONS_DIR = new URL("../../sql/", import.meta.url);
/** Arbitrary but fixed: every Observian instance locks the same key. */
const MIGRATION_LOCK_KEY = 7_246_330_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export class MigrationError extends Error {
  override name = "MigrationError";
}

export async function loadMigrations(dir: URL = MIGRATIONS_DIR): Promise<Migration[]> {
  const out: Migration[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".sql")) continue;
    const m = entry.name.match(/^(\d+)_([\w-]+)\.sql$/);
    if (!m) throw new MigrationError(`migration file name not NNN_name.sql: ${entry.name}`);
    const text = await Deno.readTextFile(new URL(entry.name, dir));
    out.push({ version: Number(m[1]), name: m[2], sql: text, checksum: await sha256(text) });
  }
  out.sort((a, b) => a.version - b.version);
  for (let i = 1; i < out.length; i++) {
    if (out[i].version === out[i - 1].version) {
      throw new MigrationError(`two migrations numbered ${out[i].version}`);
    }
  }
  return out;
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Applies what is pending; returns the versions applied by this call. */
export async function migrate(sql: Sql, opts: { dir?: URL } = {}): Promise<number[]> {
  const log = logger("db", "migrate");
  const migrations = await loadMigrations(opts.dir);
  const applied: number[] = [];
  // Verify every landed file first, so an edited migration stops start-up before anything runs.
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`
      create table if not exists schema_migrations (
        version integer primary key,
        name text not null,
        checksum text not null,
        applied_at timestamptz not null default now()
      )`;
    const rows = await tx<{ version: number; name: string; checksum: string }[]>`
      select version, name, checksum from schema_migrations`;
    const byVersion = new Map(migrations.map((m) => [m.version, m]));
    for (const row of rows) {
      const file = byVersion.get(row.version);
      if (!file) {
        log.warning("applied migration {version}_{name} has no file here (newer code ran?)", {
          version: row.version,
          name: row.name,
        });
      } else if (file.checksum !== row.checksum) {
        throw new MigrationError(
          `migration ${pad(row.version)}_${row.name}.sql changed after it was applied ` +
            `(checksum ${row.checksum.slice(0, 12)} in database, ${
              file.checksum.slice(0, 12)
            } on disk); add a new migration instead of editing it`,
        );
      }
    }
  });
  for (const m of migrations) {
    const done = await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      const [row] = await tx`select 1 from schema_migrations where version = ${m.version}`;
      if (row) return false;
      await tx.unsafe(m.sql);
      await tx`
        insert into schema_migrations (version, name, checksum)
        values (${m.version}, ${m.name}, ${m.checksum})`;
      return true;
    });
    if (done) {
      applied.push(m.version);
      log.info("applied migration {file}", { file: `${pad(m.version)}_${m.name}.sql` });
    }
  }
  return applied;
}

const pad = (n: number) => String(n).padStart(3, "0");
