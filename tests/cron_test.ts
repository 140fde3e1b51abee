// Cron expressions: what config accepts is what Deno.cron accepts, and the next tick croner
// computes (next_run_at) is when Deno.cron really fires. Checked against Deno.cron itself.
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../src/config.ts";
import { cronPeriodMs, cronProblem, nextCronTime } from "../src/jobs/cron.ts";

let serial = 0;

/** Whether Deno.cron takes the schedule (registered, then cancelled at once). */
async function denoAccepts(expr: string): Promise<boolean> {
  const ac = new AbortController();
  let run: Promise<void>;
  try {
    run = Deno.cron(`probe-${serial++}`, expr, { signal: ac.signal }, () => {});
  } catch (err) {
    assert.match(String(err), /Invalid cron schedule/);
    return false;
  }
  ac.abort();
  await run;
  return true;
}

Deno.test("[cron] next tick and period, in UTC", () => {
  // A Saturday.
  const t = new Date("2026-11-28T07:00:30Z");
  const next = (expr: string, after = t) => nextCronTime(expr, after)?.toISOString();
  assert.equal(next("* * * * *"), "2026-11-28T07:01:00.000Z");
  assert.equal(next("0 3 * * *"), "2026-11-29T03:00:00.000Z");
  assert.equal(next("0 3 * * *", new Date("2026-11-28T02:59:59Z")), "2026-11-28T03:00:00.000Z");
  assert.equal(next("0 3 * * *", new Date("2026-11-28T03:00:00Z")), "2026-11-29T03:00:00.000Z");
  assert.equal(next("*/15 * * * *"), "2026-11-28T07:15:00.000Z");
  assert.equal(next("30 9 * * MON-FRI"), "2026-11-30T09:30:00.000Z");
  assert.equal(next("0 0 1 JAN *"), "2027-01-01T00:00:00.000Z");
  assert.equal(next("0 0 29 2 *"), "2028-02-29T00:00:00.000Z");
  // Deno.cron numbers the days 1 (Sunday) to 7 (Saturday).
  assert.equal(next("0 0 * * 1"), "2026-11-29T00:00:00.000Z");
  assert.equal(next("0 0 * * 7"), "2026-12-05T00:00:00.000Z");
  assert.equal(next("0 0 * * SUN"), "2026-11-29T00:00:00.000Z");
  // Day of month OR day of week when both are restricted (Vixie cron).
  assert.equal(next("0 0 1 * SUN"), "2026-11-29T00:00:00.000Z");
  assert.equal(next("0 0 31 2 *"), undefined, "never fires");
  assert.equal(next("61 * * * *"), undefined, "invalid");
  assert.equal(cronPeriodMs("* * * * *", t), 60_000);
  assert.equal(cronPeriodMs("0 3 * * *", t), 86_400_000);
  assert.equal(cronPeriodMs("61 * * * *", t), null);
});

/** Accepted by both, refused by both, and refused here although one of the two takes them. */
const EDGES = {
  accepted: [
    "* * * * *",
    "0 3 * * *",
    "*/15 * * * *",
    "0-59/15 * * * *",
    "1-5/2 * * * *",
    "1,2-5,*/20 * * * *",
    "05 * * * *",
    "00 00 * * *",
    "0  3 * * *",
    "0\t3 * * *",
    "*/59 */23 */30 */11 */6",
    "0 0 1-31/30 1-12/11 1-7/6",
    "0 0 * JAN-MAR *",
    "0 0 * jan *",
    "30 9 * * MON-FRI",
    "0 0 * * mon,wed",
    "0 0 * * SUN-SAT",
    "0 0 * * 1-7",
    "0 0 * * 7",
    "0 0 * * 7-7",
    "0 0 1,15 * 1",
    "0 0 29 2 *",
  ],
  refusedByBoth: [
    "61 * * * *",
    "0 24 * * *",
    "0 0 0 * *",
    "0 0 32 * *",
    "0 0 * 0 *",
    "0 0 * 13 *",
    "0 0 * * 8",
    "0 0 * * 0",
    "0 0 * * 0-6",
    "0 0 * * 0,7",
    "*/0 * * * *",
    "*/60 * * * *",
    "0 */24 * * *",
    "0 0 */31 * *",
    "0 0 * */12 *",
    "0 0 * * */7",
    "/10 * * * *",
    "-1 * * * *",
    "1.5 * * * *",
    "H * * * *",
    "* * * *",
    "* * * * * *",
    "0 0 0 * * * 2030",
    "@daily",
    "@hourly",
    "0 0 ? * *",
    "0 0 * * ?",
  ],
  // Deno.cron takes these (saffron's extensions and loose forms); croner reads them otherwise
  // or not at all, and a schedule that never fires would fail inside Deno.cron's scheduler.
  refusedHere: [
    "5/10 * * * *",
    "5-1 * * * *",
    "0 0 * FEB-JAN *",
    "0 0 * * FRI-MON",
    "0 0 L * *",
    "0 0 L-2 * *",
    "0 0 LW * *",
    "0 0 15W * *",
    "0 0 * * 1#2",
    "0 0 * * 5L",
    "0 0 31 2 *",
  ],
};

Deno.test("[cron] config accepts exactly the schedules Deno.cron takes (edge cases)", async () => {
  for (const expr of EDGES.accepted) {
    assert.equal(cronProblem(expr), null, expr);
    assert.ok(await denoAccepts(expr), `Deno.cron refuses ${JSON.stringify(expr)}`);
    assert.ok(parseConfig({ INGEST_CRON: expr, PRUNE_CRON: expr }).ingestCron);
  }
  for (const expr of EDGES.refusedByBoth) {
    assert.ok(cronProblem(expr), `${JSON.stringify(expr)} is refused`);
    assert.equal(await denoAccepts(expr), false, `Deno.cron refuses ${JSON.stringify(expr)}`);
  }
  for (const expr of EDGES.refusedHere) {
    assert.ok(cronProblem(expr), `${JSON.stringify(expr)} is refused`);
    assert.ok(await denoAccepts(expr), `Deno.cron takes ${JSON.stringify(expr)} (this list)`);
  }
});

Deno.test("[cron] random expressions: whatever config accepts, Deno.cron takes", async () => {
  // A fixed-seed generator over the syntax, values a little past each field's range included.
  let seed = 11;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const pick = <T>(xs: T[]) => xs[rand(xs.length)];
  const NAMES = [
    [],
    [],
    [],
    ["JAN", "MAR", "jun", "DEC", "FOO"],
    ["SUN", "MON", "fri", "SAT", "XYZ"],
  ];
  const MAX = [59, 23, 31, 12, 7];
  // Mostly in range (so that some expressions pass), sometimes just past either end.
  const value = (i: number) =>
    NAMES[i].length && rand(3) === 0
      ? pick(NAMES[i])
      : String(rand(10) ? [0, 0, 1, 1, 1][i] + rand(MAX[i]) : pick([0, MAX[i] + 1, 99]));
  const part = (i: number): string => {
    switch (rand(6)) {
      case 0:
        return "*";
      case 1:
        return `*/${rand(MAX[i] + 2)}`;
      case 2:
        return `${value(i)}-${value(i)}`;
      case 3:
        return `${value(i)}-${value(i)}/${1 + rand(MAX[i] + 1)}`;
      default:
        return value(i);
    }
  };
  const field = (i: number) =>
    Array.from({ length: 1 + rand(2) }, () => part(i)).join(rand(20) ? "," : ";");
  let accepted = 0;
  for (let n = 0; n < 3000; n++) {
    const expr = [0, 1, 2, 3, 4].map(field).join(" ");
    if (cronProblem(expr) !== null) continue;
    accepted++;
    assert.ok(await denoAccepts(expr), `accepted here, refused by Deno.cron: ${expr}`);
  }
  assert.ok(accepted >= 100, `${accepted} accepted: the generator still reaches valid ones`);
});

Deno.test({
  name: "[cron] croner's next tick is the minute Deno.cron fires (day-of-week numbering included)",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    // The next whole minute at least 5 s away: every schedule below either fires then or not.
    const t = new Date(Math.ceil((Date.now() + 5_000) / 60_000) * 60_000);
    const [m, h, d, mo] = [t.getUTCMinutes(), t.getUTCHours(), t.getUTCDate(), t.getUTCMonth()];
    const dow = t.getUTCDay(); // 0 = Sunday
    const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    const MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(" ");
    const other = (x: number, n: number, base: number) => ((x - base + 1) % n) + base;
    const exprs = [
      ...[1, 2, 3, 4, 5, 6, 7].map((x) => `${m} ${h} * * ${x}`),
      ...DAYS.map((x) => `${m} ${h} * * ${x}`),
      `${m} ${h} * * ${DAYS[dow]}-SAT`,
      `${m} ${h} * * ${dow + 1}-7`,
      `${m} ${h} ${d} * *`,
      `${m} ${h} ${other(d, 28, 1)} * *`,
      `${m} ${h} ${other(d, 28, 1)} * ${DAYS[dow]}`,
      `${m} ${h} ${d} * ${DAYS[(dow + 3) % 7]}`,
      `${m} ${h} * ${MONTHS[mo]} *`,
      `${m} ${h} * ${MONTHS[(mo + 1) % 12]} *`,
      `${m} ${h} * ${mo + 1} *`,
      `${m} * * * *`,
      `${other(m, 60, 0)} * * * *`,
      `*/${m || 60} * * * *`.replace("*/60", "0"),
      `*/7 * * * *`,
      `${Math.max(0, m - 2)}-${m}/2 * * * *`,
      `* ${h} * * *`,
      `* ${other(h, 24, 0)} * * *`,
    ];
    const fired = new Set<string>();
    const ac = new AbortController();
    const runs = exprs.map((e, i) => {
      assert.equal(cronProblem(e, new Date(t.getTime() - 60_000)), null, e);
      return Deno.cron(`fire-${i}-${serial++}`, e, { signal: ac.signal }, () => {
        if (Math.abs(Date.now() - t.getTime()) < 30_000) fired.add(e);
      });
    });
    try {
      // Deno.cron fires at the minute, give or take its scheduling; 3 s is a generous margin.
      await new Promise((r) => setTimeout(r, t.getTime() - Date.now() + 3_000));
    } finally {
      ac.abort();
      await Promise.all(runs);
    }
    const before = new Date(t.getTime() - 1_000);
    const predicted = exprs.filter((e) => nextCronTime(e, before)?.getTime() === t.getTime());
    assert.deepEqual(
      exprs.filter((e) => fired.has(e)),
      predicted,
      `at ${t.toISOString()}: Deno.cron fired these, croner predicted the second list`,
    );
    // Exactly one day-of-week number and one name match the day.
    assert.equal(predicted.filter((e) => / \* \* [1-7]$/.test(e)).length, 1);
  },
});

Deno.test("[cron] INGEST_CRON and PRUNE_CRON: a bad schedule is one config line naming it", () => {
  for (const variable of ["INGEST_CRON", "PRUNE_CRON"]) {
    for (const bad of ["61 * * * *", "0 0 * * 0", "@daily", "0 0 31 2 *", "*/60 * * * *"]) {
      assert.throws(() => parseConfig({ [variable]: bad }), (err: unknown) => {
        assert.ok(err instanceof ConfigError, `${variable}=${bad}`);
        assert.equal(err.variable, variable);
        assert.match(err.message, new RegExp(`^invalid configuration: ${variable}: cron `));
        assert.ok(!err.message.includes("\n"));
        return true;
      });
    }
  }
  assert.match(
    (() => {
      try {
        parseConfig({ INGEST_CRON: "61 * * * *" });
      } catch (err) {
        return (err as Error).message;
      }
      return "";
    })(),
    /minute 61 is outside 0-59/,
  );
});
