// Alert state, one row per watched thing (a rule on a service, an SLO's page or ticket alert):
// pending → firing → resolved, kept in PostgreSQL so that a restart or another instance carries
// on the same episode. What to notify is decided from the row alone: one firing notice per
// episode, a repeat after the repeat interval while it keeps firing, one resolved notice.
import type { Sql, Tx } from "../db/connect.ts";

export type AlertState = "pending" | "firing" | "resolved";

export interface AlertKey {
  serviceId: number;
  source: "rule" | "slo";
  sourceId: number;
  /** "" for a rule; "page" or "ticket" for an SLO. */
  alertKey: string;
}

export interface AlertRow extends AlertKey {
  episode: number;
  state: AlertState;
  since: Date;
  value: number | null;
  evaluatedAt: Date;
  firedAt: Date | null;
  resolvedAt: Date | null;
  notifiedState: "firing" | "resolved" | null;
  lastNotifiedAt: Date | null;
}

/**
 * The row after one evaluation: `breached` says whether the condition holds now; it must have
 * held for `forMs` before the alert fires. A pending alert whose condition clears is resolved
 * without ever having fired (and so without a notice).
 */
export function step(
  key: AlertKey,
  prev: AlertRow | undefined,
  obs: { breached: boolean; value: number | null },
  now: Date,
  forMs: number,
): AlertRow {
  const open = prev && prev.state !== "resolved";
  if (!obs.breached) {
    if (!open) return prev ?? quiet(key, now, obs.value);
    return { ...prev, state: "resolved", value: obs.value, evaluatedAt: now, resolvedAt: now };
  }
  if (!open) {
    // A new episode: its notices start afresh.
    const firing = forMs <= 0;
    return {
      ...key,
      episode: (prev?.episode ?? 0) + 1,
      state: firing ? "firing" : "pending",
      since: now,
      value: obs.value,
      evaluatedAt: now,
      firedAt: firing ? now : null,
      resolvedAt: null,
      notifiedState: null,
      lastNotifiedAt: null,
    };
  }
  if (prev.state === "pending" && now.getTime() - prev.since.getTime() >= forMs) {
    return { ...prev, state: "firing", value: obs.value, evaluatedAt: now, firedAt: now };
  }
  return { ...prev, value: obs.value, evaluatedAt: now };
}

/** A row for something watched that has never been in trouble: nothing to store. */
function quiet(key: AlertKey, now: Date, value: number | null): AlertRow {
  return {
    ...key,
    episode: 0,
    state: "resolved",
    since: now,
    value,
    evaluatedAt: now,
    firedAt: null,
    resolvedAt: null,
    notifiedState: null,
    lastNotifiedAt: null,
  };
}

/** What should be sent for the row now, if anything (silences aside). */
export function due(row: AlertRow, now: Date, repeatMs: number): "firing" | "resolved" | null {
  if (row.state === "firing") {
    if (row.notifiedState !== "firing") return "firing";
    const last = row.lastNotifiedAt?.getTime() ?? 0;
    return now.getTime() - last >= repeatMs ? "firing" : null;
  }
  if (row.state === "resolved" && row.notifiedState === "firing") return "resolved";
  return null;
}

type DbRow = {
  service_id: number;
  source: "rule" | "slo";
  source_id: string;
  alert_key: string;
  episode: string;
  state: AlertState;
  since: Date;
  value: number | null;
  evaluated_at: Date;
  fired_at: Date | null;
  resolved_at: Date | null;
  notified_state: "firing" | "resolved" | null;
  last_notified_at: Date | null;
};

const fromDb = (r: DbRow): AlertRow => ({
  serviceId: r.service_id,
  source: r.source,
  sourceId: Number(r.source_id),
  alertKey: r.alert_key,
  episode: Number(r.episode),
  state: r.state,
  since: r.since,
  value: r.value,
  evaluatedAt: r.evaluated_at,
  firedAt: r.fired_at,
  resolvedAt: r.resolved_at,
  notifiedState: r.notified_state,
  lastNotifiedAt: r.last_notified_at,
});

export const keyOf = (k: AlertKey) => `${k.serviceId}:${k.source}:${k.sourceId}:${k.alertKey}`;

export async function loadAlerts(sql: Sql | Tx): Promise<Map<string, AlertRow>> {
  const rows = await sql<DbRow[]>`select * from alerts`;
  return new Map(rows.map((r) => [keyOf(fromDb(r)), fromDb(r)]));
}

/** Writes rows that exist (episode > 0); one statement. */
export async function saveAlerts(sql: Sql | Tx, rows: readonly AlertRow[]): Promise<void> {
  const kept = rows.filter((r) => r.episode > 0);
  if (kept.length === 0) return;
  const json = JSON.stringify(kept.map((r) => ({
    service_id: r.serviceId,
    source: r.source,
    source_id: r.sourceId,
    alert_key: r.alertKey,
    episode: r.episode,
    state: r.state,
    since: r.since.toISOString(),
    value: r.value,
    evaluated_at: r.evaluatedAt.toISOString(),
    fired_at: r.firedAt?.toISOString() ?? null,
    resolved_at: r.resolvedAt?.toISOString() ?? null,
    notified_state: r.notifiedState,
    last_notified_at: r.lastNotifiedAt?.toISOString() ?? null,
  })));
  await sql`
    insert into alerts (service_id, source, source_id, alert_key, episode, state, since, value,
                        evaluated_at, fired_at, resolved_at, notified_state, last_notified_at)
    select service_id, source, source_id, alert_key, episode, state, since, value, evaluated_at,
           fired_at, resolved_at, notified_state, last_notified_at
      from jsonb_to_recordset(${json}::text::jsonb) as x (
        service_id int, source text, source_id bigint, alert_key text, episode bigint,
        state text, since timestamptz, value float8, evaluated_at timestamptz,
        fired_at timestamptz, resolved_at timestamptz, notified_state text,
        last_notified_at timestamptz)
    on conflict (service_id, source, source_id, alert_key) do update set
      episode = excluded.episode, state = excluded.state, since = excluded.since,
      value = excluded.value, evaluated_at = excluded.evaluated_at,
      fired_at = excluded.fired_at, resolved_at = excluded.resolved_at,
      notified_state = excluded.notified_state, last_notified_at = excluded.last_notified_at`;
}

/** Records that `status` was delivered for the row's episode (only if still that episode). */
export async function markNotified(
  sql: Sql | Tx,
  row: AlertRow,
  status: "firing" | "resolved",
  at: Date,
): Promise<void> {
  await sql`
    update alerts set notified_state = ${status}, last_notified_at = ${at}
     where service_id = ${row.serviceId} and source = ${row.source}
       and source_id = ${row.sourceId} and alert_key = ${row.alertKey}
       and episode = ${row.episode}`;
}

/** Drops the rows of rules and SLOs that no longer exist. */
export async function forgetAlerts(
  sql: Sql | Tx,
  live: { rules: readonly number[]; slos: readonly number[] },
): Promise<void> {
  await sql`
    delete from alerts
     where (source = 'rule' and source_id not in (
              select jsonb_array_elements_text(${JSON.stringify(live.rules)}::text::jsonb)::bigint))
        or (source = 'slo' and source_id not in (
              select jsonb_array_elements_text(${
    JSON.stringify(live.slos)
  }::text::jsonb)::bigint))`;
}
