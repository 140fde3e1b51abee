// Alert evaluation (issue 16): rules and SLOs measured on the rollups, their state moved
// through episodes, notices sent to a real HTTP receiver in Alertmanager's webhook format (or
// Slack's), with silences and retries. Events are placed in the past (inside retention) and the
// evaluation is run "at" a chosen time, so burn-rate windows are exercised without waiting.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { type RuleDef, type SloDef, sloStatuses } from "../src/alerts/evaluate.ts";
import { type AlertRunOptions, type Definitions, runAlerts } from "../src/alerts/run.ts";
import { signature } from "../src/alerts/notify.ts";
import { runAlertsJob } from "../src/jobs/alerts.ts";
import { createMetrics } from "../src/metrics/registry.ts";
import { collectDatabaseMetrics } from "../src/metrics/collect.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { postEvents } from "./helpers/events.ts";

const db = await preparedDatabase();
const app = buildApp({ sql: db.sql, config: testConfig({ RETENTION_DAYS: "7" }) });

/** A receiver that records what it gets and answers with the statuses queued (else 200). */
function receiver() {
  const got: { body: Record<string, unknown>; headers: Headers; raw: string }[] = [];
  const answers: number[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const raw = await req.text();
    got.push({ body: JSON.parse(raw), headers: req.headers, raw });
    return new Response(null, { status: answers.shift() ?? 200 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/hook`,
    got,
    answers,
    close: () => server.shutdown(),
  };
}

const uniq = (p: string) => `${p}-${crypto.randomUUID().slice(0, 8)}`;
const MIN = 60_000;
const HOUR = 60 * MIN;

async function channel(name: string, url: string, type = "webhook", secret: string | null = null) {
  const [row] = await db.sql`
    insert into alert_channels (name, type, url, secret) values (${name}, ${type}, ${url}, ${secret})
    returning id`;
  return { id: Number(row.id), name, type: type as "webhook" | "slack", url, secret };
}

/** Events of one service, `n` per minute over [from, to), `badEvery`-th one a 503. */
function spread(service: string, from: number, to: number, perMinute: number, badEvery: number) {
  const events: Record<string, unknown>[] = [];
  let i = 0;
  for (let t = from; t < to; t += MIN / perMinute) {
    i++;
    events.push({
      service_name: service,
      status_code: badEvery > 0 && i % badEvery === 0 ? 503 : 200,
      latency_ms: 10 + (i % 50),
      timestamp: new Date(t).toISOString(),
    });
  }
  return events;
}

async function post(events: Record<string, unknown>[]) {
  for (let i = 0; i < events.length; i += 5000) await postEvents(app, events.slice(i, i + 5000));
}

const opts = (over: Partial<AlertRunOptions> = {}): AlertRunOptions => ({
  repeatMs: 4 * HOUR,
  defaultChannel: undefined,
  delivery: { timeoutMs: 2000, backoffMs: [50, 100], publicUrl: "https://observian.example" },
  ...over,
});

function defs(over: Partial<Definitions>): Definitions {
  return { rules: [], slos: [], channels: [], teamChannels: new Map(), silences: [], ...over };
}

function rule(over: Partial<RuleDef>): RuleDef {
  return {
    id: Math.floor(Math.random() * 1e9),
    name: uniq("rule"),
    services: [],
    teams: [],
    kind: "error_rate",
    threshold: 5,
    windowS: 300,
    forS: 0,
    severity: "page",
    channels: [],
    labels: {},
    ...over,
  };
}

dbTest(
  "[alerts] an error-rate rule: pending, firing after `for`, one notice, resolved",
  async () => {
    const hook = receiver();
    try {
      const svc = uniq("checkout");
      const ch = await channel(uniq("ops"), hook.url, "webhook", "s3cret");
      const now = Date.now() - 2 * HOUR;
      // 20% errors over the 10 minutes before `now`.
      await post(spread(svc, now - 10 * MIN, now, 60, 5));
      const r = rule({
        services: [svc],
        windowS: 300,
        forS: 120,
        threshold: 5,
        channels: [ch.name],
      });
      const d = defs({ rules: [r], channels: [ch] });

      let res = await runAlerts(db.sql, d, new Date(now), opts());
      assert.equal(res.pending, 1);
      assert.equal(hook.got.length, 0, "pending: no notice yet");
      res = await runAlerts(db.sql, d, new Date(now + MIN), opts());
      assert.equal(res.pending, 1, "still within `for`");
      res = await runAlerts(db.sql, d, new Date(now + 2 * MIN), opts());
      assert.equal(res.firing, 1);
      assert.equal(hook.got.length, 1);
      const { body, headers, raw } = hook.got[0];
      assert.equal(headers.get("x-observian-signature-256"), signature("s3cret", raw));
      assert.equal(body.version, "4");
      assert.equal(body.status, "firing");
      assert.equal(body.receiver, ch.name);
      const alert = (body.alerts as Record<string, Record<string, string>>[])[0];
      assert.equal(alert.status as unknown, "firing");
      assert.equal(alert.labels.service, svc);
      assert.equal(alert.labels.alertname, r.name);
      assert.equal(alert.labels.severity, "page");
      assert.equal(alert.endsAt as unknown, "0001-01-01T00:00:00Z");
      assert.equal(alert.generatorURL as unknown, `https://observian.example/services/${svc}`);
      // 20% of the events, read in whole minutes (the window's edges are minute buckets).
      const value = Number(alert.annotations.value);
      assert.ok(value > 15 && value < 25, alert.annotations.value);

      // Evaluated again (a restart reads the same rows): no second firing notice.
      await runAlerts(db.sql, d, new Date(now + 3 * MIN), opts());
      assert.equal(hook.got.length, 1);
      // After the repeat interval, a reminder.
      await runAlerts(db.sql, d, new Date(now + 3 * MIN), opts({ repeatMs: 30_000 }));
      assert.equal(hook.got.length, 2);

      // The errors leave the window (5 minutes without events): resolved, one notice.
      res = await runAlerts(db.sql, d, new Date(now + 7 * MIN), opts());
      assert.equal(res.firing, 0);
      assert.equal(hook.got.length, 3);
      assert.equal(hook.got[2].body.status, "resolved");
      await runAlerts(db.sql, d, new Date(now + 8 * MIN), opts());
      assert.equal(hook.got.length, 3, "one resolved notice");

      const deliveries = await db.sql`
      select status, outcome, http_status from alert_deliveries where channel_name = ${ch.name}
      order by id`;
      assert.deepEqual(deliveries.map((x) => x.status), ["firing", "firing", "resolved"]);
      assert.ok(deliveries.every((x) => x.outcome === "delivered" && x.http_status === 200));
    } finally {
      await hook.close();
    }
  },
);

dbTest("[alerts] 5xx is retried with backoff, 4xx is not; silences suppress", async () => {
  const hook = receiver();
  try {
    const svc = uniq("billing");
    const ch = await channel(uniq("retry"), hook.url);
    const now = Date.now() - 3 * HOUR;
    await post(spread(svc, now - 5 * MIN, now, 30, 2));
    const r = rule({ services: [svc], channels: [ch.name] });

    // Silenced by rule: state is tracked, nothing is sent.
    let res = await runAlerts(
      db.sql,
      defs({ rules: [r], channels: [ch], silences: [{ matchers: { rule: r.id } }] }),
      new Date(now),
      opts(),
    );
    assert.equal(res.firing, 1);
    assert.equal(res.notices.silenced, 1);
    assert.equal(hook.got.length, 0);

    // Silence over: two 503s, then delivered on the third attempt.
    hook.answers.push(503, 503);
    res = await runAlerts(db.sql, defs({ rules: [r], channels: [ch] }), new Date(now), opts());
    assert.equal(res.notices.sent, 1);
    assert.equal(hook.got.length, 3);
    const attempts = await db.sql`
      select attempt, outcome, http_status from alert_deliveries where channel_name = ${ch.name}
      order by id`;
    assert.deepEqual(attempts.map((a) => [a.attempt, a.outcome, a.http_status]), [
      [1, "failed", 503],
      [2, "failed", 503],
      [3, "delivered", 200],
    ]);

    // A 4xx is final for this run: one attempt; the notice is due again next run.
    const r2 = rule({ services: [svc], channels: [ch.name], name: uniq("other") });
    hook.answers.push(400);
    res = await runAlerts(db.sql, defs({ rules: [r, r2], channels: [ch] }), new Date(now), opts());
    assert.equal(res.notices.failed, 1);
    assert.equal(hook.got.length, 4);
    res = await runAlerts(db.sql, defs({ rules: [r, r2], channels: [ch] }), new Date(now), opts());
    assert.equal(res.notices.sent, 1);
    assert.equal(hook.got.length, 5);
  } finally {
    await hook.close();
  }
});

dbTest("[alerts] the owning team's channel, else the default; Slack's format", async () => {
  const hook = receiver();
  try {
    const team = uniq("Team");
    const svc = uniq("search");
    await db.sql`insert into services (name, team_owner) values (${svc}, ${team})`;
    const slack = await channel(uniq("slack"), hook.url, "slack");
    const now = Date.now() - 4 * HOUR;
    await post(spread(svc, now - 5 * MIN, now, 30, 2));
    const r = rule({ teams: [team], severity: "ticket" });
    const res = await runAlerts(
      db.sql,
      defs({ rules: [r], channels: [slack], teamChannels: new Map([[team, slack.name]]) }),
      new Date(now),
      opts(),
    );
    assert.equal(res.notices.sent, 1);
    const body = hook.got[0].body as { text: string; blocks: unknown[] };
    assert.match(
      body.text,
      new RegExp(`FIRING \\[ticket\\] ${r.name} on ${svc} \\(team ${team}\\)`),
    );
    assert.ok(body.blocks.length >= 1);

    // No team channel: the default channel by name.
    const svc2 = uniq("solo");
    await post(spread(svc2, now - 5 * MIN, now, 30, 2));
    const res2 = await runAlerts(
      db.sql,
      defs({ rules: [rule({ services: [svc2] })], channels: [slack] }),
      new Date(now),
      opts({ defaultChannel: slack.name }),
    );
    assert.equal(res2.notices.sent, 1);
  } finally {
    await hook.close();
  }
});

dbTest("[alerts] no_traffic and volume_drop", async () => {
  const svc = uniq("quiet");
  const now = Date.now() - 5 * HOUR;
  // Traffic until 20 minutes before `now`, and a week earlier a busier same window.
  await post(spread(svc, now - 60 * MIN, now - 20 * MIN, 10, 0));
  const silent = rule({ kind: "no_traffic", services: [], windowS: 600, threshold: 0 });
  const res = await runAlerts(db.sql, defs({ rules: [silent] }), new Date(now), opts());
  const mine = res.rows.filter((r) => r.sourceId === silent.id);
  const svcId = Number((await db.sql`select id from services where name = ${svc}`)[0].id);
  assert.equal(mine.find((r) => r.serviceId === svcId)?.state, "firing", "went silent");
  // A service that never had traffic is not watched unless named.
  assert.ok(mine.every((r) => r.serviceId === svcId || r.state !== "firing" || r.value === 0));

  const busy = uniq("busy");
  const weekAgo = now - 7 * 24 * HOUR;
  if (weekAgo > Date.now() - 7 * 24 * HOUR + HOUR) {
    await post(spread(busy, weekAgo - 30 * MIN, weekAgo, 20, 0));
    await post(spread(busy, now - 30 * MIN, now, 5, 0));
    const drop = rule({ kind: "volume_drop", services: [busy], windowS: 1800, threshold: 0.5 });
    const r2 = await runAlerts(db.sql, defs({ rules: [drop] }), new Date(now), opts());
    const row = r2.rows.find((r) => r.sourceId === drop.id)!;
    assert.equal(row.state, "firing");
    assert.ok(Math.abs(row.value! - 0.25) < 0.01, String(row.value));
  }
});

dbTest(
  "[alerts] SLOs: a fast burn pages, a slow burn opens a ticket, recovery resolves",
  async () => {
    const hook = receiver();
    try {
      const fast = uniq("slo-fast");
      const slow = uniq("slo-slow");
      const now = Math.floor((Date.now() - 8 * HOUR) / MIN) * MIN;
      // Fast: clean for three days, then half the last 10 minutes fail. 1 h burn ≈ 29 and 5 min
      // burn 50 (page), but the 3 days' burn is below 1 (no ticket).
      await post(spread(fast, now - 72 * HOUR, now - 10 * MIN, 3, 0));
      await post(spread(fast, now - 10 * MIN, now, 20, 2));
      // Slow: 2% errors for three days: every window burns at 2 (a ticket, never a page).
      await post(spread(slow, now - 72 * HOUR, now, 2, 50));
      const services = await db.sql<{ id: number; name: string }[]>`
      select id, name from services where name in ${db.sql([fast, slow])}`;
      const slo = (name: string, id: number): SloDef => ({
        id,
        serviceId: services.find((x) => x.name === name)!.id,
        serviceName: name,
        name: `${name} availability`,
        objective: 99,
        periodDays: 28,
        indicator: "availability",
        latencyThresholdMs: null,
      });
      const ch = await channel(uniq("slo-ch"), hook.url);
      const d = defs({ slos: [slo(fast, 5151), slo(slow, 5252)], channels: [ch] });
      const o = opts({ defaultChannel: ch.name });
      const notices = () =>
        hook.got.map(({ body }) => {
          const a = (body.alerts as { status: string; labels: Record<string, string> }[])[0];
          return `${a.status} ${a.labels.severity} ${a.labels.service}`;
        }).sort();

      await runAlerts(db.sql, d, new Date(now), o);
      assert.deepEqual(notices(), [`firing page ${fast}`, `firing ticket ${slow}`].sort());
      // A restart, or another instance, carries on the same episodes: nothing new.
      await runAlerts(db.sql, d, new Date(now + MIN), o);
      assert.equal(hook.got.length, 2);
      // 35 minutes on, the fast burn's 5 and 30 minute windows are clean: the page resolves. The
      // slow burn goes on.
      hook.got.length = 0;
      await runAlerts(db.sql, d, new Date(now + 35 * MIN), o);
      assert.deepEqual(notices(), [`resolved page ${fast}`]);
    } finally {
      await hook.close();
    }
  },
);

dbTest("[alerts] SLO burn rates match a direct computation over the events", async () => {
  const svc = uniq("slo");
  const now = Math.floor((Date.now() - 6 * HOUR) / HOUR) * HOUR;
  // Three days at 0.5% errors, and the last hour at 20%: a fast burn over a slow one.
  await post(spread(svc, now - 72 * HOUR, now - HOUR, 2, 200));
  await post(spread(svc, now - HOUR, now, 20, 5));
  const services = await db.sql<{ id: number; name: string; team: string | null }[]>`
    select id, name, team_owner as team from services where name = ${svc}`;
  const slo: SloDef = {
    id: 4242,
    serviceId: services[0].id,
    serviceName: svc,
    name: "checkout availability",
    objective: 99,
    periodDays: 28,
    indicator: "availability",
    latencyThresholdMs: null,
  };
  const st = (await sloStatuses(db.sql, [slo], services, new Date(now))).get(slo.id)!;
  for (
    const [w, ms] of [["5m", 5 * MIN], ["1h", HOUR], ["6h", 6 * HOUR], ["3d", 72 * HOUR]] as const
  ) {
    const [row] = await db.sql`
      select count(*)::float8 as n, count(*) filter (where e.status_code >= 500)::float8 as bad
        from log_events e join services s on s.id = e.service_id
       where s.name = ${svc} and e."timestamp" >= ${new Date(
      now - ms,
    )} and e."timestamp" <= ${new Date(now)}`;
    const expected = row.bad / row.n / 0.01;
    assert.ok(
      Math.abs(st.burnRates[w] - expected) < 1e-9,
      `${w}: ${st.burnRates[w]} vs ${expected}`,
    );
  }
  // A latency SLO: events above the threshold's latency bucket are the bad ones.
  const latency: SloDef = {
    ...slo,
    id: 4343,
    name: "checkout latency",
    indicator: "latency",
    latencyThresholdMs: 30,
  };
  const lt = (await sloStatuses(db.sql, [slo, latency], services, new Date(now))).get(latency.id)!;
  for (const [w, ms] of [["5m", 5 * MIN], ["6h", 6 * HOUR], ["3d", 72 * HOUR]] as const) {
    const [row] = await db.sql`
      select count(*)::float8 as n,
             count(*) filter (where observian_latency_index(e.latency_ms)
                                  > observian_latency_index(30))::float8 as bad
        from log_events e join services s on s.id = e.service_id
       where s.name = ${svc} and e."timestamp" >= ${new Date(now - ms)}
         and e."timestamp" <= ${new Date(now)}`;
    const expected = row.bad / row.n / 0.01;
    assert.ok(expected > 0, "some events are slow");
    assert.ok(
      Math.abs(lt.burnRates[w] - expected) < 1e-9,
      `${w}: ${lt.burnRates[w]} vs ${expected}`,
    );
  }
  assert.ok(st.alerting.includes("page"), JSON.stringify(st));
  assert.ok(st.alerting.includes("ticket"));
  assert.ok(st.errorBudgetRemaining! < 1 && st.sli! < 100);
});

dbTest("[alerts] the job: one run at a time across instances, GET /alerts, metrics", async () => {
  const hook = receiver();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  try {
    const svc = uniq("jobsvc");
    const ch = await channel(uniq("jobch"), hook.url);
    // Errors right now: the job evaluates at the real clock.
    await post(spread(svc, Date.now() - 4 * MIN, Date.now(), 30, 2));
    const [r] = await db.sql`
      insert into alert_rules (name, services, kind, threshold, window_s, severity, channels)
      values (${uniq("job-rule")}, ${JSON.stringify([svc])}::text::jsonb, 'error_rate', 10, 300,
              'page', ${JSON.stringify([ch.name])}::text::jsonb)
      returning id, name`;
    // Two instances' ticks at once: the lock lets one evaluate, the other skips.
    const config = testConfig({ RETENTION_DAYS: "7" });
    const metricsA = createMetrics({ processMetrics: false });
    const metricsB = createMetrics({ processMetrics: false });
    const runs = await Promise.all([
      runAlertsJob({ sql: db.sql, config, metrics: metricsA }),
      runAlertsJob({ sql: db.sql, config, metrics: metricsB }),
    ]);
    const outcomes = runs.map((x) => x.outcome).sort();
    assert.ok(
      outcomes.includes("success") &&
        (outcomes.includes("skipped_locked") || outcomes.every((o) => o === "success")),
      JSON.stringify(outcomes),
    );
    assert.equal(
      hook.got.filter((g) => (g.body.commonLabels as Record<string, string>).alertname === r.name)
        .length,
      1,
      "one notice",
    );

    const base = `http://127.0.0.1:${server.addr.port}`;
    const open = await (await fetch(`${base}/alerts?service_name=${svc}`)).json();
    assert.equal(open.length, 1);
    assert.equal(open[0].name, r.name);
    assert.equal(open[0].kind, "error_rate", "what the value is");
    assert.equal(open[0].state, "firing");
    assert.equal(open[0].silenced, false);
    const deliveries = await (await fetch(`${base}/alerts/deliveries?service_name=${svc}`)).json();
    assert.equal(deliveries[0].outcome, "delivered");
    // GET /slos/{id} answers the SLO's figures, computed from the same rollups.
    const [slo] = await db.sql`
      insert into slos (service_id, name, objective, period_days, indicator)
      select id, 'availability', 99, 28, 'availability' from services where name = ${svc}
      returning id`;
    const detail = await (await fetch(`${base}/slos/${slo.id}`)).json();
    assert.ok(detail.sli > 0 && detail.sli < 100, JSON.stringify(detail));
    assert.ok(detail.error_budget_remaining < 0, "half the events failed: the budget is spent");
    assert.ok(detail.burn_rates["5m"] > 14.4, JSON.stringify(detail.burn_rates));
    assert.deepEqual(detail.alerting, [], "not evaluated since it was created");
    const status = await (await fetch(`${base}/control/alerts-status`)).json();
    assert.equal(status.enabled, true);
    assert.ok(status.last_result.firing >= 1);
    const ran = runs[0].outcome === "success" ? metricsA : metricsB;
    assert.match(
      await ran.registry.metrics(),
      /observian_alert_notifications_total\{channel_type="webhook",outcome="delivered"\} [1-9]/,
    );
    // The alert and SLO gauges come from what the last run stored, read at scrape time: an
    // instance that did not run reports the same figures as the one that did.
    assert.equal((await runAlertsJob({ sql: db.sql, config, metrics: ran })).outcome, "success");
    for (const m of [metricsA, metricsB]) {
      assert.equal(await collectDatabaseMetrics(m, db.sql), true);
      const text = await m.registry.metrics();
      assert.match(text, /observian_alerts\{state="firing"\} [1-9]/);
      const value = (name: string, extra = "") => {
        const re = new RegExp(
          `^${name}\\{slo="availability",service="${svc}"${extra}\\} (\\S+)$`,
          "m",
        );
        const v = text.match(re)?.[1];
        assert.ok(v !== undefined, `${name}${extra} for ${svc}`);
        return Number(v);
      };
      assert.ok(Math.abs(value("observian_slo_sli") - detail.sli / 100) < 1e-9);
      assert.ok(
        Math.abs(value("observian_slo_error_budget_remaining") - detail.error_budget_remaining) <
          1e-9,
      );
      assert.ok(value("observian_slo_burn_rate", ',window="1h"') > 14.4);
    }
    // A deleted SLO's series go with it.
    await db.sql`delete from slos where id = ${slo.id}`;
    assert.equal(await collectDatabaseMetrics(metricsB, db.sql), true);
    assert.doesNotMatch(await metricsB.registry.metrics(), new RegExp(`service="${svc}"`));
  } finally {
    await server.shutdown();
    await hook.close();
  }
});

dbTest("[alerts] teardown", async () => {
  await db.drop();
});
