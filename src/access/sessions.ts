// Signed-in people's sessions (sign-in issue 13): filled in by the sign-in work. Knows nothing
// of HTTP.
import type { Sql } from "../db/connect.ts";
import type { Principal } from "./principal.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "observian_session";

/** The person a live session belongs to, or null (unknown, expired or signed out). */
export function findSession(_sql: Sql, _id: string): Promise<Principal | null> {
  return Promise.resolve(null);
}
