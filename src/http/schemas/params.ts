// Query-string numbers and booleans as zod schemas: parsed strictly, documented as the types
// a generated client should send.
import { z } from "@hono/zod-openapi";

const INTEGER = /^-?\d{1,16}$/;
// What JSON (and so most clients' number formatting) writes: 250, 0.5, 1e-7.
const NUMBER = /^-?\d{1,16}(\.\d{1,16})?([eE][+-]?\d{1,3})?$/;

/**
 * A query-string integer in [min, max], documented as an integer (so that a generated client
 * takes `limit: 5`) and parsed strictly: "5" is 5; "", "5.5", "0x10" and "1e2" are refused.
 */
export const intParam = (min: number, max: number, name: string) => {
  const rule = `must be a whole number from ${min} to ${max}`;
  return z.preprocess(
    (v) => (typeof v === "string" && INTEGER.test(v) ? Number(v) : v),
    z.number({ error: rule }).int({ error: rule }).min(min, { error: rule })
      .max(max, { error: rule }),
  ).optional().openapi({ param: { name, in: "query" } });
};

/** A query-string number in [min, max] (decimal or exponent notation), documented as one. */
export const numberParam = (min: number, max: number, name: string) => {
  const rule = `must be a number from ${min} to ${max}`;
  return z.preprocess(
    (v) => (typeof v === "string" && NUMBER.test(v) ? Number(v) : v),
    z.number({ error: rule }).min(min, { error: rule }).max(max, { error: rule }),
  ).optional().openapi({ param: { name, in: "query" } });
};

/** A query-string boolean, documented as one: "true" or "false" (in any case). */
export const boolParam = (name: string) =>
  z.preprocess(
    (v) => {
      const s = typeof v === "string" ? v.toLowerCase() : v;
      return s === "true" ? true : s === "false" ? false : v;
    },
    z.boolean({ error: "must be true or false" }),
  ).optional().openapi({ param: { name, in: "query" } });
