// The supervised postmaster of the embedded PostgreSQL: started under a watchdog that stops it
// when Deno dies, restarted with backoff when it dies under us, stopped within a bound. One
// process's life cycle, which is why it runs past 300 lines.
import { logger } from "../logging.ts";
import {
  describeStatus,
  FAST_STOP_MS,
  IMMEDIATE_STOP_MS,
  isPostgresOf,
  KILL_WAIT_MS,
  readPidFile,
  signal,
  sleep,
  within,
} from "./pg-processes.ts";

/**
 * - `running`: the postmaster accepts connections.
 * - `down`: it died; a restart is pending or under way. Connections fail meanwhile.
 * - `failed`: restarts kept failing; supervision gave up (see `gaveUp`).
 * - `stopping`, `stopped`: stop() was called.
 */
export type EmbeddedState = "running" | "down" | "failed" | "stopping" | "stopped";

/** Waits before each restart attempt of one outage; after the last one fails, give up. */
const RESTART_DELAYS_MS = [500, 1_000, 2_000, 4_000, 8_000];
/** A postmaster that ran this long before dying starts a new outage (the attempts count anew). */
const STABLE_MS = 30_000;
/** Time for a postmaster to accept connections, crash recovery included. */
const READY_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// The watchdog. `sh -c WATCHDOG name postgres args…` runs as the postmaster's parent:
// - fd 3 keeps the pipe from Deno (stdin); the postmaster gets neither it nor stdin, and logs
//   to stderr only, so stdout carries exactly one line: the postmaster's pid.
// - a background subshell blocks reading the pipe; at EOF (Deno is gone) it asks for a fast
//   shutdown, and SIGKILLs after 10 s.
// - the shell exits when the postmaster does, with its status, which is how Deno hears of it.
const WATCHDOG = `
exec 3<&0
"$@" 3<&- </dev/null 1>&2 &
pg=$!
echo "$pg"
(
  while read -r _line <&3; do :; done
  kill -INT "$pg" 2>/dev/null || exit 0
  n=0
  while kill -0 "$pg" 2>/dev/null; do
    n=$((n + 1))
    if [ "$n" -gt 10 ]; then kill -KILL "$pg" 2>/dev/null; exit 0; fi
    sleep 1
  done
) &
w=$!
exec 3<&-
wait "$pg"
st=$?
kill "$w" 2>/dev/null
exit "$st"
`;

interface Run {
  /** The postmaster. */
  pid: number;
  child: Deno.ChildProcess;
  /** The watchdog (or, without one, the postmaster) exited. */
  exited: Promise<Deno.CommandStatus>;
  done: boolean;
  readyAt?: number;
  /** The last lines PostgreSQL wrote, for error messages. */
  recent: string[];
  stopping?: Promise<boolean>;
}

export class Postmaster {
  state: EmbeddedState = "down";
  restarts = 0;
  listeners: ((state: EmbeddedState, previous: EmbeddedState) => void)[] = [];
  onStopped = () => {};
  readonly gaveUp: Promise<Error>;
  #giveUp!: (err: Error) => void;
  #run: Run | undefined;
  /** Attempts made in the current outage. */
  #attempts = 0;
  #abort = new AbortController();
  #recovery: Promise<void> | undefined;
  #stopping: Promise<boolean> | undefined;
  #log = logger("db", "embedded");

  constructor(
    readonly opts: { pgDir: string; args: string[]; user?: { uid: number; gid: number } },
  ) {
    this.gaveUp = new Promise((r) => this.#giveUp = r);
  }

  get pid(): number | undefined {
    return this.state === "running" ? this.#run?.pid : undefined;
  }

  /** The first start: one attempt, its failure is start-up's. */
  async start(): Promise<void> {
    const run = await this.#spawn();
    try {
      await this.#ready(run);
    } catch (err) {
      await this.#stopRun(run);
      throw err;
    }
    this.#set("running");
  }

  stop(): Promise<boolean> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  killNow(): void {
    const run = this.#run;
    if (!run || run.done) return;
    signal(run.pid, "SIGKILL");
    signal(run.child.pid, "SIGKILL");
  }

  forced = false;

  async #stop(): Promise<boolean> {
    const stoppedFrom = this.state;
    this.#set("stopping");
    this.#abort.abort();
    // A restart under way notices the abort within a poll; what it spawned is stopped below.
    await within(this.#recovery ?? Promise.resolve(), 1_000);
    const run = this.#run;
    let clean = true;
    if (run) clean = await this.#stopRun(run);
    this.forced = !clean;
    this.#set("stopped");
    this.onStopped();
    if (clean) {
      const note = { down: " (it was down)", failed: " (it had failed)" } as Record<string, string>;
      this.#log.info("embedded PostgreSQL stopped{note}", { note: note[stoppedFrom] ?? "" });
    }
    return clean;
  }

  #set(state: EmbeddedState): void {
    const previous = this.state;
    if (previous === state) return;
    this.state = state;
    for (const fn of this.listeners) {
      try {
        fn(state, previous);
      } catch (err) {
        this.#log.error("state listener failed: {err}", { err: String(err) });
      }
    }
  }

  async #spawn(): Promise<Run> {
    const env: Record<string, string> = {};
    // The postmaster gets none of Observian's secrets (API keys, tokens) in its environment.
    for (const name of ["PATH", "LANG", "LC_ALL", "LC_MESSAGES", "LC_CTYPE", "TZ"]) {
      const value = Deno.env.get(name);
      if (value !== undefined) env[name] = value;
    }
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        WATCHDOG.replace(/\n\s*/g, "\n").trim(),
        "observian-pg-watchdog",
        ...this.opts.args,
      ],
      clearEnv: true,
      env,
      cwd: this.opts.pgDir,
      ...(this.opts.user ?? {}),
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      // Its own session: a terminal's Ctrl-C goes to Deno (which drains first), not PostgreSQL.
      detached: true,
    }).spawn();
    const recent: string[] = [];
    const exited = child.status;
    const run: Run = { pid: 0, child, exited, done: false, recent };
    void exited.then(() => {
      run.done = true;
      // Deno's end of the watchdog pipe; the watchdog is gone, nothing reads it.
      child.stdin.close().catch(() => {});
    });
    void this.#pumpLog(child.stderr, recent);
    const pidLine = await within(firstLine(child.stdout), 5_000);
    const pid = Number(pidLine);
    if (!pidLine || !Number.isInteger(pid) || pid <= 0) {
      signal(child.pid, "SIGKILL");
      throw new Error(`the PostgreSQL watchdog did not start (${recent.join(" | ")})`);
    }
    run.pid = pid;
    void exited.then((status) => this.#exited(run, status));
    return run;
  }

  async #pumpLog(stream: ReadableStream<Uint8Array>, recent: string[]): Promise<void> {
    let rest = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop() ?? "";
        for (const raw of lines) {
          const line = raw.trim();
          if (!line) continue;
          recent.push(line);
          if (recent.length > 20) recent.shift();
          this.#log.debug("{line}", { line });
        }
      }
    } catch { /* the pipe broke with the process */ }
  }

  /** Waits until `run` accepts connections (postmaster.pid says "ready", as pg_ctl reads it). */
  async #ready(run: Run): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (true) {
      if (run.done) {
        const status = await run.exited;
        throw new Error(
          `embedded PostgreSQL exited during start-up (${describeStatus(status)}): ${
            run.recent.slice(-5).join(" | ")
          }`,
        );
      }
      const info = await readPidFile(this.opts.pgDir);
      if (info?.pid === run.pid && info.status === "ready") break;
      if (this.#abort.signal.aborted && this.state === "stopping") {
        throw new Error("stopped during start-up");
      }
      if (Date.now() > deadline) {
        throw new Error(
          `embedded PostgreSQL not ready after ${READY_TIMEOUT_MS / 1000}s: ${
            run.recent.slice(-5).join(" | ")
          }`,
        );
      }
      await sleep(50);
    }
    run.readyAt = Date.now();
    this.#run = run;
  }

  #exited(run: Run, status: Deno.CommandStatus): void {
    if (run !== this.#run || this.state !== "running") return;
    const ranMs = Date.now() - (run.readyAt ?? Date.now());
    if (ranMs >= STABLE_MS) this.#attempts = 0;
    this.#log.error(
      "embedded PostgreSQL (pid {pid}) exited unexpectedly ({how}) after {ranS}s; last lines: {tail}",
      {
        pid: run.pid,
        how: describeStatus(status),
        ranS: Math.round(ranMs / 1000),
        tail: run.recent.slice(-5).join(" | "),
      },
    );
    this.#set("down");
    this.#recovery = this.#recover(run).catch((err) => {
      this.#log.error("supervising embedded PostgreSQL failed: {err}", { err: String(err) });
    });
  }

  async #recover(dead: Run): Promise<void> {
    // The watchdog may have died alone (killed by hand): its postmaster must go before another.
    await this.#stopRun(dead);
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      if (this.#attempts >= RESTART_DELAYS_MS.length) {
        const err = new Error(
          `embedded PostgreSQL could not be restarted after ${this.#attempts} attempts`,
        );
        this.#log.fatal("{message}; giving up", { message: err.message });
        this.#set("failed");
        this.#giveUp(err);
        return;
      }
      const delay = RESTART_DELAYS_MS[this.#attempts++];
      this.#log.warning("restarting embedded PostgreSQL in {delay} ms (attempt {n} of {max})", {
        delay,
        n: this.#attempts,
        max: RESTART_DELAYS_MS.length,
      });
      await sleep(delay, signal);
      if (signal.aborted) return;
      const began = Date.now();
      let run: Run | undefined;
      try {
        run = await this.#spawn();
        this.#run = run;
        await this.#ready(run);
      } catch (err) {
        if (run) await this.#stopRun(run);
        if (signal.aborted) return;
        this.#log.error("restart attempt {n} failed: {err}", {
          n: this.#attempts,
          err: err instanceof Error ? err.message : String(err),
        });
        continue;
      }
      this.restarts++;
      this.#log.warning("embedded PostgreSQL restarted (pid {pid}) in {ms} ms", {
        pid: run.pid,
        ms: Date.now() - began,
      });
      this.#set("running");
      return;
    }
  }

  /** Ends `run` within the stop bounds; true when no escalation past fast shutdown was needed. */
  #stopRun(run: Run): Promise<boolean> {
    run.stopping ??= this.#escalate(run);
    return run.stopping;
  }

  async #escalate(run: Run): Promise<boolean> {
    const steps = [
      { sig: "SIGINT", ms: FAST_STOP_MS, what: "fast shutdown" },
      { sig: "SIGQUIT", ms: IMMEDIATE_STOP_MS, what: "immediate shutdown" },
      { sig: "SIGKILL", ms: KILL_WAIT_MS, what: "SIGKILL" },
    ] as const;
    for (const [i, step] of steps.entries()) {
      if (await this.#gone(run, 0)) return i === 0;
      signal(run.pid, step.sig);
      if (step.sig === "SIGKILL") signal(run.child.pid, "SIGKILL");
      if (await this.#gone(run, step.ms)) return i === 0;
      this.#log.warning("embedded PostgreSQL (pid {pid}) still running {ms} ms into its {what}", {
        pid: run.pid,
        ms: step.ms,
        what: step.what,
      });
    }
    this.#log.error("embedded PostgreSQL (pid {pid}) survived SIGKILL", { pid: run.pid });
    return false;
  }

  /** Waits up to `ms` for the watchdog to exit and the postmaster to be gone. */
  async #gone(run: Run, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    await within(run.exited, ms);
    while (true) {
      if (run.done && !(await isPostgresOf(run.pid, this.opts.pgDir))) return true;
      if (Date.now() >= deadline) return false;
      await sleep(50);
    }
  }
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
  } finally {
    // Nothing else comes on stdout; let the stream go.
    reader.cancel().catch(() => {});
  }
  return text.split("\n")[0].trim();
}
