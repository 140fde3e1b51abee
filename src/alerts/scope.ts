// Who may change an alert definition: an admin (or anyone while access control is off) any; a
// writer scoped to teams or services only those whose services and teams all lie in its scope.
// A definition naming no service and no team covers every service: admin only.
import type { Sql } from "../db/connect.ts";
import { ForbiddenError } from "../errors.ts";
import { type Principal, scopeServices } from "../access/principal.ts";

/** What a definition covers: service names and team names. */
export interface Coverage {
  services: readonly string[];
  teams: readonly string[];
}

/** Whether `p` could change some definition at all (a writer needs a scope). */
export function mayOwnDefinitions(p: Principal | undefined): string | null {
  if (!p || p.role === "admin") return null;
  if (p.teams.length === 0 && p.services.length === 0) {
    return "changing alert definitions needs admin, or a writer scoped to teams or services";
  }
  return null;
}

/** Throws ForbiddenError unless `p` may change a definition covering `what`. */
export async function assertMayChange(
  sql: Sql,
  p: Principal | undefined,
  what: Coverage,
): Promise<void> {
  const general = mayOwnDefinitions(p);
  if (general) throw new ForbiddenError(general);
  if (!p || p.role === "admin") return;
  if (what.services.length === 0 && what.teams.length === 0) {
    throw new ForbiddenError("a definition for every service (no services, no teams) needs admin");
  }
  const allowed = new Set(await scopeServices(sql, p));
  const outside = [
    ...what.services.filter((s) => !allowed.has(s)).map((s) => `service "${s}"`),
    ...what.teams.filter((t) => !p.teams.includes(t)).map((t) => `team "${t}"`),
  ];
  if (outside.length > 0) {
    throw new ForbiddenError(`outside this key's scope: ${outside.join(", ")}`);
  }
}

/** For reads by a scoped principal: whether a definition touches its scope. */
export function touchesScope(
  what: Coverage,
  scope: { services: ReadonlySet<string>; teams: readonly string[] },
): boolean {
  if (what.services.length === 0 && what.teams.length === 0) return true;
  return what.services.some((s) => scope.services.has(s)) ||
    what.teams.some((t) => scope.teams.includes(t));
}
