// ingest-single: one event per POST /logs, 64 connections for 30 s, against the baseline of the
// same load on GET /health (how much of the plain request rate ingest keeps). Afterwards every
// acknowledged event must be in the table.
import postgres from "postgres";
import type { BenchContext } from "./run.ts";
import { throwawayDatabase } from "./lib/env.ts";
import { countEvents, registerServices } from "./lib/events.ts";
import { log, maxRssRow, mb, ms, num } from "./lib/report.ts";
import { startServer } from "./lib/server.ts";
import { ensureWrk, runDenoLoad, runWrk, type WrkResult } from "./lib/wrk.ts";

const BENCH = "ingest-single";
const CONNECTIONS = 64;
const THREADS = 2;
const DURATION_S = 30;
const BASELINE_S = 10;
// Not counted: the first requests of a fresh server pay for JIT warm-up and opening its ingest
// connection (one second of them reached 150 ms), which is start-up, not steady state.
const WARMUP_S = 3;
const GOAL_RATE = 10_000;
const GOAL_P99_MS = 50;

export async function ingestSingle(ctx: BenchContext): Promise<void> {
  const db = await throwawayDatabase(BENCH);
  ctx.defer(db.close);
  const server = await startServer(BENCH, db.url);
  ctx.defer(server.stop);
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  ctx.defer(() => sql.end({ timeout: 5 }));
  await registerServices(sql); // so the run measures steady state, not first-sight registration
  const useWrk = await ensureWrk(BENCH);
  const rssNote = () => `server RSS ${mb(server.rss())}`;
  let n = 0;
  const load = (label: string, path: string, mode: "single" | "get", durationS: number) =>
    useWrk
      ? runWrk(BENCH, {
        url: `${server.base}${path}`,
        mode,
        threads: THREADS,
        connections: CONNECTIONS,
        durationS,
        label,
        status: rssNote,
      })
      : runDenoLoad(BENCH, {
        url: `${server.base}${path}`,
        connections: CONNECTIONS,
        durationS,
        label,
        ok: mode === "get" ? 200 : 201,
        status: rssNote,
        next: () =>
          mode === "get" ? { method: "GET" } : {
            method: "POST",
            body: JSON.stringify({
              service_name: `svc-${String(n % 50).padStart(2, "0")}`,
              status_code: n % 33 === 0 ? 503 : 200,
              latency_ms: (n++ % 250) + 0.5,
              event_type: "http.request",
            }),
          },
      });

  server.resetMaxRss();
  const health = await load("baseline GET /health", "/health", "get", BASELINE_S);
  describe("GET /health", health);

  // Requests in flight when wrk stopped may still commit: wait for the count to settle.
  const settledCount = async () => {
    let last = await countEvents(sql);
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const now = await countEvents(sql);
      if (now === last) break;
      last = now;
    }
    return last;
  };
  await load("warm-up POST /logs", "/logs", "single", WARMUP_S);
  const before = await settledCount();
  const ingest = await load("POST /logs (one event each)", "/logs", "single", DURATION_S);
  describe("POST /logs", ingest);
  const stored = await settledCount() - before;

  const rate = ingest.acked / ingest.durationS;
  const healthRate = health.acked / health.durationS;
  const failed = ingest.other + ingest.errors.connect + ingest.errors.read + ingest.errors.timeout;
  ctx.report.add({
    bench: BENCH,
    metric: `acknowledged events/s, -c${CONNECTIONS} ${DURATION_S}s`,
    value: num(rate),
    baseline: `GET /health ${num(healthRate)} req/s`,
    ratio: (rate / healthRate).toFixed(2),
    goal: `≥ ${num(GOAL_RATE)}/s`,
    pass: rate >= GOAL_RATE,
    note: `${num(ingest.acked)} × 201 of ${num(ingest.sent)} sent` +
      (failed ? `, ${num(failed)} failed or not 201` : ""),
  });
  ctx.report.add({
    bench: BENCH,
    metric: "p99 latency POST /logs",
    value: ms(ingest.latencyMs.p99),
    baseline: `GET /health p99 ${ms(health.latencyMs.p99)}`,
    ratio: (ingest.latencyMs.p99 / health.latencyMs.p99).toFixed(1),
    goal: `≤ ${GOAL_P99_MS} ms`,
    pass: ingest.latencyMs.p99 <= GOAL_P99_MS,
    note: `p50 ${ms(ingest.latencyMs.p50)}, p90 ${ms(ingest.latencyMs.p90)}, max ${
      ms(ingest.latencyMs.max)
    }${useWrk ? "" : " (Deno client)"}`,
  });
  const complete = stored >= ingest.acked && stored <= ingest.sent;
  ctx.report.add({
    bench: BENCH,
    metric: "acknowledged events stored",
    value: `${num(stored)} rows`,
    baseline: `${num(ingest.acked)} × 201`,
    ratio: "",
    goal: `201s ≤ rows ≤ sent (${num(ingest.sent)})`,
    pass: complete,
  });
  ctx.report.add(maxRssRow(BENCH, server.maxRss()));
}

function describe(what: string, r: WrkResult): void {
  log(
    BENCH,
    `${what}: ${num(r.requests / r.durationS)} req/s, ${num(r.acked)} ok of ${num(r.sent)} sent, ` +
      `p50 ${ms(r.latencyMs.p50)}, p99 ${ms(r.latencyMs.p99)}, errors ${JSON.stringify(r.errors)}`,
  );
}
