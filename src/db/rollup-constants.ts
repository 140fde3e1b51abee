// The numbers the rollup SQL and the TypeScript share, written once. The code imports them; the
// migrator substitutes them for the `${name}` placeholders of the repeatable migrations
// (sql/R__*.sql). The checksum of such a file covers the substituted text, so changing a number
// here re-applies the SQL on the next start: the two can no longer drift apart.
//
// A changed latency bucket constant changes no stored row: rows keep the buckets they were
// given, so a new γ or bucket range also needs a numbered migration that rebuilds them.

/** Latency bucket i holds (γ^(i-1), γ^i] ms. */
export const LATENCY_GAMMA = 1.02;
/**
 * ln γ of the decimal 1.02, as observian_latency_index() has divided by since migration 012.
 * Not Math.log(LATENCY_GAMMA): that is ln of the nearest double, 2e-17 larger, and would move
 * a latency on a bucket bound to the next bucket.
 */
export const LATENCY_LN_GAMMA = 0.019802627296179712;
/** Latencies below this many ms (and 0) share LATENCY_ZERO_INDEX, represented by 0. */
export const LATENCY_MIN_INDEXED_MS = 0.001;
/** The bucket just below the one holding LATENCY_MIN_INDEXED_MS. */
export const LATENCY_ZERO_INDEX = -349;
/** The last bucket (smallint's largest): γ^32767 ≈ 1e282 ms and above, NaN, +Infinity. */
export const LATENCY_MAX_INDEX = 32767;
/** Each latency is clamped at this in sums, so that no sum of stored values overflows. */
export const LATENCY_SUM_CAP = 1e250;

/** Advisory lock of compaction; also taken by whatever must not race a compaction. */
export const ROLLUP_LOCK_KEY = 7_246_330_003;
/**
 * Event types a rollup row keeps by default (ROLLUP_MAX_EVENT_TYPES); the events of any other
 * type are counted in the row's event_other.
 */
export const DEFAULT_ROLLUP_MAX_EVENT_TYPES = 100;
/** Most pending deltas one compaction transaction moves; a larger backlog takes several. */
export const COMPACT_MAX_ROWS = 100_000;

/** What the repeatable migrations' placeholders stand for (plain numeric SQL literals). */
export const SQL_PLACEHOLDERS: Readonly<Record<string, string>> = Object.freeze({
  latency_ln_gamma: sqlNumber(LATENCY_LN_GAMMA),
  latency_min_indexed_ms: sqlNumber(LATENCY_MIN_INDEXED_MS),
  latency_zero_index: sqlNumber(LATENCY_ZERO_INDEX),
  latency_max_index: sqlNumber(LATENCY_MAX_INDEX),
  latency_sum_cap: sqlNumber(LATENCY_SUM_CAP),
  rollup_lock_key: sqlNumber(ROLLUP_LOCK_KEY),
  rollup_max_event_types: sqlNumber(DEFAULT_ROLLUP_MAX_EVENT_TYPES),
  compact_max_rows: sqlNumber(COMPACT_MAX_ROWS),
});

/**
 * A finite number as an SQL literal: String() gives the shortest text that reads back exactly;
 * a negative one is parenthesised, so that no placeholder after a minus sign starts a comment.
 */
export function sqlNumber(n: number): string {
  if (!Number.isFinite(n)) throw new RangeError(`not a finite number: ${n}`);
  return n < 0 ? `(${n})` : String(n);
}
