// The alerts job: every ALERT_CRON tick (each minute by default), under the job's lock and
// switch like the ingestor and the pruner, one evaluation of every rule and SLO (src/alerts/).
import type { AlertRunResult } from "../alerts/run.ts";
import { runAlerts } from "../alerts/run.ts";
import { loadDefinitions } from "../alerts/load.ts";
import { type JobDeps, type JobRun, runJob } from "./runner.ts";

/** Retries of a notice within one run: waits before the 2nd and 3rd attempts. */
export const NOTIFY_BACKOFF_MS = [1_000, 4_000];

export type AlertsReport = Omit<AlertRunResult, "rows" | "sloStatuses">;

export async function runAlertsJob(
  deps: JobDeps,
  opts: { onEnd?: Parameters<typeof runJob<AlertsReport>>[3] } = {},
): Promise<JobRun<AlertsReport>> {
  const { sql, config, metrics } = deps;
  return await runJob(deps, "alerts", async (_control, now) => {
    const defs = await loadDefinitions(sql, now);
    const result = await runAlerts(sql, defs, now, {
      repeatMs: config.alertRepeatIntervalMin * 60_000,
      defaultChannel: config.alertDefaultChannel,
      delivery: {
        timeoutMs: config.alertNotifyTimeoutMs,
        backoffMs: NOTIFY_BACKOFF_MS,
        publicUrl: config.signIn.publicUrl ?? "",
        onOutcome: (type, outcome) =>
          metrics.alertNotifications.inc({ channel_type: type, outcome }),
      },
    });
    metrics.alerts.set({ state: "pending" }, result.pending);
    metrics.alerts.set({ state: "firing" }, result.firing);
    // SLO gauges, from the figures the run computed: replaced as a whole, so a deleted SLO's
    // series disappear.
    const statuses = result.sloStatuses;
    metrics.sloSli.reset();
    metrics.sloErrorBudgetRemaining.reset();
    metrics.sloBurnRate.reset();
    for (const slo of defs.slos) {
      const st = statuses.get(slo.id);
      if (!st) continue;
      const labels = { slo: slo.name, service: slo.serviceName };
      if (st.sli !== null) metrics.sloSli.set(labels, st.sli / 100);
      if (st.errorBudgetRemaining !== null) {
        metrics.sloErrorBudgetRemaining.set(labels, st.errorBudgetRemaining);
      }
      for (const [window, rate] of Object.entries(st.burnRates)) {
        metrics.sloBurnRate.set({ ...labels, window }, rate);
      }
    }
    const { rows: _rows, sloStatuses: _statuses, ...report } = result;
    const failed = report.notices.failed > 0;
    return {
      outcome: failed ? "failure" : "success",
      error: failed ? `${report.notices.failed} notice(s) could not be delivered` : undefined,
      state: { last_result: report },
      result: report,
    };
  }, opts.onEnd);
}
