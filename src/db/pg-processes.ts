// The PostgreSQL processes of a data directory, read from the operating system: its
// postmaster.pid, whether a pid is alive and is PostgreSQL working there, and stopping one that
// an earlier run left behind. Linux reads /proc; elsewhere `ps` answers.
import process from "node:process";
import { join } from "node:path";
import { logger } from "../logging.ts";

/** Fast shutdown (SIGINT): sessions are ended, a checkpoint is written. */
export const FAST_STOP_MS = 3_000;
/** Immediate shutdown (SIGQUIT): no checkpoint; the next start runs crash recovery. */
export const IMMEDIATE_STOP_MS = 1_500;
/** After SIGKILL: the kernel's part. */
export const KILL_WAIT_MS = 1_000;
/** The most stop() takes. */
export const STOP_BOUND_MS = FAST_STOP_MS + IMMEDIATE_STOP_MS + KILL_WAIT_MS + 500;
/**
 * With the data directory ours, a postmaster still running on it was left by an earlier run
 * whose Deno died without stopping it (SIGKILL, OOM kill, a host under pressure). It holds
 * postmaster.pid, so nothing can start until it is gone: stop it like stop() does.
 */
export async function stopLeftoverPostmaster(pgDir: string): Promise<void> {
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

export interface PidFile {
  pid: number;
  dataDir: string;
  port: number;
  /** "starting", "stopping", "ready" or "standby" (PostgreSQL 10+). */
  status: string;
}

export async function readPidFile(pgDir: string): Promise<PidFile | undefined> {
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
export async function isAlive(pid: number): Promise<boolean> {
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
export async function isPostgresOf(pid: number, pgDir: string): Promise<boolean> {
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
export async function postgresProcessesOf(pgDir: string): Promise<number[]> {
  if (Deno.build.os !== "linux") return [];
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    if (await isPostgresOf(pid, pgDir)) pids.push(pid);
  }
  return pids;
}

export function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* already gone */ }
}

export function describeStatus(status: Deno.CommandStatus): string {
  // The watchdog exits with the postmaster's status; a shell reports "killed by N" as 128 + N.
  if (status.signal) return `signal ${status.signal}`;
  if (status.code > 128) return `signal ${status.code - 128}`;
  return `exit code ${status.code}`;
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

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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
