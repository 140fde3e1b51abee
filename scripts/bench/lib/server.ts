// The Observian server as a subprocess (so its memory is its own), sampled for RSS.
import { mainArgs } from "../../lib/main-command.ts";
import { freePort } from "../../../src/db/embedded.ts";
import { log, mb } from "./report.ts";

const ROOT = new URL("../../../", import.meta.url);

export interface Server {
  base: string;
  pid: number;
  /** Resident memory now and the most seen since start (or the last resetMaxRss), bytes. */
  rss(): number;
  maxRss(): number;
  resetMaxRss(): void;
  stop(): Promise<void>;
}

export async function startServer(
  bench: string,
  databaseUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<Server> {
  const port = freePort();
  const logPath = await Deno.makeTempFile({ prefix: "observian-bench-server-", suffix: ".log" });
  // One handle per stream: a WritableStream takes a single pipe at a time.
  const outFile = await Deno.open(logPath, { append: true });
  const errFile = await Deno.open(logPath, { append: true });
  const child = new Deno.Command(Deno.execPath(), {
    // The start task's flags (deno.json), minus the task runner, so VmRSS is the server's own.
    args: mainArgs(),
    cwd: ROOT,
    env: {
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: "127.0.0.1",
      RETENTION_DAYS: "31",
      LOG_LEVEL: "warning",
      LOG_FORMAT: "json",
      ...extraEnv,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Both streams into one log file, shown when start-up fails.
  const done = Promise.all([
    child.stdout.pipeTo(outFile.writable).catch(() => {}),
    child.stderr.pipeTo(errFile.writable).catch(() => {}),
  ]);

  let max = 0;
  const sample = () => {
    const v = readRss(child.pid);
    if (v > max) max = v;
    return v;
  };
  const sampler = setInterval(sample, 200);
  const base = `http://127.0.0.1:${port}`;
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const stop = async () => {
    clearInterval(sampler);
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, 15_000);
      await status;
      clearTimeout(timer);
    }
    await done;
    await Deno.remove(logPath).catch(() => {});
  };

  const started = performance.now();
  for (;;) {
    if (exited) break;
    try {
      const res = await fetch(`${base}/health/ready`, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      if (res.ok) break;
    } catch { /* not listening yet */ }
    if (performance.now() - started > 90_000) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (exited || performance.now() - started > 90_000) {
    await stop().catch(() => {});
    const text = await Deno.readTextFile(logPath).catch(() => "");
    throw new Error(
      `the server did not become ready${exited ? " (it exited)" : " within 90 s"}:\n` +
        text.split("\n").slice(-15).join("\n"),
    );
  }
  log(
    bench,
    `server pid ${child.pid} ready on ${base} in ${
      Math.round(performance.now() - started)
    } ms (RSS ${mb(sample())})`,
  );
  return {
    base,
    pid: child.pid,
    rss: sample,
    maxRss: () => Math.max(max, sample()),
    resetMaxRss: () => {
      max = sample();
    },
    stop,
  };
}

/** `--v8-flags=…` of `deno task start`, so benchmarks measure the server as it is run. */
/** VmRSS of a process in bytes (0 once it is gone). */
export function readRss(pid: number): number {
  return readStatusKb(pid, "VmRSS") * 1024;
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
