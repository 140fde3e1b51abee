// From a GitHub event to a log event: one in, one out (or a reason to skip it). Pure: no I/O,
// the clock and the answer's status and latency passed in.
import { type Config, SERVICE_NAME } from "../../config.ts";
import type { NewEvent } from "../../ingest/validate.ts";
import { DAY_MS } from "../../time.ts";
import type { Source } from "./client.ts";

/** A log event with the GitHub id it came from (its exactly-once key). */
export interface GitHubRow extends NewEvent {
  githubId: string;
  attributes: Record<string, unknown>;
}

export type MapResult = { row: GitHubRow } | { skip: "too_old" | "invalid" };

const clean = (v: unknown, max = 200): string | undefined =>
  typeof v === "string" && v !== "" ? v.replaceAll("\0", "").slice(0, max) : undefined;

/**
 * One GitHub event → one log event. Only the envelope is read (id, type, created_at, actor,
 * repo, org, payload.action): payloads differ per type and change over time (PushEvent lost
 * its commits in 2025), and none of them is needed for a log line.
 */
export function toLogEvent(
  ev: unknown,
  ctx: {
    source: Source;
    config: Config;
    statusCode: number;
    latencyMs: number;
    now: Date;
  },
): MapResult {
  if (!ev || typeof ev !== "object" || Array.isArray(ev)) return { skip: "invalid" };
  const e = ev as Record<string, unknown>;
  const id = typeof e.id === "string" || typeof e.id === "number" || typeof e.id === "bigint"
    ? clean(String(e.id), 100)
    : undefined;
  const createdAt = typeof e.created_at === "string" ? new Date(e.created_at) : null;
  if (!id || !createdAt || Number.isNaN(createdAt.getTime())) return { skip: "invalid" };
  const now = ctx.now.getTime();
  if (createdAt.getTime() < now - ctx.config.retentionDays * DAY_MS) return { skip: "too_old" };
  if (createdAt.getTime() > now + DAY_MS) return { skip: "invalid" };

  const obj = (v: unknown) => (v && typeof v === "object" ? v : {}) as Record<string, unknown>;
  const type = clean(e.type);
  const repo = clean(obj(e.repo).name);
  const actor = clean(obj(e.actor).login) ?? clean(obj(e.actor).display_login);
  const org = clean(obj(e.org).login);
  const action = clean(obj(e.payload).action);
  const attributes: Record<string, unknown> = { github_id: id };
  if (repo) attributes.repo = repo;
  if (actor) attributes.actor = actor;
  if (org) attributes.org = org;
  if (action) attributes.action = action;

  // Org and repo streams are per repository; the public firehose would register thousands
  // of services, so it goes under one name.
  const serviceName = ctx.source.kind !== "public" && repo && SERVICE_NAME.test(repo)
    ? repo
    : ctx.config.githubService;
  const what = [type ?? "event", action].filter(Boolean).join(" ");
  return {
    row: {
      githubId: id,
      serviceName,
      timestamp: createdAt,
      statusCode: ctx.statusCode,
      eventType: type ?? null,
      latencyMs: Math.max(0, Math.round(ctx.latencyMs * 100) / 100),
      message: `${what}${repo ? ` on ${repo}` : ""}${actor ? ` by ${actor}` : ""}`,
      attributes,
    },
  };
}
