// The role × endpoint matrix (issue 13), generated from the app's route table and /openapi.json:
// every route is an operation declaring its right, or one of a short list of public pages; each
// operation is called by each kind of caller and must answer 401, 403 or neither as the right
// and the role say. A new route without a decision fails the first test.
import assert from "node:assert/strict";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { buildApp } from "../src/app.ts";
import { createKey } from "../src/access/keys.ts";
import { createSession, SESSION_COOKIE } from "../src/access/sessions.ts";
import { hasRight, type Right, RIGHTS, type Role, ROLES } from "../src/access/principal.ts";
import { dbTest, preparedDatabase, testConfig, type TestDb } from "./helpers/db.ts";

/** Routes outside the OpenAPI document, answered to anyone: pages about the API. */
const UNDOCUMENTED_PUBLIC = [
  "GET /",
  "GET /docs",
  "GET /docs/assets/:name",
  "GET /openapi.json",
  // The console's pages are shells: their data comes from the API, with the caller's credential.
  "GET /explore",
  "GET /live",
  "GET /jobs",
  "GET /admin",
  "GET /console/assets/:name",
];
/** Middleware every request passes (request id, access log, metrics, deadline). */
const GLOBAL_MIDDLEWARE = "ALL /*";

/** The issue's roles, written out here so that a change to principal.ts must be deliberate. */
const EXPECTED_RIGHTS: Record<Role, readonly Right[]> = {
  admin: RIGHTS,
  writer: ["public", "ingest", "service_owner"],
  reader: ["public", "read", "metrics"],
};

/** Small valid bodies, by operationId; any other required body is sent as {}. */
const BODIES: Record<string, unknown> = {
  ingestLogs: { service_name: "checkout-service", status_code: 200, latency_ms: 1 },
  putService: { team_owner: "Payments Team" },
  createKey: { name: "matrix", role: "reader" },
};
/** Query parameters added to the required ones, by operationId: nothing is really pruned. */
const EXTRA_QUERY: Record<string, Record<string, string>> = { runPrune: { dry_run: "true" } };

const ENV_KEY = "env-admin-key-matrix-0123456789";

interface Param {
  name: string;
  in: string;
  required?: boolean;
  example?: unknown;
  schema?: { example?: unknown };
}
interface Op {
  operationId: string;
  "x-observian-right"?: Right;
  parameters?: Param[];
  requestBody?: { required?: boolean };
  responses: Record<string, unknown>;
}
interface Endpoint {
  method: string;
  path: string;
  op: Op;
}

/** A caller: its headers, and its role and teams when its credential is valid. */
interface Caller {
  name: string;
  headers: Record<string, string>;
  role?: Role;
  teams?: string[];
  /** A signed-in person nobody has given a role yet: 403 wherever a right is needed. */
  noRole?: true;
}

// A GitHub that always fails, so that a manual ingestor run never leaves this machine.
const github = Deno.serve(
  { port: 0, hostname: "127.0.0.1", onListen() {} },
  () => new Response("{}", { status: 503 }),
);
const baseEnv = { GITHUB_API_URL: `http://127.0.0.1:${github.addr.port}` };

/** The app served over real HTTP. */
function serve(db: TestDb, env: Record<string, string>) {
  const app = buildApp({ sql: db.sql, config: testConfig({ ...baseEnv, ...env }) });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  return { app, base: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

// Keys are on: stored keys of each role (team keys scoped to the team owning the example
// service), and one API_KEYS admin where the app has it.
const keyed = await preparedDatabase();
const stored = async (name: string, role: Role, teams: string[] = []) =>
  (await createKey(keyed.sql, { name, role, teams }, { actor: "test" })).token;
const storedCallers: Caller[] = [
  {
    name: "stored admin",
    headers: { authorization: `Bearer ${await stored("admin", "admin")}` },
    role: "admin",
  },
  {
    name: "writer",
    headers: { "x-api-key": await stored("writer", "writer") },
    role: "writer",
  },
  {
    name: "team writer",
    headers: { authorization: `Bearer ${await stored("tw", "writer", ["Payments Team"])}` },
    role: "writer",
    teams: ["Payments Team"],
  },
  {
    name: "reader",
    headers: { authorization: `Bearer ${await stored("reader", "reader")}` },
    role: "reader",
  },
  {
    name: "team reader",
    headers: { "x-api-key": await stored("tr", "reader", ["Payments Team"]) },
    role: "reader",
    teams: ["Payments Team"],
  },
];
// Signed-in people, by session cookie. State-changing requests with a cookie must name this
// host as their Origin (CSRF); X-Forwarded-Host stands for the host here, as behind a proxy.
async function signedIn(login: string, role: Role | null, teams: string[] = []) {
  const [user] = await keyed.sql<{ id: number }[]>`
    insert into users (login, role, teams)
    values (${login}, ${role}, array(select jsonb_array_elements_text(${
    JSON.stringify(teams)
  }::text::jsonb)))
    returning id::int`;
  const { id } = await createSession(keyed.sql, user.id, 1);
  return {
    cookie: `${SESSION_COOKIE}=${id}`,
    origin: "http://observian.test",
    "x-forwarded-host": "observian.test",
  };
}
const sessionCallers: Caller[] = [
  { name: "signed-in admin", headers: await signedIn("ada", "admin"), role: "admin" },
  { name: "signed-in reader", headers: await signedIn("rita", "reader"), role: "reader" },
  {
    name: "signed-in team writer",
    headers: await signedIn("wes", "writer", ["Payments Team"]),
    role: "writer",
    teams: ["Payments Team"],
  },
  { name: "signed-in, no role", headers: await signedIn("nora", null), noRole: true },
];
const anonymous: Caller[] = [
  { name: "no credential", headers: {} },
  { name: "wrong key", headers: { "x-api-key": "obs_" + "A".repeat(43) } },
  { name: "wrong bearer", headers: { authorization: "Bearer not-a-key-at-all" } },
];
const envAdmin: Caller = {
  name: "API_KEYS admin",
  headers: { "x-api-key": ENV_KEY },
  role: "admin",
};

const withEnvKey = serve(keyed, { API_KEYS: ENV_KEY });
const storedOnly = serve(keyed, {});
const metricsKeyed = serve(keyed, { API_KEYS: ENV_KEY, METRICS_REQUIRE_KEY: "true" });
const openDb = await preparedDatabase();
const open = serve(openDb, {});

const doc = await (await fetch(`${withEnvKey.base}/openapi.json`)).json();
const endpoints: Endpoint[] = Object.entries(doc.paths as Record<string, Record<string, Op>>)
  .flatMap(([path, item]) =>
    Object.entries(item).map(([method, op]) => ({ method: method.toUpperCase(), path, op }))
  );

/** Hono's /a/:b for OpenAPI's /a/{b}. */
const honoPath = (p: string) => p.replace(/\{([^}]+)\}/g, ":$1");
const exampleOf = (p: Param) => String(p.schema?.example ?? p.example);

/** The smallest request the operation takes: examples for path and required query parameters. */
function requestFor(e: Endpoint, headers: Record<string, string>): [string, RequestInit] {
  const params = e.op.parameters ?? [];
  let path = e.path;
  for (const p of params.filter((p) => p.in === "path")) {
    path = path.replace(`{${p.name}}`, encodeURIComponent(exampleOf(p)));
  }
  const query = new URLSearchParams(EXTRA_QUERY[e.op.operationId]);
  for (const p of params.filter((p) => p.in === "query" && p.required)) {
    query.set(p.name, exampleOf(p));
  }
  const init: RequestInit = { method: e.method, headers: { ...headers } };
  if (e.op.requestBody?.required) {
    init.body = JSON.stringify(BODIES[e.op.operationId] ?? {});
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  return [`${path}${query.size ? `?${query}` : ""}`, init];
}

type Expected = "allowed" | 401 | 403;

/** What the caller must get: from the operation's right and the caller's role alone. */
function expected(right: Right, c: Caller, opts: { metricsRequireKey: boolean }): Expected {
  if (right === "public") return "allowed";
  if (right === "metrics" && !opts.metricsRequireKey) return "allowed";
  if (c.noRole) return 403;
  if (!c.role) return 401;
  if (!EXPECTED_RIGHTS[c.role].includes(right)) return 403;
  // Changing a service: admin, or a writer scoped to the team that owns it.
  if (right === "service_owner" && c.role === "writer" && !c.teams?.length) return 403;
  return "allowed";
}

async function check(
  base: string,
  e: Endpoint,
  c: Caller,
  want: Expected,
  failures: string[],
): Promise<void> {
  const [path, init] = requestFor(e, c.headers);
  const res = await fetch(`${base}${path}`, init);
  const body = await res.text();
  const what = `${c.name} → ${e.method} ${path} (${e.op["x-observian-right"]}): ${res.status}`;
  const documented = Object.keys(e.op.responses);
  if (want === "allowed") {
    if (res.status === 401 || res.status === 403 || !documented.includes(String(res.status))) {
      failures.push(`${what}, wanted a documented answer other than 401/403: ${body}`);
    }
    return;
  }
  if (res.status !== want) {
    failures.push(`${what}, wanted ${want}: ${body}`);
    return;
  }
  if (res.headers.get("content-type") !== "application/problem+json") {
    failures.push(`${what}: not a problem`);
  }
  if (want === 401 && !res.headers.get("www-authenticate")) {
    failures.push(`${what}: 401 without WWW-Authenticate`);
  }
  const right = e.op["x-observian-right"]!;
  if (want === 403 && c.role && !EXPECTED_RIGHTS[c.role].includes(right)) {
    const detail = JSON.parse(body).detail as string;
    if (!detail.includes(`the ${right} right`)) {
      failures.push(`${what}: the 403 does not name the missing right: ${detail}`);
    }
  }
}

async function matrix(base: string, callers: Caller[], metricsRequireKey: boolean) {
  const failures: string[] = [];
  let calls = 0;
  // Signing out ends the caller's session: last, so that it does not end it for the rest.
  const ordered = [...endpoints].sort((a, b) =>
    Number(a.op.operationId === "signOut") - Number(b.op.operationId === "signOut")
  );
  for (const e of ordered) {
    for (const c of callers) {
      // Who-am-I is public, but has nobody to describe without a valid credential.
      const want = e.op.operationId === "whoAmI" && !c.role && !c.noRole
        ? 401
        : expected(e.op["x-observian-right"]!, c, { metricsRequireKey });
      await check(base, e, c, want, failures);
      calls++;
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${calls} calls answered wrongly`);
  return calls;
}

function routeTable(app: OpenAPIHono): string[] {
  return [...new Set(app.routes.map((r) => `${r.method} ${r.path}`))]
    .filter((r) => r !== GLOBAL_MIDDLEWARE);
}

dbTest(
  "[access] every route is an operation declaring its right, or a listed public page",
  async () => {
    await Promise.resolve();
    const documented = new Map(endpoints.map((e) => [`${e.method} ${honoPath(e.path)}`, e]));
    const undecided = routeTable(withEnvKey.app).filter((r) =>
      !UNDOCUMENTED_PUBLIC.includes(r) && !documented.has(r)
    );
    assert.deepEqual(undecided, [], "routes with no access decision");
    const routes = new Set(routeTable(withEnvKey.app));
    for (const [route, e] of documented) {
      assert.ok(routes.has(route), `${route} is documented but not served`);
      const right = e.op["x-observian-right"];
      assert.ok(right && RIGHTS.includes(right), `${route} declares no known right: ${right}`);
      const security = (e.op as { security?: unknown }).security;
      // The scrape is open by default (METRICS_REQUIRE_KEY unset): documented as open.
      if (right === "public" || right === "metrics") {
        assert.deepEqual(security, [], `${route} is open`);
      } else {
        assert.deepEqual(security, [{ ApiKey: [] }], `${route}: security`);
        for (const status of ["401", "403"]) {
          assert.ok(status in e.op.responses, `${route} (${right}) does not document ${status}`);
        }
      }
    }
    for (const role of ROLES) {
      for (const right of RIGHTS) {
        const p = { source: "key" as const, id: 1, name: role, role, teams: [], services: [] };
        assert.equal(hasRight(p, right), EXPECTED_RIGHTS[role].includes(right), `${role}/${right}`);
      }
    }
  },
);

dbTest("[access] keys on (API_KEYS and stored): each caller × each operation", async () => {
  const calls = await matrix(
    withEnvKey.base,
    [...anonymous, envAdmin, ...storedCallers, ...sessionCallers],
    false,
  );
  assert.ok(calls >= endpoints.length * 13);
});

dbTest(
  "[access] stored keys only: the same, and an API_KEYS token is just a wrong key",
  async () => {
    await matrix(storedOnly.base, [
      ...anonymous,
      { ...envAdmin, role: undefined },
      ...storedCallers,
    ], false);
  },
);

dbTest("[access] the credential is checked before the input: bad input is 401 or 403", async () => {
  const reader = storedCallers.find((c) => c.name === "reader")!;
  const failures: string[] = [];
  for (const e of endpoints) {
    const right = e.op["x-observian-right"]!;
    if (right === "public" || right === "metrics") continue;
    for (const [c, want] of [[anonymous[0], 401], [reader, 403]] as const) {
      if (want === 403 && EXPECTED_RIGHTS.reader.includes(right)) continue;
      const [path, init] = requestFor(e, c.headers);
      if (init.body !== undefined) init.body = "{not json";
      const bad = `${path}${path.includes("?") ? "&" : "?"}not_a_parameter=%00`;
      const res = await fetch(`${withEnvKey.base}${bad}`, init);
      await res.body?.cancel();
      if (res.status !== want) failures.push(`${c.name} → ${e.method} ${bad}: ${res.status}`);
    }
  }
  assert.deepEqual(failures, []);
  const sse = await fetch(`${withEnvKey.base}/logs/live-feed`, {
    headers: { accept: "text/event-stream" },
  });
  await sse.body?.cancel();
  assert.equal(sse.status, 401, "the stream too");
});

dbTest("[access] the undocumented public pages answer without a credential", async () => {
  const paths = [
    "/",
    "/docs",
    "/openapi.json",
    "/docs/assets/no-such-asset.js",
    "/explore",
    "/live",
    "/jobs",
    "/admin",
    "/console/assets/no-such-asset.js",
  ];
  for (const path of paths) {
    const res = await fetch(`${withEnvKey.base}${path}`);
    await res.body?.cancel();
    assert.ok(res.status !== 401 && res.status !== 403, `${path}: ${res.status}`);
    assert.equal(res.status, path.includes("no-such") ? 404 : 200, path);
  }
});

dbTest(
  "[access] /metrics needs a reader or admin key only with METRICS_REQUIRE_KEY=true",
  async () => {
    await matrix(metricsKeyed.base, [...anonymous, envAdmin, ...storedCallers], true);
    const scrape = (base: string, headers: Record<string, string> = {}) =>
      fetch(`${base}/metrics`, { headers }).then(async (r) => (await r.body?.cancel(), r.status));
    assert.equal(await scrape(metricsKeyed.base), 401);
    assert.equal(await scrape(metricsKeyed.base, storedCallers[3].headers), 200);
    assert.equal(await scrape(metricsKeyed.base, envAdmin.headers), 200);
    assert.equal(await scrape(metricsKeyed.base, storedCallers[1].headers), 403);
    // Open by default: to no credential and to any valid one.
    for (const c of [anonymous[0], ...storedCallers]) {
      assert.equal(await scrape(withEnvKey.base, c.headers), 200, c.name);
    }
  },
);

dbTest(
  "[access] with no key anywhere, data endpoints are open and admin ones answer 403",
  async () => {
    const failures: string[] = [];
    for (const e of endpoints) {
      const right = e.op["x-observian-right"]!;
      // Nobody to describe: who-am-I is 401 for an anonymous caller, open or not.
      const want = e.op.operationId === "whoAmI" ? 401 : right === "admin" ? 403 : "allowed";
      await check(open.base, e, anonymous[0], want, failures);
      if (right === "admin") {
        const [path, init] = requestFor(e, {});
        const res = await fetch(`${open.base}${path}`, init);
        assert.match((await res.json()).detail, /API_KEYS/, `${e.method} ${path}`);
      }
    }
    assert.deepEqual(failures, []);
    const [{ n }] = await openDb.sql`select count(*)::int as n from api_keys`;
    assert.equal(n, 0, "still open: nobody could create a key");
  },
);

dbTest("[access] done", async () => {
  for (const s of [withEnvKey, storedOnly, metricsKeyed, open]) await s.close();
  await github.shutdown();
  await keyed.drop();
  await openDb.drop();
});
