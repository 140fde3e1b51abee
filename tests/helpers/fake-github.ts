// A fake GitHub events API: a real HTTP server on 127.0.0.1 that behaves like
// api.github.com where the ingestor cares — weak ETags and 304s, X-Poll-Interval, rate-limit
// headers, Link pagination capped at 3 pages — and can be told to misbehave (scripted
// answers: errors, rate limits, slow or malformed answers, answers held until released).

export interface GhEvent {
  id: string;
  type: string;
  created_at: string;
  [k: string]: unknown;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
}

export interface Scripted {
  status: number;
  headers?: Record<string, string>;
  /** JSON-encoded unless `raw` is set. */
  body?: unknown;
  raw?: string;
  /** Answer only after this many ms (or never, if the server closes first). */
  delayMs?: number;
  /** Answer only once this promise settles (see hold()). */
  waitFor?: Promise<unknown>;
}

interface Feed {
  events: GhEvent[];
  version: number;
}

const enc = new TextEncoder();

async function weakEtag(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-1", enc.encode(text)));
  return `W/"${Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("")}"`;
}

export class FakeGitHub {
  readonly requests: RecordedRequest[] = [];
  /** X-Poll-Interval sent with every answer. */
  pollInterval = 60;
  /** Most events one page holds, whatever per_page asks (GitHub: 100). */
  pageSize = 100;
  /** GitHub serves at most 3 pages (300 events) of a timeline. */
  maxPages = 3;
  rateLimit = { limit: 5000, remaining: 4990, reset: Math.floor(Date.now() / 1000) + 3600 };

  #feeds = new Map<string, Feed>();
  #scripts = new Map<string, Scripted[]>();
  #waiters: ((r: RecordedRequest) => void)[] = [];
  #closing = new AbortController();
  #server: Deno.HttpServer<Deno.NetAddr>;
  readonly url: string;

  private constructor() {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req) => this.#handle(req),
    );
    this.url = `http://127.0.0.1:${this.#server.addr.port}`;
  }

  static start(): FakeGitHub {
    return new FakeGitHub();
  }

  /** Sets a timeline (newest first); a change gives it a new ETag. */
  feed(path: string, events: GhEvent[]): void {
    const old = this.#feeds.get(path);
    this.#feeds.set(path, { events: [...events], version: (old?.version ?? 0) + 1 });
  }

  /** Queues one-shot answers for the next requests to `path`, before its timeline. */
  script(path: string, ...answers: Scripted[]): void {
    this.#scripts.set(path, [...(this.#scripts.get(path) ?? []), ...answers]);
  }

  /** A promise and its release, for answers held until the test lets them go. */
  static hold(): { promise: Promise<void>; release: () => void } {
    const { promise, resolve } = Promise.withResolvers<void>();
    return { promise, release: () => resolve() };
  }

  /** Resolves with the next request the server receives. */
  nextRequest(): Promise<RecordedRequest> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  requestsTo(path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.#closing.abort();
    await this.#server.shutdown();
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const rec: RecordedRequest = {
      method: req.method,
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
    };
    this.requests.push(rec);
    for (const w of this.#waiters.splice(0)) w(rec);

    const scripted = this.#scripts.get(url.pathname)?.shift();
    if (scripted) return await this.#scripted(scripted);
    const feed = this.#feeds.get(url.pathname);
    if (!feed) return this.#json(404, { message: "Not Found" });
    return await this.#page(url, req.headers, feed);
  }

  async #scripted(s: Scripted): Promise<Response> {
    if (s.waitFor) await s.waitFor;
    if (s.delayMs) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, s.delayMs);
        this.#closing.signal.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const headers = { "content-type": "application/json; charset=utf-8", ...s.headers };
    const body = s.raw ?? (s.body === undefined ? "" : JSON.stringify(s.body));
    return new Response(s.status === 304 ? null : body, { status: s.status, headers });
  }

  async #page(url: URL, reqHeaders: Headers, feed: Feed): Promise<Response> {
    const perPage = Math.min(Number(url.searchParams.get("per_page") ?? 30), this.pageSize);
    const page = Math.max(1, Number(url.searchParams.get("page") ?? 1));
    const all = feed.events.slice(0, perPage * this.maxPages);
    const items = all.slice((page - 1) * perPage, page * perPage);
    const etag = await weakEtag(`${url.pathname}:${page}:${feed.version}:${perPage}`);
    const common: Record<string, string> = {
      "etag": etag,
      "x-poll-interval": String(this.pollInterval),
      "x-ratelimit-limit": String(this.rateLimit.limit),
      "x-ratelimit-reset": String(this.rateLimit.reset),
    };
    // Like GitHub: a matching conditional request is a 304 and costs no rate limit.
    if (reqHeaders.get("if-none-match") === etag) {
      return new Response(null, {
        status: 304,
        headers: { ...common, "x-ratelimit-remaining": String(this.rateLimit.remaining) },
      });
    }
    this.rateLimit.remaining = Math.max(0, this.rateLimit.remaining - 1);
    const links: string[] = [];
    const base = `${this.url}${url.pathname}?per_page=${perPage}`;
    if (page * perPage < all.length) links.push(`<${base}&page=${page + 1}>; rel="next"`);
    const last = Math.max(1, Math.ceil(all.length / perPage));
    links.push(`<${base}&page=${last}>; rel="last"`);
    return this.#json(200, items, {
      ...common,
      "x-ratelimit-remaining": String(this.rateLimit.remaining),
      "link": links.join(", "),
    });
  }

  #json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
    return new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json; charset=utf-8", ...headers },
    });
  }
}

/** A GitHub event of the envelope's shape; `minutesAgo` sets created_at. */
export function ghEvent(
  id: string,
  opts: {
    type?: string;
    minutesAgo?: number;
    at?: Date;
    repo?: string;
    actor?: string;
    org?: string;
    payload?: Record<string, unknown>;
  } = {},
): GhEvent {
  const at = opts.at ?? new Date(Date.now() - (opts.minutesAgo ?? 1) * 60_000);
  const repo = opts.repo ?? "octo/hello";
  const ev: GhEvent = {
    id,
    type: opts.type ?? "WatchEvent",
    actor: { id: 1, login: opts.actor ?? "alice", display_login: opts.actor ?? "alice" },
    repo: { id: 2, name: repo, url: `https://api.github.com/repos/${repo}` },
    payload: opts.payload ?? { action: "started" },
    public: true,
    created_at: new Date(Math.floor(at.getTime() / 1000) * 1000).toISOString().replace(
      ".000Z",
      "Z",
    ),
  };
  if (opts.org) ev.org = { id: 3, login: opts.org };
  return ev;
}
