// The latency buckets kept in the rollups (lat_idx/lat_cnt, added by sql/012_latency_sketch.sql;
// observian_latency_index() of sql/R__rollup_functions.sql assigns them) and the percentiles
// estimated from them. The bucket constants are src/db/rollup-constants.ts's, as the SQL's are.
import {
  LATENCY_GAMMA as GAMMA,
  LATENCY_MIN_INDEXED_MS as MIN_INDEXED_MS,
  LATENCY_ZERO_INDEX as ZERO_INDEX,
} from "../db/rollup-constants.ts";

/** Every latency in a bucket is within this share of the bucket's representative. */
export const RELATIVE_ACCURACY = (GAMMA - 1) / (GAMMA + 1);

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

/**
 * Counts per bucket index, added up from the rollup rows and raw events a figure covers. Kept
 * in a dense array over the indexes seen so far (a summary adds ~100k counts: a Map took most
 * of its time in JS).
 */
export class Sketch {
  #lo = 0;
  #counts = new Float64Array(0);
  min = Infinity;
  max = -Infinity;

  /** Adds `weight` times the buckets of "{i,…}" and "{n,…}" (PostgreSQL array text). */
  addText(idx: string, cnt: string, weight: number): void {
    this.addArrays(parseIntArray(idx), parseIntArray(cnt), weight);
  }

  /** Adds `weight` times the counts `ns[k]` of buckets `is[k]` (`is` ascending). */
  addArrays(is: ArrayLike<number>, ns: ArrayLike<number>, weight: number): void {
    if (is.length === 0) return;
    this.#cover(is[0], is[is.length - 1]);
    const c = this.#counts, lo = this.#lo;
    for (let k = 0; k < is.length; k++) c[is[k] - lo] += ns[k] * weight;
  }

  add(index: number, n: number): void {
    this.#cover(index, index);
    this.#counts[index - this.#lo] += n;
  }

  addAll(other: Sketch): void {
    const oc = other.#counts;
    if (oc.length > 0) {
      this.#cover(other.#lo, other.#lo + oc.length - 1);
      const off = other.#lo - this.#lo, c = this.#counts;
      for (let k = 0; k < oc.length; k++) c[off + k] += oc[k];
    }
    this.bound(other.min, other.max);
  }

  /** The buckets with a count other than 0, by index. */
  entries(): [number, number][] {
    const out: [number, number][] = [];
    this.#counts.forEach((n, k) => n !== 0 && out.push([k + this.#lo, n]));
    return out;
  }

  /** Grows the array to hold indexes a..b (a ≤ b), with room to spare on the growing side. */
  #cover(a: number, b: number): void {
    const lo = this.#lo, len = this.#counts.length;
    if (len > 0 && a >= lo && b < lo + len) return;
    const nlo = len === 0 ? a : a < lo ? Math.min(a, lo - len) : lo;
    const hi = lo + len;
    const nhi = len === 0 ? b + 1 : b >= hi ? Math.max(b + 1, hi + len) : hi;
    const next = new Float64Array(nhi - nlo);
    if (len > 0) next.set(this.#counts, lo - nlo);
    this.#lo = nlo;
    this.#counts = next;
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
    const r = this.#ranks(q);
    if (!r) return null;
    const a = representative(r.a + this.#lo), b = representative(r.b + this.#lo);
    const v = r.h > r.rank ? a + (r.h - r.rank) * (b - a) : a;
    const clamped = Math.min(
      Number.isFinite(this.max) ? this.max : v,
      Math.max(Number.isFinite(this.min) ? this.min : v, v),
    );
    return Number(clamped.toPrecision(DIGITS));
  }

  /**
   * Whether quantile(q) may depend on min and max: only when a rank it reads lies in the lowest
   * or the highest bucket counted. Otherwise both representatives lie in buckets strictly
   * between those two, so above the lowest bucket (which holds the minimum) and below the
   * highest (which holds the maximum): already within [min, max].
   */
  needsBounds(q: number): boolean {
    const r = this.#ranks(q);
    return r !== null && (r.a === r.first || r.b === r.first || r.a === r.last || r.b === r.last);
  }

  /**
   * percentile_cont's ranks for q: h = q(n-1) and its floor; the array offsets of the buckets
   * holding ranks floor(h) (a) and floor(h) + 1 (b), and of the lowest and highest buckets
   * counted. null when nothing is counted.
   */
  #ranks(q: number) {
    const c = this.#counts;
    let n = 0, first = -1, last = -1;
    for (let k = 0; k < c.length; k++) {
      if (c[k] > 0) {
        n += c[k];
        if (first < 0) first = k;
        last = k;
      }
    }
    if (n <= 0) return null;
    const h = q * (n - 1);
    const rank = Math.floor(h);
    let a = -1, b = -1, seen = 0;
    for (let k = first; k <= last && b < 0; k++) {
      if (c[k] <= 0) continue;
      seen += c[k];
      if (a < 0 && rank < seen) a = k;
      if (rank + 1 < seen) b = k;
    }
    if (a < 0) a = last;
    if (b < 0) b = last;
    return { h, rank, a, b, first, last };
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
