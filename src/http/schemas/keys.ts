// The bodies of the /keys endpoints.
import { z } from "@hono/zod-openapi";
import { SERVICE_NAME } from "../../config.ts";
import { ROLES } from "../../access/principal.ts";

const ROLE_RULE = `must be one of ${ROLES.join(", ")}`;

export const KeyInput = z.strictObject({
  name: z.string({ error: "must be a string" }).min(1, { error: "must not be empty" })
    .max(100, { error: "must be at most 100 characters" })
    .refine((s) => !s.includes("\0"), { error: "must not contain NUL characters" })
    .openapi({ example: "checkout shipper" }),
  role: z.enum(ROLES as ["admin", "writer", "reader"], { error: ROLE_RULE }).openapi({
    description: "admin: everything; writer: ingest only; reader: queries, summary, live " +
      "feed, services, job status.",
    example: "writer",
  }),
  teams: z.array(
    z.string().min(1, { error: "must not be empty" }).max(200, {
      error: "must be at most 200 characters",
    }),
  ).max(100, { error: "at most 100 teams" }).optional().openapi({
    description: "Limit the key to the services these teams own (services.team_owner).",
    example: ["Payments Team"],
  }),
  services: z.array(z.string().regex(SERVICE_NAME, { error: "is not a service name" }))
    .max(1000, { error: "at most 1000 services" }).optional().openapi({
      description: "Limit the key to these services.",
      example: ["checkout-service"],
    }),
  rate_limit_per_s: z.number({ error: "must be a number" }).positive({
    error: "must be above 0",
  }).max(1_000_000, { error: "must be at most 1000000" }).optional().openapi({
    description: "Events (writers) or requests (readers) per second this key may send.",
    example: 500,
  }),
  expires_at: z.iso.datetime({ offset: true, error: "must be an ISO 8601 time with a zone" })
    .optional().openapi({ example: "2027-12-31T00:00:00Z" }),
}).openapi("KeyInput");

export const Key = z.object({
  id: z.number().int().openapi({ example: 12 }),
  name: z.string().openapi({ example: "checkout shipper" }),
  role: z.enum(ROLES as ["admin", "writer", "reader"]).openapi({ example: "writer" }),
  teams: z.array(z.string()).openapi({ example: ["Payments Team"] }),
  services: z.array(z.string()).openapi({ example: [] }),
  rate_limit_per_s: z.number().nullable().openapi({ example: 500 }),
  expires_at: z.string().nullable().openapi({ example: "2027-12-31T00:00:00.000Z" }),
  prefix: z.string().openapi({
    description: "The first characters of the token after obs_, to tell keys apart.",
    example: "x4Gm0qZb",
  }),
  created_at: z.string().openapi({ example: "2026-12-02T08:00:00.000Z" }),
  last_used_at: z.string().nullable().openapi({
    description: "Updated at most once a minute per instance.",
    example: null,
  }),
}).openapi("Key");

export const CreatedKey = Key.extend({
  token: z.string().openapi({
    description: "The secret: shown only in this answer. Send it as Authorization: Bearer " +
      "<token> or X-API-Key: <token>.",
    example: "obs_x4Gm0qZbR2Jw9kLmN3pQ7sT1uV5wX8yZ0aB2cD4eF6g",
  }),
}).openapi("CreatedKey");
