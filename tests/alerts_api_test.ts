// Alert definitions (issue 16): rules, SLOs, channels, teams' channels and silences over real
// HTTP on a real database: each kind created, read, changed and deleted; every bad field a 400
// naming it with nothing written; secrets never answered; audit rows; who may change what.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { createKey } from "../src/access/keys.ts";
import type { Role } from "../src/access/principal.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const db = await preparedDatabase();
const ENV_KEY = "env-admin-key-alerts-0123456789";
const app = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: ENV_KEY }) });
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
const base = `http://127.0.0.1:${server.addr.port}`;

const key = async (name: string, role: Role, teams: string[] = []) =>
  (await createKey(db.sql, { name, role, teams }, { actor: "test" })).token;
const admin = ENV_KEY;
const reader = await key("reader", "reader");
const teamReader = await key("team reader", "reader", ["Payments Team"]);
const writer = await key("writer", "writer");
// Payments Team owns checkout-service (the seeded services).
const payments = await key("payments", "writer", ["Payments Team"]);

async function call(token: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      "x-api-key": token,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    text,
    json: text ? JSON.parse(text) : null,
    type: res.headers.get("content-type"),
  };
}

const count = async (table: string) =>
  (await db.sql<{ n: number }[]>`select count(*)::int as n from ${db.sql(table)}`)[0].n;
const audits = async (action: string) =>
  await db.sql<{ target: string; detail: Record<string, unknown>; actor: string }[]>`
    select target, detail, actor from audit_log where action = ${action} order by id`;

/** A 400 problem naming `field`, and no row more in `table` (nor in the audit log). */
async function refused(
  token: string,
  method: string,
  path: string,
  body: unknown,
  field: string,
  table: string,
) {
  const before = [await count(table), await count("audit_log")];
  const res = await call(token, method, path, body);
  const what = `${method} ${path} ${JSON.stringify(body)}`;
  assert.equal(res.status, 400, `${what}: ${res.text}`);
  assert.equal(res.type, "application/problem+json", what);
  const fields = (res.json.errors ?? []).map((e: { field: string }) => e.field);
  assert.ok(fields.includes(field), `${what}: wanted ${field}, got ${JSON.stringify(res.json)}`);
  assert.deepEqual(
    [await count(table), await count("audit_log")],
    before,
    `${what}: nothing written`,
  );
}

const rule = (over: Record<string, unknown> = {}) => ({
  name: "checkout errors",
  services: ["checkout-service"],
  kind: "error_rate",
  threshold: 5,
  window: "5m",
  for: "2m",
  severity: "page",
  ...over,
});

dbTest("[alerts] channels: created, listed without secrets, unique, deleted, audited", async () => {
  const secret = "s3cr3t-signing-key-xyz";
  const created = await call(admin, "POST", "/alerts/channels", {
    name: "payments-hook",
    type: "webhook",
    url: "https://user:pw@alerts.example.com/hook?token=abc",
    secret,
  });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.json.has_secret, true);
  assert.equal(created.json.url, "https://alerts.example.com/hook?…");
  const slack = await call(admin, "POST", "/alerts/channels", {
    name: "payments-slack",
    type: "slack",
    url: "https://hooks.slack.com/services/T000/B000/XXXX",
  });
  assert.equal(slack.status, 201, slack.text);
  assert.equal(slack.json.has_secret, false);
  assert.equal(slack.json.url, "https://hooks.slack.com/…");

  const list = await call(reader, "GET", "/alerts/channels");
  assert.equal(list.status, 200);
  assert.deepEqual(list.json.map((c: { name: string }) => c.name), [
    "payments-hook",
    "payments-slack",
  ]);
  for (const leaked of [secret, "token=abc", "pw@", "XXXX"]) {
    assert.ok(!list.text.includes(leaked), `not answered: ${leaked}`);
    assert.ok(!created.text.includes(leaked) && !slack.text.includes(leaked), leaked);
    assert.ok(!JSON.stringify(await audits("alert_channel.create")).includes(leaked), leaked);
  }
  const [stored] = await db.sql`select secret from alert_channels where name = 'payments-hook'`;
  assert.equal(stored.secret, secret, "kept for the notifier");

  const dup = await call(admin, "POST", "/alerts/channels", {
    name: "payments-hook",
    type: "slack",
    url: "https://x.example.com",
  });
  assert.equal(dup.status, 409, dup.text);
  assert.equal(dup.type, "application/problem+json");

  const good = { name: "c1", type: "webhook", url: "https://a.example.com" };
  const p = "/alerts/channels";
  await refused(admin, "POST", p, { ...good, url: "ftp://a.example.com" }, "url", "alert_channels");
  await refused(admin, "POST", p, { ...good, url: "not a url" }, "url", "alert_channels");
  await refused(admin, "POST", p, { ...good, name: "-bad name" }, "name", "alert_channels");
  await refused(admin, "POST", p, { ...good, type: "email" }, "type", "alert_channels");
  await refused(
    admin,
    "POST",
    p,
    { ...good, type: "slack", secret: "x" },
    "secret",
    "alert_channels",
  );
  await refused(admin, "POST", p, { ...good, extra: 1 }, "extra", "alert_channels");

  assert.equal((await call(admin, "POST", p, { ...good, name: "gone" })).status, 201);
  assert.equal((await call(admin, "DELETE", "/alerts/channels/gone")).status, 204);
  assert.equal((await call(admin, "DELETE", "/alerts/channels/gone")).status, 404);
  const [del] = await audits("alert_channel.delete");
  assert.equal(del.target, "alert_channel:gone");
  assert.equal(del.actor, "api-key#1");
  assert.equal((await audits("alert_channel.create")).length, 3);
});

dbTest(
  "[alerts] teams: a default channel set, listed, cleared; unknown channel refused",
  async () => {
    const put = await call(admin, "PUT", "/teams/Payments%20Team", { channel: "payments-slack" });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.json, {
      name: "Payments Team",
      channel: "payments-slack",
      services: ["checkout-service"],
    });
    const list = await call(reader, "GET", "/teams");
    assert.deepEqual(list.json.map((t: { name: string }) => t.name), [
      "Identity Team",
      "Ops Team",
      "Payments Team",
    ]);
    assert.equal(list.json[2].channel, "payments-slack");
    await refused(admin, "PUT", "/teams/Payments%20Team", { channel: "nope" }, "channel", "teams");
    await refused(
      admin,
      "PUT",
      "/teams/Payments%20Team",
      { channel: "nope" },
      "channel",
      "audit_log",
    );
    await refused(admin, "PUT", "/teams/Payments%20Team", {}, "channel", "teams");
    const cleared = await call(admin, "PUT", "/teams/Payments%20Team", { channel: null });
    assert.equal(cleared.json.channel, null);
    const rows = await audits("team.update");
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[1].detail, { channel: null, previous_channel: "payments-slack" });
    assert.equal(
      (await call(payments, "PUT", "/teams/Payments%20Team", { channel: null })).status,
      403,
    );
  },
);

dbTest("[alerts] rules: created, read, replaced, deleted, audited", async () => {
  const created = await call(
    admin,
    "POST",
    "/alerts/rules",
    rule({ channels: ["payments-hook"], labels: { runbook: "r1" } }),
  );
  assert.equal(created.status, 201, created.text);
  const r = created.json;
  assert.equal(r.window, "5m");
  assert.equal(r.window_s, 300);
  assert.equal(r.for_s, 120);
  assert.deepEqual(r.channels, ["payments-hook"]);
  assert.deepEqual(r.labels, { runbook: "r1" });
  assert.deepEqual((await call(reader, "GET", `/alerts/rules/${r.id}`)).json, r);
  assert.deepEqual((await call(reader, "GET", "/alerts/rules")).json, [r]);

  const put = await call(
    admin,
    "PUT",
    `/alerts/rules/${r.id}`,
    rule({ kind: "latency_p99", threshold: 750, window: "1h", for: "0s" }),
  );
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.kind, "latency_p99");
  assert.equal(put.json.for, "0s");
  assert.deepEqual(put.json.channels, []);

  // A channel a rule names cannot be deleted from under it.
  const used = await call(admin, "POST", "/alerts/rules", rule({ channels: ["payments-slack"] }));
  const busy = await call(admin, "DELETE", "/alerts/channels/payments-slack");
  assert.equal(busy.status, 409, busy.text);
  assert.match(busy.json.detail, new RegExp(`#${used.json.id}`));

  for (const kind of ["no_traffic", "volume_drop"]) {
    const ok = await call(
      admin,
      "POST",
      "/alerts/rules",
      rule({ kind, threshold: kind === "no_traffic" ? 0 : 0.5, services: [], teams: ["Ops Team"] }),
    );
    assert.equal(ok.status, 201, ok.text);
  }
  assert.equal((await call(admin, "DELETE", `/alerts/rules/${used.json.id}`)).status, 204);
  assert.equal((await call(admin, "DELETE", `/alerts/rules/${used.json.id}`)).status, 404);
  assert.equal((await call(reader, "GET", `/alerts/rules/${used.json.id}`)).status, 404);
  assert.equal((await call(admin, "PUT", `/alerts/rules/${used.json.id}`, rule())).status, 404);

  const [c] = await audits("alert_rule.create");
  assert.equal(c.target, `alert_rule#${r.id}`);
  assert.equal(c.detail.kind, "error_rate");
  const [u] = await audits("alert_rule.update");
  assert.equal(u.detail.kind, "latency_p99");
  assert.equal((u.detail.before as { kind: string }).kind, "error_rate");
  assert.equal((await audits("alert_rule.delete"))[0].target, `alert_rule#${used.json.id}`);
});

dbTest("[alerts] rules: every bad field is a 400 naming it, and nothing is written", async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ kind: "errors" }, "kind"],
    [{ threshold: 150 }, "threshold"],
    [{ threshold: -1 }, "threshold"],
    [{ threshold: "5" }, "threshold"],
    [{ kind: "latency_p95", threshold: 0 }, "threshold"],
    [{ kind: "no_traffic", threshold: 5 }, "threshold"],
    [{ kind: "volume_drop", threshold: 1.5 }, "threshold"],
    [{ kind: "volume_drop", threshold: 0 }, "threshold"],
    [{ window: "30s" }, "window"],
    [{ window: "25h" }, "window"],
    [{ window: "5x" }, "window"],
    [{ window: 300 }, "window"],
    [{ for: "1441m" }, "for"],
    [{ severity: "urgent" }, "severity"],
    [{ channels: ["nope"] }, "channels[0]"],
    [{ channels: ["payments-hook", "nope"] }, "channels[1]"],
    [{ services: ["checkout-service", "ghost-service"] }, "services[1]"],
    [{ services: ["bad name!"] }, "services.0"],
    [{ labels: { severity: "x" } }, "labels.severity"],
    [{ labels: { "1bad": "x" } }, "labels.1bad"],
    [{ name: "" }, "name"],
    [{ colour: "red" }, "colour"],
  ];
  for (const [over, field] of cases) {
    await refused(admin, "POST", "/alerts/rules", rule(over), field, "alert_rules");
  }
  const [{ id }] = await db.sql`select id::int from alert_rules order by id limit 1`;
  const [before] = await db.sql`select * from alert_rules where id = ${id}`;
  await refused(
    admin,
    "PUT",
    `/alerts/rules/${id}`,
    rule({ window: "2d" }),
    "window",
    "alert_rules",
  );
  const [after] = await db.sql`select * from alert_rules where id = ${id}`;
  assert.deepEqual(after, before, "unchanged");
  await refused(admin, "GET", "/alerts/rules/abc", undefined, "id", "alert_rules");
});

dbTest(
  "[alerts] SLOs: created, listed, read with their figures, deleted",
  async () => {
    const a = await call(admin, "POST", "/slos", {
      service: "checkout-service",
      name: "availability",
      objective: 99.9,
      period_days: 30,
      indicator: "availability",
    });
    assert.equal(a.status, 201, a.text);
    assert.equal(a.json.team, "Payments Team");
    assert.equal(a.json.latency_threshold_ms, null);
    const l = await call(admin, "POST", "/slos", {
      service: "auth-service",
      name: "fast logins",
      objective: 99,
      period_days: 28,
      indicator: "latency",
      latency_threshold_ms: 300,
    });
    assert.equal(l.status, 201, l.text);
    const list = await call(reader, "GET", "/slos");
    assert.deepEqual(list.json, [l.json, a.json], "by service, then name");
    const one = await call(reader, "GET", `/slos/${a.json.id}`);
    // No events yet: no SLI or budget, nothing burning, nothing alerting.
    assert.deepEqual(one.json, {
      ...a.json,
      sli: null,
      error_budget_remaining: null,
      burn_rates: { "5m": 0, "30m": 0, "1h": 0, "6h": 0, "24h": 0, "3d": 0 },
      alerting: [],
    });

    const dup = await call(admin, "POST", "/slos", {
      service: "checkout-service",
      name: "availability",
      objective: 99,
      period_days: 28,
      indicator: "availability",
    });
    assert.equal(dup.status, 409, dup.text);

    const good = {
      service: "checkout-service",
      name: "x",
      objective: 99.5,
      period_days: 28,
      indicator: "availability",
    };
    const cases: [Record<string, unknown>, string][] = [
      [{ indicator: "latency" }, "latency_threshold_ms"],
      [{ latency_threshold_ms: 200 }, "latency_threshold_ms"],
      [{ indicator: "latency", latency_threshold_ms: 0 }, "latency_threshold_ms"],
      [{ period_days: 31 }, "period_days"],
      [{ objective: 100 }, "objective"],
      [{ objective: 0 }, "objective"],
      [{ indicator: "throughput" }, "indicator"],
      [{ service: "ghost-service" }, "service"],
      [{ name: "" }, "name"],
    ];
    for (const [over, field] of cases) {
      await refused(
        admin,
        "POST",
        "/slos",
        { ...good, ...over },
        field,
        "slos",
      );
    }

    assert.equal((await call(admin, "DELETE", `/slos/${l.json.id}`)).status, 204);
    assert.equal((await call(admin, "DELETE", `/slos/${l.json.id}`)).status, 404);
    assert.equal((await call(reader, "GET", `/slos/${l.json.id}`)).status, 404);
    assert.equal((await audits("slo.create")).length, 2);
    const [d] = await audits("slo.delete");
    assert.equal(d.target, `slo#${l.json.id}`);
    assert.equal(d.detail.service, "auth-service");
  },
);

dbTest(
  "[alerts] silences: created, listed while active, expired, audited; bad ones refused",
  async () => {
    const ends = new Date(Date.now() + 3_600_000).toISOString();
    const s = await call(admin, "POST", "/alerts/silences", {
      matchers: { service: "checkout-service" },
      ends_at: ends,
      comment: "deploy",
    });
    assert.equal(s.status, 201, s.text);
    assert.equal(s.json.active, true);
    assert.equal(s.json.created_by, "api-key#1");
    assert.equal(s.json.ends_at, ends);
    assert.deepEqual((await call(reader, "GET", "/alerts/silences")).json, [s.json]);

    const p = "/alerts/silences";
    const good = { matchers: { team: "Ops Team" }, ends_at: ends, comment: "" };
    const past = new Date(Date.now() - 1000).toISOString();
    const far = new Date(Date.now() + 31 * 86_400_000).toISOString();
    await refused(admin, "POST", p, { ...good, matchers: {} }, "matchers", "alert_silences");
    await refused(admin, "POST", p, { ...good, ends_at: past }, "ends_at", "alert_silences");
    await refused(admin, "POST", p, { ...good, ends_at: far }, "ends_at", "alert_silences");
    await refused(admin, "POST", p, { ...good, ends_at: "tomorrow" }, "ends_at", "alert_silences");
    await refused(
      admin,
      "POST",
      p,
      { ...good, matchers: { rule: 999999 } },
      "matchers.rule",
      "alert_silences",
    );
    await refused(
      admin,
      "POST",
      p,
      { ...good, matchers: { service: "ghost-service" } },
      "matchers.service",
      "alert_silences",
    );
    await refused(
      admin,
      "POST",
      p,
      { ...good, matchers: { host: "x" } },
      "matchers.host",
      "alert_silences",
    );
    await refused(
      admin,
      "POST",
      p,
      { ...good, comment: "x".repeat(1001) },
      "comment",
      "alert_silences",
    );

    assert.equal((await call(admin, "DELETE", `/alerts/silences/${s.json.id}`)).status, 204);
    assert.deepEqual((await call(reader, "GET", "/alerts/silences")).json, []);
    const all = await call(reader, "GET", "/alerts/silences?all=true");
    assert.equal(all.json.length, 1);
    assert.equal(all.json[0].active, false);
    assert.ok(Date.parse(all.json[0].ends_at) <= Date.now());
    // Expiring an ended silence changes nothing and records nothing.
    assert.equal((await call(admin, "DELETE", `/alerts/silences/${s.json.id}`)).status, 204);
    assert.equal((await call(admin, "DELETE", "/alerts/silences/999999")).status, 404);
    assert.equal((await audits("silence.create")).length, 1);
    const expired = await audits("silence.expire");
    assert.equal(expired.length, 1);
    assert.equal(expired[0].target, `silence#${s.json.id}`);
  },
);

dbTest(
  "[alerts] rights: readers read, team writers change their team's definitions only",
  async () => {
    const rules = await count("alert_rules");
    // A reader cannot change anything; an unscoped writer neither.
    for (const token of [reader, writer]) {
      const r = await call(token, "POST", "/alerts/rules", rule());
      assert.equal(r.status, 403, r.text);
      assert.equal(
        (await call(token, "POST", "/alerts/channels", {
          name: "x",
          type: "slack",
          url: "https://x.example.com",
        })).status,
        403,
      );
      assert.equal(
        (await call(token, "POST", "/slos", {
          service: "checkout-service",
          name: "r",
          objective: 99,
          period_days: 28,
          indicator: "availability",
        })).status,
        403,
      );
    }
    assert.equal(await count("alert_rules"), rules);
    // Writers hold no read right.
    assert.equal((await call(payments, "GET", "/alerts/rules")).status, 403);

    const mine = await call(payments, "POST", "/alerts/rules", rule({ name: "mine" }));
    assert.equal(mine.status, 201, mine.text);
    const team = await call(
      payments,
      "POST",
      "/alerts/rules",
      rule({ name: "team", services: [], teams: ["Payments Team"] }),
    );
    assert.equal(team.status, 201, team.text);
    for (
      const over of [
        { services: ["auth-service"] },
        { services: ["checkout-service", "auth-service"] },
        { services: [], teams: ["Ops Team"] },
        { services: [] },
      ]
    ) {
      const r = await call(payments, "POST", "/alerts/rules", rule(over));
      assert.equal(r.status, 403, `${JSON.stringify(over)}: ${r.text}`);
    }
    assert.equal(await count("alert_rules"), rules + 2);
    // Another team's rule (made by an admin) can be neither changed nor deleted.
    const theirs = await call(admin, "POST", "/alerts/rules", rule({ services: ["auth-service"] }));
    assert.equal(
      (await call(payments, "PUT", `/alerts/rules/${theirs.json.id}`, rule())).status,
      403,
    );
    assert.equal((await call(payments, "DELETE", `/alerts/rules/${theirs.json.id}`)).status, 403);
    // Nor can its own be given to another team's service.
    assert.equal(
      (await call(
        payments,
        "PUT",
        `/alerts/rules/${mine.json.id}`,
        rule({ services: ["auth-service"] }),
      )).status,
      403,
    );
    assert.equal(
      (await call(payments, "PUT", `/alerts/rules/${mine.json.id}`, rule({ threshold: 9 }))).status,
      200,
    );
    assert.equal((await call(payments, "DELETE", `/alerts/rules/${mine.json.id}`)).status, 204);

    // SLOs and silences likewise.
    const slo = { name: "team slo", objective: 99, period_days: 28, indicator: "availability" };
    assert.equal(
      (await call(payments, "POST", "/slos", { ...slo, service: "inventory-service" })).status,
      403,
    );
    const own = await call(payments, "POST", "/slos", { ...slo, service: "checkout-service" });
    assert.equal(own.status, 201, own.text);
    assert.equal((await call(payments, "DELETE", `/slos/${own.json.id}`)).status, 204);
    const ends = new Date(Date.now() + 60_000).toISOString();
    const sil = (matchers: Record<string, unknown>) => ({ matchers, ends_at: ends, comment: "" });
    assert.equal(
      (await call(payments, "POST", "/alerts/silences", sil({ service: "auth-service" }))).status,
      403,
    );
    assert.equal(
      (await call(payments, "POST", "/alerts/silences", sil({ team: "Ops Team" }))).status,
      403,
    );
    assert.equal(
      (await call(payments, "POST", "/alerts/silences", sil({ rule: theirs.json.id }))).status,
      403,
    );
    const ok = await call(payments, "POST", "/alerts/silences", sil({ rule: team.json.id }));
    assert.equal(ok.status, 201, ok.text);
    assert.equal((await call(payments, "DELETE", `/alerts/silences/${ok.json.id}`)).status, 204);
    const adminSilence = await call(
      admin,
      "POST",
      "/alerts/silences",
      sil({ service: "auth-service" }),
    );
    assert.equal(
      (await call(payments, "DELETE", `/alerts/silences/${adminSilence.json.id}`)).status,
      403,
    );
    // Channels and teams need admin.
    assert.equal(
      (await call(payments, "POST", "/alerts/channels", {
        name: "x",
        type: "slack",
        url: "https://x.example.com",
      })).status,
      403,
    );
    assert.equal((await call(payments, "DELETE", "/alerts/channels/payments-hook")).status, 403);

    // A team's reader sees the rules, SLOs and silences about its services (and global rules).
    const seen = (await call(teamReader, "GET", "/alerts/rules")).json.map((r: { id: number }) =>
      r.id
    );
    assert.ok(seen.includes(team.json.id));
    assert.ok(!seen.includes(theirs.json.id));
    assert.equal((await call(teamReader, "GET", `/alerts/rules/${theirs.json.id}`)).status, 403);
    const slos = (await call(teamReader, "GET", "/slos")).json;
    assert.ok(
      slos.every((s: { service: string }) => s.service === "checkout-service"),
      JSON.stringify(slos),
    );
    assert.deepEqual((await call(teamReader, "GET", "/alerts/silences")).json, []);
    // Each change by the team's key is audited under its name.
    const [made] = await db
      .sql`select actor from audit_log where action = 'alert_rule.create' and target = ${`alert_rule#${mine.json.id}`}`;
    assert.match(made.actor, /^key#\d+$/);
  },
);

dbTest("[alerts] done", async () => {
  await server.shutdown();
  await db.drop();
});
