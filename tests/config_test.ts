import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../src/config.ts";
import { startTaskFlags } from "../scripts/lib/main-command.ts";

Deno.test("[config] defaults match the documented ones", () => {
  const c = parseConfig({});
  assert.equal(c.port, 8000);
  assert.equal(c.databaseUrl, undefined);
  assert.equal(c.dataDir, ".observian");
  assert.equal(c.retentionDays, 7);
  assert.equal(c.logFormat, "json");
  assert.deepEqual(c.apiKeys, []);
  assert.deepEqual(c.seedServices.map((s) => s.name), [
    "auth-service",
    "checkout-service",
    "inventory-service",
  ]);
  assert.equal(c.seedServices[1].teamOwner, "Payments Team");
  assert.ok(Object.isFrozen(c));
});

Deno.test("[config] pretty logs by default on a terminal", () => {
  assert.equal(parseConfig({}, { stdoutIsTerminal: true }).logFormat, "pretty");
  assert.equal(parseConfig({ LOG_FORMAT: "json" }, { stdoutIsTerminal: true }).logFormat, "json");
});

Deno.test("[config] each bad value names its variable", () => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: "eighty" }, "PORT"],
    [{ PORT: "70000" }, "PORT"],
    [{ RETENTION_DAYS: "0" }, "RETENTION_DAYS"],
    [{ RETENTION_DAYS: "-3" }, "RETENTION_DAYS"],
    [{ DB_POOL_MAX: "1.5" }, "DB_POOL_MAX"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ LOG_FORMAT: "xml" }, "LOG_FORMAT"],
    [{ DATABASE_URL: "mysql://x@y/z" }, "DATABASE_URL"],
    [{ DATABASE_URL: "not a url" }, "DATABASE_URL"],
    [{ SEED_SERVICES: "ok:Team,bad name!:Team" }, "SEED_SERVICES"],
    [{ DB_CONNECT_TIMEOUT_S: "soon" }, "DB_CONNECT_TIMEOUT_S"],
    [{ MIGRATE_ON_START: "maybe" }, "MIGRATE_ON_START"],
  ];
  for (const [env, variable] of cases) {
    assert.throws(() => parseConfig(env), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `${JSON.stringify(env)} should fail`);
      assert.equal(err.variable, variable);
      assert.match(err.message, new RegExp(`^invalid configuration: ${variable}: `));
      assert.ok(!err.message.includes("\n"), "one line");
      return true;
    });
  }
});

Deno.test("[config] API_KEYS and the original API_KEY are merged", () => {
  const c = parseConfig({ API_KEYS: "a, b,,c", API_KEY: "d" });
  assert.deepEqual(c.apiKeys, ["a", "b", "c", "d"]);
  assert.deepEqual(parseConfig({ API_KEY: "only" }).apiKeys, ["only"]);
});

Deno.test("[config] SEED_SERVICES parses names with and without teams", () => {
  const c = parseConfig({ SEED_SERVICES: "api:Core Team, worker , web/app:Front: End" });
  assert.deepEqual(c.seedServices, [
    { name: "api", teamOwner: "Core Team" },
    { name: "worker", teamOwner: null },
    { name: "web/app", teamOwner: "Front: End" },
  ]);
});

Deno.test("[config] an empty value counts as unset", () => {
  assert.equal(parseConfig({ PORT: "", DATABASE_URL: "" }).port, 8000);
});

/** Runs a script printing `names` from its environment, with the start task's flags, in `dir`. */
async function envOfStartTask(dir: string, names: string[], env: Record<string, string> = {}) {
  await Deno.writeTextFile(
    `${dir}/print-env.ts`,
    `console.log(JSON.stringify(Object.fromEntries(${
      JSON.stringify(names)
    }.flatMap((k) => Deno.env.has(k) ? [[k, Deno.env.get(k)]] : []))));`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...startTaskFlags(), "--no-config", `${dir}/print-env.ts`],
    cwd: dir,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  assert.equal(out.code, 0, d.decode(out.stderr));
  return JSON.parse(d.decode(out.stdout));
}

Deno.test("[config] .env parsing (deno task start reads it with --env-file)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/.env`,
      `# comment
PORT=9000
export LOG_LEVEL = debug
API_KEYS="k1,k2"  
SEED_SERVICES='a:Team A'
RETENTION_DAYS=3 # trailing comment
not a line
`,
    );
    const names = ["PORT", "LOG_LEVEL", "API_KEYS", "SEED_SERVICES", "RETENTION_DAYS"];
    assert.deepEqual(await envOfStartTask(dir, names), {
      PORT: "9000",
      LOG_LEVEL: "debug",
      API_KEYS: "k1,k2",
      SEED_SERVICES: "a:Team A",
      RETENTION_DAYS: "3",
    });
    // Real environment variables win over the file.
    assert.equal((await envOfStartTask(dir, ["PORT"], { PORT: "7000" })).PORT, "7000");
    // No .env at all (a fresh clone): the task still runs.
    await Deno.remove(`${dir}/.env`);
    assert.deepEqual(await envOfStartTask(dir, names), {});
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (
  const [variable, value] of [
    ["PORT", "not-a-port"],
    // Five fields, but Deno.cron would throw on it after the migrations (issue 11).
    ["INGEST_CRON", "61 * * * *"],
    ["PRUNE_CRON", "0 3 * * 0"],
  ]
) {
  Deno.test(`[config] the server refuses a bad ${variable} with one line and exit code 1`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          "--unstable-cron",
          `--config=${new URL("../deno.json", import.meta.url).pathname}`,
          new URL("../src/main.ts", import.meta.url).pathname,
        ],
        cwd: dir,
        env: { [variable]: value, DATABASE_URL: "" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr).trim();
      assert.equal(out.code, 1);
      assert.equal(stderr.split("\n").length, 1, stderr);
      assert.match(stderr, new RegExp(`^invalid configuration: ${variable}: `));
      // Nothing was started, nothing migrated: no embedded database folder appeared.
      assert.deepEqual([...Deno.readDirSync(dir)], []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
