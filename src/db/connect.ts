// The one database handle: created by main (or a test), passed to everything that needs it.
import postgres from "postgres";
import { logger } from "../logging.ts";

export type Sql = postgres.Sql;
/** A handle inside sql.begin(); functions that must run in the caller's transaction take it. */
export type Tx = postgres.TransactionSql;

export interface DbOptions {
  max?: number;
  /** Seconds allowed to open one connection. */
  connectTimeoutS?: number;
  applicationName?: string;
}

/**
 * postgres.js learns array type oids on its first connection; array parameters of queries
 * queued before that are sent as text (porsager/postgres#789). main runs waitForDb first, and
 * the hot paths send lists as JSON anyway.
 */
export function createDb(url: string, opts: DbOptions = {}): Sql {
  return postgres(url, {
    max: opts.max ?? 10,
    connect_timeout: opts.connectTimeoutS ?? 10,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    onnotice: () => {},
    connection: { application_name: opts.applicationName ?? "observian" },
  });
}

/** host:port/db of a URL, for messages that must not carry a password. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}

/**
 * Keeps the process up when a database socket fails after postgres.js stopped listening to it.
 * A backend killed (pg_terminate_backend, a PostgreSQL restart or failover) while a write is
 * still queued surfaces from Deno's node:net as an unhandled EPIPE or ECONNRESET, which would
 * end the process. postgres.js has already failed the affected queries (answered 503) and
 * reconnects on the next one, so it is logged, not fatal.
 */
export function surviveLostDbSockets(): void {
  const log = logger("db");
  const handle = (err: unknown, event: Event) => {
    const code = (err as { code?: unknown })?.code;
    if (typeof code !== "string" || !LOST_SOCKET_CODES.has(code)) return;
    event.preventDefault();
    log.warning("a database connection was lost mid-write ({code}); it reconnects on next use", {
      code,
    });
  };
  globalThis.addEventListener("unhandledrejection", (e) => handle(e.reason, e));
  globalThis.addEventListener("error", (e) => handle(e.error, e));
}

const LOST_SOCKET_CODES = new Set(["EPIPE", "ECONNRESET", "ERR_STREAM_WRITE_AFTER_END"]);

export class DbUnavailableError extends Error {
  override name = "DbUnavailableError";
}

/**
 * Waits for the database with bounded retries and exponential backoff, the way a
 * container waits for its database to come up; fails with one line after `timeoutS`.
 */
export async function waitForDb(
  sql: Sql,
  opts: { url: string; timeoutS: number; signal?: AbortSignal },
): Promise<void> {
  const log = logger("db");
  const deadline = Date.now() + opts.timeoutS * 1000;
  let delay = 100;
  for (let attempt = 1;; attempt++) {
    try {
      await sql`select 1`;
      if (attempt > 1) log.info("database reachable after {attempt} attempts", { attempt });
      return;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (Date.now() + delay > deadline || opts.signal?.aborted) {
        throw new DbUnavailableError(
          `database ${describeUrl(opts.url)} unreachable after ${opts.timeoutS}s: ${reason}`,
        );
      }
      log.warning("database {target} not ready ({reason}); retry in {delayMs} ms", {
        target: describeUrl(opts.url),
        reason,
        delayMs: delay,
      });
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 2000);
    }
  }
}

const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "CONNECT_TIMEOUT",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "57P01", // admin shutdown
  "57P02", // crash shutdown
  "57P03", // cannot connect now (starting up)
  "53300", // too many connections
]);

/**
 * Bounds the statements of the transaction `tx` to `ms` (0: no bound). Log queries can walk a
 * whole retention window when a filter has no index (min_latency_ms alone: 23 s at 10M events);
 * this keeps one such request from holding a connection and a core for that long.
 */
export function statementTimeout(tx: Tx, ms: number) {
  return tx`select set_config('statement_timeout', ${String(ms)}, true)`;
}

/** True when PostgreSQL cancelled the statement (statement_timeout, or an operator's cancel). */
export function isQueryCancelled(err: unknown): boolean {
  return (err as { code?: unknown })?.code === "57014";
}

/** True when the error means the database cannot be reached now (not a bad query). */
export function isDbUnavailable(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== "string") return false;
  return UNAVAILABLE_CODES.has(code) || code.startsWith("08");
}
