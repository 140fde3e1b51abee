// The live feed's SQL: the latest events, the events after a client's last id, and the events
// of one commit notice. Every read is bounded in time so that partition pruning applies.
import { type Sql, statementTimeout, type Tx } from "../db/connect.ts";
import type { CommitNotice } from "../ingest/store.ts";
import { eventColumns, type EventRow, type LogEventOut, toEventOut } from "../query/events.ts";
import { filterSql, type LogFilter } from "../query/filters.ts";
import { DAY_MS } from "../time.ts";

/**
 * The newest `limit` matching events, newest first.
 *
 * Without service_name, log_events_time_idx (or the status / event type index when a filter
 * suits it better) is walked newest first and stops after `limit` rows. With it, each service is
 * read backwards through its own primary-key range (service_id, "timestamp", id) in a LATERAL
 * subquery: `service_id = any(…)` would walk the time index instead, filtering out every other
 * service's rows, which for a quiet service means the whole window (seconds at 10M events).
 *
 * The last day is asked first, with its bounds as values, so the planner looks at two or three
 * partitions instead of every one in the retention window (planning them all cost ~7 ms at 30
 * days); only when that day holds fewer than `limit` matches is the whole window read.
 */
export async function latestEvents(
  sql: Sql,
  filter: LogFilter,
  opts: { limit: number; retentionDays: number; timeoutMs: number },
): Promise<LogEventOut[]> {
  return await sql.begin(async (tx) => {
    await statementTimeout(tx, opts.timeoutMs);
    const now = Date.now();
    const upper = new Date(now + DAY_MS);
    const recent = await latestBetween(sql, tx, filter, opts.limit, new Date(now - DAY_MS), upper);
    if (recent.length >= opts.limit) return recent.map(toEventOut);
    const from = new Date(now - (opts.retentionDays + 1) * DAY_MS);
    return (await latestBetween(sql, tx, filter, opts.limit, from, upper)).map(toEventOut);
  });
}

/** Fragments are built on the pool handle `sql`, the query runs in `tx`. */
async function latestBetween(
  sql: Sql,
  tx: Tx,
  filter: LogFilter,
  limit: number,
  from: Date,
  to: Date,
): Promise<EventRow[]> {
  const window = sql`e."timestamp" >= ${from} and e."timestamp" <= ${to}`;
  return filter.services
    ? await tx<EventRow[]>`
      select ${eventColumns(sql)}
      from services s
      cross join lateral (
        select e.* from log_events e
        where e.service_id = s.id and ${window}
          ${filterSql(sql, { ...filter, services: undefined })}
        order by e."timestamp" desc, e.id desc
        limit ${limit}
      ) e
      where s.name = any(${filter.services}::text[])
      order by e."timestamp" desc, e.id desc
      limit ${limit}`
    : await tx<EventRow[]>`
      select ${eventColumns(sql)}
      from log_events e join services s on s.id = e.service_id
      where ${window} ${filterSql(sql, filter)}
      order by e."timestamp" desc, e.id desc
      limit ${limit}`;
}

/**
 * Matching events a resuming client missed and the feed does not replay: those with an id after
 * the client's last one and before the first replayed one. `from` and `to` are their oldest and
 * newest timestamps (microseconds kept), so GET /logs with the feed's filters and
 * `start_time=from&end_time=to` returns them all (with others, told apart by id).
 */
export interface LiveGap {
  after_id: number;
  first_id: number;
  last_id: number;
  skipped: number;
  from: string;
  to: string;
}

/**
 * What a reconnecting client gets: the newest `limit` matching events with id > `afterId`,
 * oldest (lowest id) first, and the gap between `afterId` and them when there were more.
 * log_events_id_brin (sql/007) narrows each partition to the block ranges holding newer ids;
 * this runs once per reconnect, not per event.
 */
export async function resumeAfterId(
  sql: Sql,
  filter: LogFilter,
  opts: { afterId: number; limit: number; retentionDays: number; timeoutMs: number },
): Promise<{ events: LogEventOut[]; gap: LiveGap | null }> {
  const bounds = sql`
      and e."timestamp" <= now() + interval '1 day'
      and e."timestamp" >= now() - make_interval(days => ${opts.retentionDays + 1})
      ${filterSql(sql, filter)}`;
  return await sql.begin(async (tx) => {
    await statementTimeout(tx, opts.timeoutMs);
    // One more than is replayed: whether anything lies before the replay.
    const rows = await tx<EventRow[]>`
      select ${eventColumns(sql)}
      from log_events e join services s on s.id = e.service_id
      where e.id > ${opts.afterId} ${bounds}
      order by e.id desc
      limit ${opts.limit + 1}`;
    if (rows.length <= opts.limit) return { events: rows.reverse().map(toEventOut), gap: null };
    const events = rows.slice(0, opts.limit).reverse().map(toEventOut);
    const lastSkipped = Number(rows[opts.limit].id);
    const [g] = await tx<{ n: string; first_id: string; from: string; to: string }[]>`
      select count(*) as n, min(e.id) as first_id,
        to_char(min(e."timestamp") at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as from,
        to_char(max(e."timestamp") at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as to
      from log_events e join services s on s.id = e.service_id
      where e.id > ${opts.afterId} and e.id <= ${lastSkipped} ${bounds}`;
    return {
      events,
      gap: {
        after_id: opts.afterId,
        first_id: Number(g.first_id),
        last_id: lastSkipped,
        skipped: Number(g.n),
        from: g.from,
        to: g.to,
      },
    };
  });
}

/**
 * The committed events a notice points at, by id. The time bounds let the planner prune
 * partitions and use the time index; the id ranges pick the commit's rows within them. The
 * bounds are widened by a millisecond because a notice's times are JavaScript Dates (ms) and a
 * row written another way may carry microseconds.
 */
export async function noticeEvents(sql: Sql, n: CommitNotice): Promise<LogEventOut[]> {
  if (n.ids.length === 0) return [];
  const lo = n.ids.map((r) => r[0]);
  const hi = n.ids.map((r) => r[1]);
  const from = new Date(Date.parse(n.from) - 1), to = new Date(Date.parse(n.to) + 1);
  const rows = await sql<EventRow[]>`
    select ${eventColumns(sql)}
    from log_events e join services s on s.id = e.service_id
    where e."timestamp" between ${from} and ${to}
      and e.id between ${Math.min(...lo)} and ${Math.max(...hi)}
      and exists (
        select 1 from unnest(${lo}::int8[], ${hi}::int8[]) as r (lo, hi)
        where e.id between r.lo and r.hi)
    order by e.id`;
  return rows.map(toEventOut);
}
