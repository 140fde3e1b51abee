// Stores GitHub events exactly once: the ids go into github_seen_events and the events into
// log_events (through the ingest writer's own statement: rollup deltas, live-feed notice) in one
// transaction, so an id is marked seen if and only if its event is stored. Concurrent
// pollers block on the id's unique key until the first commits, then see a conflict.
import type { Sql } from "../../db/connect.ts";
import { insertEvents, registerServices, withMissingPartitions } from "../../ingest/store.ts";
import type { GitHubRow } from "./mapping.ts";

export interface StoreResult {
  inserted: number;
  duplicates: number;
}

export async function storeGitHubEvents(sql: Sql, rows: GitHubRow[]): Promise<StoreResult> {
  // One row per id (a page can repeat an event), in id order so that concurrent
  // transactions take the unique-key locks in the same order and cannot deadlock.
  const byId = new Map<string, GitHubRow>();
  for (const r of rows) if (!byId.has(r.githubId)) byId.set(r.githubId, r);
  const unique = [...byId.values()].sort((a, b) => a.githubId < b.githubId ? -1 : 1);
  if (unique.length === 0) return { inserted: 0, duplicates: rows.length };
  return await withMissingPartitions(
    sql,
    unique.map((r) => r.timestamp),
    () => insertOnce(sql, unique, rows.length),
  );
}

async function insertOnce(sql: Sql, unique: GitHubRow[], given: number): Promise<StoreResult> {
  return await sql.begin(async (tx) => {
    const fresh = await tx<{ github_id: string }[]>`
      insert into github_seen_events (github_id, created_at)
      select id, t from unnest(
        ${unique.map((r) => r.githubId)}::text[],
        ${unique.map((r) => r.timestamp.toISOString())}::timestamptz[]
      ) with ordinality as u (id, t, n)
      order by n
      on conflict (github_id) do nothing
      returning github_id`;
    const isNew = new Set(fresh.map((r) => r.github_id));
    const events = unique.filter((r) => isNew.has(r.githubId));
    if (events.length === 0) return { inserted: 0, duplicates: given };

    const idOf = await registerServices(tx, [...new Set(events.map((e) => e.serviceName))]);
    await insertEvents(tx, events, events.map((e) => idOf.get(e.serviceName)!));
    return { inserted: events.length, duplicates: given - events.length };
  });
}
