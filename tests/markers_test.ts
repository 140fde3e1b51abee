// Markers in GET /logs/summary over real HTTP: those of the summary's services and window only
// (service_name, the caller's scope, [start_time, end_time)), oldest first, capped.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { createKey } from "../src/access/keys.ts";
import { MARKERS_LIMIT } from "../src/query/markers.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const ADMIN_KEY = "env-admin-key-markers-0123456789";
const SEED = "pay-api:Payments,pay-web:Payments,ship-api:Shipping,bulk-svc:Bulk";

const db = await preparedDatabase({ SEED_SERVICES: SEED });
const app = buildApp({
  sql: db.sql,
  config: testConfig({ API_KEYS: ADMIN_KEY, SEED_SERVICES: SEED }),
});
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
const base = `http://127.0.0.1:${server.addr.port}`;

type Headers = Record<string, string>;
const admin: Headers = { "x-api-key": ADMIN_KEY };
const reader = async (teams: string[]): Promise<Headers> => ({
  authorization: `Bearer ${
    (await createKey(db.sql, { name: "reader", role: "reader", teams }, { actor: "test" })).token
  }`,
});
const payReader = await reader(["Payments"]);
const emptyReader = await reader(["Empty Team"]);

interface Marker {
  service_name: string;
  time: string;
  kind: string;
  title: string;
  url: string | null;
}
async function summaryMarkers(query: string, who: Headers = admin): Promise<Marker[]> {
  const res = await fetch(`${base}/logs/summary?${query}`, { headers: who });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.markers;
}
const titles = (ms: Marker[]) => ms.map((m) => m.title);

const HOUR = 3_600_000, DAY = 86_400_000;
const now = Date.now();
const iso = (t: number) => new Date(t).toISOString();
// Whole seconds, so that a marker can sit exactly on a range's edge.
const base0 = Math.floor(now / 1000) * 1000;
const T = {
  payRecent: base0 - 2 * HOUR,
  payOld: base0 - 3 * DAY,
  payWebRecent: base0 - 3 * HOUR,
  shipRecent: base0 - HOUR / 2,
};

async function insertMarker(service: string, at: number, kind: string, title: string) {
  await db.sql`
    insert into markers (service_id, at, kind, title, url, delivery)
    select id, ${iso(at)}::timestamptz, ${kind}, ${title}, ${"https://example.test/" + title},
           ${title}
    from services where name = ${service}`;
}
await insertMarker("pay-api", T.payRecent, "deployment", "pay-recent");
await insertMarker("pay-api", T.payOld, "release", "pay-old");
await insertMarker("pay-web", T.payWebRecent, "release", "pay-web-recent");
await insertMarker("ship-api", T.shipRecent, "deployment", "ship-recent");

dbTest(
  "[markers] the summary lists its window's markers, oldest first, field by field",
  async () => {
    const ms = await summaryMarkers("window=24h");
    assert.deepEqual(titles(ms), ["pay-web-recent", "pay-recent", "ship-recent"]);
    assert.deepEqual(ms[1], {
      service_name: "pay-api",
      time: new Date(T.payRecent).toISOString().replace(".000Z", ".000000Z"),
      kind: "deployment",
      title: "pay-recent",
      url: "https://example.test/pay-recent",
    });
    // The same as GET /markers over the same range.
    const listed = await fetch(
      `${base}/markers?start_time=${iso(now - DAY)}&end_time=${iso(now)}`,
      { headers: admin },
    );
    assert.deepEqual(await listed.json(), ms);
  },
);

dbTest("[markers] service_name narrows the summary's markers", async () => {
  assert.deepEqual(titles(await summaryMarkers("window=24h&service_name=pay-api")), [
    "pay-recent",
  ]);
  assert.deepEqual(titles(await summaryMarkers("window=24h&service_name=ship-api")), [
    "ship-recent",
  ]);
  assert.deepEqual(
    titles(await summaryMarkers("window=24h&service_name=pay-api&service_name=ship-api")),
    ["pay-recent", "ship-recent"],
  );
  assert.deepEqual(await summaryMarkers("window=24h&service_name=bulk-svc"), []);
});

dbTest("[markers] only the window's: start_time inclusive, end_time exclusive", async () => {
  assert.deepEqual(titles(await summaryMarkers("window=1h")), ["ship-recent"]);
  // Three days back is outside 24h, inside 7d.
  assert.deepEqual(titles(await summaryMarkers("window=7d&service_name=pay-api")), [
    "pay-old",
    "pay-recent",
  ]);
  const range = (s: number, e: number) => `start_time=${iso(s)}&end_time=${iso(e)}`;
  assert.deepEqual(titles(await summaryMarkers(range(T.payOld, T.payOld + HOUR))), ["pay-old"]);
  assert.deepEqual(await summaryMarkers(range(T.payOld - HOUR, T.payOld)), []);
  assert.deepEqual(
    titles(await summaryMarkers(range(T.payWebRecent, T.shipRecent))),
    ["pay-web-recent", "pay-recent"],
  );
});

dbTest("[markers] a scoped reader sees its own services' markers only", async () => {
  assert.deepEqual(titles(await summaryMarkers("window=24h", payReader)), [
    "pay-web-recent",
    "pay-recent",
  ]);
  assert.deepEqual(titles(await summaryMarkers("window=24h&service_name=pay-api", payReader)), [
    "pay-recent",
  ]);
  assert.deepEqual(await summaryMarkers("window=24h", emptyReader), []);
  const res = await fetch(`${base}/logs/summary?window=24h&service_name=ship-api`, {
    headers: payReader,
  });
  assert.equal(res.status, 403);
  await res.body?.cancel();
});

dbTest("[markers] the summary lists at most MARKERS_LIMIT, the oldest", async () => {
  const first = base0 - 5 * DAY;
  await db.sql`
    insert into markers (service_id, at, kind, title, delivery)
    select s.id, ${iso(first)}::timestamptz + g * interval '1 second', 'deployment', 'bulk ' || g,
           'bulk-' || g
    from services s, generate_series(0, ${MARKERS_LIMIT + 4}) g
    where s.name = 'bulk-svc'`;
  const ms = await summaryMarkers(
    `service_name=bulk-svc&start_time=${iso(first)}&end_time=${iso(first + DAY)}`,
  );
  assert.equal(ms.length, MARKERS_LIMIT);
  assert.equal(ms[0].title, "bulk 0");
  assert.equal(ms.at(-1)!.title, `bulk ${MARKERS_LIMIT - 1}`);
});

dbTest("[markers] done", async () => {
  await server.shutdown();
  await db.drop();
});
