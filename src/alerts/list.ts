// What GET /alerts and GET /alerts/deliveries list: the alerts pending or firing now (with their
// rule or SLO and whether a silence holds their notices back), and the delivery attempts.
import type { Sql } from "../db/connect.ts";
import { silenced } from "./run.ts";
import { activeSilences } from "./silences.ts";

export interface OpenAlert {
  source: "rule" | "slo";
  source_id: number;
  name: string;
  /** The rule's kind, or "slo_burn_rate": what `value` is. Null for a deleted rule. */
  kind: string | null;
  service_name: string;
  team: string | null;
  severity: string;
  state: "pending" | "firing";
  value: number | null;
  since: string;
  fired_at: string | null;
  episode: number;
  silenced: boolean;
  last_notified_at: string | null;
}

const iso = (d: Date | null) => d?.toISOString() ?? null;

export async function listOpenAlerts(
  sql: Sql,
  q: { services?: readonly string[]; now: Date },
): Promise<OpenAlert[]> {
  const [rows, silences] = await Promise.all([
    sql<{
      source: "rule" | "slo";
      source_id: string;
      name: string | null;
      kind: string | null;
      service_name: string;
      team: string | null;
      severity: string | null;
      state: "pending" | "firing";
      value: number | null;
      since: Date;
      fired_at: Date | null;
      episode: string;
      last_notified_at: Date | null;
    }[]>`
      select a.source, a.source_id, coalesce(r.name, o.name) as name,
             case when a.source = 'rule' then r.kind else 'slo_burn_rate' end as kind,
             s.name as service_name,
             s.team_owner as team,
             case when a.source = 'rule' then r.severity else a.alert_key end as severity,
             a.state, a.value, a.since, a.fired_at, a.episode, a.last_notified_at
        from alerts a
        join services s on s.id = a.service_id
        left join alert_rules r on a.source = 'rule' and r.id = a.source_id
        left join slos o on a.source = 'slo' and o.id = a.source_id
       where a.state in ('pending', 'firing')
         ${
      q.services
        ? sql`and s.name in (select jsonb_array_elements_text(${
          JSON.stringify(q.services)
        }::text::jsonb))`
        : sql``
    }
       order by a.state = 'firing' desc, a.since, s.name`,
    activeSilences(sql, q.now),
  ]);
  return rows.map((r) => {
    const name = r.name ?? "(deleted)";
    return {
      source: r.source,
      source_id: Number(r.source_id),
      name,
      kind: r.kind,
      service_name: r.service_name,
      team: r.team,
      severity: r.severity ?? "page",
      state: r.state,
      value: r.value,
      since: r.since.toISOString(),
      fired_at: iso(r.fired_at),
      episode: Number(r.episode),
      silenced: silenced(silences, {
        service: r.service_name,
        team: r.team,
        ruleId: r.source === "rule" ? Number(r.source_id) : null,
      }),
      last_notified_at: iso(r.last_notified_at),
    };
  });
}

export interface Delivery {
  id: number;
  at: string;
  channel: string;
  service_name: string;
  source: string;
  source_id: number;
  alert_key: string;
  episode: number;
  status: "firing" | "resolved";
  attempt: number;
  outcome: "delivered" | "failed" | "rejected";
  http_status: number | null;
  error: string | null;
  duration_ms: number | null;
}

/** Attempts newest first; `before`: only ids below it (keyset paging). */
export async function listDeliveries(
  sql: Sql,
  q: { services?: readonly string[]; limit: number; before?: number },
): Promise<Delivery[]> {
  const rows = await sql<(Omit<Delivery, "id" | "at" | "source_id" | "episode"> & {
    id: string;
    at: Date;
    source_id: string;
    episode: string;
  })[]>`
    select d.id, d.at, d.channel_name as channel, s.name as service_name, d.source, d.source_id,
           d.alert_key, d.episode, d.status, d.attempt, d.outcome, d.http_status, d.error,
           d.duration_ms
      from alert_deliveries d join services s on s.id = d.service_id
     where true
       ${q.before === undefined ? sql`` : sql`and d.id < ${q.before}`}
       ${
    q.services
      ? sql`and s.name in (select jsonb_array_elements_text(${
        JSON.stringify(q.services)
      }::text::jsonb))`
      : sql``
  }
     order by d.id desc
     limit ${q.limit}`;
  return rows.map((r) => ({
    ...r,
    id: Number(r.id),
    at: r.at.toISOString(),
    source_id: Number(r.source_id),
    episode: Number(r.episode),
  }));
}
