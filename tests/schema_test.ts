import assert from "node:assert/strict";
import {
  ensurePartitions,
  ensurePartitionWindow,
  listPartitionDays,
  partitionWindow,
  utcDay,
} from "../src/db/partitions.ts";
import { seedServices } from "../src/db/default-services.ts";
import { dbTest, preparedDatabase } from "./helpers/db.ts";

const db = await preparedDatabase({ RETENTION_DAYS: "7" });

const DAY = 86_400_000;

dbTest("[schema] partitions cover today - retention through today + 7 days", async () => {
  const days = await listPartitionDays(db.sql);
  const now = Date.now();
  const expected = Array.from({ length: 15 }, (_, i) => utcDay(new Date(now + (i - 7) * DAY)));
  for (const d of expected) assert.ok(days.includes(d), `partition for ${d}`);
  assert.equal(await ensurePartitionWindow(db.sql, { retentionDays: 7 }), 0, "idempotent");
});

dbTest("[schema] partition window arithmetic is in UTC days", () => {
  const w = partitionWindow(new Date("2026-03-01T23:30:00-05:00"), 2, 7);
  assert.deepEqual(w, { from: "2026-02-28", to: "2026-03-09" });
  return Promise.resolve();
});

dbTest("[schema] concurrent partition upkeep does not collide", async () => {
  const results = await Promise.all(
    Array.from({ length: 5 }, () => ensurePartitions(db.sql, "2030-01-01", "2030-01-10")),
  );
  assert.equal(results.reduce((a, b) => a + b, 0), 10);
});

dbTest("[schema] a day boundary routes to the right partition", async () => {
  const [svc] = await db.sql`select id from services where name = 'auth-service'`;
  const day = utcDay(new Date());
  const [row] = await db.sql`
    insert into log_events (service_id, "timestamp", status_code, latency_ms)
    values (${svc.id}, ${day + "T00:00:00Z"}, 200, 1.5)
    returning tableoid::regclass::text as part`;
  assert.equal(row.part, `log_events_p${day.replaceAll("-", "")}`);
});

dbTest(
  "[schema] an event whose day has no partition is refused and nothing is stored",
  async () => {
    const [svc] = await db.sql`select id from services where name = 'auth-service'`;
    const [before] = await db.sql`select count(*)::int as n from log_events`;
    await assert.rejects(
      () =>
        db.sql`insert into log_events (service_id, "timestamp", status_code, latency_ms)
             values (${svc.id}, '1999-01-01T00:00:00Z', 200, 1)`,
      (err: { code?: string }) => err.code === "23514",
    );
    const [after] = await db.sql`select count(*)::int as n from log_events`;
    assert.equal(after.n, before.n);
    const [def] = await db.sql`
    select count(*)::int as n from pg_partitioned_table p
    where p.partrelid = 'log_events'::regclass and p.partdefid <> 0`;
    assert.equal(def.n, 0, "no default partition");
  },
);

dbTest("[schema] the fact table's checks refuse impossible rows", async () => {
  const [svc] = await db.sql`select id from services where name = 'auth-service'`;
  const now = new Date().toISOString();
  for (const [status, latency] of [[99, 1], [600, 1], [200, -1], [200, Infinity]]) {
    await assert.rejects(
      () =>
        db.sql`insert into log_events (service_id, "timestamp", status_code, latency_ms)
               values (${svc.id}, ${now}, ${status}, ${latency})`,
      (err: { code?: string }) => err.code === "23514",
      `status ${status}, latency ${latency}`,
    );
  }
});

dbTest("[schema] every unique key of log_events includes service_id (Citus-ready)", async () => {
  const rows = await db.sql`
    select i.indexrelid::regclass::text as name,
           array(select a.attname::text from unnest(i.indkey) k
                 join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k) as cols
    from pg_index i where i.indrelid = 'log_events'::regclass and i.indisunique`;
  assert.ok(rows.length >= 1);
  for (const r of rows) assert.ok(r.cols.includes("service_id"), `${r.name}: ${r.cols}`);
});

dbTest("[schema] seeding is idempotent and keeps an operator's edits", async () => {
  const seed = [{ name: "auth-service", teamOwner: "Identity Team" }, {
    name: "new-service",
    teamOwner: null,
  }];
  await db.sql`update services set team_owner = 'Platform' where name = 'auth-service'`;
  assert.equal(await seedServices(db.sql, seed), 1);
  assert.equal(await seedServices(db.sql, seed), 0);
  const rows = await db.sql`select name, team_owner from services order by name`;
  assert.deepEqual(rows.map((r) => [r.name, r.team_owner]), [
    ["auth-service", "Platform"],
    ["checkout-service", "Payments Team"],
    ["inventory-service", "Ops Team"],
    ["new-service", null],
  ]);
});

dbTest("[schema] job_control holds one row per job", async () => {
  const rows = await db.sql`
    select job, enabled, consecutive_failures, state from job_control order by job`;
  assert.deepEqual(rows.map((r) => [r.job, r.enabled, r.consecutive_failures, r.state]), [
    ["alerts", true, 0, {}],
    ["ingestor", false, 0, {}],
    ["pruner", true, 0, {}],
  ]);
  await assert.rejects(
    () => db.sql`insert into job_control (job, enabled) values ('other', true)`,
    (err: { code?: string }) => err.code === "23514",
  );
});

dbTest("[schema] teardown", async () => {
  await db.drop();
});
