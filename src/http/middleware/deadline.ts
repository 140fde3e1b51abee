// Every request the database serves is answered in bounded time, and a handle whose
// connection was lost under a request is replaced before it serves another.
import type { MiddlewareHandler } from "hono";
import type { Config } from "../../config.ts";
import type { Db } from "../../db/connect.ts";
import { isConnectionLost } from "../../db/sqlstate.ts";
import { UnavailableError } from "../../errors.ts";
import { logger } from "../../logging.ts";

/** Beyond QUERY_TIMEOUT_MS: PostgreSQL has cancelled the statement by then. */
const GRACE_MS = 5000;

/**
 * Past QUERY_TIMEOUT_MS + 5 s a request answers 503 + Retry-After: its statements were cancelled
 * by then, so what still waits is a connection postgres.js lost track of, or a network that
 * swallows packets, and the pool is replaced. POST /logs has bounds of its own (body read,
 * commit deadline) and the control endpoints that run jobs may take longer; QUERY_TIMEOUT_MS=0
 * turns the bound off with the statement timeout.
 */
export const requestDeadline = (ctx: { sql: Db; config: Config }): MiddlewareHandler => {
  const ms = ctx.config.queryTimeoutMs > 0 ? ctx.config.queryTimeoutMs + GRACE_MS : 0;
  const log = logger("http");
  return async function requestDeadline(c, next) {
    const generation = ctx.sql.generation;
    const exempt = c.req.method === "POST" &&
      (c.req.path === "/logs" || c.req.path.startsWith("/control/"));
    if (ms === 0 || exempt) await next();
    else {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), ms));
      const outcome = await Promise.race([next(), late]);
      clearTimeout(timer);
      if (outcome === "late") {
        log.error("{method} {path} was not answered within {ms} ms", {
          method: c.req.method,
          path: c.req.path,
          ms,
        });
        ctx.sql.replace(`a request waited on it for over ${ms} ms`, generation);
        throw new UnavailableError(
          `The request was not answered within ${ms} ms (QUERY_TIMEOUT_MS + ${GRACE_MS} ms); ` +
            "retry shortly.",
        );
      }
    }
    // Its stale state could fail (or hang) the next request on the same handle.
    if (c.error && isConnectionLost(c.error)) {
      ctx.sql.replace(
        `a request lost its connection (${(c.error as { code?: string }).code})`,
        generation,
      );
    }
  };
};
