// The deployment files, checked by the real tools: docker-compose, promtool, Prometheus itself
// scraping a live Observian, and the dashboard's SQL on the real schema. Tests needing a tool
// that is not on PATH are skipped with a warning; .ci/run installs them.
import { onPath } from "./helpers/tools.ts";
import assert from "node:assert/strict";
import postgres from "postgres";
import { buildApp } from "../src/app.ts";
import { freePort } from "../src/db/embedded.ts";
import { createMetrics } from "../src/metrics/registry.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { FakeGitHub, ghEvent } from "./helpers/fake-github.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const PROM_DIR = `${ROOT}deploy/prometheus`;
const DASHBOARD = `${ROOT}deploy/grafana/dashboards/observian.json`;

const tools = {
  promtool: onPath("promtool"),
  prometheus: onPath("prometheus"),
  "docker-compose": onPath("docker-compose"),
};
for (const [name, path] of Object.entries(tools)) {
  if (!path) {
    console.warn(
      `[deploy] ${name} not on PATH: skipping the tests that need it ` +
        `(apt-get install prometheus docker-compose; .ci/run does)`,
    );
  }
}

const db = await preparedDatabase();
const config = testConfig();

async function run(cmd: string, args: string[], opts: { env?: Record<string, string> } = {}) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(opts.env ? { env: opts.env, clearEnv: true } : {}),
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), text };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function replaceOnce(text: string, from: string, to: string): string {
  const parts = text.split(from);
  assert.equal(parts.length, 2, `expected exactly one "${from}"`);
  return parts.join(to);
}

interface Panel {
  type: string;
  title: string;
  id: number;
  datasource?: { type: string; uid: string };
  targets?: { refId: string; expr?: string; rawSql?: string; format?: string }[];
  panels?: Panel[];
}

async function dashboardPanels(): Promise<Panel[]> {
  const dash = JSON.parse(await Deno.readTextFile(DASHBOARD));
  return (dash.panels as Panel[]).flatMap((p) => [p, ...(p.panels ?? [])])
    .filter((p) => p.type !== "row");
}

async function promqlOfDashboard(): Promise<{ title: string; expr: string }[]> {
  return (await dashboardPanels()).filter((p) => p.datasource?.type === "prometheus")
    .flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr! })));
}

/** Grafana's PostgreSQL macros, expanded the way Grafana does for a 1-minute interval. */
function expandMacros(sql: string): string {
  const out = sql
    .replaceAll(
      /\$__timeGroupAlias\(([^,]+),\s*\$__interval\)/g,
      `to_timestamp(floor(extract(epoch from $1) / 60) * 60) AS "time"`,
    )
    .replaceAll(
      /\$__timeFilter\(([^)]+)\)/g,
      `$1 BETWEEN now() - interval '1 hour' AND now() + interval '1 hour'`,
    );
  assert.ok(!out.includes("$__"), `unexpanded macro in:\n${out}`);
  return out;
}

/** A live Observian on a free loopback port, over this file's database. */
function serveApp(cfg = config) {
  const metrics = createMetrics();
  const app = buildApp({ sql: db.sql, config: cfg, metrics });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  return { metrics, app, server, base: `http://127.0.0.1:${server.addr.port}` };
}

async function postLogs(base: string, events: unknown, key?: string) {
  const res = await fetch(`${base}/logs`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { "X-API-Key": key } : {}) },
    body: JSON.stringify(events),
  });
  await res.body?.cancel();
  return res.status;
}

Deno.test({
  name: "[deploy] docker-compose config accepts the stack with its defaults",
  ignore: !tools["docker-compose"],
  async fn() {
    // A bare environment: the defaults in the file must be enough for `docker compose up`.
    const env = { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "/root" };
    const rendered = await run(tools["docker-compose"]!, ["-f", "docker-compose.yml", "config"], {
      env,
    });
    assert.equal(rendered.code, 0, rendered.text);
    const services = await run(tools["docker-compose"]!, [
      "-f",
      "docker-compose.yml",
      "config",
      "--services",
    ], { env });
    assert.deepEqual(services.stdout.trim().split("\n").sort(), [
      "api",
      "grafana",
      "postgres",
      "prometheus",
    ]);
    const yml = rendered.stdout;
    assert.match(yml, /postgres:\n\s+condition: service_healthy/);
    assert.match(yml, /DATABASE_URL: postgres:\/\/observian:observian@postgres:5432\/observian/);
    assert.match(yml, /pg_isready/);
    const images = [...yml.matchAll(/image: (\S+)/g)].map((m) => m[1]);
    assert.equal(images.length, 3, images.join());
    for (const image of images) {
      assert.match(image, /:[^:]*\d/, `${image} is pinned to a version`);
      assert.doesNotMatch(image, /:latest$/);
    }
  },
});

dbTest("[deploy] the api service receives every application setting from .env", async () => {
  const compose = await Deno.readTextFile(`${ROOT}docker-compose.yml`);
  const api = compose.match(/\n {2}api:\n([\s\S]*?)\n {2}\w/)?.[1] ?? "";
  assert.ok(api, "api service block");
  const example = await Deno.readTextFile(`${ROOT}.env.example`);
  const names = [...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]);
  assert.ok(names.includes("RETENTION_DAYS"));
  // Set by the stack itself, or only meaningful to the embedded database / compose.
  const fixed = new Set([
    "DATABASE_URL",
    "HOST",
    "PORT",
    "OBSERVIAN_DATA_DIR",
    "OBSERVIAN_PG_PORT",
  ]);
  const missing = names.filter((n) =>
    !fixed.has(n) && !/^(POSTGRES|GRAFANA|PROMETHEUS)_/.test(n) && !api.includes(`\${${n}:-`)
  );
  assert.deepEqual(missing, [], "forward these to the api service in docker-compose.yml");
});

Deno.test({
  name: "[deploy] promtool check config accepts the Prometheus configuration",
  ignore: !tools.promtool,
  async fn() {
    const r = await run(tools.promtool!, ["check", "config", `${PROM_DIR}/prometheus.yml`]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /SUCCESS: 1 rule files found/);
  },
});

Deno.test({
  name: "[deploy] promtool check rules accepts every alert",
  ignore: !tools.promtool,
  async fn() {
    const alerts = await Deno.readTextFile(`${PROM_DIR}/alerts.yml`);
    const names = [...alerts.matchAll(/^\s+- alert: (\w+)/gm)].map((m) => m[1]);
    const count = names.length;
    assert.ok(count >= 6, `${count} alerts`);
    // Each has a row in the README's alert table saying what to do.
    const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
    for (const name of names) assert.match(readme, new RegExp(`^\\| \`${name}\` `, "m"), name);
    const r = await run(tools.promtool!, ["check", "rules", `${PROM_DIR}/alerts.yml`]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, new RegExp(`SUCCESS: ${count} rules found`));
  },
});

Deno.test({
  name: "[deploy] promtool test rules: each alert fires when it should and only then",
  ignore: !tools.promtool,
  async fn() {
    const r = await run(tools.promtool!, ["test", "rules", `${PROM_DIR}/alerts.test.yml`]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /SUCCESS/);
    // Every alert is exercised by the unit tests.
    const alerts = await Deno.readTextFile(`${PROM_DIR}/alerts.yml`);
    const tests = await Deno.readTextFile(`${PROM_DIR}/alerts.test.yml`);
    for (const [, name] of alerts.matchAll(/- alert: (\w+)/g)) {
      assert.match(tests, new RegExp(`alertname: ${name}\\n`), `${name} has a unit test`);
    }
  },
});

/** The scrape-time labels Prometheus adds, renaming a clashing label as it does. */
function asScraped(line: string, target: Record<string, string>): string {
  const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
  assert.ok(m, `an exposition line: ${line}`);
  let labels = (m[2] ?? "").replace(/,$/, "");
  for (const name of Object.keys(target)) {
    labels = labels.replaceAll(new RegExp(`(^|,)${name}=`, "g"), `$1exported_${name}=`);
  }
  const added = Object.entries(target).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${m[1]}{${[labels, ...added].filter(Boolean).join(",")}}`;
}

Deno.test("[deploy] the rules, dashboard and scrape config name background jobs observian_job", async () => {
  const prom = await Deno.readTextFile(`${PROM_DIR}/prometheus.yml`);
  assert.doesNotMatch(prom, /^\s*honor_labels:/m, "the standard scrape config is enough");
  const alerts = await Deno.readTextFile(`${PROM_DIR}/alerts.yml`);
  const tests = await Deno.readTextFile(`${PROM_DIR}/alerts.test.yml`);
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const dashboard = (await promqlOfDashboard()).map((q) => q.expr).join("\n");
  const legends = (await dashboardPanels()).flatMap((p) => p.targets ?? [])
    .map((t) => (t as { legendFormat?: string }).legendFormat ?? "").join("\n");
  assert.match(alerts, /observian_job="ingestor"/);
  for (const [where, text] of Object.entries({ alerts, tests, readme, dashboard, legends })) {
    // `job` is Prometheus's target label: "observian" here, never one of our jobs.
    assert.doesNotMatch(text, /\bjob="(?!observian")/, `${where}: job= names the scrape job`);
    assert.doesNotMatch(text, /\b(by|on|without) \([^)]*\bjob\b/, `${where}: grouped by job`);
    assert.doesNotMatch(text, /\{\{\s*job\s*\}\}|\$labels\.job\b|^\s+job: (?!observian)/m, where);
  }
  const metrics = createMetrics({ processMetrics: false });
  for (const m of metrics.registry.getMetricsAsArray()) {
    const names = (m as unknown as { labelNames: string[] }).labelNames;
    for (const reserved of ["job", "instance"]) {
      assert.ok(!names.includes(reserved), `${m.name} uses the target label ${reserved}`);
    }
  }
});

Deno.test({
  name: "[deploy] promtool: no alert fires over what a fresh install exposes for 30 minutes",
  ignore: !tools.promtool,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // A fresh process over a database where no job has run: the ingestor is off (its
    // default), GitHub has never been asked.
    await db.sql`update job_control set enabled = (job <> 'ingestor'), state = '{}',
      last_success_at = null, last_started_at = null, last_finished_at = null,
      consecutive_failures = 0, last_error = null`;
    const { server, base } = serveApp();
    const dir = await Deno.makeTempDir({ prefix: "observian-fresh-rules-" });
    try {
      for (const path of ["/health", "/health/ready", "/metrics"]) {
        await (await fetch(base + path)).body?.cancel();
      }
      const exposition = await (await fetch(`${base}/metrics`)).text();
      const target = { job: "observian", instance: "api:8000" };
      const series = exposition.split("\n").filter((l) => l && !l.startsWith("#"))
        .map((l) => ({ series: asScraped(l, target), value: l.slice(l.lastIndexOf(" ") + 1) }));
      series.push({ series: asScraped("up 1", target), value: "1" });
      const alerts = await Deno.readTextFile(`${PROM_DIR}/alerts.yml`);
      const names = [...alerts.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
      // JSON is YAML: every string quoted as JSON quotes it.
      const file = {
        rule_files: [`${PROM_DIR}/alerts.yml`],
        evaluation_interval: "1m",
        tests: [{
          name: "fresh install",
          interval: "1m",
          input_series: series.map((s) => ({
            series: s.series,
            values: Array(41).fill(s.value).join(" "),
          })),
          alert_rule_test: names.map((alertname) => ({
            eval_time: "30m",
            alertname,
            exp_alerts: [],
          })),
        }],
      };
      await Deno.writeTextFile(`${dir}/fresh.test.yml`, JSON.stringify(file, null, 1));
      const r = await run(tools.promtool!, ["test", "rules", `${dir}/fresh.test.yml`]);
      assert.equal(r.code, 0, r.text);
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

dbTest("[deploy] the dashboard JSON parses and uses only provisioned datasources", async () => {
  const dash = JSON.parse(await Deno.readTextFile(DASHBOARD));
  assert.equal(dash.uid, "observian");
  const provisioned = await Deno.readTextFile(
    `${ROOT}deploy/grafana/provisioning/datasources/datasources.yml`,
  );
  const uids = new Set([...provisioned.matchAll(/^\s+uid: (\S+)$/gm)].map((m) => m[1]));
  assert.deepEqual([...uids].sort(), ["observian-postgres", "prometheus"]);
  const panels = await dashboardPanels();
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, "panel ids are unique");
  for (const p of panels) {
    assert.ok(p.datasource && uids.has(p.datasource.uid), `${p.title}: provisioned datasource`);
    assert.ok(p.targets?.length, `${p.title}: has queries`);
    for (const t of p.targets!) {
      if (p.datasource!.type === "prometheus") {
        // Grafana variables would not evaluate in Prometheus (and in the test below).
        assert.ok(t.expr && !t.expr.includes("$"), `${p.title}: plain PromQL`);
      } else {
        assert.ok(t.rawSql, `${p.title}: SQL`);
      }
    }
  }
  const titles = panels.map((p) => p.title.toLowerCase()).join("\n");
  for (
    const topic of [
      "request rate",
      "5xx",
      "p95 latency by route",
      "ingested",
      "github",
      "error budget",
      "burn rate",
      "alerts pending and firing",
    ]
  ) {
    assert.ok(titles.includes(topic), `a panel about ${topic}`);
  }
  // The provider reads the folder compose mounts.
  const provider = await Deno.readTextFile(
    `${ROOT}deploy/grafana/provisioning/dashboards/dashboards.yml`,
  );
  const compose = await Deno.readTextFile(`${ROOT}docker-compose.yml`);
  const path = provider.match(/path: (\S+)/)?.[1];
  assert.ok(compose.includes(`./deploy/grafana/dashboards:${path}:ro`));
});

dbTest(
  "[deploy] the dashboard's SQL runs on the schema; p95 within 1% of the exact value",
  async () => {
    const { base, server } = serveApp();
    try {
      // One timestamp, so every event lands in the same minute whatever the clock does.
      const at = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000 + 30_000)
        .toISOString();
      const ev = (service_name: string, status_code: number, latency_ms: number) => ({
        service_name,
        status_code,
        latency_ms,
        timestamp: at,
      });
      assert.equal(
        await postLogs(base, [
          ...Array.from({ length: 90 }, () => ev("deploy-p95", 200, 3)),
          ...Array.from({ length: 10 }, () => ev("deploy-p95", 200, 120)),
          ...Array.from({ length: 4 }, () => ev("deploy-err", 200, 10)),
          ev("deploy-err", 503, 10),
        ]),
        201,
      );
      const queries = (await dashboardPanels()).filter((p) => p.datasource?.type !== "prometheus")
        .flatMap((p) => p.targets!.map((t) => ({ title: p.title, sql: expandMacros(t.rawSql!) })));
      assert.ok(queries.length >= 3);
      const results = new Map<string, Record<string, unknown>[]>();
      for (const q of queries) {
        const rows = await db.sql.unsafe(q.sql);
        assert.ok(rows.length > 0, `${q.title}: returns rows`);
        results.set(q.title, rows);
      }
      const find = (title: string, service: string) => {
        const rows = [...results].find(([t]) => t.toLowerCase().includes(title))?.[1] ?? [];
        const row = rows.find((r) => (r.metric ?? r.service) === service);
        assert.ok(row, `${title}: a row for ${service}`);
        return row;
      };
      // The 95th of 100 events: 90 are 3 ms, 10 are 120 ms, so 120 within 1% (and at most 120,
      // the greatest).
      const p95 = Number(find("p95 latency", "deploy-p95").p95_latency_ms);
      assert.ok(p95 <= 120 && p95 >= 120 * 0.99, `p95 ${p95}`);
      assert.equal(Number(find("error rate", "deploy-err").error_ratio), 0.2);
      assert.equal(Number(find("average latency", "deploy-p95").avg_latency_ms), 14.7);
      const table = find("services in", "deploy-err");
      assert.equal(Number(table.events), 5);
      assert.equal(Number(table.errors), 1);
    } finally {
      await server.shutdown();
    }
  },
);

dbTest("[deploy] the grafana_reader init script yields a read-only role", async () => {
  const script = await Deno.readTextFile(`${ROOT}deploy/postgres/initdb/10-grafana-reader.sh`);
  const body = script.match(/<<'SQL'\n([\s\S]*?)\nSQL\n/)?.[1];
  assert.ok(body, "heredoc SQL");
  const [{ user }] = await db.sql<{ user: string }[]>`select current_user as user`;
  const reader = `grafana_reader_t${crypto.randomUUID().slice(0, 8)}`;
  const vars: Record<string, string> = { reader, password: "pw-test", owner: user, db: db.name };
  // psql's :"name" (identifier) and :'name' (literal) interpolation.
  const sql = body
    .replaceAll(/:"(\w+)"/g, (_, k) => `"${vars[k].replaceAll('"', '""')}"`)
    .replaceAll(/:'(\w+)'/g, (_, k) => `'${vars[k].replaceAll("'", "''")}'`);
  for (const name of ["reader", "password", "owner", "db"]) {
    assert.ok(script.includes(`-v ${name}=`), `the script sets ${name}`);
  }
  const url = new URL(db.url);
  url.username = reader;
  url.password = "pw-test";
  const asReader = postgres(url.toString(), { max: 1, onnotice: () => {} });
  try {
    await db.sql.unsafe(sql);
    // Created after the grants, like the tables the API's migrations add later.
    await db.sql`create table later_table (x int)`;
    const [row] = await asReader`select count(*)::int as n from log_rollup_1m`;
    assert.equal(typeof row.n, "number");
    await asReader`select * from later_table`;
    await asReader`select name from services limit 1`;
    await assert.rejects(
      () => asReader`insert into services (name) values ('grafana-was-here')`,
      /read-only transaction|permission denied/,
    );
    await assert.rejects(
      () => asReader`begin read write; delete from services; commit`.simple(),
      /permission denied/,
    );
  } finally {
    await asReader.end({ timeout: 1 });
    await db.sql`drop table if exists later_table`;
    await db.sql.unsafe(`drop owned by "${reader}"`).catch(() => {});
    await db.sql.unsafe(`drop role if exists "${reader}"`);
  }
});

dbTest(
  "[deploy] the Dockerfile pins CI's Deno, runs as non-root, and its HEALTHCHECK works",
  async () => {
    const dockerfile = await Deno.readTextFile(`${ROOT}Dockerfile`);
    const ci = await Deno.readTextFile(`${ROOT}.ci/run`);
    const version = ci.match(/^DENO_VERSION=(\S+)$/m)?.[1];
    assert.ok(version);
    assert.match(
      dockerfile,
      new RegExp(`^FROM denoland/deno:${version.replaceAll(".", "\\.")}$`, "m"),
    );
    const lines = dockerfile.replaceAll(/\\\n\s*/g, " ").split("\n").map((l) => l.trim());
    const users = lines.filter((l) => l.startsWith("USER "));
    assert.ok(users.length && !/^USER (root|0)\b/.test(users.at(-1)!), "last USER is not root");
    // The lock is installed before the sources are copied, so that layer is cached.
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    assert.ok(at(/^COPY deno\.json deno\.lock /) >= 0);
    assert.ok(at(/^COPY deno\.json deno\.lock /) < at(/^RUN deno install --frozen$/));
    assert.ok(at(/^RUN deno install --frozen$/) < at(/^COPY src\//));
    assert.equal(lines.find((l) => l.startsWith("CMD ")), 'CMD ["deno", "task", "start"]');
    const ignore = (await Deno.readTextFile(`${ROOT}.dockerignore`)).split("\n");
    for (const entry of [".env", ".git", "node_modules", ".observian"]) {
      assert.ok(ignore.includes(entry), `.dockerignore leaves out ${entry}`);
    }

    const healthcheck = lines.find((l) => l.startsWith("HEALTHCHECK "));
    assert.ok(healthcheck);
    const argv: string[] = JSON.parse(healthcheck.slice(healthcheck.indexOf(" CMD ") + 5));
    assert.equal(argv[0], "deno");
    const probe = async (port: number) =>
      (await new Deno.Command(Deno.execPath(), {
        args: argv.slice(1),
        env: { PORT: String(port) },
        stdout: "null",
        stderr: "null",
      }).output()).code;
    const { server } = serveApp();
    try {
      assert.equal(await probe(server.addr.port), 0, "healthy while /health answers");
    } finally {
      await server.shutdown();
    }
    assert.notEqual(await probe(freePort()), 0, "unhealthy when nothing listens");
  },
);

interface Query {
  status: string;
  error?: string;
  data?: { result: unknown[] };
}

Deno.test({
  name: "[deploy] Prometheus scrapes a live Observian with the repository's config and " +
    "evaluates every dashboard and alert expression",
  ignore: !tools.prometheus,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // The background jobs run through the control API against a fake GitHub, so the job and
    // GitHub metrics come from real runs too.
    const gh = FakeGitHub.start();
    gh.feed("/repos/octo/hello/events", [
      ghEvent("9100000002", { minutesAgo: 1 }),
      ghEvent("9100000001", { minutesAgo: 2 }),
    ]);
    const key = "deploy-test-key";
    const { server, base } = serveApp(testConfig({
      API_KEYS: key,
      GITHUB_API_URL: gh.url,
      GITHUB_SOURCE: "repo:octo/hello",
      GITHUB_TIMEOUT_S: "5",
    }));
    const dir = await Deno.makeTempDir({ prefix: "observian-prometheus-" });
    let child: Deno.ChildProcess | undefined;
    let output = "";
    try {
      // The repository's configuration: only the target (and, to keep the test short, the
      // global intervals) change. Rule files sit beside it as in deploy/prometheus.
      let cfg = await Deno.readTextFile(`${PROM_DIR}/prometheus.yml`);
      cfg = replaceOnce(cfg, `"api:8000"`, `"127.0.0.1:${server.addr.port}"`);
      cfg = replaceOnce(cfg, "scrape_interval: 15s", "scrape_interval: 1s");
      cfg = replaceOnce(cfg, "evaluation_interval: 15s", "evaluation_interval: 1s");
      await Deno.writeTextFile(`${dir}/prometheus.yml`, cfg);
      for (const [, file] of cfg.matchAll(/^\s+- (\S+\.ya?ml)$/gm)) {
        await Deno.copyFile(`${PROM_DIR}/${file}`, `${dir}/${file}`);
      }
      const promPort = freePort();
      const prom = `http://127.0.0.1:${promPort}`;
      child = new Deno.Command(tools.prometheus!, {
        args: [
          `--config.file=${dir}/prometheus.yml`,
          `--storage.tsdb.path=${dir}/data`,
          `--web.listen-address=127.0.0.1:${promPort}`,
          "--log.level=warn",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const decoder = new TextDecoder();
      for (const s of [child.stdout, child.stderr]) {
        void (async () => {
          for await (const chunk of s) output += decoder.decode(chunk);
        })();
      }
      const api = async <T>(path: string): Promise<T> => {
        const res = await fetch(prom + path);
        return await res.json() as T;
      };

      let ready = false;
      for (const deadline = Date.now() + 30_000; !ready && Date.now() < deadline;) {
        ready = await fetch(`${prom}/-/ready`).then(async (r) => {
          await r.body?.cancel();
          return r.ok;
        }, () => false);
        if (!ready) await sleep(200);
      }
      assert.ok(ready, `Prometheus did not become ready:\n${output}`);

      const control = async (path: string) => {
        const res = await fetch(base + path, { method: "POST", headers: { "X-API-Key": key } });
        const body = await res.json();
        assert.equal(res.status, 200, `${path}: ${JSON.stringify(body)}`);
        return body;
      };
      assert.equal((await control("/control/ingestor-toggle?enable=true")).enabled, true);
      const run = await control("/control/ingestor-run");
      assert.equal(run.status, "success", JSON.stringify(run));
      assert.equal(run.new, 2);
      assert.equal((await control("/control/prune")).status, "success");
      // An SLO, evaluated once, so the SLO row's series exist (from what the run stored).
      assert.equal(
        await postLogs(base, [{ service_name: "prom-svc", status_code: 200, latency_ms: 4 }], key),
        201,
      );
      const slo = await fetch(`${base}/slos`, {
        method: "POST",
        headers: { "content-type": "application/json", "X-API-Key": key },
        body: JSON.stringify({
          service: "prom-svc",
          name: "availability",
          objective: 99.9,
          period_days: 28,
          indicator: "availability",
        }),
      });
      assert.equal(slo.status, 201, await slo.text());
      assert.equal((await control("/control/alerts-run")).status, "success");

      const dashboard = await promqlOfDashboard();
      assert.ok(dashboard.length >= 15, `${dashboard.length} dashboard expressions`);
      type Rule = {
        name: string;
        query: string;
        health: string;
        state: string;
        lastError?: string;
      };
      let target: { health: string; scrapeUrl: string; lastError: string } | undefined;
      let rules: Rule[] = [];
      let empty: string[] = [];
      let failed: string[] = [];
      let alertResults: { name: string; q: Query }[] = [];
      for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
        // Real traffic: served, unmatched, ingested and refused requests.
        for (const path of ["/health", "/health/ready", "/nowhere"]) {
          await (await fetch(base + path)).body?.cancel();
        }
        await postLogs(base, [{ service_name: "prom-svc", status_code: 200, latency_ms: 4 }], key);
        await postLogs(base, [{ service_name: "prom-svc", status_code: 99 }], key);

        const targets = await api<{
          data: {
            activeTargets: {
              labels: { job: string };
              health: string;
              scrapeUrl: string;
              lastError: string;
            }[];
          };
        }>("/api/v1/targets");
        target = targets.data.activeTargets.find((t) => t.labels.job === "observian");
        rules = (await api<{ data: { groups: { rules: Rule[] }[] } }>("/api/v1/rules"))
          .data.groups.flatMap((g) => g.rules);
        empty = [];
        failed = [];
        for (const { title, expr } of dashboard) {
          const q = await api<Query>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
          if (q.status !== "success") failed.push(`${title}: ${expr}: ${q.error}`);
          else if (!q.data!.result.length) empty.push(`${title}: ${expr}`);
        }
        alertResults = [];
        for (const r of rules) {
          const q = await api<Query>(`/api/v1/query?query=${encodeURIComponent(r.query)}`);
          alertResults.push({ name: r.name, q });
        }
        const evaluated = rules.length > 0 && rules.every((r) => r.health === "ok");
        if (target?.health === "up" && evaluated && !empty.length && !failed.length) break;
        await sleep(1000);
      }

      assert.ok(target, `no observian target:\n${output}`);
      assert.equal(target.scrapeUrl, `http://127.0.0.1:${server.addr.port}/metrics`);
      assert.equal(target.health, "up", target.lastError);
      assert.deepEqual(failed, [], "dashboard expressions that Prometheus refused");
      assert.deepEqual(empty, [], "dashboard expressions without data");
      const alerts = await Deno.readTextFile(`${PROM_DIR}/alerts.yml`);
      assert.equal(rules.length, [...alerts.matchAll(/- alert: /g)].length, "every rule loaded");
      for (const r of rules) {
        assert.equal(r.health, "ok", `${r.name}: ${r.lastError}`);
        // A healthy, freshly active system: nothing pending or firing.
        assert.equal(r.state, "inactive", r.name);
      }
      for (const { name, q } of alertResults) {
        assert.equal(q.status, "success", `${name}: ${q.error}`);
        assert.deepEqual(q.data!.result, [], `${name} would fire`);
      }
      // The background job's label survives a scrape without honor_labels, beside the target's.
      const runs = await api<Query>(
        `/api/v1/query?query=${
          encodeURIComponent('observian_job_runs_total{job="observian", observian_job="ingestor"}')
        }`,
      );
      assert.equal(runs.data!.result.length, 1);
      const exported = await api<Query>(
        `/api/v1/query?query=${encodeURIComponent('{__name__=~".+", exported_job=~".+"}')}`,
      );
      assert.deepEqual(exported.data!.result, [], "no series had its job label renamed");
    } finally {
      if (child) {
        child.kill("SIGTERM");
        const exited = await Promise.race([child.status.then(() => true), sleep(10_000)]);
        if (!exited) child.kill("SIGKILL");
        await child.status;
      }
      await server.shutdown();
      await gh.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

dbTest("[deploy] teardown", async () => {
  await db.drop();
});
