// Synthetic events for the ingest benchmarks, as API JSON and as COPY text rows.
import { copyIn } from "../../synthetic-events.ts";
import { Buffer } from "node:buffer";
import { Readable } from "node:stream";
import type postgres from "postgres";

export interface BenchEvent {
  service_name: string;
  status_code: number;
  latency_ms: number;
  event_type: string | null;
  timestamp: string;
  message: string | null;
  attributes: Record<string, unknown> | null;
}

export const BENCH_SERVICES = Array.from(
  { length: 50 },
  (_, i) => `svc-${String(i).padStart(2, "0")}`,
);
const TYPES = ["http.request", "http.request", "db.query", "cache.miss", null, null];

export function makeEvents(n: number, now = Date.now()): BenchEvent[] {
  return Array.from({ length: n }, (_, i) => {
    const r = Math.random();
    const status = r < 0.03 ? 503 : r < 0.08 ? 404 : r < 0.12 ? 201 : 200;
    return {
      service_name: BENCH_SERVICES[Math.floor(Math.random() * BENCH_SERVICES.length)],
      status_code: status,
      latency_ms: Math.round(Math.exp(3 + Math.random() * 2) * 100) / 100,
      event_type: TYPES[i % TYPES.length],
      // Inside every retention window and today's partition (or yesterday's, just after 00:00).
      timestamp: new Date(now - Math.random() * 10 * 60_000).toISOString(),
      message: status >= 500 ? "upstream timed out" : null,
      attributes: i % 5 === 0 ? { region: "eu-west-1", attempt: 1 } : null,
    };
  });
}

const escapeCopy = (s: string) =>
  s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r");

/** COPY text rows for log_events (service_id, timestamp, …) with service ids resolved. */
export function copyRows(events: BenchEvent[], serviceIds: Map<string, number>): Buffer {
  const text = events.map((e) =>
    [
      serviceIds.get(e.service_name),
      e.timestamp,
      e.status_code,
      e.event_type === null ? "\\N" : escapeCopy(e.event_type),
      e.latency_ms,
      e.message === null ? "\\N" : escapeCopy(e.message),
      e.attributes === null ? "\\N" : escapeCopy(JSON.stringify(e.attributes)),
    ].join("\t") + "\n"
  ).join("");
  return Buffer.from(text);
}

/** One COPY (its own transaction) of pre-built rows into log_events. */
export async function copyBatch(sql: postgres.Sql, rows: Buffer): Promise<void> {
  await copyIn(sql, Readable.from([rows]));
}

/** Registers the benchmark services and returns their ids by name. */
export async function registerServices(sql: postgres.Sql): Promise<Map<string, number>> {
  await sql`
    insert into services (name) select unnest(${BENCH_SERVICES}::text[])
    on conflict (name) do nothing`;
  const rows = await sql<{ id: number; name: string }[]>`
    select id, name from services where name = any(${BENCH_SERVICES}::text[])`;
  return new Map(rows.map((r) => [r.name, r.id]));
}

export async function countEvents(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ n: string }[]>`select count(*) as n from log_events`;
  return Number(row.n);
}
