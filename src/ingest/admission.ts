// Bounds the request bodies POST /logs holds at once (being read, parsed, or waiting for their
// commit). A burst beyond what PostgreSQL absorbs is refused with 503 and Retry-After, which
// shippers retry, instead of piling up in memory until the process is killed: nothing
// refused was acknowledged, so nothing is lost.

export class IngestAdmission {
  #inFlight = 0;

  constructor(readonly maxBytes: number) {}

  /**
   * Reserves `bytes`; false when that would pass the limit. A request is always let in when
   * nothing else is in flight, so a body up to MAX_BODY_BYTES is never refused for good.
   */
  tryAcquire(bytes: number): boolean {
    if (this.#inFlight > 0 && this.#inFlight + bytes > this.maxBytes) return false;
    this.#inFlight += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#inFlight -= bytes;
  }

  get inFlightBytes(): number {
    return this.#inFlight;
  }
}
