// Deno.cron registration for the three jobs. The handlers only call the job functions; the lock,
// the switch and the run record are theirs, so every instance can register the same crons.
import { logger } from "../logging.ts";
import { runIngestor } from "./github/job.ts";
import { runPruner } from "./pruner.ts";
import { runAlertsJob } from "./alerts.ts";
import type { JobDeps } from "./runner.ts";

/**
 * Ingest failures are not retried by the scheduler: the next tick comes within the poll
 * interval, and a retry sooner would be skipped by it anyway. A failed prune (say, a lock
 * that could not be taken) is worth retrying the same night.
 */
export const INGEST_BACKOFF_MS: number[] = [];
export const PRUNE_BACKOFF_MS = [60_000, 5 * 60_000, 15 * 60_000];

export interface RegisteredCrons {
  ingestor: string;
  pruner: string;
  alerts: string;
}

export function registerJobCrons(deps: JobDeps): RegisteredCrons | null {
  const log = logger("jobs");
  if (typeof Deno.cron !== "function") {
    log.warning("Deno.cron is unavailable (run with --unstable-cron); background jobs are off");
    return null;
  }
  const { config } = deps;
  void Deno.cron(
    "observian-ingestor",
    config.ingestCron,
    { backoffSchedule: INGEST_BACKOFF_MS },
    async () => {
      try {
        await runIngestor(deps);
      } catch (err) {
        // Recorded failures come back as outcomes; this is the database itself failing.
        log.error("ingestor run failed: {error}", { error: String(err) });
      }
    },
  );
  void Deno.cron(
    "observian-pruner",
    config.pruneCron,
    { backoffSchedule: PRUNE_BACKOFF_MS },
    async () => {
      const run = await runPruner(deps);
      // Throwing hands the retry to Deno.cron's backoff schedule.
      if (run.outcome === "failure") throw new Error(`prune failed: ${run.error}`);
    },
  );
  void Deno.cron("observian-alerts", config.alertCron, { backoffSchedule: [] }, async () => {
    try {
      // Failed notices are retried by the next run (the alert's row says it is still due).
      await runAlertsJob(deps);
    } catch (err) {
      log.error("alerts run failed: {error}", { error: String(err) });
    }
  });
  log.info("jobs scheduled: ingestor {ingest}, pruner {prune}, alerts {alerts} (UTC)", {
    ingest: config.ingestCron,
    prune: config.pruneCron,
    alerts: config.alertCron,
  });
  return { ingestor: config.ingestCron, pruner: config.pruneCron, alerts: config.alertCron };
}
