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
}

/**
 * After cancelling, the transaction stays open this long before it ends. A cancel request
 * travels on a connection of its own and stops whatever its backend runs when it lands; landing
 * on our idle transaction it does nothing, but landing after the transaction ended it could stop
 * the next user's statement on that pooled connection. Locally it lands within a few ms.
 */
export const CANCEL_GRACE_MS = 100;

/** A postgres.js query not yet sent (sent when first awaited). */
type Pending = PromiseLike<unknown> & { cancel(): void };

type Results<Q extends readonly Pending[]> = { -readonly [K in keyof Q]: Awaited<Q[K]> };

/**
 * Runs the statements `build` makes in one transaction on a connection of the pool, bounded by
 * `bounds`; resolves with their results in order. BEGIN, the timeout, the statements and COMMIT
 * go out pipelined, in one round trip (sql.begin() would wait for BEGIN, then for COMMIT: two
 * more, which doubled a summary's time on a busy machine). After a failed statement PostgreSQL
 * skips the rest and the COMMIT rolls back. Rejects with the signal's reason if it fired before
 * anything was sent, and with PostgreSQL's error 57014 (isQueryCancelled) when a statement was
 * stopped.
 */
export async function boundedQueries<const Q extends readonly Pending[]>(
  sql: Sql,
  bounds: QueryBounds,
  build: (conn: Sql) => Q,
): Promise<Results<Q>> {
  const { signal } = bounds;
  signal?.throwIfAborted();
  const conn = await sql.reserve();
  let cancelled = false;
  try {
    // Waiting for a connection may have outlasted the client.
    signal?.throwIfAborted();
    // One simple-protocol message for both (a whole number, never input: no parameter needed).
    const begin = conn.unsafe(`begin; set local statement_timeout = ${timeoutOf(bounds)}`);
    const queries = build(conn);
    const commit = conn`commit`;
    const all: Pending[] = [begin, ...queries, commit];
    const running = new Set(all);
    // In order: a postgres.js query is sent when first awaited.
    const settled = all.map((q) =>
      Promise.resolve(q.then(() => running.delete(q), () => running.delete(q)))
    );
    const cancel = () => {
      for (const q of running) {
        if (q === commit) continue; // ends the transaction whatever happened before it
        q.cancel();
        cancelled = true;
      }
    };
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      const results = await Promise.all(all);
      return results.slice(1, -1) as Results<Q>;
    } finally {
      signal?.removeEventListener("abort", cancel);
      // The connection goes back to the pool only once the transaction has ended.
      await Promise.all(settled);
    }
  } finally {
    if (cancelled) await new Promise((r) => setTimeout(r, CANCEL_GRACE_MS));
    conn.release();
  }
}

function timeoutOf(bounds: QueryBounds): number {
  const ms = bounds.timeoutMs;
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`bad timeoutMs: ${ms}`);
  return ms;
}
