// `deno task bench [name...] [--events N] [--fresh] [--data-dir DIR]`: runs the benchmarks
// (all by default) and prints each figure beside a baseline measured in the same run, with
// PASS/FAIL against the goals. Misses never fail the process; errors do (exit 1).
import { parseArgs } from "node:util";
import { configureLogging } from "../../src/logging.ts";
import { SEED_DEFAULTS } from "../synthetic-events.ts";
import { alerts } from "./alerts.ts";
import { ingestAuth } from "./ingest_auth.ts";
import { ingestBatch } from "./ingest_batch.ts";
import { ingestMemory } from "./ingest_memory.ts";
import { ingestOtlp } from "./ingest_otlp.ts";
import { ingestSingle } from "./ingest_single.ts";
import { query } from "./query.ts";
import { interrupt } from "./lib/interrupt.ts";
import { Report } from "./lib/report.ts";

export interface BenchContext {
  report: Report;
  /** Events in the query dataset. */
  events: number;
  /** Re-seed the query dataset even when it could be reused. */
  fresh: boolean;
  /** Where the query dataset's embedded PostgreSQL keeps its data. */
  dataDir: string;
  /** Registers cleanup, run in reverse order when the benchmark ends (or on Ctrl-C). */
  defer(fn: () => Promise<unknown> | unknown): void;
}

const BENCHES: Record<string, { run: (ctx: BenchContext) => Promise<void>; about: string }> = {
  "ingest-batch": { run: ingestBatch, about: "POST arrays of 1,000 events vs raw COPY" },
  "ingest-single": { run: ingestSingle, about: "single-event POSTs, 64 connections vs /health" },
  "ingest-auth": { run: ingestAuth, about: "single-event POSTs with a writer key vs no auth" },
  "ingest-otlp": { run: ingestOtlp, about: "OTLP protobuf spans vs the same events as JSON" },
  "ingest-memory": { run: ingestMemory, about: "peak RSS under 40 × 10,000-event batches" },
  query: { run: query, about: "read endpoints on the seeded dataset vs naive SQL" },
  alerts: { run: alerts, about: "every rule and SLO of 500 services vs a plain rollup read" },
};

// Kept under .observian/ (already git-ignored and excluded from fmt/lint), beside, not inside,
// the cluster `deno task start` uses.
const DEFAULT_DATA_DIR = ".observian/bench";

const USAGE = `usage: deno task bench [name...] [options]

benchmarks (all when none named):
${Object.entries(BENCHES).map(([k, v]) => `  ${k.padEnd(14)} ${v.about}`).join("\n")}

options:
  --events N      events in the query dataset (default ${SEED_DEFAULTS.events})
  --fresh         re-seed the query dataset even if the kept one matches
  --data-dir DIR  the query dataset's embedded PostgreSQL (default ${DEFAULT_DATA_DIR})

Uses DATABASE_URL when set (a fresh database per benchmark, dropped afterwards), otherwise
embedded PostgreSQL. See scripts/bench/README.md.`;

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: Deno.args,
      allowPositionals: true,
      options: {
        events: { type: "string" },
        fresh: { type: "boolean", default: false },
        "data-dir": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const unknown = positionals.filter((p) => !(p in BENCHES));
  if (unknown.length) {
    console.error(`bench: unknown benchmark ${unknown.join(", ")}\n\n${USAGE}`);
    return 2;
  }
  const events = values.events === undefined
    ? SEED_DEFAULTS.events
    : Number(values.events.replaceAll("_", ""));
  if (!Number.isInteger(events) || events < 1000) {
    console.error("bench: --events must be a whole number >= 1000");
    return 2;
  }
  await configureLogging({ level: "warning", format: "pretty" });

  const names = positionals.length ? positionals : Object.keys(BENCHES);
  const report = new Report();
  let cleanups: (() => Promise<unknown> | unknown)[] = [];
  const runCleanups = async () => {
    const list = cleanups.reverse();
    cleanups = [];
    for (const fn of list) {
      try {
        await fn();
      } catch (err) {
        console.error(`bench: cleanup failed: ${(err as Error).message}`);
      }
    }
  };
  // On a signal, this handler owns the ending: the benchmark's own flow may still fail or
  // finish meanwhile, but only the handler cleans up and exits.
  let stopping: Promise<never> | null = null;
  const onSignal = () => {
    if (stopping) return;
    interrupt.abort();
    console.error("\nbench: interrupted; stopping the server and databases");
    stopping = (async () => {
      await runCleanups();
      report.print();
      Deno.exit(130);
    })();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);

  console.error(
    `bench: ${names.join(", ")} on ${Deno.build.target}, ${navigator.hardwareConcurrency} CPUs; ` +
      "load average " + (await loadAverage()),
  );
  let errors = 0;
  const started = performance.now();
  for (const name of names) {
    const t0 = performance.now();
    console.error(`\n[${name}] starting`);
    try {
      await BENCHES[name].run({
        report,
        events,
        fresh: values.fresh,
        dataDir: values["data-dir"] ?? DEFAULT_DATA_DIR,
        defer: (fn) => cleanups.push(fn),
      });
    } catch (err) {
      if (stopping) await stopping;
      errors++;
      report.add({
        bench: name,
        metric: "run",
        value: "error",
        baseline: "",
        ratio: "",
        goal: "",
        pass: false,
        note: (err as Error).stack ?? String(err),
      });
    } finally {
      if (stopping) await stopping;
      await runCleanups();
    }
    console.error(`[${name}] finished in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  report.print();
  console.log(
    `\n${
      ((performance.now() - started) / 1000).toFixed(0)
    } s in all; load average now ${await loadAverage()} ` +
      `(figures from a shared machine are noisy: compare ratios, not absolutes)`,
  );
  return errors ? 1 : 0;
}

async function loadAverage(): Promise<string> {
  try {
    return (await Deno.readTextFile("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

Deno.exit(await main());
