// The fault suite's load: concurrent workers posting single events and small batches to
// POST /logs over real HTTP (keep-alive), each request with a marker of its own in its events'
// `message`, so that what was acknowledged can be looked up afterwards. Every answer, status
// and latency is recorded; the load runs until stopped or its time is up.
import { sleep } from "../../../scripts/lib/server.ts";

export interface LoadOptions {
  /** http://127.0.0.1:port */
  base: string | (() => string);
  /** The service every event names; verification reads it back. */
  service: string;
  /** Concurrent workers, each with one request in flight at a time. */
  workers: number;
  /** Longest the load runs (it also ends on stop()). */
  maxMs: number;
  /** Client-side bound of a request; reaching it fails the suite (a hang). */
  timeoutMs: number;
  /** One request in this many is a batch of 2-`batchMax` events (0: singles only). */
  batchEvery?: number;
  batchMax?: number;
  /** event_type of each event (default "fault"). */
  eventType?: (marker: string, i: number) => string;
  /**
   * Retry a request answered 503 or not at all, as a shipper does: the same events with the
   * same Idempotency-Key (its marker), until acknowledged or the load ends. On by default.
   */
  retry?: boolean;
}

export interface RequestRecord {
  /** The request's events carry it in `message`; retries of a request share it. */
  marker: string;
  /** 0 for the first attempt. */
  attempt?: number;
  events: number;
  /** HTTP status; 0 when no answer came (connection refused or reset: the server was gone). */
  status: number;
  /** The client gave up waiting: a hang. */
  timedOut: boolean;
  /** performance.now() when sent. */
  sentAt: number;
  /** How long until the answer (or the failure). */
  ms: number;
  retryAfter?: string | null;
  /** The answer's body for 201 (ids) and problems, or the network error. */
  detail?: string;
}

export class Load {
  readonly records: RequestRecord[] = [];
  #stopped = false;
  #workers: Promise<void>[] = [];
  #seq = 0;
  readonly #run = crypto.randomUUID().slice(0, 8);
  readonly done: Promise<void>;

  constructor(readonly opts: LoadOptions) {
    const until = performance.now() + opts.maxMs;
    this.#workers = Array.from({ length: opts.workers }, (_, w) => this.#worker(w, until));
    this.done = Promise.all(this.#workers).then(() => {});
  }

  get base(): string {
    return typeof this.opts.base === "function" ? this.opts.base() : this.opts.base;
  }

  async #worker(w: number, until: number): Promise<void> {
    const every = this.opts.batchEvery ?? 0;
    const retry = this.opts.retry ?? true;
    const going = () => !this.#stopped && performance.now() < until;
    let n = 0;
    while (going()) {
      n++;
      const size = every > 0 && n % every === 0
        ? 2 + Math.floor(Math.random() * ((this.opts.batchMax ?? 20) - 1))
        : 1;
      const marker = `${this.#run}-${w}-${this.#seq++}`;
      for (let attempt = 0;; attempt++) {
        const r = await post(this.base, this.opts, marker, size, retry);
        r.attempt = attempt;
        this.records.push(r);
        if (r.status === 201) break;
        // Do not spin on a server that is gone or refusing: a shipper would back off too.
        await sleep(r.status === 0 ? 50 : 20);
        if (!retry || r.timedOut || (r.status !== 0 && r.status !== 503) || !going()) break;
      }
    }
  }

  /** Acknowledged requests so far. */
  get acked(): number {
    return this.records.filter((r) => r.status === 201).length;
  }

  /** Ends the load: no new requests; resolves once every request in flight is answered. */
  async stop(): Promise<RequestRecord[]> {
    this.#stopped = true;
    await this.done;
    return this.records;
  }
}

/**
 * One POST of `size` events carrying `marker` (the same events for the same arguments, so that a
 * retry with its Idempotency-Key is one); never throws.
 */
export async function post(
  base: string,
  opts: Pick<LoadOptions, "service" | "timeoutMs" | "eventType">,
  marker: string,
  size = 1,
  idempotent = false,
): Promise<RequestRecord> {
  const event = (i: number) => ({
    service_name: opts.service,
    status_code: 200,
    latency_ms: 1 + (i % 50),
    event_type: opts.eventType?.(marker, i) ?? "fault",
    message: marker,
  });
  const body = JSON.stringify(
    size === 1 ? event(0) : Array.from({ length: size }, (_, i) => event(i)),
  );
  return await send(base, marker, size, body, opts.timeoutMs, idempotent ? marker : undefined);
}

/** POSTs a prepared body; records the outcome. */
export async function send(
  base: string,
  marker: string,
  events: number,
  body: string,
  timeoutMs: number,
  idempotencyKey?: string,
): Promise<RequestRecord> {
  const sentAt = performance.now();
  const signal = AbortSignal.timeout(timeoutMs);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
  try {
    const res = await fetch(`${base}/logs`, {
      method: "POST",
      headers,
      body,
      signal,
    });
    const text = await res.text();
    return {
      marker,
      events,
      status: res.status,
      timedOut: false,
      sentAt,
      ms: performance.now() - sentAt,
      retryAfter: res.headers.get("retry-after"),
      detail: res.status === 201 ? undefined : text.slice(0, 300),
    };
  } catch (err) {
    return {
      marker,
      events,
      status: 0,
      timedOut: signal.aborted,
      sentAt,
      ms: performance.now() - sentAt,
      detail: err instanceof Error ? err.message : String(err),
    };
  }
}

/**
 * Posts single events, one after the other, from `from` (performance.now()) until one is
 * acknowledged; how long after `from` that was, or undefined if not within `ms`. The probes are
 * returned too: they are verified like the load's.
 */
export async function recoveryTime(
  base: string,
  service: string,
  from: number,
  ms: number,
): Promise<{ ms: number | undefined; records: RequestRecord[] }> {
  const records: RequestRecord[] = [];
  const run = crypto.randomUUID().slice(0, 8);
  let i = 0;
  while (performance.now() - from < ms) {
    const left = ms - (performance.now() - from);
    const r = await post(base, { service, timeoutMs: Math.max(left, 100) }, `probe-${run}-${i++}`);
    records.push(r);
    if (r.status === 201) return { ms: performance.now() - from, records };
    await sleep(25);
  }
  return { ms: undefined, records };
}

/** Counts by status ("0" is no answer), for messages. */
export function statusCounts(records: RequestRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) {
    const key = r.timedOut ? "client-timeout" : String(r.status);
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
