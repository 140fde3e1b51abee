// Metrics read from PostgreSQL when /metrics is scraped rather than kept up to date by the
// code paths: partitions ahead, pending rollup deltas, folded event types, pool use, the job
// switches, alerts by state and each SLO's figures as the alerts job last stored them. One cheap round-trip (catalog views and small tables), bounded by a timeout so a
// slow database never stalls a scrape.
import type { Sql } from "../db/connect.ts";
import { logger } from "../logging.ts";
import type { Metrics } from "./registry.ts";
import { timeQuery } from "./query-timing.ts";

export const COLLECT_TIMEOUT_MS = 1000;

/** pg_stat_activity.state → label value; every label is always exported so series persist. */
const STATES: Record<string, string> = {
  "active": "active",
  "idle": "idle",
  "idle in transaction": "idle_in_transaction",
  "idle in transaction (aborted)": "idle_in_transaction",
};
const STATE_LABELS = ["active", "idle", "idle_in_transaction", "other"] as const;

interface Row {
  ahead: number;
  pending: number;
  connections: Record<string, number>;
  jobs: { job: string; enabled: boolean; last_success: number | null; switched: number }[];
  folds: { tier: string; types: number; events: number }[];
  alerts: { pending: number; firing: number };
  slos: {
    slo: string;
    service: string;
    sli: number | null;
    budget: number | null;
    rates: Record<string, number> | null;
  }[];
}

/**
 * Refreshes the database-backed gauges. Never throws: on error or timeout the
 * partitions and connection gauges become NaN (unknown) rather than keeping stale values.
 */
export async function collectDatabaseMetrics(
  metrics: Metrics,
  sql: Sql,
  opts: { timeoutMs?: number } = {},
): Promise<boolean> {
  const timeoutMs = opts.timeoutMs ?? COLLECT_TIMEOUT_MS;
  // `ahead` counts the run of consecutive days from tomorrow: with days sorted, the n-th day
  // after today equals today + n exactly until the first gap.
  const query = sql<Row[]>`
    with today as (select (now() at time zone 'UTC')::date as d)
    select
      (select count(*)::int
         from (select p.day, row_number() over (order by p.day) as n
                 from log_event_partitions p, today
                where p.day > today.d) x, today
        where x.day = today.d + x.n::int) as ahead,
      -- Normally a second's worth of commits; growth means compaction is not keeping up.
      (select count(*)::int from log_rollup_pending) as pending,
      coalesce((select json_object_agg(state, n)
         from (select coalesce(state, 'unknown') as state, count(*) as n
                 from pg_stat_activity
                where datname = current_database()
                  and application_name = current_setting('application_name')
                  and pid <> pg_backend_pid()
                group by 1) s), '{}'::json) as connections,
      coalesce((select json_agg(json_build_object(
                  'job', job, 'enabled', enabled,
                  'last_success', extract(epoch from last_success_at),
                  'switched', extract(epoch from updated_at)))
         from job_control), '[]'::json) as jobs,
      coalesce((select json_agg(json_build_object(
                  'tier', tier, 'types', folded_types, 'events', folded_events))
         from rollup_fold_stats), '[]'::json) as folds,
      (select json_build_object(
                'pending', count(*) filter (where state = 'pending'),
                'firing', count(*) filter (where state = 'firing'))
         from alerts where state in ('pending', 'firing')) as alerts,
      coalesce((select json_agg(json_build_object(
                  'slo', s.name, 'service', v.name, 'sli', s.sli,
                  'budget', s.error_budget_remaining, 'rates', s.burn_rates))
         from slos s join services v on v.id = s.service_id
        where s.evaluated_at is not null), '[]'::json) as slos`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const [row] = await timeQuery(metrics, "metrics_collect", () => Promise.race([query, timeout]));
    metrics.dbUp.set(1);
    metrics.partitionsAhead.set(row.ahead);
    metrics.rollupPending.set(row.pending);
    const byState: Record<string, number> = {};
    for (const [state, n] of Object.entries(row.connections)) {
      const label = STATES[state] ?? "other";
      byState[label] = (byState[label] ?? 0) + Number(n);
    }
    for (const state of STATE_LABELS) metrics.dbConnections.set({ state }, byState[state] ?? 0);
    await recordJobs(metrics, row.jobs);
    await recordFolds(metrics, row.folds);
    recordAlerts(metrics, row);
    return true;
  } catch (err) {
    query.cancel();
    metrics.collectFailures.inc();
    metrics.dbUp.set(0);
    metrics.partitionsAhead.set(NaN);
    metrics.rollupPending.set(NaN);
    for (const state of STATE_LABELS) metrics.dbConnections.set({ state }, NaN);
    for (const state of ["pending", "firing"]) metrics.alerts.set({ state }, NaN);
    for (const g of sloGauges(metrics)) g.reset();
    logger("metrics").warning("database metrics unavailable: {error}", {
      error: err instanceof Error ? err.message : String(err),
    });
    return false;
  } finally {
    clearTimeout(timer);
  }
}

async function recordJobs(metrics: Metrics, jobs: Row["jobs"]): Promise<void> {
  const current = new Map(
    (await metrics.jobLastSuccess.get()).values.map((v) => [v.labels.observian_job, v.value]),
  );
  for (const { job, enabled, last_success, switched } of jobs) {
    metrics.jobEnabled.set({ observian_job: job }, enabled ? 1 : 0);
    if (enabled) metrics.jobSwitchedOn.set({ observian_job: job }, switched);
    else metrics.jobSwitchedOn.remove({ observian_job: job });
    // job_control is shared by every instance, so an instance that lost the job's lock (or
    // restarted) still reports when the job last succeeded anywhere.
    if (last_success !== null && last_success > (current.get(job) ?? -Infinity)) {
      metrics.jobLastSuccess.set({ observian_job: job }, last_success);
    }
  }
}

/**
 * The fold counters follow the shared totals in rollup_fold_stats: each scrape adds what they
 * grew by since this process last looked (the first scrape adds the totals so far).
 */
async function recordFolds(metrics: Metrics, folds: Row["folds"]): Promise<void> {
  for (
    const [counter, field] of [
      [metrics.rollupFoldedEventTypes, "types"],
      [metrics.rollupFoldedEvents, "events"],
    ] as const
  ) {
    const current = new Map((await counter.get()).values.map((v) => [v.labels.tier, v.value]));
    for (const f of folds) {
      const grown = Number(f[field]) - (current.get(f.tier) ?? 0);
      // Always touched, so the series exist from the first scrape, at 0 when nothing folded.
      counter.inc({ tier: f.tier }, Math.max(0, grown));
    }
  }
}

const sloGauges = (m: Metrics) => [m.sloSli, m.sloErrorBudgetRemaining, m.sloBurnRate];

/** Alerts by state, and the SLO series replaced as a whole (a deleted SLO's disappear). */
function recordAlerts(metrics: Metrics, row: Pick<Row, "alerts" | "slos">): void {
  metrics.alerts.set({ state: "pending" }, row.alerts.pending);
  metrics.alerts.set({ state: "firing" }, row.alerts.firing);
  for (const g of sloGauges(metrics)) g.reset();
  for (const { slo, service, sli, budget, rates } of row.slos) {
    const labels = { slo, service };
    if (sli !== null) metrics.sloSli.set(labels, sli / 100);
    if (budget !== null) metrics.sloErrorBudgetRemaining.set(labels, budget);
    for (const [window, rate] of Object.entries(rates ?? {})) {
      metrics.sloBurnRate.set({ ...labels, window }, rate);
    }
  }
}
