// Stored keys are remembered per instance only while it hears of every change (LISTEN on
// KEYS_CHANNEL, fed by a trigger on api_keys): a deleted key is refused by the instance that
// deleted it at once, by every other when the notice arrives (an expiry set by hand too), and by
// an instance whose listener was lost at its next request.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { createKey } from "../src/access/keys.ts";
import { createDb } from "../src/db/connect.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { eventually } from "./helpers/wait.ts";

const db = await preparedDatabase();
const ENV_KEY = "env-admin-key-for-cache-tests";
const config = testConfig({ API_KEYS: ENV_KEY });

const status = async (app: ReturnType<typeof buildApp>, token: string) =>
  (await app.request("/services", { headers: { authorization: `Bearer ${token}` } })).status;

async function newReader(name: string) {
  return (await createKey(db.sql, { name, role: "reader" }, { actor: "test" })).token;
}

dbTest("[key cache] a remembered key is refused when a revocation is notified", async () => {
  const sqlB = createDb(db.url, { max: 2 });
  try {
    const b = buildApp({ sql: sqlB, config });
    const token = await newReader("cached reader");
    // The listener starts with the first lookup; once in place, the key is remembered.
    await eventually("B remembers the key", async () => {
      assert.equal(await status(b, token), 200);
      const [{ n }] = await db.sql`
        select count(*)::int as n from pg_stat_activity
        where query ilike 'listen%observian_keys%' and datname = current_database()`;
      return n > 0;
    });
    assert.equal(await status(b, token), 200);
    // Removed behind B's back (the trigger off: no notice): B still trusts what it remembers,
    // which shows it asked nobody...
    await db.sql.begin(async (tx) => {
      await tx`alter table api_keys disable trigger api_keys_changed`;
      await tx`delete from api_keys where name = 'cached reader'`;
      await tx`alter table api_keys enable trigger api_keys_changed`;
    });
    assert.equal(await status(b, token), 200, "remembered");
    // ...until a change is notified, as the trigger does for every delete or update.
    await db.sql`select pg_notify('observian_keys', 'DELETE')`;
    await eventually(
      "B hears of the revocation",
      async () => (await status(b, token)) === 401,
      2000,
    );
  } finally {
    await sqlB.end();
  }
});

dbTest("[key cache] the instance that revokes a key refuses it at its next request", async () => {
  const a = buildApp({ sql: db.sql, config });
  const token = await newReader("revoked here");
  assert.equal(await status(a, token), 200);
  assert.equal(await status(a, token), 200);
  const [{ id }] = await db.sql`select id::int from api_keys where name = 'revoked here'`;
  const del = await a.request(`/keys/${id}`, {
    method: "DELETE",
    headers: { "x-api-key": ENV_KEY },
  });
  assert.equal(del.status, 204);
  assert.equal(await status(a, token), 401, "at once, not when the notice comes back");
});

dbTest("[key cache] a lost listener means every key is looked up again", async () => {
  const sqlB = createDb(db.url, { max: 2 });
  try {
    const b = buildApp({ sql: sqlB, config });
    const token = await newReader("listener lost");
    await eventually("B remembers the key", async () => {
      await status(b, token);
      const [{ n }] = await db.sql`
        select count(*)::int as n from pg_stat_activity
        where query ilike 'listen%observian_keys%' and datname = current_database()`;
      return n > 0;
    });
    assert.equal(await status(b, token), 200);
    // The handle is replaced (what a lost connection does): notices may have been missed, so
    // nothing remembered is trusted. The trigger is switched off here to stand for a notice
    // lost on the way.
    sqlB.replace("test: connection lost");
    await db.sql.begin(async (tx) => {
      await tx`alter table api_keys disable trigger api_keys_changed`;
      await tx`delete from api_keys where name = 'listener lost'`;
      await tx`alter table api_keys enable trigger api_keys_changed`;
    });
    assert.equal(await status(b, token), 401);
  } finally {
    await sqlB.end();
  }
});

dbTest("[key cache] an expiry set by hand reaches every instance", async () => {
  const sqlB = createDb(db.url, { max: 2 });
  try {
    const b = buildApp({ sql: sqlB, config });
    const token = await newReader("expired by hand");
    assert.equal(await status(b, token), 200);
    assert.equal(await status(b, token), 200);
    await db.sql`
      update api_keys set expires_at = now() - interval '1 second'
      where name = 'expired by hand'`;
    await eventually("B hears of the expiry", async () => (await status(b, token)) === 401, 2000);
  } finally {
    await sqlB.end();
  }
});
