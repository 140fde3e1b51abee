// An event as the writer takes it: a plain 200 for auth-service now, with what a test varies.
import assert from "node:assert/strict";
import type { NewEvent } from "../../src/ingest/validate.ts";

export function newEvent(over: Partial<NewEvent> = {}): NewEvent {
  return {
    serviceName: "auth-service",
    timestamp: new Date(),
    statusCode: 200,
    eventType: null,
    latencyMs: 1,
    message: null,
    attributes: null,
    ...over,
  };
}

/** POSTs a JSON array of events through `app` and insists on 201. */
export async function postEvents(
  app: { request: (path: string, init: RequestInit) => Response | Promise<Response> },
  events: Record<string, unknown>[],
): Promise<void> {
  const res = await app.request("/logs", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  assert.equal(res.status, 201, await res.text());
}
