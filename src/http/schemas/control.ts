// The control endpoints' query strings, bodies and answers (src/jobs computes the answers).
import { z } from "@hono/zod-openapi";
import { boolParam, intParam } from "./params.ts";

const time = (example: string) => z.string().nullable().openapi({ example });

const PollRecordSchema = z.object({
  source: z.string().openapi({ example: "repo:denoland/deno" }),
  at: z.string().openapi({ example: "2026-11-28T07:00:00.012Z" }),
  outcome: z.enum([
    "ok",
    "not_modified",
    "rate_limited",
    "error",
    "timeout",
    "skipped_interval",
    "skipped_rate_limit",
  ]).openapi({ example: "ok" }),
  status: z.number().int().nullable().openapi({ example: 200 }),
  latency_ms: z.number().nullable().openapi({ example: 182.4 }),
  pages: z.number().int().openapi({ example: 1 }),
  new: z.number().int().openapi({ example: 12 }),
  duplicates: z.number().int().openapi({ example: 18 }),
  too_old: z.number().int().openapi({ example: 0 }),
  invalid: z.number().int().openapi({ example: 0 }),
  rate_limit_remaining: z.number().int().nullable().openapi({ example: 4987 }),
  rate_limit_reset: time("2026-11-28T08:00:00.000Z"),
  error: z.string().nullable().openapi({ example: null }),
}).openapi("GitHubPoll");

export const IngestorStatusSchema = z.object({
  enabled: z.boolean().openapi({ example: true }),
  source: z.string().openapi({ example: "public", description: "GITHUB_SOURCE" }),
  schedule: z.string().openapi({ example: "* * * * *", description: "INGEST_CRON (UTC)" }),
  last_run_at: time("2026-11-28T07:00:00.004Z"),
  last_finished_at: time("2026-11-28T07:00:00.391Z"),
  last_success_at: time("2026-11-28T07:00:00.391Z"),
  last_error: z.string().nullable().openapi({ example: null }),
  consecutive_failures: z.number().int().openapi({ example: 0 }),
  events_ingested_total: z.number().int().openapi({ example: 5210 }),
  rate_limit_remaining: z.number().int().nullable().openapi({ example: 4987 }),
  rate_limit_reset: time("2026-11-28T08:00:00.000Z"),
  rate_limited_until: time("2026-11-28T08:00:00.000Z").openapi({
    description: "Set while GitHub's rate limit is exhausted: no request before then.",
  }),
  next_run_at: time("2026-11-28T07:01:00.000Z").openapi({
    description: "Next cron tick; null while switched off.",
  }),
  updated_at: time("2026-11-28T06:55:12.000Z"),
  updated_by: z.string().nullable().openapi({ example: "api-key#1" }),
  sources: z.array(z.object({
    source: z.string().openapi({ example: "public" }),
    poll_interval_s: z.number().int().openapi({ example: 60 }),
    last_poll_at: time("2026-11-28T07:00:00.004Z"),
    next_poll_at: time("2026-11-28T07:01:00.004Z"),
    has_etag: z.boolean().openapi({ example: true }),
    cursor: time("2026-11-28T06:59:58.000Z"),
    last_poll: PollRecordSchema.nullable(),
  })),
}).openapi("IngestorStatus");

export const IngestorHealthSchema = z.object({
  running: z.boolean().openapi({ example: false }),
  reason: z.string().optional().openapi({
    example: "failing: public: HTTP 500: Server Error",
    description: "disabled, stale, or failing: <last error>",
  }),
  last_success_at: time("2026-11-28T07:00:00.391Z"),
  interval_s: z.number().openapi({ example: 60, description: "The poll interval in force" }),
}).openapi("IngestorHealth");

// No example on enable: the body's example sets the switch, and the two must agree.
export const ToggleQuery = z.strictObject({
  enable: boolParam("enable").openapi({
    description: "Set the switch; without it (and without a body) the switch flips. When the " +
      "body's enabled is given too, the two must agree (else 400).",
  }),
});

export const ToggleBody = z.object({
  enabled: z.boolean().optional().openapi({ example: true }),
}).openapi("JobToggleInput");

export const ToggleResult = z.object({
  job: z.enum(["ingestor", "pruner", "alerts"]).openapi({ example: "ingestor" }),
  enabled: z.boolean().openapi({ example: true }),
  updated_at: z.string().openapi({ example: "2026-11-28T07:00:00.000Z" }),
  updated_by: z.string().nullable().openapi({ example: "api-key#1" }),
}).openapi("JobToggleResult");

const RunStatus = z.enum(["success", "failure", "idle", "skipped"]).openapi({
  description: "idle: nothing was due (rate limit exhausted); skipped: the job is switched " +
    "off (reason disabled) or running elsewhere (reason locked).",
  example: "success",
});

export const IngestorRunResult = z.object({
  status: RunStatus,
  reason: z.enum(["disabled", "locked"]).optional().openapi({ example: "locked" }),
  error: z.string().nullable().openapi({ example: null }),
  started_at: z.string().openapi({ example: "2026-11-28T07:00:00.004Z" }),
  duration_ms: z.number().openapi({ example: 391.2 }),
  new: z.number().int().openapi({ example: 12 }),
  duplicates: z.number().int().openapi({ example: 18 }),
  rate_limit_remaining: z.number().int().nullable().openapi({ example: 4987 }),
  polls: z.array(PollRecordSchema),
}).openapi("IngestorRunResult");

export const PruneQuery = z.strictObject({
  days: intParam(1, 3650, "days").openapi({
    description: "Days of logs to keep, 1 to 3650; default RETENTION_DAYS.",
    example: 7,
  }),
  dry_run: boolParam("dry_run").openapi({
    description: "Compute the figures without changing anything (default false).",
    example: true,
  }),
});

export const PruneResult = z.object({
  status: RunStatus,
  reason: z.enum(["disabled", "locked"]).optional().openapi({ example: "locked" }),
  error: z.string().nullable().openapi({ example: null }),
  deleted: z.number().int().openapi({ example: 120_400 }),
  dropped_partitions: z.number().int().openapi({ example: 1 }),
  cutoff: z.string().openapi({
    example: "2026-11-21T07:00:00.000Z",
    description: "now − days, exact: rows older than this are removed.",
  }),
  rollup_cutoff: z.string().openapi({ example: "2026-11-21T07:00:00.000Z" }),
  audit_deleted: z.number().int().openapi({
    example: 310,
    description: "Audit log entries older than AUDIT_RETENTION_DAYS removed (whatever days " +
      "says); with dry_run, how many would be.",
  }),
  markers_deleted: z.number().int().openapi({
    example: 3,
    description: "Markers (deployments, releases) older than cutoff removed; with dry_run, " +
      "how many would be.",
  }),
  dry_run: z.boolean().openapi({ example: false }),
  duration_ms: z.number().openapi({ example: 84.1 }),
}).openapi("PruneResult");

export const PrunerStatusSchema = z.object({
  enabled: z.boolean().openapi({ example: true }),
  schedule: z.string().openapi({ example: "0 3 * * *", description: "PRUNE_CRON (UTC)" }),
  retention_days: z.number().int().openapi({ example: 7 }),
  rollup_retention_days: z.number().int().openapi({ example: 7 }),
  last_run_at: time("2026-11-28T03:00:00.002Z"),
  last_finished_at: time("2026-11-28T03:00:00.090Z"),
  last_success_at: time("2026-11-28T03:00:00.090Z"),
  last_error: z.string().nullable().openapi({ example: null }),
  consecutive_failures: z.number().int().openapi({ example: 0 }),
  next_run_at: time("2026-11-29T03:00:00.000Z"),
  updated_at: time("2026-11-20T10:00:00.000Z"),
  updated_by: z.string().nullable().openapi({ example: "migration" }),
  last_result: z.object({
    deleted: z.number().int(),
    dropped_partitions: z.number().int(),
    cutoff: z.string(),
    duration_ms: z.number(),
    audit_deleted: z.number().int().optional(),
    markers_deleted: z.number().int().optional(),
  }).nullable().openapi({
    example: {
      deleted: 120_400,
      dropped_partitions: 1,
      cutoff: "2026-11-21T03:00:00.002Z",
      duration_ms: 84.1,
    },
  }),
}).openapi("PrunerStatus");

const AlertsReportSchema = z.object({
  rules: z.number().int().openapi({ example: 12 }),
  slos: z.number().int().openapi({ example: 3 }),
  watched: z.number().int().openapi({
    description: "Rule × service and SLO alert pairs evaluated.",
    example: 160,
  }),
  pending: z.number().int().openapi({ example: 1 }),
  firing: z.number().int().openapi({ example: 2 }),
  notices: z.object({
    sent: z.number().int(),
    failed: z.number().int(),
    silenced: z.number().int(),
    no_channel: z.number().int(),
  }).openapi({ example: { sent: 1, failed: 0, silenced: 0, no_channel: 0 } }),
}).openapi("AlertsReport");

export const AlertsStatusSchema = z.object({
  enabled: z.boolean().openapi({ example: true }),
  schedule: z.string().openapi({ example: "* * * * *", description: "ALERT_CRON (UTC)" }),
  repeat_interval_min: z.number().int().openapi({ example: 240 }),
  default_channel: z.string().nullable().openapi({ example: "ops" }),
  last_run_at: time("2026-11-28T03:00:00.002Z"),
  last_finished_at: time("2026-11-28T03:00:00.090Z"),
  last_success_at: time("2026-11-28T03:00:00.090Z"),
  last_error: z.string().nullable().openapi({ example: null }),
  consecutive_failures: z.number().int().openapi({ example: 0 }),
  next_run_at: time("2026-11-28T03:01:00.000Z"),
  updated_at: time("2026-11-20T10:00:00.000Z"),
  updated_by: z.string().nullable().openapi({ example: "migration" }),
  last_result: AlertsReportSchema.nullable(),
}).openapi("AlertsStatus");

export const AlertsRunResult = z.object({
  status: RunStatus,
  reason: z.enum(["disabled", "locked"]).optional().openapi({ example: "locked" }),
  error: z.string().nullable().openapi({ example: null }),
  started_at: z.string().openapi({ example: "2026-11-28T07:00:00.004Z" }),
  duration_ms: z.number().openapi({ example: 41.2 }),
  report: AlertsReportSchema.nullable(),
}).openapi("AlertsRunResult");
