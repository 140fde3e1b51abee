// A service as the API returns it (src/query/services.ts builds it).
import { z } from "@hono/zod-openapi";

const Last24h = z.object({
  total: z.number().int().openapi({ example: 18_240 }),
  errors: z.number().int().openapi({ description: "Events with status_code >= 500", example: 91 }),
  error_rate_percent: z.number().openapi({
    description: "errors / total × 100, 0 to 100, rounded to 2 decimals; 0 when total is 0",
    example: 0.5,
  }),
}).openapi("ServiceLast24h", {
  description: "Events from the start of the minute 24 hours ago through the current minute " +
    "(UTC minutes, as the rollups count them): precise to the minute, so it may include up " +
    "to a minute more than 24 hours. Exact counts, updated in the transaction that stores " +
    "the events.",
});

export const Service = z.object({
  name: z.string().openapi({ example: "checkout-service" }),
  team_owner: z.string().nullable().openapi({ example: "Payments Team" }),
  created_at: z.string().openapi({ example: "2026-11-20T09:12:44.512Z" }),
  last_24h: Last24h,
}).openapi("Service");
