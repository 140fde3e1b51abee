// The live feed's fan-out: one database listener per instance shared by every subscriber.
//
// The writer NOTIFYs EVENTS_CHANNEL in the same transaction as the events, so a notice arrives
// only once they are visible. The hub fetches each notice's events once and hands them to every
// subscriber whose filter matches; each subscriber has a bounded queue that its stream drains
// at the client's pace.
import type { Db } from "../db/connect.ts";
import { UnavailableError } from "../errors.ts";
import { type CommitNotice, EVENTS_CHANNEL } from "../ingest/store.ts";
import { logger } from "../logging.ts";
import type { LogEventOut } from "../query/events.ts";
import { type LogFilter, matches } from "../query/filters.ts";
import { takeMergedNotice } from "./notices.ts";
import { noticeEvents } from "./queries.ts";
import { type EndReason, Subscription } from "./subscription.ts";

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

const DEDUPE_WINDOW = 65_536;

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
