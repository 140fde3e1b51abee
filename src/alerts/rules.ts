// Alert rules (sql/019_alerts.sql alert_rules): a condition on the rollups of each service a rule
// covers (its services, the services its teams own, or, with neither, every service), routed to
// its channels. Validation names the field; every change writes its audit row in the same
// transaction. The evaluator reads them with listRules.
import type { Sql, Tx } from "../db/connect.ts";
import { type FieldError, InvalidInputError, NotFoundError } from "../errors.ts";
import { type AuditOrigin, recordAudit } from "../access/audit.ts";
import { missingChannels } from "./channels.ts";
import { formatDuration } from "./duration.ts";

export const RULE_KINDS = [
  "error_rate",
  "latency_p95",
  "latency_p99",
  "no_traffic",
  "volume_drop",
] as const;
export type RuleKind = typeof RULE_KINDS[number];
export const SEVERITIES = ["page", "ticket", "info"] as const;
export type Severity = typeof SEVERITIES[number];

export const WINDOW_MIN_S = 60;
export const WINDOW_MAX_S = 86_400;
export const FOR_MAX_S = 86_400;
/** Longest latency threshold: an hour, in ms. */
export const LATENCY_MAX_MS = 3_600_000;
export const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** Labels the evaluator sets on every alert itself. */
export const RESERVED_LABELS = ["alertname", "service", "team", "severity", "rule_id"] as const;

/** A rule as the evaluator uses it. */
export interface Rule {
  id: number;
  name: string;
  /** Service names; with teams, both empty: every service. */
  services: string[];
  /** Team names (services.team_owner): every service each owns. */
  teams: string[];
  kind: RuleKind;
  /**
   * error_rate: % of 5xx (0-100); latency_p95/p99: ms (> 0); no_traffic: 0 (unused);
   * volume_drop: fraction (0-1] of the requests of the same window a week earlier.
   */
  threshold: number;
  windowS: number;
  forS: number;
  severity: Severity;
  /** Channel names; empty: the owning team's channel, else ALERT_DEFAULT_CHANNEL. */
  channels: string[];
  labels: Record<string, string>;
}

export interface RuleInput {
  name: string;
  services?: string[];
  teams?: string[];
  kind: RuleKind;
  threshold: number;
  windowS: number;
  forS: number;
  severity: Severity;
  channels?: string[];
  labels?: Record<string, string>;
}

/** A rule as the API answers it. */
export interface RuleOut {
  id: number;
  name: string;
  services: string[];
  teams: string[];
  kind: RuleKind;
  threshold: number;
  window: string;
  window_s: number;
  for: string;
  for_s: number;
  severity: Severity;
  channels: string[];
  labels: Record<string, string>;
  created_at: string;
  updated_at: string;
}

interface RuleRow extends Rule {
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = `id::float8 as id, name, services, teams, kind, threshold, window_s as "windowS",
  for_s as "forS", severity, channels, labels, created_at, updated_at`;

export const ruleOut = (r: RuleRow): RuleOut => ({
  id: r.id,
  name: r.name,
  services: r.services,
  teams: r.teams,
  kind: r.kind,
  threshold: r.threshold,
  window: formatDuration(r.windowS),
  window_s: r.windowS,
  for: formatDuration(r.forS),
  for_s: r.forS,
  severity: r.severity,
  channels: r.channels,
  labels: r.labels,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

const toRule = ({ created_at: _c, updated_at: _u, ...rule }: RuleRow): Rule => rule;

/** Every rule, by id: for the evaluator. */
export async function listRules(sql: Sql | Tx): Promise<Rule[]> {
  const rows = await sql<RuleRow[]>`
    select ${sql.unsafe(COLUMNS)} from alert_rules order by id`;
  return rows.map(toRule);
}

/** Every rule as the API answers it, by id. */
export async function listRulesOut(sql: Sql): Promise<RuleOut[]> {
  const rows = await sql<RuleRow[]>`select ${sql.unsafe(COLUMNS)} from alert_rules order by id`;
  return rows.map(ruleOut);
}

export async function getRule(sql: Sql | Tx, id: number): Promise<RuleOut | null> {
  const [row] = await sql<RuleRow[]>`
    select ${sql.unsafe(COLUMNS)} from alert_rules where id = ${id}`;
  return row ? ruleOut(row) : null;
}

/** What is wrong with a rule that a schema of its fields alone cannot say. */
export function ruleProblems(input: RuleInput): FieldError[] {
  const errors: FieldError[] = [];
  const t = input.threshold;
  const bad = (message: string) => errors.push({ field: "threshold", message });
  if (!Number.isFinite(t)) bad("must be a number");
  else if (input.kind === "error_rate" && !(t >= 0 && t <= 100)) {
    bad("error_rate: a percentage of 5xx responses, from 0 to 100");
  } else if (
    (input.kind === "latency_p95" || input.kind === "latency_p99") &&
    !(t > 0 && t <= LATENCY_MAX_MS)
  ) {
    bad(`${input.kind}: milliseconds, above 0 and at most ${LATENCY_MAX_MS}`);
  } else if (input.kind === "no_traffic" && t !== 0) {
    bad("no_traffic: must be 0 (the rule fires when a service sends nothing for `window`)");
  } else if (input.kind === "volume_drop" && !(t > 0 && t <= 1)) {
    bad("volume_drop: a fraction above 0 and at most 1 of the same window a week earlier");
  }
  if (!(input.windowS >= WINDOW_MIN_S && input.windowS <= WINDOW_MAX_S)) {
    errors.push({ field: "window", message: "must be from 1m to 24h" });
  }
  if (!(input.forS >= 0 && input.forS <= FOR_MAX_S)) {
    errors.push({ field: "for", message: "must be from 0s to 24h" });
  }
  for (const key of Object.keys(input.labels ?? {})) {
    if (!LABEL_NAME.test(key)) {
      errors.push({
        field: `labels.${key}`,
        message: "label names are 1-63 letters, digits and _, not starting with a digit",
      });
    } else if ((RESERVED_LABELS as readonly string[]).includes(key)) {
      errors.push({ field: `labels.${key}`, message: "is set on every alert by Observian" });
    }
  }
  return errors;
}

/** Checks the names a rule refers to (services, channels) inside the writing transaction. */
async function referenceProblems(tx: Tx, input: RuleInput): Promise<FieldError[]> {
  const errors: FieldError[] = [];
  const services = input.services ?? [];
  if (services.length > 0) {
    const rows = await tx<{ name: string }[]>`
      select name from services
      where name in (select jsonb_array_elements_text(${JSON.stringify(services)}::text::jsonb))`;
    const known = new Set(rows.map((r) => r.name));
    services.forEach((s, i) => {
      if (!known.has(s)) errors.push({ field: `services[${i}]`, message: `no service "${s}"` });
    });
  }
  for (const { index, name } of await missingChannels(tx, input.channels ?? [])) {
    errors.push({ field: `channels[${index}]`, message: `no channel named "${name}"` });
  }
  return errors;
}

/** Validates `input`, all of it, before anything is written. */
async function validated(tx: Tx, input: RuleInput): Promise<void> {
  // Shared with other rule writes, exclusive with a channel's delete (channels.ts).
  await tx`select pg_advisory_xact_lock_shared(hashtext('observian.alert_channels'))`;
  const errors = [...ruleProblems(input), ...await referenceProblems(tx, input)];
  if (errors.length > 0) throw new InvalidInputError(errors, "malformed");
}

const uniq = (xs: readonly string[] | undefined) => [...new Set(xs ?? [])];

function values(input: RuleInput) {
  return {
    services: JSON.stringify(uniq(input.services)),
    teams: JSON.stringify(uniq(input.teams)),
    channels: JSON.stringify(uniq(input.channels)),
    labels: JSON.stringify(input.labels ?? {}),
  };
}

const auditDetail = (r: RuleOut) => ({
  name: r.name,
  services: r.services,
  teams: r.teams,
  kind: r.kind,
  threshold: r.threshold,
  window: r.window,
  for: r.for,
  severity: r.severity,
  channels: r.channels,
  labels: r.labels,
});

export async function createRule(
  sql: Sql,
  input: RuleInput,
  origin: AuditOrigin,
): Promise<RuleOut> {
  return await sql.begin(async (tx) => {
    await validated(tx, input);
    const v = values(input);
    const [row] = await tx<RuleRow[]>`
      insert into alert_rules (name, services, teams, kind, threshold, window_s, for_s, severity,
                               channels, labels)
      values (${input.name}, ${v.services}::text::jsonb, ${v.teams}::text::jsonb, ${input.kind},
              ${input.threshold}, ${input.windowS}, ${input.forS}, ${input.severity},
              ${v.channels}::text::jsonb, ${v.labels}::text::jsonb)
      returning ${tx.unsafe(COLUMNS)}`;
    const rule = ruleOut(row);
    await recordAudit(tx, origin, {
      action: "alert_rule.create",
      target: `alert_rule#${rule.id}`,
      detail: auditDetail(rule),
    });
    return rule;
  });
}

/** Replaces a rule's definition (its alerts' state is the evaluator's); 404 when there is none. */
export async function updateRule(
  sql: Sql,
  id: number,
  input: RuleInput,
  origin: AuditOrigin,
): Promise<RuleOut> {
  return await sql.begin(async (tx) => {
    const before = await getRule(tx, id);
    if (!before) throw new NotFoundError(`no alert rule with id ${id}`);
    await validated(tx, input);
    const v = values(input);
    const [row] = await tx<RuleRow[]>`
      update alert_rules set
        name = ${input.name}, services = ${v.services}::text::jsonb,
        teams = ${v.teams}::text::jsonb, kind = ${input.kind}, threshold = ${input.threshold},
        window_s = ${input.windowS}, for_s = ${input.forS}, severity = ${input.severity},
        channels = ${v.channels}::text::jsonb, labels = ${v.labels}::text::jsonb,
        updated_at = now()
      where id = ${id}
      returning ${tx.unsafe(COLUMNS)}`;
    if (!row) throw new NotFoundError(`no alert rule with id ${id}`);
    const rule = ruleOut(row);
    await recordAudit(tx, origin, {
      action: "alert_rule.update",
      target: `alert_rule#${id}`,
      detail: { ...auditDetail(rule), before: auditDetail(before) },
    });
    return rule;
  });
}

/** Deletes a rule and its alerts' state; 404 when there is none. */
export async function deleteRule(sql: Sql, id: number, origin: AuditOrigin): Promise<void> {
  await sql.begin(async (tx) => {
    const [row] = await tx<RuleRow[]>`
      delete from alert_rules where id = ${id} returning ${tx.unsafe(COLUMNS)}`;
    if (!row) throw new NotFoundError(`no alert rule with id ${id}`);
    // No foreign key from alerts (it holds rules' and SLOs' state alike): removed here.
    await tx`delete from alerts where source = 'rule' and source_id = ${id}`;
    await recordAudit(tx, origin, {
      action: "alert_rule.delete",
      target: `alert_rule#${id}`,
      detail: auditDetail(ruleOut(row)),
    });
  });
}
