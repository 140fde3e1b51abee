// One client's share of the live feed: a bounded queue the hub fills and the client's stream
// drains at its own pace.
import type { LogEventOut } from "../query/events.ts";
import type { LogFilter } from "../query/filters.ts";

/** Why a subscription stopped receiving events. */
export type EndReason = "client" | "overflow" | "closed" | "resync";

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
