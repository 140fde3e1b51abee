// The next tick of a 5-field cron expression in UTC, as Deno.cron reads it. Deno.cron does
// not say when it will fire next, and the status endpoints report next_run_at.
// Supports *, lists, ranges, steps and JAN-DEC / SUN-SAT names; day-of-month and day-of-week
// combine with OR when both are restricted (Vixie cron).

interface Field {
  values: Set<number>;
  restricted: boolean;
}

export interface CronSpec {
  minute: Field;
  hour: Field;
  dom: Field;
  month: Field;
  dow: Field;
}

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

function parseField(
  text: string,
  min: number,
  max: number,
  names: string[] = [],
  nameBase = 0,
): Field {
  const values = new Set<number>();
  const num = (s: string): number => {
    const i = names.indexOf(s.toUpperCase());
    if (i >= 0) return i + nameBase;
    if (!/^\d+$/.test(s)) throw new Error(`"${s}" is not a number`);
    return Number(s);
  };
  for (const part of text.split(",")) {
    const [range, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : num(stepText);
    if (step < 1) throw new Error(`step must be at least 1 in "${part}"`);
    let lo: number, hi: number;
    if (range === "*") [lo, hi] = [min, max];
    else if (range.includes("-")) {
      const [a, b] = range.split("-");
      [lo, hi] = [num(a), num(b)];
    } else {
      lo = num(range);
      hi = stepText === undefined ? lo : max;
    }
    if (lo < min || hi > max || lo > hi) throw new Error(`"${part}" is outside ${min}-${max}`);
    for (let v = lo; v <= hi; v += step) values.add(v);
  }
  return { values, restricted: !text.startsWith("*") };
}

export function parseCron(expr: string): CronSpec {
  const f = expr.trim().split(/\s+/);
  if (f.length !== 5) throw new Error("a cron expression has 5 fields");
  const dow = parseField(f[4], 0, 7, DAYS);
  if (dow.values.delete(7)) dow.values.add(0); // 7 is Sunday too
  return {
    minute: parseField(f[0], 0, 59),
    hour: parseField(f[1], 0, 23),
    dom: parseField(f[2], 1, 31),
    month: parseField(f[3], 1, 12, MONTHS, 1),
    dow,
  };
}

function dayMatches(spec: CronSpec, d: Date): boolean {
  const dom = spec.dom.values.has(d.getUTCDate());
  const dow = spec.dow.values.has(d.getUTCDay());
  if (spec.dom.restricted && spec.dow.restricted) return dom || dow;
  return dom && dow;
}

/** The first tick strictly after `after`, or null when the expression is invalid or never fires. */
export function nextCronTime(expr: string, after: Date): Date | null {
  let spec: CronSpec;
  try {
    spec = parseCron(expr);
  } catch {
    return null;
  }
  const t = new Date(Math.floor(after.getTime() / 60_000) * 60_000 + 60_000);
  // Each step jumps a whole month, day, hour or minute; 5 years of steps is ample.
  for (let i = 0; i < 100_000; i++) {
    if (t.getUTCFullYear() > after.getUTCFullYear() + 5) return null;
    if (!spec.month.values.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
    } else if (!dayMatches(spec, t)) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
    } else if (!spec.hour.values.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
    } else if (!spec.minute.values.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
    } else return t;
  }
  return null;
}

/** The gap between the next two ticks: how often the job runs, around now. */
export function cronPeriodMs(expr: string, now: Date): number | null {
  const a = nextCronTime(expr, now);
  const b = a && nextCronTime(expr, a);
  return a && b ? b.getTime() - a.getTime() : null;
}
