// Daily partition upkeep for log_events: the window is [today - retention, today + ahead].
import type { Sql } from "./connect.ts";
import { DAY_MS } from "../time.ts";

export const PARTITION_DAYS_AHEAD = 7;

/** UTC calendar day of `t` as YYYY-MM-DD. */
export function utcDay(t: Date): string {
  return t.toISOString().slice(0, 10);
}

export function partitionWindow(
  now: Date,
  retentionDays: number,
  daysAhead = PARTITION_DAYS_AHEAD,
): { from: string; to: string } {
  return {
    from: utcDay(new Date(now.getTime() - retentionDays * DAY_MS)),
    to: utcDay(new Date(now.getTime() + daysAhead * DAY_MS)),
  };
}

/** Creates missing partitions between two UTC days inclusive; returns how many were created. */
export async function ensurePartitions(sql: Sql, from: string, to: string): Promise<number> {
  const [row] = await sql<{ created: number }[]>`
    select observian_ensure_partitions(${from}::date, ${to}::date) as created`;
  return row.created;
}

export async function ensurePartitionWindow(
  sql: Sql,
  opts: { retentionDays: number; now?: Date },
): Promise<number> {
  const w = partitionWindow(opts.now ?? new Date(), opts.retentionDays);
  return await ensurePartitions(sql, w.from, w.to);
}

/** The UTC days that have a partition, oldest first. */
export async function listPartitionDays(sql: Sql): Promise<string[]> {
  const rows = await sql<{ day: string }[]>`
    select to_char(day, 'YYYY-MM-DD') as day from log_event_partitions order by day`;
  return rows.map((r) => r.day);
}
