// `deno task test`: runs the suite against DATABASE_URL when set, otherwise against an
// embedded PostgreSQL that this script starts in a temporary folder and removes afterwards.
// Test files create their own databases (see tests/helpers/db.ts), so they run in parallel;
// the fault suite (tests/faults_test.ts) runs after them on its own.
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

// The fault suite runs its own servers under load and times their recovery: it runs after the
// other files, alone, so that neither disturbs the other. Named files run as given.
// `--budgets` (deno task budgets) runs only the console's browser budgets (tests named
// "[budget] …": first paint, data visible, transfer, long tasks), one file after the other on
// an otherwise idle machine; the suite leaves them out (see README, Console).
const FAULTS = "tests/faults_test.ts";
const BUDGET_FILES = ["tests/console_overview_test.ts", "tests/console_live_test.ts"];
const budgets = Deno.args[0] === "--budgets";
const runs = budgets
  ? BUDGET_FILES.map((f) => ["--filter=/^\\[budget\\]/", f])
  : Deno.args.length > 0
  ? [["--parallel", ...Deno.args]]
  : [["--parallel", `--ignore=${FAULTS}`, "tests/"], [FAULTS]];
let code = 0;
try {
  for (const args of runs) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["test", "--allow-all", "--unstable-cron", "--unstable-no-legacy-abort", ...args],
      env: {
        OBSERVIAN_TEST_ADMIN_URL: adminUrl,
        DATABASE_URL: "",
        ...(budgets ? { OBSERVIAN_BUDGETS: "1" } : {}),
      },
      stdin: "null",
    }).spawn();
    code ||= (await child.status).code;
  }
} finally {
  if (external) await dropTestDatabases(external, "observian_t_%");
  // The fault suite drops its databases itself, unless it was killed.
  const faultUrl = Deno.env.get("OBSERVIAN_FAULT_PG_URL");
  const ranFaults = runs.some((args) => args.some((a) => a.includes("faults_test")));
  if (faultUrl && ranFaults) {
    await dropTestDatabases(faultUrl, "observian_f_%").catch((err) =>
      console.error(`could not drop the fault suite's databases: ${err}`)
    );
  }
  await stopEmbedded();
  if (tmp) await Deno.remove(tmp, { recursive: true }).catch(() => {});
}
Deno.exit(code);

/** On a shared server, leave nothing behind. */
async function dropTestDatabases(url: string, pattern: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql<{ datname: string }[]>`
      select datname from pg_database where datname like ${pattern}`;
    for (const { datname } of rows) {
      await sql`drop database if exists ${sql(datname)} with (force)`;
    }
  } finally {
    await sql.end();
  }
}
