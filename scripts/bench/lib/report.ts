// Progress lines on stderr and the result table on stdout.

const fmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const fmt1 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const fmt2 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

export const num = (n: number) => fmt.format(n);
export const num1 = (n: number) => fmt1.format(n);
export const ms = (n: number) => `${n < 10 ? fmt2.format(n) : fmt1.format(n)} ms`;
export const mb = (bytes: number) => `${fmt1.format(bytes / 1024 / 1024)} MB`;

export function log(bench: string, message: string): void {
  console.error(`[${bench}] ${message}`);
}

/** Calls `line()` every `everyMs` until stopped, for phases that would otherwise be silent. */
export function ticker(bench: string, line: () => string, everyMs = 2000): { stop(): void } {
  const id = setInterval(() => log(bench, line()), everyMs);
  return { stop: () => clearInterval(id) };
}

export interface ResultRow {
  bench: string;
  metric: string;
  value: string;
  baseline: string;
  ratio: string;
  goal: string;
  /** true PASS, false FAIL, null informational / not measured. */
  pass: boolean | null;
  note?: string;
}

export class Report {
  rows: ResultRow[] = [];

  add(row: ResultRow): void {
    this.rows.push(row);
    const verdict = row.pass === null ? "" : row.pass ? "PASS" : "FAIL";
    console.error(
      `[${row.bench}] ${row.metric}: ${row.value}` +
        (row.baseline ? ` | baseline ${row.baseline}` : "") +
        (row.ratio ? ` | ratio ${row.ratio}` : "") +
        (row.goal ? ` | goal ${row.goal}` : "") + (verdict ? ` → ${verdict}` : "") +
        (row.note ? ` (${row.note})` : ""),
    );
  }

  print(): void {
    const head: ResultRow = {
      bench: "benchmark",
      metric: "metric",
      value: "value",
      baseline: "baseline (same run)",
      ratio: "ratio",
      goal: "goal",
      pass: null,
    };
    const cells = (r: ResultRow, isHead = false) => [
      r.bench,
      r.metric,
      r.value,
      r.baseline,
      r.ratio,
      r.goal,
      isHead ? "result" : r.pass === null ? "-" : r.pass ? "PASS" : "FAIL",
    ];
    const all = [cells(head, true), ...this.rows.map((r) => cells(r))];
    const widths = all[0].map((_, i) => Math.max(...all.map((c) => c[i].length)));
    const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i])).join("  ").trimEnd();
    console.log("");
    console.log(line(all[0]));
    console.log(widths.map((w) => "-".repeat(w)).join("  "));
    for (const c of all.slice(1)) console.log(line(c));
    const notes = this.rows.filter((r) => r.note);
    if (notes.length) {
      console.log("");
      for (const r of notes) console.log(`  ${r.bench} / ${r.metric}: ${r.note}`);
    }
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

export function summarize(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
    mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
  };
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** The memory goal every benchmark checks: the server's peak resident set. */
export function maxRssRow(bench: string, bytes: number): ResultRow {
  return {
    bench,
    metric: "server max RSS",
    value: mb(bytes),
    baseline: "",
    ratio: "",
    goal: "< 250 MB",
    pass: bytes < 250 * 1024 * 1024,
  };
}
