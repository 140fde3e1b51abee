// The Observian server as a real process, for tests and benchmarks alike: src/main.ts run with
// the flags of `deno task start` (mainArgs), on a loopback port, with its output, pid and
// memory at hand, ready when /health/ready says so, and stopped within a bound.
import { freePort } from "../../src/db/embedded.ts";
import { mainArgs } from "./main-command.ts";

export interface LogLine {
  level: string;
  msg: string;
  logger?: string;
  [k: string]: unknown;
}

export interface SpawnOptions {
  /** Environment for main on top of the defaults (a free port on 127.0.0.1, JSON logs, no colour). */
  env?: Record<string, string>;
  /** Fixed port (a restart on the same address); a free one by default. */
  port?: number;
  /** Keep only the last this many characters of output (a long run); all by default. */
  outputLimit?: number;
}

export class Server {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  readonly base: string;
  readonly startedAt = performance.now();
  readonly status: Promise<Deno.CommandStatus>;
  #out = "";
  #exit: Deno.CommandStatus | undefined;
  #exitedAt: number | undefined;
  #pumped: Promise<unknown>;

  constructor(opts: SpawnOptions = {}) {
    this.port = opts.port ?? freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    this.child = new Deno.Command(Deno.execPath(), {
      args: mainArgs(),
      env: {
        PORT: String(this.port),
        HOST: "127.0.0.1",
        LOG_FORMAT: "json",
        // Deno's own messages without colour codes, so they read as text in failure messages.
        NO_COLOR: "1",
        ...opts.env,
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const limit = opts.outputLimit;
    const decoder = new TextDecoder();
    const pump = async (s: ReadableStream<Uint8Array>) => {
      try {
        for await (const chunk of s) {
          this.#out += decoder.decode(chunk, { stream: true });
          if (limit !== undefined && this.#out.length > limit) this.#out = this.#out.slice(-limit);
        }
      } catch { /* the pipe broke with the process */ }
    };
    this.#pumped = Promise.all([pump(this.child.stdout), pump(this.child.stderr)]);
    this.status = this.child.status.then((s) => {
      this.#exit = s;
      this.#exitedAt = performance.now();
      return s;
    });
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Everything the process printed so far (stdout and stderr as they came). */
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

  /** Its exit status once it has exited and all it printed has been read. */
  async finished(): Promise<Deno.CommandStatus> {
    const status = await this.status;
    await this.#pumped;
    return status;
  }

  /** Resident set size now and its peak (VmHWM), in bytes; undefined once it exited. */
  memory(): { rss: number; peak: number } | undefined {
    const rss = readStatusKb(this.pid, "VmRSS");
    if (rss === 0) return undefined;
    return { rss: rss * 1024, peak: readStatusKb(this.pid, "VmHWM") * 1024 };
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

  /**
   * Waits for /health/ready to answer 200; fails with the log's tail if the process exits or
   * takes longer than `timeoutMs` (and is then SIGKILLed).
   */
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
   * it took, or undefined (the process is then SIGKILLed so that nothing outlives the caller).
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

/** Starts main; it runs on its own (see Server.ready, Server.finished). */
export function spawnServer(opts: SpawnOptions = {}): Server {
  return new Server(opts);
}

/** Starts main and waits until it is ready; on failure, nothing is left running. */
export async function startServer(
  opts: SpawnOptions & { readyTimeoutMs?: number } = {},
): Promise<Server> {
  const server = new Server(opts);
  try {
    await server.ready(opts.readyTimeoutMs);
  } catch (err) {
    server.kill("SIGKILL");
    await server.status;
    throw err;
  }
  return server;
}

/** A kB field of /proc/<pid>/status (VmRSS, VmHWM: the peak resident set); 0 once gone. */
export function readStatusKb(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = status.match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
