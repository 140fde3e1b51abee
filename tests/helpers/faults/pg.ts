// The databases the fault suite runs main against: an embedded PostgreSQL that main starts in a
// temporary OBSERVIAN_DATA_DIR, or a database of its own on an external server (Debian's
// PostgreSQL, given by OBSERVIAN_FAULT_PG_URL) whose cluster the suite may restart.
import postgres from "postgres";
import { freePort } from "../../../src/db/embedded.ts";
import { sleep } from "../../../scripts/lib/server.ts";

export type TargetKind = "embedded" | "external";

export interface Target {
  kind: TargetKind;
  /** What main needs in its environment to use this database. */
  env: Record<string, string>;
  /** URL of the database main uses (an embedded one answers only while main runs it). */
  url(): Promise<string>;
  /** The embedded cluster's folder (`<OBSERVIAN_DATA_DIR>/pg`); absent for external. */
  pgDir?: string;
  /** The embedded cluster's port. */
  pgPort?: number;
  /** Drops what the target made (the database, the folder). */
  dispose(): Promise<void>;
}

/** The external server, when the run was given one (see .ci/run). */
export const EXTERNAL_URL = Deno.env.get("OBSERVIAN_FAULT_PG_URL") || undefined;
/** Its cluster as `pg_ctlcluster` names it, e.g. "15 main"; restarts are skipped without it. */
export const EXTERNAL_CLUSTER = Deno.env.get("OBSERVIAN_FAULT_PG_CLUSTER") || undefined;

let template: string | undefined;

/**
 * A data directory for main's embedded PostgreSQL. The first one is initialised by main itself
 * (`prepare`); later ones are copies of it, which saves an initdb per test.
 */
export async function embeddedTarget(
  prepare: (env: Record<string, string>) => Promise<void>,
): Promise<Target> {
  const dir = await Deno.makeTempDir({ prefix: "observian-fault-" });
  // As root PostgreSQL runs as user postgres, which must be able to enter it.
  await Deno.chmod(dir, 0o755);
  const dataDir = `${dir}/data`;
  const pgPort = freePort();
  const env = { DATABASE_URL: "", OBSERVIAN_DATA_DIR: dataDir, OBSERVIAN_PG_PORT: String(pgPort) };
  if (template) {
    await run("cp", ["-a", template, dataDir]);
  } else {
    await prepare(env);
    const keep = await Deno.makeTempDir({ prefix: "observian-fault-template-" });
    await Deno.chmod(keep, 0o755);
    await run("cp", ["-a", dataDir, `${keep}/data`]);
    template = `${keep}/data`;
    addEventListener("unload", () => {
      try {
        Deno.removeSync(keep, { recursive: true });
      } catch { /* best effort */ }
    });
  }
  return {
    kind: "embedded",
    env,
    pgDir: `${dataDir}/pg`,
    pgPort,
    async url() {
      const password = (await Deno.readTextFile(`${dataDir}/password`)).trim();
      return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${pgPort}/postgres`;
    },
    async dispose() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** A fresh database on the external server. */
export async function externalTarget(): Promise<Target> {
  if (!EXTERNAL_URL) throw new Error("OBSERVIAN_FAULT_PG_URL is unset");
  const name = `observian_f_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await withSql(EXTERNAL_URL, (sql) => sql`create database ${sql(name)}`);
  const u = new URL(EXTERNAL_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  return {
    kind: "external",
    env: { DATABASE_URL: url },
    url: () => Promise.resolve(url),
    async dispose() {
      // The cluster may just have been restarted: retry while it comes back.
      await retry(() =>
        withSql(EXTERNAL_URL!, (sql) => sql`drop database if exists ${sql(name)} with (force)`)
      );
    },
  };
}

/**
 * Runs `fn` on a connection of its own, closed afterwards (a fault may have killed others), and
 * fails after `ms`: postgres.js may never answer a query sent as its connection dies.
 */
export async function withSql<T>(
  url: string,
  fn: (sql: postgres.Sql) => Promise<T>,
  ms = 10_000,
): Promise<T> {
  const sql = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {}, idle_timeout: 5 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the database in ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([fn(sql), late]);
  } finally {
    clearTimeout(timer);
    await Promise.race([sql.end({ timeout: 0 }).catch(() => {}), sleep(1000)]);
  }
}

export async function retry<T>(fn: () => Promise<T>, ms = 15_000): Promise<T> {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (performance.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

/** True once a new connection to `url` runs a query (the server accepts connections again). */
export async function answers(url: string): Promise<boolean> {
  try {
    await withSql(url, (sql) => sql`select 1`);
    return true;
  } catch {
    return false;
  }
}

/** `pg_ctlcluster <cluster> <action> -m fast`, e.g. ("restart"); fails the test if it fails. */
export async function ctlCluster(action: "restart" | "stop" | "start"): Promise<void> {
  if (!EXTERNAL_CLUSTER) throw new Error("OBSERVIAN_FAULT_PG_CLUSTER is unset");
  const [version, name] = EXTERNAL_CLUSTER.split(/[\s/]+/);
  const args = [version, name, action, ...(action === "start" ? [] : ["-m", "fast"])];
  const root = Deno.uid() === 0;
  await run(root ? "pg_ctlcluster" : "sudo", root ? args : ["-n", "pg_ctlcluster", ...args]);
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Processes. An embedded cluster's processes are those whose command line names its folder
// (the postmaster, `-D <pgDir>`, and anything wrapping it, as `pgrep -f` finds them), those
// working in it (every PostgreSQL process has it as its cwd, even one whose postmaster died and
// left it to init), and all their descendants (as `pgrep -P` finds them), read from /proc.

interface Proc {
  pid: number;
  ppid: number;
  cmdline: string;
  cwd?: string;
}

function processes(): Proc[] {
  const list: Proc[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      // Fields after the command name, which may itself hold spaces and parentheses.
      const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (rest[0] === "Z") continue; // a zombie is already dead; its parent just has not reaped it
      const cmdline = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
      let cwd: string | undefined;
      try {
        cwd = Deno.readLinkSync(`/proc/${e.name}/cwd`);
      } catch { /* another user's process, without root */ }
      list.push({ pid: Number(e.name), ppid: Number(rest[1]), cmdline, cwd });
    } catch { /* it exited meanwhile */ }
  }
  return list;
}

/** Pids of the processes running the cluster in `pgDir`, with what they run. */
export function clusterProcesses(pgDir: string): Proc[] {
  const all = processes();
  const found = new Map<number, Proc>();
  let real = pgDir;
  try {
    real = Deno.realPathSync(pgDir);
  } catch { /* removed already */ }
  for (const p of all) {
    if (p.cmdline.includes(pgDir) || p.cwd === real) found.set(p.pid, p);
  }
  // Descendants: repeat until no new child appears.
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.set(p.pid, p);
        grew = true;
      }
    }
  }
  return [...found.values()];
}

/** Which of `pids` still run a PostgreSQL (or its wrapper) process. */
export function stillRunning(procs: Proc[]): Proc[] {
  const now = new Map(processes().map((p) => [p.pid, p]));
  return procs.filter((p) => now.get(p.pid)?.cmdline === p.cmdline);
}

/** The postmaster's pid from postmaster.pid, while it runs. */
export async function postmasterPid(pgDir: string): Promise<number | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(`${pgDir}/postmaster.pid`)).split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Waits up to `ms` for every process of the cluster in `pgDir` (when given) and every one of
 * `known` (seen earlier) to be gone. Returns what is left, after SIGKILLing it so that nothing
 * outlives the test.
 */
export async function leftovers(
  pgDir: string | undefined,
  ms: number,
  known: Proc[] = [],
): Promise<Proc[]> {
  const deadline = performance.now() + ms;
  const alive = () => {
    const found = new Map(stillRunning(known).map((p) => [p.pid, p]));
    if (pgDir) { for (const p of clusterProcesses(pgDir)) found.set(p.pid, p); }
    return [...found.values()];
  };
  let left = alive();
  while (left.length && performance.now() < deadline) {
    await sleep(100);
    left = alive();
  }
  for (const p of left) {
    try {
      Deno.kill(p.pid, "SIGKILL");
    } catch { /* gone meanwhile */ }
  }
  return left;
}
