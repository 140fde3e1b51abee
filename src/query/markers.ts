// Markers in a time range, oldest first, for charts (GET /markers and /logs/summary's markers).
import type { PendingQuery } from "postgres";
import type { Sql } from "../db/connect.ts";

export const MARKERS_LIMIT = 1000;

export interface Marker {
  service_name: string;
  time: string;
  kind: "deployment" | "release";
  title: string;
  url: string | null;
}

export interface MarkersQuery {
  /** Absent: every service; empty: none (an empty scope). */
  services?: readonly string[];
  /** Inclusive. */
  start?: string;
  end?: string;
  /** The summary's window ends before `end`; GET /markers includes it. */
  endExclusive?: boolean;
}

/**
 * The query itself, not its rows, so that a caller may send it inside its own bounded
 * transaction (the summary does: one more statement on a connection it already holds).
 */
export function listMarkers(sql: Sql, q: MarkersQuery): PendingQuery<Marker[]> {
  return sql<Marker[]>`
    select s.name as service_name,
           to_char(m.at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as time,
           m.kind, m.title, m.url
      from markers m join services s on s.id = m.service_id
     where true
       ${
    q.services
      ? sql`and s.name in (select jsonb_array_elements_text(${
        JSON.stringify(q.services)
      }::text::jsonb))`
      : sql``
  }
       ${q.start === undefined ? sql`` : sql`and m.at >= ${q.start}::text::timestamptz`}
       ${
    q.end === undefined
      ? sql``
      : q.endExclusive
      ? sql`and m.at < ${q.end}::text::timestamptz`
      : sql`and m.at <= ${q.end}::text::timestamptz`
  }
     order by m.at, m.id
     limit ${MARKERS_LIMIT}`;
}
