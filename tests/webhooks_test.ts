// GitHub webhooks (issue 14) over real HTTP: real payloads from @octokit/webhooks-examples,
// signed by @octokit/webhooks-methods as GitHub signs them, sent to the app on a socket.
import assert from "node:assert/strict";
import examples from "@octokit/webhooks-examples" with { type: "json" };
import { sign } from "@octokit/webhooks-methods";
import { buildApp } from "../src/app.ts";
import { dbTest, holdInserts, preparedDatabase, testConfig } from "./helpers/db.ts";

const SECRET = "It's a Secret to Everybody";
const NEXT_SECRET = "the-rotated-secret-2026";

const db = await preparedDatabase();
const servers: Deno.HttpServer[] = [];

/** The app with `env` on a socket; its base URL. */
function serve(env: Record<string, string>): string {
  const app = buildApp({ sql: db.sql, config: testConfig(env) });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  servers.push(server);
  return `http://127.0.0.1:${server.addr.port}`;
}

const base = serve({ GITHUB_WEBHOOK_SECRET: SECRET });

globalThis.addEventListener("unload", () => {
  for (const s of servers) s.shutdown();
});

/** The first example payload of an event (with `action`, and `which` holds), as a copy. */
function example(
  name: string,
  action?: string,
  which: (e: Record<string, unknown>) => boolean = () => true,
): Record<string, unknown> {
  const def = (examples as { name: string; examples: Record<string, unknown>[] }[])
    .find((d) => d.name === name);
  assert.ok(def, `no examples for ${name}`);
  const found = def.examples.find((e) => (action === undefined || e.action === action) && which(e));
  assert.ok(found, `no ${name}.${action} example`);
  return structuredClone(found);
}

/** A delivery as GitHub sends it: JSON body, event, delivery id and signature headers. */
async function deliver(
  event: string,
  payload: unknown,
  opts: { delivery?: string; secret?: string; signature?: string | null; url?: string } = {},
) {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "GitHub-Hookshot/044aadd",
    "x-github-event": event,
    "x-github-delivery": opts.delivery ?? crypto.randomUUID(),
    "x-github-hook-id": "109948940",
  };
  const signature = opts.signature === undefined
    ? await sign(opts.secret ?? SECRET, body)
    : opts.signature;
  if (signature !== null) headers["x-hub-signature-256"] = signature;
  const res = await fetch(`${opts.url ?? base}/webhooks/github`, {
    method: "POST",
    headers,
    body,
  });
  return { res, json: await res.json(), delivery: headers["x-github-delivery"] };
}

/** The events stored for one delivery, with their service's name. */
function storedFor(delivery: string) {
  return db.sql`select s.name as service_name, e.event_type, e.status_code, e.latency_ms,
      e.message, e.attributes, e.timestamp
    from log_events e join services s on s.id = e.service_id
    where e.attributes->>'delivery' = ${delivery}`;
}

dbTest("[webhooks] ping answers its hook id and stores nothing", async () => {
  const { res, json, delivery } = await deliver("ping", example("ping"));
  assert.equal(res.status, 200);
  assert.deepEqual(json, { hook_id: 109948940 });
  assert.equal((await storedFor(delivery)).length, 0);
});

dbTest("[webhooks] a missing or wrong signature is 401 and stores nothing", async () => {
  const payload = example("issues", "opened");
  const body = JSON.stringify(payload);
  const cases: [string, string | null][] = [
    ["missing", null],
    ["another secret", await sign("not the secret", body)],
    ["malformed", "sha1=abc"],
    // Right for another body: the signature must cover these bytes.
    ["another body", await sign(SECRET, body + " ")],
  ];
  for (const [why, signature] of cases) {
    const { res, json, delivery } = await deliver("issues", payload, { signature });
    assert.equal(res.status, 401, why);
    assert.equal(res.headers.get("content-type"), "application/problem+json", why);
    assert.equal(json.status, 401, why);
    assert.equal((await storedFor(delivery)).length, 0, why);
  }
});

dbTest(
  "[webhooks] signed, but without its headers or not an object: 400, nothing stored",
  async () => {
    const post = async (headers: Record<string, string>, body: string) =>
      await fetch(`${base}/webhooks/github`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-hub-signature-256": await sign(SECRET, body),
          ...headers,
        },
        body,
      });
    const body = JSON.stringify(example("issues", "opened"));
    const delivery = crypto.randomUUID();
    const cases: [string, Record<string, string>, string][] = [
      ["no x-github-event", { "x-github-delivery": delivery }, body],
      ["no x-github-delivery", { "x-github-event": "issues" }, body],
      ["an array", { "x-github-event": "issues", "x-github-delivery": delivery }, "[1]"],
      ["not JSON", { "x-github-event": "issues", "x-github-delivery": delivery }, "{"],
    ];
    for (const [why, headers, text] of cases) {
      const res = await post(headers, text);
      assert.equal(res.status, 400, why);
      const problem = await res.json();
      assert.equal(problem.status, 400, why);
    }
    assert.equal((await storedFor(delivery)).length, 0);
  },
);

dbTest("[webhooks] without GITHUB_WEBHOOK_SECRET the route does not exist (404)", async () => {
  const url = serve({});
  const { res, json, delivery } = await deliver("push", example("push"), { url });
  assert.equal(res.status, 404);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  assert.match(json.detail, /GITHUB_WEBHOOK_SECRET/);
  assert.equal((await storedFor(delivery)).length, 0);
});

dbTest("[webhooks] a pull_request is one event, mapped field by field", async () => {
  const payload = example("pull_request", "opened");
  const { res, json, delivery } = await deliver("pull_request", payload);
  assert.equal(res.status, 200, JSON.stringify(json));
  const rows = await storedFor(delivery);
  assert.equal(rows.length, 1);
  const [row] = rows;
  const repo = (payload.repository as { full_name: string }).full_name;
  const sender = (payload.sender as { login: string }).login;
  assert.equal(repo, "Codertocat/Hello-World");
  assert.deepEqual(json, {
    id: json.id,
    service_name: repo,
    event_type: "pull_request.opened",
    status_code: 200,
  });
  assert.ok(Number.isInteger(json.id) && json.id > 0);
  assert.equal(row.service_name, repo);
  assert.equal(row.event_type, "pull_request.opened");
  assert.equal(row.status_code, 200);
  assert.equal(Number(row.latency_ms), 0);
  assert.equal(row.message, `pull_request opened on ${repo} by ${sender}`);
  assert.deepEqual(row.attributes, {
    delivery,
    event: "pull_request",
    repo,
    actor: sender,
    action: "opened",
  });
  // Stamped when received: example payloads are years old.
  assert.ok(Math.abs(new Date(row.timestamp).getTime() - Date.now()) < 60_000);
});

dbTest("[webhooks] a push (no action) is typed by its event alone", async () => {
  const payload = example("push");
  const { res, delivery } = await deliver("push", payload);
  assert.equal(res.status, 200);
  const [row] = await storedFor(delivery);
  assert.equal(row.event_type, "push");
  assert.equal(row.service_name, "Codertocat/Hello-World");
  assert.deepEqual(row.attributes, {
    delivery,
    event: "push",
    repo: "Codertocat/Hello-World",
    actor: "Codertocat",
  });
});

dbTest("[webhooks] a redelivery (same X-GitHub-Delivery) is stored once", async () => {
  const payload = example("issues", "opened");
  const first = await deliver("issues", payload);
  assert.equal(first.res.status, 200);
  const again = await deliver("issues", payload, { delivery: first.delivery });
  assert.equal(again.res.status, 200);
  assert.deepEqual(again.json, first.json, "the answer names the event stored the first time");
  assert.equal((await storedFor(first.delivery)).length, 1);
});

dbTest("[webhooks] a completed workflow_run carries its conclusion and run time", async () => {
  const payload = example(
    "workflow_run",
    "completed",
    (e) => (e.workflow_run as { conclusion: unknown }).conclusion === "success",
  );
  const run = payload.workflow_run as Record<string, unknown>;
  assert.equal(run.conclusion, "success");
  const { res, json, delivery } = await deliver("workflow_run", payload);
  assert.equal(res.status, 200);
  assert.equal(json.status_code, 200);
  const [ok] = await storedFor(delivery);
  assert.equal(ok.event_type, "workflow_run.completed");
  assert.equal(ok.service_name, "octo-org/octo-repo");
  assert.equal(ok.attributes.conclusion, "success");
  assert.equal(ok.attributes.url, run.html_url);

  // The same run, timed out after 95.25 s of running (queued 25 s before that).
  run.conclusion = "timed_out";
  run.created_at = "2020-10-05T16:33:24Z";
  run.run_started_at = "2020-10-05T16:33:49Z";
  run.updated_at = "2020-10-05T16:35:24.250Z";
  const late = await deliver("workflow_run", payload);
  assert.equal(late.res.status, 200);
  const [row] = await storedFor(late.delivery);
  assert.equal(row.status_code, 504);
  assert.equal(Number(row.latency_ms), 95_250);
  assert.equal(row.attributes.conclusion, "timed_out");

  for (const [conclusion, status] of [["failure", 500], ["cancelled", 499]] as const) {
    run.conclusion = conclusion;
    const d = await deliver("workflow_run", payload);
    assert.equal(d.json.status_code, status, conclusion);
    assert.equal((await storedFor(d.delivery))[0].status_code, status, conclusion);
  }
  // Not completed: no outcome yet.
  const requested = await deliver("workflow_run", example("workflow_run", "requested"));
  assert.equal((await storedFor(requested.delivery))[0].status_code, 200);
  assert.equal(Number((await storedFor(requested.delivery))[0].latency_ms), 0);
});

dbTest("[webhooks] a completed check_suite: run time from created_at", async () => {
  const payload = example("check_suite", "completed");
  const { res, delivery } = await deliver("check_suite", payload);
  assert.equal(res.status, 200);
  const [row] = await storedFor(delivery);
  assert.equal(row.event_type, "check_suite.completed");
  assert.equal(row.status_code, 200);
  // 2019-05-15T15:20:31Z to 15:21:14Z.
  assert.equal(Number(row.latency_ms), 43_000);
});

dbTest("[webhooks] during rotation every listed secret is accepted", async () => {
  const url = serve({ GITHUB_WEBHOOK_SECRET: `${SECRET}, ${NEXT_SECRET}` });
  for (const secret of [SECRET, NEXT_SECRET]) {
    const { res, delivery } = await deliver("star", example("star", "created"), { url, secret });
    assert.equal(res.status, 200, secret);
    assert.equal((await storedFor(delivery)).length, 1);
  }
  // The app with the old secret alone refuses the new one.
  const { res } = await deliver("star", example("star", "created"), { secret: NEXT_SECRET });
  assert.equal(res.status, 401);
});

dbTest(
  "[webhooks] a commit that does not finish in time is 503, and redelivery stores once",
  async () => {
    const url = serve({ GITHUB_WEBHOOK_SECRET: SECRET, INGEST_COMMIT_TIMEOUT_MS: "300" });
    const payload = example("issues", "opened");
    const hold = await holdInserts(db.sql);
    let first;
    try {
      first = await deliver("issues", payload, { url });
    } finally {
      await hold.release();
    }
    assert.equal(first.res.status, 503);
    assert.ok(Number(first.res.headers.get("retry-after")) > 0);
    const again = await deliver("issues", payload, { url, delivery: first.delivery });
    assert.equal(again.res.status, 200, JSON.stringify(again.json));
    assert.equal((await storedFor(first.delivery)).length, 1);
  },
);

dbTest("[webhooks] deployment statuses and published releases become markers", async () => {
  const since = new Date(Date.now() - 1000).toISOString();
  const deployment = example("deployment_status");
  const first = await deliver("deployment_status", deployment);
  assert.equal(first.res.status, 200);
  // A redelivery adds no second marker.
  const again = await deliver("deployment_status", deployment, { delivery: first.delivery });
  assert.equal(again.res.status, 200);
  const inProgress = example(
    "deployment_status",
    undefined,
    (e) => (e.deployment_status as { state: string }).state === "in_progress",
  );
  await deliver("deployment_status", inProgress);
  await deliver("release", example("release", "published"));
  // Edited or deleted releases change nothing a chart shows.
  await deliver("release", example("release", "edited"));
  const until = new Date(Date.now() + 1000).toISOString();

  const q = new URLSearchParams({
    service_name: "Codertocat/Hello-World",
    start_time: since,
    end_time: until,
  });
  const res = await fetch(`${base}/markers?${q}`);
  assert.equal(res.status, 200);
  const markers = await res.json();
  assert.deepEqual(
    markers.map((m: Record<string, unknown>) => ({ ...m, time: undefined })),
    [
      {
        service_name: "Codertocat/Hello-World",
        time: undefined,
        kind: "deployment",
        title: "production: success",
        url: null,
      },
      {
        service_name: "Codertocat/Hello-World",
        time: undefined,
        kind: "deployment",
        title: "github-pages: in_progress",
        url: "https://github.com/Codertocat/Hello-World/runs/145988746?check_suite_focus=true",
      },
      {
        service_name: "Codertocat/Hello-World",
        time: undefined,
        kind: "release",
        title: "0.0.1",
        url: "https://github.com/Codertocat/Hello-World/releases/tag/0.0.1",
      },
    ],
  );
  for (const m of markers) {
    assert.ok(m.time >= since && m.time <= until, m.time);
  }
  // Another service, or a window before them: none.
  const other = await fetch(`${base}/markers?service_name=octo-org/octo-repo&start_time=${since}`);
  assert.deepEqual(await other.json(), []);
  const before = await fetch(`${base}/markers?end_time=${encodeURIComponent(since)}`);
  assert.deepEqual(await before.json(), []);
});
