// One evaluation run of the alerts job: measure every rule and SLO, move each alert's state,
// then send what is due (unless silenced) to the rule's channels, else the owning team's, else
// ALERT_DEFAULT_CHANNEL. The caller (src/jobs/alerts.ts) holds the job's lock, so one instance
// evaluates at a time; the state rows make a restart carry on the same episodes.
import type { Sql } from "../db/connect.ts";
import { logger } from "../logging.ts";
import {
  evaluateRules,
  type Observation,
  type RuleDef,
  type SloDef,
  sloObservations,
  type SloStatus,
  sloStatuses,
  type WatchedService,
} from "./evaluate.ts";
import type { SilenceMatchers } from "./silences.ts";
import { type ChannelDef, deliver, type DeliveryOptions, type Notice } from "./notify.ts";
import { saveSloFigures } from "./slo-status.ts";
import {
  type AlertRow,
  due,
  forgetAlerts,
  keyOf,
  loadAlerts,
  markNotified,
  saveAlerts,
  step,
} from "./state.ts";

export interface AlertRunOptions {
  repeatMs: number;
  defaultChannel: string | undefined;
  delivery: DeliveryOptions;
  /** Notices sent at once (each may retry). */
  concurrency?: number;
}

export interface AlertRunResult {
  rules: number;
  slos: number;
  watched: number;
  pending: number;
  firing: number;
  notices: { sent: number; failed: number; silenced: number; no_channel: number };
  /** Rows after the run, for the metrics. */
  rows: AlertRow[];
  /** Each SLO's figures as this run computed them (by SLO id), for the metrics. */
  sloStatuses: Map<number, SloStatus>;
}

export interface Definitions {
  rules: RuleDef[];
  slos: SloDef[];
  channels: ChannelDef[];
  /** team → channel name. */
  teamChannels: Map<string, string>;
  silences: { matchers: SilenceMatchers }[];
}

export async function runAlerts(
  sql: Sql,
  defs: Definitions,
  now: Date,
  opts: AlertRunOptions,
): Promise<AlertRunResult> {
  const log = logger("alerts");
  const services = await sql<WatchedService[]>`
    select id, name, team_owner as team from services order by id`;
  const statuses = await sloStatuses(sql, defs.slos, services, now);
  const observations: Observation[] = [
    ...await evaluateRules(sql, defs.rules, services, now),
    ...sloObservations(defs.slos, statuses, services),
  ];

  const previous = await loadAlerts(sql);
  const rows = observations.map((o) => step(o.key, previous.get(keyOf(o.key)), o, now, o.forMs));
  await sql.begin(async (tx) => {
    await saveAlerts(tx, rows);
    await saveSloFigures(tx, statuses, now);
    await forgetAlerts(tx, {
      rules: defs.rules.map((r) => r.id),
      slos: defs.slos.map((s) => s.id),
    });
  });

  const result: AlertRunResult = {
    rules: defs.rules.length,
    slos: defs.slos.length,
    watched: observations.length,
    pending: rows.filter((r) => r.state === "pending").length,
    firing: rows.filter((r) => r.state === "firing").length,
    notices: { sent: 0, failed: 0, silenced: 0, no_channel: 0 },
    rows,
    sloStatuses: statuses,
  };
  const channelByName = new Map(defs.channels.map((c) => [c.name, c]));
  const jobs: (() => Promise<void>)[] = [];
  const unrouted: string[] = [];
  observations.forEach((obs, i) => {
    const row = rows[i];
    const status = due(row, now, opts.repeatMs);
    if (!status) return;
    const target = {
      service: obs.service.name,
      team: obs.service.team,
      ruleId: obs.key.source === "rule" ? obs.key.sourceId : null,
    };
    if (silenced(defs.silences, target)) {
      result.notices.silenced++;
      return;
    }
    const names = obs.channels.length > 0 ? obs.channels : [
      (obs.service.team && defs.teamChannels.get(obs.service.team)) || opts.defaultChannel,
    ].filter((n): n is string => !!n);
    const channels = names.map((n) => channelByName.get(n)).filter((c): c is ChannelDef => !!c);
    if (channels.length === 0) {
      result.notices.no_channel++;
      unrouted.push(`${obs.name} on ${obs.service.name}`);
      return;
    }
    const notice: Notice = { status, row, obs };
    jobs.push(async () => {
      const outcomes = await Promise.all(
        channels.map((c) => deliver(sql, c, notice, opts.delivery)),
      );
      // Delivered to one channel at least: this notice is done. Otherwise the next run
      // tries again (the row still says it is due).
      if (outcomes.includes("delivered")) {
        await markNotified(sql, row, status, now);
        result.notices.sent++;
      } else {
        result.notices.failed++;
      }
    });
  });
  // One line a run, not one per alert: without any channel every due notice lands here, each
  // minute until one is configured.
  if (unrouted.length > 0) {
    log.warning(
      "{count} alert notices have no channel to go to (no rule channel, team channel or " +
        "ALERT_DEFAULT_CHANNEL), e.g. {examples}; they stay due",
      { count: unrouted.length, examples: unrouted.slice(0, 3).join("; ") },
    );
  }
  await pooled(jobs, opts.concurrency ?? 8);
  return result;
}

/**
 * Whether a silence holds: every matcher it gives matches (the service, its team, the rule's
 * id; an SLO's alerts match by service or team only).
 */
export function silenced(
  silences: Definitions["silences"],
  t: { service: string; team: string | null; ruleId: number | null },
): boolean {
  return silences.some(({ matchers: m }) =>
    (m.service !== undefined || m.team !== undefined || m.rule !== undefined) &&
    (m.service === undefined || m.service === t.service) &&
    (m.team === undefined || m.team === t.team) &&
    (m.rule === undefined || m.rule === t.ruleId)
  );
}

async function pooled(jobs: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]();
  };
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
}
