// The latency buckets of stored rollup rows the summary has read, kept between summaries by row
// version (sql/012_latency_sketch.sql): a summary sends the keys of the rows it holds and
// PostgreSQL leaves out the arrays of those rows, so that only rows written since are read as
// array text (~90k bucket counts for a 7-day summary at 1M events, most of its time before).
import { parseIntArray } from "../ingest/histogram.ts";

/** One row's buckets, parsed. */
export interface CachedSketch {
  /** The table or view read. */
  source: string;
  /** Epoch ms of the row's bucket. */
  bucket: number;
  idx: Int32Array;
  cnt: Float64Array;
}

/** Bucket counts kept at most (~12 bytes each): a few MB. */
export const MAX_CACHED_COUNTS = 500_000;

/**
 * Rows by key "source/service_id/bucket ms/row_version" (service_id 0 for the all-services
 * rows). The map is replaced, never changed in place, so that a summary resolves its rows
 * against the map it sent the keys of even while another summary updates the cache.
 */
export class SketchCache {
  #rows: ReadonlyMap<string, CachedSketch> = new Map();
  #counts = 0;

  /** The rows held now, to resolve the answer of a query sent with their keys. */
  snapshot(): ReadonlyMap<string, CachedSketch> {
    return this.#rows;
  }

  /** Adds the rows a summary read in full; starts over when the cache grows past its bound. */
  update(read: ReadonlyMap<string, CachedSketch>): void {
    if (read.size === 0) return;
    let added = 0;
    for (const s of read.values()) added += s.idx.length;
    let next: Map<string, CachedSketch>;
    if (this.#counts + added > MAX_CACHED_COUNTS) {
      if (added > MAX_CACHED_COUNTS) return;
      next = new Map();
      this.#counts = 0;
    } else next = new Map(this.#rows);
    for (const [k, s] of read) {
      const old = next.get(k);
      if (old) this.#counts -= old.idx.length;
      next.set(k, s);
      this.#counts += s.idx.length;
    }
    this.#rows = next;
  }

  /** Bucket counts held. */
  get size(): number {
    return this.#counts;
  }
}

/**
 * The keys of `snap` from `source` whose bucket lies in one of the ranges, comma-separated (one
 * text parameter).
 */
export function knownKeys(
  snap: ReadonlyMap<string, CachedSketch>,
  source: string,
  ranges: { from: Date; to: Date }[],
): string {
  const keys: string[] = [];
  for (const [k, s] of snap) {
    if (
      s.source === source &&
      ranges.some((r) => s.bucket >= r.from.getTime() && s.bucket < r.to.getTime())
    ) keys.push(k);
  }
  return keys.join(",");
}

/** A row's arrays parsed from their text; `key` as in SketchCache (source and bucket). */
export function parseSketch(key: string, idx: string, cnt: string): CachedSketch {
  const [source, , bucket] = key.split("/");
  return {
    source,
    bucket: Number(bucket),
    idx: Int32Array.from(parseIntArray(idx)),
    cnt: Float64Array.from(parseIntArray(cnt)),
  };
}
