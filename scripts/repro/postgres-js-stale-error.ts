// Standalone reproduction: postgres.js 3.4.9 fails the first query on a reconnected connection
// with the FATAL error of the connection it replaced, and (inside sql.begin) can throw an
// uncaught TypeError from a timer that would end a Deno or Node process.
//   deno run -A postgres-js-stale-error.ts postgres://user:pass@127.0.0.1:5432/db [plain|begin]
// Each round holds an exclusive lock so a read waits in PostgreSQL, terminates that backend
// (FATAL 57P01 arrives while the query is active, then the server closes), then runs 3 queries.
// Seen (plain): "blocked: err:CONNECTION_CLOSED / next 0 err:57P01 / next 1 ok / next 2 ok".
// Seen (begin): "UNCAUGHT TypeError: Cannot read properties of null (reading 'write')
//   at Immediate.nextWrite (connection.js:255)", then the next query hangs until CONNECT_TIMEOUT.
import postgres from "postgres";

const url = Deno.args[0];
const mode = Deno.args[1] ?? "plain";
addEventListener("error", (e) => {
  console.log("UNCAUGHT", String(e.error), (e.error as Error).stack?.split("\n")[1]?.trim());
  e.preventDefault();
});
addEventListener("unhandledrejection", (e) => {
  console.log("UNHANDLED", String(e.reason));
  e.preventDefault();
});
const sql = postgres(url, { max: 1, onnotice: () => {} });
const admin = postgres(url, { max: 1, onnotice: () => {} });
const race = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise((r) => setTimeout(() => r(`HANG (${ms / 1000} s)`), ms))]);
const query = (text: string) =>
  mode === "begin"
    ? sql.begin((
      tx,
    ) => [tx`select set_config('statement_timeout', '15000', true)`, tx.unsafe(text)])
    : sql.unsafe(text);
await admin`create table if not exists repro_lock (x int)`;
for (let round = 1; round <= 3; round++) {
  await sql`select 1`;
  let release!: () => void;
  const held = new Promise<void>((r) => release = r);
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => locked = r);
  const locker = admin.begin(async (tx) => {
    await tx`lock table repro_lock in access exclusive mode`;
    locked();
    await held;
  });
  await isLocked;
  const blocked = query("select * from repro_lock").then(() => "ok", (e) => "err:" + e.code);
  await new Promise((r) => setTimeout(r, 100));
  const killer = postgres(url, { max: 1, onnotice: () => {} });
  await killer`select pg_terminate_backend(pid) from pg_stat_activity
    where wait_event_type = 'Lock' and query like '%repro_lock%' and pid <> pg_backend_pid()`;
  await killer.end();
  console.log(`round ${round} blocked:`, await blocked);
  release();
  await locker;
  for (let i = 0; i < 3; i++) {
    console.log(
      `  next ${i}`,
      await race(query("select 1").then(() => "ok", (e) => "err:" + e.code), 15_000),
    );
  }
}
Deno.exit(0);
