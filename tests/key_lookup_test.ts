// A stored key is looked up at every request (so a revoked key is refused at once), but
// concurrent requests with the same key share lookups: one query per round trip, not one per
// request. Checked against a stand-in for the database handle that counts queries and answers
// when told, so the interleaving is exact.
import assert from "node:assert/strict";
import type { Sql } from "../src/db/connect.ts";
import { findKey } from "../src/access/keys.ts";

/** Answers each key query when `answer()` is called, from the table as it is at that moment. */
function fakeDb() {
  const state = { queries: 0, revoked: false };
  const waiting: (() => void)[] = [];
  const row = {
    id: 7,
    name: "shipper",
    role: "writer",
    teams: [],
    services: [],
    rate_limit_per_s: null,
    expires_at: null,
    prefix: "abcdefgh",
    created_at: new Date(),
    last_used_at: new Date(),
  };
  const sql = Object.assign(
    (strings: TemplateStringsArray) => {
      const text = strings.join("?");
      if (/^\s*update api_keys/.test(text)) return Promise.resolve([]);
      state.queries++;
      // Like PostgreSQL: the query sees the table as of when it runs (here: when it started).
      const seen = state.revoked ? [] : [row];
      return new Promise((resolve) => waiting.push(() => resolve(seen)));
    },
    { unsafe: (s: string) => s },
  ) as unknown as Sql;
  const answer = async () => {
    for (const w of waiting.splice(0)) w();
    for (let i = 0; i < 20; i++) await Promise.resolve();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { sql, state, answer };
}

const TOKEN = "obs_" + "k".repeat(43);
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !cond(); i++) await tick(1);
  assert.ok(cond(), "condition never held");
}

/** Answers queries until every lookup has settled; how many rounds that took is irrelevant. */
async function settle(db: ReturnType<typeof fakeDb>, lookups: Promise<unknown>[]) {
  let done = false;
  const all = Promise.all(lookups).finally(() => done = true);
  for (let i = 0; i < 100 && !done; i++) await db.answer();
  return await all;
}

Deno.test("[keys] concurrent lookups of one key share queries", async () => {
  const db = fakeDb();
  const first = findKey(db.sql, TOKEN);
  await until(() => db.state.queries === 1); // the first lookup is running
  const rest = Array.from({ length: 20 }, () => findKey(db.sql, TOKEN));
  await tick(20); // their digests are computed; they wait for the next lookup
  const found = await settle(db, [first, ...rest]);
  for (const p of found) assert.equal((p as { id: number } | null)?.id, 7);
  // Without sharing: 21 queries.
  assert.ok(db.state.queries <= 3, `${db.state.queries} queries for 21 concurrent lookups`);
});

Deno.test("[keys] a lookup that begins after a revocation never shares an earlier answer", async () => {
  const db = fakeDb();
  const before = findKey(db.sql, TOKEN);
  await until(() => db.state.queries === 1);
  // Revoked while the first lookup, which saw the key, is still running.
  db.state.revoked = true;
  const after = findKey(db.sql, TOKEN);
  await tick(20);
  const [b, a] = await settle(db, [before, after]);
  assert.equal((b as { id: number } | null)?.id, 7, "began before the revocation");
  assert.equal(a, null, "came after it: refused");
});
