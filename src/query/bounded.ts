// Read queries bounded in time and tied to the request that asked for them. Each runs in a
// transaction whose statements stop after QUERY_TIMEOUT_MS (statement_timeout), and when the
// request is abandoned (the client disconnected: its AbortSignal fires) the statements still
// running are cancelled in PostgreSQL rather than left to run to the end for nobody.
import { type Sql, statementTimeout, type Tx } from "../db/connect.ts";

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
 * the next user's statement on that pooled connection, or a COMMIT (leaving the connection in a
 * failed transaction). Locally it lands within a few ms.
 */
export const CANCEL_GRACE_MS = 100;

/** A postgres.js query not yet sent (sent when first awaited). */
type Pending = PromiseLike<unknown> & { cancel(): void };

type Results<Q extends readonly Pending[]> = { -readonly [K in keyof Q]: Awaited<Q[K]> };

/**
 * Runs the statements `build` makes on a transaction, pipelined, bounded by `bounds`; resolves
 * with their results in order. Rejects with the signal's reason if it fired before anything ran,
 * and with PostgreSQL's error 57014 (isQueryCancelled) when a statement was stopped.
 */
export async function boundedQueries<const Q extends readonly Pending[]>(
  sql: Sql,
  bounds: QueryBounds,
  build: (tx: Tx) => Q,
): Promise<Results<Q>> {
  const { signal } = bounds;
  signal?.throwIfAborted();
  return await sql.begin(async (tx) => {
    // Waiting for a pooled connection may have outlasted the client.
    signal?.throwIfAborted();
    const queries = build(tx);
    const all = [statementTimeout(tx, bounds.timeoutMs), ...queries];
    const running = new Set<Pending>(all);
    // Chained in order: a postgres.js query is sent when first awaited, and the timeout must
    // precede the statements it bounds.
    const settled = all.map((q) =>
      Promise.resolve(q.then(() => running.delete(q), () => running.delete(q)))
    );
    let cancelled = false;
    const cancel = () => {
      cancelled = true;
      for (const q of running) q.cancel();
    };
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      const [, ...results] = await Promise.all(all);
      return results as Results<Q>;
    } finally {
      signal?.removeEventListener("abort", cancel);
      if (cancelled) {
        await Promise.allSettled(settled);
        await new Promise((r) => setTimeout(r, CANCEL_GRACE_MS));
      }
    }
  }) as Results<Q>;
}
