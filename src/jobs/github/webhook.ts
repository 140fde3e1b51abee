// GitHub webhook deliveries: the signature check and the mapping of a delivery to one log
// event, through the poller's own mapping (mapping.ts) so both name services, types and
// attributes alike. No I/O: the route reads the body and hands the event to the writer.
import type { Config } from "../../config.ts";
import type { NewMarker } from "../../ingest/markers.ts";
import { MAX_LATENCY_MS, type NewEvent } from "../../ingest/validate.ts";
import { toLogEvent } from "./mapping.ts";

const encoder = new TextEncoder();
const SIGNATURE = /^sha256=([0-9a-f]{64})$/i;

/** Whether the header has the one form GitHub sends (`sha256=` and 64 hex digits). */
export const wellFormedSignature = (header: string | undefined): header is string =>
  header !== undefined && SIGNATURE.test(header.trim());

/**
 * Whether `header` (X-Hub-Signature-256) is the HMAC-SHA256 of `body` under one of `secrets`.
 * Every secret is tried, whichever matches, so the time taken says nothing about which did.
 */
export async function signatureMatches(
  secrets: readonly string[],
  body: Uint8Array,
  header: string | undefined,
): Promise<boolean> {
  const m = header?.trim().match(SIGNATURE);
  if (!m) return false;
  const given = hexBytes(m[1]);
  let ok = false;
  for (const secret of secrets) {
    const key = await crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, body as BufferSource));
    if (constantTimeEqual(mac, given)) ok = true;
  }
  return ok;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Compares every byte whatever the first difference, so timing cannot guess a MAC. */
function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** X-GitHub-Event names: lower case and underscores (`pull_request`, `workflow_run`). */
export const EVENT_NAME = /^[a-z][a-z0-9_]{0,99}$/;

/**
 * A run's conclusion as an HTTP status, so CI health reads like a service's: summaries count
 * 5xx as errors. A conclusion GitHub adds later, or none, counts as 200 and is kept in the
 * attributes.
 */
export const CONCLUSION_STATUS: Readonly<Record<string, number>> = {
  success: 200,
  neutral: 200,
  skipped: 200,
  failure: 500,
  startup_failure: 500,
  cancelled: 499,
  timed_out: 504,
  action_required: 428,
  stale: 410,
};

/** Events whose completion carries an outcome and a run time (the object is named as they). */
const RUNS = new Set(["workflow_run", "check_suite"]);

const obj = (v: unknown) =>
  (v && typeof v === "object" && !Array.isArray(v) ? v : {}) as Record<string, unknown>;
const str = (v: unknown) => typeof v === "string" && v !== "" ? v : undefined;

/** Status and latency of a completed run: conclusion → status, updated_at − start → latency. */
function runOutcome(run: Record<string, unknown>) {
  const conclusion = str(run.conclusion);
  const end = Date.parse(str(run.updated_at) ?? "");
  const start = Date.parse(str(run.run_started_at) ?? str(run.created_at) ?? "");
  const ms = end - start;
  return {
    conclusion,
    statusCode: (conclusion && CONCLUSION_STATUS[conclusion]) || 200,
    latencyMs: Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_LATENCY_MS) : 0,
  };
}

export type Delivery =
  | { kind: "ping"; hookId: number | null }
  | { kind: "event"; event: NewEvent; marker: NewMarker | null };

/**
 * A deployment's status (each state: pending, success, failure…) or a published release marks
 * "what changed" for charts; other release actions (created, edited, deleted) do not.
 */
function markerOf(
  event: string,
  p: Record<string, unknown>,
  at: { serviceName: string; at: Date; delivery: string },
): NewMarker | null {
  const url = (v: unknown) => str(v)?.slice(0, 2000) ?? null;
  if (event === "deployment_status") {
    const status = obj(p.deployment_status);
    const env = str(obj(p.deployment).environment) ?? str(status.environment) ?? "deployment";
    const state = str(status.state) ?? "unknown";
    return {
      ...at,
      kind: "deployment",
      title: `${env}: ${state}`.slice(0, 300),
      url: url(status.target_url) ?? url(status.log_url) ?? url(status.environment_url),
    };
  }
  if (event === "release" && p.action === "published") {
    const release = obj(p.release);
    const name = str(release.name) ?? str(release.tag_name) ?? "release";
    return { ...at, kind: "release", title: name.slice(0, 300), url: url(release.html_url) };
  }
  return null;
}

/**
 * One delivery, already verified: a ping, or one log event keyed by the delivery id (so a
 * redelivery stores nothing new). Null when the payload is not a JSON object.
 */
export function fromDelivery(
  d: { event: string; delivery: string; payload: unknown; now: Date },
  config: Config,
): Delivery | null {
  if (!d.payload || typeof d.payload !== "object" || Array.isArray(d.payload)) return null;
  const p = d.payload as Record<string, unknown>;
  if (d.event === "ping") {
    return { kind: "ping", hookId: typeof p.hook_id === "number" ? p.hook_id : null };
  }
  const action = str(p.action);
  const completed = RUNS.has(d.event) && action === "completed";
  const outcome = completed ? runOutcome(obj(p[d.event])) : undefined;
  // In the shape of an Events API event, so the poller's mapping reads it as its own.
  const envelope = {
    id: d.delivery,
    type: d.event,
    created_at: d.now.toISOString(),
    repo: { name: obj(p.repository).full_name },
    actor: { login: obj(p.sender).login },
    org: { login: obj(p.organization).login },
    payload: { action },
  };
  const m = toLogEvent(envelope, {
    source: { key: "webhook", kind: "repo", path: "" },
    config,
    statusCode: outcome?.statusCode ?? 200,
    latencyMs: outcome?.latencyMs ?? 0,
    now: d.now,
  });
  if ("skip" in m) return null;
  const { githubId, attributes, ...row } = m.row;
  const { github_id: _, ...rest } = attributes;
  const extra: Record<string, unknown> = { delivery: githubId, event: d.event, ...rest };
  if (outcome?.conclusion) extra.conclusion = outcome.conclusion;
  const url = str(obj(p[d.event]).html_url);
  if (completed && url) extra.url = url.slice(0, 500);
  const marker = markerOf(d.event, p, {
    serviceName: row.serviceName,
    at: row.timestamp,
    delivery: githubId,
  });
  return {
    kind: "event",
    marker,
    event: {
      ...row,
      eventType: row.eventType && action
        ? `${row.eventType}.${action}`.slice(0, 200)
        : row.eventType,
      attributes: extra,
      key: `gh:${githubId}`,
    },
  };
}
