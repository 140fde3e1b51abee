// One evaluation of every rule and SLO: what each watched service measures now, and whether the
// condition holds. Reads the rollups only (src/alerts/measure.ts), a few statements in all.
import type { Sql } from "../db/connect.ts";
import { DAY_MS, MINUTE_MS } from "../time.ts";
import { latencyByService, slowByService, type Totals, totalsByWindow } from "./measure.ts";
import type { AlertKey } from "./state.ts";
import type { Rule } from "./rules.ts";
import type { Slo } from "./slos.ts";

/** The definitions as src/alerts/rules.ts and slos.ts list them. */
export type RuleDef = Rule;
export type SloDef = Slo;
type Severity = Rule["severity"];

export interface WatchedService {
  id: number;
  name: string;
  team: string | null;
}

/** One thing watched, measured now. */
export interface Observation {
  key: AlertKey;
  service: WatchedService;
  breached: boolean;
  value: number | null;
  forMs: number;
  severity: Severity;
  /** What it is, for notices: the rule or SLO name and what crossed what. */
  name: string;
  summary: string;
  labels: Record<string, string>;
  /** Channel names of the rule; empty: the team's, else the default. */
  channels: readonly string[];
}

/** The SRE workbook's multiwindow, multi-burn-rate policy: [long, short, factor]. */
export const BURN_POLICY = {
  page: [["1h", "5m", 14.4], ["6h", "30m", 6]],
  ticket: [["3d", "6h", 1]],
} as const satisfies Record<string, readonly (readonly [string, string, number])[]>;

export const BURN_WINDOWS: Record<string, number> = {
  "5m": 5 * MINUTE_MS,
  "30m": 30 * MINUTE_MS,
  "1h": 60 * MINUTE_MS,
  "6h": 360 * MINUTE_MS,
  "24h": DAY_MS,
  "3d": 3 * DAY_MS,
};

const WEEK_MS = 7 * DAY_MS;
/** no_traffic watches a service not named by the rule only if it had events this long before. */
const NO_TRAFFIC_LOOKBACK_MS = DAY_MS;

export function watchedBy(rule: RuleDef, services: readonly WatchedService[]): WatchedService[] {
  if (rule.services.length === 0 && rule.teams.length === 0) return [...services];
  return services.filter((s) =>
    rule.services.includes(s.name) || (s.team !== null && rule.teams.includes(s.team))
  );
}

export async function evaluateRules(
  sql: Sql,
  rules: readonly RuleDef[],
  services: readonly WatchedService[],
  now: Date,
): Promise<Observation[]> {
  if (rules.length === 0) return [];
  // Every window any rule reads, in one statement per tier; latency per distinct window.
  const windows: Record<string, number> = {};
  const weekAgo: Record<string, number> = {};
  const latencyWindows = new Set<number>();
  for (const r of rules) {
    const ms = r.windowS * 1000;
    windows[`w${ms}`] = ms;
    if (r.kind === "no_traffic") windows[`pre${ms}`] = ms + NO_TRAFFIC_LOOKBACK_MS;
    if (r.kind === "volume_drop") weekAgo[`w${ms}`] = ms;
    if (r.kind === "latency_p95" || r.kind === "latency_p99") latencyWindows.add(ms);
  }
  const [totals, before, ...latency] = await Promise.all([
    totalsByWindow(sql, windows, now),
    Object.keys(weekAgo).length
      ? totalsByWindow(sql, weekAgo, new Date(now.getTime() - WEEK_MS))
      : new Map<number, Record<string, Totals>>(),
    ...[...latencyWindows].map((ms) => latencyByService(sql, ms, now)),
  ]);
  const latencyOf = new Map([...latencyWindows].map((ms, i) => [ms, latency[i]]));

  const out: Observation[] = [];
  for (const rule of rules) {
    const ms = rule.windowS * 1000;
    const window = formatDuration(ms);
    for (const service of watchedBy(rule, services)) {
      const t = totals.get(service.id)?.[`w${ms}`] ?? { count: 0, errors: 0 };
      let value: number | null = null;
      let breached = false;
      let summary = "";
      switch (rule.kind) {
        case "error_rate":
          value = t.count > 0 ? (t.errors / t.count) * 100 : null;
          breached = value !== null && value > rule.threshold;
          summary = `error rate ${fmt(value)}% over ${window} (threshold ${rule.threshold}%)`;
          break;
        case "latency_p95":
        case "latency_p99": {
          const q = rule.kind === "latency_p95" ? 0.95 : 0.99;
          value = latencyOf.get(ms)?.get(service.id)?.quantile(q) ?? null;
          breached = value !== null && value > rule.threshold;
          summary = `p${rule.kind.slice(-2)} latency ${fmt(value)} ms over ${window} ` +
            `(threshold ${rule.threshold} ms)`;
          break;
        }
        case "no_traffic": {
          const pre = totals.get(service.id)?.[`pre${ms}`]?.count ?? 0;
          const named = rule.services.includes(service.name);
          value = t.count;
          breached = t.count === 0 && (named || pre > 0);
          summary = `no events for ${window}`;
          break;
        }
        case "volume_drop": {
          const base = before.get(service.id)?.[`w${ms}`]?.count ?? 0;
          value = base > 0 ? t.count / base : null;
          breached = value !== null && value < rule.threshold;
          summary =
            `${t.count} requests over ${window}, ${fmt(value === null ? null : value * 100)}% ` +
            `of the same window a week earlier (${base}; threshold ${rule.threshold * 100}%)`;
          break;
        }
      }
      out.push({
        key: { serviceId: service.id, source: "rule", sourceId: rule.id, alertKey: "" },
        service,
        breached,
        value,
        forMs: rule.forS * 1000,
        severity: rule.severity,
        name: rule.name,
        summary,
        labels: { ...rule.labels, rule: rule.name, kind: rule.kind },
        channels: rule.channels,
      });
    }
  }
  return out;
}

export interface SloStatus {
  /** Percent of good events over the period; null without events. */
  sli: number | null;
  objective: number;
  /** 1 − (bad share ÷ allowed share) over the period: 1 untouched, ≤ 0 spent. */
  errorBudgetRemaining: number | null;
  burnRates: Record<string, number>;
  /** The alerts whose condition holds now: "page", "ticket". */
  alerting: ("page" | "ticket")[];
}

export async function sloStatuses(
  sql: Sql,
  slos: readonly SloDef[],
  services: readonly WatchedService[],
  now: Date,
): Promise<Map<number, SloStatus>> {
  const out = new Map<number, SloStatus>();
  if (slos.length === 0) return out;
  const idOf = new Map(services.map((s) => [s.name, s.id]));
  const windows: Record<string, number> = { ...BURN_WINDOWS };
  for (const s of slos) windows[`p${s.periodDays}`] = s.periodDays * DAY_MS;
  const latency = slos.filter((s) => s.indicator === "latency" && idOf.has(s.serviceName));
  // Latency SLOs in batches holding at most one per service (usually one batch), each batch
  // one statement per tier.
  const batches: SloDef[][] = [];
  for (const slo of latency) {
    const free = batches.find((b) => !b.some((x) => x.serviceName === slo.serviceName));
    if (free) free.push(slo);
    else batches.push([slo]);
  }
  const [totals, ...slow] = await Promise.all([
    totalsByWindow(sql, windows, now),
    ...batches.map((b) =>
      slowByService(
        sql,
        windows,
        now,
        new Map(b.map((s) => [idOf.get(s.serviceName)!, s.latencyThresholdMs!])),
      )
    ),
  ]);
  const slowOf = new Map(batches.flatMap((b, i) => b.map((s) => [s.id, slow[i]] as const)));
  for (const slo of slos) {
    const id = idOf.get(slo.serviceName);
    const per = id === undefined ? undefined : totals.get(id);
    const allowed = 1 - slo.objective / 100;
    const bad = (name: string) =>
      slo.indicator === "availability"
        ? per?.[name]?.errors ?? 0
        : (id === undefined ? 0 : slowOf.get(slo.id)?.get(id)?.[name] ?? 0);
    const share = (name: string) => {
      const n = per?.[name]?.count ?? 0;
      return n > 0 ? bad(name) / n : null;
    };
    const burnRates: Record<string, number> = {};
    for (const w of Object.keys(BURN_WINDOWS)) burnRates[w] = (share(w) ?? 0) / allowed;
    const period = share(`p${slo.periodDays}`);
    const alerting: ("page" | "ticket")[] = [];
    for (
      const [severity, pairs] of Object.entries(BURN_POLICY) as [
        "page" | "ticket",
        readonly (readonly [string, string, number])[],
      ][]
    ) {
      if (pairs.some(([l, s, f]) => burnRates[l] > f && burnRates[s] > f)) alerting.push(severity);
    }
    out.set(slo.id, {
      sli: period === null ? null : (1 - period) * 100,
      objective: slo.objective,
      errorBudgetRemaining: period === null ? null : 1 - period / allowed,
      burnRates,
      alerting,
    });
  }
  return out;
}

/** The SLO alerts (page, ticket) as observations. */
export function sloObservations(
  slos: readonly SloDef[],
  statuses: ReadonlyMap<number, SloStatus>,
  services: readonly WatchedService[],
): Observation[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const out: Observation[] = [];
  for (const slo of slos) {
    const service = byName.get(slo.serviceName);
    const st = statuses.get(slo.id);
    if (!service || !st) continue;
    for (const severity of ["page", "ticket"] as const) {
      const [long] = BURN_POLICY[severity][0];
      const crossing = BURN_POLICY[severity].find(([l, s, f]) =>
        st.burnRates[l] > f && st.burnRates[s] > f
      );
      const value = st.burnRates[crossing?.[0] ?? long];
      out.push({
        key: { serviceId: service.id, source: "slo", sourceId: slo.id, alertKey: severity },
        service,
        breached: st.alerting.includes(severity),
        value,
        forMs: 0,
        severity,
        name: slo.name,
        summary: `${slo.indicator} SLO ${slo.objective}%: error budget burning ` +
          `${fmt(value)}× over ${crossing?.[0] ?? long}` +
          (st.errorBudgetRemaining === null
            ? ""
            : `, ${fmt(st.errorBudgetRemaining * 100)}% of the budget left`),
        labels: { slo: slo.name, indicator: slo.indicator },
        channels: [],
      });
    }
  }
  return out;
}

function fmt(v: number | null): string {
  return v === null ? "–" : String(Number(v.toPrecision(4)));
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}
