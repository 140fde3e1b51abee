// Group commit: concurrent writes wait for the flush in progress, then go to PostgreSQL
// together in one transaction. Nobody is answered before their events are committed; the
// throughput comes from sharing the commit, never from acknowledging early. One class, the
// queue, its flushes and their compaction, which is why it runs past 300 lines.
import type { Db } from "../db/connect.ts";
import {
  isConnectFailure,
  isConnectionLost,
  isDbUnavailable,
  isQueryCancelled,
} from "../db/sqlstate.ts";
import { UnavailableError } from "../errors.ts";
import { bounded } from "../time.ts";
import { logger } from "../logging.ts";
import { compactRollups, PENDING_IDLE_PAGES, pendingPages } from "./rollup.ts";
import { type Inserted, insertEvents, registerServices, withMissingPartitions } from "./store.ts";
import type { NewEvent } from "./validate.ts";

export interface FlushInfo {
  events: number;
  requests: number;
  durationMs: number;
  ok: boolean;
  /** Sent on the lane while another group was in flight there. */
  pipelined: boolean;
  /** Events not stored again because their idempotency key was. */
  duplicates: number;
}

interface Pending {
  events: NewEvent[];
  resolve: (ids: number[]) => void;
  reject: (err: unknown) => void;
  /** Answered: committed, failed, or past its deadline. */
  settled: boolean;
}

export interface EventWriterOptions {
  /** Most events one transaction takes; more wait for the next flush. */
  maxBatchEvents?: number;
  /** Partitions are created on demand only inside the window ingest accepts. */
  retentionDays?: number;
  /** Least time between two rollup compactions started by this writer. */
  compactEveryMs?: number;
  /** Event types a rollup row keeps (ROLLUP_MAX_EVENT_TYPES); the rest fold into "other". */
  maxEventTypes?: number;
  /**
   * Most transactions in flight at once (default 4). Requests of PARALLEL_FLUSH_EVENTS or more
   * start one beside a running one: big batches gain from overlapping. Small groups batch
   * better waiting for one flush at a time (measured ~9k vs ~7k requests/s on two cores),
   * except for the one a lane pipelines.
   */
  concurrentFlushes?: number;
  /**
   * A handle of one connection for groups smaller than PARALLEL_FLUSH_EVENTS. postgres.js
   * pipelines on a busy connection, so once PIPELINE_MIN_EVENTS wait, a second group goes out
   * behind the one in flight and PostgreSQL starts it the moment the first commits, instead
   * of idling for a round trip through a busy event loop. On the same backend the two never
   * contend for index pages, as two transactions on two connections do (measured worse).
   * Without it small groups use the pool, one at a time.
   */
  lane?: Db;
  /**
   * Longest a write waits for its commit (default 10 s). Past it the write fails with a 503
   * (its events may still commit: a retry with an idempotency key stores nothing twice); a
   * transaction still running 5 s later has its handle replaced, which ends the wait of every
   * request behind it. The lane should stop its statements at this timeout in PostgreSQL too
   * (statement_timeout), so that a slow commit fails for certain instead of maybe.
   */
  commitTimeoutMs?: number;
  onFlush?: (info: FlushInfo) => void;
  /** Told of every write that was past its deadline. */
  onTimeout?: () => void;
  /** Called for each rollup compaction transaction that failed (see compactRollups). */
  onCompactionFailure?: () => void;
}

/** After the commit timeout, how long a commit may still run before its handle is replaced. */
const STUCK_GRACE_MS = 5000;

/** A queued request at least this large may start a transaction beside a running one. */
const PARALLEL_FLUSH_EVENTS = 500;

/**
 * Events that must be waiting before a second small group is pipelined on the lane. Fewer
 * would mean more, smaller statements, each with a fixed cost of about 17 events' work.
 * Measured on two cores, 64 connections of single events: +13% throughput at 28.
 */
const PIPELINE_MIN_EVENTS = 28;

/** Runs after a burst's last compaction that may still vacuum a big pending table. */
const SETTLE_RUNS = 5;

export class EventWriter {
  #queue: Pending[] = [];
  #queuedEvents = 0;
  /** Small groups in flight on the lane. */
  #onLane = 0;
  /** Flushes under way; each ends by starting the next while events wait. */
  #flushes = new Set<Promise<void>>();
  readonly #maxFlushes: number;
  #compacting: Promise<void> | null = null;
  /** Compaction calls in a row that saw a failure: the second one on is logged as an error. */
  #compactionFailStreak = 0;
  #lastCompaction = 0;
  /** Runs left to vacuum the pending table after a burst (see #maybeCompact). */
  #settleRuns = 0;
  #trailingCompaction: ReturnType<typeof setTimeout> | undefined;
  readonly #compactEveryMs: number;
  #serviceIds = new Map<string, number>();
  readonly #max: number;
  readonly #timeoutMs: number;
  readonly #log = logger("ingest");

  constructor(private readonly sql: Db, private readonly opts: EventWriterOptions = {}) {
    this.#max = opts.maxBatchEvents ?? 20_000;
    this.#maxFlushes = opts.concurrentFlushes ?? 4;
    this.#compactEveryMs = opts.compactEveryMs ?? 1000;
    this.#timeoutMs = opts.commitTimeoutMs ?? 10_000;
  }

  /**
   * Stores the events atomically; resolves with their ids once committed, or rejects within
   * the commit timeout.
   */
  write(events: NewEvent[]): Promise<number[]> {
    if (events.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.#expire(p), this.#timeoutMs);
      const p: Pending = {
        events,
        settled: false,
        resolve: (ids) => {
          p.settled = true;
          clearTimeout(timer);
          resolve(ids);
        },
        reject: (err) => {
          p.settled = true;
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#queue.push(p);
      this.#queuedEvents += events.length;
      this.#startFlush();
    });
  }

  #expire(p: Pending): void {
    if (p.settled) return;
    const queued = this.#queue.indexOf(p);
    if (queued >= 0) {
      // Never sent: drop it so nothing is stored behind the client's back.
      this.#queue.splice(queued, 1);
      this.#queuedEvents -= p.events.length;
    }
    this.opts.onTimeout?.();
    this.#log.error("a write of {events} event(s) was not committed within {ms} ms", {
      events: p.events.length,
      ms: this.#timeoutMs,
    });
    p.reject(
      new UnavailableError(
        `The events were not committed within ${this.#timeoutMs} ms (INGEST_COMMIT_TIMEOUT_MS)` +
          (queued >= 0 ? "; nothing was stored." : " and may or may not be stored.") +
          " Retry after Retry-After; an Idempotency-Key or event_id makes the retry safe.",
        2,
      ),
    );
  }

  /**
   * Waits until everything queued so far is committed (or failed); false when that takes
   * longer than `timeoutMs`.
   */
  async idle(timeoutMs = Infinity): Promise<boolean> {
    // Called at shutdown: no compaction may start on a handle about to close.
    this.#cancelTrailing();
    const deadline = performance.now() + timeoutMs;
    while (this.#flushes.size || this.#compacting) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((r) => timer = setTimeout(r, Math.min(left, 2 ** 31 - 1)));
      await Promise.race([Promise.all([...this.#flushes, this.#compacting]), late]);
      clearTimeout(timer);
    }
    // A compaction that just ended may have planned the next.
    this.#cancelTrailing();
    return true;
  }

  #cancelTrailing(): void {
    clearTimeout(this.#trailingCompaction);
    this.#trailingCompaction = undefined;
  }

  /**
   * Folds rollup deltas into the tiers at most once per interval, after commits and off the
   * request path: readers see pending deltas anyway, so this only keeps the pending table
   * small. Driven by writes, plus one trailing run an interval after the last of a burst,
   * so an idle instance (or Deno Deploy isolate) does no work and no delta waits for a write.
   */
  #maybeCompact(): void {
    const now = Date.now();
    const wait = this.#compacting
      ? this.#compactEveryMs
      : this.#lastCompaction + this.#compactEveryMs - now;
    if (wait > 0) {
      // The last commits of a burst land inside the interval: fold them once it has passed,
      // or they stay pending until the next write, however long that takes.
      if (this.#trailingCompaction === undefined && Number.isFinite(wait)) {
        const timer = setTimeout(() => {
          this.#trailingCompaction = undefined;
          this.#maybeCompact();
        }, wait);
        Deno.unrefTimer(timer);
        this.#trailingCompaction = timer;
      }
      return;
    }
    this.#lastCompaction = now;
    let failed = false;
    const failure = (err: unknown, what: string, lost = false) => {
      this.opts.onCompactionFailure?.();
      // Once is a blip (a lock, a restart); again on the next call is not going away alone.
      const level = lost || failed || this.#compactionFailStreak > 0 ? "error" : "warning";
      failed = true;
      this.#log[level](`rollup compaction failed${what}: {error}`, { error: String(err) });
    };
    const compaction = compactRollups(this.sql, {
      maxEventTypes: this.opts.maxEventTypes,
      onDataError: (err, rejected) =>
        failure(
          err,
          rejected
            ? " on one delta alone, set aside in log_rollup_rejected (its events stay in " +
              "log_events; observian_rollup_rebuild() counts them again)"
            : ", retrying on fewer deltas",
          rejected,
        ),
    });
    this.#compacting = bounded(compaction, this.#timeoutMs * 3)
      .catch((err) => {
        failure(err, "");
        return -1;
      })
      .then(async (moved) => {
        this.#compactionFailStreak = failed ? this.#compactionFailStreak + 1 : 0;
        // Once a burst is folded, run again an interval later (and a few times more while the
        // file stays big): its vacuum gives back the pages that readers of the rollup views
        // scan. Bounded, so that a snapshot held for long does not keep an idle writer busy.
        if (moved > 0) {
          this.#settleRuns = SETTLE_RUNS;
          return 1;
        }
        if (moved < 0 || this.#settleRuns <= 0) return 0;
        this.#settleRuns--;
        return await pendingPages(this.sql).then((p) => p > PENDING_IDLE_PAGES ? 1 : 0, () => 0);
      })
      .then((again) => {
        this.#compacting = null;
        if (again > 0) this.#maybeCompact();
      });
  }

  /**
   * Starts a flush of what is queued when fewer than the limit are under way. Under load each
   * flush takes everything queued while the previous one ran: that is the group commit.
   */
  #startFlush(): void {
    if (this.#flushes.size >= this.#maxFlushes || this.#queue.length === 0) return;
    // While one runs, small requests wait and batch up, unless a lane can pipeline enough of
    // them behind it; big batches start a transaction of their own.
    const pipeline = this.#onLane === 1 && this.#flushes.size === 1 &&
      this.#queuedEvents >= PIPELINE_MIN_EVENTS;
    if (
      this.#flushes.size > 0 && this.#queue[0].events.length < PARALLEL_FLUSH_EVENTS && !pipeline
    ) return;
    const group: Pending[] = [];
    let n = 0;
    while (
      this.#queue.length && (group.length === 0 || n + this.#queue[0].events.length <= this.#max)
    ) {
      const p = this.#queue.shift()!;
      group.push(p);
      n += p.events.length;
    }
    this.#queuedEvents -= n;
    // Once only: a flush leaves the set when its commit succeeded, or at the latest when done.
    const release = () => {
      if (this.#flushes.delete(flush)) this.#startFlush();
    };
    const flush: Promise<void> = this.#flushGroup(group, release).finally(release);
    this.#flushes.add(flush);
  }

  /** `release` frees this flush's slot; called once the commit succeeded. */
  async #flushGroup(group: Pending[], release = () => {}): Promise<void> {
    const started = performance.now();
    const events = group.flatMap((p) => p.events);
    const lane = events.length < PARALLEL_FLUSH_EVENTS ? this.opts.lane : undefined;
    const handle = lane ?? this.sql;
    const generation = handle.generation;
    const pipelined = lane !== undefined && this.#onLane > 0;
    if (lane) this.#onLane++;
    // Its requests were answered 503 at the commit timeout; a commit still running a while
    // after that is stuck (a network that swallows packets): a fresh handle fails it, and the
    // requests queued behind it go out on the new one. The grace spares commits that are only
    // slow, since replacing a handle fails every commit on it.
    const stuckMs = this.#timeoutMs + STUCK_GRACE_MS;
    const watchdog = setTimeout(() => {
      handle.replace(`a commit did not finish within ${stuckMs} ms`, generation);
    }, stuckMs);
    try {
      const { ids, duplicates } = await this.#commit(handle, events).finally(() => {
        clearTimeout(watchdog);
        if (lane) this.#onLane--;
      });
      // Send the next group to PostgreSQL before answering this one: the answers run every
      // waiter's continuation (response, metrics), which would otherwise delay the next commit.
      release();
      let at = 0;
      for (const p of group) {
        p.resolve(ids.slice(at, at + p.events.length));
        at += p.events.length;
      }
      this.#report(events.length, group.length, started, true, pipelined, duplicates);
      this.#maybeCompact();
    } catch (err) {
      if (isConnectionLost(err)) {
        handle.replace(`its connection was lost (${errorCode(err)})`, generation);
      }
      // The database, not a request, failed this commit, and one whose connection was lost or
      // that was cancelled may have committed all the same: retrying it here could store it
      // twice. Its requests get 503; a shipper's retry with a key stores nothing twice.
      if (group.length === 1 || isDbUnavailable(err) || isQueryCancelled(err)) {
        const answer = isQueryCancelled(err)
          ? new UnavailableError(
            `The commit was stopped after INGEST_COMMIT_TIMEOUT_MS (${this.#timeoutMs} ms); ` +
              "nothing was stored. Retry after Retry-After.",
            2,
          )
          : err;
        for (const p of group) p.reject(answer);
        this.#report(events.length, group.length, started, false);
        // Unreachable: what waits would meet the same, so it hears now, not at its deadline.
        if (isConnectFailure(err)) this.#failQueued(err);
        return;
      }
      // A bad request's events must not fail the others that shared its transaction (which
      // surely rolled back). Requests past their deadline were answered 503: storing them now
      // would surprise them.
      for (const p of group) if (!p.settled) await this.#flushGroup([p]);
    }
  }

  #failQueued(err: unknown): void {
    const queued = this.#queue.splice(0);
    this.#queuedEvents = 0;
    for (const p of queued) p.reject(err);
  }

  #report(
    events: number,
    requests: number,
    started: number,
    ok: boolean,
    pipelined = false,
    duplicates = 0,
  ) {
    const durationMs = performance.now() - started;
    this.opts.onFlush?.({ events, requests, ok, durationMs, pipelined, duplicates });
  }

  async #commit(sql: Db, events: NewEvent[]): Promise<Inserted> {
    const serviceIds = await this.#resolveServices(sql, events);
    return await withMissingPartitions(
      sql,
      events.map((e) => e.timestamp),
      () => insertEvents(sql, events, serviceIds),
      { retentionDays: this.opts.retentionDays ?? 7 },
    );
  }

  /** Service ids by name; unknown names are registered (safe under concurrent first writes). */
  async #resolveServices(sql: Db, events: NewEvent[]): Promise<number[]> {
    const missing = [...new Set(events.map((e) => e.serviceName))].filter((name) =>
      !this.#serviceIds.has(name)
    );
    if (missing.length) {
      for (const [name, id] of await registerServices(sql, missing)) {
        this.#serviceIds.set(name, id);
      }
    }
    return events.map((e) => this.#serviceIds.get(e.serviceName)!);
  }
}

const errorCode = (err: unknown) => String((err as { code?: unknown })?.code ?? err);
