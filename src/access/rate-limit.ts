// Per-key rate limits: a token bucket per key and instance (like Loki's "local" strategy, no
// shared state between instances), refilled at the key's rate_limit_per_s and holding two
// seconds' worth. Writers spend one token per event, readers and admins one per request; the
// caller decides which (unitOf). Knows nothing of HTTP.
import type { Principal } from "./principal.ts";

/** Seconds' worth of the rate a bucket holds: the burst a quiet key may send at once. */
export const BURST_SECONDS = 2;

/** Buckets kept at most; past it the least recently used go first (a key then starts full). */
const MAX_BUCKETS = 10_000;
/** How often full buckets are forgotten: a full bucket is the same as none. */
const SWEEP_EVERY_MS = 10_000;

/** What a key may spend now, and the shape of its limit. */
export interface Allowance {
  /** Tokens per second. */
  rate: number;
  /** Tokens a full bucket holds. */
  capacity: number;
  /** Whole tokens left after this take (the bucket may hold a fraction more). */
  remaining: number;
  /** Seconds until the bucket is full again (0 when it is). */
  fullInS: number;
}

export type Take =
  | ({ ok: true } & Allowance)
  /** Not taken: nothing was spent. retryAfterS: whole seconds (≥ 1) until `cost` fits. */
  | ({ ok: false; retryAfterS: number } & Allowance)
  /** `cost` is more than a full bucket holds: it can never pass, however long one waits. */
  | ({ ok: false; retryAfterS: null } & Allowance);

interface Bucket {
  tokens: number;
  /** Milliseconds (of the clock) when `tokens` was last brought up to date. */
  at: number;
  rate: number;
}

/** A bucket holds BURST_SECONDS of the rate, but never less than one token (slow keys). */
export function capacityOf(rate: number): number {
  return Math.max(rate * BURST_SECONDS, 1);
}

/** What a principal's limit counts: events for writers, requests for everyone else. */
export function unitOf(p: Principal): "event" | "request" {
  return p.role === "writer" ? "event" : "request";
}

/** The principal's rate, when it has one. */
export function rateOf(p: Principal | undefined): number | null {
  const rate = p?.rateLimitPerS;
  return typeof rate === "number" && rate > 0 ? rate : null;
}

const bucketKey = (p: Principal) => `${p.source}:${p.id}`;

export class RateLimits {
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;
  readonly #onRefused: (p: Principal) => void;
  #sweptAt: number;

  /**
   * `now`: milliseconds, performance.now() by default; tests pass a clock they move.
   * `onRefused`: called for each refusal (the metric).
   */
  constructor(opts: { now?: () => number; onRefused?: (p: Principal) => void } = {}) {
    this.#now = opts.now ?? (() => performance.now());
    this.#onRefused = opts.onRefused ?? (() => {});
    this.#sweptAt = this.#now();
  }

  /** Spends `cost` of the principal's tokens; null when it has no limit. */
  spend(p: Principal, cost: number): Take | null {
    const rate = rateOf(p);
    if (rate === null) return null;
    const t = this.take(bucketKey(p), rate, cost);
    if (!t.ok) this.#onRefused(p);
    return t;
  }

  /** What the principal holds now, spending nothing; null when it has no limit. */
  current(p: Principal): Allowance | null {
    const rate = rateOf(p);
    return rate === null ? null : this.peek(bucketKey(p), rate);
  }

  /** Buckets held now (the memory bound is MAX_BUCKETS). */
  get size(): number {
    return this.#buckets.size;
  }

  /** Spends `cost` tokens of `key`'s bucket if it holds them; otherwise spends nothing. */
  take(key: string, rate: number, cost: number): Take {
    const now = this.#now();
    this.#sweep(now);
    const b = this.#refilled(key, rate, now);
    const capacity = capacityOf(rate);
    if (cost > capacity) return { ok: false, retryAfterS: null, ...allowance(b, capacity) };
    if (b.tokens < cost) {
      const retryAfterS = Math.max(1, Math.ceil((cost - b.tokens) / rate));
      return { ok: false, retryAfterS, ...allowance(b, capacity) };
    }
    b.tokens -= cost;
    return { ok: true, ...allowance(b, capacity) };
  }

  /** What `key` holds now, spending nothing. */
  peek(key: string, rate: number): Allowance {
    const now = this.#now();
    const b = this.#buckets.get(key);
    if (!b) return allowance({ tokens: capacityOf(rate), at: now, rate }, capacityOf(rate));
    const capacity = capacityOf(rate);
    const tokens = Math.min(capacity, b.tokens + ((now - b.at) / 1000) * rate);
    return allowance({ tokens, at: now, rate }, capacity);
  }

  #refilled(key: string, rate: number, now: number): Bucket {
    const capacity = capacityOf(rate);
    let b = this.#buckets.get(key);
    if (b) {
      // Re-inserted so that the map's order is least recently used first.
      this.#buckets.delete(key);
      b.tokens = Math.min(capacity, b.tokens + (Math.max(0, now - b.at) / 1000) * b.rate);
      b.at = now;
      b.rate = rate; // a key whose limit changed keeps what it had, up to the new capacity
    } else {
      b = { tokens: capacity, at: now, rate };
      if (this.#buckets.size >= MAX_BUCKETS) {
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
    }
    this.#buckets.set(key, b);
    return b;
  }

  /** Forgets buckets that have refilled: an idle key costs no memory. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < SWEEP_EVERY_MS) return;
    this.#sweptAt = now;
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * b.rate >= capacityOf(b.rate)) {
        this.#buckets.delete(key);
      }
    }
  }
}

function allowance(b: Bucket, capacity: number): Allowance {
  return {
    rate: b.rate,
    capacity,
    remaining: Math.floor(b.tokens + 1e-9),
    fullInS: Math.max(0, Math.ceil((capacity - b.tokens) / b.rate - 1e-9)),
  };
}
