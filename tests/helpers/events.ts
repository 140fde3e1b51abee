// An event as the writer takes it: a plain 200 for auth-service now, with what a test varies.
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
