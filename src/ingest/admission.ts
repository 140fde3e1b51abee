// Bounds the memory POST /logs holds at once: request bodies as they arrive, then the events
// parsed from them until their commit. A burst beyond what PostgreSQL absorbs is refused with
// 503 and Retry-After, which shippers retry, instead of piling up in memory until the process
// is killed: nothing refused was acknowledged, so nothing is lost.
//
// Each request takes a lease that grows with what it holds, chunk by chunk, so a client that
// declares a large body and sends it slowly holds only what it has sent.

export class IngestAdmission {
  #inFlight = 0;

  constructor(readonly maxBytes: number) {}

  /** A new, empty lease; its holder must release() it whatever happens. */
  lease(): AdmissionLease {
    return new AdmissionLease(this);
  }

  /** Bytes held by every lease together (observian_ingest_inflight_bytes). */
  get inFlightBytes(): number {
    return this.#inFlight;
  }

  /** @internal for AdmissionLease */
  _fits(held: number, bytes: number): boolean {
    // A lease alone in flight may always grow, so a body up to MAX_BODY_BYTES is never
    // refused for good, whatever INGEST_MAX_INFLIGHT_BYTES says.
    return this.#inFlight <= held || this.#inFlight + bytes <= this.maxBytes;
  }

  /** @internal for AdmissionLease */
  _grow(held: number, bytes: number): boolean {
    if (!this._fits(held, bytes)) return false;
    this.#inFlight += bytes;
    return true;
  }

  /** @internal for AdmissionLease */
  _shrink(bytes: number): void {
    this.#inFlight -= bytes;
  }
}

/** One request's share of the admission limit. */
export class AdmissionLease {
  #held = 0;
  #released = false;

  constructor(private readonly admission: IngestAdmission) {}

  /** Whether `bytes` more could be held now (tryGrow's test, without growing). */
  fits(bytes: number): boolean {
    return !this.#released && this.admission._fits(this.#held, bytes);
  }

  /** Adds `bytes` to what this request holds; false, adding nothing, when over the limit. */
  tryGrow(bytes: number): boolean {
    if (this.#released) return false;
    if (bytes <= 0) return true;
    if (!this.admission._grow(this.#held, bytes)) return false;
    this.#held += bytes;
    return true;
  }

  /**
   * Sets what this request holds to `bytes` (e.g. the events parsed from a body in place of
   * the body). Shrinking always succeeds; growing succeeds as tryGrow would.
   */
  tryResize(bytes: number): boolean {
    if (bytes >= this.#held) return this.tryGrow(bytes - this.#held);
    if (!this.#released) {
      this.admission._shrink(this.#held - bytes);
      this.#held = bytes;
    }
    return true;
  }

  get heldBytes(): number {
    return this.#held;
  }

  /** Gives everything back; safe to call more than once. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.admission._shrink(this.#held);
    this.#held = 0;
  }
}
