// GET /logs/live-feed over real HTTP: the JSON latest-N answer and the Server-Sent Events stream.
import assert from "node:assert/strict";
import { spawnServer } from "../scripts/lib/server.ts";
import { buildApp } from "../src/app.ts";
import { createDb } from "../src/db/connect.ts";
import { EventWriter } from "../src/ingest/writer.ts";
import type { LogEventOut } from "../src/query/events.ts";
import { latestEvents } from "../src/live/queries.ts";
import { LIVE_MAX_RESUME, LiveFeed, type LiveGap } from "../src/live/feed.ts";
import { LiveHub } from "../src/live/hub.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { newEvent } from "./helpers/events.ts";
import { startTcpProxy } from "./helpers/tcp-proxy.ts";
import { eventually as waitUntil } from "./helpers/wait.ts";

const db = await preparedDatabase();
const config = testConfig({ LIVE_HEARTBEAT_S: "1" });
const hub = new LiveHub(db.sql);
const app = buildApp({ sql: db.sql, config, liveHub: hub });
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
const base = `http://127.0.0.1:${server.addr.port}`;

const uniq = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString();

interface EventIn {
  service_name: string;
  status_code: number;
  latency_ms: number;
  timestamp?: string;
  event_type?: string;
  message?: string;
}

async function post(events: EventIn | EventIn[], url = base): Promise<void> {
  const res = await fetch(`${url}/logs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  const text = await res.text();
  assert.equal(res.status, 201, text);
}

async function postOne(event: EventIn): Promise<number> {
  const res = await fetch(`${base}/logs`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(event),
  });
  assert.equal(res.status, 201);
  return (await res.json()).id;
}

async function getJson(query: string): Promise<{ status: number; body: LogEventOut[] }> {
  const res = await fetch(`${base}/logs/live-feed${query}`);
  return { status: res.status, body: await res.json() };
}

/** A Server-Sent Events client that keeps every `log` event and counts pings. */
class SseClient {
  logs: { event: string; id: string; data: LogEventOut }[] = [];
  pings = 0;
  /** How many log events had come when the first ping came. */
  beforeFirstPing: number | null = null;
  ended = false;
  #buf = "";
  #pending: Promise<ReadableStreamReadResult<string>> | null = null;
  readonly #reader: ReadableStreamDefaultReader<string>;

  constructor(readonly res: Response) {
    this.#reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  }

  static async open(query: string, headers: Record<string, string> = {}, url = base) {
    const res = await fetch(`${url}/logs/live-feed${query}`, {
      headers: { accept: "text/event-stream", ...headers },
    });
    if (res.status !== 200) throw new Error(`${res.status}: ${await res.text()}`);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    return new SseClient(res);
  }

  get ids(): number[] {
    return this.logs.map((l) => l.data.id);
  }

  /** Reads until `cond` holds; a generous timeout only turns a hang into a failure. */
  async until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.ended) throw new Error(`stream ended before ${what}; got ids ${this.ids}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ids ${this.ids}`);
      this.#pending ??= this.#reader.read();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const r = await Promise.race([
        this.#pending,
        new Promise<null>((res) => timer = setTimeout(() => res(null), left)),
      ]);
      clearTimeout(timer);
      if (r === null) continue;
      this.#pending = null;
      if (r.done) this.ended = true;
      else this.#parse(r.value);
    }
  }

  #parse(chunk: string) {
    this.#buf += chunk;
    let i;
    while ((i = this.#buf.indexOf("\n\n")) >= 0) {
      const block = this.#buf.slice(0, i);
      this.#buf = this.#buf.slice(i + 2);
      const fields: Record<string, string> = {};
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) {
          if (line.trim() === ": ping") {
            this.beforeFirstPing ??= this.logs.length;
            this.pings++;
          }
          continue;
        }
        const at = line.indexOf(": ");
        fields[line.slice(0, at)] = line.slice(at + 2);
      }
      if (fields.event) {
        const data = JSON.parse(fields.data);
        this.logs.push({ event: fields.event, id: fields.id, data });
      }
    }
  }

  async close() {
    await this.#reader.cancel().catch(() => {});
  }
}

/** Polls a condition on server state (not on time) until it holds. */
const eventually = (cond: () => boolean | Promise<boolean>, what: string) =>
  waitUntil(what, cond, 15_000, 20);

function assertNewestFirst(events: LogEventOut[]) {
  for (let i = 1; i < events.length; i++) {
    const [a, b] = [events[i - 1], events[i]];
    assert.ok(
      a.timestamp > b.timestamp || (a.timestamp === b.timestamp && a.id > b.id),
      `${a.id}@${a.timestamp} before ${b.id}@${b.timestamp}`,
    );
  }
}

dbTest("[live] JSON: the latest 25 by default, newest first, limit honoured", async () => {
  const svc = uniq("json-latest");
  // 30 events, an hour apart from oldest to newest, two of them sharing a timestamp.
  const events = Array.from({ length: 30 }, (_, i) => ({
    service_name: svc,
    status_code: 200,
    latency_ms: i,
    timestamp: ago((30 - i) * 60),
  }));
  events[29].timestamp = events[28].timestamp;
  await post(events);

  const def = await getJson(`?service_name=${svc}`);
  assert.equal(def.status, 200);
  assert.equal(def.body.length, 25);
  assertNewestFirst(def.body);
  assert.ok(def.body.every((e: LogEventOut) => e.service_name === svc));
  // The newest are the last two posted (same time, higher id first), the oldest five are out.
  assert.deepEqual(def.body.slice(0, 2).map((e: LogEventOut) => e.latency_ms).sort(), [28, 29]);
  assert.ok(def.body[0].id > def.body[1].id);
  assert.equal(Math.min(...def.body.map((e: LogEventOut) => e.latency_ms)), 5);

  const three = await getJson(`?service_name=${svc}&limit=3`);
  assert.deepEqual(three.body, def.body.slice(0, 3));
  const max = await getJson(`?service_name=${svc}&limit=500`);
  assert.equal(max.body.length, 30);
  assertNewestFirst(max.body);
  // No Accept, or a JSON one, is JSON.
  const res = await fetch(`${base}/logs/live-feed?service_name=${svc}&limit=1`, {
    headers: { accept: "application/json" },
  });
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  // Varies by Accept (JSON or a stream), and by Accept-Encoding (gzipped when asked).
  assert.match(res.headers.get("vary") ?? "", /^Accept\b/);
  assert.deepEqual(await res.json(), def.body.slice(0, 1));
});

dbTest("[live] JSON: the filters of GET /logs apply", async () => {
  const svc = uniq("json-filter");
  const other = uniq("json-other");
  const type = uniq("type");
  await post([
    { service_name: svc, status_code: 200, latency_ms: 5, timestamp: ago(500) },
    { service_name: svc, status_code: 503, latency_ms: 300, timestamp: ago(400), event_type: type },
    { service_name: svc, status_code: 500, latency_ms: 10, timestamp: ago(300) },
    { service_name: svc, status_code: 404, latency_ms: 900, timestamp: ago(200) },
    { service_name: other, status_code: 503, latency_ms: 300, timestamp: ago(100) },
  ]);
  const codes = (body: LogEventOut[]) => body.map((e) => e.status_code);

  assert.deepEqual(codes((await getJson(`?service_name=${svc}&status_class=5xx`)).body), [
    500,
    503,
  ]);
  assert.deepEqual(codes((await getJson(`?service_name=${svc}&status_code=503`)).body), [503]);
  assert.deepEqual(codes((await getJson(`?service_name=${svc}&min_latency_ms=250`)).body), [
    404,
    503,
  ]);
  assert.deepEqual(codes((await getJson(`?service_name=${svc}&event_type=${type}`)).body), [503]);
  // Without service_name (another query plan).
  const typed = (await getJson(`?event_type=${type}`)).body;
  assert.deepEqual(typed.map((e) => [e.service_name, e.status_code]), [[svc, 503]]);
  const window = `&start_time=${ago(450)}&end_time=${ago(250)}`;
  assert.deepEqual(codes((await getJson(`?service_name=${svc}${window}`)).body), [500, 503]);
  const both = (await getJson(`?service_name=${svc},${other}&status_code=503`)).body;
  assert.deepEqual(both.map((e: LogEventOut) => e.service_name), [other, svc]);
});

dbTest("[live] bad parameters are a 400 problem naming each field", async () => {
  const cases: [string, string][] = [
    ["?limit=0", "limit"],
    ["?limit=501", "limit"],
    ["?limit=ten", "limit"],
    ["?status_code=99", "status_code"],
    ["?status_class=6xx", "status_class"],
    ["?start_time=yesterday", "start_time"],
    [`?start_time=${ago(10)}&end_time=${ago(100)}`, "start_time"],
    ["?service_name=bad%20name", "service_name"],
    ["?last_event_id=-1", "last_event_id"],
  ];
  for (const [query, field] of cases) {
    for (const accept of ["application/json", "text/event-stream"]) {
      const res = await fetch(`${base}/logs/live-feed${query}`, { headers: { accept } });
      assert.equal(res.status, 400, `${query} (${accept})`);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      const body = await res.json();
      assert.ok(
        body.errors.some((e: { field: string }) => e.field === field),
        `${query}: ${JSON.stringify(body.errors)}`,
      );
    }
  }
  const res = await fetch(`${base}/logs/live-feed`, {
    headers: { accept: "text/event-stream", "last-event-id": "abc" },
  });
  assert.equal(res.status, 400);
  assert.deepEqual((await res.json()).errors.map((e: { field: string }) => e.field), [
    "last-event-id",
  ]);
});

dbTest("[live] SSE: the latest events oldest first, then a new one exactly once", async () => {
  const svc = uniq("sse-basic");
  await post([1, 2, 3, 4, 5].map((i) => ({
    service_name: svc,
    status_code: 200,
    latency_ms: i,
    timestamp: ago(100 - i),
  })));
  const client = await SseClient.open(`?service_name=${svc}&limit=3`);
  try {
    await client.until(() => client.logs.length >= 3, "the initial events");
    assert.deepEqual(client.logs.map((l) => l.data.latency_ms), [3, 4, 5]);
    assert.ok(client.logs.every((l) => l.event === "log" && l.id === String(l.data.id)));

    await post({ service_name: svc, status_code: 201, latency_ms: 6 });
    await client.until(() => client.logs.length >= 4, "the new event");
    // A later event proves nothing more was on its way before it (notices are handled in order).
    await post({ service_name: svc, status_code: 202, latency_ms: 7 });
    await client.until(() => client.ids.length >= 5, "the marker event");
    assert.deepEqual(client.logs.map((l) => l.data.latency_ms), [3, 4, 5, 6, 7]);
    assert.equal(new Set(client.ids).size, 5);
    const fresh = client.logs[3].data;
    assert.equal(fresh.service_name, svc);
    assert.equal(fresh.status_code, 201);
    assert.equal(typeof fresh.timestamp, "string");
  } finally {
    await client.close();
  }
});

dbTest("[live] SSE: filters apply to streamed events", async () => {
  const svc = uniq("sse-filter");
  const client = await SseClient.open(`?service_name=${svc}&status_class=5xx`);
  try {
    await post({ service_name: svc, status_code: 200, latency_ms: 1, message: "ok" });
    await post({ service_name: uniq("sse-elsewhere"), status_code: 503, latency_ms: 1 });
    await post({ service_name: svc, status_code: 503, latency_ms: 2, message: "down" });
    await client.until(() => client.logs.length >= 1, "the matching event");
    await post({ service_name: svc, status_code: 502, latency_ms: 3, message: "still down" });
    await client.until(() => client.logs.length >= 2, "the second matching event");
    assert.deepEqual(client.logs.map((l) => l.data.message), ["down", "still down"]);
  } finally {
    await client.close();
  }
});

dbTest("[live] SSE: two subscribers share one listener and one fetch per commit", async () => {
  const svc = uniq("sse-two");
  const a = await SseClient.open(`?service_name=${svc}`);
  const b = await SseClient.open(`?service_name=${svc}`);
  try {
    const before = hub.stats();
    assert.ok(before.subscribers >= 2);
    await post({ service_name: svc, status_code: 200, latency_ms: 1 });
    await a.until(() => a.logs.length >= 1, "the event at a");
    await b.until(() => b.logs.length >= 1, "the event at b");
    assert.deepEqual(a.ids, b.ids);

    const after = hub.stats();
    assert.equal(after.listens, 1);
    assert.equal(after.fetches - before.fetches, 1, "one query for both subscribers");
    const [{ n }] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and query ilike 'listen %'`;
    assert.equal(n, 1);
  } finally {
    await a.close();
    await b.close();
  }
});

dbTest("[live] SSE: Last-Event-ID resumes with exactly the missed events", async () => {
  const svc = uniq("sse-resume");
  const ids: number[] = [];
  for (let i = 1; i <= 4; i++) {
    ids.push(await postOne({ service_name: svc, status_code: 200, latency_ms: i }));
  }
  // Noise from another service must not be counted as missed.
  await post({ service_name: uniq("sse-noise"), status_code: 200, latency_ms: 0 });

  const resumed = await SseClient.open(`?service_name=${svc}&limit=1`, {
    "last-event-id": String(ids[1]),
  });
  let live: number;
  try {
    await resumed.until(() => resumed.logs.length >= 2, "the missed events");
    live = await postOne({ service_name: svc, status_code: 200, latency_ms: 5 });
    await resumed.until(() => resumed.logs.length >= 3, "the live event");
    assert.deepEqual(resumed.ids, [ids[2], ids[3], live]);
  } finally {
    await resumed.close();
  }

  // The query parameter works too, and the header (newer on reconnect) wins over it.
  const byParam = await SseClient.open(`?service_name=${svc}&last_event_id=${ids[2]}`);
  const both = await SseClient.open(`?service_name=${svc}&last_event_id=${ids[0]}`, {
    "last-event-id": String(ids[3]),
  });
  try {
    await byParam.until(() => byParam.logs.length >= 2, "the events after the param");
    const marker = await postOne({ service_name: svc, status_code: 200, latency_ms: 6 });
    await byParam.until(() => byParam.ids.includes(marker), "the marker");
    await both.until(() => both.ids.includes(marker), "the marker (header)");
    assert.deepEqual(byParam.ids, [ids[3], live, marker]);
    assert.deepEqual(both.ids, [live, marker]);
  } finally {
    await byParam.close();
    await both.close();
  }
});

dbTest(
  "[live] EventSource resuming past the replay window gets a gap event, and GET /logs fills it",
  async () => {
    const svc = uniq("sse-gap");
    // Between a real EventSource and the server, so the connection can be lost and refused.
    const proxy = startTcpProxy(base);
    const source = new EventSource(
      `http://127.0.0.1:${proxy.port}/logs/live-feed?service_name=${svc}`,
    );
    const received: { type: string; data: string; lastEventId: string }[] = [];
    const keep = (e: MessageEvent) =>
      received.push({ type: e.type, data: e.data, lastEventId: e.lastEventId });
    source.addEventListener("log", keep);
    source.addEventListener("gap", keep);
    const opens: number[] = [];
    source.onopen = () => opens.push(Date.now());
    const logIds = () =>
      received.filter((r) => r.type === "log").map((r) => (JSON.parse(r.data) as LogEventOut).id);
    try {
      await eventually(() => opens.length === 1, "the stream to open");
      const seen = await postOne({ service_name: svc, status_code: 200, latency_ms: 1 });
      await eventually(() => logIds().includes(seen), "the first event, live");

      proxy.down();
      // Missed while away: more than the replay window, timestamps out of order across an hour,
      // with another service's events in between.
      const missed = Array.from({ length: LIVE_MAX_RESUME + 120 }, (_, i) => ({
        service_name: svc,
        status_code: 200 + (i % 3),
        latency_ms: i,
        timestamp: ago(((i * 7919) % 3600) + 1),
      }));
      const res = await fetch(`${base}/logs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify([
          ...missed.slice(0, 300),
          { service_name: uniq("sse-gap-noise"), status_code: 200, latency_ms: 0 },
          ...missed.slice(300),
        ]),
      });
      assert.equal(res.status, 201, await res.text());
      const missedIds = (await db.sql<{ id: string }[]>`
        select e.id from log_events e join services s on s.id = e.service_id
        where s.name = ${svc} and e.id > ${seen} order by e.id`).map((r) => Number(r.id));
      assert.equal(missedIds.length, missed.length);
      proxy.up();

      // EventSource reconnects by itself (after its retry delay) with Last-Event-ID.
      const before = received.length;
      await eventually(
        () => received.filter((r) => r.type === "log").length >= 1 + LIVE_MAX_RESUME,
        "the replay after the reconnect",
      );
      assert.equal(opens.length, 2, "one reconnect");
      const afterReconnect = received.slice(before);
      assert.equal(afterReconnect[0].type, "gap", "the gap comes before the replay");
      assert.equal(afterReconnect.filter((r) => r.type === "gap").length, 1);
      const gap: LiveGap = JSON.parse(afterReconnect[0].data);
      const skipped = missedIds.slice(0, missed.length - LIVE_MAX_RESUME);
      assert.deepEqual(gap, {
        after_id: seen,
        first_id: skipped[0],
        last_id: skipped[skipped.length - 1],
        skipped: skipped.length,
        from: gap.from,
        to: gap.to,
      });
      // The replay: the newest LIVE_MAX_RESUME, oldest first; Last-Event-ID follows it.
      const replayed = afterReconnect.slice(1).map((r) => (JSON.parse(r.data) as LogEventOut).id);
      assert.deepEqual(replayed, missedIds.slice(-LIVE_MAX_RESUME));
      assert.equal(source.readyState, EventSource.OPEN);

      // What a UI does with the gap: GET /logs with the stream's filters over [from, to],
      // page by page, keeping the ids inside the gap.
      const loaded: number[] = [];
      let next: string | null =
        `/logs?service_name=${svc}&start_time=${gap.from}&end_time=${gap.to}&limit=100`;
      while (next) {
        const page: Response = await fetch(base + next);
        assert.equal(page.status, 200);
        for (const e of await page.json() as LogEventOut[]) {
          if (e.id >= gap.first_id && e.id <= gap.last_id) loaded.push(e.id);
        }
        next = page.headers.get("link")?.match(/^<([^>]+)>; rel="next"$/)?.[1] ?? null;
      }
      assert.deepEqual(loaded.sort((a, b) => a - b), skipped, "the gap, loaded exactly");

      // And the stream is live again.
      const live = await postOne({ service_name: svc, status_code: 200, latency_ms: 2 });
      await eventually(() => logIds().includes(live), "a live event after the replay");
      assert.deepEqual(logIds(), [seen, ...missedIds.slice(-LIVE_MAX_RESUME), live]);
    } finally {
      source.close();
      await proxy.close();
    }
  },
);

dbTest("[live] SSE: a ping ends the backlog, then one comes every LIVE_HEARTBEAT_S", async () => {
  const svc = uniq("sse-quiet");
  for (let i = 0; i < 2; i++) await postOne({ service_name: svc, status_code: 200, latency_ms: 1 });
  const client = await SseClient.open(`?service_name=${svc}`);
  try {
    await client.until(() => client.pings >= 1, "the ping after the backlog");
    assert.equal(client.beforeFirstPing, 2, "the backlog, then the ping");
    await client.until(() => client.pings >= 3, "two heartbeats");
    assert.equal(client.logs.length, 2);
  } finally {
    await client.close();
  }
});

dbTest("[live] SSE: a disconnecting client is unsubscribed", async () => {
  await eventually(() => hub.stats().subscribers === 0, "earlier streams to be released");
  const client = await SseClient.open(`?service_name=${uniq("sse-leaving")}`);
  assert.equal(hub.stats().subscribers, 1);
  await client.close();
  await eventually(() => hub.stats().subscribers === 0, "the subscriber to go");
});

dbTest(
  "[live] an event committed between subscribing and the initial query is sent once",
  async () => {
    const svc = uniq("race");
    const writer = new EventWriter(db.sql);
    const filter = { services: [svc] };
    // What openLiveFeed does, with a commit forced into the gap between its two steps.
    const sub = await hub.subscribe(filter);
    const event = newEvent({ serviceName: svc });
    const [id] = await writer.write([event]);
    const initial = (await latestEvents(db.sql, filter, {
      limit: 10,
      retentionDays: 7,
      timeoutMs: 0,
    }))
      .reverse();
    assert.deepEqual(initial.map((e) => e.id), [id]);
    const feed = new LiveFeed(sub, initial);

    const sent: number[] = [];
    let marker = -1;
    const piping = feed.pipe({
      send: (e) => {
        sent.push(e.id);
        return Promise.resolve();
      },
      gap: () => Promise.resolve(),
      ping: () => Promise.resolve(),
      abort: () => {},
    }, 60_000);
    [marker] = await writer.write([{ ...event, latencyMs: 2 }]);
    await eventually(() => sent.includes(marker), "the marker");
    feed.cancel();
    await piping;
    assert.deepEqual(sent, [id, marker]);
  },
);

dbTest(
  "[live] the listener's connection killed: streams end to resync and new ones get events",
  async () => {
    const sql = createDb(db.url, { max: 2, applicationName: "observian-live-kill" });
    const own = new LiveHub(sql);
    const ownApp = buildApp({ sql, config, liveHub: own });
    const ownServer = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, ownApp.fetch);
    const url = `http://127.0.0.1:${ownServer.addr.port}`;
    const svc = uniq("listen-kill");
    try {
      const first = await SseClient.open(`?service_name=${svc}`, {}, url);
      await post({ service_name: svc, status_code: 200, latency_ms: 1 }, url);
      await first.until(() => first.logs.length === 1, "the first event");
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
        where application_name = 'observian-live-kill' and query ilike 'listen%'`;
      await first.until(() => first.ended, "the stream's end");
      await first.close();
      // As EventSource does: reconnect with the last id seen.
      const again = await SseClient.open(
        `?service_name=${svc}`,
        { "last-event-id": first.logs[0].id },
        url,
      );
      await post({ service_name: svc, status_code: 201, latency_ms: 2 }, url);
      await again.until(() => again.logs.length === 1, "an event after the listener's loss");
      assert.equal(again.logs[0].data.status_code, 201);
      await again.close();
    } finally {
      await own.close();
      await ownServer.shutdown();
      await sql.end({ timeout: 1 });
    }
  },
);

dbTest("[live] a subscriber that falls behind is dropped without holding up others", async () => {
  const small = new LiveHub(db.sql, { maxQueue: 5 });
  const writer = new EventWriter(db.sql);
  const svc = uniq("slow");
  try {
    const slow = await small.subscribe({ services: [svc] });
    let cut = false;
    slow.onAbort(() => cut = true);
    const fast = await small.subscribe({ services: [svc] });
    const got: number[] = [];
    for (let round = 0; round < 3; round++) {
      const ids = await writer.write(
        [1, 2, 3].map((i) => newEvent({ serviceName: svc, latencyMs: round * 3 + i })),
      );
      while (!ids.every((id) => got.includes(id))) {
        const batch = await fast.take(15_000);
        assert.ok(batch && batch.length > 0, "fast subscriber starved");
        got.push(...batch.map((e) => e.id));
      }
    }
    assert.equal(got.length, 9);
    assert.equal(fast.ended, null);
    assert.equal(slow.ended, "overflow");
    assert.ok(cut, "the slow client's connection was cut");
    assert.equal(await slow.take(0), null, "nothing kept for a dropped subscriber");
    assert.equal(small.stats().overflows, 1);
    assert.equal(small.stats().subscribers, 1);
    fast.release();
    slow.release();
  } finally {
    await small.close();
  }
});

dbTest("[live] hub.close() ends open streams and refuses new ones", async () => {
  const closing = new LiveHub(db.sql);
  const app2 = buildApp({ sql: db.sql, config, liveHub: closing });
  const server2 = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app2.fetch);
  const url = `http://127.0.0.1:${server2.addr.port}`;
  try {
    const svc = uniq("closing");
    await post({ service_name: svc, status_code: 200, latency_ms: 1 }, url);
    const a = await SseClient.open(`?service_name=${svc}`, {}, url);
    const b = await SseClient.open(`?service_name=${svc}&status_code=500`, {}, url);
    await a.until(() => a.logs.length >= 1, "the initial event");
    assert.equal(closing.stats().subscribers, 2);

    await closing.close();
    await a.until(() => a.ended, "the end of stream a");
    await b.until(() => b.ended, "the end of stream b");
    assert.equal(closing.stats().subscribers, 0);

    const res = await fetch(`${url}/logs/live-feed`, { headers: { accept: "text/event-stream" } });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    await res.body?.cancel();
    // Nothing is left for the server to drain.
    await server2.shutdown();
  } finally {
    await server2.shutdown().catch(() => {});
  }
});

dbTest("[live] the server ends open streams on SIGTERM and exits", async () => {
  // A long drain timeout: only a stream that really ends lets the process exit in time.
  const server = spawnServer({ env: { DATABASE_URL: db.url, SHUTDOWN_TIMEOUT_S: "600" } });
  try {
    await server.ready();
    const url = server.base;
    const svc = uniq("shutdown");
    await post({ service_name: svc, status_code: 200, latency_ms: 1 }, url);
    const client = await SseClient.open(`?service_name=${svc}`, {}, url);
    await client.until(() => client.logs.length >= 1, "the initial event");

    server.kill("SIGTERM");
    await client.until(() => client.ended, "the stream to end");
    const status = await server.finished();
    const out = server.output();
    assert.equal(status.code, 0, out);
    assert.ok(!out.includes("still running after the timeout"), out);
  } finally {
    server.kill("SIGKILL");
  }
});

dbTest("[live] the OpenAPI document describes both answers", async () => {
  const doc = await (await fetch(`${base}/openapi.json`)).json();
  const op = doc.paths["/logs/live-feed"].get;
  assert.deepEqual(Object.keys(op.responses["200"].content).sort(), [
    "application/json",
    "text/event-stream",
  ]);
  const params = op.parameters.map((p: { name: string; in: string }) => `${p.in}:${p.name}`);
  for (const p of ["query:limit", "query:service_name", "query:last_event_id"]) {
    assert.ok(params.includes(p), p);
  }
  assert.ok(params.includes("header:last-event-id"));
  assert.ok(op.responses["400"]);
  // The gap event and how to load what it names.
  for (const field of ["after_id", "first_id", "last_id", "skipped", "from", "to"]) {
    assert.match(op.description, new RegExp(`\`${field}\``), field);
  }
  assert.match(op.description, /`event: gap`/);
  assert.match(
    op.description,
    /GET \/logs with the stream's filters, `start_time=<from>&end_time=<to>`/,
  );
  assert.match(op.responses["200"].content["text/event-stream"].schema.example, /^event: gap\n/);
});

dbTest("[x] teardown", async () => {
  await hub.close();
  await server.shutdown();
  await db.drop();
});
