// The OAuth 2 authorization-code flow with PKCE and state (oauth4webapi): GitHub, whose OAuth
// endpoints and API are configured by base URL, and any OpenID Connect provider found by issuer
// discovery, whose id_token is checked (issuer, audience, times, nonce, and its signature
// against the provider's JWKS). Knows nothing of HTTP routes: it builds the provider's URL and
// turns a callback URL into who signed in.
import * as oauth from "oauth4webapi";
import type { SignInSettings } from "../config.ts";
import { UnauthorizedError, UnavailableError } from "../errors.ts";
import type { PendingLogin } from "./sessions.ts";
import type { Identity, Provider } from "./users.ts";

/** Longest one request to the provider may take. */
const PROVIDER_TIMEOUT_MS = 10_000;
const GITHUB_SCOPE = "read:user user:email";
const OIDC_SCOPE = "openid email profile";

/**
 * oauth4webapi refuses http:// endpoints. We allow them, through its documented
 * allowInsecureRequests option, only for loopback hosts: a provider on this machine (the
 * tests' fake one), where there is no network to eavesdrop on.
 */
export function isLoopbackUrl(url: string): boolean {
  const u = new URL(url);
  return u.protocol === "http:" &&
    ["127.0.0.1", "localhost", "[::1]", "::1"].includes(u.hostname);
}

const insecureIfLoopback = (url: string) =>
  isLoopbackUrl(url) ? { [oauth.allowInsecureRequests]: true } : {};

/** The start of a sign-in: where to send the person, and what to keep until they return. */
export interface LoginStart {
  url: URL;
  pending: PendingLogin;
}

export class SignIn {
  #oidcServer?: Promise<oauth.AuthorizationServer>;

  constructor(readonly settings: SignInSettings) {}

  /** The configured providers, GitHub first (the default). */
  providers(): Provider[] {
    return [
      ...(this.settings.github ? ["github" as const] : []),
      ...(this.settings.oidc ? ["oidc" as const] : []),
    ];
  }

  get configured(): boolean {
    return this.providers().length > 0;
  }

  /** The provider's authorization URL, with a fresh state, PKCE challenge and (OIDC) nonce. */
  async begin(provider: Provider, redirectUri: string, returnTo: string): Promise<LoginStart> {
    const { as, client } = await this.#server(provider);
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = provider === "oidc" ? oauth.generateRandomNonce() : null;
    const url = new URL(as.authorization_endpoint!);
    url.searchParams.set("client_id", client.client_id);
    url.searchParams.set("redirect_uri", redirectUri);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("scope", provider === "oidc" ? OIDC_SCOPE : GITHUB_SCOPE);
    url.searchParams.set("state", state);
    url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(codeVerifier));
    url.searchParams.set("code_challenge_method", "S256");
    if (nonce) url.searchParams.set("nonce", nonce);
    if (provider === "github") url.searchParams.set("allow_signup", "false");
    return {
      url,
      pending: { state, provider, codeVerifier, nonce, redirectUri, returnTo },
    };
  }

  /**
   * Who signed in, from the provider's redirect back (callbackUrl) and the pending login its
   * state named: the code is exchanged with the PKCE verifier, then the identity is read.
   * A refusal by the provider or a token that does not check out is UnauthorizedError; a
   * provider that cannot be reached, UnavailableError.
   */
  async finish(pending: PendingLogin, callbackUrl: URL): Promise<Identity> {
    try {
      const { as, client, auth, opts } = await this.#server(pending.provider);
      const params = oauth.validateAuthResponse(as, client, callbackUrl, pending.state);
      const response = await oauth.authorizationCodeGrantRequest(
        as,
        client,
        auth,
        params,
        pending.redirectUri,
        pending.codeVerifier,
        { ...opts, signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS) },
      );
      if (pending.provider === "github") {
        const tokens = await oauth.processAuthorizationCodeResponse(as, client, response);
        return await this.#githubIdentity(tokens.access_token);
      }
      const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
        expectedNonce: pending.nonce ?? oauth.expectNoNonce,
        requireIdToken: true,
      });
      // The token came over TLS from the issuer, which the OIDC spec deems enough; we check
      // the signature against the JWKS as well, so a forged id_token is refused however it came.
      await oauth.validateApplicationLevelSignature(as, response, {
        ...opts,
        signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
      });
      const claims = oauth.getValidatedIdTokenClaims(tokens)!;
      let info: Record<string, unknown> = {};
      if (as.userinfo_endpoint) {
        const res = await oauth.userInfoRequest(as, client, tokens.access_token, {
          ...opts,
          signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
        });
        info = { ...(await oauth.processUserInfoResponse(as, client, claims.sub, res)) };
      }
      return oidcIdentity({ ...info, ...claims });
    } catch (err) {
      throw asSignInError(err);
    }
  }

  async #server(provider: Provider) {
    if (provider === "github") {
      const gh = this.settings.github;
      if (!gh) throw new Error("GitHub sign-in is not configured");
      const as: oauth.AuthorizationServer = {
        issuer: gh.url,
        authorization_endpoint: `${gh.url}/login/oauth/authorize`,
        token_endpoint: `${gh.url}/login/oauth/access_token`,
      };
      return {
        as,
        client: { client_id: gh.clientId } as oauth.Client,
        auth: oauth.ClientSecretPost(gh.clientSecret),
        opts: insecureIfLoopback(gh.url),
      };
    }
    const o = this.settings.oidc;
    if (!o) throw new Error("OIDC sign-in is not configured");
    const opts = insecureIfLoopback(o.issuer);
    // Discovered once per instance; a failure is forgotten so that the next sign-in retries.
    this.#oidcServer ??= (async () => {
      const issuer = new URL(o.issuer);
      const res = await oauth.discoveryRequest(issuer, {
        algorithm: "oidc",
        ...opts,
        signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
      });
      return await oauth.processDiscoveryResponse(issuer, res);
    })().catch((err) => {
      this.#oidcServer = undefined;
      // A provider we cannot read is unavailable to every sign-in, not a refusal of one.
      const e = asSignInError(err);
      throw e instanceof UnavailableError ? e : new UnavailableError(
        `OIDC discovery at ${o.issuer} failed: ${e instanceof Error ? e.message : String(e)}`,
        30,
      );
    });
    const as = await this.#oidcServer;
    const methods = as.token_endpoint_auth_methods_supported;
    return {
      as,
      client: { client_id: o.clientId } as oauth.Client,
      // client_secret_basic is the default the OIDC spec gives; post only where it is the one.
      auth: methods && !methods.includes("client_secret_basic") &&
          methods.includes("client_secret_post")
        ? oauth.ClientSecretPost(o.clientSecret)
        : oauth.ClientSecretBasic(o.clientSecret),
      opts,
    };
  }

  /** The GitHub login and primary verified email of the token's owner. */
  async #githubIdentity(accessToken: string): Promise<Identity> {
    const api = this.settings.github!.apiUrl;
    const get = async (path: string) => {
      const res = await fetch(`${api}${path}`, {
        headers: {
          authorization: `Bearer ${accessToken}`,
          accept: "application/vnd.github+json",
          "x-github-api-version": "2022-11-28",
          "user-agent": "observian",
        },
        signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
      });
      if (!res.ok) {
        await res.body?.cancel();
        throw new UnauthorizedError(`sign-in failed: GitHub answered ${res.status} to ${path}`);
      }
      return await res.json();
    };
    const user = await get("/user");
    if (typeof user?.login !== "string" || user.login === "") {
      throw new UnauthorizedError("sign-in failed: GitHub's /user has no login");
    }
    // Without the user:email scope granted the list is refused; the login alone is enough.
    let email: string | null = null;
    try {
      const emails = await get("/user/emails");
      const primary = Array.isArray(emails)
        ? emails.find((e) => e?.primary && e?.verified && typeof e.email === "string")
        : undefined;
      email = primary?.email ?? null;
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
    }
    return { login: user.login, email, provider: "github" };
  }
}

/** The login of an OIDC person: preferred_username, else a verified email, else sub. */
function oidcIdentity(claims: Record<string, unknown>): Identity {
  const str = (v: unknown) => typeof v === "string" && v.trim() !== "" ? v.trim() : null;
  const email = claims.email_verified === false ? null : str(claims.email);
  const login = str(claims.preferred_username) ?? email ?? str(claims.sub);
  if (!login) throw new UnauthorizedError("sign-in failed: the id_token names nobody");
  return { login: login.slice(0, 200), email, provider: "oidc" };
}

function asSignInError(err: unknown): unknown {
  if (err instanceof UnauthorizedError || err instanceof UnavailableError) return err;
  if (err instanceof oauth.AuthorizationResponseError) {
    return new UnauthorizedError(`sign-in refused by the provider: ${err.error}`);
  }
  if (err instanceof oauth.ResponseBodyError) {
    return new UnauthorizedError(`sign-in failed: the provider answered ${err.error}`);
  }
  if (
    err instanceof oauth.OperationProcessingError ||
    err instanceof oauth.WWWAuthenticateChallengeError ||
    err instanceof oauth.UnsupportedOperationError
  ) {
    return new UnauthorizedError(`sign-in failed: ${err.message}`);
  }
  // fetch's network failures and our timeouts: the provider cannot be reached now.
  if (
    (err instanceof TypeError && !("code" in err)) ||
    (err instanceof DOMException && (err.name === "TimeoutError" || err.name === "AbortError"))
  ) {
    return new UnavailableError(`sign-in provider unreachable: ${err.message}`, 5);
  }
  return err;
}
