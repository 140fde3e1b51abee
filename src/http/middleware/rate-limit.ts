// Per-key rate limits over HTTP: 429 with Retry-After when a key is over its limit, and the
// RateLimit-Policy / RateLimit fields of draft-ietf-httpapi-ratelimit-headers-10 (the policy
// named by a String item, `q` and `w` on the policy, `r` and `t` on the current state) on every
// response to a key that has a limit. The buckets are src/access/rate-limit.ts.
import type { Context, Next } from "hono";
import { InvalidInputError, TooManyRequestsError } from "../../errors.ts";
import type { Principal } from "../../access/principal.ts";
import { type Allowance, type RateLimits, type Take, unitOf } from "../../access/rate-limit.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** What this request spent of its key's bucket, for the RateLimit field. */
    rateLimitTake?: Take;
  }
}

/**
 * Runs the rest of the request under the principal's limit: a request-limited key (reader,
 * admin) spends one token here or is refused with 429; an event-limited key (writer) spends in
 * POST /logs (spendEvents). Either way the response then carries the RateLimit fields.
 */
export async function withRateLimit(
  c: Context,
  limits: RateLimits,
  p: Principal,
  next: Next,
): Promise<void> {
  if (limits.current(p) === null) return await next();
  if (unitOf(p) === "request") {
    const t = limits.spend(p, 1)!;
    c.set("rateLimitTake", t);
    if (!t.ok) {
      advertise(c, p, t, t.retryAfterS);
      throw new TooManyRequestsError(
        `this key is limited to ${t.rate} requests per second (bursts of ${
          Math.floor(t.capacity)
        }) on this instance; retry after ${t.retryAfterS} s`,
        t.retryAfterS ?? 1,
      );
    }
  }
  await next();
  const t = c.get("rateLimitTake");
  const now = t ?? limits.current(p)!;
  // The response is made by now; a handler's Response with frozen headers keeps its own.
  try {
    advertise(c, p, now, t && !t.ok ? t.retryAfterS : null, c.res.headers);
  } catch { /* immutable headers */ }
}

/**
 * POST /logs: an event-limited key spends one token per event, after validation and before
 * anything is written. Over the limit → 429 with Retry-After; a batch larger than the burst can
 * never pass, however long the shipper waits, so it is a 413 naming the limit instead.
 */
export function spendEvents(c: Context, limits: RateLimits, p: Principal | undefined, n: number) {
  if (!p || unitOf(p) !== "event") return;
  const t = limits.spend(p, n);
  if (!t) return;
  c.set("rateLimitTake", t);
  if (t.ok) return;
  const limit = `${t.rate} events per second, in bursts of at most ${Math.floor(t.capacity)}`;
  if (t.retryAfterS === null) {
    throw new InvalidInputError(
      [{
        field: "(body)",
        message: `${n} events are more than this key's burst: send at most ${
          Math.floor(t.capacity)
        } events per request`,
      }],
      "too_large",
      `this key is limited to ${limit} on this instance; a batch of ${n} events can never be ` +
        `accepted: split it. Nothing was stored.`,
    );
  }
  throw new TooManyRequestsError(
    `this key is limited to ${limit} on this instance; ${n} event(s) do not fit now. Nothing ` +
      `was stored; retry after ${t.retryAfterS} s.`,
    t.retryAfterS,
  );
}

/**
 * The two fields. RateLimit-Policy: the bucket as a quota of q units every w seconds (the time
 * an empty bucket takes to fill). RateLimit: r, whole units left now; t, seconds until the
 * bucket is full, or, on a 429, until Retry-After, which the draft asks t to match.
 */
function advertise(
  c: Context,
  p: Principal,
  a: Allowance,
  retryAfterS: number | null,
  headers?: Headers,
): void {
  // Policy names say the unit: the draft's registered quota units (qu) have none for events.
  const name = unitOf(p) === "event" ? '"events"' : '"requests"';
  const w = Math.max(1, Math.ceil(a.capacity / a.rate - 1e-9));
  const policy = `${name};q=${Math.floor(a.capacity)};w=${w}`;
  const state = `${name};r=${a.remaining};t=${retryAfterS ?? a.fullInS}`;
  if (headers) {
    headers.set("ratelimit-policy", policy);
    headers.set("ratelimit", state);
  } else {
    c.header("RateLimit-Policy", policy);
    c.header("RateLimit", state);
  }
}
