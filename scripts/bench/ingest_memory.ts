// ingest-memory: the burst that drove the server to 824 MB (issue 10, defect 6): 40 concurrent
// clients each POSTing a 10,000-event JSON array (~1.1 MB), retrying 503s after Retry-After,
// against a server with default settings. Reports the server's peak resident memory (VmHWM,
// the kernel's high-water mark, so no peak falls between samples) beside its idle RSS measured
// in the same run, and checks that every acknowledged event was stored.
import postgres from "postgres";
import type { BenchContext } from "./run.ts";
import { burst } from "./lib/burst.ts";
import { throwawayDatabase } from "./lib/env.ts";
import { log, mb, num, ticker } from "./lib/report.ts";
import { readStatusKb, startServer } from "./lib/server.ts";

const BENCH = "ingest-memory";
const CLIENTS = 40;
const EVENTS = 10_000;
const GOAL_MB = 300;

export async function ingestMemory(ctx: BenchContext): Promise<void> {
  const db = await throwawayDatabase(BENCH);
  ctx.defer(db.close);
  const server = await startServer(BENCH, db.url);
  ctx.defer(server.stop);
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  ctx.defer(() => sql.end({ timeout: 5 }));

  // Idle: after a little traffic (JIT, the database connections), before any big body.
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${server.base}/logs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service_name: "warm-up", status_code: 200, latency_ms: i }),
    });
    await res.body?.cancel();
  }
  await new Promise((r) => setTimeout(r, 2000));
  const idle = readStatusKb(server.pid, "VmRSS") * 1024;
  log(BENCH, `idle RSS ${mb(idle)}; firing ${CLIENTS} clients × ${num(EVENTS)} events`);

  const tick = ticker(BENCH, () => `burst under way · server RSS ${mb(server.rss())}`);
  let r;
  try {
    r = await burst({ base: server.base, clients: CLIENTS, events: EVENTS });
  } finally {
    tick.stop();
  }
  const peak = readStatusKb(server.pid, "VmHWM") * 1024;
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from log_events e join services s on s.id = e.service_id
    where s.name = ${r.service}`;
  const rate = r.acceptedEvents / (r.durationMs / 1000);
  log(
    BENCH,
    `${r.created}/${r.bodies} bodies acknowledged in ${(r.durationMs / 1000).toFixed(1)} s ` +
      `(${num(rate)} events/s), ${r.refused} answers 503 (retried), slowest answer ` +
      `${(r.maxLatencyMs / 1000).toFixed(1)} s; peak RSS ${mb(peak)}`,
  );
  ctx.report.add({
    bench: BENCH,
    metric: `peak RSS, ${CLIENTS} clients × ${num(EVENTS)}-event batches`,
    value: mb(peak),
    baseline: `idle RSS ${mb(idle)}`,
    ratio: (peak / idle).toFixed(2),
    goal: `≤ ${GOAL_MB} MB`,
    pass: peak <= GOAL_MB * 1024 * 1024,
    note: `VmHWM after the burst; ${r.created}/${r.bodies} bodies acknowledged ` +
      `(${r.refused} × 503, retried), ${num(rate)} events/s, slowest answer ` +
      `${(r.maxLatencyMs / 1000).toFixed(1)} s`,
  });
  const failures = r.errors + r.givenUp + Object.values(r.other).reduce((a, b) => a + b, 0);
  ctx.report.add({
    bench: BENCH,
    metric: "every acknowledged event stored",
    value: `${num(row.n)} rows`,
    baseline: `${num(r.acceptedEvents)} acknowledged`,
    ratio: "",
    goal: "equal, all bodies 201",
    pass: row.n === r.acceptedEvents && failures === 0 && r.created === r.bodies,
    note: failures
      ? `${failures} bodies never acknowledged (${JSON.stringify(r.other)}, ${r.errors} errors)`
      : undefined,
  });
}
