import assert from "node:assert/strict";
import {
  loadMigrations,
  loadRepeatables,
  migrate,
  MigrationError,
  MIGRATIONS_DIR,
} from "../src/db/migrate.ts";
import { createDb, type Sql } from "../src/db/connect.ts";
import { ensurePartitionWindow } from "../src/db/partitions.ts";
import { EventWriter } from "../src/ingest/writer.ts";
import { summarize } from "../src/query/summary/summarize.ts";
import type { SummaryQueryInput } from "../src/query/summary/window.ts";
import { compactAll, dbTest, emptyDatabase } from "./helpers/db.ts";
import { newEvent } from "./helpers/events.ts";

/**
 * A copy of the numbered migrations (the schema of a database that main at 4221882 created:
 * 001–012, no repeatable ones), and of the repeatable ones when asked.
 */
async function copyMigrations(opts: { repeatables?: boolean } = {}): Promise<URL> {
  const dir = await Deno.makeTempDir();
  for (const m of await loadMigrations()) {
    await Deno.writeTextFile(`${dir}/${String(m.version).padStart(3, "0")}_${m.name}.sql`, m.sql);
  }
  if (opts.repeatables) {
    for await (const e of Deno.readDir(MIGRATIONS_DIR)) {
      if (e.name.startsWith("R__")) {
        await Deno.copyFile(new URL(e.name, MIGRATIONS_DIR), `${dir}/${e.name}`);
      }
    }
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
    const [r] = await db.sql`select count(*)::int as n from schema_repeatables`;
    assert.equal(r.n, (await loadRepeatables()).length);
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

// ---- repeatable migrations (R__*.sql) --------------------------------------------------------

/** Every function and view of the database with its definition, and every table column. */
async function definitions(sql: Sql) {
  return await sql`
    select 'function' as kind, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
      as name, pg_get_functiondef(p.oid) as def
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'
    union all
    select 'view', c.relname::text, pg_get_viewdef(c.oid)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind = 'v'
    union all
    select 'column', c.relname || '.' || a.attname,
      concat_ws(' ', format_type(a.atttypid, a.atttypmod), a.attnotnull,
                pg_get_expr(d.adbin, d.adrelid))
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid and c.relkind in ('r', 'p') and not c.relispartition
    join pg_namespace n on n.oid = c.relnamespace and n.nspname = 'public'
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attnum > 0 and not a.attisdropped
    order by 1, 2`;
}

/** When each repeatable was applied, and the row version of each function (a rewrite moves it). */
async function applications(sql: Sql) {
  return await sql`
    select 'file' as kind, name, checksum || ' ' || applied_at::text as v from schema_repeatables
    union all
    select 'function', p.oid::regprocedure::text, p.xmin::text
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'
    order by 1, 2`;
}

dbTest("[migrate] repeatables: applied last, a re-run is a no-op, an edit re-applies", async () => {
  const db = await emptyDatabase();
  const dir = await copyMigrations({ repeatables: true });
  try {
    await migrate(db.sql, { dir });
    const files = await loadRepeatables(dir);
    assert.deepEqual(files.map((f) => f.name), ["rollup_functions", "rollup_views"]);
    const rows = await db.sql`select name, checksum from schema_repeatables order by name`;
    assert.deepEqual(rows.map((r) => [r.name, r.checksum]), files.map((f) => [f.name, f.checksum]));
    const first = await applications(db.sql);
    assert.deepEqual(await migrate(db.sql, { dir }), []);
    assert.deepEqual(await applications(db.sql), first, "nothing applied again");

    const path = new URL("R__rollup_functions.sql", dir);
    const text = await Deno.readTextFile(path);
    const edited = text.replace(
      "select coalesce(jsonb_object_agg(key, total), '{}'::jsonb)",
      "select coalesce(jsonb_object_agg(key, total), '{}'::jsonb) -- edited",
    );
    assert.notEqual(edited, text);
    await Deno.writeTextFile(path, edited);
    assert.deepEqual(await migrate(db.sql, { dir }), []);
    const [fn] = await db.sql`select prosrc from pg_proc where proname = 'observian_counts_add'`;
    assert.match(fn.prosrc, /-- edited/);
    const [{ n }] = await db.sql`select observian_counts_add('{"a": 1}', '{"a": 2}')->>'a' as n`;
    assert.equal(n, "3");
    const [views] = (await applications(db.sql)).filter((r) => r.name === "rollup_views");
    assert.deepEqual(views, first.find((r) => r.name === "rollup_views"), "the other file stays");
  } finally {
    await db.drop();
    await Deno.remove(new URL(dir), { recursive: true });
  }
});

dbTest("[migrate] code older than the schema leaves the repeatables alone", async () => {
  const db = await emptyDatabase();
  const dir = await copyMigrations({ repeatables: true });
  try {
    await migrate(db.sql, { dir });
    // A newer release added migration 999 and its own function bodies.
    await db.sql`insert into schema_migrations (version, name, checksum) values (999, 'x', 'x')`;
    await db.sql`update schema_repeatables set checksum = 'newer'`;
    const before = await applications(db.sql);
    assert.deepEqual(await migrate(db.sql, { dir }), []);
    assert.deepEqual(await applications(db.sql), before);
  } finally {
    await db.drop();
    await Deno.remove(new URL(dir), { recursive: true });
  }
});

Deno.test("[migrate] a placeholder without a value stops the run", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/R__f.sql`, "select ${no_such_constant};");
    await assert.rejects(
      () => loadRepeatables(new URL(`file://${dir}/`)),
      /R__f\.sql: no value for placeholder \$\{no_such_constant\}/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

dbTest(
  "[migrate] a database created by main at 4221882 upgrades: same definitions, same data",
  async () => {
    const old = await emptyDatabase();
    const fresh = await emptyDatabase();
    const dir = await copyMigrations();
    const sql = old.sql;
    const writer = new EventWriter(sql, { compactEveryMs: Infinity });
    try {
      await migrate(sql, { dir });
      const [none] = await sql`select to_regclass('schema_repeatables') as t`;
      assert.equal(none.t, null, "the schema of a deployed instance");
      await ensurePartitionWindow(sql, { retentionDays: 30 });
      // Rollup data written the old way: compacted rows (with folded event types, tier 1m
      // capped at 2 types) and pending deltas, over latencies on and beside bucket bounds.
      const minute = Math.floor(Date.now() / 60_000) * 60_000;
      const latencies = [
        0,
        0.0004,
        0.001,
        1e7,
        1.7e308,
        ...[-300, -1, 0, 1, 57, 300, 700]
          .flatMap((i) => [1.02 ** i, 1.02 ** i * 1.0001]),
      ];
      const events = (round: number) =>
        latencies.map((latencyMs, i) =>
          newEvent({
            serviceName: ["up-a", "up-b"][i % 2],
            statusCode: [200, 404, 503][i % 3],
            eventType: i % 4 === 0 ? null : `type.${(i + round) % 5}`,
            latencyMs,
            timestamp: new Date(minute - (i % 3) * 60_000 - round * 3_600_000),
          })
        );
      await writer.write(events(1));
      await sql`select observian_rollup_compact(2, 100000)`;
      await writer.write(events(0));
      const probe = `{${latencies.join(",")},NaN,Infinity,-1}`;
      const indexes = async () =>
        (await sql`select array_agg(observian_latency_index(x) order by o)::int[] as a
          from unnest(${probe}::float8[]) with ordinality u (x, o)`)[0].a;
      const snapshot = async () =>
        await sql`select t, jsonb_agg(r order by r::text) as rows
          from (select 'log_rollup_1m_store' as t, to_jsonb(x) as r from log_rollup_1m_store x
                union all select 'log_rollup_1h_store', to_jsonb(x) from log_rollup_1h_store x
                union all select 'log_rollup_1d_store', to_jsonb(x) from log_rollup_1d_store x
                union all select 'log_rollup_pending', to_jsonb(x) from log_rollup_pending x
                union all select 'log_latency_1h_store', to_jsonb(x) from log_latency_1h_store x
                union all select 'log_latency_1d_store', to_jsonb(x) from log_latency_1d_store x
                union all select 'rollup_fold_stats', to_jsonb(x) from rollup_fold_stats x
                union all select 'log_rollup_1h', to_jsonb(x) - 'row_version' from log_rollup_1h x
               ) s (t, r)
          group by t order by t`;
      const dataBefore = await snapshot();
      assert.equal(dataBefore.length, 8, "every table holds rows");
      const indexesBefore = await indexes();
      const defsBefore = await definitions(sql);

      assert.deepEqual(await migrate(sql), [], "no numbered migration left");
      await migrate(fresh.sql);
      const defs = await definitions(sql);
      assert.deepEqual(defs, await definitions(fresh.sql), "as a database created now");
      assert.notDeepEqual(defs, defsBefore, "the repeatables replaced the definitions of 012");
      assert.deepEqual(await snapshot(), dataBefore, "the data is untouched");
      assert.deepEqual(await indexes(), indexesBefore, "every latency keeps its bucket");
      assert.deepEqual(await migrate(sql), [], "a re-run is a no-op");

      // Ingest, compaction and the summary work on, and agree with the facts.
      await writer.write(events(2));
      await compactAll(sql);
      const now = minute + 60_000;
      const summary = await summarize(sql, {
        start_time: new Date(now - 4 * 3_600_000).toISOString(),
        end_time: new Date(now).toISOString(),
      } as SummaryQueryInput, { now });
      const [facts] = await sql`select count(*)::int as n,
          count(*) filter (where status_code >= 500)::int as errors from log_events`;
      assert.equal(summary.total_logs, facts.n);
      assert.equal(summary.total_logs, latencies.length * 3);
      assert.equal(summary.total_errors, facts.errors);
      assert.equal(summary.latency.max, 1.7e308);
      assert.equal(summary.latency.min, 0);
      const tiers = async () =>
        await sql`select service_id, bucket, count, errors, lat_min, lat_max, lat_idx, lat_cnt,
            status_counts from log_rollup_1h_store order by 1, 2`;
      const compacted = await tiers();
      await sql`select observian_rollup_rebuild(${new Date(now - 86_400_000)}, ${new Date(now)})`;
      assert.deepEqual(await tiers(), compacted, "the rollups equal a rebuild from the facts");
    } finally {
      await Deno.remove(new URL(dir), { recursive: true });
      await old.drop();
      await fresh.drop();
    }
  },
);
