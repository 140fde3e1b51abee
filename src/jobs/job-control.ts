// The job_control rows: each job's switch, run record and cursor state. Every instance reads
// and writes these rows directly, so nothing about a job's switch lives in process memory.
import type { Sql, Tx } from "../db/connect.ts";

export type JobName = "ingestor" | "pruner" | "alerts";

export interface JobControl {
  job: JobName;
  enabled: boolean;
  updated_at: Date;
  updated_by: string | null;
  last_started_at: Date | null;
  last_finished_at: Date | null;
  last_success_at: Date | null;
  last_error: string | null;
  consecutive_failures: number;
  state: Record<string, unknown>;
}

/** How a run ended, as the control row records it. */
export type RecordedOutcome = "success" | "failure" | "idle";

export class MissingJobRowError extends Error {
  override name = "MissingJobRowError";
  constructor(job: string) {
    super(`job_control has no row for "${job}" (migration 003 not applied?)`);
  }
}

function one(rows: JobControl[], job: string): JobControl {
  if (!rows[0]) throw new MissingJobRowError(job);
  return rows[0];
}

export async function getJobControl(sql: Sql | Tx, job: JobName): Promise<JobControl> {
  return one(await sql<JobControl[]>`select * from job_control where job = ${job}`, job);
}

export async function setJobEnabled(
  sql: Sql | Tx,
  job: JobName,
  enabled: boolean,
  updatedBy: string,
): Promise<JobControl> {
  return one(
    await sql<JobControl[]>`
      update job_control
      set enabled = ${enabled}, updated_at = now(), updated_by = ${updatedBy}
      where job = ${job}
      returning *`,
    job,
  );
}

/** Flips the switch in one statement, so two concurrent flips give on → off → on, never lost. */
export async function flipJobEnabled(
  sql: Sql | Tx,
  job: JobName,
  updatedBy: string,
): Promise<JobControl> {
  return one(
    await sql<JobControl[]>`
      update job_control
      set enabled = not enabled, updated_at = now(), updated_by = ${updatedBy}
      where job = ${job}
      returning *`,
    job,
  );
}

export async function markJobStarted(sql: Sql, job: JobName, at: Date): Promise<void> {
  await sql`update job_control set last_started_at = ${at} where job = ${job}`;
}

/**
 * Records the end of a run. Touches only the run columns and state, never `enabled`, so a
 * toggle that lands while the job runs is kept. An idle run (nothing was attempted) leaves
 * the success/failure record as it was.
 */
export async function markJobFinished(
  sql: Sql | Tx,
  job: JobName,
  run: {
    at: Date;
    outcome: RecordedOutcome;
    error?: string | null;
    state?: Record<string, unknown>;
  },
): Promise<void> {
  const state = run.state ?? null;
  await sql`
    update job_control set
      last_finished_at = ${run.at},
      last_success_at = case when ${run.outcome} = 'success' then ${run.at}::timestamptz
                             else last_success_at end,
      last_error = case ${run.outcome} when 'success' then null
                                       when 'failure' then ${run.error ?? "unknown error"}
                                       else last_error end,
      consecutive_failures = case ${run.outcome} when 'success' then 0
                                                 when 'failure' then consecutive_failures + 1
                                                 else consecutive_failures end,
      state = coalesce(${state === null ? null : sql.json(state as never)}::jsonb, state)
    where job = ${job}`;
}
