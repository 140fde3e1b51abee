// Who is calling and what they may do: roles are fixed sets of rights, and a principal may be
// limited to teams (services.team_owner) and to named services. Knows nothing of HTTP.
import type { Sql } from "../db/connect.ts";
import { ForbiddenError } from "../errors.ts";

export type Role = "admin" | "writer" | "reader";
export const ROLES: readonly Role[] = ["admin", "writer", "reader"];

/**
 * What an operation needs. `public`: nothing (health, docs, sign-in). `read`: queries, summary,
 * live feed, services, job status. `ingest`: writing events. `service_owner`: changing a
 * service (admin, or a writer scoped to the team that owns it). `metrics`: the scrape, open
 * unless METRICS_REQUIRE_KEY. `admin`: keys, users, control, the audit log.
 */
export type Right = "public" | "read" | "ingest" | "service_owner" | "metrics" | "admin";
export const RIGHTS: readonly Right[] = [
  "public",
  "read",
  "ingest",
  "service_owner",
  "metrics",
  "admin",
];

export const ROLE_RIGHTS: Readonly<Record<Role, readonly Right[]>> = {
  admin: RIGHTS,
  writer: ["public", "ingest", "service_owner"],
  reader: ["public", "read", "metrics"],
};

/** A stored key, one of API_KEYS (admin, by position), or a signed-in person. */
export interface Principal {
  source: "key" | "env" | "session";
  /** The key's id, the API_KEYS position, or the user's id. */
  id: number;
  /** The key's name or the person's login. */
  name: string;
  /** Null: a person nobody has given a role yet; holds no right. */
  role: Role | null;
  teams: string[];
  services: string[];
  /** A stored key's visible prefix (never the token): how metrics name it. */
  prefix?: string;
  /** Requests (readers) or events (writers) per second, per instance; null: unlimited. */
  rateLimitPerS?: number | null;
}

export function hasRight(p: Principal, right: Right): boolean {
  if (right === "public") return true;
  return p.role !== null && ROLE_RIGHTS[p.role].includes(right);
}

/** How the principal is named in logs and the audit log: never its token. */
export function principalLabel(p: Principal): string {
  return p.source === "env"
    ? `api-key#${p.id}`
    : p.source === "key"
    ? `key#${p.id}`
    : `user:${p.name}`;
}

/** Limited to teams or services: its reads and writes are confined to those services. */
export function isScoped(p: Principal | undefined): p is Principal {
  return !!p && p.role !== "admin" && (p.teams.length > 0 || p.services.length > 0);
}

/**
 * The services a scoped principal may see now: its named services and every service its teams
 * own. Read at each request, so a change of owner applies at once.
 */
export async function scopeServices(sql: Sql, p: Principal): Promise<string[]> {
  const rows = await sql<{ name: string }[]>`
    select name from services
    where team_owner in (select jsonb_array_elements_text(${JSON.stringify(p.teams)}::text::jsonb))
       or name in (select jsonb_array_elements_text(${JSON.stringify(p.services)}::text::jsonb))
    order by name`;
  const names = new Set(rows.map((r) => r.name));
  // A named service that has no row yet is still this principal's, for when it appears.
  for (const s of p.services) names.add(s);
  return [...names].sort();
}

/**
 * The services a read may cover: the ones asked for, each of which must lie in the scope
 * (403 naming those outside it), or else the whole scope. Undefined: no scope, no filter.
 */
export async function narrowToScope(
  sql: Sql,
  p: Principal | undefined,
  requested: string[] | undefined,
): Promise<string[] | undefined> {
  if (!isScoped(p)) return requested;
  const allowed = await scopeServices(sql, p);
  if (!requested) return allowed;
  const outside = requested.filter((s) => !allowed.includes(s));
  if (outside.length > 0) {
    throw new ForbiddenError(
      `outside this ${p.source === "session" ? "user" : "key"}'s scope: ` +
        outside.map((s) => `"${s}"`).join(", "),
    );
  }
  return requested;
}

/**
 * Whether `p` may create `name` or set its owner to `newOwner`: an admin may; a writer scoped
 * to teams may for a service one of its teams owns (or a new one), and only to one of its
 * teams, so it can neither take another team's service nor give its own away.
 */
export function mayChangeService(
  p: Principal | undefined,
  currentOwner: string | null | undefined,
  newOwner: string | null,
): string | null {
  if (!p || p.role === "admin") return null;
  if (p.teams.length === 0) {
    return "changing a service needs admin, or a writer key scoped to its team";
  }
  if (currentOwner !== undefined && (currentOwner === null || !p.teams.includes(currentOwner))) {
    return "this service is not owned by one of this key's teams";
  }
  if (newOwner === null || !p.teams.includes(newOwner)) {
    return `team_owner must be one of this key's teams: ${p.teams.map((t) => `"${t}"`).join(", ")}`;
  }
  return null;
}

const jsonList = (xs: readonly string[]) => JSON.stringify(xs);

/**
 * The indexes of events a scoped writer may not write: services owned by other teams (or by
 * none), or, for a key limited to named services only, any other name. New service names a
 * team-scoped writer sends are created owned by its first team, before the events are written.
 */
export async function writeScopeRefusals(
  sql: Sql,
  p: Principal | undefined,
  serviceNames: readonly string[],
): Promise<number[]> {
  if (!isScoped(p)) return [];
  const distinct = [...new Set(serviceNames)];
  const owners = async (names: string[]) =>
    new Map(
      (await sql<{ name: string; team_owner: string | null }[]>`
        select name, team_owner from services
        where name in (select jsonb_array_elements_text(${jsonList(names)}::text::jsonb))`)
        .map((r) => [r.name, r.team_owner]),
    );
  const owner = await owners(distinct);
  const ours = (n: string) =>
    p.services.includes(n) ||
    (owner.has(n) ? p.teams.includes(owner.get(n) ?? "\0") : p.teams.length > 0);
  const refused = (): number[] => serviceNames.flatMap((n, i) => ours(n) ? [] : [i]);
  const bad = refused();
  if (bad.length > 0) return bad;
  const fresh = distinct.filter((n) => !owner.has(n) && !p.services.includes(n));
  if (fresh.length === 0) return [];
  await sql`
    insert into services (name, team_owner)
    select n, ${p.teams[0]}
    from jsonb_array_elements_text(${jsonList(fresh)}::text::jsonb) as n
    on conflict (name) do nothing`;
  // Another writer may have created one of them first, for another team.
  for (const [n, o] of await owners(fresh)) owner.set(n, o);
  return refused();
}
