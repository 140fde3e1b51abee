import assert from "node:assert/strict";
import { representative, Sketch } from "../src/ingest/histogram.ts";

/** percentile_cont over the representatives of (index, count) pairs: the reference estimate. */
function reference(pairs: [number, number][], q: number): number {
  const values = pairs.flatMap(([i, n]) => Array<number>(n).fill(representative(i)))
    .sort((a, b) => a - b);
  const h = q * (values.length - 1), lo = Math.floor(h);
  const v = h > lo ? values[lo] + (h - lo) * (values[lo + 1] - values[lo]) : values[lo];
  return Number(v.toPrecision(6));
}

Deno.test("[sketch] counts added in any order, growing either way, give percentile_cont", () => {
  // Indexes arrive above, below and around what the sketch already holds, as rows of different
  // tiers and services do; one row is subtracted (a weight of -1) as an edge of a window is.
  const s = new Sketch();
  s.addText("{100,101,140}", "{3,1,2}", 1);
  s.add(40, 5);
  s.addText("{-349,2,400}", "{1,1,1}", 1);
  s.addText("{39,40,600}", "{2,7,4}", 1);
  s.addText("{39,40,600}", "{2,2,4}", -1);
  const other = new Sketch();
  other.addText("{-10,700}", "{2,1}", 1);
  other.bound(0.5, 900);
  s.addAll(other);
  const pairs: [number, number][] = [
    [-349, 1],
    [-10, 2],
    [2, 1],
    [40, 10],
    [100, 3],
    [101, 1],
    [140, 2],
    [400, 1],
    [700, 1],
  ];
  assert.deepEqual(s.entries(), pairs);
  for (const q of [0, 0.1, 0.5, 0.9, 0.95, 0.99, 1]) {
    const want = Math.min(900, Math.max(0.5, reference(pairs, q)));
    assert.equal(s.quantile(q), Number(want.toPrecision(6)), `q=${q}`);
  }
});

Deno.test("[sketch] an empty sketch, or one netted to nothing, has no percentile", () => {
  assert.equal(new Sketch().quantile(0.5), null);
  const s = new Sketch();
  s.addText("{5,9}", "{1,2}", 1);
  s.addText("{5,9}", "{1,2}", -1);
  assert.equal(s.quantile(0.5), null);
  assert.deepEqual(s.entries(), []);
});

Deno.test("[sketch] min and max change a percentile only where needsBounds says so", () => {
  // Deterministic pseudo-random sketches; min and max anywhere in the lowest and the highest
  // bucket counted (where the events' real minimum and maximum lie).
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let skipped = 0, needed = 0;
  for (let t = 0; t < 500; t++) {
    const s = new Sketch();
    const buckets = 1 + Math.floor(rnd() * 6);
    let lo = Infinity, hi = -Infinity;
    for (let b = 0; b < buckets; b++) {
      const i = Math.floor(rnd() * 40);
      s.add(i, 1 + Math.floor(rnd() * (rnd() < 0.3 ? 50 : 3)));
      lo = Math.min(lo, i);
      hi = Math.max(hi, i);
    }
    const inBucket = (i: number) => 1.02 ** (i - 1) * (1 + rnd() * 0.0199);
    const bounded = new Sketch();
    bounded.addAll(s);
    bounded.bound(inBucket(lo), inBucket(hi));
    for (const q of [0.5, 0.95, 0.99]) {
      if (s.needsBounds(q)) needed++;
      else {
        skipped++;
        assert.equal(s.quantile(q), bounded.quantile(q), `sketch ${t}, q=${q}`);
      }
    }
  }
  assert.ok(skipped > 100 && needed > 100, `both cases covered: ${skipped} / ${needed}`);
});
