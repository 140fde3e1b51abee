// People who sign in (sql/016_users_sessions.sql): created at their first sign-in without a
// role (unless ADMIN_USERS names them), or in advance by an admin; an admin gives them a role
// and teams. Logins compare case-insensitively. Knows nothing of HTTP.
import type { Sql, Tx } from "../db/connect.ts";
import { ForbiddenError } from "../errors.ts";
import type { Role } from "./principal.ts";

export type Provider = "github" | "oidc";

export interface User {
  id: number;
  login: string;
  email: string | null;
  provider: Provider | null;
  role: Role | null;
  teams: string[];
  created_at: Date;
  last_seen_at: Date | null;
}

/** Who the provider says signed in. */
export interface Identity {
  login: string;
  /** A verified email, when the provider gave one. */
  email: string | null;
  provider: Provider;
}

const COLUMNS = `id::int, login, email, provider, role, teams, created_at, last_seen_at`;

/** Whether ADMIN_USERS (lowercased) names this person by login or email. */
export function isListedAdmin(adminUsers: readonly string[], who: Identity): boolean {
  return adminUsers.includes(who.login.toLowerCase()) ||
    (who.email !== null && adminUsers.includes(who.email.toLowerCase()));
}

/**
 * The user row for a sign-in: created on the first (role: admin when listed, else none),
 * updated after (email, provider, last_seen_at; admin again when listed). A login first claimed
 * through one provider cannot be signed into through the other.
 */
export async function userForSignIn(
  tx: Tx,
  who: Identity,
  listedAdmin: boolean,
): Promise<{ user: User; created: boolean }> {
  const [existing] = await tx<User[]>`
    select ${tx.unsafe(COLUMNS)} from users where lower(login) = lower(${who.login}) for update`;
  if (existing?.provider && existing.provider !== who.provider) {
    throw new ForbiddenError(
      `the login ${existing.login} belongs to a ${existing.provider} account; sign in with it`,
    );
  }
  if (!existing) {
    const [user] = await tx<User[]>`
      insert into users (login, email, provider, role, last_seen_at)
      values (${who.login}, ${who.email}, ${who.provider}, ${listedAdmin ? "admin" : null}, now())
      on conflict (lower(login)) do nothing
      returning ${tx.unsafe(COLUMNS)}`;
    // Two first sign-ins at once: the other made the row; take it as an existing one.
    if (!user) return await userForSignIn(tx, who, listedAdmin);
    return { user, created: true };
  }
  const [user] = await tx<User[]>`
    update users set email = coalesce(${who.email}, email), provider = ${who.provider},
                     role = ${listedAdmin ? "admin" : existing.role}, last_seen_at = now()
    where id = ${existing.id}
    returning ${tx.unsafe(COLUMNS)}`;
  return { user, created: false };
}

/**
 * Sets a person's role and, when given, teams; creates the row when the person has not signed
 * in yet, so that they hold the role from their first sign-in. Returns the row before and after.
 */
export async function setUserRole(
  tx: Tx,
  login: string,
  role: Role | null,
  teams: string[] | undefined,
): Promise<{ before: User | null; after: User }> {
  const [before] = await tx<User[]>`
    select ${tx.unsafe(COLUMNS)} from users where lower(login) = lower(${login}) for update`;
  const teamsJson = teams === undefined ? null : JSON.stringify(teams);
  if (!before) {
    const [after] = await tx<User[]>`
      insert into users (login, role, teams)
      values (${login}, ${role},
              array(select jsonb_array_elements_text(coalesce(${teamsJson}, '[]')::text::jsonb)))
      on conflict (lower(login)) do nothing
      returning ${tx.unsafe(COLUMNS)}`;
    if (!after) return await setUserRole(tx, login, role, teams);
    return { before: null, after };
  }
  const [after] = await tx<User[]>`
    update users set
      role = ${role},
      teams = case when ${teamsJson}::text is null then teams
                   else array(select jsonb_array_elements_text(${teamsJson}::text::jsonb)) end
    where id = ${before.id}
    returning ${tx.unsafe(COLUMNS)}`;
  return { before, after };
}

export function listUsers(sql: Sql): Promise<User[]> {
  return sql<User[]>`select ${sql.unsafe(COLUMNS)} from users order by lower(login)`;
}
