// Shared OpenAPI pieces: the problem schema, the responses routes share, and the document as
// served (examples made current, every operation's security stated).
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import { PROBLEM_CONTENT_TYPE } from "./problem.ts";
import { DAY_MS, EXAMPLE_TIME_BASE, MINUTE_MS } from "../time.ts";

export const ProblemSchema = z.object({
  type: z.string().openapi({ example: "about:blank" }),
  title: z.string().openapi({ example: "Bad Request" }),
  status: z.number().int().min(400).max(599).openapi({ example: 400 }),
  detail: z.string().openapi({ example: "limit: must be a whole number from 1 to 1000" }),
  instance: z.string().openapi({ example: "/logs" }),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional()
    .openapi({ description: "Every offending field, when the input was at fault." }),
}).openapi("Problem");

const retryAfter = z.string().openapi({
  description: "Seconds to wait before retrying.",
  example: "5",
});

export const problemResponse = (
  description: string,
  headers?: Record<string, z.ZodType>,
) => ({
  content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
  description,
  ...(headers ? { headers: z.object(headers) } : {}),
});

/** 503 from a route that reads or writes the database. */
export const unavailableResponse = (description = "") =>
  problemResponse(
    (description ? `${description}; or ` : "") +
      "the database cannot be reached or a query ran past QUERY_TIMEOUT_MS. Retry-After is " +
      "set when retrying soon may succeed",
    { "Retry-After": retryAfter.optional() },
  );

/** 503 with Retry-After always set. */
export const retryLaterResponse = (description: string) =>
  problemResponse(description, { "Retry-After": retryAfter });

/** Every string inside examples that names a time near EXAMPLE_TIME_BASE. */
const PLACEHOLDER_TIME = /\b(?:1999|2000)-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z/g;
const PLACEHOLDER_SPAN_MS = 60 * DAY_MS;

/**
 * Moves the placeholder times of examples (written with exampleTime(), src/time.ts) to the
 * present, a minute back: an example timestamp then always lies inside the retention window
 * and a request built from the examples works whenever the document was fetched.
 */
export function freshenExamples<T>(doc: T, now: number): T {
  const shift = now - MINUTE_MS - EXAMPLE_TIME_BASE;
  const moveString = (s: string) =>
    s.replace(PLACEHOLDER_TIME, (t) => {
      const at = Date.parse(t);
      if (Math.abs(at - EXAMPLE_TIME_BASE) > PLACEHOLDER_SPAN_MS) return t;
      const moved = new Date(at + shift).toISOString();
      return t.length === 20 ? moved.replace(/\.\d{3}Z$/, "Z") : moved;
    });
  const move = (v: unknown): unknown => {
    if (typeof v === "string") return moveString(v);
    if (Array.isArray(v)) return v.map(move);
    if (v && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, move(x)]));
    }
    return v;
  };
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.entries(v).map((
          [k, x],
        ) => [k, k === "example" || k === "examples" ? move(x) : walk(x)]),
      );
    }
    return v;
  };
  return walk(doc) as T;
}

type Operation = { security?: unknown[]; [k: string]: unknown };
type Document = { paths?: Record<string, Record<string, Operation>>; [k: string]: unknown };

/** Operations that declare no security are open: `security: []` says so explicitly. */
export function markOpenOperations<T extends Document>(doc: T): T {
  for (const item of Object.values(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (!["get", "put", "post", "delete", "patch", "head", "options"].includes(method)) continue;
      op.security ??= [];
    }
  }
  return doc;
}

/** GET /openapi.json: the document, built at each request so that its examples are current. */
export function serveOpenApi(
  app: OpenAPIHono,
  info: { title: string; version: string; description: string },
): void {
  app.get("/openapi.json", (c) => {
    const doc = app.getOpenAPI31Document({
      openapi: "3.1.0",
      info,
      // Relative: the document is served by the API it describes, behind whatever proxy.
      servers: [{ url: "/", description: "This server" }],
      tags: TAGS,
    });
    c.header("cache-control", "no-cache");
    return c.json(freshenExamples(markOpenOperations(doc as unknown as Document), Date.now()));
  });
}

const TAGS = [
  { name: "logs", description: "Ingest events and query them." },
  { name: "services", description: "The services that send events, and their owners." },
  { name: "control", description: "Background jobs: switches, status and manual runs." },
  {
    name: "alerts",
    description: "Alert rules and SLOs on the rollups, their channels and silences, and what " +
      "is firing.",
  },
  { name: "health", description: "Liveness and readiness probes." },
  { name: "monitoring", description: "Prometheus metrics." },
];

/**
 * The credential an operation needs. `Authorization: Bearer <key>` works as well; it is said in
 * the scheme's description rather than declared as a second scheme, because tools read two
 * schemes as both required (Schemathesis reports a request with one of them as invalid).
 */
export const keySecurity: Record<string, string[]>[] = [{ ApiKey: [] }];

/**
 * The RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-ratelimit-headers-10), sent on
 * every response to a key that has rate_limit_per_s.
 */
export const rateLimitHeaders = {
  "RateLimit-Policy": z.string().openapi({
    description: "The key's limit as a quota: `q` units every `w` seconds (its burst, two " +
      'seconds of its rate). The policy is named for its unit: `"events"` for writer keys ' +
      '(one per event sent to POST /logs), `"requests"` for the others.',
    example: '"events";q=10;w=2',
  }),
  RateLimit: z.string().openapi({
    description: "What is left now: `r` units, and `t` seconds until the limit is whole again " +
      "(on a 429: until Retry-After).",
    example: '"events";r=0;t=1',
  }),
};

/** 429: a key over its rate_limit_per_s on this instance; nothing was done. */
export const rateLimitedResponse = problemResponse(
  "The key is over its rate_limit_per_s on this instance (limits are per instance): nothing " +
    "was done or stored; retry after Retry-After. Every response to a key with a limit " +
    "carries RateLimit-Policy and RateLimit.",
  { "Retry-After": retryAfter, ...rateLimitHeaders },
);

/** What an operation behind requireRole may answer besides its own responses. */
export const authResponses = {
  401: problemResponse("Missing, wrong, expired or revoked key", {
    "WWW-Authenticate": z.string().openapi({ example: "ApiKey" }),
  }),
  403: problemResponse(
    "The key lacks the right, or no key exists at all: control disabled (set API_KEYS)",
  ),
  429: rateLimitedResponse,
  503: unavailableResponse(),
};

/** Declares how a key is sent: X-API-Key, or Authorization: Bearer. */
export function registerKeySchemes(app: OpenAPIHono): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "ApiKey", {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
    description: "An API key (from API_KEYS, or created with POST /keys). The same key may be " +
      "sent as Authorization: Bearer <key> instead, which OpenTelemetry exporters and curl do. " +
      "A person signed in through /auth/login is known by the observian_session cookie instead " +
      "(not declared as a second scheme: tools read two schemes as both required).",
  });
}
