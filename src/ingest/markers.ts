// Stores a marker (a deployment or release) for a service the writer has already registered.
import type { Sql } from "../db/connect.ts";

export interface NewMarker {
  serviceName: string;
  at: Date;
  kind: "deployment" | "release";
  title: string;
  url: string | null;
  /** The GitHub delivery it came from: a redelivery stores nothing new. */
  delivery: string;
}

export async function insertMarker(sql: Sql, m: NewMarker): Promise<void> {
  await sql`
    insert into markers (service_id, at, kind, title, url, delivery)
    select s.id, ${m.at}, ${m.kind}, ${m.title}, ${m.url}, ${m.delivery}
      from services s where s.name = ${m.serviceName}
    on conflict (service_id, delivery) do nothing`;
}
