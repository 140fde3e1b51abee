// A fake sign-in provider: a real HTTP server on 127.0.0.1 that behaves like GitHub's OAuth app
// endpoints and API (/login/oauth/authorize, /login/oauth/access_token, /user, /user/emails)
// and, under /oidc, like an OpenID Connect provider (discovery, authorize, token with an RS256
// id_token, JWKS, userinfo). Codes are single-use and checked against the PKCE challenge, the
// client's secret and the redirect_uri, as the real ones are.

export interface FakePerson {
  login: string;
  email: string | null;
}

interface Grant {
  provider: "github" | "oidc";
  person: FakePerson;
  clientId: string;
  redirectUri: string;
  challenge: string;
  nonce: string | null;
}

const enc = new TextEncoder();
const b64u = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const b64uJson = (v: unknown) => b64u(enc.encode(JSON.stringify(v)));

async function s256(verifier: string): Promise<string> {
  return b64u(new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(verifier))));
}

const RSA = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};

export class FakeOAuth {
  readonly clientId = "fake-client";
  readonly clientSecret = "fake-secret";
  /** Who signs in at the next authorize request (the fake asks nobody). */
  person: FakePerson = { login: "octocat", email: "octocat@example.com" };
  /** Sign id_tokens with a key that is not in the JWKS. */
  forgeSignature = false;
  /** Token requests seen, with whether their PKCE verifier matched. */
  readonly tokenRequests: { provider: string; pkceOk: boolean }[] = [];

  #grants = new Map<string, Grant>();
  #tokens = new Map<string, { person: FakePerson; sub: string }>();
  #server: Deno.HttpServer<Deno.NetAddr>;
  readonly url: string;
  readonly issuer: string;

  private constructor(
    private readonly key: CryptoKeyPair,
    private readonly otherKey: CryptoKeyPair,
  ) {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => this.#handle(req),
    );
    this.url = `http://127.0.0.1:${this.#server.addr.port}`;
    this.issuer = `${this.url}/oidc`;
  }

  static async start(): Promise<FakeOAuth> {
    const gen = () =>
      crypto.subtle.generateKey(RSA, true, ["sign", "verify"]) as Promise<CryptoKeyPair>;
    return new FakeOAuth(await gen(), await gen());
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    switch (`${req.method} ${url.pathname}`) {
      case "GET /login/oauth/authorize":
        return this.#authorize(url, "github");
      case "GET /oidc/authorize":
        return this.#authorize(url, "oidc");
      case "POST /login/oauth/access_token":
        return await this.#token(req, "github");
      case "POST /oidc/token":
        return await this.#token(req, "oidc");
      case "GET /user": {
        const t = this.#bearer(req);
        return t ? Response.json({ login: t.person.login, id: 1 }) : unauthorized();
      }
      case "GET /user/emails": {
        const t = this.#bearer(req);
        if (!t) return unauthorized();
        return Response.json(
          t.person.email
            ? [
              { email: `old-${t.person.email}`, primary: false, verified: true },
              { email: t.person.email, primary: true, verified: true },
            ]
            : [],
        );
      }
      case "GET /oidc/.well-known/openid-configuration":
        return Response.json({
          issuer: this.issuer,
          authorization_endpoint: `${this.issuer}/authorize`,
          token_endpoint: `${this.issuer}/token`,
          userinfo_endpoint: `${this.issuer}/userinfo`,
          jwks_uri: `${this.issuer}/jwks`,
          response_types_supported: ["code"],
          subject_types_supported: ["public"],
          id_token_signing_alg_values_supported: ["RS256"],
          token_endpoint_auth_methods_supported: ["client_secret_basic"],
          code_challenge_methods_supported: ["S256"],
        });
      case "GET /oidc/jwks": {
        const jwk = await crypto.subtle.exportKey("jwk", this.key.publicKey);
        return Response.json({
          keys: [{ kty: jwk.kty, n: jwk.n, e: jwk.e, kid: "k1", alg: "RS256", use: "sig" }],
        });
      }
      case "GET /oidc/userinfo": {
        const t = this.#bearer(req);
        if (!t) return unauthorized();
        return Response.json({
          sub: t.sub,
          preferred_username: t.person.login,
          email: t.person.email,
          email_verified: true,
        });
      }
    }
    return new Response("not found", { status: 404 });
  }

  #authorize(url: URL, provider: "github" | "oidc"): Response {
    const q = url.searchParams;
    const redirectUri = q.get("redirect_uri");
    const state = q.get("state");
    const challenge = q.get("code_challenge");
    if (
      q.get("client_id") !== this.clientId || !redirectUri || !state || !challenge ||
      q.get("code_challenge_method") !== "S256" ||
      (provider === "oidc" && (!q.get("nonce") || !q.get("scope")?.split(" ").includes("openid")))
    ) {
      return new Response("bad authorization request", { status: 400 });
    }
    const code = crypto.randomUUID();
    this.#grants.set(code, {
      provider,
      person: { ...this.person },
      clientId: this.clientId,
      redirectUri,
      challenge,
      nonce: q.get("nonce"),
    });
    const back = new URL(redirectUri);
    back.searchParams.set("code", code);
    back.searchParams.set("state", state);
    return new Response(null, { status: 302, headers: { location: back.href } });
  }

  async #token(req: Request, provider: "github" | "oidc"): Promise<Response> {
    const form = new URLSearchParams(await req.text());
    let clientId = form.get("client_id");
    let secret = form.get("client_secret");
    const basic = req.headers.get("authorization")?.match(/^Basic (.+)$/)?.[1];
    if (basic) {
      [clientId, secret] = atob(basic).split(":").map(decodeURIComponent);
    }
    const code = form.get("code") ?? "";
    const grant = this.#grants.get(code);
    this.#grants.delete(code);
    const verifier = form.get("code_verifier") ?? "";
    const pkceOk = !!grant && (await s256(verifier)) === grant.challenge;
    this.tokenRequests.push({ provider, pkceOk });
    if (
      !grant || grant.provider !== provider || clientId !== this.clientId ||
      secret !== this.clientSecret || form.get("redirect_uri") !== grant.redirectUri ||
      form.get("grant_type") !== "authorization_code" || !pkceOk
    ) {
      // GitHub answers a bad code with 200 and an error; OIDC providers with 400.
      return Response.json(
        { error: provider === "github" ? "bad_verification_code" : "invalid_grant" },
        { status: provider === "github" ? 200 : 400 },
      );
    }
    const accessToken = crypto.randomUUID();
    const sub = `sub-${grant.person.login}`;
    this.#tokens.set(accessToken, { person: grant.person, sub });
    if (provider === "github") {
      return Response.json({ access_token: accessToken, token_type: "bearer", scope: "read:user" });
    }
    const now = Math.floor(Date.now() / 1000);
    const idToken = await this.#sign({
      iss: this.issuer,
      sub,
      aud: this.clientId,
      iat: now,
      exp: now + 300,
      nonce: grant.nonce,
    });
    return Response.json({
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: 300,
      id_token: idToken,
    });
  }

  async #sign(claims: Record<string, unknown>): Promise<string> {
    const input = `${b64uJson({ alg: "RS256", typ: "JWT", kid: "k1" })}.${b64uJson(claims)}`;
    const key = this.forgeSignature ? this.otherKey.privateKey : this.key.privateKey;
    const sig = new Uint8Array(await crypto.subtle.sign(RSA.name, key, enc.encode(input)));
    return `${input}.${b64u(sig)}`;
  }

  #bearer(req: Request) {
    const token = req.headers.get("authorization")?.match(/^Bearer (.+)$/i)?.[1];
    return token ? this.#tokens.get(token) : undefined;
  }
}

const unauthorized = () => Response.json({ message: "Bad credentials" }, { status: 401 });
