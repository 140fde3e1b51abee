// Sign-in for people (issue 13), end to end over real HTTP: the app served on a socket, a fake
// GitHub and OIDC provider (tests/helpers/fake-oauth.ts) on another, driven as a browser would
// with redirects followed by hand and the session cookie carried along.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { ConfigError, parseConfig } from "../src/config.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { FakeOAuth } from "./helpers/fake-oauth.ts";

const db = await preparedDatabase();
const fake = await FakeOAuth.start();
const app = buildApp({
  sql: db.sql,
  config: testConfig({
    OAUTH_GITHUB_CLIENT_ID: fake.clientId,
    OAUTH_GITHUB_CLIENT_SECRET: fake.clientSecret,
    OAUTH_GITHUB_URL: fake.url,
    OAUTH_GITHUB_API_URL: fake.url,
    OIDC_ISSUER: fake.issuer,
    OIDC_CLIENT_ID: fake.clientId,
    OIDC_CLIENT_SECRET: fake.clientSecret,
    ADMIN_USERS: "boss, Chief@Example.com",
  }),
});
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
const base = `http://127.0.0.1:${server.addr.port}`;

globalThis.addEventListener("unload", () => {
  server.shutdown();
  fake.close();
});

const get = (url: string, init: RequestInit = {}) => fetch(url, { redirect: "manual", ...init });
const withCookie = (cookie: string, headers: Record<string, string> = {}) => ({
  headers: { cookie: `observian_session=${cookie}`, ...headers },
});
/** A state-changing request from a page of this origin. */
const sameOrigin = (cookie: string, method: string, body?: unknown): RequestInit => ({
  method,
  headers: {
    cookie: `observian_session=${cookie}`,
    origin: base,
    ...(body === undefined ? {} : { "content-type": "application/json" }),
  },
  body: body === undefined ? undefined : JSON.stringify(body),
});

async function drain(res: Response): Promise<Response> {
  await res.body?.cancel();
  return res;
}

/**
 * /auth/login → the provider → the callback URL the provider sent the browser back to, and the
 * cookie /auth/login set to bind the sign-in to this browser.
 */
async function toCallback(as: { login: string; email: string | null }, query = "") {
  fake.person = as;
  const login = await drain(await get(`${base}/auth/login${query}`));
  assert.equal(login.status, 302);
  const authorize = new URL(login.headers.get("location")!);
  assert.ok(authorize.href.startsWith(fake.url), authorize.href);
  assert.equal(authorize.searchParams.get("code_challenge_method"), "S256");
  assert.ok(authorize.searchParams.get("state"));
  assert.equal(authorize.searchParams.get("redirect_uri"), `${base}/auth/callback`);
  const bound = login.headers.get("set-cookie")?.match(/observian_login=([^;]*)/)?.[1];
  assert.ok(bound, "the sign-in is bound to the browser");
  const back = await drain(await get(authorize.href));
  assert.equal(back.status, 302);
  return { url: new URL(back.headers.get("location")!), browser: `observian_login=${bound}` };
}

/** Follows the provider's redirect back as the browser that began the sign-in. */
const callBack = (cb: { url: URL; browser: string }, url = cb.url) =>
  get(url.href, { headers: { cookie: cb.browser } });

/** The whole flow; returns the callback's answer and the session cookie it set. */
async function signIn(as: { login: string; email: string | null }, query = "") {
  const res = await callBack(await toCallback(as, query));
  const setCookie = res.headers.get("set-cookie") ?? "";
  const cookie = setCookie.match(/observian_session=([^;]*)/)?.[1] ?? "";
  return { res, setCookie, cookie };
}

async function me(cookie: string) {
  const res = await get(`${base}/auth/me`, withCookie(cookie));
  return { status: res.status, body: await res.json() };
}

dbTest(
  "[signin] GitHub sign-in end to end: session cookie, /auth/me, stored as a digest",
  async () => {
    const { res, setCookie, cookie } = await signIn(
      { login: "boss", email: "boss@example.com" },
      "?return_to=/logs/summary?window=1h",
    );
    assert.equal(res.status, 302, await res.text());
    assert.equal(res.headers.get("location"), "/logs/summary?window=1h");
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /SameSite=Lax/i);
    assert.match(setCookie, /Path=\//);
    assert.doesNotMatch(setCookie, /Secure/i, "plain http here");
    assert.ok(cookie.length >= 40);
    assert.deepEqual(fake.tokenRequests.at(-1), { provider: "github", pkceOk: true });

    assert.deepEqual(await me(cookie), {
      status: 200,
      body: { login: "boss", role: "admin", teams: [] },
    });
    const [user] = await db.sql`select email, provider from users where login = 'boss'`;
    assert.deepEqual({ ...user }, { email: "boss@example.com", provider: "github" });
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", new TextEncoder().encode(cookie)),
    );
    const [row] = await db.sql`select count(*)::int as n from sessions where id_sha256 = ${digest}`;
    assert.equal(row.n, 1);
    const stored = JSON.stringify(await db.sql`select encode(id_sha256, 'hex') as h from sessions`);
    assert.ok(!stored.includes(cookie), "the id itself is not stored");
    // The session is a credential like a key: admin operations work with it.
    const users = await get(`${base}/users`, withCookie(cookie));
    assert.equal(users.status, 200);
    assert.ok((await users.json()).some((u: { login: string }) => u.login === "boss"));
    const [audit] = await db.sql`
    select actor, detail from audit_log where action = 'auth.signin' and target = 'user:boss'`;
    assert.equal(audit.actor, "user:boss");
    assert.equal(audit.detail.provider, "github");

    // Signing in again in the same browser opens a new session and ends the one it had.
    const cb = await toCallback({ login: "boss", email: null });
    const again = await drain(
      await get(cb.url.href, { headers: { cookie: `${cb.browser}; observian_session=${cookie}` } }),
    );
    assert.equal(again.status, 302);
    assert.equal((await me(cookie)).status, 401);
  },
);

dbTest("[signin] OIDC sign-in: discovery, id_token checked against the JWKS, nonce", async () => {
  // An admin by email (ADMIN_USERS is case-insensitive), login from preferred_username.
  const { res, cookie } = await signIn(
    { login: "chief", email: "chief@example.com" },
    "?provider=oidc",
  );
  assert.equal(res.status, 302, await res.text());
  assert.equal(res.headers.get("location"), "/");
  assert.deepEqual(fake.tokenRequests.at(-1), { provider: "oidc", pkceOk: true });
  assert.deepEqual((await me(cookie)).body, { login: "chief", role: "admin", teams: [] });

  // An id_token signed with a key that is not the provider's is refused, and opens no session.
  fake.forgeSignature = true;
  try {
    const forged = await signIn({ login: "mallory", email: null }, "?provider=oidc");
    assert.equal(forged.res.status, 401, await forged.res.text());
    assert.equal(forged.cookie, "");
  } finally {
    fake.forgeSignature = false;
  }
  const [n] = await db.sql`select count(*)::int as n from users where login = 'mallory'`;
  assert.equal(n.n, 0);
});

dbTest("[signin] a wrong, replayed, tampered or foreign state is refused", async () => {
  const cb = await toCallback({ login: "eve", email: null });
  const wrong = new URL(cb.url);
  wrong.searchParams.set("state", "not-the-state");
  const res = await callBack(cb, wrong);
  assert.equal(res.status, 400);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  assert.match(JSON.stringify(await res.json()), /state/);
  assert.doesNotMatch(res.headers.get("set-cookie") ?? "", /observian_session=[^;]/);
  const noState = new URL(cb.url);
  noState.searchParams.delete("state");
  assert.equal((await drain(await callBack(cb, noState))).status, 400);

  // Another browser (an attacker's victim) cannot finish a sign-in begun elsewhere: login CSRF.
  const foreign = await get(cb.url.href);
  assert.equal(foreign.status, 400);
  assert.match((await foreign.json()).errors[0].message, /not started in this browser/);

  // The right state in the right browser works once; replaying it does not.
  const first = await drain(await callBack(cb));
  assert.equal(first.status, 403, "eve has no role");
  const replay = await drain(await callBack(cb));
  assert.equal(replay.status, 400);

  // A pending login whose PKCE verifier is not the one the challenge was made from: the
  // provider refuses the code.
  const again = await toCallback({ login: "eve", email: null });
  await db.sql`update pending_logins set code_verifier = ${"x".repeat(43)}
               where state = ${again.url.searchParams.get("state")}`;
  const tampered = await callBack(again);
  assert.equal(tampered.status, 401, await tampered.text());
  assert.deepEqual(fake.tokenRequests.at(-1), { provider: "github", pkceOk: false });

  // A sign-in left at the provider past its time is forgotten.
  const late = await toCallback({ login: "eve", email: null });
  await db.sql`update pending_logins set expires_at = now() - interval '1 second'
               where state = ${late.url.searchParams.get("state")}`;
  const stale = await callBack(late);
  assert.equal(stale.status, 400);
  assert.match(JSON.stringify(await stale.json()), /unknown or expired/);

  // return_to must be a path on this server.
  for (const bad of ["//evil.example/x", "https://evil.example/", "/\\evil.example", "logs"]) {
    const r = await get(`${base}/auth/login?return_to=${encodeURIComponent(bad)}`);
    assert.equal(r.status, 400, bad);
    assert.match(JSON.stringify(await r.json()), /return_to/);
  }
});

dbTest("[signin] someone nobody gave a role gets a clear 403 page, and 403 on /logs", async () => {
  const { res, cookie } = await signIn({ login: "newbie", email: "newbie@example.com" });
  assert.equal(res.status, 403);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
  const page = await res.text();
  assert.match(page, /signed in as <strong>newbie<\/strong>/i);
  assert.match(page, /an admin must give you a role/);
  assert.ok(cookie, "signed in all the same: the role may come later");
  assert.deepEqual((await me(cookie)).body, { login: "newbie", role: null, teams: [] });
  const logs = await get(`${base}/logs`, withCookie(cookie));
  assert.equal(logs.status, 403);
  assert.match((await logs.json()).detail, /newbie has no role yet/);
});

dbTest(
  "[signin] an admin gives roles and teams; the reader's /logs is scoped at once",
  async () => {
    const admin = (await signIn({ login: "boss", email: null })).cookie;
    const reader = await signIn({ login: "payer", email: null });
    assert.equal(reader.res.status, 403);
    await drain(reader.res);

    const post = await get(
      `${base}/logs`,
      sameOrigin(admin, "POST", [
        { service_name: "checkout-service", status_code: 200, latency_ms: 5 },
        { service_name: "auth-service", status_code: 500, latency_ms: 7 },
      ]),
    );
    assert.equal(post.status, 201, await post.text());

    const put = await get(
      `${base}/users/payer`,
      sameOrigin(admin, "PUT", { role: "reader", teams: ["Payments Team"] }),
    );
    assert.equal(put.status, 200, await put.clone().text());
    assert.deepEqual(
      (({ login, role, teams, provider }) => ({ login, role, teams, provider }))(await put.json()),
      { login: "payer", role: "reader", teams: ["Payments Team"], provider: "github" },
    );
    // Same session, next request: the new role and scope hold.
    assert.deepEqual((await me(reader.cookie)).body, {
      login: "payer",
      role: "reader",
      teams: ["Payments Team"],
    });
    const mine = await get(`${base}/logs`, withCookie(reader.cookie));
    assert.equal(mine.status, 200);
    const services = new Set(
      (await mine.json()).map((e: { service_name: string }) => e.service_name),
    );
    assert.deepEqual([...services], ["checkout-service"]);
    const theirs = await get(`${base}/logs?service_name=auth-service`, withCookie(reader.cookie));
    assert.equal(theirs.status, 403);
    await drain(theirs);
    // A reader cannot give itself more.
    const self = await get(
      `${base}/users/payer`,
      sameOrigin(reader.cookie, "PUT", { role: "admin" }),
    );
    assert.equal(self.status, 403);
    await drain(self);

    const [audit] = await db.sql`
    select actor, detail from audit_log where action = 'user.update' and target = 'user:payer'`;
    assert.equal(audit.actor, "user:boss");
    assert.deepEqual(audit.detail, {
      old: { role: null, teams: [] },
      new: { role: "reader", teams: ["Payments Team"] },
    });

    // Someone given a role before their first sign-in (201) holds it from that sign-in.
    const ahead = await get(`${base}/users/Later`, sameOrigin(admin, "PUT", { role: "writer" }));
    assert.equal(ahead.status, 201, await ahead.clone().text());
    await drain(ahead);
    const later = await signIn({ login: "later", email: null });
    assert.equal(later.res.status, 302, await later.res.text());
    assert.deepEqual((await me(later.cookie)).body, { login: "Later", role: "writer", teams: [] });

    for (const body of [{ role: "root" }, { teams: [] }, { role: null, extra: 1 }]) {
      const bad = await get(`${base}/users/x`, sameOrigin(admin, "PUT", body));
      assert.equal(bad.status, 400, JSON.stringify(body));
      await drain(bad);
    }
  },
);

dbTest("[signin] logout ends the session: the cookie no longer works anywhere", async () => {
  const { cookie } = await signIn({ login: "boss", email: null });
  assert.equal((await me(cookie)).status, 200);
  const out = await get(`${base}/auth/logout`, sameOrigin(cookie, "POST"));
  assert.equal(out.status, 204);
  assert.match(out.headers.get("set-cookie") ?? "", /observian_session=;.*Max-Age=0/i);
  assert.equal((await me(cookie)).status, 401);
  const logs = await get(`${base}/logs`, withCookie(cookie));
  assert.equal(logs.status, 401);
  await drain(logs);
  const [audit] = await db.sql`
    select count(*)::int as n from audit_log where action = 'auth.signout' and actor = 'user:boss'`;
  assert.ok(audit.n >= 1);
});

dbTest("[signin] a session-cookie POST from another origin is refused", async () => {
  const { cookie } = await signIn({ login: "boss", email: null });
  const evil = { cookie: `observian_session=${cookie}`, origin: "http://evil.example" };
  const out = await get(`${base}/auth/logout`, { method: "POST", headers: evil });
  assert.equal(out.status, 403);
  await drain(out);
  const put = await get(`${base}/users/victim`, {
    method: "PUT",
    headers: { ...evil, "content-type": "application/json" },
    body: JSON.stringify({ role: "admin" }),
  });
  assert.equal(put.status, 403);
  assert.match((await put.json()).detail, /cross-site/);
  const noOrigin = await get(`${base}/auth/logout`, {
    method: "POST",
    headers: { cookie: evil.cookie },
  });
  assert.equal(noOrigin.status, 403, "neither Origin nor Referer");
  await drain(noOrigin);
  assert.equal((await me(cookie)).status, 200, "the session lives on");
  const [n] = await db.sql`select count(*)::int as n from users where login = 'victim'`;
  assert.equal(n.n, 0);
});

dbTest("[signin] an expired session is refused, and removed at the next sign-in", async () => {
  const { cookie } = await signIn({ login: "boss", email: null });
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(cookie)),
  );
  await db.sql`update sessions set expires_at = now() - interval '1 second'
               where id_sha256 = ${digest}`;
  assert.equal((await me(cookie)).status, 401);
  const logs = await get(`${base}/logs`, withCookie(cookie));
  assert.equal(logs.status, 401);
  await drain(logs);
  await signIn({ login: "boss", email: null });
  const [n] = await db.sql`select count(*)::int as n from sessions where id_sha256 = ${digest}`;
  assert.equal(n.n, 0);
});

dbTest(
  "[signin] without a session /auth/me is 401; unconfigured, login and callback 404",
  async () => {
    const anon = await get(`${base}/auth/me`);
    assert.equal(anon.status, 401);
    await drain(anon);
    // Sign-in configured turns access control on, without any key.
    const logs = await get(`${base}/logs`);
    assert.equal(logs.status, 401);
    await drain(logs);

    const plain = buildApp({ sql: db.sql, config: testConfig() });
    for (const path of ["/auth/login", "/auth/callback?state=x&code=y"]) {
      const res = await plain.request(path);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      assert.match((await res.json()).detail, /sign-in is not configured/);
    }
    // Behind a proxy: PUBLIC_URL names the callback, and https makes the cookies Secure.
    const proxied = buildApp({
      sql: db.sql,
      config: testConfig({
        OAUTH_GITHUB_CLIENT_ID: fake.clientId,
        OAUTH_GITHUB_CLIENT_SECRET: fake.clientSecret,
        OAUTH_GITHUB_URL: fake.url,
        PUBLIC_URL: "https://obs.example/observian/",
      }),
    });
    const start = await proxied.request("/auth/login");
    assert.equal(start.status, 302);
    assert.equal(
      new URL(start.headers.get("location")!).searchParams.get("redirect_uri"),
      "https://obs.example/observian/auth/callback",
    );
    const bind = start.headers.get("set-cookie") ?? "";
    assert.match(bind, /observian_login=.*Path=\/observian\/auth\/callback/);
    assert.match(bind, /Secure/);

    const badProvider = await get(`${base}/auth/login?provider=saml`);
    assert.equal(badProvider.status, 400);
    await drain(badProvider);
  },
);

Deno.test("[signin] configuration: providers in whole, https (http on loopback only)", () => {
  const parse = (env: Record<string, string>) => parseConfig(env).signIn;
  assert.throws(
    () => parse({ OAUTH_GITHUB_CLIENT_ID: "a" }),
    (e: Error) => e instanceof ConfigError && e.variable === "OAUTH_GITHUB_CLIENT_SECRET",
  );
  assert.throws(
    () => parse({ OIDC_CLIENT_ID: "a", OIDC_CLIENT_SECRET: "b" }),
    (e: Error) => e instanceof ConfigError && e.variable === "OIDC_ISSUER",
  );
  const oidc = { OIDC_CLIENT_ID: "a", OIDC_CLIENT_SECRET: "b" };
  assert.throws(
    () => parse({ ...oidc, OIDC_ISSUER: "http://idp.example" }),
    (e: Error) => e instanceof ConfigError && /https/.test(e.reason),
  );
  assert.equal(
    parse({ ...oidc, OIDC_ISSUER: "http://127.0.0.1:9/x" }).oidc?.issuer,
    "http://127.0.0.1:9/x",
  );
  const s = parse({
    OAUTH_GITHUB_CLIENT_ID: "a",
    OAUTH_GITHUB_CLIENT_SECRET: "b",
    ADMIN_USERS: " Boss ,x@Y.z,",
    PUBLIC_URL: "https://o.example/",
  });
  assert.deepEqual(s.adminUsers, ["boss", "x@y.z"]);
  assert.equal(s.publicUrl, "https://o.example");
  assert.equal(s.sessionTtlHours, 12);
  assert.equal(s.github?.url, "https://github.com");
  assert.equal(parse({}).github, null);
});
