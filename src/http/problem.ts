// RFC 9457 problem details: the one error shape of the API.
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import {
  ConflictError,
  type FieldError,
  ForbiddenError,
  type InputErrorKind,
  InvalidInputError,
  NotFoundError,
  TooManyRequestsError,
  UnauthorizedError,
  UnavailableError,
} from "../errors.ts";
import { logger } from "../logging.ts";
import { UnsupportedEncodingError } from "./body.ts";
import { isDbUnavailable, isQueryCancelled } from "../db/sqlstate.ts";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: FieldError[];
  [extra: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  408: "Request Timeout",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** The one place a kind of bad input becomes a status. */
const INPUT_STATUS: Record<InputErrorKind, ContentfulStatusCode> = {
  malformed: 400,
  timeout: 408,
  too_large: 413,
  unsupported: 415,
  invalid: 422,
};

/** Like Loki's discarded-samples reasons: why a body was refused (events_rejected_total). */
const REJECTION_REASON: Record<InputErrorKind, string> = {
  malformed: "malformed",
  timeout: "timeout",
  too_large: "too_large",
  unsupported: "unsupported_media_type",
  invalid: "invalid",
};

export function rejectionReason(err: InvalidInputError): string {
  return REJECTION_REASON[err.kind];
}

export function problem(
  c: Context,
  status: ContentfulStatusCode,
  detail: string,
  extra: { errors?: FieldError[]; headers?: Record<string, string>; [k: string]: unknown } = {},
): Response {
  const { headers, ...rest } = extra;
  const body: Problem = {
    type: "about:blank",
    title: TITLES[status] ?? "Error",
    status,
    detail,
    instance: c.req.path,
    ...rest,
  };
  if (!body.errors) delete body.errors;
  // Through the context, so that headers set on it before the error (X-Request-Id) are kept.
  return c.body(JSON.stringify(body), status, { "content-type": PROBLEM_CONTENT_TYPE, ...headers });
}

export const onError: ErrorHandler = (err, c) => {
  if (err instanceof InvalidInputError) {
    const headers = err instanceof UnsupportedEncodingError
      ? { "accept-encoding": err.acceptEncoding }
      : undefined;
    return problem(c, INPUT_STATUS[err.kind], err.message, { errors: err.errors, headers });
  }
  if (err instanceof NotFoundError) return problem(c, 404, err.message);
  if (err instanceof ConflictError) return problem(c, 409, err.message);
  if (err instanceof UnauthorizedError) {
    return problem(c, 401, err.message, { headers: { "www-authenticate": "ApiKey" } });
  }
  if (err instanceof ForbiddenError) return problem(c, 403, err.message, { errors: err.errors });
  if (err instanceof TooManyRequestsError) {
    return problem(c, 429, err.message, { headers: { "retry-after": String(err.retryAfterS) } });
  }
  if (err instanceof UnavailableError) {
    return problem(c, 503, err.message, { headers: { "retry-after": String(err.retryAfterS) } });
  }
  if (isQueryCancelled(err)) {
    // Retrying the same question would take as long again: no Retry-After.
    return problem(
      c,
      503,
      "The query ran longer than this server allows (QUERY_TIMEOUT_MS) and was stopped; " +
        "narrow it with start_time/end_time or service_name.",
    );
  }
  if (isDbUnavailable(err)) {
    logger("http").warning("database unavailable in {method} {path}: {error}", {
      method: c.req.method,
      path: c.req.path,
      error: String((err as Error).message ?? err),
    });
    return problem(c, 503, "The database is unavailable; retry shortly.", {
      headers: { "retry-after": "5" },
    });
  }
  if (err instanceof HTTPException) {
    // Hono raises these for bodies it cannot read (malformed JSON, size limits).
    const status = err.status as ContentfulStatusCode;
    if (status < 500) return problem(c, status, err.message || TITLES[status] || "Bad request");
  }
  logger("http").error("unhandled error in {method} {path} [{requestId}]: {error}", {
    method: c.req.method,
    path: c.req.path,
    requestId: c.get("requestId"),
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
  });
  return problem(c, 500, "An unexpected error occurred; it has been logged.", {
    request_id: c.get("requestId"),
  });
};

/** 404 for unknown paths; 405 with Allow when the path exists under other methods. */
export function notFound(
  routes: () => readonly { method: string; path: string }[],
): NotFoundHandler {
  return function notFound(c) {
    const allowed = allowedMethods(routes(), c.req.path);
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      return problem(c, 405, `${c.req.method} is not allowed on ${c.req.path}`, {
        headers: { allow: allowed.join(", ") },
      });
    }
    return problem(c, 404, `No resource at ${c.req.path}`);
  };
}

function allowedMethods(routes: readonly { method: string; path: string }[], path: string) {
  const methods = new Set<string>();
  for (const r of routes) {
    if (r.method === "ALL" || r.path.includes("*")) continue;
    if (pathPattern(r.path).test(path)) methods.add(r.method);
  }
  if (methods.has("GET")) methods.add("HEAD");
  return [...methods].sort();
}

const patterns = new Map<string, RegExp>();
function pathPattern(path: string): RegExp {
  let re = patterns.get(path);
  if (!re) {
    const body = path.split("/").map((seg) =>
      seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
    ).join("/");
    re = new RegExp(`^${body}/?$`);
    patterns.set(path, re);
  }
  return re;
}
