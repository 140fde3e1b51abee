// Service level objectives (sql/019_alerts.sql slos): an availability or latency objective of one
// service over 28 or 30 days. The evaluator computes their SLI, budget and burn rates from the
// rollups (listSlos); here, the definitions, each change with its audit row.
import type { Sql, Tx } from "../db/connect.ts";
import { ConflictError, type FieldError, InvalidInputError, NotFoundError } from "../errors.ts";
import { type AuditOrigin, recordAudit } from "../access/audit.ts";

export const SLO_INDICATORS = ["availability", "latency"] as const;
export type SloIndicator = typeof SLO_INDICATORS[number];
export const SLO_PERIODS = [28, 30] as const;
export const LATENCY_THRESHOLD_MAX_MS = 3_600_000;

/** An SLO as the evaluator uses it. */
export interface Slo {
  id: number;
  serviceId: number;
  serviceName: string;
  name: string;
  /** Percent, above 0 and below 100 (99.9). */
  objective: number;
  periodDays: 28 | 30;
  indicator: SloIndicator;
  /** latency only: an event is good when faster than this. */
  latencyThresholdMs: number | null;
}

export interface SloInput {
  service: string;
  name: string;
  objective: number;
  periodDays: number;
  indicator: SloIndicator;
  latencyThresholdMs?: number | null;
}

/** An SLO's definition as the API answers it. */
export interface SloOut {
  id: number;
  service: string;
  team: string | null;
  name: string;
  objective: number;
  period_days: 28 | 30;
  indicator: SloIndicator;
  latency_threshold_ms: number | null;
  created_at: string;
  updated_at: string;
}

interface SloRow extends Slo {
  team: string | null;
  created_at: Date;
  updated_at: Date;
}

const SELECT = `
  select o.id::float8 as id, o.service_id as "serviceId", s.name as "serviceName",
         s.team_owner as team, o.name, o.objective, o.period_days as "periodDays", o.indicator,
         o.latency_threshold_ms as "latencyThresholdMs", o.created_at, o.updated_at
  from slos o join services s on s.id = o.service_id`;

const sloOut = (r: SloRow): SloOut => ({
  id: r.id,
  service: r.serviceName,
  team: r.team,
  name: r.name,
  objective: r.objective,
  period_days: r.periodDays,
  indicator: r.indicator,
  latency_threshold_ms: r.latencyThresholdMs,
  created_at: r.created_at.toISOString(),
  updated_at: r.updated_at.toISOString(),
});

const toSlo = (
  { team: _t, created_at: _c, updated_at: _u, ...slo }: SloRow,
): Slo => slo;

/** Every SLO, by id: for the evaluator. */
export async function listSlos(sql: Sql | Tx): Promise<Slo[]> {
  const rows = await sql<SloRow[]>`${sql.unsafe(SELECT)} order by o.id`;
  return rows.map(toSlo);
}

/** Every SLO's definition as the API answers it, by service and name. */
export async function listSlosOut(sql: Sql): Promise<SloOut[]> {
  const rows = await sql<SloRow[]>`${sql.unsafe(SELECT)} order by s.name, o.name`;
  return rows.map(sloOut);
}

export async function getSlo(sql: Sql | Tx, id: number): Promise<SloOut | null> {
  const [row] = await sql<SloRow[]>`${sql.unsafe(SELECT)} where o.id = ${id}`;
  return row ? sloOut(row) : null;
}

/** What is wrong with an SLO that a schema of its fields alone cannot say. */
export function sloProblems(input: SloInput): FieldError[] {
  const errors: FieldError[] = [];
  if (!(input.objective > 0 && input.objective < 100)) {
    errors.push({ field: "objective", message: "must be a percentage above 0 and below 100" });
  }
  if (!(SLO_PERIODS as readonly number[]).includes(input.periodDays)) {
    errors.push({ field: "period_days", message: "must be 28 or 30" });
  }
  const t = input.latencyThresholdMs ?? null;
  if (input.indicator === "latency") {
    if (t === null) {
      errors.push({ field: "latency_threshold_ms", message: "a latency SLO needs it" });
    } else if (!(t > 0 && t <= LATENCY_THRESHOLD_MAX_MS)) {
      errors.push({
        field: "latency_threshold_ms",
        message: `must be above 0 and at most ${LATENCY_THRESHOLD_MAX_MS}`,
      });
    }
  } else if (t !== null) {
    errors.push({
      field: "latency_threshold_ms",
      message: "only a latency SLO has one (availability counts non-5xx events)",
    });
  }
  return errors;
}

export async function createSlo(sql: Sql, input: SloInput, origin: AuditOrigin): Promise<SloOut> {
  const errors = sloProblems(input);
  if (errors.length > 0) throw new InvalidInputError(errors, "malformed");
  return await sql.begin(async (tx) => {
    const [service] = await tx<{ id: number }[]>`
      select id from services where name = ${input.service}`;
    if (!service) {
      throw new InvalidInputError(
        [{ field: "service", message: `no service "${input.service}"` }],
        "malformed",
      );
    }
    const [row] = await tx<{ id: number }[]>`
      insert into slos (service_id, name, objective, period_days, indicator, latency_threshold_ms)
      values (${service.id}, ${input.name}, ${input.objective}, ${input.periodDays},
              ${input.indicator}, ${input.latencyThresholdMs ?? null})
      on conflict (service_id, name) do nothing
      returning id::float8 as id`;
    if (!row) {
      throw new ConflictError(
        `service "${input.service}" has an SLO named "${input.name}" already`,
      );
    }
    const slo = (await getSlo(tx, row.id))!;
    await recordAudit(tx, origin, {
      action: "slo.create",
      target: `slo#${row.id}`,
      detail: definition(slo),
    });
    return slo;
  });
}

const definition = (s: SloOut) => ({
  service: s.service,
  name: s.name,
  objective: s.objective,
  period_days: s.period_days,
  indicator: s.indicator,
  latency_threshold_ms: s.latency_threshold_ms,
});

/** Deletes an SLO and its alerts' state; 404 when there is none. */
export async function deleteSlo(sql: Sql, id: number, origin: AuditOrigin): Promise<void> {
  await sql.begin(async (tx) => {
    const slo = await getSlo(tx, id);
    if (!slo) throw new NotFoundError(`no SLO with id ${id}`);
    await tx`delete from slos where id = ${id}`;
    await tx`delete from alerts where source = 'slo' and source_id = ${id}`;
    await recordAudit(tx, origin, {
      action: "slo.delete",
      target: `slo#${id}`,
      detail: definition(slo),
    });
  });
}
