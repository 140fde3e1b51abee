// The live feed's fan-out: one database listener per instance shared by every subscriber.
import type { Sql } from "../db/connect.ts";

export class LiveHub {
  constructor(readonly sql: Sql) {}

  /** Ends every open stream (shutdown) and stops listening. */
  async close(): Promise<void> {}
}
