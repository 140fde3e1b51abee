// Everything an evaluation reads besides the measurements: rules, SLOs, channels, the teams'
// channels and the silences in force (src/alerts/{rules,slos,channels,silences}.ts).
import type { Sql } from "../db/connect.ts";
import { listChannels } from "./channels.ts";
import { listRules } from "./rules.ts";
import { activeSilences } from "./silences.ts";
import { listSlos } from "./slos.ts";
import type { Definitions } from "./run.ts";

export async function loadDefinitions(sql: Sql, now: Date): Promise<Definitions> {
  const [rules, slos, channels, teams, silences] = await Promise.all([
    listRules(sql),
    listSlos(sql),
    listChannels(sql),
    sql<{ name: string; channel: string }[]>`
      select t.name, c.name as channel from teams t join alert_channels c on c.id = t.channel_id`,
    activeSilences(sql, now),
  ]);
  return {
    rules,
    slos,
    channels,
    teamChannels: new Map(teams.map((t) => [t.name, t.channel])),
    silences,
  };
}
