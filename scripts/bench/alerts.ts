// alerts: one evaluation of every alert rule and SLO of 500 services, as the alerts job runs it
// each minute, on three days of events (rollups). Baseline, in the same run and database: the
// plainest rollup read an evaluation needs, per-service counts and errors over the last 6 hours
// of minute rows. Goal: every SLO of 500 services evaluated in well under a second (≤ 500 ms at
// the median), the whole run (rules too) under a second.
import postgres from "postgres";
import type { BenchContext } from "./run.ts";
import { throwawayDatabase } from "./lib/env.ts";
import { log, median, ms, num } from "./lib/report.ts";
import { progressPrinter, seedDatabase } from "../synthetic-events.ts";
import { sloStatuses, type WatchedService } from "../../src/alerts/evaluate.ts";
import { loadDefinitions } from "../../src/alerts/load.ts";
import { runAlerts } from "../../src/alerts/run.ts";

const BENCH = "alerts";
const SERVICES = 500;
const EVENTS = 1_500_000;
const WARMUP = 3;
const RUNS = 15;
const SLO_GOAL_MS = 500;
const RUN_GOAL_MS = 1000;

export async function alerts(ctx: BenchContext): Promise<void> {
  const db = await throwawayDatabase(BENCH);
  ctx.defer(db.close);
  log(BENCH, `seeding ${num(EVENTS)} events over 3 days for ${SERVICES} services`);
  await seedDatabase(
    db.url,
    { events: EVENTS, days: 3, services: SERVICES },
    progressPrinter(BENCH),
  );
  const sql = postgres(db.url, { max: 8, onnotice: () => {} });
  ctx.defer(() => sql.end({ timeout: 5 }));

  // An availability and a latency SLO per service; three rules over every service.
  await sql`
    insert into slos (service_id, name, objective, period_days, indicator, latency_threshold_ms)
    select id, 'availability', 99.9, 28, 'availability', null from services
    union all
    select id, 'latency', 99, 28, 'latency', 250 from services`;
  await sql`
    insert into alert_rules (name, kind, threshold, window_s, for_s, severity) values
      ('5xx over 5%', 'error_rate', 5, 300, 120, 'page'),
      ('slow p95', 'latency_p95', 800, 900, 0, 'ticket'),
      ('went silent', 'no_traffic', 0, 1800, 0, 'page')`;
  const services = await sql<WatchedService[]>`select id, name, team_owner as team from services`;
  const defs = await loadDefinitions(sql, new Date());
  log(
    BENCH,
    `${defs.slos.length} SLOs and ${defs.rules.length} rules over ${services.length} services`,
  );

  const time = async (fn: () => Promise<unknown>) => {
    const t = performance.now();
    await fn();
    return performance.now() - t;
  };
  const baseline = () =>
    sql`select service_id, sum(count), sum(errors) from log_rollup_1m
         where bucket >= now() - interval '6 hours' group by service_id`;
  const slo = () => sloStatuses(sql, defs.slos, services, new Date());
  const run = () =>
    runAlerts(sql, defs, new Date(), {
      repeatMs: 4 * 3_600_000,
      defaultChannel: undefined,
      delivery: { timeoutMs: 1000, backoffMs: [], publicUrl: "" },
    });
  for (let i = 0; i < WARMUP; i++) await Promise.all([time(baseline), time(slo), time(run)]);
  const samples = { baseline: [] as number[], slo: [] as number[], run: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    // Interleaved, so the machine's drift hits all three alike.
    samples.baseline.push(await time(baseline));
    samples.slo.push(await time(slo));
    samples.run.push(await time(run));
    if ((i + 1) % 5 === 0) log(BENCH, `${i + 1}/${RUNS} rounds`);
  }
  const b = median(samples.baseline);
  const s = median(samples.slo);
  const r = median(samples.run);
  ctx.report.add({
    bench: BENCH,
    metric: `SLO statuses, ${defs.slos.length} SLOs (median)`,
    value: ms(s),
    baseline: `${ms(b)} (6 h of minute rows, 500 services)`,
    ratio: `${(s / b).toFixed(1)}×`,
    goal: `≤ ${SLO_GOAL_MS} ms`,
    pass: s <= SLO_GOAL_MS,
  });
  ctx.report.add({
    bench: BENCH,
    metric: `whole evaluation: ${defs.rules.length} rules × ${SERVICES} + SLOs (median)`,
    value: ms(r),
    baseline: ms(b),
    ratio: `${(r / b).toFixed(1)}×`,
    goal: `≤ ${RUN_GOAL_MS} ms`,
    pass: r <= RUN_GOAL_MS,
  });
}
