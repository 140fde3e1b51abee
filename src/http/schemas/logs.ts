// The query string of GET /logs: the shared filters plus paging.
import { z } from "@hono/zod-openapi";
import {
  CURSOR,
  CURSOR_RULE,
  decodeCursor,
  DEFAULT_LIMIT,
  encodeCursor,
  MAX_LIMIT,
  MAX_OFFSET,
} from "../../query/logs.ts";
import { filterQueryFields } from "./filters.ts";
import { intParam } from "./params.ts";

export const EXAMPLE_CURSOR = encodeCursor({ ts: "2026-11-28T07:00:00.123456Z", id: "1042" });

/** The query string of GET /logs: the shared filters plus paging. */
export const LogsQuery = z.strictObject({
  ...filterQueryFields,
  limit: intParam(1, MAX_LIMIT, "limit").openapi({
    description: `Events per page, 1 to ${MAX_LIMIT} (default ${DEFAULT_LIMIT}).`,
    example: 50,
  }),
  // No examples for offset and cursor: they exclude each other, and a request built from every
  // example must work.
  offset: intParam(0, MAX_OFFSET, "offset").openapi({
    description: `Events to skip, 0 to ${MAX_OFFSET} (default 0); kept for the original ` +
      "API's clients. Pages shift when events arrive between requests; prefer the cursor. " +
      "Mutually exclusive with cursor (400 when both are given).",
  }),
  cursor: z.string().regex(CURSOR, { error: CURSOR_RULE }).transform((s, ctx) => {
    const c = decodeCursor(s);
    if (!c) {
      ctx.addIssue({
        code: "custom",
        message: CURSOR_RULE,
      });
      return z.NEVER;
    }
    return c;
  }).optional().openapi({
    param: { name: "cursor", in: "query" },
    description: "Opaque: the X-Next-Cursor of the previous page (also in its Link header); " +
      "any other value is a 400. Pages stay free of duplicates and gaps while events arrive. " +
      "Mutually exclusive with offset (400 when both are given).",
  }),
});
