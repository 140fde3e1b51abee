// The one Prometheus registry of a process, and every metric Observian exports. Created in
// main (or a test) and passed down; nothing registers on prom-client's global registry.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * A label-less gauge that is absent from the exposition until it is set (prom-client exports an
 * unset one as 0, which an alert cannot tell from a real 0), and again once the value it was
 * given stops being true (`setUntil`).
 */
export class KnownGauge extends Gauge {
  #until: number | null = null;

  override reset(): void {
    super.reset();
    this.remove();
  }

  /** The value, until `until` (ms since the epoch) has passed; null: until set again. */
  setUntil(value: number, until: number | null): void {
    this.#until = until;
    this.set(value);
  }

  unset(): void {
    this.#until = null;
    this.remove();
  }

  collect(): void {
    if (this.#until !== null && Date.now() >= this.#until) this.unset();
  }
}

export function createMetrics(opts: { processMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.processMetrics ?? true) {
    collectDefaultMetrics({ register: registry });
    // Gauges named like counters, which `promtool check metrics` rejects; the same totals are
    // the sum over the unsuffixed gauges' `type` label.
    for (const name of ["handles", "requests", "resources"]) {
      registry.removeSingleMetric(`nodejs_active_${name}_total`);
    }
  }
  const registers = [registry];
  return {
    registry,

    httpRequests: new Counter({
      name: "http_requests_total",
      help: "HTTP requests answered, by method, route template and status code.",
      labelNames: ["method", "route", "status"] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: "http_request_duration_seconds",
      help: "Time to answer an HTTP request, by method and route template.",
      labelNames: ["method", "route"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),

    eventsIngested: new Counter({
      name: "observian_events_ingested_total",
      help: "Log events committed, by source (api, github).",
      labelNames: ["source"] as const,
      registers,
    }),
    eventsRejected: new Counter({
      name: "observian_events_rejected_total",
      help: "Log events (or bodies) refused, by reason.",
      labelNames: ["reason"] as const,
      registers,
    }),
    ingestBatchEvents: new Histogram({
      name: "observian_ingest_batch_events",
      help: "Events per committed transaction (group commit batch size).",
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000],
      registers,
    }),
    ingestInflightBytes: new Gauge({
      name: "observian_ingest_inflight_bytes",
      help: "Request bodies POST /logs holds now (read, parsed or awaiting commit), read at " +
        "scrape; at INGEST_MAX_INFLIGHT_BYTES new ones are refused with 503.",
      registers,
    }),
    rateLimited: new Counter({
      name: "observian_rate_limited_total",
      help: "Requests refused because a key went over its rate_limit_per_s on this instance, " +
        "by the key's visible prefix (never its token).",
      labelNames: ["key_prefix"] as const,
      registers,
    }),
    eventsDeduplicated: new Counter({
      name: "observian_events_deduplicated_total",
      help: "Events not stored again because their idempotency key (event_id or " +
        "Idempotency-Key) was stored within INGEST_DEDUPE_HOURS: retries made safe.",
      registers,
    }),
    ingestCommitTimeouts: new Counter({
      name: "observian_ingest_commit_timeouts_total",
      help: "Writes answered 503 because their commit took longer than " +
        "INGEST_COMMIT_TIMEOUT_MS (the database was unreachable or a connection was stuck).",
      registers,
    }),
    ingestCommitDuration: new Histogram({
      name: "observian_ingest_commit_duration_seconds",
      help: "Time to commit one group of events, rollups included.",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),

    dbQueryDuration: new Histogram({
      name: "observian_db_query_duration_seconds",
      help: "Database time of the API's main queries, by query name.",
      labelNames: ["query"] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    dbUp: new Gauge({
      name: "observian_database_up",
      help: "1 when the latest readiness check or scrape reached the database in time, else 0.",
      registers,
    }),
    dbHandleReplacements: new Counter({
      name: "observian_db_handle_replacements_total",
      help: "Database handles replaced after a lost connection or a stuck query, by handle " +
        "(pool, ingest, health).",
      labelNames: ["handle"] as const,
      registers,
    }),
    dbPoolMax: new Gauge({
      name: "observian_db_pool_max_connections",
      help: "Most connections this instance may open (DB_POOL_MAX).",
      registers,
    }),
    // postgres.js keeps its pool queues private, so pool use is read from the server side at
    // scrape time (see collect.ts): sessions with our application_name on our database.
    dbConnections: new Gauge({
      name: "observian_db_connections",
      help: "Open database sessions of this application on its database, by state (active, " +
        "idle, idle_in_transaction, other), as pg_stat_activity reports them at scrape time.",
      labelNames: ["state"] as const,
      registers,
    }),

    // The job's name (`ingestor`, `pruner`) is `observian_job`, not `job`: Prometheus gives
    // every scraped series its own `job` target label, and without honor_labels ours would be
    // renamed `exported_job`. Prefixed with the application's name, it cannot meet any target
    // label a scrape config or service discovery adds (`job`, `instance`, `task`, `service`...).
    jobRuns: new Counter({
      name: "observian_job_runs_total",
      help: "Background job runs, by job and outcome (success, failure, idle, " +
        "skipped_locked, skipped_disabled).",
      labelNames: ["observian_job", "outcome"] as const,
      registers,
    }),
    jobLastSuccess: new Gauge({
      name: "observian_job_last_success_timestamp_seconds",
      help: "Unix time of the job's last successful run: this instance's, or the shared " +
        "record in job_control read at scrape time, whichever is later.",
      labelNames: ["observian_job"] as const,
      registers,
    }),
    jobSwitchedOn: new Gauge({
      name: "observian_job_switched_on_timestamp_seconds",
      help: "Unix time the job's switch was last set, while it is on (read at scrape time): " +
        "a job that has not succeeded since is stale from then.",
      labelNames: ["observian_job"] as const,
      registers,
    }),
    jobEnabled: new Gauge({
      name: "observian_job_enabled",
      help: "1 when the job's switch in job_control is on, else 0 (read at scrape time).",
      labelNames: ["observian_job"] as const,
      registers,
    }),
    jobDuration: new Histogram({
      name: "observian_job_run_duration_seconds",
      help: "Duration of background job runs.",
      labelNames: ["observian_job"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),

    githubPolls: new Counter({
      name: "observian_github_polls_total",
      help: "GitHub API requests made by the ingestor, by outcome and HTTP status.",
      labelNames: ["outcome", "status"] as const,
      registers,
    }),
    githubRateLimitRemaining: new KnownGauge({
      name: "observian_github_rate_limit_remaining",
      help: "x-ratelimit-remaining from GitHub's latest answer; absent before GitHub was asked " +
        "and after the limit's reset time has passed (the count is not known then).",
      registers,
    }),

    prunerDeletedRows: new Counter({
      name: "observian_pruner_deleted_rows_total",
      help: "Log events removed by the pruner (row deletes and dropped partitions).",
      registers,
    }),
    prunerDroppedPartitions: new Counter({
      name: "observian_pruner_dropped_partitions_total",
      help: "Daily partitions dropped by the pruner.",
      registers,
    }),
    prunerDeletedAuditRows: new Counter({
      name: "observian_pruner_deleted_audit_rows_total",
      help: "Audit log entries older than AUDIT_RETENTION_DAYS removed by the pruner.",
      registers,
    }),
    auditRefusalsDropped: new Counter({
      name: "observian_audit_refusals_dropped_total",
      help: "Refusals on admin routes not written to the audit log, by reason: rate (over the " +
        "per-instance cap) or error (the insert failed or timed out).",
      labelNames: ["reason"] as const,
      registers,
    }),
    rollupPending: new Gauge({
      name: "observian_rollup_pending_rows",
      help: "Rollup deltas waiting for compaction (log_rollup_pending), read at scrape.",
      registers,
    }),
    rollupCompactionFailures: new Counter({
      name: "observian_rollup_compaction_failures_total",
      help: "Rollup compaction transactions of this instance that failed (on time, the " +
        "connection or the data). A failure on the data is retried on fewer deltas, and one " +
        "delta that fails alone is set aside in log_rollup_rejected.",
      registers,
    }),
    // Shared across instances (rollup_fold_stats, written by compaction), read at scrape.
    rollupFoldedEventTypes: new Counter({
      name: "observian_rollup_folded_event_types_total",
      help: "Event types a rollup row could not keep (over ROLLUP_MAX_EVENT_TYPES) and counted " +
        "under event_other instead, by tier (1m, 1h, 1d); all instances' compactions, read at " +
        "scrape. Growth means a service sends high-cardinality event types.",
      labelNames: ["tier"] as const,
      registers,
    }),
    rollupFoldedEvents: new Counter({
      name: "observian_rollup_folded_events_total",
      help: "Events whose type a rollup row counted under event_other (see " +
        "observian_rollup_folded_event_types_total), by tier; read at scrape.",
      labelNames: ["tier"] as const,
      registers,
    }),
    liveSubscribers: new Gauge({
      name: "observian_live_subscribers",
      help: "Open live-feed streams (Server-Sent Events) on this instance, read at scrape.",
      registers,
    }),
    liveDropped: new Counter({
      name: "observian_live_dropped_subscribers_total",
      help: "Live-feed streams ended because their client fell too far behind.",
      registers,
    }),
    partitionsAhead: new Gauge({
      // A count, not a duration: promtool's lint wants durations in seconds, not days.
      name: "observian_partitions_ahead",
      help: "Daily log_events partitions in place for the consecutive days after today (UTC) " +
        "(read at scrape time; NaN when the database did not answer).",
      registers,
    }),
    collectFailures: new Counter({
      name: "observian_metrics_collect_failures_total",
      help: "Scrapes whose database-backed metrics could not be read (error or timeout).",
      registers,
    }),
    // Read at scrape time from what the alerts job last stored (collect.ts).
    alerts: new Gauge({
      name: "observian_alerts",
      help: "Alerts by state (pending or firing) after the last evaluation.",
      labelNames: ["state"] as const,
      registers,
    }),
    alertNotifications: new Counter({
      name: "observian_alert_notifications_total",
      help: "Notification attempts, by channel type and outcome (delivered, failed: retried " +
        "or left for the next run, rejected: a 4xx, not retried).",
      labelNames: ["channel_type", "outcome"] as const,
      registers,
    }),
    sloSli: new Gauge({
      name: "observian_slo_sli",
      help: "An SLO's indicator over its period: the share of good events, 0-1.",
      labelNames: ["slo", "service"] as const,
      registers,
    }),
    sloErrorBudgetRemaining: new Gauge({
      name: "observian_slo_error_budget_remaining",
      help: "An SLO's error budget left over its period: 1 untouched, 0 or less spent.",
      labelNames: ["slo", "service"] as const,
      registers,
    }),
    sloBurnRate: new Gauge({
      name: "observian_slo_burn_rate",
      help: "How fast an SLO's error budget burns over a window (1: exactly spent by the " +
        "period's end).",
      labelNames: ["slo", "service", "window"] as const,
      registers,
    }),
  };
}

/**
 * Metrics of the embedded PostgreSQL, registered only when it runs (with DATABASE_URL there is
 * no postmaster of ours, and an `up` of 0 would page someone for nothing).
 */
export function embeddedPostgresMetrics(registry: Registry, opts: { up: () => boolean }) {
  const registers = [registry];
  return {
    up: new Gauge({
      name: "observian_embedded_postgres_up",
      help: "1 while the embedded PostgreSQL accepts connections, 0 while it is down or being " +
        "restarted (read at scrape).",
      registers,
      collect() {
        this.set(opts.up() ? 1 : 0);
      },
    }),
    restarts: new Counter({
      name: "observian_embedded_postgres_restarts_total",
      help: "Times the embedded PostgreSQL was restarted after it died under Observian.",
      registers,
    }),
  };
}
