// The live feed's SQL: the latest events, the events after a client's last id, and the events
// of one commit notice. Every read is bounded in time so that partition pruning applies.
import type { Sql } from "../db/connect.ts";
import type { CommitNotice } from "../ingest/writer.ts";
import { eventColumns, type EventRow, type LogEventOut, toEventOut } from "./events.ts";
import { filterSql, type LogFilter } from "./filters.ts";

/**
 * The newest `limit` matching events, newest first.
 *
 * Walks log_events_time_idx (or the PK / status index when a filter suits them better) and
 * stops after `limit` rows. The upper bound (ingest refuses times more than a day ahead) skips
 * the empty future partitions; the lower bound skips partitions the pruner has not dropped yet.
 */
export async function latestEvents(
  sql: Sql,
  filter: LogFilter,
  opts: { limit: number; retentionDays: number },
): Promise<LogEventOut[]> {
  const rows = await sql<EventRow[]>`
    select ${eventColumns(sql)}
    from log_events e join services s on s.id = e.service_id
    where e."timestamp" <= now() + interval '1 day'
      and e."timestamp" >= now() - make_interval(days => ${opts.retentionDays + 1})
      ${filterSql(sql, filter)}
    order by e."timestamp" desc, e.id desc
    limit ${opts.limit}`;
  return rows.map(toEventOut);
}

/**
 * Matching events with id > `afterId`, oldest (lowest id) first: what a reconnecting client
 * missed. There is no index on id alone, so this reads every partition of the window; it runs
 * once per reconnect, not per event.
 */
export async function eventsAfterId(
  sql: Sql,
  filter: LogFilter,
  opts: { afterId: number; limit: number; retentionDays: number },
): Promise<LogEventOut[]> {
  const rows = await sql<EventRow[]>`
    select ${eventColumns(sql)}
    from log_events e join services s on s.id = e.service_id
    where e.id > ${opts.afterId}
      and e."timestamp" <= now() + interval '1 day'
      and e."timestamp" >= now() - make_interval(days => ${opts.retentionDays + 1})
      ${filterSql(sql, filter)}
    order by e.id
    limit ${opts.limit}`;
  return rows.map(toEventOut);
}

/**
 * The committed events a notice points at, by id. The time bounds let the planner prune
 * partitions and use the time index; the id ranges pick the commit's rows within them.
 */
export async function noticeEvents(sql: Sql, n: CommitNotice): Promise<LogEventOut[]> {
  if (n.ids.length === 0) return [];
  const lo = n.ids.map((r) => r[0]);
  const hi = n.ids.map((r) => r[1]);
  const rows = await sql<EventRow[]>`
    select ${eventColumns(sql)}
    from log_events e join services s on s.id = e.service_id
    where e."timestamp" between ${n.from}::timestamptz and ${n.to}::timestamptz
      and e.id between ${Math.min(...lo)} and ${Math.max(...hi)}
      and exists (
        select 1 from unnest(${lo}::int8[], ${hi}::int8[]) as r (lo, hi)
        where e.id between r.lo and r.hi)
    order by e.id`;
  return rows.map(toEventOut);
}
