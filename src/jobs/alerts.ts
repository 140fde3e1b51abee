// The alerts job: every ALERT_CRON tick (each minute by default), under the job's lock and
// switch like the ingestor and the pruner, one evaluation of every rule and SLO (src/alerts/).
import type { AlertRunResult } from "../alerts/run.ts";
import { runAlerts } from "../alerts/run.ts";
import { loadDefinitions } from "../alerts/load.ts";
import { CHANNEL_TYPES } from "../alerts/channels.ts";
import { OUTCOMES } from "../alerts/notify.ts";
import { type JobDeps, type JobRun, runJob } from "./runner.ts";

/** Retries of a notice within one run: waits before the 2nd and 3rd attempts. */
export const NOTIFY_BACKOFF_MS = [1_000, 4_000];

export type AlertsReport = Omit<AlertRunResult, "rows" | "sloStatuses">;

export async function runAlertsJob(
  deps: JobDeps,
  opts: { onEnd?: Parameters<typeof runJob<AlertsReport>>[3] } = {},
): Promise<JobRun<AlertsReport>> {
  const { sql, config, metrics } = deps;
  // The alert and SLO gauges are read from the database at scrape time (metrics/collect.ts),
  // so every instance reports what the last run stored, whichever instance ran it.
  // Every series exists from the first run, at 0: increase() then sees the first notice.
  for (const channel_type of CHANNEL_TYPES) {
    for (const outcome of OUTCOMES) metrics.alertNotifications.inc({ channel_type, outcome }, 0);
  }
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
