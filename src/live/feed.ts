// What a live-feed request gets: the latest events for a plain GET, or a subscription with the
// events to send first (the latest, or those a resuming client missed) for a stream.
import type { Sql } from "../db/connect.ts";
import type { LogEventOut } from "../query/events.ts";
import { type FilterParams, type LogFilter, toFilter } from "../query/filters.ts";
import type { LiveHub } from "./hub.ts";
import { latestEvents, type LiveGap, resumeAfterId } from "./queries.ts";
import type { Subscription } from "./subscription.ts";

export type { LiveGap };

export const LIVE_DEFAULT_LIMIT = 25;
export const LIVE_MAX_LIMIT = 500;
/** Most missed events a resuming client is sent (the newest) before it goes live. */
export const LIVE_MAX_RESUME = 500;

/** The parameters of GET /logs/live-feed, as the query string gives them (validated). */
export interface LiveParams extends FilterParams {
  limit?: number;
  last_event_id?: number;
}

export interface LiveRequest {
  filter: LogFilter;
  limit: number;
  lastEventId?: number;
}

/** From the validated parameters and headers; contradictory filters are malformed input. */
export function toLiveRequest(q: LiveParams, lastEventIdHeader?: string): LiveRequest {
  const filter = toFilter(q);
  // EventSource keeps the URL across reconnects but updates the header, so the header is newer.
  const header = lastEventIdHeader ? Number(lastEventIdHeader) : undefined;
  return { filter, limit: q.limit ?? LIVE_DEFAULT_LIMIT, lastEventId: header ?? q.last_event_id };
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
      // A ping right after the initial events tells a client where its backlog ends (the
      // console draws a backlog in full, and samples a flood).
      await sink.ping();
      nextPing = Date.now() + heartbeatMs;
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
