// A burst of big batches: `clients` concurrent connections, each POSTing `rounds` JSON arrays of
// `events` events (~110 bytes each, so 10,000 make ~1.1 MB) to /logs, retrying a 503 after its
// Retry-After as a shipper would. Shared by the memory benchmark and the fault suite, so it
// depends on nothing but fetch. Every event of a burst carries one service name of its own,
// so the caller can check that each acknowledged event was stored.

export interface BurstOptions {
  /** The server, e.g. http://127.0.0.1:8000 */
  base: string;
  clients?: number;
  /** Batches each client sends, one after the other. */
  rounds?: number;
  events?: number;
  /** A message of this many characters in every event (default none: ~110 bytes per event). */
  messageBytes?: number;
  /** The service every event names; default: burst-<random>. */
  service?: string;
  /** Give up retrying a body after this long (ms); it then counts as unacknowledged. */
  deadlineMs?: number;
  /** Longest wait for one answer (ms). */
  requestTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface BurstResult {
  service: string;
  /** Bodies sent once or more. */
  bodies: number;
  /** Bodies answered 201, and the events they acknowledged. */
  created: number;
  acceptedEvents: number;
  /** 503 answers (each retried), and other statuses by code. */
  refused: number;
  other: Record<number, number>;
  /** Network errors and timeouts (each body given up on). */
  errors: number;
  /** Bodies never acknowledged before the deadline. */
  givenUp: number;
  durationMs: number;
  /** Slowest single answer, ms. */
  maxLatencyMs: number;
}

const TYPES = ["http.request", "db.query", "cache.miss", "queue.publish"];

/** A JSON array of `n` events for `service`, without null fields (~110 bytes per event). */
export function burstBody(
  service: string,
  n: number,
  seed = 0,
  opts: { now?: number; messageBytes?: number } = {},
): string {
  const now = opts.now ?? Date.now();
  const message = opts.messageBytes ? "m".repeat(opts.messageBytes) : undefined;
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = (i * 7919 + seed * 104729) % 1000;
    const status = k < 30 ? 503 : k < 80 ? 404 : 200;
    parts.push(JSON.stringify({
      service_name: service,
      status_code: status,
      latency_ms: Math.round(20 + k * 1.37) / 10,
      event_type: TYPES[k % TYPES.length],
      timestamp: new Date(now - k * 600).toISOString(),
      message,
    }));
  }
  return `[${parts.join(",")}]`;
}

export async function burst(opts: BurstOptions): Promise<BurstResult> {
  const clients = opts.clients ?? 40;
  const rounds = opts.rounds ?? 1;
  const n = opts.events ?? 10_000;
  const service = opts.service ?? `burst-${crypto.randomUUID().slice(0, 8)}`;
  const deadline = performance.now() + (opts.deadlineMs ?? 120_000);
  // Four distinct bodies are enough: the server parses each request anew.
  const bodies = Array.from(
    { length: 4 },
    (_, i) => burstBody(service, n, i, { messageBytes: opts.messageBytes }),
  );
  const r: BurstResult = {
    service,
    bodies: 0,
    created: 0,
    acceptedEvents: 0,
    refused: 0,
    other: {},
    errors: 0,
    givenUp: 0,
    durationMs: 0,
    maxLatencyMs: 0,
  };
  const started = performance.now();
  const sendOne = async (body: string): Promise<void> => {
    r.bodies++;
    while (!opts.signal?.aborted) {
      const t0 = performance.now();
      let res: Response;
      try {
        res = await fetch(`${opts.base}/logs`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          signal: AbortSignal.any([
            AbortSignal.timeout(opts.requestTimeoutMs ?? 60_000),
            ...(opts.signal ? [opts.signal] : []),
          ]),
        });
      } catch {
        r.errors++;
        break;
      }
      const text = await res.text().catch(() => "");
      r.maxLatencyMs = Math.max(r.maxLatencyMs, performance.now() - t0);
      if (res.status === 201) {
        r.created++;
        r.acceptedEvents += (JSON.parse(text) as { accepted: number }).accepted;
        return;
      }
      if (res.status !== 503) {
        r.other[res.status] = (r.other[res.status] ?? 0) + 1;
        break;
      }
      r.refused++;
      const wait = Number(res.headers.get("retry-after") ?? 1) * 1000;
      if (performance.now() + wait > deadline) break;
      // Spread the retries a little, as shippers jitter theirs.
      await new Promise((ok) => setTimeout(ok, wait * (0.5 + Math.random() / 2)));
    }
    r.givenUp++;
  };
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; i < rounds; i++) await sendOne(bodies[(c + i) % bodies.length]);
  }));
  r.durationMs = performance.now() - started;
  return r;
}
