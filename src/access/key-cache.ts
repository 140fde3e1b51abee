// Stored keys remembered per instance, so that a request with a key costs no query. Trusted only
// while this instance LISTENs on KEYS_CHANNEL: a trigger notifies it whenever a key is deleted or
// changed (through the API or by hand), in the transaction that does it, and
// every instance forgets its keys when the notice arrives (milliseconds after the commit; the
// revoking instance forgets before it answers). While the listener is not in place (not yet
// started, reconnecting, or its database handle replaced) nothing is remembered and every
// request looks its key up, so a revocation is never missed. Knows nothing of HTTP.
import type { Db } from "../db/connect.ts";
import { logger } from "../logging.ts";

/**
 * A trigger on api_keys notifies this channel when a key is deleted or changed (by the API or by
 * hand; sql/017_api_keys_notify.sql). The payload is unused: every key is forgotten.
 */
export const KEYS_CHANNEL = "observian_keys";

/** More keys than this in use at once on one instance: start over rather than grow. */
const MAX_ENTRIES = 10_000;

export class KeyCache<T extends { expires_at: Date | null }> {
  readonly #log = logger("access");
  #entries = new Map<string, T>();
  #live = false;
  /** Bumped whenever entries are dropped: a lookup begun before may not store its answer. */
  #epoch = 0;
  #listening: Promise<void> | null = null;

  constructor(private readonly sql: Db) {
    // A replaced handle has lost the LISTEN connection: notices may be missed until it is back.
    sql.onReplaced(() => {
      this.#live = false;
      this.#forget();
      this.#listening = null;
      this.#listen();
    });
  }

  /** The remembered key of a digest, if the listener is in place and the key has not expired. */
  get(digest: string): T | undefined {
    if (!this.#live) {
      this.#listen();
      return undefined;
    }
    const row = this.#entries.get(digest);
    if (row?.expires_at && row.expires_at.getTime() <= Date.now()) {
      this.#entries.delete(digest);
      return undefined;
    }
    return row;
  }

  /** Where a lookup starts: pass it to set() with the answer. */
  epoch(): number {
    return this.#epoch;
  }

  set(digest: string, row: T, since: number): void {
    if (!this.#live || since !== this.#epoch) return;
    if (this.#entries.size >= MAX_ENTRIES) this.#forget();
    this.#entries.set(digest, row);
  }

  /** Forgets every key (a key was deleted here or elsewhere, or notices may have been missed). */
  forgetAll(): void {
    this.#forget();
  }

  #forget(): void {
    this.#epoch++;
    this.#entries = new Map();
  }

  #listen(): void {
    this.#listening ??= this.sql.listen(
      KEYS_CHANNEL,
      () => this.#forget(),
      // Each (re)LISTEN: what was remembered before it may have missed a notice.
      () => {
        this.#forget();
        this.#live = true;
      },
    ).then(() => {}, (err) => {
      this.#listening = null;
      this.#log.warning("LISTEN for key revocations failed: {error}", { error: String(err) });
    });
  }
}
