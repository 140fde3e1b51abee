// Durations in milliseconds, for the code that buckets, bounds and schedules by time.
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
