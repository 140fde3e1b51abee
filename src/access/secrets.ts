// Random secrets (key tokens, session ids) and their digests, which are all that is stored.
// Knows nothing of HTTP.
import { createHash } from "node:crypto";

/** `bytes` random bytes, base64url without padding. */
export function randomSecret(bytes = 32): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return btoa(String.fromCharCode(...raw)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/**
 * Synchronous on purpose: every request with a key hashes it, and crypto.subtle's digest is a
 * trip through a thread pool that costs more than the hashing of a few dozen bytes.
 */
export function sha256(text: string): Promise<Uint8Array> {
  return Promise.resolve(new Uint8Array(createHash("sha256").update(text).digest()));
}

/** SHA-256 as hex: what is stored (decoded to bytea in SQL). Random secrets need no salt. */
export async function sha256Hex(text: string): Promise<string> {
  return toHex(await sha256(text));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Runs `write` for `id` at most once per `everyMs` in this instance: for "last used" columns,
 * which need not cost a write per request.
 */
export function throttled(everyMs: number): (id: number, write: () => Promise<unknown>) => void {
  const lastAt = new Map<number, number>();
  return (id, write) => {
    const now = Date.now();
    if (now - (lastAt.get(id) ?? 0) < everyMs) return;
    lastAt.set(id, now);
    // Off the request's path; a lost update only makes the column a little older.
    write().catch(() => {});
  };
}
