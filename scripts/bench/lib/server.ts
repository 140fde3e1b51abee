// The Observian server of a benchmark: the shared server process (scripts/lib/server.ts), so
// its memory is its own, sampled for RSS.
import { readStatusKb, startServer as startMain } from "../../lib/server.ts";
import { log, mb } from "./report.ts";

export { readStatusKb };

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
  const server = await startMain({
    env: { DATABASE_URL: databaseUrl, RETENTION_DAYS: "31", LOG_LEVEL: "warning", ...extraEnv },
    // Warnings only, kept short: what start-up failures show.
    outputLimit: 100_000,
    readyTimeoutMs: 90_000,
  });
  let max = 0;
  const sample = () => {
    const v = readStatusKb(server.pid, "VmRSS") * 1024;
    if (v > max) max = v;
    return v;
  };
  const sampler = setInterval(sample, 200);
  log(
    bench,
    `server pid ${server.pid} ready on ${server.base} in ${
      Math.round(performance.now() - server.startedAt)
    } ms (RSS ${mb(sample())})`,
  );
  return {
    base: server.base,
    pid: server.pid,
    rss: sample,
    maxRss: () => Math.max(max, sample()),
    resetMaxRss: () => {
      max = sample();
    },
    async stop() {
      clearInterval(sampler);
      await server.stop("SIGTERM", 15_000);
      await server.finished();
    },
  };
}
