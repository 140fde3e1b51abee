// The services dimension with each service's last 24 hours, read from the rollups (never from
// log_events): whole hours from log_rollup_1h, the partial hours at both ends from
// log_rollup_1m, so the window is exact to the minute and reads ~150 rollup rows per service
// (24 hours of minutes would be 1,440).
import type { Fragment } from "postgres";
import type { Sql } from "../db/connect.ts";
import { type AuditOrigin, recordAudit } from "../access/audit.ts";
import { HOUR_MS, MINUTE_MS } from "../time.ts";

/** A service as the API returns it (schema: Service in src/http/schemas/services.ts). */
export interface ServiceOut {
  name: string;
  team_owner: string | null;
  created_at: string;
  last_24h: { total: number; errors: number; error_rate_percent: number };
}

/** Rollup bucket bounds of the window ending at `now` (UTC; hours are whole UTC hours). */
export interface Window24h {
  /** First minute bucket: the start of the minute 24 hours ago. */
  from: Date;
  /** First whole hour at or after `from`: minutes before it come from log_rollup_1m. */
  hoursFrom: Date;
  /** Start of the current hour: hours before it come from log_rollup_1h. */
  hoursTo: Date;
  /** The current minute bucket, the last one counted. */
  lastMinute: Date;
}

export function window24h(now: Date): Window24h {
  const t = now.getTime();
  const from = Math.floor((t - 24 * HOUR_MS) / MINUTE_MS) * MINUTE_MS;
  return {
    from: new Date(from),
    hoursFrom: new Date(Math.ceil(from / HOUR_MS) * HOUR_MS),
    hoursTo: new Date(Math.floor(t / HOUR_MS) * HOUR_MS),
    lastMinute: new Date(Math.floor(t / MINUTE_MS) * MINUTE_MS),
  };
}

interface ServiceRow {
  name: string;
  team_owner: string | null;
  created_at: Date;
  total: string;
  errors: string;
  error_rate_percent: string;
}

/**
 * Select list and FROM: each service `s` with its window totals. Each rollup range is read once
 * through its bucket index and grouped by service (~1 ms for 20 services; a LATERAL per service
 * re-read every service's rows of the range per service, ~9 ms). `only` narrows the ranges to
 * one service through the rollups' primary keys.
 */
function servicesWithWindow(sql: Sql, w: Window24h, only?: string): Fragment {
  const one = only === undefined
    ? sql``
    : sql`and service_id = (select id from services where name = ${only})`;
  return sql`s.name, s.team_owner, s.created_at,
    coalesce(r.total, 0)::text as total, coalesce(r.errors, 0)::text as errors,
    coalesce(round(r.errors * 100.0 / nullif(r.total, 0), 2), 0)::text as error_rate_percent
    from services s
    left join (
      select service_id, sum(count) as total, sum(errors) as errors
      from (
        select service_id, count, errors from log_rollup_1m
        where bucket >= ${w.from} and bucket < ${w.hoursFrom} ${one}
        union all
        select service_id, count, errors from log_rollup_1h
        where bucket >= ${w.hoursFrom} and bucket < ${w.hoursTo} ${one}
        union all
        select service_id, count, errors from log_rollup_1m
        where bucket >= ${w.hoursTo} and bucket <= ${w.lastMinute} ${one}
      ) x
      group by service_id
    ) r on r.service_id = s.id`;
}

function toServiceOut(r: ServiceRow): ServiceOut {
  return {
    name: r.name,
    team_owner: r.team_owner,
    created_at: r.created_at.toISOString(),
    last_24h: {
      total: Number(r.total),
      errors: Number(r.errors),
      error_rate_percent: Number(r.error_rate_percent),
    },
  };
}

/** Every service, by name, with its last 24 hours. */
export async function listServices(
  sql: Sql,
  opts: { now?: Date } = {},
): Promise<ServiceOut[]> {
  const w = window24h(opts.now ?? new Date());
  const rows = await sql<ServiceRow[]>`
    select ${servicesWithWindow(sql, w)}
    order by s.name`;
  return rows.map(toServiceOut);
}

/** One service with its last 24 hours, or null when there is none of that name. */
export async function getService(
  sql: Sql,
  name: string,
  opts: { now?: Date } = {},
): Promise<ServiceOut | null> {
  const w = window24h(opts.now ?? new Date());
  const [row] = await sql<ServiceRow[]>`
    select ${servicesWithWindow(sql, w, name)}
    where s.name = ${name}`;
  return row ? toServiceOut(row) : null;
}

/**
 * Creates the service or sets its team_owner, and records the change with the old and new owner,
 * in one transaction; `created` tells which.
 */
export async function upsertService(
  sql: Sql,
  name: string,
  teamOwner: string | null,
  origin: AuditOrigin,
  /**
   * Called in the transaction with the owner this write replaces (undefined: the service is
   * new), the row locked: a throw refuses the write and undoes it. Checked here rather than
   * before, so that a concurrent change of owner cannot slip between the check and the write.
   */
  authorize: (current: string | null | undefined) => void = () => {},
): Promise<{ created: boolean; previousOwner: string | null }> {
  return await sql.begin(async (tx) => {
    const inserted = await tx`
      insert into services (name, team_owner) values (${name}, ${teamOwner})
      on conflict (name) do nothing
      returning 1`;
    let previousOwner: string | null = null;
    if (inserted.length > 0) authorize(undefined);
    else {
      // Locked, so the owner recorded as the old one is the one this update replaces.
      const [old] = await tx<{ team_owner: string | null }[]>`
        select team_owner from services where name = ${name} for update`;
      previousOwner = old.team_owner;
      authorize(previousOwner);
      await tx`update services set team_owner = ${teamOwner} where name = ${name}`;
    }
    const created = inserted.length > 0;
    await recordAudit(tx, origin, {
      action: created ? "service.create" : "service.update",
      target: `service:${name}`,
      detail: { old_owner: previousOwner, new_owner: teamOwner },
    });
    return { created, previousOwner };
  });
}
