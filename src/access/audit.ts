// The audit log (sql/015_audit_log.sql): one row per change made through the API, written with
// the same handle (transaction) as the change, so both commit or neither. Knows nothing of HTTP:
// the caller says who, from where and in which request.
import type { Sql, Tx } from "../db/connect.ts";

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
