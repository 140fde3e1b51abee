// Numbered plain-SQL migrations (NNN_name.sql), each in its own transaction, serialised across
// instances by a transaction-level advisory lock and recorded with a checksum; a landed one never
// changes. Then the repeatable ones (R__name.sql, as Flyway names them): the current definitions
// of functions and views, applied in name order after every numbered one, and again whenever
// their text changes. Their `${name}` placeholders are filled from src/db/rollup-constants.ts.
import type { Sql } from "./connect.ts";
import { logger } from "../logging.ts";
import { SQL_PLACEHOLDERS } from "./rollup-constants.ts";

export const MIGRATIONS_DIR = new URL("../../sql/", import.meta.url);
/** Arbitrary but fixed: every Observian instance locks the same key. */
const MIGRATION_LOCK_KEY = 7_246_330_001;
const REPEATABLE = /^R__([\w-]+)\.sql$/;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/** A repeatable migration, its placeholders filled in. */
export interface Repeatable {
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
    if (!entry.isFile || !entry.name.endsWith(".sql") || REPEATABLE.test(entry.name)) continue;
    const m = entry.name.match(/^(\d+)_([\w-]+)\.sql$/);
    if (!m) {
      throw new MigrationError(
        `migration file name not NNN_name.sql or R__name.sql: ${entry.name}`,
      );
    }
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

/** The R__name.sql files of `dir` by name, each with `${placeholder}` replaced. */
export async function loadRepeatables(
  dir: URL = MIGRATIONS_DIR,
  placeholders: Readonly<Record<string, string>> = SQL_PLACEHOLDERS,
): Promise<Repeatable[]> {
  const out: Repeatable[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const m = entry.isFile ? entry.name.match(REPEATABLE) : null;
    if (!m) continue;
    const raw = await Deno.readTextFile(new URL(entry.name, dir));
    const text = raw.replace(/\$\{(\w+)\}/g, (_, key: string) => {
      const value = placeholders[key];
      if (value === undefined) {
        throw new MigrationError(`${entry.name}: no value for placeholder \${${key}}`);
      }
      return value;
    });
    out.push({ name: m[1], sql: text, checksum: await sha256(text) });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Applies the pending numbered migrations, then every repeatable one whose text differs from the
 * one last applied; returns the versions of the numbered ones applied by this call.
 */
export async function migrate(sql: Sql, opts: { dir?: URL } = {}): Promise<number[]> {
  const log = logger("db", "migrate");
  const migrations = await loadMigrations(opts.dir);
  const repeatables = await loadRepeatables(opts.dir);
  const applied: number[] = [];
  let newerSchema = false;
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
    // Only with repeatables to record: a run of numbered files alone leaves what it always did.
    if (repeatables.length > 0) {
      await tx`
      create table if not exists schema_repeatables (
        name text primary key,
        checksum text not null,
        applied_at timestamptz not null default now()
      )`;
    }
    const rows = await tx<{ version: number; name: string; checksum: string }[]>`
      select version, name, checksum from schema_migrations`;
    const byVersion = new Map(migrations.map((m) => [m.version, m]));
    for (const row of rows) {
      const file = byVersion.get(row.version);
      if (!file) {
        newerSchema ||= row.version > (migrations.at(-1)?.version ?? 0);
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
  // Code older than the schema would put back the function bodies that newer code replaced.
  if (newerSchema && repeatables.length > 0) {
    log.warning("repeatable migrations not applied: the database has newer numbered ones");
    return applied;
  }
  for (const r of repeatables) {
    const done = await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      const [row] = await tx<{ checksum: string }[]>`
        select checksum from schema_repeatables where name = ${r.name}`;
      if (row?.checksum === r.checksum) return false;
      await tx.unsafe(r.sql);
      await tx`
        insert into schema_repeatables (name, checksum) values (${r.name}, ${r.checksum})
        on conflict (name) do update set checksum = excluded.checksum, applied_at = now()`;
      return true;
    });
    if (done) log.info("applied repeatable migration {file}", { file: `R__${r.name}.sql` });
  }
  return applied;
}

const pad = (n: number) => String(n).padStart(3, "0");
