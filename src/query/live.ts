// The live feed's fan-out: one database listener per instance shared by every subscriber.
//
// The writer NOTIFYs EVENTS_CHANNEL in the same transaction as the events, so a notice arrives
// only once they are visible. The hub fetches each notice's events once and hands them to every
// subscriber whose filter matches; each subscriber has a bounded queue that its stream drains
// at the client's pace.
import { z } from "@hono/zod-openapi";
import type { Db, Sql } from "../db/connect.ts";
import { InvalidInputError, UnavailableError } from "../errors.ts";
import { type CommitNotice, EVENTS_CHANNEL } from "../ingest/store.ts";
import { logger } from "../logging.ts";
import type { LogEventOut } from "./events.ts";
import {
  filterQueryFields,
  FilterRangeError,
  intParam,
  type LogFilter,
  matches,
  toFilter,
} from "./filters.ts";
import { latestEvents, type LiveGap, noticeEvents, resumeAfterId } from "./live-queries.ts";

export type { LiveGap };

export const LIVE_DEFAULT_LIMIT = 25;
export const LIVE_MAX_LIMIT = 500;
/** Most missed events a resuming client is sent (the newest) before it goes live. */
export const LIVE_MAX_RESUME = 500;

const ID = /^[0-9]{1,15}$/;
const MAX_EVENT_ID = 999_999_999_999_999;

export const LiveQuery = z.strictObject({
  ...filterQueryFields,
  limit: intParam(1, LIVE_MAX_LIMIT, "limit").openapi({
    description: `How many of the latest events, 1 to ${LIVE_MAX_LIMIT} (default ` +
      `${LIVE_DEFAULT_LIMIT}). For a stream: how many are sent before it goes live.`,
    example: 50,
  }),
  last_event_id: intParam(0, MAX_EVENT_ID, "last_event_id").openapi({
    description: "Streams only: resume after this event id (the Last-Event-ID header wins).",
    example: 1042,
  }),
});
export type LiveQueryInput = z.infer<typeof LiveQuery>;

// Accept is not declared: OpenAPI ignores a header parameter by that name; the two response
// content types document the negotiation.
export const LiveHeaders = z.object({
  "last-event-id": z.string().regex(ID, { error: "must be an event id (a whole number)" })
    .or(z.literal("")).optional().openapi({
      param: { name: "last-event-id", in: "header" },
      description: "Sent by EventSource on reconnect: resume after this event id.",
      example: "1042",
    }),
});

export interface LiveRequest {
  filter: LogFilter;
  limit: number;
  lastEventId?: number;
}

/** From the validated query and headers; contradictory filters are the client's 400. */
export function toLiveRequest(q: LiveQueryInput, lastEventIdHeader?: string): LiveRequest {
  let filter: LogFilter;
  try {
    filter = toFilter(q);
  } catch (err) {
    if (err instanceof FilterRangeError) {
      throw new InvalidInputError([{ field: err.field, message: err.message }], "malformed");
    }
    throw err;
  }
  // EventSource keeps the URL across reconnects but updates the header, so the header is newer.
  const header = lastEventIdHeader ? Number(lastEventIdHeader) : undefined;
  return { filter, limit: q.limit ?? LIVE_DEFAULT_LIMIT, lastEventId: header ?? q.last_event_id };
}

/** True when the client asked for Server-Sent Events (and prefers them to JSON). */
export function wantsEventStream(accept: string | undefined): boolean {
  if (!accept) return false;
  let sse = 0, json = 0;
  for (const range of accept.split(",")) {
    const [type, ...params] = range.trim().toLowerCase().split(";").map((s) => s.trim());
    const qParam = params.find((p) => p.startsWith("q="));
    const q = qParam ? Number(qParam.slice(2)) || 0 : 1;
    if (type === "text/event-stream") sse = Math.max(sse, q);
    else if (type === "application/json") json = Math.max(json, q);
  }
  return sse > 0 && sse >= json;
}

/** The latest events for a plain GET, newest first. */
export async function latestFeed(
  sql: Sql,
  req: LiveRequest,
  opts: { retentionDays: number; queryTimeoutMs: number },
): Promise<LogEventOut[]> {
  return await latestEvents(sql, req.filter, {
    limit: req.limit,
    retentionDays: opts.retentionDays,
    timeoutMs: opts.queryTimeoutMs,
  });
}

/** Why a subscription stopped receiving events. */
export type EndReason = "client" | "overflow" | "closed" | "resync";

export interface LiveHubOptions {
  /** Events waiting for one subscriber before it counts as too slow and is dropped. */
  maxQueue?: number;
  /** How long close() lets streams flush before cutting them. */
  closeGraceMs?: number;
  /** Notices waiting to be fetched before the hub gives up and makes every client resync. */
  maxPendingNotices?: number;
}

export interface LiveHubStats {
  subscribers: number;
  /** LISTENs this hub has issued (one for its lifetime, shared by all subscribers). */
  listens: number;
  notices: number;
  /** Queries fetching the events of notices (one per notice or merged group of notices). */
  fetches: number;
  /** Subscribers dropped because their queue overflowed. */
  overflows: number;
}

/** One client's share of the feed: a bounded queue the hub fills and the stream drains. */
export class Subscription {
  #queue: LogEventOut[] = [];
  #wake: (() => void) | null = null;
  #abort: (() => void) | null = null;
  #released!: () => void;
  /** Resolves once the stream that owned this subscription has finished. */
  readonly released = new Promise<void>((r) => this.#released = r);
  ended: EndReason | null = null;

  constructor(
    readonly filter: LogFilter,
    private readonly maxQueue: number,
    private readonly detach: (s: Subscription, reason: EndReason) => void,
  ) {}

  push(e: LogEventOut): void {
    if (this.ended) return;
    if (this.#queue.length >= this.maxQueue) {
      this.end("overflow");
      return;
    }
    this.#queue.push(e);
    this.#wake?.();
  }

  /** Stops delivery. "closed" keeps what is queued so the stream can flush it. */
  end(reason: EndReason): void {
    if (this.ended) return;
    this.ended = reason;
    if (reason !== "closed") this.#queue = [];
    this.detach(this, reason);
    this.#wake?.();
    // A client that fell this far behind is probably not reading: cut it instead of waiting.
    if (reason === "overflow") this.abort();
  }

  /** Cuts the client's connection at once. */
  abort(): void {
    this.#abort?.();
  }

  onAbort(fn: () => void): void {
    this.#abort = fn;
  }

  /** Queued events; [] when `timeoutMs` passes first; null once ended and drained. */
  async take(timeoutMs: number): Promise<LogEventOut[] | null> {
    if (!this.#queue.length && !this.ended) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#wake = null;
          resolve();
        }, timeoutMs);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = null;
          resolve();
        };
      });
    }
    if (this.#queue.length) return this.#queue.splice(0);
    return this.ended ? null : [];
  }

  release(): void {
    if (!this.ended) this.end("client");
    this.#released();
  }
}

/** Where a feed writes: the route adapts an SSE stream to this. */
export interface LiveSink {
  send(e: LogEventOut): Promise<void>;
  /** Matching events the feed knowingly skips (see LiveGap); sent before the replay. */
  gap(g: LiveGap): Promise<void>;
  ping(): Promise<void>;
  abort(): void;
}

/** A subscribed feed with its initial events, ready to stream. */
export class LiveFeed {
  readonly #initialIds: Set<number>;

  constructor(
    readonly subscription: Subscription,
    readonly initial: LogEventOut[],
    readonly gap: LiveGap | null = null,
  ) {
    this.#initialIds = new Set(initial.map((e) => e.id));
  }

  /** Streams the initial events, then live ones and heartbeats, until the feed ends. */
  async pipe(sink: LiveSink, heartbeatMs: number): Promise<void> {
    const sub = this.subscription;
    sub.onAbort(() => sink.abort());
    try {
      let nextPing = Date.now() + heartbeatMs;
      if (this.gap) await sink.gap(this.gap);
      for (const e of this.initial) {
        if (sub.ended && sub.ended !== "closed") return;
        await sink.send(e);
      }
      for (;;) {
        const batch = await sub.take(Math.max(0, nextPing - Date.now()));
        if (batch === null) return;
        for (const e of batch) {
          if (sub.ended && sub.ended !== "closed") return;
          // Committed between subscribing and the initial query: already sent.
          if (this.#initialIds.has(e.id)) continue;
          await sink.send(e);
        }
        if (Date.now() >= nextPing) {
          await sink.ping();
          nextPing = Date.now() + heartbeatMs;
        }
      }
    } finally {
      sub.release();
    }
  }

  /** The client went away. */
  cancel(): void {
    this.subscription.end("client");
  }
}

/**
 * Subscribes, then reads what the client should see first: the latest `limit` events (sent
 * oldest first, so a client can append) or, when resuming, those after its last id: the newest
 * LIVE_MAX_RESUME of them, announced by a gap when there were more. The hub is listening before
 * the query runs, so an event committed in between arrives either in the query or as a notice
 * (the feed drops the duplicate), never in neither.
 */
export async function openLiveFeed(
  hub: LiveHub,
  req: LiveRequest,
  opts: { retentionDays: number; queryTimeoutMs: number },
): Promise<LiveFeed> {
  const sub = await hub.subscribe(req.filter);
  try {
    if (req.lastEventId === undefined) {
      return new LiveFeed(sub, (await latestFeed(hub.sql, req, opts)).reverse());
    }
    const { events, gap } = await resumeAfterId(hub.sql, req.filter, {
      afterId: req.lastEventId,
      limit: LIVE_MAX_RESUME,
      retentionDays: opts.retentionDays,
      timeoutMs: opts.queryTimeoutMs,
    });
    return new LiveFeed(sub, events, gap);
  } catch (err) {
    sub.release();
    throw err;
  }
}

const DEDUPE_WINDOW = 65_536;
/** Notices merged into one fetch only while their combined time span stays this narrow. */
const MERGE_SPAN_MS = 5 * 60_000;
const MAX_RANGES = 200;

export class LiveHub {
  readonly #log = logger("live");
  readonly #maxQueue: number;
  readonly #closeGraceMs: number;
  readonly #maxPending: number;
  /** Receiving events. */
  readonly #subs = new Set<Subscription>();
  /** Not yet released by their stream (close() waits for these). */
  readonly #open = new Set<Subscription>();
  #listening: Promise<void> | null = null;
  #unlisten: (() => Promise<void>) | null = null;
  #pending: CommitNotice[] = [];
  #draining: Promise<void> | null = null;
  #closing: Promise<void> | null = null;
  // A notice may cover ids another notice already delivered; remember recent ids.
  readonly #seen = new Set<number>();
  readonly #seenOrder: number[] = [];
  readonly #stats = { listens: 0, notices: 0, fetches: 0, overflows: 0 };

  constructor(readonly sql: Db, opts: LiveHubOptions = {}) {
    this.#maxQueue = opts.maxQueue ?? 1000;
    this.#closeGraceMs = opts.closeGraceMs ?? 2000;
    this.#maxPending = opts.maxPendingNotices ?? 10_000;
    // A replaced handle ends its LISTEN connection, and postgres.js gives up re-listening when
    // the database is down at that moment: listen anew on the fresh handle, and let clients
    // catch up from the database (Last-Event-ID) over what the gap missed.
    sql.onReplaced(() => {
      if (this.#closing) return;
      this.#listening = null;
      this.#unlisten = null;
      if (this.#subs.size === 0) return;
      this.#log.warning("live-feed listener lost with its database handle; clients will resync");
      this.#endAll("resync");
      this.#listen().catch((err) =>
        this.#log.warning("LISTEN failed: {error}", { error: String(err) })
      );
    });
  }

  stats(): LiveHubStats {
    return { subscribers: this.#subs.size, ...this.#stats };
  }

  /** A new subscription, once the hub's LISTEN is in place. */
  async subscribe(filter: LogFilter): Promise<Subscription> {
    if (this.#closing) throw new UnavailableError("the server is shutting down");
    try {
      await this.#listen();
    } catch (err) {
      this.#log.error("LISTEN failed: {error}", { error: String(err) });
      throw new UnavailableError("the live feed cannot reach the database");
    }
    if (this.#closing) throw new UnavailableError("the server is shutting down");
    const sub = new Subscription(filter, this.#maxQueue, (s, reason) => {
      this.#subs.delete(s);
      if (reason === "overflow") {
        this.#stats.overflows++;
        this.#log.info("dropped a live-feed client that fell {n} events behind", {
          n: this.#maxQueue,
        });
      }
    });
    this.#subs.add(sub);
    this.#open.add(sub);
    void sub.released.then(() => this.#open.delete(sub));
    return sub;
  }

  #listen(): Promise<void> {
    if (!this.#listening) {
      let first = true;
      this.#stats.listens++;
      this.#listening = this.sql.listen(
        EVENTS_CHANNEL,
        (payload) => this.#onNotify(payload),
        () => {
          if (first) {
            first = false;
            return;
          }
          // postgres.js re-LISTENs after a lost connection; notices sent meanwhile are gone.
          // Ending the streams makes EventSource reconnect with Last-Event-ID and catch up.
          this.#log.warning("live-feed listener reconnected; clients will resync");
          this.#endAll("resync");
        },
      ).then((l) => {
        this.#unlisten = l.unlisten;
      }, (err) => {
        this.#listening = null;
        throw err;
      });
    }
    return this.#listening;
  }

  #onNotify(payload: string): void {
    if (this.#closing || this.#subs.size === 0) return;
    this.#stats.notices++;
    let n: CommitNotice;
    try {
      n = JSON.parse(payload);
      if (typeof n.from !== "string" || typeof n.to !== "string" || !Array.isArray(n.ids)) {
        throw new Error("missing from, to or ids");
      }
    } catch (err) {
      this.#log.warning("ignoring a malformed notice: {error}", { error: String(err) });
      return;
    }
    if (this.#pending.length >= this.#maxPending) {
      // Fetching cannot keep up; clients resume from the database instead.
      this.#log.warning("live feed fell {n} notices behind; clients will resync", {
        n: this.#pending.length,
      });
      this.#pending = [];
      this.#endAll("resync");
      return;
    }
    this.#pending.push(n);
    this.#draining ??= this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length && !this.#closing) {
        const notice = takeMergedNotice(this.#pending);
        let events: LogEventOut[];
        this.#stats.fetches++;
        try {
          events = await noticeEvents(this.sql, notice);
        } catch (err) {
          this.#log.error("fetching committed events failed: {error}", { error: String(err) });
          this.#endAll("resync");
          continue;
        }
        this.#fanOut(events);
      }
    } finally {
      this.#draining = null;
    }
  }

  #fanOut(events: LogEventOut[]): void {
    for (const e of events) {
      if (this.#seen.has(e.id)) continue;
      this.#seen.add(e.id);
      this.#seenOrder.push(e.id);
      if (this.#seenOrder.length > DEDUPE_WINDOW) {
        for (const old of this.#seenOrder.splice(0, DEDUPE_WINDOW / 4)) this.#seen.delete(old);
      }
      for (const sub of this.#subs) {
        if (matches(sub.filter, e)) sub.push(e);
      }
    }
  }

  #endAll(reason: EndReason): void {
    for (const sub of [...this.#subs]) sub.end(reason);
  }

  /** Ends every open stream (shutdown) and stops listening. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    for (const sub of [...this.#open]) sub.end("closed");
    if (!(await this.#allReleased(this.#closeGraceMs))) {
      // Clients that do not read keep their stream's last write pending: cut them.
      for (const sub of this.#open) sub.abort();
      await this.#allReleased(this.#closeGraceMs);
    }
    await this.#listening?.catch(() => {});
    await this.#unlisten?.().catch(() => {});
    await this.#draining;
  }

  async #allReleased(timeoutMs: number): Promise<boolean> {
    if (this.#open.size === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = Promise.all([...this.#open].map((s) => s.released)).then(() => true);
    const late = new Promise<false>((r) => timer = setTimeout(() => r(false), timeoutMs));
    try {
      return await Promise.race([done, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * The next notice to fetch, merged with the ones queued behind it while their time spans
 * overlap closely: under load one query serves many commits, but a merge never widens the
 * scanned time range to days.
 */
function takeMergedNotice(pending: CommitNotice[]): CommitNotice {
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
