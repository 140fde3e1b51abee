// The bodies and answers of /slos. GET /slos/{id} answers the definition with the figures the
// evaluator computes (null until it has).
import { z } from "@hono/zod-openapi";
import { SERVICE_NAME } from "../../config.ts";
import { SLO_INDICATORS } from "../../alerts/slos.ts";
import { NO_NUL } from "../../ingest/validate.ts";
import { exampleTime } from "../../time.ts";

export const SloInput = z.strictObject({
  service: z.string({ error: "must be a string" }).regex(SERVICE_NAME, {
    error: "is not a service name",
  }).openapi({ description: "An existing service.", example: "checkout-service" }),
  name: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" })
    .max(200, { error: "must be at most 200 characters" })
    .regex(NO_NUL, { error: "must not contain NUL characters" })
    .openapi({ description: "Unique per service.", example: "checkout availability" }),
  objective: z.number({ error: "must be a number" })
    .gt(0, { error: "must be a percentage above 0 and below 100" })
    .lt(100, { error: "must be a percentage above 0 and below 100" })
    .openapi({ description: "Percent of good events.", example: 99.9 }),
  period_days: z.union([z.literal(28), z.literal(30)], { error: "must be 28 or 30" })
    .openapi({ example: 30 }),
  indicator: z.enum(SLO_INDICATORS, { error: "must be availability or latency" }).openapi({
    description: "availability: non-5xx events ÷ all; latency: events faster than " +
      "latency_threshold_ms ÷ all.",
    example: "availability",
  }),
  latency_threshold_ms: z.number({ error: "must be a number" })
    .gt(0, { error: "must be above 0 and at most 3600000" })
    .max(3_600_000, { error: "must be above 0 and at most 3600000" }).optional().openapi({
      description: "Required for latency, refused for availability.",
      example: 300,
    }),
}).openapi("SloInput");

export const Slo = z.object({
  id: z.number().int().openapi({ example: 1 }),
  service: z.string().openapi({ example: "checkout-service" }),
  team: z.string().nullable().openapi({ example: "Payments Team" }),
  name: z.string().openapi({ example: "checkout availability" }),
  objective: z.number().openapi({ example: 99.9 }),
  period_days: z.union([z.literal(28), z.literal(30)]).openapi({ example: 30 }),
  indicator: z.enum(SLO_INDICATORS).openapi({ example: "availability" }),
  latency_threshold_ms: z.number().nullable().openapi({ example: null }),
  created_at: z.string().openapi({ example: exampleTime() }),
  updated_at: z.string().openapi({ example: exampleTime() }),
}).openapi("Slo");

/** The evaluator's figures for one SLO; null until it has computed them. */
export const SloStatusFields = {
  sli: z.number().nullable().openapi({
    description: "Good events ÷ all over the period, as a percentage; null: no events.",
    example: null,
  }),
  error_budget_remaining: z.number().nullable().openapi({
    description: "Fraction of the period's error budget left (≤ 0: spent); null: no events.",
    example: null,
  }),
  burn_rates: z.record(z.string(), z.number().nullable()).nullable().openapi({
    description: 'Burn rate by window ("5m", "30m", "1h", "6h", "24h", "3d"): the bad share ' +
      "÷ (1 − objective); 1 spends the budget exactly over the period.",
    example: null,
  }),
  alerting: z.array(z.record(z.string(), z.unknown())).nullable().openapi({
    description: "The SLO's page and ticket alerts pending or firing after the alerts job's " +
      "last evaluation: {alert, state, since, value}.",
    example: null,
  }),
};

export const SloDetail = Slo.extend(SloStatusFields).openapi("SloDetail");
