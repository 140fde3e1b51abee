// Numbers and times as people read them: 1.2k, 99.95%, 12.3 ms, and times in the browser's zone
// with UTC on hover.
const compactFmt = new Intl.NumberFormat(undefined, {
  notation: "compact",
  maximumFractionDigits: 1,
});
const intFmt = new Intl.NumberFormat();

/** 950 → "950", 1234 → "1.2K" (the locale's compact form). */
export function compact(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return Math.abs(n) < 1000 ? intFmt.format(Math.round(n * 10) / 10) : compactFmt.format(n);
}

/** A whole number with the locale's grouping: 12,345. */
export function integer(n) {
  return n === null || n === undefined ? "–" : intFmt.format(n);
}

/** A percentage given as 0–100: 99.95 → "99.95%", 100 → "100%", 0.004 → "0%". */
export function percent(p, digits = 2) {
  if (p === null || p === undefined || Number.isNaN(p)) return "–";
  return `${Number(p.toFixed(digits))}%`;
}

/** Milliseconds: "0.42 ms", "12.3 ms", "1.25 s". */
export function ms(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v >= 1000) return `${Number((v / 1000).toFixed(2))} s`;
  return `${Number(v.toFixed(v < 10 ? 2 : 1))} ms`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

/** A <time> element: the browser's local time, UTC as its title (shown on hover). */
export function timeElement(iso) {
  const t = document.createElement("time");
  const d = new Date(iso);
  t.dateTime = d.toISOString();
  t.textContent = timeFmt.format(d);
  t.title = `${d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "").replace("Z", "")} UTC`;
  return t;
}

/** "+12%", "−3.4%" of cur against prev; null when there is nothing to compare with. */
export function change(cur, prev) {
  if (prev === null || prev === undefined || cur === null || cur === undefined) return null;
  if (prev === 0) return cur === 0 ? "0%" : null;
  const pct = ((cur - prev) / Math.abs(prev)) * 100;
  const text = `${Math.abs(pct) < 10 ? pct.toFixed(1) : Math.round(pct)}%`;
  return pct > 0 ? `+${text}` : text.replace("-", "−");
}

/** A multiple (burn rates): 14.4 → "14.4×", 0.0123 → "0.012×", 1234 → "1.2K×". */
export function rate(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (Math.abs(v) >= 1000) return `${compactFmt.format(v)}×`;
  return `${Number(v.toPrecision(2))}×`;
}
