// Signed-in people's sessions (sql/016_users_sessions.sql): a random id in a cookie, stored as
// its SHA-256 only; each request looks the session and its user's role up, so signing out, an
// expiry or a change of role applies at once on every instance. Also the pending logins (state,
// PKCE verifier, nonce) that let any instance finish a sign-in another began. Knows nothing of
// HTTP.
import type { Sql, Tx } from "../db/connect.ts";
import { randomSecret, sha256Hex as hex, throttled } from "./secrets.ts";
import type { Principal, Role } from "./principal.ts";

/** The session cookie's name. */
export const SESSION_COOKIE = "observian_session";

/** How long a started sign-in may take at the provider before its state is forgotten. */
export const PENDING_LOGIN_MINUTES = 10;

/** Opens a session for a user; returns its id, which is stored only as a digest. */
export async function createSession(sql: Sql | Tx, userId: number, ttlHours: number) {
  const id = randomSecret();
  const [row] = await sql<{ expires_at: Date }[]>`
    insert into sessions (id_sha256, user_id, expires_at)
    values (decode(${await hex(id)}, 'hex'), ${userId},
            now() + make_interval(hours => ${ttlHours}))
    returning expires_at`;
  return { id, expiresAt: row.expires_at };
}

/** last_seen_at is written at most this often per user and instance. */
const LAST_SEEN_EVERY_MS = 60_000;
const touchLastSeen = throttled(LAST_SEEN_EVERY_MS);

/** The person a live session belongs to, or null (unknown, expired or signed out). */
export async function findSession(sql: Sql, id: string): Promise<Principal | null> {
  if (id.length > 200) return null;
  const [row] = await sql<{ id: number; login: string; role: Role | null; teams: string[] }[]>`
    select u.id::int, u.login, u.role, u.teams
    from sessions s join users u on u.id = s.user_id
    where s.id_sha256 = decode(${await hex(id)}, 'hex') and s.expires_at > now()`;
  if (!row) return null;
  touchLastSeen(row.id, () => sql`update users set last_seen_at = now() where id = ${row.id}`);
  return {
    source: "session",
    id: row.id,
    name: row.login,
    role: row.role,
    teams: row.teams,
    services: [],
  };
}

/** Ends a session; the login it belonged to, or null when there was none. */
export async function deleteSession(sql: Sql | Tx, id: string): Promise<string | null> {
  const [row] = await sql<{ login: string }[]>`
    with gone as (
      delete from sessions where id_sha256 = decode(${await hex(id)}, 'hex') returning user_id
    )
    select u.login from gone join users u on u.id = gone.user_id`;
  return row?.login ?? null;
}

/** A sign-in begun at /auth/login, waiting for the provider to send the person back. */
export interface PendingLogin {
  state: string;
  provider: "github" | "oidc";
  codeVerifier: string;
  nonce: string | null;
  redirectUri: string;
  returnTo: string;
}

export async function savePendingLogin(sql: Sql, p: PendingLogin): Promise<void> {
  await sql`
    insert into pending_logins (state, provider, code_verifier, nonce, redirect_uri, return_to,
                                expires_at)
    values (${p.state}, ${p.provider}, ${p.codeVerifier}, ${p.nonce}, ${p.redirectUri},
            ${p.returnTo}, now() + make_interval(mins => ${PENDING_LOGIN_MINUTES}))`;
}

/** The pending login with this state, removed so that it serves once; null if none or expired. */
export async function takePendingLogin(sql: Sql, state: string): Promise<PendingLogin | null> {
  const [row] = await sql<(PendingLogin & { live: boolean })[]>`
    delete from pending_logins where state = ${state}
    returning state, provider, code_verifier as "codeVerifier", nonce,
              redirect_uri as "redirectUri", return_to as "returnTo",
              expires_at > now() as live`;
  if (!row?.live) return null;
  const { live: _, ...pending } = row;
  return pending;
}

/** Deletes expired sessions and pending logins (done at each sign-in, cheaply by index). */
export async function pruneExpiredSessions(sql: Sql | Tx): Promise<void> {
  await sql`delete from sessions where expires_at <= now()`;
  await sql`delete from pending_logins where expires_at <= now()`;
}
