// Query timing for observian_db_query_duration_seconds: wrap a query with a short, stable name
// (never the SQL text, which would explode label cardinality).
import type { Metrics } from "./registry.ts";

/** Runs `run`, observing its duration under `query` whether it succeeds or fails. */
export async function timeQuery<T>(
  metrics: Pick<Metrics, "dbQueryDuration">,
  query: string,
  run: () => PromiseLike<T>,
): Promise<T> {
  const end = metrics.dbQueryDuration.startTimer({ query });
  try {
    return await run();
  } finally {
    end();
  }
}
