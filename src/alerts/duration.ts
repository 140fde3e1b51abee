// Durations of alert rules as people write them ("30s", "5m", "1h"), and back.

const DURATION = /^([0-9]{1,6})(s|m|h)$/;
const UNIT_S = { s: 1, m: 60, h: 3600 } as const;

/** Seconds a duration names ("90s", "5m", "1h"), or null when it is not one. */
export function parseDuration(text: string): number | null {
  const m = DURATION.exec(text);
  return m ? Number(m[1]) * UNIT_S[m[2] as keyof typeof UNIT_S] : null;
}

/** The shortest way to write `seconds` in the largest whole unit: 3600 → "1h", 90 → "90s". */
export function formatDuration(seconds: number): string {
  if (seconds > 0 && seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds > 0 && seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}
