// Seeded pseudo-random numbers for synthetic data (the bench's events, the tests' datasets): the
// same seed gives the same data on every run, so a failure can be replayed.

export type Rng = () => number;

/** mulberry32: a uniform generator in [0, 1), small and fast, good enough for test data. */
export function mulberry32(seed: number): Rng {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box-Muller; the cosine half is enough here). */
export function normal(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}
