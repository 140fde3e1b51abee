// The GitHub poller as a job (named "ingestor" in job_control and the /control API): what the
// cron tick and POST /control/ingestor-run both call. This folder holds the poller whole:
// client.ts (GitHub REST and its politeness rules), mapping.ts (GitHub event → log event),
// state.ts (what job_control.state remembers), poll.ts (one poll of one source), store.ts
// (exactly-once storage) and this file (every source, under the runner's lock and switch).
import { type JobDeps, type JobRun, type OnRunEnd, runJob } from "../runner.ts";
import { gitHubClient, parseSource } from "./client.ts";
import { pollSource } from "./poll.ts";
import {
  type IngestorState,
  type PollOutcome,
  type PollRecord,
  type RateLimitState,
  readIngestorState,
} from "./state.ts";

export interface IngestResult {
  polls: PollRecord[];
  new: number;
  duplicates: number;
  rate_limit: RateLimitState;
}

/**
 * One run: every source that is due is polled (all of them with `force`, which a manual run
 * uses; an exhausted rate limit is respected either way), under the ingestor's lock and
 * switch. The new ETags, cursors and rate limit are saved with the run record.
 */
export async function runIngestor(
  deps: JobDeps,
  opts: { force?: boolean; onEnd?: OnRunEnd<IngestResult> } = {},
): Promise<JobRun<IngestResult>> {
  return await runJob(deps, "ingestor", async (control) => {
    const state = readIngestorState(control.state);
    const result = await pollGitHub(deps, state, opts);
    const { outcome, error } = runOutcome(result.polls);
    return { outcome, error, state: state as unknown as Record<string, unknown>, result };
  }, opts.onEnd);
}

/** Polls every configured source once (those that are due); mutates and returns the state. */
export async function pollGitHub(
  deps: JobDeps,
  state: IngestorState,
  opts: { force?: boolean } = {},
): Promise<IngestResult> {
  const ctx = {
    deps,
    client: gitHubClient(deps.config),
    state,
    force: opts.force ?? false,
    clock: deps.now ?? (() => new Date()),
  };
  const polls: PollRecord[] = [];
  for (const spec of deps.config.githubSources) {
    polls.push(await pollSource(ctx, parseSource(spec)));
  }
  return {
    polls,
    new: polls.reduce((n, p) => n + p.new, 0),
    duplicates: polls.reduce((n, p) => n + p.duplicates, 0),
    rate_limit: { ...state.rate_limit },
  };
}

const FAILED: PollOutcome[] = ["error", "timeout", "rate_limited"];
const POLLED: PollOutcome[] = ["ok", "not_modified"];

/** A run fails when any source failed, succeeds when one was polled, else did nothing. */
export function runOutcome(polls: PollRecord[]): {
  outcome: "success" | "failure" | "idle";
  error?: string;
} {
  const failed = polls.filter((p) => FAILED.includes(p.outcome));
  if (failed.length) {
    return { outcome: "failure", error: failed.map((p) => `${p.source}: ${p.error}`).join("; ") };
  }
  return { outcome: polls.some((p) => POLLED.includes(p.outcome)) ? "success" : "idle" };
}
