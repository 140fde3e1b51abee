// The time parameters of queries: strict ISO 8601 with a zone, held to what PostgreSQL stores.
const ISO_WITH_ZONE =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})$/;
// PostgreSQL refuses year 0 and before; an offset can push 0001-01-01 or 9999-12-31 out of
// range, which would otherwise fail in the database as a 500. Such a bound is moved to the edge.
const MIN_TIME = Date.parse("0001-01-01T00:00:00Z");
/** The earliest instant a time parameter can name (epoch ms). */
export const EARLIEST_TIME = MIN_TIME;
const MAX_TIME = Date.parse("9999-12-31T23:59:59.999Z");

/**
 * A strict ISO 8601 time with a zone (clamped to years 0001-9999 in UTC), or null. Date.parse
 * alone rolls 2026-02-30 over to March and accepts 24:00, so the calendar is checked by hand. `exact` is the same instant in
 * UTC with the fraction kept to microseconds (PostgreSQL's precision; a Date keeps only ms).
 */
export function parseIsoTime(s: string): { date: Date; exact: string } | null {
  const m = s.match(ISO_WITH_ZONE);
  if (!m) return null;
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number);
  const day = new Date(0);
  day.setUTCFullYear(y, mo - 1, d);
  if (
    mo < 1 || mo > 12 || day.getUTCMonth() !== mo - 1 || day.getUTCDate() !== d || h > 23 ||
    mi > 59 || sec > 59
  ) return null;
  const fraction = (m[7] ?? "").padEnd(6, "0").slice(0, 6);
  const zone = m[8].toUpperCase() === "Z" ? "Z" : m[8].replace(/^([+-]\d{2}):?(\d{2})$/, "$1:$2");
  const ms = Date.parse(
    `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? "00"}.${fraction.slice(0, 3)}${zone}`,
  );
  if (Number.isNaN(ms)) return null;
  // No event lies beyond the edges, so a bound beyond one selects what the edge does.
  if (ms < MIN_TIME) return { date: new Date(MIN_TIME), exact: "0001-01-01T00:00:00.000000Z" };
  if (ms > MAX_TIME) return { date: new Date(MAX_TIME), exact: "9999-12-31T23:59:59.999999Z" };
  const date = new Date(ms);
  return { date, exact: `${date.toISOString().slice(0, 19)}.${fraction}Z` };
}
