// Every setting comes from the environment, parsed once at start-up and frozen.
import { z } from "zod";
import { cronProblem } from "./jobs/cron.ts";

const bool = z.enum(["true", "false", "1", "0", "yes", "no"]).transform((v) =>
  v === "true" || v === "1" || v === "yes"
);
const int = (min: number, max: number) =>
  z.string().trim().regex(/^\d+$/, "must be a whole number").transform(Number).pipe(
    z.number().int().min(min).max(max),
  );

/** "name:Team,name2:Team 2" → [{name, teamOwner}]. */
const seedServices = z.string().transform((raw, ctx) => {
  const out: { name: string; teamOwner: string | null }[] = [];
  for (const part of raw.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [name, ...team] = part.split(":");
    const teamOwner = team.join(":").trim() || null;
    if (!SERVICE_NAME.test(name.trim())) {
      ctx.addIssue({ code: "custom", message: `"${name}" is not a valid service name` });
      return z.NEVER;
    }
    out.push({ name: name.trim(), teamOwner });
  }
  return out;
});

/** A schedule Deno.cron accepts and croner reads the same way (see jobs/cron.ts). */
const cron = (fallback: string) =>
  z.string().trim().superRefine((v, ctx) => {
    const problem = cronProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: `cron expression "${v}": ${problem}` });
  }).default(fallback);

const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });
/** A sign-in provider's URL: https, or http on a loopback address only (local tests). */
const providerUrl = httpUrl.refine(
  (u) =>
    u.startsWith("https:") || /^http:\/\/(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(\/|$)/.test(u),
  { error: "must be an https URL (http only on 127.0.0.1, localhost or [::1])" },
);

/** Service names: letters, digits and . _ - / (the logs API accepts the same). */
export const SERVICE_NAME = /^[A-Za-z0-9._\-/]{1,100}$/;

const schema = z.object({
  PORT: int(0, 65535).default(8000),
  HOST: z.string().min(1).default("0.0.0.0"),
  DATABASE_URL: z.string().trim().optional().transform((v) => v || undefined).pipe(
    z.url({ protocol: /^postgres(ql)?$/, error: "must be a postgres:// URL" }).optional(),
  ),
  OBSERVIAN_DATA_DIR: z.string().min(1).default(".observian"),
  OBSERVIAN_PG_PORT: int(0, 65535).default(0),
  DB_POOL_MAX: int(1, 1000).default(10),
  DB_CONNECT_TIMEOUT_S: int(1, 3600).default(30),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warning", "error", "fatal"]).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty"]).optional(),
  RETENTION_DAYS: int(1, 3650).default(7),
  AUDIT_RETENTION_DAYS: int(1, 3650).default(90),
  API_KEYS: z.string().optional(),
  API_KEY: z.string().optional(),
  METRICS_REQUIRE_KEY: bool.default(false),
  SEED_SERVICES: seedServices.default([
    { name: "auth-service", teamOwner: "Identity Team" },
    { name: "checkout-service", teamOwner: "Payments Team" },
    { name: "inventory-service", teamOwner: "Ops Team" },
  ]),
  SHUTDOWN_TIMEOUT_S: int(0, 600).default(10),
  MIGRATE_ON_START: bool.default(true),
  MAX_BODY_BYTES: int(1024, 1024 * 1024 * 1024).default(10 * 1024 * 1024),
  INGEST_MAX_INFLIGHT_BYTES: int(1024, 1024 * 1024 * 1024 * 1024).default(32 * 1024 * 1024),
  BODY_READ_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  INGEST_COMMIT_TIMEOUT_MS: int(100, 600_000).default(10_000),
  INGEST_DEDUPE_HOURS: int(1, 24 * 30).default(24),
  LIVE_HEARTBEAT_S: int(1, 3600).default(15),
  QUERY_TIMEOUT_MS: int(0, 3_600_000).default(15_000),
  INGEST_CRON: cron("* * * * *"),
  PRUNE_CRON: cron("0 3 * * *"),
  ALERT_CRON: cron("* * * * *"),
  ALERT_DEFAULT_CHANNEL: z.string().trim().regex(
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
    "must be a channel name (letters, digits, . _ -)",
  ).optional(),
  ALERT_REPEAT_INTERVAL_MIN: int(1, 7 * 24 * 60).default(240),
  ALERT_NOTIFY_TIMEOUT_MS: int(100, 60_000).default(5_000),
  GITHUB_SOURCE: z.string().trim().regex(
    /^(public|org:[A-Za-z0-9_.-]+|repo:[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+)(\s*,\s*(public|org:[A-Za-z0-9_.-]+|repo:[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+))*$/,
    "must be public, org:NAME, repo:OWNER/NAME, or a comma-separated list of them",
  ).default("public"),
  GITHUB_TOKEN: z.string().optional(),
  GITHUB_API_URL: z.url({ protocol: /^https?$/, error: "must be an http(s) URL" })
    .default("https://api.github.com"),
  GITHUB_SERVICE: z.string().regex(SERVICE_NAME, "must be a valid service name")
    .default("github"),
  GITHUB_TIMEOUT_S: int(1, 300).default(10),
  GITHUB_POLL_INTERVAL_S: int(1, 86400).default(60),
  GITHUB_WEBHOOK_SECRET: z.string().optional(),
  ROLLUP_RETENTION_DAYS: int(1, 3650).optional(),
  ROLLUP_MAX_EVENT_TYPES: int(1, 10_000).default(100),
  OAUTH_GITHUB_CLIENT_ID: z.string().trim().optional(),
  OAUTH_GITHUB_CLIENT_SECRET: z.string().trim().optional(),
  OAUTH_GITHUB_URL: providerUrl.default("https://github.com"),
  OAUTH_GITHUB_API_URL: providerUrl.default("https://api.github.com"),
  OIDC_ISSUER: providerUrl.optional(),
  OIDC_CLIENT_ID: z.string().trim().optional(),
  OIDC_CLIENT_SECRET: z.string().trim().optional(),
  PUBLIC_URL: httpUrl.optional(),
  SESSION_TTL_HOURS: int(1, 24 * 365).default(12),
  ADMIN_USERS: z.string().optional(),
});

export type Config = Readonly<{
  port: number;
  host: string;
  databaseUrl: string | undefined;
  dataDir: string;
  embeddedPgPort: number;
  dbPoolMax: number;
  dbConnectTimeoutS: number;
  logLevel: z.infer<typeof schema>["LOG_LEVEL"];
  logFormat: "json" | "pretty";
  retentionDays: number;
  /** Days of audit log entries kept (the pruner deletes older ones). */
  auditRetentionDays: number;
  apiKeys: readonly string[];
  /** GET /metrics needs a key with the metrics right (reader or admin) once keys exist. */
  metricsRequireKey: boolean;
  seedServices: readonly { name: string; teamOwner: string | null }[];
  shutdownTimeoutS: number;
  migrateOnStart: boolean;
  maxBodyBytes: number;
  /** Request bodies POST /logs may hold at once before answering 503 (see IngestAdmission). */
  ingestMaxInflightBytes: number;
  /** Longest a request body may take to arrive before 408 (POST /logs). */
  bodyReadTimeoutMs: number;
  /** Longest POST /logs waits for its commit before answering 503 (see EventWriter). */
  ingestCommitTimeoutMs: number;
  /** Hours an idempotency key (event_id, Idempotency-Key) is remembered, at least. */
  ingestDedupeHours: number;
  liveHeartbeatS: number;
  /** Longest a log query may run (GET /logs, the live feed's reads); 0: no limit. */
  queryTimeoutMs: number;
  ingestCron: string;
  pruneCron: string;
  alertCron: string;
  /** The channel (by name) for alerts with neither a rule channel nor a team channel. */
  alertDefaultChannel: string | undefined;
  /** A firing alert's notice is repeated this often while it keeps firing. */
  alertRepeatIntervalMin: number;
  /** Longest one notification attempt may take. */
  alertNotifyTimeoutMs: number;
  /** Each entry: "public", "org:NAME" or "repo:OWNER/NAME". */
  githubSources: readonly string[];
  githubToken: string | undefined;
  githubApiUrl: string;
  githubService: string;
  githubTimeoutS: number;
  githubPollIntervalS: number;
  /**
   * Secrets a webhook delivery may be signed with (X-Hub-Signature-256); several while one is
   * rotated. Empty: POST /webhooks/github does not exist (404).
   */
  githubWebhookSecrets: readonly string[];
  /** Days of rollups kept; defaults to retentionDays. */
  rollupRetentionDays: number;
  /**
   * Event types a rollup row (service and minute, hour or day) keeps, and a summary lists; the
   * events of any other type are counted under "(other)".
   */
  rollupMaxEventTypes: number;
  /** Sign-in for people (OAuth 2 / OIDC); both providers null: sign-in is off. */
  signIn: SignInSettings;
}>;

export type SignInSettings = Readonly<{
  github: Readonly<{ clientId: string; clientSecret: string; url: string; apiUrl: string }> | null;
  oidc: Readonly<{ issuer: string; clientId: string; clientSecret: string }> | null;
  /** The external base URL (no trailing slash) for redirect_uri; else taken from the request. */
  publicUrl: string | undefined;
  sessionTtlHours: number;
  /** Logins or emails made admin at each sign-in, lowercased. */
  adminUsers: readonly string[];
}>;

export class ConfigError extends Error {
  constructor(readonly variable: string, readonly reason: string) {
    super(`invalid configuration: ${variable}: ${reason}`);
    this.name = "ConfigError";
  }
}

/** Parses the environment; throws ConfigError naming the first bad variable. */
export function parseConfig(
  env: Record<string, string | undefined>,
  opts: { stdoutIsTerminal?: boolean } = {},
): Config {
  // An empty value means "unset", as with most twelve-factor apps.
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const parsed = schema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(String(issue.path[0] ?? "environment"), issue.message);
  }
  const e = parsed.data;
  const pair = (idVar: string, id?: string, secretVar?: string, secret?: string) => {
    if (!!id !== !!secret) {
      throw new ConfigError(
        id ? secretVar! : idVar,
        `must be set together with ${id ? idVar : secretVar}`,
      );
    }
    return !!id;
  };
  const github = pair(
    "OAUTH_GITHUB_CLIENT_ID",
    e.OAUTH_GITHUB_CLIENT_ID,
    "OAUTH_GITHUB_CLIENT_SECRET",
    e.OAUTH_GITHUB_CLIENT_SECRET,
  );
  const oidc = pair("OIDC_CLIENT_ID", e.OIDC_CLIENT_ID, "OIDC_CLIENT_SECRET", e.OIDC_CLIENT_SECRET);
  if (oidc !== !!e.OIDC_ISSUER) {
    throw new ConfigError(
      oidc ? "OIDC_ISSUER" : "OIDC_CLIENT_ID",
      "OIDC_ISSUER, OIDC_CLIENT_ID and OIDC_CLIENT_SECRET go together",
    );
  }
  const noSlash = (u: string) => u.replace(/\/+$/, "");
  const keys = [e.API_KEYS, e.API_KEY].filter((v): v is string => !!v)
    .flatMap((v) => v.split(",")).map((k) => k.trim()).filter(Boolean);
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.OBSERVIAN_DATA_DIR,
    embeddedPgPort: e.OBSERVIAN_PG_PORT,
    dbPoolMax: e.DB_POOL_MAX,
    dbConnectTimeoutS: e.DB_CONNECT_TIMEOUT_S,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT ?? (opts.stdoutIsTerminal ? "pretty" : "json"),
    retentionDays: e.RETENTION_DAYS,
    auditRetentionDays: e.AUDIT_RETENTION_DAYS,
    apiKeys: Object.freeze([...new Set(keys)]),
    metricsRequireKey: e.METRICS_REQUIRE_KEY,
    seedServices: Object.freeze(e.SEED_SERVICES),
    shutdownTimeoutS: e.SHUTDOWN_TIMEOUT_S,
    migrateOnStart: e.MIGRATE_ON_START,
    maxBodyBytes: e.MAX_BODY_BYTES,
    ingestMaxInflightBytes: e.INGEST_MAX_INFLIGHT_BYTES,
    bodyReadTimeoutMs: e.BODY_READ_TIMEOUT_MS,
    ingestCommitTimeoutMs: e.INGEST_COMMIT_TIMEOUT_MS,
    ingestDedupeHours: e.INGEST_DEDUPE_HOURS,
    liveHeartbeatS: e.LIVE_HEARTBEAT_S,
    queryTimeoutMs: e.QUERY_TIMEOUT_MS,
    ingestCron: e.INGEST_CRON,
    pruneCron: e.PRUNE_CRON,
    alertCron: e.ALERT_CRON,
    alertDefaultChannel: e.ALERT_DEFAULT_CHANNEL,
    alertRepeatIntervalMin: e.ALERT_REPEAT_INTERVAL_MIN,
    alertNotifyTimeoutMs: e.ALERT_NOTIFY_TIMEOUT_MS,
    githubSources: Object.freeze(e.GITHUB_SOURCE.split(",").map((s) => s.trim())),
    githubToken: e.GITHUB_TOKEN,
    githubApiUrl: e.GITHUB_API_URL.replace(/\/+$/, ""),
    githubService: e.GITHUB_SERVICE,
    githubTimeoutS: e.GITHUB_TIMEOUT_S,
    githubPollIntervalS: e.GITHUB_POLL_INTERVAL_S,
    githubWebhookSecrets: Object.freeze(
      (e.GITHUB_WEBHOOK_SECRET ?? "").split(",").map((s) => s.trim()).filter(Boolean),
    ),
    rollupRetentionDays: e.ROLLUP_RETENTION_DAYS ?? e.RETENTION_DAYS,
    rollupMaxEventTypes: e.ROLLUP_MAX_EVENT_TYPES,
    signIn: Object.freeze({
      github: github
        ? Object.freeze({
          clientId: e.OAUTH_GITHUB_CLIENT_ID!,
          clientSecret: e.OAUTH_GITHUB_CLIENT_SECRET!,
          url: noSlash(e.OAUTH_GITHUB_URL),
          apiUrl: noSlash(e.OAUTH_GITHUB_API_URL),
        })
        : null,
      oidc: oidc
        ? Object.freeze({
          // Kept as given: discovery compares the issuer exactly, trailing slash included.
          issuer: e.OIDC_ISSUER!,
          clientId: e.OIDC_CLIENT_ID!,
          clientSecret: e.OIDC_CLIENT_SECRET!,
        })
        : null,
      publicUrl: e.PUBLIC_URL ? noSlash(e.PUBLIC_URL) : undefined,
      sessionTtlHours: e.SESSION_TTL_HOURS,
      adminUsers: Object.freeze(
        (e.ADMIN_USERS ?? "").split(",").map((u) => u.trim().toLowerCase()).filter(Boolean),
      ),
    }),
  });
}
