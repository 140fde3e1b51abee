// Read queries bounded in time and tied to the request that asked for them. Each runs in a
// transaction whose statements stop after QUERY_TIMEOUT_MS (statement_timeout), and when the
// request is abandoned (the client disconnected: its AbortSignal fires) the statements still
// running are cancelled in PostgreSQL rather than left to run to the end for nobody.
import type { Sql } from "../db/connect.ts";

export interface QueryBounds {
  /** statement_timeout of each statement, ms; 0: none. */
  timeoutMs: number;
  /** Aborts when the answer is no longer wanted; running statements are then cancelled. */
  signal?: AbortSignal;
  /**
   * No parallel plan (max_parallel_workers_per_gather = 0): for statements of a few
   * milliseconds, whose workers take longer to start than the work they share, above all on a
   * busy machine (a summary's 12 ms of min/max took 90 ms with two workers).
   */
  serial?: boolean;
  /**
   * Plans made once per connection and statement (plan_cache_mode = force_generic_plan), not for
   * each call's values: for statements whose best plan does not depend on them (time ranges of
   * a few rollup rows each), where planning took a fifth of a summary's database time.
   */
  genericPlans?: boolean;
}

/** Longest the cancelling of one transaction's statements is pursued. */
export const CANCEL_WAIT_MS = 2000;
/** Between two cancel attempts while a statement of the transaction still runs. */
const CANCEL_RETRY_MS = 50;

type Results<Q extends readonly PromiseLike<unknown>[]> = {
  -readonly [K in keyof Q]: Awaited<Q[K]>;
};

/**
 * Runs the statements `build` makes in one transaction on a connection of the pool, bounded by
 * `bounds`; resolves with their results in order. BEGIN, the timeout, the statements and COMMIT
 * go out pipelined, in one round trip (sql.begin() would wait for BEGIN, then for COMMIT: two
 * more, which doubled a summary's time on a busy machine). After a failed statement PostgreSQL
 * skips the rest and the COMMIT rolls back. Rejects with the signal's reason if it fired before
 * anything was sent, and with PostgreSQL's error 57014 (isQueryCancelled) when a statement was
 * stopped.
 */
export async function boundedQueries<const Q extends readonly PromiseLike<unknown>[]>(
  sql: Sql,
  bounds: QueryBounds,
  build: (conn: Sql) => Q,
): Promise<Results<Q>> {
  const { signal } = bounds;
  signal?.throwIfAborted();
  const conn = await sql.reserve();
  let cancelling: Promise<void> | undefined;
  try {
    // Waiting for a connection may have outlasted the client.
    signal?.throwIfAborted();
    // One simple-protocol message (a whole number, never input: no parameter needed), which
    // also names the backend and the transaction for a cancel.
    const begin = conn.unsafe(
      `begin; set local statement_timeout = ${timeoutOf(bounds)};${
        bounds.serial ? " set local max_parallel_workers_per_gather = 0;" : ""
      }${bounds.genericPlans ? " set local plan_cache_mode = force_generic_plan;" : ""}
       select pg_backend_pid() as pid, now()::text as started`,
    );
    const backend = begin.then(backendOf, () => undefined);
    const queries = build(conn);
    const commit = conn`commit`;
    const all = [begin, ...queries, commit];
    let running = true;
    // In order: a postgres.js query is sent when first awaited.
    const done = Promise.allSettled(all).then(() => {
      running = false;
    });
    const cancel = () => {
      cancelling = backend.then((b) => b && cancelBackend(sql, b, () => running));
    };
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      const results = await Promise.all(all);
      return results.slice(1, -1) as Results<Q>;
    } finally {
      signal?.removeEventListener("abort", cancel);
      // The connection goes back to the pool only once the transaction has ended.
      await done;
    }
  } finally {
    if (cancelling) {
      await cancelling;
      // Should a cancel have met the COMMIT, the transaction is left failed: end it.
      await conn`rollback`.catch(() => {});
    }
    conn.release();
  }
}

/** The last result set of the BEGIN message (postgres.js: one per statement after the first). */
function backendOf(results: unknown): Backend | undefined {
  const row = (results as { pid?: unknown; started?: unknown }[][]).at?.(-1)?.[0];
  return typeof row?.pid === "number" && typeof row.started === "string"
    ? { pid: row.pid, started: row.started }
    : undefined;
}

interface Backend {
  pid: number;
  /**
   * The transaction's start (now() within it), as text: exact to the microsecond, which a
   * timestamptz parameter would not be (postgres.js passes it through a JS Date).
   */
  started: string;
}

/**
 * Cancels the statement `b`'s backend runs, as long as it still runs our transaction (same
 * start) and is not committing it, retrying while `stillRunning()` (a statement may start just
 * after a check), for up to CANCEL_WAIT_MS. pg_cancel_backend() on a pooled connection, not
 * postgres.js's cancel(): that one opens a connection of its own, which the server then closes,
 * and the handle takes that close for a lost connection. Errors are ignored: the statement
 * timeout still bounds what could not be cancelled.
 */
async function cancelBackend(sql: Sql, b: Backend, stillRunning: () => boolean): Promise<void> {
  const deadline = Date.now() + CANCEL_WAIT_MS;
  while (stillRunning() && Date.now() < deadline) {
    const attempt = sql`
      select pg_cancel_backend(pid) from pg_stat_activity
      where pid = ${b.pid} and xact_start = ${b.started}::text::timestamptz
        and state = 'active' and query <> 'commit'`.then(() => true, () => false);
    // A pool with no connection free keeps the attempt waiting: give up at the deadline (it may
    // still run later, harmlessly: it checks that the transaction is still ours).
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((r) =>
      timer = setTimeout(() => r(false), deadline - Date.now())
    );
    const sent = await Promise.race([attempt, late]).finally(() => clearTimeout(timer));
    if (!sent) return;
    await new Promise((r) => setTimeout(r, CANCEL_RETRY_MS));
  }
}

function timeoutOf(bounds: QueryBounds): number {
  const ms = bounds.timeoutMs;
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`bad timeoutMs: ${ms}`);
  return ms;
}
