// Who is calling, from `Authorization: Bearer <token>` or `X-API-Key: <token>`: one of API_KEYS
// (admin keys from the environment, never stored, compared as SHA-256 digests in constant time)
// or a key stored in PostgreSQL (src/access/keys.ts), looked up by its digest on every request
// so that a deleted or expired key is refused at once on every instance. Tokens are never
// logged; a caller is recorded as "api-key#N" (its position in API_KEYS) or "key#<id>".
import type { MiddlewareHandler } from "hono";
import type { Sql } from "../../db/connect.ts";
import { ForbiddenError, UnauthorizedError } from "../../errors.ts";
import { anyKeyStored, findKey, type Principal, type Role, sha256 } from "../../access/keys.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** Who called a protected endpoint, without the key: "api-key#1", "key#12", … */
    apiCaller: string;
    principal: Principal;
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

/** The 1-based position of the matching key, or 0. Every key is compared, match or not. */
export async function matchApiKey(
  given: string,
  keyDigests: readonly Uint8Array[],
): Promise<number> {
  const d = await sha256(given);
  let found = 0;
  for (let i = 0; i < keyDigests.length; i++) {
    const eq = digestsEqual(d, keyDigests[i]) ? 1 : 0;
    found = found || eq * (i + 1);
  }
  return found;
}

/** The token a request carries: a Bearer credential or the X-API-Key header. */
export function requestToken(authorization?: string, apiKey?: string): string | undefined {
  const bearer = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  return bearer?.[1] ?? (apiKey || undefined);
}

/**
 * Lets a request through only with a principal holding `role`'s rights (admin holds every
 * right). Never open by default: with no key in API_KEYS and none stored, the endpoints answer
 * 403.
 */
export function requireRole(sql: Sql, envKeys: readonly string[], role: Role): MiddlewareHandler {
  let digests: Promise<Uint8Array[]> | undefined;
  return async function requireRole(c, next) {
    // Refused: 403 while no key exists anywhere (nothing could pass), else 401.
    const refuse = async (why: string): Promise<never> => {
      if (envKeys.length === 0 && !(await anyKeyStored(sql))) {
        throw new ForbiddenError("control disabled: set API_KEYS");
      }
      throw new UnauthorizedError(why);
    };
    const token = requestToken(c.req.header("authorization"), c.req.header(API_KEY_HEADER));
    if (!token) {
      return await refuse(`missing credential: Authorization: Bearer or ${API_KEY_HEADER}`);
    }
    digests ??= Promise.all(envKeys.map(sha256));
    const n = await matchApiKey(token, await digests);
    const principal: Principal | null = n > 0
      ? { source: "env", id: n, name: `API_KEYS #${n}`, role: "admin", teams: [], services: [] }
      : await findKey(sql, token);
    if (!principal) {
      return await refuse("invalid key in Authorization or X-API-Key (wrong, expired or revoked)");
    }
    if (principal.role !== "admin" && principal.role !== role) {
      throw new ForbiddenError(`this key (${principal.role}) lacks the ${role} right`);
    }
    c.set("principal", principal);
    c.set(
      "apiCaller",
      principal.source === "env" ? `api-key#${principal.id}` : `key#${principal.id}`,
    );
    await next();
  };
}
