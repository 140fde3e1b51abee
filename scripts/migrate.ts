// `deno task migrate`: apply migrations (and partition upkeep, seeding) without serving.
import { ConfigError, parseConfig } from "../src/config.ts";
import { openDatabase, prepareSchema } from "../src/db/bootstrap.ts";
import { configureLogging } from "../src/logging.ts";

try {
  const config = parseConfig(Deno.env.toObject(), { stdoutIsTerminal: Deno.stdout.isTerminal() });
  await configureLogging({ level: config.logLevel, format: config.logFormat });
  const db = await openDatabase(config);
  try {
    await prepareSchema(db.sql, config, { migrate: true });
  } finally {
    await db.close();
  }
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `migrate failed: ${String(err)}`);
  Deno.exit(1);
}
