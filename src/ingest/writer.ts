// Group commit: concurrent writes wait for the flush in progress, then go to PostgreSQL
// together in one transaction. Nobody is answered before their events are committed; the
// throughput comes from sharing the commit, never from acknowledging early.
import type { Sql } from "../db/connect.ts";
import { ensurePartitions, partitionWindow, utcDay } from "../db/partitions.ts";
import { logger } from "../logging.ts";
import { compactRollups, pendingCte, pendingParam } from "./rollup.ts";
import type { NewEvent } from "./validate.ts";

export const EVENTS_CHANNEL = "observian_events";

/** What a NOTIFY on EVENTS_CHANNEL carries: where the committed events are. */
export interface CommitNotice {
  from: string;
  to: string;
  ids: [number, number][];
}

export type IngestSource = "api" | "github";

export interface FlushInfo {
  events: number;
  requests: number;
  durationMs: number;
  ok: boolean;
}

interface Pending {
  events: NewEvent[];
  resolve: (ids: number[]) => void;
  reject: (err: unknown) => void;
}

export interface EventWriterOptions {
  /** Most events one transaction takes; more wait for the next flush. */
  maxBatchEvents?: number;
  /** Partitions are created on demand only inside the window ingest accepts. */
  retentionDays?: number;
  /** Least time between two rollup compactions started by this writer. */
  compactEveryMs?: number;
  /**
   * Most transactions in flight at once (default 4). Only requests of PARALLEL_FLUSH_EVENTS or
   * more start one while another runs: single events batch better waiting for one flush at a
   * time (measured ~9k vs ~7k requests/s on two cores), big batches gain from overlapping.
   */
  concurrentFlushes?: number;
  onFlush?: (info: FlushInfo) => void;
}

/** A queued request at least this large may start a transaction beside a running one. */
const PARALLEL_FLUSH_EVENTS = 500;

export class EventWriter {
  #queue: Pending[] = [];
  /** Flushes under way; each ends by starting the next while events wait. */
  #flushes = new Set<Promise<void>>();
  readonly #maxFlushes: number;
  #compacting: Promise<void> | null = null;
  #lastCompaction = 0;
  readonly #compactEveryMs: number;
  #serviceIds = new Map<string, number>();
  readonly #max: number;
  readonly #log = logger("ingest");

  constructor(private readonly sql: Sql, private readonly opts: EventWriterOptions = {}) {
    this.#max = opts.maxBatchEvents ?? 20_000;
    this.#maxFlushes = opts.concurrentFlushes ?? 4;
    this.#compactEveryMs = opts.compactEveryMs ?? 1000;
  }

  /** Stores the events atomically; resolves with their ids once committed. */
  write(events: NewEvent[]): Promise<number[]> {
    if (events.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.#queue.push({ events, resolve, reject });
      this.#startFlush();
    });
  }

  /** Waits until everything queued so far is committed (or failed). */
  async idle(): Promise<void> {
    while (this.#flushes.size || this.#compacting) {
      await Promise.all(this.#flushes);
      await this.#compacting;
    }
  }

  /**
   * Folds rollup deltas into the tiers at most once per interval, after commits and off the
   * request path: readers see pending deltas anyway, so this only keeps the pending table
   * small. Driven by writes rather than a timer, so an idle instance (or Deno Deploy isolate)
   * does no work.
   */
  #maybeCompact(): void {
    const now = Date.now();
    if (this.#compacting || now - this.#lastCompaction < this.#compactEveryMs) return;
    this.#lastCompaction = now;
    this.#compacting = compactRollups(this.sql)
      .catch((err) =>
        this.#log.warning("rollup compaction failed: {error}", { error: String(err) })
      )
      .then(() => {
        this.#compacting = null;
      });
  }

  /**
   * Starts a flush of what is queued when fewer than the limit are under way. Under load each
   * flush takes everything queued while the previous one ran: that is the group commit.
   */
  #startFlush(): void {
    if (this.#flushes.size >= this.#maxFlushes || this.#queue.length === 0) return;
    // A second transaction only pays off for big batches: small ones wait and batch up.
    if (this.#flushes.size > 0 && this.#queue[0].events.length < PARALLEL_FLUSH_EVENTS) return;
    const group: Pending[] = [];
    let n = 0;
    while (
      this.#queue.length && (group.length === 0 || n + this.#queue[0].events.length <= this.#max)
    ) {
      const p = this.#queue.shift()!;
      group.push(p);
      n += p.events.length;
    }
    const flush: Promise<void> = this.#flushGroup(group).finally(() => {
      this.#flushes.delete(flush);
      this.#startFlush();
    });
    this.#flushes.add(flush);
  }

  async #flushGroup(group: Pending[]): Promise<void> {
    const started = performance.now();
    const events = group.flatMap((p) => p.events);
    try {
      const ids = await this.#commit(events);
      let at = 0;
      for (const p of group) {
        p.resolve(ids.slice(at, at + p.events.length));
        at += p.events.length;
      }
      this.#report(events.length, group.length, started, true);
      this.#maybeCompact();
    } catch (err) {
      if (group.length === 1) {
        group[0].reject(err);
        this.#report(events.length, 1, started, false);
        return;
      }
      // One request's events must not fail the others that shared its transaction.
      for (const p of group) await this.#flushGroup([p]);
    }
  }

  #report(events: number, requests: number, started: number, ok: boolean) {
    this.opts.onFlush?.({ events, requests, ok, durationMs: performance.now() - started });
  }

  async #commit(events: NewEvent[]): Promise<number[]> {
    const serviceIds = await this.#resolveServices(events);
    try {
      return await this.#insert(events, serviceIds);
    } catch (err) {
      if (!isMissingPartition(err)) throw err;
      // Partition upkeep fell behind (e.g. the server ran past midnight without the pruner):
      // create the days these events need, then try once more.
      const days = events.map((e) => utcDay(e.timestamp)).sort();
      const allowed = partitionWindow(new Date(), this.opts.retentionDays ?? 7);
      if (days[0] < allowed.from || days[days.length - 1] > allowed.to) throw err;
      const created = await ensurePartitions(this.sql, days[0], days[days.length - 1]);
      this.#log.warning("created {created} missing partition(s) during ingest", { created });
      return await this.#insert(events, serviceIds);
    }
  }

  async #insert(events: NewEvent[], serviceIds: number[]): Promise<number[]> {
    // Rows travel as one JSON text parameter: postgres.js can serialise array parameters
    // wrongly on a connection that has not fetched its array types yet (porsager/postgres#952).
    const rows = JSON.stringify(events.map((e, i) => ({
      s: serviceIds[i],
      t: e.timestamp.toISOString(),
      c: e.statusCode,
      e: e.eventType,
      l: e.latencyMs,
      m: e.message,
      a: e.attributes,
    })));
    const rollups = pendingParam(events.map((e, i) => ({
      serviceId: serviceIds[i],
      time: e.timestamp.getTime(),
      statusCode: e.statusCode,
      eventType: e.eventType,
      latencyMs: e.latencyMs,
    })));
    // One statement, so one round trip and its own transaction: events, rollups and the
    // notice for live feeds commit together or not at all.
    const [row] = await this.sql.unsafe<{ ids: number[] }[]>(FLUSH_SQL, [rows, rollups], {
      prepare: true,
    });
    return row.ids;
  }

  /** Service ids by name; unknown names are registered (safe under concurrent first writes). */
  async #resolveServices(events: NewEvent[]): Promise<number[]> {
    const missing = [...new Set(events.map((e) => e.serviceName))].filter((name) =>
      !this.#serviceIds.has(name)
    );
    if (missing.length) {
      const names = JSON.stringify(missing);
      await this.sql`
        insert into services (name)
        select jsonb_array_elements_text(${names}::text::jsonb)
        on conflict (name) do nothing`;
      const rows = await this.sql<{ id: number; name: string }[]>`
        select id, name from services
        where name in (select jsonb_array_elements_text(${names}::text::jsonb))`;
      for (const r of rows) this.#serviceIds.set(r.name, r.id);
    }
    return events.map((e) => this.#serviceIds.get(e.serviceName)!);
  }
}

// Ids come back sorted: one statement takes its sequence values in row order, so sorted ids
// line up with the input. The notice covers the commit's id span; listeners dedupe by id.
const FLUSH_SQL = `
  with ins as (
    insert into log_events
      (service_id, "timestamp", status_code, event_type, latency_ms, message, attributes)
    select s, t, c, e, l, m, a
    from json_to_recordset($1::text::json)
      as r (s int, t timestamptz, c smallint, e text, l float8, m text, a jsonb)
    returning id, "timestamp"
  ),
  ${pendingCte(2)}
  select json_agg(id order by id) as ids,
    pg_notify('${EVENTS_CHANNEL}', json_build_object(
      'from', min("timestamp"), 'to', max("timestamp"),
      'ids', json_build_array(json_build_array(min(id), max(id))))::text) as notified
  from ins`;

function isMissingPartition(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === "23514" && /no partition/i.test(e.message ?? "");
}

/** Time span and id ranges of a commit, small enough for NOTIFY's 8000-byte payload. */
export function notice(ts: string[], ids: number[]): CommitNotice {
  let from = ts[0], to = ts[0];
  for (const t of ts) {
    if (t < from) from = t;
    if (t > to) to = t;
  }
  const sorted = [...ids].sort((a, b) => a - b);
  const ranges: [number, number][] = [];
  for (const id of sorted) {
    const last = ranges[ranges.length - 1];
    if (last && id === last[1] + 1) last[1] = id;
    else ranges.push([id, id]);
  }
  // Too many ranges for the payload: one covering range; listeners dedupe by id.
  const compact = ranges.length > 200 ? [[sorted[0], sorted[sorted.length - 1]]] : ranges;
  return { from, to, ids: compact as [number, number][] };
}
