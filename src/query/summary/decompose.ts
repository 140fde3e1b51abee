// How a window is cut into pieces of the rollup tiers and the fact table: signed pieces whose
// rows add up to exactly the window, the cheaper form at each edge, netted per source into
// weighted ranges for the queries.
import { DAY_MS, HOUR_MS, MINUTE_MS } from "../../time.ts";

export type Tier = "1m" | "1h" | "1d";
export const TIERS: readonly { tier: Tier; ms: number; table: string; weight: number }[] = [
  // weight: rough cost of reading one row, relative to a minute row: coarser rows carry more
  // status and event keys to expand (measured ~3, ~14 and ~24 keys a row at 50 services).
  { tier: "1m", ms: MINUTE_MS, table: "log_rollup_1m", weight: 1 },
  { tier: "1h", ms: HOUR_MS, table: "log_rollup_1h", weight: 3 },
  { tier: "1d", ms: DAY_MS, table: "log_rollup_1d", weight: 5 },
];
/** Rough cost of a minute of raw events, per service, relative to one minute row. */
const RAW_WEIGHT_PER_MINUTE = 1.5;

export interface Piece {
  /** Where the piece is read from: a rollup tier, or the fact table. */
  source: Tier | "raw";
  from: number;
  to: number;
  /** -1: subtracted (the part of a coarser row that lies outside the window). */
  sign: 1 | -1;
}

interface Cover {
  pieces: Piece[];
  cost: number;
}

/**
 * Signed pieces that add up to exactly [from, to): whole units of the coarsest tier allowed
 * (index into 1m, 1h, 1d) in the middle and, at each edge, the cheaper of
 *   - the finer pieces of the partial unit (minutes for a partial hour, …, raw events for a
 *     partial minute), or
 *   - the whole unit minus the finer pieces of the part outside the window,
 * by the rows each reads. Nothing is stored after `now`, so near now the second is almost
 * free: a window ending now reads today's day row instead of up to 23 hour and 59 minute
 * rows per service. Rollups are exact and additive, so both give exact counts. Raw pieces
 * each lie inside one UTC minute, and a piece of a tier never straddles a boundary of a
 * coarser one.
 */
export function decompose(
  from: number,
  to: number,
  opts: { maxTier?: number; now?: number; form?: Form } = {},
): Piece[] {
  const ctx = { now: opts.now ?? Date.now(), form: opts.form ?? "cheapest" };
  return cover(from, to, opts.maxTier ?? TIERS.length - 1, ctx).pieces;
}

/** How edges are read: the cheaper form (the default), or one form throughout (tests). */
export type Form = "cheapest" | "additive" | "subtractive";

interface Ctx {
  now: number;
  form: Form;
}

function cover(from: number, to: number, t: number, ctx: Ctx): Cover {
  if (from >= to) return { pieces: [], cost: 0 };
  const now = ctx.now;
  // The additive form unless the other reads less.
  const cheaper = (additive: Cover, subtractive: Cover): Cover =>
    ctx.form === "additive"
      ? additive
      : ctx.form === "subtractive" || subtractive.cost < additive.cost
      ? subtractive
      : additive;
  if (t < 0) return single("raw", from, to, now);
  const { tier, ms } = TIERS[t];
  const a = Math.ceil(from / ms) * ms;
  const b = Math.floor(to / ms) * ms;
  if (a > b) {
    // Inside one unit: its finer pieces, or the unit minus what lies either side.
    const u = Math.floor(from / ms) * ms;
    return cheaper(
      cover(from, to, t - 1, ctx),
      join(
        single(tier, u, u + ms, now),
        negate(cover(u, from, t - 1, ctx)),
        negate(cover(to, u + ms, t - 1, ctx)),
      ),
    );
  }
  return join(
    a < b ? single(tier, a, b, now) : { pieces: [], cost: 0 },
    from < a
      ? cheaper(
        cover(from, a, t - 1, ctx),
        join(single(tier, a - ms, a, now), negate(cover(a - ms, from, t - 1, ctx))),
      )
      : { pieces: [], cost: 0 },
    b < to
      ? cheaper(
        cover(b, to, t - 1, ctx),
        join(single(tier, b, b + ms, now), negate(cover(to, b + ms, t - 1, ctx))),
      )
      : { pieces: [], cost: 0 },
  );
}

function single(source: Piece["source"], from: number, to: number, now: number): Cover {
  const stored = Math.max(0, Math.min(to, now) - from);
  const t = TIERS.find((x) => x.tier === source);
  const cost = t
    ? Math.ceil(stored / t.ms) * t.weight
    : (stored / MINUTE_MS) * RAW_WEIGHT_PER_MINUTE;
  return { pieces: [{ source, from, to, sign: 1 }], cost };
}

const join = (...covers: Cover[]): Cover => ({
  pieces: covers.flatMap((c) => c.pieces),
  cost: covers.reduce((a, c) => a + c.cost, 0),
});

const negate = (c: Cover): Cover => ({
  pieces: c.pieces.map((p) => ({ ...p, sign: p.sign === 1 ? -1 : 1 })),
  cost: c.cost,
});

/** Index of the coarsest tier whose buckets never straddle a step boundary. */
export function seriesMaxTier(stepMs: number): number {
  let idx = 0;
  for (let i = 0; i < TIERS.length; i++) if (TIERS[i].ms <= stepMs) idx = i;
  return idx;
}

export interface Range {
  from: Date;
  to: Date;
}

/** A range whose rows count `weight` times (usually 1 or -1); a source's ranges are disjoint. */
export interface WeightedRange extends Range {
  weight: number;
}

/**
 * The pieces of one source netted into disjoint ranges with their weights: pieces may
 * overlap (both edges of a window in one hour can each subtract from that hour's row).
 */
export function rangesOf(pieces: Piece[], source: Piece["source"]): WeightedRange[] {
  const deltas = new Map<number, number>();
  for (const p of pieces) {
    if (p.source !== source) continue;
    deltas.set(p.from, (deltas.get(p.from) ?? 0) + p.sign);
    deltas.set(p.to, (deltas.get(p.to) ?? 0) - p.sign);
  }
  const points = [...deltas.keys()].sort((a, b) => a - b);
  const out: WeightedRange[] = [];
  let weight = 0;
  for (let i = 0; i < points.length - 1; i++) {
    weight += deltas.get(points[i])!;
    if (weight === 0) continue;
    const last = out[out.length - 1];
    if (last && last.weight === weight && last.to.getTime() === points[i]) {
      last.to = new Date(points[i + 1]);
    } else out.push({ from: new Date(points[i]), to: new Date(points[i + 1]), weight });
  }
  return out;
}

export const tableOf = (tier: Tier) => TIERS.find((t) => t.tier === tier)!.table;
