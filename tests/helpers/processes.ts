// Processes as Linux shows them in /proc, for tests that must leave no PostgreSQL behind.

/** Whether `pid` is a live PostgreSQL process working in `pgDir` (as every one of a cluster does). */
export async function isPostgresOf(pid: number, pgDir: string): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    if (stat.slice(stat.lastIndexOf(")") + 2)[0] === "Z") return false;
    if ((await Deno.readTextFile(`/proc/${pid}/comm`)).trim() !== "postgres") return false;
    return (await Deno.readLink(`/proc/${pid}/cwd`)) === (await Deno.realPath(pgDir));
  } catch {
    return false;
  }
}

/** Every live PostgreSQL process of the cluster in `pgDir`: "none left behind" checks. */
export async function postgresProcessesOf(pgDir: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    const pid = Number(e.name);
    if (Number.isInteger(pid) && await isPostgresOf(pid, pgDir)) pids.push(pid);
  }
  return pids;
}

/** The parent pid of `pid`. */
export function ppid(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** Pids whose parent is `parent`. */
export function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid)) continue;
    try {
      if (ppid(pid) === parent) pids.push(pid);
    } catch { /* gone */ }
  }
  return pids;
}
