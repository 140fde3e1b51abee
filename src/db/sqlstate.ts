// What a database error means and what to do about it: the SQLSTATE codes (PostgreSQL's
// appendix A) and connection error codes (Node's, postgres.js's) the app acts on, each with a
// kind, the predicates built on them, and the one retry-with-backoff helper.
//   retryable  the transaction lost a race (serialization failure, deadlock): run it again
//   transient  the database cannot be reached or is overloaded now: later may work (503)
//   client     the statement or its data is at fault; again gives the same answer
//   fatal      anything else: surface it

export type ErrorKind = "retryable" | "transient" | "client" | "fatal";

/** The SQLSTATEs named in the code, by PostgreSQL's condition name. */
export const SQLSTATE = {
  serialization_failure: "40001",
  deadlock_detected: "40P01",
  query_canceled: "57014",
  admin_shutdown: "57P01",
  crash_shutdown: "57P02",
  cannot_connect_now: "57P03",
  too_many_connections: "53300",
  check_violation: "23514",
  unique_violation: "23505",
  undefined_table: "42P01",
} as const;

const KIND_OF_CODE: Record<string, ErrorKind> = {
  [SQLSTATE.serialization_failure]: "retryable",
  [SQLSTATE.deadlock_detected]: "retryable",
  // A statement_timeout or an operator's cancel: the same statement may fit another time.
  [SQLSTATE.query_canceled]: "transient",
  [SQLSTATE.admin_shutdown]: "transient",
  [SQLSTATE.crash_shutdown]: "transient",
  [SQLSTATE.cannot_connect_now]: "transient",
  [SQLSTATE.too_many_connections]: "transient",
};

/** By SQLSTATE class (the first two characters), for codes not listed above. */
const KIND_OF_CLASS: Record<string, ErrorKind> = {
  "08": "transient", // connection exception
  "22": "client", // data exception
  "23": "client", // integrity constraint violation
  "42": "client", // syntax error or access rule violation
};

/**
 * Errors of a connection that was open and is gone (killed backend, restart, failover, a reset
 * socket): postgres.js may hold stale state for it, so its handle is replaced. Failures to
 * connect at all (refused, timed out, starting up) are not among them, nor queries failed by
 * a handle being ended or replaced (CONNECTION_DESTROYED, CONNECTION_ENDED).
 */
const LOST_CODES = new Set<string>([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "CONNECTION_CLOSED",
  SQLSTATE.admin_shutdown, // pg_terminate_backend too
  SQLSTATE.crash_shutdown,
]);

/**
 * Failures to open a connection at all (refused, unreachable, timed out, starting up): the
 * database cannot be reached now, and nothing was sent.
 */
const CONNECT_FAILURE_CODES = new Set<string>([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "CONNECT_TIMEOUT",
  SQLSTATE.cannot_connect_now, // starting up, shutting down
]);

/** The database cannot be reached now (answered with 503), besides SQLSTATE class 08. */
const UNAVAILABLE_CODES = new Set<string>([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ERR_STREAM_WRITE_AFTER_END",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  SQLSTATE.admin_shutdown,
  SQLSTATE.crash_shutdown,
  SQLSTATE.cannot_connect_now,
  SQLSTATE.too_many_connections,
]);

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/** The kind of a database error (see the top of this file). */
export function errorKind(err: unknown): ErrorKind {
  const code = codeOf(err);
  if (code === undefined) return "fatal";
  if (UNAVAILABLE_CODES.has(code) || CONNECT_FAILURE_CODES.has(code)) return "transient";
  return KIND_OF_CODE[code] ?? (code.length === 5 ? KIND_OF_CLASS[code.slice(0, 2)] : undefined) ??
    "fatal";
}

/** A transaction that lost a race (40001, 40P01): running it again is the fix. */
export function isRetryable(err: unknown): boolean {
  return errorKind(err) === "retryable";
}

/** True when PostgreSQL cancelled the statement (statement_timeout, or an operator's cancel). */
export function isQueryCancelled(err: unknown): boolean {
  return codeOf(err) === SQLSTATE.query_canceled;
}

export function isConnectionLost(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && LOST_CODES.has(code);
}

export function isConnectFailure(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && CONNECT_FAILURE_CODES.has(code);
}

/** True when the error means the database cannot be reached now (not a bad query). */
export function isDbUnavailable(err: unknown): boolean {
  const code = codeOf(err);
  if (code === undefined) return false;
  return UNAVAILABLE_CODES.has(code) || code.startsWith("08");
}

export interface RetryOptions {
  /** Most tries in all, the first included. */
  attempts: number;
  /** The first wait; each next one doubles, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** Which failures to try again; isRetryable by default. */
  retryOn?: (err: unknown) => boolean;
  /** No try starts after this (epoch ms), nor a wait that would end past it. */
  deadline?: number;
  signal?: AbortSignal;
  /** Called before each wait, for logs. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** The jitter's source, [0, 1); Math.random by default (tests pin it). */
  random?: () => number;
}

/**
 * `fn` until it succeeds, fails with an error `retryOn` refuses, or the attempts, deadline or
 * signal run out (then its last error is thrown). Waits are exponential with full jitter, so
 * transactions that collided once do not collide again in step.
 */
export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const retryOn = opts.retryOn ?? isRetryable;
  for (let attempt = 1;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= opts.attempts || !retryOn(err) || opts.signal?.aborted) throw err;
      const cap = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (attempt - 1));
      const delay = Math.round((opts.random ?? Math.random)() * cap);
      if (opts.deadline !== undefined && Date.now() + delay >= opts.deadline) throw err;
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay, opts.signal);
      if (opts.signal?.aborted) throw err;
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
