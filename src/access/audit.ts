// The audit log (sql/015_audit_log.sql): one row per change made through the API, written with
// the same handle (transaction) as the change, so both commit or neither; one row per refusal
// on an admin route, bounded so that a flood of refusals cannot tie up the database; read back
// newest first by GET /audit; kept AUDIT_RETENTION_DAYS by the pruner. Knows nothing of HTTP:
// the caller says who, from where and in which request.
import { bounded } from "../time.ts";
import type { Sql, Tx } from "../db/connect.ts";
import { logger } from "../logging.ts";
import { type Cursor, encodeCursor } from "../query/logs.ts";

/** Who made a change and through which request. */
export interface AuditOrigin {
  /** "key#12", "api-key#1", "user:octocat" or "anonymous": never a token. */
  actor: string;
  clientAddr?: string | null;
  requestId?: string | null;
}

export interface AuditEntry {
  /** What happened: "key.create", "key.revoke", "service.update", "job.toggle", … */
  action: string;
  /** What it happened to: "key#12", "service:checkout-service", "job:pruner", … */
  target?: string | null;
  /** Figures worth keeping (a prune's days and rows removed, a new role); never secrets. */
  detail?: Record<string, unknown>;
}

/** Records one entry; pass the transaction of the change it describes. */
export async function recordAudit(
  sql: Sql | Tx,
  origin: AuditOrigin,
  entry: AuditEntry,
): Promise<void> {
  await sql`
    insert into audit_log (actor, action, target, detail, client_addr, request_id)
    values (${origin.actor}, ${entry.action}, ${entry.target ?? null},
            ${JSON.stringify(entry.detail ?? {})}::text::jsonb, ${origin.clientAddr ?? null},
            ${origin.requestId ?? null})`;
}

export interface RefusalLogOptions {
  /** Refusals recorded per second and instance; the rest are counted as dropped. */
  perSecond?: number;
  /** Inserts in flight at once, so that refusals never hold more of the pool than this. */
  maxInFlight?: number;
  /** statement_timeout of the insert, and the longest a refusal waits for it. */
  timeoutMs?: number;
}

export type DropReason = "rate" | "error";

/**
 * Records refusals (401/403) on admin routes without letting a flood of them hurt: at most
 * `perSecond` a second and `maxInFlight` at once per instance, each insert under a short
 * statement_timeout; a refusal waits for its row at most `timeoutMs`. What is not recorded is
 * counted (`onDropped`) and failures are logged, never thrown: a refusal is answered either way.
 */
export class RefusalLog {
  #window = 0;
  #inWindow = 0;
  #inFlight = 0;
  readonly perSecond: number;
  readonly maxInFlight: number;
  readonly timeoutMs: number;
  /** Told of each refusal not recorded (a metric). */
  onDropped: (reason: DropReason) => void = () => {};

  constructor(private readonly sql: Sql, opts: RefusalLogOptions = {}) {
    this.perSecond = opts.perSecond ?? 50;
    this.maxInFlight = opts.maxInFlight ?? 4;
    this.timeoutMs = opts.timeoutMs ?? 500;
  }

  async record(origin: AuditOrigin, entry: AuditEntry): Promise<void> {
    const now = Date.now();
    if (now - this.#window >= 1000) {
      this.#window = now;
      this.#inWindow = 0;
    }
    if (this.#inWindow >= this.perSecond || this.#inFlight >= this.maxInFlight) {
      this.onDropped("rate");
      return;
    }
    this.#inWindow++;
    this.#inFlight++;
    const write = this.sql.begin(async (tx) => {
      await tx`select set_config('statement_timeout', ${String(this.timeoutMs)}, true)`;
      await recordAudit(tx, origin, entry);
    }).catch((err) => {
      this.onDropped("error");
      logger("access", "audit").warning("refusal of {target} not recorded: {error}", {
        target: entry.target ?? "",
        error: err instanceof Error ? err.message : String(err),
      });
    }).finally(() => this.#inFlight--);
    // The refusal is answered once its row is written or timeoutMs have passed.
    await bounded(write, this.timeoutMs).catch(() => {});
  }
}

/** One row as GET /audit answers it. */
export interface AuditRecord {
  id: number;
  /** UTC, to the microsecond. */
  at: string;
  actor: string;
  action: string;
  target: string | null;
  detail: Record<string, unknown>;
  client_addr: string | null;
  request_id: string | null;
}

export interface AuditQuery {
  /** Inclusive bounds, UTC ISO text to the microsecond. */
  start?: string;
  end?: string;
  action?: string;
  actor?: string;
  limit: number;
  /** Where the previous page ended: (at, id) of its last row. */
  cursor?: Cursor;
}

export interface AuditPage {
  entries: AuditRecord[];
  nextCursor: string | null;
}

/** A page of entries, newest first by (at, id) (index audit_log_at_id). */
export async function listAudit(sql: Sql, q: AuditQuery): Promise<AuditPage> {
  // Times go in as text: a timestamptz parameter passes through a JS Date and would lose its
  // microseconds, so a cursor would skip or repeat rows.
  const rows = await sql<(Omit<AuditRecord, "id"> & { id: string })[]>`
    select id::text, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at,
           actor, action, target, detail, client_addr, request_id
    from audit_log
    where true
      ${q.start === undefined ? sql`` : sql`and at >= ${q.start}::text::timestamptz`}
      ${q.end === undefined ? sql`` : sql`and at <= ${q.end}::text::timestamptz`}
      ${q.action === undefined ? sql`` : sql`and action = ${q.action}`}
      ${q.actor === undefined ? sql`` : sql`and actor = ${q.actor}`}
      ${
    q.cursor === undefined
      ? sql``
      : sql`and (at, id) < (${q.cursor.ts}::text::timestamptz, ${q.cursor.id}::text::bigint)`
  }
    order by at desc, id desc
    limit ${q.limit + 1}`;
  const page = rows.slice(0, q.limit).map((r) => ({ ...r, id: Number(r.id) }));
  const last = page[page.length - 1];
  return {
    entries: page,
    nextCursor: rows.length > q.limit ? encodeCursor({ ts: last.at, id: String(last.id) }) : null,
  };
}

/** Rows deleted per statement, so that a large backlog never holds one long transaction. */
const PRUNE_BATCH = 10_000;

/** Deletes entries older than `before`; returns how many. */
export async function pruneAudit(sql: Sql, before: Date): Promise<number> {
  let total = 0;
  for (;;) {
    const { count } = await sql`
      delete from audit_log where id in (
        select id from audit_log where at < ${before} limit ${PRUNE_BATCH})`;
    total += count;
    if (count < PRUNE_BATCH) return total;
  }
}

/** How many entries pruneAudit would delete (a dry run). */
export async function countOldAudit(sql: Sql, before: Date): Promise<number> {
  const [r] = await sql<{ n: string }[]>`select count(*) as n from audit_log where at < ${before}`;
  return Number(r.n);
}
