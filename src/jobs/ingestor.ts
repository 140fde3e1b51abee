// The GitHub ingestor job: what the cron tick and POST /control/ingestor-run both call.
import { type IngestResult, pollGitHub, readIngestorState, runOutcome } from "./github.ts";
import { type JobDeps, type JobRun, runJob } from "./runner.ts";

/**
 * One run: every source that is due is polled (all of them with `force`, which a manual run
 * uses; an exhausted rate limit is respected either way), under the ingestor's lock and
 * switch. The new ETags, cursors and rate limit are saved with the run record.
 */
export async function runIngestor(
  deps: JobDeps,
  opts: { force?: boolean } = {},
): Promise<JobRun<IngestResult>> {
  return await runJob(deps, "ingestor", async (control) => {
    const state = readIngestorState(control.state);
    const result = await pollGitHub(deps, state, opts);
    const { outcome, error } = runOutcome(result.polls);
    return { outcome, error, state: state as unknown as Record<string, unknown>, result };
  });
}
