// Everything an evaluation reads besides the measurements: rules, SLOs, channels, the teams'
// channels and the silences in force, each one statement.
import type { Sql } from "../db/connect.ts";
import type { RuleDef, SloDef } from "./evaluate.ts";
import type { ChannelDef } from "./notify.ts";
import type { Definitions } from "./run.ts";

export async function loadDefinitions(sql: Sql, now: Date): Promise<Definitions> {
  const [rules, slos, channels, teams, silences] = await Promise.all([
    sql<(Omit<RuleDef, "id"> & { id: string })[]>`
      select id, name, services, teams, kind, threshold, window_s as "windowS",
             for_s as "forS", severity, channels, labels
        from alert_rules order by id`,
    sql<(Omit<SloDef, "id"> & { id: string })[]>`
      select o.id, s.name as "serviceName", o.name, o.objective, o.period_days as "periodDays",
             o.indicator, o.latency_threshold_ms as "latencyThresholdMs"
        from slos o join services s on s.id = o.service_id order by o.id`,
    sql<(Omit<ChannelDef, "id"> & { id: string })[]>`
      select id, name, type, url, secret from alert_channels order by id`,
    sql<{ name: string; channel: string }[]>`
      select t.name, c.name as channel from teams t join alert_channels c on c.id = t.channel_id`,
    sql<{ matchers: { service?: string; team?: string; rule?: string } }[]>`
      select matchers from alert_silences where starts_at <= ${now} and ends_at > ${now}`,
  ]);
  return {
    rules: rules.map((r) => ({ ...r, id: Number(r.id) })),
    slos: slos.map((s) => ({ ...s, id: Number(s.id) })),
    channels: channels.map((c) => ({ ...c, id: Number(c.id) })),
    teamChannels: new Map(teams.map((t) => [t.name, t.channel])),
    silences: [...silences],
  };
}
