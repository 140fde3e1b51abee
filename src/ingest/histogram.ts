// The latency histogram kept in the rollups (columns h00..h19 of sql/004_rollups.sql).

/** Upper bounds in ms, inclusive; the last bucket is everything above 60 s. */
export const LATENCY_BOUNDS_MS = [
  1,
  2.5,
  5,
  10,
  25,
  50,
  75,
  100,
  150,
  200,
  300,
  500,
  750,
  1000,
  2500,
  5000,
  10000,
  30000,
  60000,
  Infinity,
] as const;

export const HISTOGRAM_COLUMNS = LATENCY_BOUNDS_MS.map((_, i) => `h${String(i).padStart(2, "0")}`);

export const BOUNDS_DESCRIPTION =
  "Latency percentiles are estimated from a histogram with bucket upper bounds (ms, inclusive) " +
  LATENCY_BOUNDS_MS.slice(0, -1).join(", ") +
  ", +Inf, interpolating linearly inside the bucket; above 60000 ms the estimate is the " +
  "largest bound. Counts are exact.";

/**
 * The q-quantile (0..1) of a histogram, interpolated inside the bucket that holds it.
 * null when the histogram is empty.
 */
export function quantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (c === 0) continue;
    if (seen + c >= rank) {
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1];
      const upper = LATENCY_BOUNDS_MS[i];
      if (!Number.isFinite(upper)) return lower;
      const within = Math.max(0, rank - seen) / c;
      return round2(lower + (upper - lower) * within);
    }
    seen += c;
  }
  return round2(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 2]);
}

const round2 = (n: number) => Math.round(n * 100) / 100;
