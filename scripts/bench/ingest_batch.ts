// ingest-batch: POST /logs with JSON arrays of 1,000 events from several concurrent clients,
// against the baseline of COPYing the very same rows (1,000 per transaction, same number of
// clients) into the same table. Rounds alternate COPY and API so drift on a shared machine
// hits both alike; the ratio is of the medians.
import postgres from "postgres";
import type { BenchContext } from "./run.ts";
import { throwawayDatabase } from "./lib/env.ts";
import { copyBatch, copyRows, countEvents, makeEvents, registerServices } from "./lib/events.ts";
import { log, maxRssRow, mb, median, num, ticker } from "./lib/report.ts";
import { startServer } from "./lib/server.ts";
import { ensureWrk, runDenoLoad, runWrk } from "./lib/wrk.ts";

const BENCH = "ingest-batch";
const BATCH = 1000;
const BODIES = 40;
const CLIENTS = 4;
const ROUNDS = 3;
const PHASE_S = 8;
const GOAL_RATIO = 0.5;

export async function ingestBatch(ctx: BenchContext): Promise<void> {
  const db = await throwawayDatabase(BENCH);
  ctx.defer(db.close);
  const server = await startServer(BENCH, db.url);
  ctx.defer(server.stop);
  const sql = postgres(db.url, { max: CLIENTS + 1, onnotice: () => {} });
  ctx.defer(() => sql.end({ timeout: 5 }));

  const ids = await registerServices(sql);
  const batches = Array.from({ length: BODIES }, () => makeEvents(BATCH));
  const bodiesFile = await Deno.makeTempFile({ prefix: "observian-bench-bodies-" });
  ctx.defer(() => Deno.remove(bodiesFile).catch(() => {}));
  await Deno.writeTextFile(bodiesFile, batches.map((b) => JSON.stringify(b)).join("\n") + "\n");
  const copyTexts = batches.map((b) => copyRows(b, ids));
  const useWrk = await ensureWrk(BENCH);
  const bodies = batches.map((b) => JSON.stringify(b));

  const copyRates: number[] = [];
  const apiRates: number[] = [];
  let apiFailures = 0;
  const rssNote = () => `server RSS ${mb(server.rss())}`;
  server.resetMaxRss();
  for (let round = 1; round <= ROUNDS; round++) {
    // Baseline: the same rows by COPY, CLIENTS connections, one transaction per 1,000 rows.
    let copied = 0;
    let next = 0;
    const started = performance.now();
    const deadline = started + PHASE_S * 1000;
    const tick = ticker(
      BENCH,
      () =>
        `round ${round}/${ROUNDS} COPY: ${
          Math.round((performance.now() - started) / 1000)
        }/${PHASE_S} s, ${num(copied)} rows`,
    );
    try {
      await Promise.all(Array.from({ length: CLIENTS }, async () => {
        while (performance.now() < deadline) {
          await copyBatch(sql, copyTexts[next++ % copyTexts.length]);
          copied += BATCH;
        }
      }));
    } finally {
      tick.stop();
    }
    const copyRate = copied / ((performance.now() - started) / 1000);
    copyRates.push(copyRate);

    // The API: the same bodies, CLIENTS connections.
    const r = useWrk
      ? await runWrk(BENCH, {
        url: `${server.base}/logs`,
        mode: "batch",
        bodiesFile,
        threads: 2,
        connections: CLIENTS,
        durationS: PHASE_S,
        label: `round ${round}/${ROUNDS} POST /logs ×${BATCH}`,
        status: rssNote,
      })
      : await runDenoLoad(BENCH, {
        url: `${server.base}/logs`,
        connections: CLIENTS,
        durationS: PHASE_S,
        label: `round ${round}/${ROUNDS} POST /logs ×${BATCH}`,
        ok: 201,
        next: (i) => ({ method: "POST", body: bodies[i % bodies.length] }),
        status: rssNote,
      });
    apiFailures += r.other + r.errors.connect + r.errors.read + r.errors.timeout;
    const apiRate = (r.acked * BATCH) / r.durationS;
    apiRates.push(apiRate);
    log(
      BENCH,
      `round ${round}: COPY ${num(copyRate)} rows/s, API ${num(apiRate)} events/s (${
        (apiRate / copyRate).toFixed(2)
      }), API p99 ${r.latencyMs.p99.toFixed(1)} ms per 1,000-event request`,
    );
  }
  const rows = await countEvents(sql);
  const api = median(apiRates);
  const copy = median(copyRates);
  ctx.report.add({
    bench: BENCH,
    metric: `events/s, POST ×${BATCH}, ${CLIENTS} clients`,
    value: num(api),
    baseline: `COPY ${num(copy)} rows/s`,
    ratio: (api / copy).toFixed(2),
    goal: `ratio ≥ ${GOAL_RATIO}`,
    pass: api / copy >= GOAL_RATIO && apiFailures === 0,
    note: `median of ${ROUNDS} alternating ${PHASE_S}-s rounds; API ${
      apiRates.map((v) => num(v)).join(" / ")
    }, COPY ${
      copyRates.map((v) => num(v)).join(" / ")
    }; ${num(rows)} rows in the table at the end` +
      (apiFailures ? `; ${apiFailures} requests not answered 201` : ""),
  });
  ctx.report.add(maxRssRow(BENCH, server.maxRss()));
}
