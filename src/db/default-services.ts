// The default services (SEED_SERVICES), created at start-up when missing. Existing rows are
// left as they are, so an operator's later change of team_owner survives restarts.
import type { Sql } from "./connect.ts";

export async function seedServices(
  sql: Sql,
  services: readonly { name: string; teamOwner: string | null }[],
): Promise<number> {
  if (services.length === 0) return 0;
  const rows = await sql`
    insert into services (name, team_owner)
    select * from unnest(${services.map((s) => s.name)}::text[], ${
    services.map((s) => s.teamOwner)
  }::text[])
    on conflict (name) do nothing
    returning id`;
  return rows.count;
}
