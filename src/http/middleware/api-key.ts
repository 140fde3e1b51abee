// X-API-Key for the control endpoints. Never open by default: with no key configured the
// protected endpoints answer 403. Keys are compared as SHA-256 digests in constant time, so
// neither the content nor the length of a configured key leaks through timing; keys are
// never logged, and the caller is recorded as "api-key#N" (its position in API_KEYS).
import type { MiddlewareHandler } from "hono";
import { ForbiddenError, UnauthorizedError } from "../../errors.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** Who called a protected endpoint, without the key: "api-key#1", "api-key#2", … */
    apiCaller: string;
  }
}

export const API_KEY_HEADER = "X-API-Key";

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

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

export function requireApiKey(keys: readonly string[]): MiddlewareHandler {
  let digests: Promise<Uint8Array[]> | undefined;
  return async function requireApiKey(c, next) {
    if (keys.length === 0) throw new ForbiddenError("control disabled: set API_KEYS");
    const given = c.req.header(API_KEY_HEADER);
    if (!given) throw new UnauthorizedError(`missing ${API_KEY_HEADER} header`);
    digests ??= Promise.all(keys.map(sha256));
    const n = await matchApiKey(given, await digests);
    if (n === 0) throw new UnauthorizedError(`invalid ${API_KEY_HEADER}`);
    c.set("apiCaller", `api-key#${n}`);
    await next();
  };
}
