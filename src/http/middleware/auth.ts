// Who is calling and whether they may: every operation declares the right it needs (guard());
// requireRight checks it. A principal comes from `Authorization: Bearer <token>` or
// `X-API-Key: <token>` (one of API_KEYS, admin keys compared as SHA-256 digests in constant time
// and never stored, or a key stored in PostgreSQL and looked up at each request, so a revoked
// key is refused at once everywhere), or from a sign-in session cookie. Tokens are never logged.
//
// While no key exists anywhere and sign-in is not configured, access control is off: data
// endpoints are open (main logs a warning) and admin endpoints answer 403.
import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import type { Config } from "../../config.ts";
import type { Db } from "../../db/connect.ts";
import { ForbiddenError, UnauthorizedError, UnavailableError } from "../../errors.ts";
import { bounded } from "../../time.ts";
import { anyKeyStored, type ApiKey, findKey } from "../../access/keys.ts";
import { KeyCache } from "../../access/key-cache.ts";
import { sha256 } from "../../access/secrets.ts";
import { RefusalLog } from "../../access/audit.ts";
import { hasRight, type Principal, principalLabel, type Right } from "../../access/principal.ts";
import { findSession, SESSION_COOKIE } from "../../access/sessions.ts";
import { RateLimits } from "../../access/rate-limit.ts";
import { withRateLimit } from "./rate-limit.ts";
import { keySecurity } from "../openapi.ts";
import { auditOrigin } from "../audit-origin.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** Who called; unset on public operations and while access control is off. */
    principal?: Principal;
  }
}

export const API_KEY_HEADER = "X-API-Key";

/** Equal-length digests compared without an early exit. */
export function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** The 1-based position of the key whose digest matches, or 0. Every key is compared. */
export function matchApiKey(digest: Uint8Array, keyDigests: readonly Uint8Array[]): number {
  let found = 0;
  for (let i = 0; i < keyDigests.length; i++) {
    const eq = digestsEqual(digest, keyDigests[i]) ? 1 : 0;
    found = found || eq * (i + 1);
  }
  return found;
}

/** The token a request carries: a Bearer credential or the X-API-Key header. */
export function requestToken(authorization?: string, apiKey?: string): string | undefined {
  const bearer = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  return bearer?.[1] ?? (apiKey || undefined);
}

/** Whether access control is on is re-read at most this often per instance. */
const ENFORCED_TTL_MS = 1000;
/** Longest a request waits for a fresh "any key exists" before going on with the last answer. */
const STALE_WAIT_MS = 500;
/** Longest a request waits for its key or session to be looked up before a 503. */
const LOOKUP_TIMEOUT_MS = 3000;

/** `p`, or a 503 (Retry-After) once `ms` have passed: a credential is never waited on unbounded. */
const lookup = <T>(p: Promise<T>, ms: number) =>
  bounded(
    p,
    ms,
    () =>
      new UnavailableError(
        `the credential could not be checked within ${ms} ms (database unavailable)`,
        2,
      ),
  );

/** The instance's view of access control: its API_KEYS and whether any credential exists. */
export class Access {
  #digests: Promise<Uint8Array[]>;
  #enforced?: { value: boolean; at: number };
  #refreshing?: Promise<boolean>;
  readonly #keys: KeyCache<ApiKey>;

  readonly envKeyCount: number;
  readonly metricsRequireKey: boolean;
  /** Where refusals on admin routes are recorded (the audit log), bounded per instance. */
  readonly refusals: RefusalLog;

  constructor(
    private readonly sql: Db,
    config: Pick<Config, "apiKeys" | "metricsRequireKey">,
    /** Sign-in (OAuth/OIDC) is configured: access control is on without any key. */
    readonly signInConfigured = false,
    /** This instance's per-key buckets. */
    readonly rateLimits: RateLimits = new RateLimits(),
  ) {
    this.envKeyCount = config.apiKeys.length;
    this.metricsRequireKey = config.metricsRequireKey;
    this.#digests = Promise.all(config.apiKeys.map(sha256));
    this.#keys = new KeyCache(sql);
    this.refusals = new RefusalLog(sql);
  }

  /**
   * On once a key exists (environment or database) or sign-in is configured. The answer is read
   * again once it is a second old. While the database cannot give it (down, or slower than
   * STALE_WAIT_MS), the last answer stands, so requests neither wait long nor fail for it; only
   * an instance that never had an answer waits for one (LOOKUP_TIMEOUT_MS).
   */
  async enforced(): Promise<boolean> {
    if (this.envKeyCount > 0 || this.signInConfigured) return true;
    const known = this.#enforced;
    if (known && Date.now() - known.at < ENFORCED_TTL_MS) return known.value;
    const refresh = this.#refreshing ??= lookup(anyKeyStored(this.sql), LOOKUP_TIMEOUT_MS)
      .then((value) => {
        this.#enforced = { value, at: Date.now() };
        return value;
      })
      .finally(() => this.#refreshing = undefined);
    if (!known) return await refresh;
    refresh.catch(() => {}); // the last answer stands; a later request tries again
    return await bounded(refresh, STALE_WAIT_MS).catch(() => known.value);
  }

  /** After this instance created or deleted a key: re-read at the next request. */
  forget(): void {
    this.#enforced = undefined;
    this.#keys.forgetAll();
  }

  /**
   * The principal a request's credential names; undefined without one; null when the one
   * given is wrong, expired, revoked or signed out.
   */
  async identify(c: Context): Promise<Principal | null | undefined> {
    const token = requestToken(c.req.header("authorization"), c.req.header(API_KEY_HEADER));
    if (token) {
      // Hashed once: compared with API_KEYS' digests, then looked up among the stored keys.
      const digest = await sha256(token);
      const n = matchApiKey(digest, await this.#digests);
      if (n > 0) {
        return {
          source: "env",
          id: n,
          name: `API_KEYS #${n}`,
          role: "admin",
          teams: [],
          services: [],
        };
      }
      return await lookup(findKey(this.sql, token, digest, this.#keys), LOOKUP_TIMEOUT_MS);
    }
    const session = getCookie(c, SESSION_COOKIE);
    if (session) {
      const p = await lookup(findSession(this.sql, session), LOOKUP_TIMEOUT_MS);
      if (p) checkOrigin(c);
      return p;
    }
    return undefined;
  }
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * CSRF: a state-changing request carrying a session cookie must come from a page of this
 * origin (Origin, else Referer, names this host). A key in a header cannot be sent by another
 * site, so requests with a key are not checked.
 */
export function checkOrigin(c: Context): void {
  if (SAFE_METHODS.has(c.req.method)) return;
  const from = c.req.header("origin") ?? c.req.header("referer");
  const host = c.req.header("x-forwarded-host") ?? c.req.header("host") ?? new URL(c.req.url).host;
  let fromHost: string | undefined;
  try {
    fromHost = from ? new URL(from).host : undefined;
  } catch { /* unreadable: refused below */ }
  if (fromHost !== host) {
    throw new ForbiddenError("cross-site request refused: Origin does not match this host");
  }
}

/**
 * For a long-lived answer (the live feed), checked again as it goes on: whether the request's
 * credential still holds `right`, so a revoked key, an ended session or a role taken away ends
 * it. A lookup that fails (the database down) counts as still holding: an outage must not cut
 * every stream.
 */
export async function stillHolds(access: Access, c: Context, right: Right): Promise<boolean> {
  try {
    const p = await access.identify(c);
    return !!p && hasRight(p, right);
  } catch {
    return true;
  }
}

/** Lets a request through only when its principal holds `right` (see Right). */
export function requireRight(access: Access, right: Right): MiddlewareHandler {
  return async function requireRight(c, next) {
    if (right === "public") return await next();
    // Open to anyone, whatever credential a scraper happens to send.
    if (right === "metrics" && !access.metricsRequireKey) return await next();
    const p = await access.identify(c).catch(async (err) => {
      throw await refusal(c, access, right, undefined, err);
    });
    const denied = (err: Error) => refusal(c, access, right, p, err);
    if (!p) {
      const on = await access.enforced();
      if (!on) {
        if (right !== "admin") return await next();
        throw await denied(new ForbiddenError("control disabled: set API_KEYS"));
      }
      throw await denied(
        new UnauthorizedError(
          p === null
            ? `invalid credential in Authorization or ${API_KEY_HEADER}: the key is wrong, ` +
              "expired or revoked, or the session ended"
            : `missing credential: Authorization: Bearer or ${API_KEY_HEADER}`,
        ),
      );
    }
    if (!hasRight(p, right)) {
      throw await denied(
        new ForbiddenError(
          p.role === null
            ? `${p.name} has no role yet: an admin must assign one (PUT /users/${p.name})`
            : `this ${
              p.source === "session" ? "user" : "key"
            } (${p.role}) lacks the ${right} right`,
        ),
      );
    }
    c.set("principal", p);
    await withRateLimit(c, access.rateLimits, p, next);
  };
}

/**
 * The error to answer with; a 401 or 403 on an admin route is first recorded in the audit log
 * (auth.denied), within the bounds of access.refusals.
 */
async function refusal(
  c: Context,
  access: Access,
  right: Right,
  p: Principal | null | undefined,
  err: unknown,
): Promise<unknown> {
  if (
    right === "admin" && (err instanceof UnauthorizedError || err instanceof ForbiddenError)
  ) {
    await access.refusals.record(auditOrigin(c, p ? principalLabel(p) : "anonymous"), {
      action: "auth.denied",
      target: `${c.req.method} ${c.req.path}`,
      detail: { status: err instanceof UnauthorizedError ? 401 : 403, reason: err.message },
    });
  }
  return err;
}

/** The label of who called, for logs and the audit log; "anonymous" while access is off. */
export function callerOf(c: Context): string {
  const p = c.get("principal");
  return p ? principalLabel(p) : "anonymous";
}

/**
 * What an operation declares about access, spread into its createRoute: its right
 * (`x-observian-right` in the OpenAPI document, which the role × endpoint test reads) and its
 * security requirement. guarded() turns the declaration into the check, so the two cannot differ.
 */
export function needs<R extends Right>(right: R) {
  // GET /metrics overrides it while the scrape is open (METRICS_REQUIRE_KEY unset).
  return { "x-observian-right": right, security: right === "public" ? [] : keySecurity };
}

type Declared = {
  "x-observian-right": Right;
  middleware?: MiddlewareHandler | MiddlewareHandler[];
};

/** The route with requireRight for its declared right in front of its own middleware. */
export function guarded<R extends Declared>(route: R, access: Access): R {
  const own = route.middleware === undefined
    ? []
    : Array.isArray(route.middleware)
    ? route.middleware
    : [route.middleware];
  return { ...route, middleware: [requireRight(access, route["x-observian-right"]), ...own] };
}
