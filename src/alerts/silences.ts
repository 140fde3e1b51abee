// Silences (sql/019_alerts.sql alert_silences): while one is active (starts_at <= now < ends_at),
// notifications of the alerts its matchers all match are held back; the alerts' state is still
// tracked. Created from now to at most 30 days ahead; "deleted" by expiring them now, so the
// record stays (GET /alerts/silences?all=true).
import type { Sql, Tx } from "../db/connect.ts";
import { type FieldError, InvalidInputError, NotFoundError } from "../errors.ts";
import { type AuditOrigin, recordAudit } from "../access/audit.ts";
import { DAY_MS } from "../time.ts";

export const SILENCE_MAX_DAYS = 30;
export const MAX_COMMENT_CHARS = 1000;

/** Every given matcher must match an alert for the silence to hold its notifications. */
export interface SilenceMatchers {
  /** A service name. */
  service?: string;
  /** A team name (services.team_owner of the alert's service). */
  team?: string;
  /** An alert rule's id (SLO alerts match by service or team only). */
  rule?: number;
}

/** A silence as the evaluator uses it. */
export interface Silence {
  id: number;
  matchers: SilenceMatchers;
  startsAt: Date;
  endsAt: Date;
  comment: string;
}

export interface SilenceOut {
  id: number;
  matchers: SilenceMatchers;
  starts_at: string;
  ends_at: string;
  comment: string;
  created_by: string | null;
  created_at: string;
  active: boolean;
}

export interface SilenceInput {
  matchers: SilenceMatchers;
  endsAt: Date;
  comment: string;
}

interface SilenceRow extends Silence {
  created_by: string | null;
  created_at: Date;
  active: boolean;
}

const COLUMNS = `id::float8 as id, matchers, starts_at as "startsAt", ends_at as "endsAt", comment,
  created_by, created_at, (starts_at <= now() and now() < ends_at) as active`;

const silenceOut = (r: SilenceRow): SilenceOut => ({
  id: r.id,
  matchers: r.matchers,
  starts_at: r.startsAt.toISOString(),
  ends_at: r.endsAt.toISOString(),
  comment: r.comment,
  created_by: r.created_by,
  created_at: r.created_at.toISOString(),
  active: r.active,
});

/** The silences in force at `now`: for the evaluator. */
export async function activeSilences(sql: Sql | Tx, now: Date): Promise<Silence[]> {
  const rows = await sql<SilenceRow[]>`
    select ${sql.unsafe(COLUMNS)} from alert_silences
    where starts_at <= ${now} and ends_at > ${now} order by id`;
  return rows.map(({ created_by: _b, created_at: _c, active: _a, ...s }) => s);
}

/** Active silences (or, with `all`, every one), newest first. */
export async function listSilencesOut(
  sql: Sql,
  opts: { all?: boolean } = {},
): Promise<SilenceOut[]> {
  const rows = await sql<SilenceRow[]>`
    select ${sql.unsafe(COLUMNS)} from alert_silences
    ${opts.all ? sql`` : sql`where starts_at <= now() and now() < ends_at`}
    order by id desc`;
  return rows.map(silenceOut);
}

export async function getSilence(sql: Sql | Tx, id: number): Promise<SilenceOut | null> {
  const [row] = await sql<SilenceRow[]>`
    select ${sql.unsafe(COLUMNS)} from alert_silences where id = ${id}`;
  return row ? silenceOut(row) : null;
}

/** What is wrong with a silence, judged at `now`. */
export function silenceProblems(input: SilenceInput, now: Date): FieldError[] {
  const errors: FieldError[] = [];
  const m = input.matchers;
  if (m.service === undefined && m.team === undefined && m.rule === undefined) {
    errors.push({ field: "matchers", message: "needs at least one of service, team, rule" });
  }
  const end = input.endsAt.getTime();
  if (!(end > now.getTime())) {
    errors.push({ field: "ends_at", message: "must be in the future" });
  } else if (end > now.getTime() + SILENCE_MAX_DAYS * DAY_MS) {
    errors.push({ field: "ends_at", message: `must be at most ${SILENCE_MAX_DAYS} days ahead` });
  }
  if (input.comment.length > MAX_COMMENT_CHARS) {
    errors.push({ field: "comment", message: `must be at most ${MAX_COMMENT_CHARS} characters` });
  }
  return errors;
}

/** Stores a silence (from now) and its audit row; its service and rule must exist. */
export async function createSilence(
  sql: Sql,
  input: SilenceInput,
  origin: AuditOrigin,
): Promise<SilenceOut> {
  return await sql.begin(async (tx) => {
    const [{ now }] = await tx<{ now: Date }[]>`select now()`;
    const errors = silenceProblems(input, now);
    const m = input.matchers;
    if (m.service !== undefined) {
      const [s] = await tx`select 1 from services where name = ${m.service}`;
      if (!s) errors.push({ field: "matchers.service", message: `no service "${m.service}"` });
    }
    if (m.rule !== undefined) {
      const [r] = await tx`select 1 from alert_rules where id = ${m.rule}`;
      if (!r) errors.push({ field: "matchers.rule", message: `no alert rule with id ${m.rule}` });
    }
    if (errors.length > 0) throw new InvalidInputError(errors, "malformed");
    const [row] = await tx<SilenceRow[]>`
      insert into alert_silences (matchers, starts_at, ends_at, comment, created_by)
      values (${JSON.stringify(m)}::text::jsonb, ${now}, ${input.endsAt}, ${input.comment},
              ${origin.actor})
      returning ${tx.unsafe(COLUMNS)}`;
    const silence = silenceOut(row);
    await recordAudit(tx, origin, {
      action: "silence.create",
      target: `silence#${silence.id}`,
      detail: { matchers: m, ends_at: silence.ends_at, comment: silence.comment },
    });
    return silence;
  });
}

/**
 * Ends a silence now and records it; one that has ended already is left as it is (and answered
 * the same). 404 when there is none.
 */
export async function expireSilence(sql: Sql, id: number, origin: AuditOrigin): Promise<void> {
  await sql.begin(async (tx) => {
    const [row] = await tx<{ ends_at: Date }[]>`
      select ends_at from alert_silences where id = ${id} for update`;
    if (!row) throw new NotFoundError(`no silence with id ${id}`);
    const [changed] = await tx<{ ends_at: Date }[]>`
      update alert_silences set ends_at = now() where id = ${id} and ends_at > now()
      returning ends_at`;
    if (!changed) return;
    await recordAudit(tx, origin, {
      action: "silence.expire",
      target: `silence#${id}`,
      detail: { was_ending_at: row.ends_at.toISOString() },
    });
  });
}
