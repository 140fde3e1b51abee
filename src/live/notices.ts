// Commit notices waiting to be fetched, merged so that under load one query serves many.
import type { CommitNotice } from "../ingest/store.ts";

/** Notices merged into one fetch only while their combined time span stays this narrow. */
const MERGE_SPAN_MS = 5 * 60_000;
const MAX_RANGES = 200;

/**
 * The next notice to fetch, merged with the ones queued behind it while their time spans
 * overlap closely: under load one query serves many commits, but a merge never widens the
 * scanned time range to days.
 */
export function takeMergedNotice(pending: CommitNotice[]): CommitNotice {
  const first = pending.shift()!;
  let from = Date.parse(first.from), to = Date.parse(first.to);
  const ranges = [...first.ids];
  while (pending.length) {
    const next = pending[0];
    const f = Math.min(from, Date.parse(next.from)), t = Math.max(to, Date.parse(next.to));
    if (t - f > Math.max(MERGE_SPAN_MS, to - from)) break;
    from = f;
    to = t;
    ranges.push(...next.ids);
    pending.shift();
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [lo, hi] of ranges) {
    const last = merged[merged.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else merged.push([lo, hi]);
  }
  // A covering range may also fetch other commits' (visible) events: they go out now and their
  // own notice finds them already seen.
  const ids: [number, number][] = merged.length > MAX_RANGES
    ? [[merged[0][0], merged[merged.length - 1][1]]]
    : merged;
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), ids };
}
