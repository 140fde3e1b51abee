// The one database handle: created by main (or a test), passed to everything that needs it.
import postgres from "postgres";
import { logger } from "../logging.ts";
import { tlsModeOf, watchedSocket } from "./socket.ts";
import { withRetry } from "./sqlstate.ts";

export type Sql = postgres.Sql;
/** A handle inside sql.begin(); functions that must run in the caller's transaction take it. */
export type Tx = postgres.TransactionSql;

/**
 * A handle that can be swapped for a fresh one. postgres.js does not recover every connection it
 * loses: a query sent between a socket's `error` and `close` events is never answered (and once
 * the connection reconnects, answers shift by one query), and the reconnected connection may
 * reject its first query with the old error (see README, "Failure behaviour"). A fresh instance
 * has none of this, and ending the old one with no grace settles every query it still holds. So
 * a socket that fails swaps the handle before postgres.js hears of it, and the owner of a handle
 * that is stuck (a commit past its deadline, a check that timed out) replaces it too.
 */
export type Db = Sql & Replaceable;

export interface Replaceable {
  /** Counts replacements; a caller passes the one it used so a failure replaces a handle once. */
  readonly generation: number;
  /**
   * Swaps in a fresh instance and ends the current one at once (its queries fail). False when
   * `generation` is given and already replaced, or the handle was ended.
   */
  replace(reason: string, generation?: number): boolean;
  /** Calls `fn` after every replacement (state tied to the old instance, such as LISTEN). */
  onReplaced(fn: () => void): void;
}

export interface DbOptions {
  max?: number;
  /** Seconds allowed to open one connection. */
  connectTimeoutS?: number;
  applicationName?: string;
  /** Names the handle in logs and metrics ("pool", "ingest", "health"). */
  name?: string;
  /** Told of every replacement (metrics). */
  onReplace?: (name: string, reason: string) => void;
  /** Longest wait between two attempts to reconnect (default 1 s). */
  maxBackoffS?: number;
  /** statement_timeout of every statement on the handle's connections; 0 or absent: none. */
  statementTimeoutMs?: number;
}

/**
 * postgres.js learns array type oids on its first connection; array parameters of queries
 * queued before that are sent as text (porsager/postgres#789). main runs waitForDb first, and
 * the hot paths send lists as JSON anyway.
 */
export function createDb(url: string, opts: DbOptions = {}): Db {
  const name = opts.name ?? "pool";
  const tls = tlsModeOf(url);
  const connectTimeoutS = opts.connectTimeoutS ?? 10;
  const open = (onLost: (err: unknown) => void) =>
    postgres(url, {
      socket: watchedSocket({ tls, connectTimeoutMs: connectTimeoutS * 1000, onLost }),
      // Negotiated by the socket above.
      ssl: false,
      max: opts.max ?? 10,
      connect_timeout: connectTimeoutS,
      idle_timeout: 60,
      max_lifetime: 60 * 30,
      // The default grows to 20 s between attempts after a few failures: a database back after
      // a restart would then wait that long for us. Retry within a second instead.
      backoff: (retries: number) => Math.min(0.05 * 2 ** retries, opts.maxBackoffS ?? 1),
      // Dead peers (a failover, a cable) show up in seconds, not after the kernel's two hours.
      keep_alive: 10,
      onnotice: () => {},
      connection: {
        application_name: opts.applicationName ?? "observian",
        ...(opts.statementTimeoutMs ? { statement_timeout: String(opts.statementTimeoutMs) } : {}),
      },
    } as postgres.Options<Record<string, postgres.PostgresType>>);
  const log = logger("db");
  let generation = 0;
  let ended = false;
  const replacedListeners: (() => void)[] = [];
  const opened = () => {
    const mine = generation;
    // Each instance's sockets report their own failure, so a late one cannot replace its
    // successor.
    return open((err) => handle.replace(`its connection was lost (${codeOf(err)})`, mine));
  };
  const handle: Replaceable & { end: Sql["end"] } = {
    get generation() {
      return generation;
    },
    replace(reason, seen) {
      if (ended || (seen !== undefined && seen !== generation)) return false;
      const old = current;
      generation++;
      current = opened();
      log.warning("replacing database handle {name}: {reason}", { name, reason });
      opts.onReplace?.(name, reason);
      // No grace: every query the old instance holds fails now instead of waiting on it.
      void old.end({ timeout: 0 }).catch(() => {});
      for (const fn of replacedListeners) fn();
      return true;
    },
    onReplaced(fn) {
      replacedListeners.push(fn);
    },
    end(options) {
      ended = true;
      return current.end(options);
    },
  };
  let current = opened();
  return new Proxy(function () {} as unknown as Db, {
    apply: (_target, _this, args) => (current as (...a: unknown[]) => unknown)(...args),
    get: (_target, prop) =>
      prop in handle ? handle[prop as keyof typeof handle] : Reflect.get(current, prop),
  });
}

const codeOf = (err: unknown) => String((err as { code?: unknown })?.code ?? err);

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
 * still queued surfaces from Deno's node:net as an unhandled EPIPE or ECONNRESET (over TLS, as
 * postgres.js's CONNECTION_CLOSED), which would end the process. postgres.js has already failed
 * the affected queries (answered 503) and the handle was replaced, so it is logged, not fatal.
 */
export function surviveLostDbSockets(): void {
  const log = logger("db");
  const handle = (err: unknown, event: Event) => {
    const code = isNullSocketWrite(err) ? NULL_SOCKET_WRITE : (err as { code?: unknown })?.code;
    if (typeof code !== "string" || !LOST_SOCKET_CODES.has(code)) return;
    event.preventDefault();
    log.warning("a database connection was lost mid-write ({code}); it reconnects on next use", {
      code,
    });
  };
  globalThis.addEventListener("unhandledrejection", (e) => handle(e.reason, e));
  globalThis.addEventListener("error", (e) => handle(e.error, e));
}

/**
 * postgres.js 3.4.9 can schedule a write for a connection whose socket it has already dropped
 * (a backend killed inside a transaction, scripts/repro/postgres-js-stale-error.ts): the timer
 * then throws. The handle was replaced when the socket was lost; only that timer is left.
 */
function isNullSocketWrite(err: unknown): boolean {
  return err instanceof TypeError && /reading 'write'/.test(err.message) &&
    /postgres\/src\/connection\.js/.test(err.stack ?? "") && /nextWrite/.test(err.stack ?? "");
}

const NULL_SOCKET_WRITE = "write to a dropped socket";

const LOST_SOCKET_CODES = new Set([
  NULL_SOCKET_WRITE,
  "EPIPE",
  "ECONNRESET",
  "ERR_STREAM_WRITE_AFTER_END",
  "CONNECTION_CLOSED",
  // Queries of a replaced handle that postgres.js started on its own (a LISTEN it renews).
  "CONNECTION_DESTROYED",
]);

export class DbUnavailableError extends Error {
  override name = "DbUnavailableError";
}

/**
 * Waits for the database with bounded retries and jittered exponential backoff, the way a
 * container waits for its database to come up; fails with one line after `timeoutS`.
 */
export async function waitForDb(
  sql: Sql,
  opts: { url: string; timeoutS: number; signal?: AbortSignal },
): Promise<void> {
  const log = logger("db");
  let attempts = 1;
  try {
    await withRetry(() => sql`select 1`, {
      attempts: Infinity,
      baseDelayMs: 100,
      maxDelayMs: 2000,
      retryOn: () => true,
      deadline: Date.now() + opts.timeoutS * 1000,
      signal: opts.signal,
      onRetry: (err, _attempt, delayMs) => {
        attempts++;
        log.warning("database {target} not ready ({reason}); retry in {delayMs} ms", {
          target: describeUrl(opts.url),
          reason: err instanceof Error ? err.message : String(err),
          delayMs,
        });
      },
    });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new DbUnavailableError(
      `database ${describeUrl(opts.url)} unreachable after ${opts.timeoutS}s: ${reason}`,
    );
  }
  if (attempts > 1) log.info("database reachable after {attempt} attempts", { attempt: attempts });
}

/**
 * Bounds the statements of the transaction `tx` to `ms` (0: no bound). Log queries can walk a
 * whole retention window when a filter has no index (min_latency_ms alone: 23 s at 10M events);
 * this keeps one such request from holding a connection and a core for that long.
 */
export function statementTimeout(tx: Tx, ms: number) {
  return tx`select set_config('statement_timeout', ${String(ms)}, true)`;
}
