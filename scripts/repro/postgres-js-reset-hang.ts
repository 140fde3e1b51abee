// Standalone reproduction: postgres.js 3.4.9 under Deno 2.9.6 never runs the next query on a handle
// whose connection was reset while pipelined queries were outstanding.
//   deno run -A postgres-js-reset-hang.ts postgres://user:pass@127.0.0.1:5432/db [pipeline|single]
// Each round pipelines 50 queries on a one-connection handle, terminates its backend from a second
// handle, then asks `select 1`. Seen: "in-flight={ok:2, err:ECONNRESET:48} next query=HANG (30 s)".
import postgres from "postgres";

const url = Deno.args[0];
const mode = Deno.args[1] ?? "pipeline";
addEventListener("unhandledrejection", (e) => {
  console.log(
    "unhandledrejection:",
    (e.reason as { code?: string })?.code,
    String(e.reason).slice(0, 80),
  );
  e.preventDefault();
});
addEventListener("error", (e) => {
  console.log("error event:", (e.error as { code?: string })?.code);
  e.preventDefault();
});
const sql = postgres(url, { max: 1, onnotice: () => {} });
const admin = postgres(url, { max: 1 });
const timeout = (ms: number, label: string) => new Promise((r) => setTimeout(() => r(label), ms));
for (let round = 1; round <= 5; round++) {
  const [{ pid }] = await sql`select pg_backend_pid() as pid`;
  const n = mode === "pipeline" ? 50 : 1;
  const queries = Array.from(
    { length: n },
    (_, i) =>
      sql.unsafe(`select pg_sleep(0.02), $1::int as i`, [i], { prepare: true })
        .then(() => "ok", (e) => "err:" + (e.code ?? e.message)),
  );
  await new Promise((r) => setTimeout(r, 30));
  await admin`select pg_terminate_backend(${pid})`;
  const res = await Promise.race([Promise.all(queries), timeout(5000, "HANG")]);
  const counts: Record<string, number> = {};
  if (Array.isArray(res)) { for (const s of res) counts[s] = (counts[s] ?? 0) + 1; }
  const next = await Promise.race([
    sql`select 1`.then(() => "ok", (e) => "err:" + e.code),
    timeout(30_000, "HANG (30 s)"),
  ]);
  console.log(
    `round ${round}: in-flight=${
      Array.isArray(res) ? JSON.stringify(counts) : res
    } next query=${next}`,
  );
  if (String(next).startsWith("HANG")) break;
}
Deno.exit(0);
