// The invariants the fault suite checks after each fault. Each check returns the problems it
// found (empty when it holds), so that a test reports all of them at once with its context.
import { type RequestRecord, statusCounts } from "./load.ts";
import { withSql } from "./pg.ts";
import { type Server, sleep } from "../../../scripts/lib/server.ts";

export interface AnswerBounds {
  /** Longest a request may wait for its answer (the server's bound plus room for the machine). */
  boundMs: number;
  /** Statuses a request may get (default 201 and 503). */
  allowed?: number[];
  /**
   * When the server was stopped or killed (performance.now()): a request still unanswered then
   * may get no answer at all. Before it, every request must be answered.
   */
  goneAt?: number;
}

/** No hang, no unexpected status, Retry-After on every 503. */
export function checkAnswers(records: RequestRecord[], b: AnswerBounds): string[] {
  const problems: string[] = [];
  const allowed = new Set(b.allowed ?? [201, 503]);
  const hung = records.filter((r) => r.timedOut);
  if (hung.length) {
    problems.push(`${hung.length} request(s) hung (no answer within the client's timeout)`);
  }
  const slow = records.filter((r) => !r.timedOut && r.ms > b.boundMs);
  if (slow.length) {
    const worst = Math.max(...slow.map((r) => r.ms));
    problems.push(
      `${slow.length} request(s) waited longer than ${b.boundMs} ms (worst ${
        Math.round(worst)
      } ms)`,
    );
  }
  const unanswered = records.filter((r) =>
    r.status === 0 && !r.timedOut && (b.goneAt === undefined || r.sentAt + r.ms < b.goneAt)
  );
  if (unanswered.length) {
    problems.push(
      `${unanswered.length} request(s) got no answer while the server ran: ${unanswered[0].detail}`,
    );
  }
  const odd = records.filter((r) => r.status !== 0 && !allowed.has(r.status));
  if (odd.length) {
    problems.push(
      `${odd.length} request(s) answered ${[...new Set(odd.map((r) => r.status))]}, expected ` +
        `${[...allowed]}: ${odd[0].detail}`,
    );
  }
  const bare503 = records.filter((r) => r.status === 503 && !r.retryAfter);
  if (bare503.length) problems.push(`${bare503.length} 503(s) without Retry-After`);
  return problems;
}

export interface StoredReport {
  problems: string[];
  /** Requests acknowledged (at some attempt). */
  acked: number;
  /** Attempts after the first (retries with the same Idempotency-Key). */
  retries: number;
  /** Requests stored whole although never acknowledged (the answer was lost or came late). */
  storedUnacked: number;
}

/**
 * Every acknowledged request is in the database, whole; none is stored twice (retries included)
 * or in part. Reads `service`'s events by marker (message).
 */
export async function checkStored(
  url: string,
  service: string,
  records: RequestRecord[],
): Promise<StoredReport> {
  const rows = await withSql(url, (sql) =>
    sql<{ message: string; n: number }[]>`
      select e.message, count(*)::int as n
      from log_events e join services s on s.id = e.service_id
      where s.name = ${service}
      group by e.message`);
  const stored = new Map(rows.map((r) => [r.message, r.n]));
  const requests = new Map<string, { events: number; acked: boolean; statuses: number[] }>();
  for (const r of records) {
    const q = requests.get(r.marker) ?? { events: r.events, acked: false, statuses: [] };
    q.acked ||= r.status === 201;
    q.statuses.push(r.status);
    requests.set(r.marker, q);
  }
  const problems: string[] = [];
  let lost = 0, partial = 0, doubled = 0, storedUnacked = 0, acked = 0;
  let example = "";
  for (const [marker, q] of requests) {
    const n = stored.get(marker) ?? 0;
    const answers = q.statuses.join(",");
    if (q.acked) {
      acked++;
      if (n < q.events) {
        lost++;
        example ||= `${marker}: acknowledged ${q.events} (answers ${answers}), stored ${n}`;
      }
    } else if (n === q.events) storedUnacked++;
    if (n > q.events) {
      doubled++;
      example ||= `${marker}: sent ${q.events} (answers ${answers}), stored ${n}`;
    } else if (n > 0 && n < q.events && !q.acked) {
      partial++;
      example ||= `${marker}: sent ${q.events}, stored ${n} (answers ${answers})`;
    }
  }
  if (lost) problems.push(`${lost} acknowledged request(s) not (wholly) in the database`);
  if (doubled) problems.push(`${doubled} request(s) stored more than once`);
  if (partial) problems.push(`${partial} request(s) stored in part (a batch is atomic)`);
  const strangers = [...stored.keys()].filter((m) => !requests.has(m));
  if (strangers.length) problems.push(`${strangers.length} stored marker(s) nobody sent`);
  if (example) problems.push(`e.g. ${example}`);
  return { problems, acked, retries: records.length - requests.size, storedUnacked };
}

/** /health/ready polled on a fixed beat, each probe on its own (they may overlap). */
export class ReadinessProbe {
  readonly samples: { sentAt: number; at: number; status: number }[] = [];
  #timer: ReturnType<typeof setInterval>;
  #inFlight = new Set<Promise<void>>();

  constructor(readonly server: Server, everyMs = 50, readonly timeoutMs = 4000) {
    this.#timer = setInterval(() => this.#probe(), everyMs);
    this.#probe();
  }

  #probe(): void {
    const sentAt = performance.now();
    const p = this.server.get("/health/ready", this.timeoutMs).then((status) => {
      this.samples.push({ sentAt, at: performance.now(), status });
    });
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(this.#inFlight);
    this.samples.sort((a, b) => a.sentAt - b.sentAt);
  }

  /**
   * While the database was unreachable (probes sent after `from` and answered before `to`)
   * readiness says 503, and once it was back (by `upAt`) it says 200 within `withinMs`.
   */
  check(from: number, to: number, upAt: number, withinMs = 1000): string[] {
    const problems: string[] = [];
    const down = this.samples.filter((s) => s.sentAt >= from && s.at <= to);
    if (down.length === 0) {
      problems.push("no readiness probe completed while the database was down");
    }
    const lying = down.filter((s) => s.status !== 503);
    if (lying.length) {
      problems.push(
        `${lying.length} of ${down.length} readiness probe(s) answered ${[
          ...new Set(lying.map((s) => s.status)),
        ]} instead of 503 while the database was down`,
      );
    }
    const hung = this.samples.filter((s) => s.status === 0);
    if (hung.length) {
      problems.push(`${hung.length} readiness probe(s) got no answer in ${this.timeoutMs} ms`);
    }
    const back = this.samples.find((s) => s.at >= upAt && s.status === 200);
    if (!back) problems.push("readiness never answered 200 after the database came back");
    else if (back.at - upAt > withinMs) {
      problems.push(
        `readiness answered 200 only ${Math.round(back.at - upAt)} ms after the database came ` +
          `back (bound ${withinMs} ms)`,
      );
    }
    return problems;
  }
}

/**
 * Polls `url` with fresh connections until one answers. `down` is when the last failed attempt
 * ended (the database was unreachable then), `up` when the first one answered (it was back by
 * then); its return lies between the two. `up` is undefined when it did not answer within `ms`.
 */
export async function waitUntilAnswers(
  url: string,
  ms: number,
): Promise<{ down: number | undefined; up: number | undefined }> {
  const deadline = performance.now() + ms;
  let down: number | undefined;
  while (performance.now() < deadline) {
    try {
      await withSql(url, (sql) => sql`select 1`);
      return { down, up: performance.now() };
    } catch {
      down = performance.now();
    }
    await sleep(20);
  }
  return { down, up: undefined };
}

/** A one-line summary of a load, for failure messages and the test's output. */
export function describe(records: RequestRecord[]): string {
  const ms = records.map((r) => r.ms).sort((a, b) => a - b);
  const p = (q: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] ?? 0);
  return `${records.length} requests ${JSON.stringify(statusCounts(records))}, ` +
    `latency p50 ${p(0.5)} ms, p99 ${p(0.99)} ms, max ${Math.round(ms.at(-1) ?? 0)} ms`;
}
