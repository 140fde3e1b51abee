// Cron expressions as Deno.cron reads them, checked and evaluated with croner. Deno.cron parses
// its schedule with saffron (Cloudflare's cron dialect): it says nothing about a bad one until
// registration, which is after the migrations, and nothing about when it fires next (the status
// endpoints report next_run_at). croner is configured to read the same dialect, and the syntax
// accepted here is the part of it both read alike (tests/cron_test.ts checks against Deno.cron):
// - 5 fields, minute hour day-of-month month day-of-week, in UTC;
// - numbers, `*`, ranges `a-b`, lists `a,b`, steps `*/n` and `a-b/n`, 3-letter names JAN-DEC and
//   SUN-SAT (any case);
// - day-of-week numbers are 1-7 for Sunday-Saturday (saffron's numbering; 0 is refused), so
//   names are clearer;
// - day-of-month and day-of-week, both restricted, match when either does (Vixie cron).
// Refused although one of the two takes them: nicknames (@daily), `?`, `L`, `W`, `#`, seconds
// or years fields, steps as long as the field (`*/60`), wrapping ranges (`FRI-MON`), and
// expressions that never fire (Deno.cron's scheduler would fail on them at run time).
import { Cron, type CronOptions } from "croner";

const OPTIONS: CronOptions = {
  mode: "5-part",
  timezone: "UTC",
  // Sunday=1 ... Saturday=7, as saffron numbers them.
  alternativeWeekdays: true,
  domAndDow: false,
  paused: true,
};

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS = [
  { name: "minute", min: 0, max: 59, names: [] as string[] },
  { name: "hour", min: 0, max: 23, names: [] },
  { name: "day of month", min: 1, max: 31, names: [] },
  { name: "month", min: 1, max: 12, names: MONTHS },
  { name: "day of week", min: 1, max: 7, names: DAYS },
];

/** Why `expr` is not a schedule Deno.cron and croner both read alike, or null when it is. */
export function cronProblem(expr: string, now = new Date()): string | null {
  const fields = expr.trim().split(/\s+/);
  if (fields.length !== 5) {
    return `must have 5 fields (minute hour day-of-month month day-of-week), not ${fields.length}`;
  }
  for (const [i, text] of fields.entries()) {
    const f = FIELDS[i];
    for (const part of text.split(",")) {
      const m = part.match(/^(\*|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:\/(\d+))?$/);
      if (!m) return `${f.name} "${part}": use numbers, names, *, a-b, a,b, */n or a-b/n`;
      const values: number[] = [];
      for (const token of m[1].split("-")) {
        if (token === "*") continue;
        const named = f.names.indexOf(token.toUpperCase());
        const value = named >= 0 ? named + 1 : /^\d+$/.test(token) ? Number(token) : NaN;
        if (Number.isNaN(value)) {
          return `${f.name} "${token}" is not a number` +
            (f.names.length ? ` or one of ${f.names[0]}-${f.names.at(-1)}` : "");
        }
        if (value < f.min || value > f.max) {
          return `${f.name} ${token} is outside ${f.min}-${f.max}` +
            (i === 4 ? " (1 is Sunday, 7 Saturday)" : "");
        }
        values.push(value);
      }
      if (values.length === 2 && values[0] > values[1]) {
        return `${f.name} range "${m[1]}" runs backwards`;
      }
      // saffron refuses a step as long as the field or longer; croner would take it.
      if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > f.max - f.min)) {
        return `${f.name} step "/${m[2]}" must be 1-${f.max - f.min}`;
      }
    }
  }
  let job: Cron;
  try {
    job = new Cron(expr.trim(), OPTIONS);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return message.replace(/^CronPattern: /, "");
  }
  if (!job.nextRun(now)) return "never fires";
  return null;
}

/** The first tick strictly after `after`, or null when the expression is invalid or never fires. */
export function nextCronTime(expr: string, after: Date): Date | null {
  if (cronProblem(expr, after) !== null) return null;
  return new Cron(expr.trim(), OPTIONS).nextRun(after);
}

/** The gap between the next two ticks: how often the job runs, around now. */
export function cronPeriodMs(expr: string, now: Date): number | null {
  if (cronProblem(expr, now) !== null) return null;
  const [a, b] = new Cron(expr.trim(), OPTIONS).nextRuns(2, now);
  return a && b ? b.getTime() - a.getTime() : null;
}
