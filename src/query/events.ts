// The shape of a stored event as the API returns it, and the columns that produce it.
import type { Fragment } from "postgres";
import type { Sql } from "../db/connect.ts";

/** An event as the API returns it (schema: LogEvent in src/http/schemas/events.ts). */
export interface LogEventOut {
  id: number;
  timestamp: string;
  service_name: string;
  team_owner: string | null;
  status_code: number;
  event_type: string | null;
  latency_ms: number;
  message: string | null;
  attributes: Record<string, unknown> | null;
}

/** A row of eventColumns(): the API's fields, with the id as text and the time as stored. */
export interface EventRow extends Omit<LogEventOut, "id" | "timestamp"> {
  id: string;
  ts: Date;
  /**
   * The exact stored time as fixed-width UTC text to the microsecond
   * (2026-11-28T07:00:00.123456Z), for cursors: PostgreSQL reads it back as the same instant,
   * and it does not depend on the session's TimeZone or DateStyle.
   */
  ts_text: string;
}

/** Select list for `log_events e join services s on s.id = e.service_id`. */
export function eventColumns(sql: Sql): Fragment {
  return sql`e.id, e."timestamp" as ts,
    to_char(e."timestamp" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as ts_text,
    s.name as service_name, s.team_owner, e.status_code, e.event_type, e.latency_ms, e.message,
    e.attributes`;
}

export function toEventOut(r: EventRow): LogEventOut {
  return {
    id: Number(r.id),
    timestamp: r.ts.toISOString(),
    service_name: r.service_name,
    team_owner: r.team_owner,
    status_code: r.status_code,
    event_type: r.event_type,
    latency_ms: r.latency_ms,
    message: r.message,
    attributes: r.attributes,
  };
}
