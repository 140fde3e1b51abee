// Runs wrk with scripts/bench/lua/observian.lua, installing wrk when missing and allowed.
import { interrupt } from "./interrupt.ts";
import { log, ticker } from "./report.ts";

const LUA = new URL("../lua/observian.lua", import.meta.url).pathname;

export interface WrkResult {
  /** Requests wrk issued (including any still in flight at the end). */
  sent: number;
  /** 201s (POST) or 200s (GET). */
  acked: number;
  other: number;
  /** Acknowledged OTLP requests whose answer carried a partialSuccess (mode patched). */
  partial: number;
  /** Completed requests. */
  requests: number;
  durationS: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
}

let available: boolean | undefined;

async function has(cmd: string): Promise<boolean> {
  try {
    const out = await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`] }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** true when wrk is on PATH, after trying `apt-get install wrk` as root. */
export async function ensureWrk(bench: string): Promise<boolean> {
  if (available !== undefined) return available;
  if (await has("wrk")) return available = true;
  if (Deno.uid() === 0 && await has("apt-get")) {
    log(bench, "wrk not found; installing it with apt-get (Debian package wrk)");
    const install = () =>
      new Deno.Command("apt-get", {
        args: ["install", "-y", "-qq", "wrk"],
        stdout: "null",
        stderr: "piped",
        env: { DEBIAN_FRONTEND: "noninteractive" },
      }).output();
    let out = await install();
    if (!out.success) {
      await new Deno.Command("apt-get", { args: ["update", "-qq"], stdout: "null", stderr: "null" })
        .output();
      out = await install();
    }
    if (out.success && await has("wrk")) return available = true;
    log(bench, `apt-get install wrk failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  log(
    bench,
    "wrk is not installed (Debian/Ubuntu: sudo apt-get install wrk; macOS: brew install wrk); " +
      "falling back to the slower Deno load generator, whose own CPU use lowers the figures",
  );
  return available = false;
}

export async function runWrk(
  bench: string,
  opts: {
    url: string;
    mode: "single" | "batch" | "get" | "patched";
    bodiesFile?: string;
    /** Arguments after the bodies file (mode patched: content type, ok status, …). */
    args?: string[];
    threads: number;
    connections: number;
    durationS: number;
    label: string;
    /** Extra progress text (e.g. the server's RSS). */
    status?: () => string;
    /** Request headers besides the script's own (an API key). */
    headers?: Record<string, string>;
  },
): Promise<WrkResult> {
  const args = [
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    ...Object.entries(opts.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
    "--timeout",
    "10s",
    "-s",
    LUA,
    opts.url,
    "--",
    opts.mode,
    ...(opts.bodiesFile ? [opts.bodiesFile] : []),
    ...(opts.args ?? []),
  ];
  const started = performance.now();
  const tick = ticker(bench, () => {
    const s = Math.min(opts.durationS, Math.round((performance.now() - started) / 1000));
    return `${opts.label}: ${s}/${opts.durationS} s${opts.status ? ` · ${opts.status()}` : ""}`;
  });
  let out: Deno.CommandOutput;
  try {
    // wrk stops itself after -d; the kill is for a wedged run.
    out = await new Deno.Command("wrk", {
      args,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.any([
        AbortSignal.timeout((opts.durationS + 60) * 1000),
        interrupt.signal,
      ]),
    }).output();
  } finally {
    tick.stop();
  }
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").find((l) => l.startsWith("WRK_RESULT "));
  if (!line) {
    throw new Error(
      `wrk gave no result (exit ${out.code}): ${text}\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  const r = JSON.parse(line.slice("WRK_RESULT ".length));
  const us = (v: number) => v / 1000;
  return {
    sent: r.sent,
    acked: r.acked,
    other: r.other,
    partial: r.partial ?? 0,
    requests: r.requests,
    durationS: r.duration_us / 1e6,
    errors: r.errors,
    latencyMs: {
      p50: us(r.latency_us.p50),
      p90: us(r.latency_us.p90),
      p99: us(r.latency_us.p99),
      max: us(r.latency_us.max),
      mean: us(r.latency_us.mean),
    },
  };
}

/**
 * The fallback when wrk is missing: `connections` loops of fetch for `durationS`. Same result
 * shape; its percentiles include the Deno client's own scheduling delays.
 */
export async function runDenoLoad(
  bench: string,
  opts: {
    url: string;
    connections: number;
    durationS: number;
    label: string;
    ok: number;
    /** The next request's method and body; undefined body for GET. */
    next: (i: number) => { method: string; body?: string | Uint8Array<ArrayBuffer> };
    /** The POST bodies' content type (default application/json). */
    contentType?: string;
    status?: () => string;
    headers?: Record<string, string>;
  },
): Promise<WrkResult> {
  const latencies: number[] = [];
  let sent = 0, acked = 0, other = 0, timeouts = 0, connectErrors = 0;
  const started = performance.now();
  const deadline = started + opts.durationS * 1000;
  const tick = ticker(bench, () => {
    const s = Math.min(opts.durationS, Math.round((performance.now() - started) / 1000));
    return `${opts.label} (Deno client): ${s}/${opts.durationS} s${
      opts.status ? ` · ${opts.status()}` : ""
    }`;
  });
  try {
    await Promise.all(Array.from({ length: opts.connections }, async () => {
      while (performance.now() < deadline && !interrupt.signal.aborted) {
        const { method, body } = opts.next(sent++);
        const t0 = performance.now();
        try {
          const res = await fetch(opts.url, {
            method,
            body,
            headers: {
              ...opts.headers,
              ...(body ? { "content-type": opts.contentType ?? "application/json" } : {}),
            },
            signal: AbortSignal.timeout(10_000),
          });
          await res.arrayBuffer();
          latencies.push(performance.now() - t0);
          if (res.status === opts.ok) acked++;
          else other++;
        } catch (err) {
          if ((err as Error).name === "TimeoutError") timeouts++;
          else connectErrors++;
        }
      }
    }));
  } finally {
    tick.stop();
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return {
    sent,
    acked,
    other,
    partial: 0,
    requests: latencies.length,
    durationS: (performance.now() - started) / 1000,
    errors: { connect: connectErrors, read: 0, write: 0, status: other, timeout: timeouts },
    latencyMs: {
      p50: pct(0.5),
      p90: pct(0.9),
      p99: pct(0.99),
      max: latencies[latencies.length - 1] ?? NaN,
      mean: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
    },
  };
}
