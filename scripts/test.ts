// `deno task test`: runs the suite against DATABASE_URL when set, otherwise against an
// embedded PostgreSQL that this script starts in a temporary folder and removes afterwards.
// Test files create their own databases (see tests/helpers/db.ts), so they run in parallel.
import postgres from "postgres";
import { startEmbeddedPostgres } from "../src/db/embedded.ts";
import { configureLogging } from "../src/logging.ts";

await configureLogging({ level: "warning", format: "pretty" });

const external = Deno.env.get("DATABASE_URL");
let adminUrl = external;
let tmp: string | undefined;
let stopEmbedded = async () => {};
if (!adminUrl) {
  tmp = await Deno.makeTempDir({ prefix: "observian-test-" });
  await Deno.chmod(tmp, 0o755); // the postgres user must enter it when we run as root
  const started = performance.now();
  const pg = await startEmbeddedPostgres({ dataDir: tmp, ephemeral: true });
  console.error(
    `test database: embedded PostgreSQL on port ${pg.port} (${
      Math.round(performance.now() - started)
    } ms)`,
  );
  adminUrl = pg.url;
  stopEmbedded = pg.stop;
} else {
  console.error("test database: DATABASE_URL");
}

const args = Deno.args.length > 0 ? Deno.args : ["tests/"];
let code = 1;
try {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "--unstable-cron", "--parallel", ...args],
    env: { OBSERVIAN_TEST_ADMIN_URL: adminUrl, DATABASE_URL: "" },
    stdin: "null",
  }).spawn();
  code = (await child.status).code;
} finally {
  if (external) await dropTestDatabases(external);
  await stopEmbedded();
  if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
Deno.exit(code);

/** On a shared server, leave nothing behind. */
async function dropTestDatabases(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ datname: string }[]>`
      select datname from pg_database where datname like 'observian_t_%'`;
    for (const { datname } of rows) {
      await sql`drop database if exists ${sql(datname)} with (force)`;
    }
  } finally {
    await sql.end();
  }
}
