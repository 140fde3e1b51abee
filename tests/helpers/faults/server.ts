// The server harness of the fault suite: runs src/main.ts as a real process (as `deno task
// start` does), with its logs, pid and memory at hand, and stops it within a bound.
import { mainArgs } from "../../../scripts/lib/main-command.ts";
import { freePort } from "../../../src/db/embedded.ts";

/** The flags of `deno task start`: the memory bound is about the process as deployed. */
const RUN_MAIN = mainArgs();

export interface LogLine {
  level: string;
  msg: string;
  logger?: string;
  [k: string]: unknown;
}

export interface StartOptions {
  /** Environment for main on top of the suite's defaults (127.0.0.1, JSON logs). */
  env: Record<string, string>;
  /** Fixed port (a restart on the same address); a free one by default. */
  port?: number;
  /** Longest start-up may take before the test fails. */
  readyTimeoutMs?: number;
}

export class Server {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  readonly base: string;
  readonly startedAt = performance.now();
  #out = "";
  #exit: Deno.CommandStatus | undefined;
  #exitedAt: number | undefined;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(readonly env: Record<string, string>, port = freePort()) {
    this.port = port;
    this.base = `http://127.0.0.1:${port}`;
    this.child = new Deno.Command(Deno.execPath(), {
      args: RUN_MAIN,
      env: {
        PORT: String(port),
        HOST: "127.0.0.1",
        LOG_FORMAT: "json",
        NO_COLOR: "1",
        ...env,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const decoder = new TextDecoder();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      try {
        for await (const chunk of s) this.#out += decoder.decode(chunk, { stream: true });
      } catch { /* the pipe broke with the process */ }
    };
    void pump(this.child.stdout);
    void pump(this.child.stderr);
    this.status = this.child.status.then((s) => {
      this.#exit = s;
      this.#exitedAt = performance.now();
      return s;
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Everything the process printed so far. */
  output(): string {
    return this.#out;
  }

  /** Its JSON log lines so far (anything else as a line of level "?"). */
  lines(): LogLine[] {
    return this.#out.split("\n").filter((l) => l.trim()).map((l) => {
      try {
        return JSON.parse(l) as LogLine;
      } catch {
        return { level: "?", msg: l };
      }
    });
  }

  /** The last `n` lines of output, for failure messages. */
  tail(n = 40): string {
    return this.#out.trimEnd().split("\n").slice(-n).join("\n");
  }

  get exited(): Deno.CommandStatus | undefined {
    return this.#exit;
  }

  /** Resident set size now and its peak (VmHWM), in bytes; undefined once it exited. */
  memory(): { rss: number; peak: number } | undefined {
    try {
      const status = Deno.readTextFileSync(`/proc/${this.pid}/status`);
      const kb = (name: string) =>
        Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m"))?.[1]) * 1024;
      return { rss: kb("VmRSS"), peak: kb("VmHWM") };
    } catch {
      return undefined;
    }
  }

  /** GET `path` with a client-side bound; the status, or 0 when no answer came. */
  async get(path: string, timeoutMs = 5000): Promise<number> {
    try {
      const res = await fetch(this.base + path, { signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      return res.status;
    } catch {
      return 0;
    }
  }

  /** Waits for /health/ready to answer 200; fails with the log if it exits or takes too long. */
  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (this.#exit) {
        throw new Error(`server exited during start-up (code ${this.#exit.code}):\n${this.tail()}`);
      }
      if ((await this.get("/health/ready", 2000)) === 200) return;
      await sleep(100);
    }
    this.kill("SIGKILL");
    throw new Error(`server not ready within ${timeoutMs} ms:\n${this.tail()}`);
  }

  kill(signal: Deno.Signal): void {
    if (this.#exit) return;
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
  }

  /**
   * Sends `signal` and waits up to `boundMs` for the process to exit: its status and how long
   * it took, or undefined (the process is then SIGKILLed so that nothing outlives the test).
   */
  async stop(
    signal: Deno.Signal,
    boundMs: number,
  ): Promise<{ status: Deno.CommandStatus; ms: number } | undefined> {
    const sent = performance.now();
    this.kill(signal);
    const status = await Promise.race([this.status, sleep(boundMs).then(() => undefined)]);
    if (!status) {
      this.kill("SIGKILL");
      await this.status;
      return undefined;
    }
    return { status, ms: (this.#exitedAt ?? performance.now()) - sent };
  }
}

/** Starts main and waits until it is ready. */
export async function startServer(opts: StartOptions): Promise<Server> {
  const server = new Server(opts.env, opts.port);
  try {
    await server.ready(opts.readyTimeoutMs);
  } catch (err) {
    server.kill("SIGKILL");
    await server.status;
    throw err;
  }
  return server;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
