// Bulk-loads realistic synthetic events for benchmarks and demos, streamed with COPY:
//
//   deno run -A scripts/synthetic-events.ts --events 10000000 --days 30 --services 50 [--database-url URL]
//   deno run -A scripts/synthetic-events.ts --embedded .observian --truncate      (server stopped)
//
// Events go straight into log_events (bypassing the API, like a restore), then the rollups
// are rebuilt per day and the tables vacuumed and analysed. Serve the result with
// RETENTION_DAYS >= --days, or the API refuses (and the pruner drops) the older days.
import { parseArgs } from "node:util";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import postgres from "postgres";
import { describeUrl } from "../src/db/connect.ts";
import { migrate } from "../src/db/migrate.ts";
import { configureLogging } from "../src/logging.ts";
import { DAY_MS, HOUR_MS } from "../src/time.ts";

export interface SeedOptions {
  events: number;
  days: number;
  services: number;
  /** Empty log_events and the rollups first. */
  truncate: boolean;
  /** Parallel COPY / rebuild connections. */
  jobs: number;
  /** PRNG seed: the same options and seed give the same events (relative to `now`). */
  seed: number;
  now?: Date;
}

export interface SeedProgress {
  phase: "copy" | "rollups" | "vacuum";
  done: number;
  total: number;
}

export interface SeedResult {
  events: number;
  from: Date;
  to: Date;
  copySeconds: number;
  rollupSeconds: number;
  totalSeconds: number;
}

export const SEED_DEFAULTS: SeedOptions = {
  events: 10_000_000,
  days: 30,
  services: 50,
  truncate: false,
  jobs: 2,
  seed: 42,
};

/** svc-00, svc-01, … (two digits up to 100 services, then three). */
export const serviceName = (i: number, total: number) =>
  `svc-${String(i).padStart(total > 100 ? 3 : 2, "0")}`;

// ---- Randomness: seeded, so a benchmark dataset can be reproduced.

type Rng = () => number;

function mulberry32(seed: number): Rng {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normal(rng: Rng): number {
  // Box-Muller; the cosine half is enough here.
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}

/** Picks from weighted choices with a cumulative table and binary search. */
class Weighted<T> {
  readonly #cum: Float64Array;
  constructor(readonly items: readonly T[], weights: readonly number[]) {
    this.#cum = new Float64Array(weights.length);
    let acc = 0;
    weights.forEach((w, i) => this.#cum[i] = acc += w);
    for (let i = 0; i < this.#cum.length; i++) this.#cum[i] /= acc;
  }
  pick(rng: Rng): T {
    const r = rng();
    let lo = 0, hi = this.#cum.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#cum[mid] < r) lo = mid + 1;
      else hi = mid;
    }
    return this.items[lo];
  }
}

const STATUS = {
  2: new Weighted([200, 201, 202, 204], [80, 12, 2, 6]),
  3: new Weighted([301, 302, 304], [10, 30, 60]),
  4: new Weighted([400, 401, 403, 404, 409, 422, 429], [20, 12, 6, 35, 5, 12, 10]),
  5: new Weighted([500, 502, 503, 504], [40, 20, 28, 12]),
};

const EVENT_TYPES = new Weighted<string | null>(
  [
    null,
    "http.request",
    "db.query",
    "cache.miss",
    "auth.login",
    "payment.charge",
    "job.run",
    "deploy",
  ],
  [30, 40, 12, 6, 5, 3, 3.99, 0.01],
);

const MESSAGES: Record<number, readonly string[]> = {
  5: [
    "upstream timed out",
    "connection reset by peer",
    "database pool exhausted",
    "circuit breaker open",
    "unhandled exception in handler",
  ],
  4: ["validation failed", "not found", "token expired", "rate limited", "conflict on update"],
  2: ["ok", "cache warmed", "retry succeeded"],
};

const REGIONS = ["eu-west-1", "us-east-1", "ap-south-1"];

interface ServiceProfile {
  id: number;
  name: string;
  /** log(median latency ms) and its spread. */
  mu: number;
  sigma: number;
  /** Cumulative probability thresholds for 5xx, 4xx, 3xx (the rest is 2xx). */
  p5: number;
  p4: number;
  p3: number;
  /** [start, end) ms of an incident (5xx burst, slow), or null. */
  incident: [number, number] | null;
}

function profiles(
  ids: number[],
  names: string[],
  rng: Rng,
  from: number,
  to: number,
): ServiceProfile[] {
  return ids.map((id, i) => {
    const median = Math.exp(Math.log(8) + rng() * Math.log(250 / 8)); // 8..250 ms, log-uniform
    const p5 = 0.005 + 0.05 * rng() ** 1.5; // ~3% on average, 0.5%..5.5% per service
    const p4 = p5 + 0.02 + 0.06 * rng();
    const p3 = p4 + 0.01 + 0.04 * rng();
    let incident: [number, number] | null = null;
    if (rng() < 0.2) {
      const start = from + rng() * (to - from - 6 * HOUR_MS);
      incident = [start, start + (2 + rng() * 4) * HOUR_MS];
    }
    return {
      id,
      name: names[i],
      mu: Math.log(median),
      sigma: 0.4 + 0.5 * rng(),
      p5,
      p4,
      p3,
      incident,
    };
  });
}

/** Relative traffic at a UTC time: a daily curve peaking mid-afternoon, quieter weekends. */
function traffic(t: number): number {
  const d = new Date(t);
  const hour = d.getUTCHours() + d.getUTCMinutes() / 60;
  const daily = 0.25 + 0.75 * ((1 - Math.cos((2 * Math.PI * (hour - 3)) / 24)) / 2) ** 1.5;
  const weekend = d.getUTCDay() === 0 || d.getUTCDay() === 6 ? 0.65 : 1;
  return daily * weekend;
}

interface Slot {
  index: number;
  start: number;
  span: number;
  count: number;
}

/** Hour slots from `from` to `to` with event counts that add up to exactly `events`. */
export function planSlots(events: number, from: number, to: number, rng: Rng): Slot[] {
  const slots: Slot[] = [];
  for (let s = from, i = 0; s < to; s += HOUR_MS, i++) {
    slots.push({ index: i, start: s, span: Math.min(HOUR_MS, to - s), count: 0 });
  }
  const weights = slots.map((s) =>
    traffic(s.start + s.span / 2) * (s.span / HOUR_MS) * (0.9 + 0.2 * rng())
  );
  const total = weights.reduce((a, b) => a + b, 0);
  let cum = 0, assigned = 0;
  slots.forEach((s, i) => {
    cum += weights[i];
    const upto = Math.round((events * cum) / total);
    s.count = upto - assigned;
    assigned = upto;
  });
  return slots;
}

const PAD2 = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, "0"));

/** COPY text-format rows for one slot, in time order, in chunks of about `chunkRows`. */
function* slotRows(
  slot: Slot,
  services: Weighted<ServiceProfile>,
  seed: number,
  chunkRows: number,
): Generator<{ text: string; rows: number }> {
  const rng = mulberry32(seed ^ Math.imul(slot.index + 1, 0x9e3779b1));
  const offsets = new Float64Array(slot.count);
  for (let i = 0; i < slot.count; i++) offsets[i] = Math.floor(rng() * slot.span * 1000); // µs
  offsets.sort();
  const hourStart = slot.start - (slot.start % HOUR_MS);
  const prefix = new Date(hourStart).toISOString().slice(0, 14).replace("T", " "); // "YYYY-MM-DD HH:"
  const baseUs = (slot.start - hourStart) * 1000;
  let lines: string[] = [];
  for (let i = 0; i < slot.count; i++) {
    const us = baseUs + offsets[i];
    const t = hourStart + us / 1000;
    const sec = Math.floor(us / 1e6);
    const ts = prefix + PAD2[Math.floor(sec / 60)] + ":" + PAD2[sec % 60] + "." +
      String(1e6 + (us % 1e6)).slice(1) + "+00";
    const svc = services.pick(rng);
    const inIncident = svc.incident !== null && t >= svc.incident[0] && t < svc.incident[1];
    const r = rng();
    const cls = inIncident && r < 0.3 ? 5 : r < svc.p5 ? 5 : r < svc.p4 ? 4 : r < svc.p3 ? 3 : 2;
    const status = STATUS[cls].pick(rng);
    let latency = Math.exp(svc.mu + svc.sigma * normal(rng)) * (inIncident ? 3 : 1);
    if (status === 504) latency = 30_000 + rng() * 100;
    else if (cls === 5) latency *= 1.5;
    else if (status === 304) latency *= 0.3;
    const eventType = EVENT_TYPES.pick(rng);
    let message = "\\N";
    const m = rng();
    if ((cls === 5) || (cls === 4 && m < 0.5) || (cls === 2 && m < 0.05)) {
      const list = MESSAGES[cls];
      message = list[Math.floor(rng() * list.length)];
    }
    let attributes = "\\N";
    if (rng() < 0.2) {
      attributes = `{"region": "${REGIONS[Math.floor(rng() * 3)]}", "host": "${svc.name}-${
        Math.floor(rng() * 8)
      }", "attempt": ${cls === 5 ? 1 + Math.floor(rng() * 3) : 1}}`;
    }
    lines.push(
      `${svc.id}\t${ts}\t${status}\t${eventType ?? "\\N"}\t${
        Math.round(latency * 100) / 100
      }\t${message}\t${attributes}\n`,
    );
    if (lines.length >= chunkRows) {
      yield { text: lines.join(""), rows: lines.length };
      lines = [];
    }
  }
  if (lines.length) yield { text: lines.join(""), rows: lines.length };
}

/** Runs `worker` over `items` with at most `jobs` at once. */
async function parallel<T>(items: T[], jobs: number, worker: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, async () => {
      while (next < items.length) await worker(items[next++]);
    }),
  );
}

const utcDay = (t: number) => new Date(t).toISOString().slice(0, 10);

/**
 * Loads `opts.events` events into the database at `url` (migrating it first if needed) and
 * rebuilds the rollups of the days it touched.
 */
export async function seedDatabase(
  url: string,
  options: Partial<SeedOptions> = {},
  onProgress: (p: SeedProgress) => void = () => {},
): Promise<SeedResult> {
  const opts = { ...SEED_DEFAULTS, ...options };
  const started = performance.now();
  const sql = postgres(url, {
    max: opts.jobs + 1,
    onnotice: () => {},
    // A bulk load that fails is simply run again (--truncate): no need to wait for each flush.
    connection: { application_name: "observian-seed", synchronous_commit: "off" },
  });
  try {
    await migrate(sql);
    const rng = mulberry32(opts.seed);
    const to = (opts.now ?? new Date()).getTime() - 1000;
    // Whole hours, starting inside the window so every event is within `days` of now.
    const from = Math.ceil((to - opts.days * DAY_MS) / HOUR_MS) * HOUR_MS;
    await sql`select observian_ensure_partitions(${utcDay(from)}::date, ${utcDay(to)}::date)`;

    const names = Array.from({ length: opts.services }, (_, i) => serviceName(i, opts.services));
    const teams = ["Platform", "Payments", "Identity", "Search", "Growth", "Ops"];
    await sql`
      insert into services (name, team_owner)
      select n, t from unnest(${names}::text[], ${
      names.map((_, i) => `${teams[i % teams.length]} Team`)
    }::text[]) as u (n, t)
      on conflict (name) do nothing`;
    const rows = await sql<{ id: number; name: string }[]>`
      select id, name from services where name = any(${names}::text[])`;
    const idOf = new Map(rows.map((r) => [r.name, r.id]));
    const profs = profiles(names.map((n) => idOf.get(n)!), names, rng, from, to);
    // Zipf-like: a few busy services, a long tail; the busiest ones are not simply svc-00..
    const order = profs.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const services = new Weighted(profs, order.map((rank) => 1 / (rank + 1) ** 0.9));

    if (opts.truncate) {
      await sql`truncate log_events, log_rollup_pending, log_rollup_1m_store, log_rollup_1h_store, log_rollup_1d_store, log_latency_1h_store, log_latency_1d_store, rollup_sketch_backfill`;
    }

    // One COPY (one transaction) per UTC day, days spread over the connections.
    const slots = planSlots(opts.events, from, to, rng);
    const byDay = new Map<string, Slot[]>();
    for (const s of slots) byDay.set(utcDay(s.start), [...(byDay.get(utcDay(s.start)) ?? []), s]);
    let done = 0;
    const copyStarted = performance.now();
    await parallel([...byDay.values()], opts.jobs, async (daySlots) => {
      const chunks = function* () {
        for (const slot of daySlots) {
          for (const chunk of slotRows(slot, services, opts.seed, 5000)) {
            yield chunk.text;
            done += chunk.rows;
            onProgress({ phase: "copy", done, total: opts.events });
          }
        }
      };
      await copyIn(sql, Readable.from(chunks(), { objectMode: false }));
    });
    const copySeconds = (performance.now() - copyStarted) / 1000;

    const days = [...byDay.keys()];
    let rebuilt = 0;
    const rollupStarted = performance.now();
    onProgress({ phase: "rollups", done: 0, total: days.length });
    await parallel(days, opts.jobs, async (day) => {
      const start = new Date(`${day}T00:00:00Z`);
      await sql`select observian_rollup_rebuild(${start}, ${new Date(start.getTime() + DAY_MS)})`;
      onProgress({ phase: "rollups", done: ++rebuilt, total: days.length });
    });
    const rollupSeconds = (performance.now() - rollupStarted) / 1000;

    // Sets the visibility map (index-only scans) and statistics, as autovacuum eventually would.
    const tables = [
      "log_events",
      "log_rollup_1m_store",
      "log_rollup_1h_store",
      "log_rollup_1d_store",
      "services",
    ];
    onProgress({ phase: "vacuum", done: 0, total: tables.length });
    let vacuumed = 0;
    await parallel(tables, opts.jobs, async (t) => {
      await sql`vacuum (analyze) ${sql(t)}`;
      onProgress({ phase: "vacuum", done: ++vacuumed, total: tables.length });
    });
    return {
      events: opts.events,
      from: new Date(from),
      to: new Date(to),
      copySeconds,
      rollupSeconds,
      totalSeconds: (performance.now() - started) / 1000,
    };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const COPY_FINISH_TIMEOUT_MS = 120_000;

/**
 * Streams COPY text rows into log_events. postgres.js never settles a COPY whose error arrives
 * after the last chunk was sent, so finishing is bounded by a watchdog.
 */
export async function copyIn(sql: postgres.Sql, source: Readable): Promise<void> {
  const writable = await sql`
    copy log_events (service_id, "timestamp", status_code, event_type, latency_ms, message,
                     attributes)
    from stdin`.writable();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ended = new Promise<never>((_, reject) => {
    source.once("end", () => {
      timer = setTimeout(
        () => reject(new Error("COPY did not complete within 120 s of the last row")),
        COPY_FINISH_TIMEOUT_MS,
      );
    });
  });
  try {
    await Promise.race([pipeline(source, writable), ended]);
  } finally {
    clearTimeout(timer);
  }
}

/** Prints progress lines to stderr at most every `everyMs`, with rate and ETA. */
export function progressPrinter(label: string, everyMs = 2000): (p: SeedProgress) => void {
  let phase = "";
  let phaseStart = 0;
  let last = 0;
  const fmt = new Intl.NumberFormat("en-US");
  return (p) => {
    const now = performance.now();
    if (p.phase !== phase) {
      phase = p.phase;
      phaseStart = now;
      last = 0;
    }
    if (now - last < everyMs && p.done < p.total) return;
    last = now;
    const secs = (now - phaseStart) / 1000;
    const rate = secs > 0 ? p.done / secs : 0;
    const rateText = rate < 10 ? rate.toFixed(2) : fmt.format(Math.round(rate));
    const eta = rate > 0 ? Math.round((p.total - p.done) / rate) : NaN;
    const unit = p.phase === "copy" ? "rows" : p.phase === "rollups" ? "days" : "tables";
    console.error(
      `${label}: ${p.phase} ${fmt.format(p.done)} / ${fmt.format(p.total)} ${unit} (${
        (100 * p.done / Math.max(1, p.total)).toFixed(1)
      }%) · ${rateText} ${unit}/s · ${Number.isFinite(eta) ? `ETA ${eta} s` : "ETA ?"}`,
    );
  };
}

const USAGE = `usage: deno run -A scripts/synthetic-events.ts [options]

  --events N          events to load (default ${SEED_DEFAULTS.events})
  --days N            spread over the last N days (default ${SEED_DEFAULTS.days})
  --services N        services svc-00… (default ${SEED_DEFAULTS.services})
  --database-url URL  target database (default: $DATABASE_URL)
  --embedded DIR      start an embedded PostgreSQL with its data in DIR/pg instead
  --truncate          empty log_events and the rollups first
  --jobs N            parallel connections (default ${SEED_DEFAULTS.jobs})
  --seed N            random seed (default ${SEED_DEFAULTS.seed})

Serve the data with RETENTION_DAYS at least --days (e.g. RETENTION_DAYS=31).`;

function positiveInt(name: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v.replaceAll("_", ""));
  if (!Number.isInteger(n) || n < min) {
    console.error(`seed: --${name} must be a whole number >= ${min}, not "${v}"`);
    Deno.exit(2);
  }
  return n;
}

async function main() {
  let args;
  try {
    args = parseArgs({
      args: Deno.args,
      options: {
        events: { type: "string" },
        days: { type: "string" },
        services: { type: "string" },
        "database-url": { type: "string" },
        embedded: { type: "string" },
        truncate: { type: "boolean", default: false },
        jobs: { type: "string" },
        seed: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (err) {
    console.error(`seed: ${(err as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (args.help) {
    console.log(USAGE);
    return;
  }
  const opts: SeedOptions = {
    events: positiveInt("events", args.events, SEED_DEFAULTS.events),
    days: positiveInt("days", args.days, SEED_DEFAULTS.days),
    services: positiveInt("services", args.services, SEED_DEFAULTS.services),
    jobs: positiveInt("jobs", args.jobs, SEED_DEFAULTS.jobs),
    seed: positiveInt("seed", args.seed, SEED_DEFAULTS.seed, 0),
    truncate: args.truncate,
  };
  await configureLogging({ level: "warning", format: "pretty" });

  let url = args["database-url"] ?? Deno.env.get("DATABASE_URL");
  let stopEmbedded = async () => {};
  if (args.embedded) {
    const { startEmbeddedPostgres } = await import("../src/db/embedded.ts");
    const pg = await startEmbeddedPostgres({ dataDir: args.embedded });
    url = pg.url;
    stopEmbedded = pg.stop;
    console.error(`seed: embedded PostgreSQL in ${args.embedded}/pg on port ${pg.port}`);
  }
  if (!url) {
    console.error(
      "seed: no database. Pass --database-url postgres://user:pass@host:5432/db (or set " +
        "DATABASE_URL),\nor --embedded DIR to start an embedded PostgreSQL whose data lives in " +
        "DIR/pg —\ne.g. --embedded .observian fills the database `deno task start` uses (stop the " +
        "server first).",
    );
    Deno.exit(2);
  }
  const fmt = new Intl.NumberFormat("en-US");
  console.error(
    `seed: ${fmt.format(opts.events)} events over ${opts.days} days across ${opts.services} ` +
      `services into ${describeUrl(url)}${opts.truncate ? " (truncating first)" : ""}`,
  );
  try {
    const r = await seedDatabase(url, opts, progressPrinter("seed"));
    console.error(
      `seed: done — ${
        fmt.format(r.events)
      } events from ${r.from.toISOString()} to ${r.to.toISOString()}; COPY ${
        r.copySeconds.toFixed(1)
      } s (${fmt.format(Math.round(r.events / r.copySeconds))} rows/s), rollups ${
        r.rollupSeconds.toFixed(1)
      } s, total ${r.totalSeconds.toFixed(1)} s`,
    );
    console.error(`seed: serve it with RETENTION_DAYS=${opts.days + 1} (or more)`);
  } finally {
    await stopEmbedded();
  }
}

if (import.meta.main) await main();
