// The request context type every route module receives: the app's dependencies with defaults
// filled in. Here rather than in app.ts, which builds it and imports the routes.
import type { Config } from "../config.ts";
import type { Db } from "../db/connect.ts";
import type { IngestAdmission } from "../ingest/admission.ts";
import type { EventWriter } from "../ingest/writer.ts";
import type { Metrics } from "../metrics/registry.ts";
import type { LiveHub } from "../live/hub.ts";
import type { Access } from "./middleware/auth.ts";

export interface AppContext {
  sql: Db;
  health: Db;
  embeddedUp?: () => boolean;
  config: Config;
  writer: EventWriter;
  admission: IngestAdmission;
  metrics: Metrics;
  liveHub: LiveHub;
  access: Access;
  version: string;
  startedAt: number;
}
