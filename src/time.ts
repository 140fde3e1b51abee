// Time for the whole app: durations in milliseconds (for the code that buckets, bounds and
// schedules by time), the OpenAPI examples' base, and parsing of ISO 8601 times with a zone.
export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/**
 * Times in the OpenAPI document's examples are written from this placeholder instant and moved
 * to the present each time the document is served (freshenExamples, src/http/openapi.ts), so
 * they never fall outside the retention window.
 */
export const EXAMPLE_TIME_BASE = Date.UTC(2000, 0, 1);

/** An example time `offsetMs` from the moment the document is served, less a minute. */
export const exampleTime = (offsetMs = 0): string =>
  new Date(EXAMPLE_TIME_BASE + offsetMs).toISOString();

// ---- ISO 8601 times with a zone: events' timestamps and the query string's bounds ----------

// Captures year, month, day, hour, minute, second, fraction digits and zone.
// ([0-9], not \d: the same in JS, but other tools read \d as any Unicode digit.)
const ISO_WITH_ZONE =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})$/;

/**
 * The instant (epoch ms) an ISO 8601 time with a zone names, and its fraction of a second as
 * given; null for a day or time that does not exist (2026-02-30, 24:00, a zone beyond ±23:59),
 * which `new Date()` would refuse or roll over. Computed from the fields rather than by
 * re-parsing a normalised string: this runs for every ingested event, and the string work was
 * most of what validating a batch allocated.
 */
function parseZoned(s: string): { ms: number; fraction: string } | null {
  const m = ISO_WITH_ZONE.exec(s);
  if (!m) return null;
  const y = +m[1], mo = +m[2], d = +m[3], h = +m[4], mi = +m[5], sec = m[6] ? +m[6] : 0;
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || h > 23 || mi > 59 || sec > 59) {
    return null;
  }
  const fraction = m[7] ?? "";
  // Milliseconds: further digits are dropped, as Date does.
  const ms = fraction ? +fraction.slice(0, 3).padEnd(3, "0") : 0;
  let offset = 0;
  const zone = m[8];
  if (zone !== "Z" && zone !== "z") {
    const zh = +zone.slice(1, 3), zm = +zone.slice(-2);
    if (zh > 23 || zm > 59) return null;
    offset = (zone[0] === "-" ? -1 : 1) * (zh * 60 + zm);
  }
  if (y < 100) {
    // Date.UTC would read years 0-99 as 1900-1999.
    const t = new Date(0);
    t.setUTCFullYear(y, mo - 1, d);
    t.setUTCHours(h, mi - offset, sec, ms);
    return { ms: t.getTime(), fraction };
  }
  return { ms: Date.UTC(y, mo - 1, d, h, mi, sec, ms) - offset * MINUTE_MS, fraction };
}

function daysInMonth(y: number, mo: number): number {
  if (mo !== 2) return mo === 4 || mo === 6 || mo === 9 || mo === 11 ? 30 : 31;
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
}

/** The instant an ISO 8601 time with a zone names (an event's timestamp), or null. */
export function parseTimestamp(s: string): Date | null {
  const t = parseZoned(s);
  return t === null ? null : new Date(t.ms);
}

// PostgreSQL refuses year 0 and before; an offset can push 0001-01-01 or 9999-12-31 out of
// range, which would otherwise fail in the database as a 500. Such a bound is moved to the edge.
const MIN_TIME = Date.parse("0001-01-01T00:00:00Z");
/** The earliest instant a time parameter can name (epoch ms). */
export const EARLIEST_TIME = MIN_TIME;
const MAX_TIME = Date.parse("9999-12-31T23:59:59.999Z");

/**
 * A time bound of a query (clamped to years 0001-9999 in UTC), or null. `exact` is the same
 * instant in UTC with the fraction kept to microseconds (PostgreSQL's precision; a Date keeps
 * only ms).
 */
export function parseIsoTime(s: string): { date: Date; exact: string } | null {
  const t = parseZoned(s);
  if (t === null) return null;
  // No event lies beyond the edges, so a bound beyond one selects what the edge does.
  if (t.ms < MIN_TIME) return { date: new Date(MIN_TIME), exact: "0001-01-01T00:00:00.000000Z" };
  if (t.ms > MAX_TIME) return { date: new Date(MAX_TIME), exact: "9999-12-31T23:59:59.999999Z" };
  const date = new Date(t.ms);
  const micros = t.fraction.padEnd(6, "0").slice(0, 6);
  return { date, exact: `${date.toISOString().slice(0, 19)}.${micros}Z` };
}

/** `work`, or a rejection with `late()` once it has run `ms` without settling (it goes on). */
export function bounded<T>(
  work: Promise<T>,
  ms: number,
  late: () => Error = () => new Error(`no answer within ${ms} ms`),
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
