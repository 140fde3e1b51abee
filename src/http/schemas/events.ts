// An event as the API returns it (src/query/events.ts builds it).
import { z } from "@hono/zod-openapi";

export const LogEvent = z.object({
  id: z.number().int().openapi({ example: 1042 }),
  timestamp: z.string().openapi({ example: "2026-11-28T07:00:00.123Z" }),
  service_name: z.string().openapi({ example: "checkout-service" }),
  team_owner: z.string().nullable().openapi({ example: "Payments Team" }),
  status_code: z.number().int().openapi({ example: 503 }),
  event_type: z.string().nullable().openapi({ example: "payment.charge" }),
  latency_ms: z.number().openapi({ example: 182.4 }),
  message: z.string().nullable().openapi({ example: "card declined by issuer" }),
  attributes: z.record(z.string(), z.unknown()).nullable().openapi({
    example: { region: "eu-west-1" },
  }),
}).openapi("LogEvent");
