// The SQLSTATE table's kinds and the one retry helper: attempts, backoff, deadline, signal.
import assert from "node:assert/strict";
import { errorKind, isRetryable, SQLSTATE, withRetry } from "../src/db/sqlstate.ts";

const pgError = (code: string) => Object.assign(new Error(`pg ${code}`), { code });

Deno.test("[sqlstate] each kind of error", () => {
  for (const code of ["40001", "40P01"]) assert.equal(errorKind(pgError(code)), "retryable", code);
  for (const code of ["57P01", "57P02", "57P03", "53300", "08006", "08001", "57014"]) {
    assert.equal(errorKind(pgError(code)), "transient", code);
  }
  for (const code of ["ECONNREFUSED", "ECONNRESET", "CONNECTION_CLOSED", "ENETUNREACH"]) {
    assert.equal(errorKind(pgError(code)), "transient", code);
  }
  for (const code of ["23514", "23505", "22P02", "42P01", "42601"]) {
    assert.equal(errorKind(pgError(code)), "client", code);
  }
  for (const err of [pgError("XX000"), new Error("no code"), null, undefined, { code: 42 }]) {
    assert.equal(errorKind(err), "fatal", String(err));
  }
  assert.equal(SQLSTATE.check_violation, "23514");
  assert.ok(isRetryable(pgError(SQLSTATE.deadlock_detected)));
  assert.ok(!isRetryable(pgError(SQLSTATE.unique_violation)));
});

Deno.test("[sqlstate] withRetry tries again with growing, jittered waits, then gives up", async () => {
  let calls = 0;
  const waits: number[] = [];
  const err = pgError("40001");
  await assert.rejects(
    withRetry(() => {
      calls++;
      return Promise.reject(err);
    }, {
      attempts: 4,
      baseDelayMs: 2,
      maxDelayMs: 5,
      onRetry: (e, attempt, delayMs) => {
        assert.equal(e, err);
        assert.equal(attempt, waits.length + 1);
        waits.push(delayMs);
      },
    }),
    (e) => e === err,
  );
  assert.equal(calls, 4);
  assert.equal(waits.length, 3);
  // Full jitter under a cap that doubles from baseDelayMs up to maxDelayMs.
  [2, 4, 5].forEach((cap, i) => assert.ok(waits[i] >= 0 && waits[i] <= cap, `${waits}`));

  // The caps themselves, with the jitter pinned to its top.
  const capped: number[] = [];
  await assert.rejects(withRetry(() => Promise.reject(err), {
    attempts: 5,
    baseDelayMs: 2,
    maxDelayMs: 10,
    random: () => 1,
    onRetry: (_e, _a, delayMs) => capped.push(delayMs),
  }));
  assert.deepEqual(capped, [2, 4, 8, 10]);

  let n = 0;
  const value = await withRetry(
    () => ++n < 3 ? Promise.reject(pgError("40P01")) : Promise.resolve("done"),
    { attempts: 5, baseDelayMs: 1, maxDelayMs: 1 },
  );
  assert.equal(value, "done");
  assert.equal(n, 3);
});

Deno.test("[sqlstate] withRetry surfaces other errors at once", async () => {
  let calls = 0;
  const err = pgError("23505");
  await assert.rejects(
    withRetry(() => {
      calls++;
      return Promise.reject(err);
    }, { attempts: 5, baseDelayMs: 1, maxDelayMs: 1 }),
    (e) => e === err,
  );
  assert.equal(calls, 1);
});

Deno.test("[sqlstate] withRetry stops at its deadline and on abort", async () => {
  let calls = 0;
  const fail = () => {
    calls++;
    return Promise.reject(pgError("40001"));
  };
  // A wait that would end past the deadline is not begun.
  await assert.rejects(
    withRetry(fail, {
      attempts: 100,
      baseDelayMs: 60_000,
      maxDelayMs: 60_000,
      deadline: Date.now() - 1,
    }),
  );
  assert.equal(calls, 1);

  calls = 0;
  const ctl = new AbortController();
  const run = withRetry(fail, {
    attempts: 100,
    baseDelayMs: 60_000,
    maxDelayMs: 60_000,
    signal: ctl.signal,
    onRetry: () => ctl.abort(),
  });
  await assert.rejects(run);
  assert.equal(calls, 1);
});
