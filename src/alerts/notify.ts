// Notices for alerts: Alertmanager's webhook format (so receivers built for Alertmanager work
// unchanged), optionally signed, or a Slack incoming-webhook message. Each attempt is bounded in
// time and recorded; 5xx and network errors are retried with backoff, 4xx are not.
import { createHmac } from "node:crypto";
import type { Sql } from "../db/connect.ts";
import { sleep } from "../time.ts";
import type { Observation } from "./evaluate.ts";
import type { AlertRow } from "./state.ts";

export interface ChannelDef {
  id: number;
  name: string;
  type: "webhook" | "slack";
  url: string;
  secret: string | null;
}

export interface Notice {
  status: "firing" | "resolved";
  row: AlertRow;
  obs: Observation;
}

export interface DeliveryOptions {
  timeoutMs: number;
  /** Waits before the 2nd, 3rd… attempt; attempts = length + 1. */
  backoffMs: readonly number[];
  /** Where the console is (PUBLIC_URL), for links; "" when unknown. */
  publicUrl: string;
  onOutcome?: (channelType: string, outcome: Outcome) => void;
}

export const OUTCOMES = ["delivered", "failed", "rejected"] as const;
export type Outcome = typeof OUTCOMES[number];

/** Alertmanager's "zero" time: what endsAt holds while an alert fires. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

export function labelsOf(n: Notice): Record<string, string> {
  return {
    ...n.obs.labels,
    alertname: n.obs.name,
    service: n.obs.service.name,
    ...(n.obs.service.team ? { team: n.obs.service.team } : {}),
    severity: n.obs.severity,
  };
}

function consoleUrl(base: string, service: string): string {
  return `${base}/services/${encodeURIComponent(service)}`;
}

/** The body Alertmanager sends to a webhook receiver (version 4), for one alert. */
export function alertmanagerBody(n: Notice, receiver: string, publicUrl: string) {
  const labels = labelsOf(n);
  const annotations = {
    summary: `${n.obs.name} on ${n.obs.service.name}`,
    description: n.obs.summary,
    value: n.row.value === null ? "" : String(n.row.value),
  };
  return {
    version: "4",
    groupKey: `{}:{alertname=${JSON.stringify(labels.alertname)}, service=${
      JSON.stringify(labels.service)
    }}`,
    truncatedAlerts: 0,
    status: n.status,
    receiver,
    groupLabels: { alertname: labels.alertname, service: labels.service },
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: publicUrl,
    alerts: [{
      status: n.status,
      labels,
      annotations,
      startsAt: (n.row.firedAt ?? n.row.since).toISOString(),
      endsAt: n.status === "resolved" ? (n.row.resolvedAt ?? new Date()).toISOString() : ZERO_TIME,
      generatorURL: consoleUrl(publicUrl, n.obs.service.name),
      fingerprint: fingerprint(n),
    }],
  };
}

/** A Slack incoming-webhook message: text (for notifications) and blocks. */
export function slackBody(n: Notice, publicUrl: string) {
  const icon = n.status === "firing" ? (n.obs.severity === "page" ? "🔴" : "🟠") : "✅";
  const team = n.obs.service.team ? ` (team ${n.obs.service.team})` : "";
  const text = `${icon} ${n.status === "firing" ? "FIRING" : "RESOLVED"} [${n.obs.severity}] ` +
    `${n.obs.name} on ${n.obs.service.name}${team}: ${n.obs.summary}`;
  const link = consoleUrl(publicUrl, n.obs.service.name);
  return {
    text,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text } },
      ...(publicUrl
        ? [{ type: "context", elements: [{ type: "mrkdwn", text: `<${link}|Open in Observian>` }] }]
        : []),
    ],
  };
}

function fingerprint(n: Notice): string {
  return createHmac("sha256", "observian").update(
    `${n.row.source}:${n.row.sourceId}:${n.row.alertKey}:${n.row.serviceId}`,
  ).digest("hex").slice(0, 16);
}

export function signature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * Sends the notice to the channel, retrying 5xx and network errors, each attempt recorded in
 * alert_deliveries. Resolves with the final outcome.
 */
export async function deliver(
  sql: Sql,
  channel: ChannelDef,
  n: Notice,
  opts: DeliveryOptions,
): Promise<Outcome> {
  const payload = channel.type === "slack"
    ? slackBody(n, opts.publicUrl)
    : alertmanagerBody(n, channel.name, opts.publicUrl);
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "Observian-Alerts",
  };
  if (channel.type === "webhook" && channel.secret) {
    headers["x-observian-signature-256"] = signature(channel.secret, body);
  }
  let outcome: Outcome = "failed";
  for (let attempt = 1; attempt <= opts.backoffMs.length + 1; attempt++) {
    if (attempt > 1) await sleep(opts.backoffMs[attempt - 2]);
    const started = performance.now();
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(channel.url, {
        method: "POST",
        headers,
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(opts.timeoutMs),
      });
      status = res.status;
      await res.body?.cancel();
      outcome = res.ok
        ? "delivered"
        : res.status >= 500 || res.status === 429
        ? "failed"
        : "rejected";
      if (!res.ok) error = `HTTP ${res.status}`;
    } catch (err) {
      outcome = "failed";
      error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
    await record(sql, channel, n, attempt, outcome, status, error, performance.now() - started);
    opts.onOutcome?.(channel.type, outcome);
    if (outcome !== "failed") break;
  }
  return outcome;
}

async function record(
  sql: Sql,
  channel: ChannelDef,
  n: Notice,
  attempt: number,
  outcome: Outcome,
  status: number | null,
  error: string | null,
  durationMs: number,
): Promise<void> {
  await sql`
    insert into alert_deliveries (channel_id, channel_name, service_id, source, source_id,
                                  alert_key, episode, status, attempt, outcome, http_status,
                                  error, duration_ms)
    values (${channel.id}, ${channel.name}, ${n.row.serviceId}, ${n.row.source},
            ${n.row.sourceId}, ${n.row.alertKey}, ${n.row.episode}, ${n.status}, ${attempt},
            ${outcome}, ${status}, ${error?.slice(0, 2000) ?? null}, ${durationMs})`;
}
