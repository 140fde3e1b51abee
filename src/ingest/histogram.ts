// The latency buckets kept in the rollups (lat_idx/lat_cnt of sql/012_latency_sketch.sql, where
// observian_latency_index() assigns them) and the percentiles estimated from them.

/** Bucket i holds latencies in (GAMMA^(i-1), GAMMA^i] ms. */
export const GAMMA = 1.02;
/** Every latency in a bucket is within this share of the bucket's representative. */
export const RELATIVE_ACCURACY = (GAMMA - 1) / (GAMMA + 1);
/** Latencies below this many ms share ZERO_INDEX, represented by 0. */
export const MIN_INDEXED_MS = 0.001;
export const ZERO_INDEX = -349;

/** Significant digits a percentile is reported with (adds at most 5e-6 relative error). */
const DIGITS = 6;

export const BOUNDS_DESCRIPTION =
  "Latency percentiles are estimated as PostgreSQL's percentile_cont would compute them over " +
  "the same events, from latencies counted in logarithmic buckets (bucket i holds (γ^(i-1), " +
  `γ^i] ms, γ = ${GAMMA}): each estimate is within ${
    (RELATIVE_ACCURACY * 100).toFixed(2)
  }% of the exact value, and never below the smallest or above the largest latency of the ` +
  `events it summarises (latency.min, latency.max). Latencies under ${MIN_INDEXED_MS} ms are ` +
  `counted as 0, so there the error is under ${MIN_INDEXED_MS} ms instead.`;

/** The value a bucket stands for: within RELATIVE_ACCURACY of everything in it. */
export function representative(index: number): number {
  return index <= ZERO_INDEX ? 0 : (2 * GAMMA ** index) / (GAMMA + 1);
}

/** Counts per bucket index, added up from the rollup rows and raw events a figure covers. */
export class Sketch {
  readonly counts = new Map<number, number>();
  min = Infinity;
  max = -Infinity;

  /** Adds `weight` times the buckets of "{i,…}" and "{n,…}" (PostgreSQL array text). */
  addText(idx: string, cnt: string, weight: number): void {
    const is = parseIntArray(idx), ns = parseIntArray(cnt);
    for (let k = 0; k < is.length; k++) this.add(is[k], ns[k] * weight);
  }

  add(index: number, n: number): void {
    const c = (this.counts.get(index) ?? 0) + n;
    if (c === 0) this.counts.delete(index);
    else this.counts.set(index, c);
  }

  addAll(other: Sketch): void {
    for (const [i, n] of other.counts) this.add(i, n);
    this.bound(other.min, other.max);
  }

  /** Widens the known range of the events to include [min, max]. */
  bound(min: number | null, max: number | null): void {
    if (min !== null && min < this.min) this.min = min;
    if (max !== null && max > this.max) this.max = max;
  }

  /**
   * The q-quantile (0..1) as percentile_cont computes it (interpolating between the values at
   * ranks floor(q(n-1)) and the next), each value estimated by its bucket's representative, then
   * held within [min, max]. null when no event is counted.
   */
  quantile(q: number): number | null {
    const buckets = [...this.counts].filter(([, n]) => n > 0).sort(([a], [b]) => a - b);
    const n = buckets.reduce((a, [, c]) => a + c, 0);
    if (n <= 0) return null;
    const h = q * (n - 1);
    const lo = Math.floor(h);
    const at = (rank: number) => {
      let seen = 0;
      for (const [i, c] of buckets) {
        seen += c;
        if (rank < seen) return representative(i);
      }
      return representative(buckets[buckets.length - 1][0]);
    };
    const a = at(lo);
    const v = h > lo ? a + (h - lo) * (at(lo + 1) - a) : a;
    const clamped = Math.min(
      Number.isFinite(this.max) ? this.max : v,
      Math.max(Number.isFinite(this.min) ? this.min : v, v),
    );
    return Number(clamped.toPrecision(DIGITS));
  }
}

/** "{1,-2,3}" → [1, -2, 3], without a regular expression or an intermediate array of strings. */
export function parseIntArray(text: string): number[] {
  const out: number[] = [];
  let v = 0, neg = false, digits = false;
  for (let k = 1; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c >= 48 && c <= 57) {
      v = v * 10 + (c - 48);
      digits = true;
    } else if (c === 45) neg = true;
    else {
      if (digits) out.push(neg ? -v : v);
      v = 0;
      neg = false;
      digits = false;
    }
  }
  return out;
}
