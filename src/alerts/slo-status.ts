// GET /slos/{id}'s figures, computed on request as the alerts job computes them; and the
// job's own, stored for /metrics.
import type { Sql, Tx } from "../db/connect.ts";
import { type SloStatus, sloStatuses } from "./evaluate.ts";
import type { Slo, SloOut } from "./slos.ts";

/**
 * An SLO's figures now: SLI (%) and error budget left over its period (null without events),
 * burn rates by window, and its page and ticket alerts pending or firing (the alerts job's
 * state).
 */
export async function sloStatusNow(sql: Sql, slo: SloOut, now = new Date()) {
  const services = await sql<{ id: number; name: string; team: string | null }[]>`
    select id, name, team_owner as team from services where name = ${slo.service}`;
  const def: Slo = {
    id: slo.id,
    serviceId: services[0]?.id ?? 0,
    serviceName: slo.service,
    name: slo.name,
    objective: slo.objective,
    periodDays: slo.period_days,
    indicator: slo.indicator,
    latencyThresholdMs: slo.latency_threshold_ms,
  };
  const [statuses, alerting] = await Promise.all([
    sloStatuses(sql, [def], services, now),
    sql<{ alert: string; state: string; since: Date; value: number | null }[]>`
      select alert_key as alert, state, since, value from alerts
       where source = 'slo' and source_id = ${slo.id} and state in ('pending', 'firing')
       order by alert_key`,
  ]);
  const st = statuses.get(slo.id);
  return {
    sli: st?.sli ?? null,
    error_budget_remaining: st?.errorBudgetRemaining ?? null,
    burn_rates: st?.burnRates ?? null,
    alerting: alerting.map((a) => ({ ...a, since: a.since.toISOString() })),
  };
}

/** Stores each SLO's figures from a run (read by /metrics at scrape time on every instance). */
export async function saveSloFigures(
  sql: Sql | Tx,
  statuses: ReadonlyMap<number, SloStatus>,
  now: Date,
): Promise<void> {
  if (statuses.size === 0) return;
  const json = JSON.stringify([...statuses].map(([id, st]) => ({
    id,
    sli: st.sli,
    budget: st.errorBudgetRemaining,
    rates: st.burnRates,
  })));
  await sql`
    update slos s
       set sli = x.sli, error_budget_remaining = x.budget, burn_rates = x.rates,
           evaluated_at = ${now}
      from jsonb_to_recordset(${json}::text::jsonb)
           as x (id bigint, sli float8, budget float8, rates jsonb)
     where s.id = x.id`;
}
