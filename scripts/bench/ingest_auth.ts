// ingest-auth: what access control costs single-event ingest. One server, one database; rounds
// alternate POST /logs with no access control at all (no key exists anywhere, so requireRight
// lets the request through) and with a stored writer key (looked up by digest at every request,
// with a rate limit too high to refuse, so the bucket and the RateLimit fields are paid for).
// Goal: the key's throughput and p50 within 10% of the figures without it, in the same run.
import postgres from "postgres";
import type { BenchContext } from "./run.ts";
import { throwawayDatabase } from "./lib/env.ts";
import { registerServices } from "./lib/events.ts";
import { log, maxRssRow, median, ms, num } from "./lib/report.ts";
import { startServer } from "./lib/server.ts";
import { ensureWrk, runDenoLoad, runWrk, type WrkResult } from "./lib/wrk.ts";
import { createKey } from "../../src/access/keys.ts";

const BENCH = "ingest-auth";
const CONNECTIONS = 64;
const THREADS = 2;
const ROUNDS = 5;
const PHASE_S = 8;
const WARMUP_S = 3;
const GOAL = 0.1;
// Whether access control is on is cached for 1 s per instance (src/http/middleware/auth.ts).
const SWITCH_WAIT_MS = 1500;

type Mode = "open" | "key";

export async function ingestAuth(ctx: BenchContext): Promise<void> {
  const db = await throwawayDatabase(BENCH);
  ctx.defer(db.close);
  const server = await startServer(BENCH, db.url);
  ctx.defer(server.stop);
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  ctx.defer(() => sql.end({ timeout: 5 }));
  await registerServices(sql);
  const useWrk = await ensureWrk(BENCH);

  let token = "";
  const switchTo = async (mode: Mode) => {
    await sql`delete from api_keys`;
    if (mode === "key") {
      // The highest limit a key may have: never refused here, but every request spends from
      // its bucket and carries the RateLimit fields.
      token = (await createKey(sql, {
        name: "bench writer",
        role: "writer",
        rate_limit_per_s: 1_000_000,
      }, { actor: "bench" })).token;
    }
    await new Promise((r) => setTimeout(r, SWITCH_WAIT_MS));
    await probe(server.base, mode, token);
  };

  let n = 0;
  const load = (mode: Mode, label: string, durationS: number): Promise<WrkResult> => {
    const headers = mode === "key" ? { authorization: `Bearer ${token}` } : undefined;
    return useWrk
      ? runWrk(BENCH, {
        url: `${server.base}/logs`,
        mode: "single",
        threads: THREADS,
        connections: CONNECTIONS,
        durationS,
        label,
        headers,
      })
      : runDenoLoad(BENCH, {
        url: `${server.base}/logs`,
        connections: CONNECTIONS,
        durationS,
        label,
        ok: 201,
        headers,
        next: () => ({
          method: "POST",
          body: JSON.stringify({
            service_name: `svc-${String(n % 50).padStart(2, "0")}`,
            status_code: 200,
            latency_ms: (n++ % 250) + 0.5,
          }),
        }),
      });
  };

  server.resetMaxRss();
  const results: Record<Mode, WrkResult[]> = { open: [], key: [] };
  for (const mode of ["open", "key"] as const) {
    await switchTo(mode);
    await load(mode, `warm-up ${describeMode(mode)}`, WARMUP_S);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    // open-key, key-open, ...: drift in the machine's load falls on both alike.
    const order: Mode[] = round % 2 ? ["open", "key"] : ["key", "open"];
    for (const mode of order) {
      await switchTo(mode);
      const r = await load(mode, `round ${round}/${ROUNDS} ${describeMode(mode)}`, PHASE_S);
      results[mode].push(r);
      log(
        BENCH,
        `round ${round} ${describeMode(mode)}: ${num(r.acked / r.durationS)} events/s, ` +
          `p50 ${ms(r.latencyMs.p50)}, p99 ${ms(r.latencyMs.p99)}, ${num(r.other)} not 201, ` +
          `errors ${JSON.stringify(r.errors)}`,
      );
    }
  }
  await sql`delete from api_keys`;

  const rate = (m: Mode) => median(results[m].map((r) => r.acked / r.durationS));
  const p50 = (m: Mode) => median(results[m].map((r) => r.latencyMs.p50));
  const p99 = (m: Mode) => median(results[m].map((r) => r.latencyMs.p99));
  const failed = (m: Mode) =>
    results[m].reduce(
      (a, r) => a + r.other + r.errors.connect + r.errors.read + r.errors.timeout,
      0,
    );
  // Each round's two phases are adjacent: the median of their ratios is steadier on a busy
  // machine than the ratio of the medians.
  const paired = (f: (r: WrkResult) => number) =>
    median(results.key.map((k, i) => f(k) / f(results.open[i])));
  const rateRatio = paired((r) => r.acked / r.durationS);
  const p50Ratio = paired((r) => r.latencyMs.p50);
  ctx.report.add({
    bench: BENCH,
    metric: `acknowledged events/s with a writer key, -c${CONNECTIONS}, median of ${ROUNDS}`,
    value: num(rate("key")),
    baseline: `no access control ${num(rate("open"))}/s`,
    ratio: rateRatio.toFixed(3),
    // The ratio is the median of each round's own ratio, so it may differ from value ÷ baseline.
    goal: `≥ ${1 - GOAL} × without`,
    pass: rateRatio >= 1 - GOAL,
    note: `per round ${
      results.key.map((k, i) => (k.acked / results.open[i].acked).toFixed(2)).join(", ")
    }; ${failed("key")} / ${failed("open")} requests failed or not 201 (key / open)` +
      (useWrk ? "" : " (Deno client)"),
  });
  ctx.report.add({
    bench: BENCH,
    metric: "p50 latency POST /logs with a writer key",
    value: ms(p50("key")),
    baseline: `no access control ${ms(p50("open"))}`,
    ratio: p50Ratio.toFixed(3),
    goal: `≤ ${1 + GOAL} × without`,
    pass: p50Ratio <= 1 + GOAL,
    note: `p99 ${ms(p99("key"))} vs ${ms(p99("open"))}`,
  });
  ctx.report.add(maxRssRow(BENCH, server.maxRss()));
}

function describeMode(mode: Mode): string {
  return mode === "key" ? "writer key" : "no access control";
}

/** Makes sure the server sees the switch: open mode takes no key, key mode needs one. */
async function probe(base: string, mode: Mode, token: string): Promise<void> {
  const post = (headers: Record<string, string>) =>
    fetch(`${base}/logs`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ service_name: "svc-00", status_code: 200, latency_ms: 1 }),
    }).then(async (r) => (await r.body?.cancel(), r.status));
  const bare = await post({});
  const expected = mode === "open" ? 201 : 401;
  if (bare !== expected) {
    throw new Error(`switching to ${mode}: POST /logs without a key answered ${bare}`);
  }
  if (mode === "key") {
    const keyed = await post({ authorization: `Bearer ${token}` });
    if (keyed !== 201) throw new Error(`POST /logs with the writer key answered ${keyed}`);
  }
}
