// Waiting for a condition in a test: polled, bounded, and failing with what was awaited.

/** Polls `cond` every `everyMs` until it holds; throws naming `what` once `ms` have passed. */
export async function eventually(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = 10_000,
  everyMs = 25,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
