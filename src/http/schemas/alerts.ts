// The bodies and answers of the alert definition endpoints: rules, channels, teams, silences.
// Shapes only; what ties fields together (a kind's threshold, names that must exist) is checked
// below HTTP (src/alerts/), naming the field the same way.
import { z } from "@hono/zod-openapi";
import { SERVICE_NAME } from "../../config.ts";
import {
  CHANNEL_NAME,
  CHANNEL_TYPES,
  MAX_SECRET_CHARS,
  MAX_URL_CHARS,
} from "../../alerts/channels.ts";
import { LABEL_NAME, RULE_KINDS, SEVERITIES } from "../../alerts/rules.ts";
import { MAX_COMMENT_CHARS } from "../../alerts/silences.ts";
import { MAX_TEAM_CHARS } from "../../alerts/teams.ts";
import { NO_NUL } from "../../ingest/validate.ts";
import { exampleTime, HOUR_MS as HOUR } from "../../time.ts";

const text = (max: number) =>
  z.string({ error: "must be a string" }).min(1, { error: "must not be empty" })
    .max(max, { error: `must be at most ${max} characters` })
    .regex(NO_NUL, { error: "must not contain NUL characters" });

export const TeamName = text(MAX_TEAM_CHARS).openapi({ example: "Payments Team" });
export const ChannelName = z.string({ error: "must be a string" }).regex(CHANNEL_NAME, {
  error: "must be 1-64 characters of letters, digits and . _ -, starting with a letter or digit",
}).openapi({ example: "payments-pager" });
const ServiceName = z.string({ error: "must be a string" })
  .regex(SERVICE_NAME, { error: "is not a service name" })
  .openapi({ example: "checkout-service" });

const DURATION_RULE = 'must be a duration like "30s", "5m" or "1h"';
const Duration = z.string({ error: DURATION_RULE })
  .regex(/^[0-9]{1,6}(s|m|h)$/, { error: DURATION_RULE });

export const RuleInput = z.strictObject({
  name: text(200).openapi({ example: "checkout errors" }),
  services: z.array(ServiceName).max(1000, { error: "at most 1000 services" }).optional()
    .openapi({
      description: "Services watched, each an existing service. With `teams` empty too: every " +
        "service (admin only).",
      example: ["checkout-service"],
    }),
  teams: z.array(TeamName).max(100, { error: "at most 100 teams" }).optional().openapi({
    description: "Teams whose services (services.team_owner) are watched, whenever they own them.",
    example: [],
  }),
  kind: z.enum(RULE_KINDS, { error: `must be one of ${RULE_KINDS.join(", ")}` }).openapi({
    example: "error_rate",
  }),
  threshold: z.number({ error: "must be a number" }).openapi({
    description: "By kind: error_rate, the percentage of 5xx responses (0-100); latency_p95 " +
      "and latency_p99, milliseconds (above 0, at most 3600000); no_traffic, 0 (unused); " +
      "volume_drop, a fraction (above 0, at most 1) of the requests in the same window a week " +
      "earlier.",
    example: 5,
  }),
  window: Duration.openapi({
    description: "The span each evaluation looks back over, 1m to 24h.",
    example: "5m",
  }),
  for: Duration.openapi({
    description: "How long the condition must hold before the alert fires, 0s to 24h.",
    example: "2m",
  }),
  severity: z.enum(SEVERITIES, { error: `must be one of ${SEVERITIES.join(", ")}` }).openapi({
    example: "page",
  }),
  channels: z.array(ChannelName).max(20, { error: "at most 20 channels" }).optional().openapi({
    description: "Channel names, each existing. Empty: the owning team's channel, else " +
      "ALERT_DEFAULT_CHANNEL.",
    example: [],
  }),
  labels: z.record(
    z.string().regex(LABEL_NAME, { error: "is not a label name" }),
    text(200),
  ).optional().openapi({
    description: "Added to each alert's labels. Not alertname, service, team, severity or " +
      "rule_id, which Observian sets.",
    example: { runbook: "https://wiki.example.com/checkout" },
  }),
}).openapi("AlertRuleInput");

export const Rule = z.object({
  id: z.number().int().openapi({ example: 1 }),
  name: z.string().openapi({ example: "checkout errors" }),
  services: z.array(z.string()).openapi({ example: ["checkout-service"] }),
  teams: z.array(z.string()).openapi({ example: [] }),
  kind: z.enum(RULE_KINDS).openapi({ example: "error_rate" }),
  threshold: z.number().openapi({ example: 5 }),
  window: z.string().openapi({ example: "5m" }),
  window_s: z.number().int().openapi({ example: 300 }),
  for: z.string().openapi({ example: "2m" }),
  for_s: z.number().int().openapi({ example: 120 }),
  severity: z.enum(SEVERITIES).openapi({ example: "page" }),
  channels: z.array(z.string()).openapi({ example: [] }),
  labels: z.record(z.string(), z.string()).openapi({ example: {} }),
  created_at: z.string().openapi({ example: exampleTime() }),
  updated_at: z.string().openapi({ example: exampleTime() }),
}).openapi("AlertRule");

export const ChannelInput = z.strictObject({
  name: ChannelName,
  type: z.enum(CHANNEL_TYPES, { error: `must be one of ${CHANNEL_TYPES.join(", ")}` }).openapi({
    description: "webhook: Alertmanager's webhook body; slack: an incoming-webhook message.",
    example: "webhook",
  }),
  url: z.string({ error: "must be a string" }).max(MAX_URL_CHARS, {
    error: `must be at most ${MAX_URL_CHARS} characters`,
  }).regex(/^https?:\/\/./, { error: "must be an http or https URL" })
    .regex(NO_NUL, { error: "must not contain NUL characters" }).openapi({
      example: "https://alerts.example.com/hook",
    }),
  secret: text(MAX_SECRET_CHARS).optional().openapi({
    description: "Webhook channels only: the key of X-Observian-Signature-256. Never shown again.",
    example: "a-long-random-secret",
  }),
}).openapi("AlertChannelInput");

export const Channel = z.object({
  id: z.number().int().openapi({ example: 1 }),
  name: z.string().openapi({ example: "payments-pager" }),
  type: z.enum(CHANNEL_TYPES).openapi({ example: "webhook" }),
  url: z.string().openapi({
    description: "Without what may be a credential: a Slack URL's path, a webhook URL's " +
      "user-info and query.",
    example: "https://alerts.example.com/hook",
  }),
  has_secret: z.boolean().openapi({ example: true }),
  created_at: z.string().openapi({ example: exampleTime() }),
}).openapi("AlertChannel");

export const TeamInput = z.strictObject({
  channel: ChannelName.nullable().openapi({
    description: "The team's default channel (an existing channel's name); null: none.",
    example: "payments-pager",
  }),
}).openapi("TeamInput");

export const Team = z.object({
  name: z.string().openapi({ example: "Payments Team" }),
  channel: z.string().nullable().openapi({ example: "payments-pager" }),
  services: z.array(z.string()).openapi({ example: ["checkout-service"] }),
}).openapi("Team");

const Matchers = z.strictObject({
  service: ServiceName.optional().openapi({ description: "An existing service." }),
  team: TeamName.optional(),
  rule: z.number({ error: "must be an alert rule's id" }).int({
    error: "must be an alert rule's id",
  })
    .min(1, { error: "must be an alert rule's id" }).max(2 ** 53 - 1, {
      error: "must be an alert rule's id",
    }).optional().openapi({ description: "An existing alert rule's id.", example: 1 }),
}).openapi("SilenceMatchers", {
  description: "At least one; an alert is silenced when every one given matches it.",
});

export const SilenceInput = z.strictObject({
  matchers: Matchers,
  ends_at: z.iso.datetime({ offset: true, error: "must be an ISO 8601 time with a zone" })
    .openapi({ description: "In the future, at most 30 days ahead.", example: exampleTime(HOUR) }),
  comment: z.string({ error: "must be a string" }).max(MAX_COMMENT_CHARS, {
    error: `must be at most ${MAX_COMMENT_CHARS} characters`,
  }).regex(NO_NUL, { error: "must not contain NUL characters" }).openapi({
    example: "checkout deploy in progress",
  }),
}).openapi("SilenceInput");

export const Silence = z.object({
  id: z.number().int().openapi({ example: 1 }),
  matchers: z.object({
    service: z.string().optional(),
    team: z.string().optional(),
    rule: z.number().int().optional(),
  }).openapi({ example: { service: "checkout-service" } }),
  starts_at: z.string().openapi({ example: exampleTime() }),
  ends_at: z.string().openapi({ example: exampleTime(HOUR) }),
  comment: z.string().openapi({ example: "checkout deploy in progress" }),
  created_by: z.string().nullable().openapi({ example: "key#3" }),
  created_at: z.string().openapi({ example: exampleTime() }),
  active: z.boolean().openapi({ example: true }),
}).openapi("Silence");
