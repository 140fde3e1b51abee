// Teams (the names in services.team_owner) and their default channel (sql/019_alerts.sql teams):
// where an alert goes when its rule names no channel.
import type { Sql, Tx } from "../db/connect.ts";
import { InvalidInputError } from "../errors.ts";
import { type AuditOrigin, recordAudit } from "../access/audit.ts";
import type { Channel } from "./channels.ts";

export const MAX_TEAM_CHARS = 100;

export interface TeamOut {
  name: string;
  /** The default channel's name; null: none (ALERT_DEFAULT_CHANNEL applies). */
  channel: string | null;
  /** Services the team owns, by name. */
  services: string[];
}

/**
 * Every team: those with a row here and those named as a service's owner, with their default
 * channel and services, by name.
 */
export function listTeams(sql: Sql): Promise<TeamOut[]> {
  return sql<TeamOut[]>`
    select n.name, c.name as channel,
           coalesce((select jsonb_agg(s.name order by s.name) from services s
                      where s.team_owner = n.name), '[]'::jsonb) as services
    from (select name from teams
          union select team_owner from services where team_owner is not null) n
    left join teams t on t.name = n.name
    left join alert_channels c on c.id = t.channel_id
    order by n.name`;
}

/** The team's default channel, with its secret (for the notifier), or null. */
export async function teamChannel(sql: Sql | Tx, team: string): Promise<Channel | null> {
  const [row] = await sql<Channel[]>`
    select c.id::float8 as id, c.name, c.type, c.url, c.secret
    from teams t join alert_channels c on c.id = t.channel_id
    where t.name = ${team}`;
  return row ?? null;
}

/** Sets (or, with null, clears) a team's default channel, and records it. */
export async function setTeamChannel(
  sql: Sql,
  team: string,
  channel: string | null,
  origin: AuditOrigin,
): Promise<TeamOut> {
  if (team.length < 1 || team.length > MAX_TEAM_CHARS || team.includes("\0")) {
    throw new InvalidInputError([
      { field: "team", message: `must be 1-${MAX_TEAM_CHARS} characters, without NUL` },
    ], "malformed");
  }
  await sql.begin(async (tx) => {
    let channelId: number | null = null;
    if (channel !== null) {
      const [c] = await tx<{ id: number }[]>`
        select id::float8 as id from alert_channels where name = ${channel} for share`;
      if (!c) {
        throw new InvalidInputError([{
          field: "channel",
          message: `no channel named "${channel}"`,
        }], "malformed");
      }
      channelId = c.id;
    }
    const [old] = await tx<{ channel: string | null }[]>`
      select c.name as channel from teams t left join alert_channels c on c.id = t.channel_id
      where t.name = ${team} for update of t`;
    await tx`
      insert into teams (name, channel_id) values (${team}, ${channelId})
      on conflict (name) do update set channel_id = excluded.channel_id, updated_at = now()`;
    await recordAudit(tx, origin, {
      action: "team.update",
      target: `team:${team}`,
      detail: { channel, previous_channel: old?.channel ?? null },
    });
  });
  const teams = await listTeams(sql);
  return teams.find((t) => t.name === team)!;
}
