import assert from "node:assert/strict";
import { loadMigrations, migrate, MigrationError } from "../src/db/migrate.ts";
import { createDb } from "../src/db/connect.ts";
import { dbTest, emptyDatabase } from "./helpers/db.ts";

async function copyMigrations(): Promise<URL> {
  const dir = await Deno.makeTempDir();
  for (const m of await loadMigrations()) {
    await Deno.writeTextFile(`${dir}/${String(m.version).padStart(3, "0")}_${m.name}.sql`, m.sql);
  }
  return new URL(`file://${dir}/`);
}

dbTest("[migrate] a fresh database gets every migration, and a re-run is a no-op", async () => {
  const db = await emptyDatabase();
  try {
    const files = await loadMigrations();
    assert.ok(files.length >= 3);
    assert.deepEqual(await migrate(db.sql), files.map((f) => f.version));
    assert.deepEqual(await migrate(db.sql), []);
    const rows = await db.sql`select version, checksum from schema_migrations order by version`;
    assert.deepEqual(rows.map((r) => r.version), files.map((f) => f.version));
    assert.deepEqual(rows.map((r) => r.checksum), files.map((f) => f.checksum));
    const [t] = await db.sql`
      select count(*)::int as n from pg_tables
      where tablename in ('services', 'log_events', 'job_control')`;
    assert.equal(t.n, 3);
  } finally {
    await db.drop();
  }
});

dbTest("[migrate] an applied file whose content changed stops the run", async () => {
  const db = await emptyDatabase();
  const dir = await copyMigrations();
  try {
    await migrate(db.sql, { dir });
    const path = new URL("001_services.sql", dir);
    await Deno.writeTextFile(path, (await Deno.readTextFile(path)) + "\n-- edited\n");
    await Deno.writeTextFile(new URL("900_extra.sql", dir), "create table extra (x int);");
    await assert.rejects(() => migrate(db.sql, { dir }), (err: unknown) => {
      assert.ok(err instanceof MigrationError);
      assert.match(err.message, /001_services\.sql changed after it was applied/);
      return true;
    });
    // The refusal happens before anything new is applied.
    const [row] = await db.sql`select to_regclass('extra') as t`;
    assert.equal(row.t, null);
  } finally {
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
});

dbTest("[migrate] a failing migration rolls back alone and is not recorded", async () => {
  const db = await emptyDatabase();
  const dir = await copyMigrations();
  try {
    await Deno.writeTextFile(
      new URL("900_broken.sql", dir),
      "create table half_done (x int);\nselect no_such_function();",
    );
    await assert.rejects(() => migrate(db.sql, { dir }), /no_such_function/);
    const [row] = await db.sql`
      select to_regclass('half_done') as t,
             (select count(*)::int from schema_migrations where version = 900) as n,
             (select count(*)::int from schema_migrations) as total`;
    assert.equal(row.t, null);
    assert.equal(row.n, 0);
    assert.ok(row.total >= 3, "earlier migrations stay applied");
  } finally {
    await db.drop();
    await Deno.remove(dir, { recursive: true });
  }
});

dbTest("[migrate] concurrent migrators apply each migration exactly once", async () => {
  const db = await emptyDatabase();
  const handles = Array.from({ length: 4 }, () => createDb(db.url, { max: 2 }));
  try {
    const results = await Promise.all(handles.map((h) => migrate(h)));
    const all = results.flat().sort((a, b) => a - b);
    const files = await loadMigrations();
    assert.deepEqual(all, files.map((f) => f.version), "each version applied by exactly one");
    const [row] = await db.sql`select count(*)::int as n from schema_migrations`;
    assert.equal(row.n, files.length);
  } finally {
    await Promise.all(handles.map((h) => h.end()));
    await db.drop();
  }
});

Deno.test("[migrate] file names must be numbered", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/add_table.sql`, "select 1;");
    await assert.rejects(() => loadMigrations(new URL(`file://${dir}/`)), /NNN_name\.sql/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
