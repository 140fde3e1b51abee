// Reads a JSON or NDJSON request body within a byte limit, refusing what it cannot take.
import type { Config } from "../config.ts";
import { InvalidInputError, UnavailableError } from "../errors.ts";
import type { AdmissionLease } from "../ingest/admission.ts";

export type BodyFormat = "json" | "ndjson";

const NDJSON_TYPES = ["application/x-ndjson", "application/ndjson", "application/jsonl"];

/** How the body is compressed, as log shippers send it (Content-Encoding). */
export type BodyEncoding = "identity" | "gzip" | "deflate";

/** What a 415 for an unknown Content-Encoding names in its Accept-Encoding (RFC 9110 §12.5.3). */
export const ACCEPTED_ENCODINGS = "gzip, deflate";

/** 415 for a Content-Encoding this server cannot decode; answered with Accept-Encoding. */
export class UnsupportedEncodingError extends InvalidInputError {
  readonly acceptEncoding = ACCEPTED_ENCODINGS;
  constructor(encoding: string) {
    super(
      [{
        field: "content-encoding",
        message: `must be gzip, deflate or identity, not "${encoding}"`,
      }],
      "unsupported",
    );
  }
}

export function bodyEncoding(contentEncoding: string | undefined): BodyEncoding {
  const enc = (contentEncoding ?? "").trim().toLowerCase();
  if (enc === "" || enc === "identity") return "identity";
  if (enc === "gzip" || enc === "x-gzip") return "gzip";
  if (enc === "deflate") return "deflate";
  throw new UnsupportedEncodingError(enc);
}

export function bodyFormat(contentType: string | undefined): BodyFormat {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  if (type === "application/json" || type.endsWith("+json")) return "json";
  if (NDJSON_TYPES.includes(type)) return "ndjson";
  throw new InvalidInputError(
    [{
      field: "content-type",
      message: `must be application/json or application/x-ndjson, not "${type || "(none)"}"`,
    }],
    "unsupported",
  );
}

/** The Content-Length the client declared; NaN for a chunked body. */
const declaredLength = (req: Request) => Number(req.headers.get("content-length") ?? NaN);

/**
 * Bodies declared at most this large are reserved whole and taken in one read: per request,
 * req.bytes() cost 18-24 µs of CPU against 31-55 µs for the chunk loop (measured, small single
 * events). Larger ones are reserved chunk by chunk as they arrive, and read so: req.bytes() of
 * 40 concurrent 1.3 MB bodies also left ~190 MB of resident memory behind, the loop ~50 MB.
 */
export const ONE_READ_MAX_BYTES = 64 * 1024;

export interface ReadTextOptions {
  maxBytes: number;
  encoding?: BodyEncoding;
  /** The longest the whole body may take to arrive (BODY_READ_TIMEOUT_MS); then 408. */
  timeoutMs: number;
  /**
   * Claims memory for `bytes` more of the body before they are held; throws (e.g. 503) to
   * refuse the body. Called with the declared length of a small body, else once per chunk.
   */
  reserve: (bytes: number) => void;
  /**
   * Called first with a declared Content-Length: throws to refuse, before reading, a body that
   * could not be held now anyway (nothing is reserved by it).
   */
  admit?: (declaredBytes: number) => void;
}

/**
 * The body as text, or 413 as soon as it passes `maxBytes` (chunked bodies included), or 408
 * when it has not all arrived within `timeoutMs`. A compressed body is limited by its
 * decompressed size, checked as it inflates, so a small body that expands without end (a zip
 * bomb) is refused early.
 *
 * A body refused part-way is left unread, never cancelled: Deno then answers with
 * `connection: close`, whereas cancelling the request stream left the connection open and
 * server.shutdown() waiting on it for as long as the client stayed (Deno 2.9, measured).
 */
export async function readText(req: Request, opts: ReadTextOptions): Promise<string> {
  return utf8(await readBytes(req, opts));
}

/** readText's body as bytes, for binary formats (OTLP protobuf); the same limits. */
export async function readBytes(req: Request, opts: ReadTextOptions): Promise<Uint8Array> {
  const { maxBytes, encoding = "identity" } = opts;
  const tooLarge = () =>
    new InvalidInputError(
      [{
        field: "(body)",
        message: `larger than the limit of ${maxBytes} bytes` +
          (encoding === "identity" ? "" : " once decompressed"),
      }],
      "too_large",
    );
  const declared = declaredLength(req);
  if (declared > maxBytes) throw tooLarge();
  if (!req.body) return new Uint8Array(0);
  if (declared > 0) opts.admit?.(declared);
  const deadline = startDeadline(opts.timeoutMs);
  try {
    if (declared >= 0 && declared <= ONE_READ_MAX_BYTES && encoding === "identity") {
      opts.reserve(declared);
      return await deadline.race(readAll(req));
    }
    const stream = encoding === "identity"
      ? req.body
      : req.body.pipeThrough(new DecompressionStream(encoding));
    const chunks: Uint8Array[] = [];
    let size = 0;
    const reader = stream.getReader();
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await deadline.race(reader.read());
      } catch (err) {
        if (err === TIMED_OUT) throw err;
        throw encoding === "identity" ? cutOff() : notDecodable(encoding);
      }
      const { done, value } = chunk;
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) throw tooLarge();
      opts.reserve(value.byteLength);
      chunks.push(value);
    }
    const all = new Uint8Array(size);
    let offset = 0;
    for (const c of chunks) {
      all.set(c, offset);
      offset += c.byteLength;
    }
    chunks.length = 0;
    return all;
  } catch (err) {
    if (err === TIMED_OUT) throw timedOut(opts.timeoutMs);
    throw err;
  } finally {
    deadline.clear();
  }
}

const TIMED_OUT = Symbol("body read timed out");

/**
 * Deadlines of the bodies being read, checked by one timer every DEADLINE_TICK_MS while any is
 * pending, so a body times out at most that much after its bound: a setTimeout per request
 * cost 6-9 µs of CPU (measured, Deno 2.9), about a third of reading a small body.
 */
const DEADLINE_TICK_MS = 100;
const deadlines = new Set<{ until: number; expire: (reason: unknown) => void }>();
let sweeper: ReturnType<typeof setInterval> | undefined;

function sweep(): void {
  if (deadlines.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
    return;
  }
  const now = performance.now();
  for (const d of deadlines) {
    if (d.until <= now) {
      deadlines.delete(d);
      d.expire(TIMED_OUT);
    }
  }
}

/** race() settles with the read, or rejects with TIMED_OUT once `ms` have passed. */
function startDeadline(ms: number) {
  let expire!: (reason: unknown) => void;
  const expired = new Promise<never>((_, reject) => expire = reject);
  expired.catch(() => {});
  const entry = { until: performance.now() + ms, expire };
  deadlines.add(entry);
  if (!sweeper) {
    sweeper = setInterval(sweep, DEADLINE_TICK_MS);
    // Never what keeps the process alive; it stops itself once no body is pending.
    sweeper.unref?.();
  }
  return {
    race<T>(p: Promise<T>): Promise<T> {
      // The losing read settles when the connection closes; nobody waits for it then.
      p.catch(() => {});
      return Promise.race([p, expired]);
    },
    clear: () => deadlines.delete(entry),
  };
}

async function readAll(req: Request): Promise<Uint8Array> {
  try {
    return await req.bytes();
  } catch {
    throw cutOff();
  }
}

const timedOut = (ms: number) =>
  new InvalidInputError([{
    field: "(body)",
    message: `did not arrive within ${ms} ms (BODY_READ_TIMEOUT_MS); nothing was stored`,
  }], "timeout");

// Stateless between calls (no `stream: true`), so one decoder serves every request.
const decoder = new TextDecoder("utf-8", { fatal: true });

export function utf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new InvalidInputError([{ field: "(body)", message: "is not valid UTF-8" }], "malformed");
  }
}

// The client went away (or the connection broke) mid-body: nothing was stored.
const cutOff = () =>
  new InvalidInputError(
    [{ field: "(body)", message: "could not be read to the end" }],
    "malformed",
  );

const notDecodable = (encoding: BodyEncoding) =>
  new InvalidInputError([{
    field: "(body)",
    message: `is not valid ${encoding} data, or could not be read to the end`,
  }], "malformed");

/** Decodes JSON (one value) or NDJSON (one value per non-blank line); 400 names the spot. */
export function decodeBody(text: string, format: BodyFormat): unknown {
  if (format === "json") {
    if (!text.trim()) throw malformed("(body)", "is empty");
    try {
      return JSON.parse(text);
    } catch (err) {
      throw malformed("(body)", `is not valid JSON: ${(err as Error).message}`);
    }
  }
  const values: unknown[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    try {
      values.push(JSON.parse(line));
    } catch (err) {
      throw malformed(`line ${i + 1}`, `is not valid JSON: ${(err as Error).message}`);
    }
  }
  return values;
}

const malformed = (field: string, message: string) =>
  new InvalidInputError([{ field, message }], "malformed");

/** 503 + Retry-After: what this request already holds plus its next bytes would pass the limit. */
export class AtCapacityError extends UnavailableError {
  constructor() {
    super(
      "Ingest is at capacity (INGEST_MAX_INFLIGHT_BYTES of request bodies and events are " +
        "held); nothing was stored, retry shortly.",
      1,
    );
  }
}

/**
 * The read options of a body that writes events (POST /logs, /v1/traces, webhooks): its size
 * and time limits, and its bytes claimed from `lease` as they arrive, or refused before the
 * upload when its declared length could not be held now.
 */
export function leasedRead(
  lease: AdmissionLease,
  config: Pick<Config, "maxBodyBytes" | "bodyReadTimeoutMs">,
  encoding?: BodyEncoding,
): ReadTextOptions {
  return {
    maxBytes: config.maxBodyBytes,
    encoding,
    timeoutMs: config.bodyReadTimeoutMs,
    reserve: (bytes) => {
      if (!lease.tryGrow(bytes)) throw new AtCapacityError();
    },
    admit: (declared) => {
      if (!lease.fits(declared)) throw new AtCapacityError();
    },
  };
}
