// POST /webhooks/github: GitHub's signed deliveries, each stored as one log event through the
// writer (the same group commit as POST /logs). Public: GitHub authenticates by the signature.
import type { OpenAPIHono } from "@hono/zod-openapi";
import { z } from "@hono/zod-openapi";
import { InvalidInputError, NotFoundError, UnauthorizedError } from "../../errors.ts";
import type { AdmissionLease } from "../../ingest/admission.ts";
import { insertMarker } from "../../ingest/markers.ts";
import { EVENT_HELD_BYTES } from "../../ingest/validate.ts";
import {
  EVENT_NAME,
  fromDelivery,
  signatureMatches,
  wellFormedSignature,
} from "../../jobs/github/webhook.ts";
import { AtCapacityError, leasedRead, readText } from "../body.ts";
import type { AppContext } from "../context.ts";
import { needs, requireRight } from "../middleware/auth.ts";
import { problemResponse, retryLaterResponse } from "../openapi.ts";

const Ping = z.object({
  hook_id: z.number().int().nullable().openapi({ example: 109948940 }),
}).openapi("WebhookPing");

const Stored = z.object({
  id: z.number().int().min(1).openapi({ example: 1042 }),
  service_name: z.string().openapi({ example: "octo-org/octo-repo" }),
  event_type: z.string().nullable().openapi({ example: "workflow_run.completed" }),
  status_code: z.number().int().openapi({ example: 200 }),
}).openapi("WebhookStored");

/** GitHub's delivery ids are GUIDs; anything printable of sane length is kept as the key. */
const DELIVERY = /^[\x21-\x7e]{1,100}$/;

const encoder = new TextEncoder();

export function webhookRoutes(app: OpenAPIHono, ctx: AppContext): void {
  app.openAPIRegistry.registerPath({
    method: "post",
    path: "/webhooks/github",
    operationId: "githubWebhook",
    tags: ["webhooks"],
    ...needs("public"),
    summary: "Receive a GitHub webhook delivery",
    description: "Set up in GitHub (repository or organisation → Settings → Webhooks) with this " +
      "URL, content type application/json and the secret in GITHUB_WEBHOOK_SECRET. Each " +
      "delivery is checked against X-Hub-Signature-256 and stored as one log event (service: " +
      "the repository; event type: X-GitHub-Event and the payload's action), keyed by " +
      "X-GitHub-Delivery so a redelivery stores nothing new. A completed workflow_run or " +
      "check_suite carries its conclusion as the status and its run time as the latency. " +
      "Without GITHUB_WEBHOOK_SECRET the route does not exist (404).",
    request: {
      headers: z.object({
        "x-hub-signature-256": z.string().openapi({
          description: "sha256= and the hex HMAC-SHA256 of the body under the secret",
          example: "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        }),
        "x-github-event": z.string().regex(EVENT_NAME).openapi({ example: "pull_request" }),
        "x-github-delivery": z.string().regex(DELIVERY).openapi({
          example: "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        }),
      }),
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z.record(z.string(), z.unknown()).openapi({
              description: "The event's payload, as GitHub sends it",
              example: { zen: "Design for failure.", hook_id: 109948940 },
            }),
          },
        },
      },
    },
    responses: {
      200: {
        description: "A ping answered, or the event stored (or already stored by an earlier " +
          "delivery of the same X-GitHub-Delivery)",
        content: { "application/json": { schema: z.union([Stored, Ping]) } },
      },
      400: problemResponse(
        "Signed, but not a JSON object, or X-GitHub-Event / X-GitHub-Delivery missing or bad",
      ),
      401: problemResponse("X-Hub-Signature-256 missing or not made with a configured secret"),
      404: problemResponse("GITHUB_WEBHOOK_SECRET is not set: webhooks are off"),
      408: problemResponse("The body did not arrive within BODY_READ_TIMEOUT_MS"),
      413: problemResponse("Body larger than MAX_BODY_BYTES"),
      415: problemResponse("Content type other than application/json or form-encoded"),
      503: retryLaterResponse(
        "Ingest is at capacity, or the commit failed or did not finish in time; nothing was " +
          "acknowledged, so GitHub marks the delivery failed and it can be redelivered",
      ),
    },
  });

  app.post(
    "/webhooks/github",
    requireRight(ctx.access, "public"),
    async function githubWebhook(c) {
      const secrets = ctx.config.githubWebhookSecrets;
      if (secrets.length === 0) {
        throw new NotFoundError("GitHub webhooks are off: set GITHUB_WEBHOOK_SECRET");
      }
      const signature = c.req.header("x-hub-signature-256");
      // Refused before the body is read: nothing unsigned costs more than its headers.
      if (!wellFormedSignature(signature)) throw badSignature("is missing or malformed");
      const lease = ctx.admission.lease();
      try {
        const body = await readBody(c.req.raw, lease, ctx);
        if (!await signatureMatches(secrets, encoder.encode(body), signature)) {
          throw badSignature("does not match the body under any configured secret");
        }
        const event = header(c.req.header("x-github-event"), EVENT_NAME, "x-github-event");
        const delivery = header(c.req.header("x-github-delivery"), DELIVERY, "x-github-delivery");
        const d = fromDelivery(
          {
            event,
            delivery,
            payload: payloadOf(body, c.req.header("content-type")),
            now: new Date(),
          },
          ctx.config,
        );
        if (!d) {
          throw new InvalidInputError(
            [{ field: "(body)", message: "must be a JSON object (a GitHub event payload)" }],
            "malformed",
          );
        }
        if (d.kind === "ping") return c.json({ hook_id: d.hookId }, 200);
        if (!lease.tryGrow(EVENT_HELD_BYTES)) throw new AtCapacityError();
        const [id] = await ctx.writer.write([d.event]);
        // After the event's commit, which registered the service; a failure here is a 503, and
        // the redelivery stores the marker (the event is then a duplicate).
        if (d.marker) await insertMarker(ctx.sql, d.marker);
        return c.json({
          id,
          service_name: d.event.serviceName,
          event_type: d.event.eventType,
          status_code: d.event.statusCode,
        }, 200);
      } finally {
        lease.release();
      }
    },
  );
}

async function readBody(req: Request, lease: AdmissionLease, ctx: AppContext): Promise<string> {
  // The signature covers the bytes as sent, so they are read as sent: no Content-Encoding.
  if ((req.headers.get("content-encoding") ?? "identity").trim().toLowerCase() !== "identity") {
    throw new InvalidInputError(
      [{ field: "content-encoding", message: "GitHub sends bodies uncompressed" }],
      "unsupported",
    );
  }
  // At capacity: 503, so GitHub marks the delivery failed and it can be redelivered.
  return await readText(req, leasedRead(lease, ctx.config));
}

/** The payload of either content type GitHub offers (JSON, or form-encoded `payload=`). */
function payloadOf(body: string, contentType: string | undefined): unknown {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  let json: string | null = body;
  if (type === "application/x-www-form-urlencoded") {
    json = new URLSearchParams(body).get("payload");
  } else if (type !== "application/json") {
    throw new InvalidInputError(
      [{
        field: "content-type",
        message: `must be application/json or application/x-www-form-urlencoded, not "${
          type || "(none)"
        }"`,
      }],
      "unsupported",
    );
  }
  try {
    return JSON.parse(json ?? "");
  } catch {
    return null;
  }
}

function header(value: string | undefined, rule: RegExp, field: string): string {
  if (value === undefined || !rule.test(value)) {
    throw new InvalidInputError(
      [{ field, message: value === undefined ? "is required" : `does not match ${rule.source}` }],
      "malformed",
    );
  }
  return value;
}

const badSignature = (why: string) =>
  new UnauthorizedError(`X-Hub-Signature-256 ${why}; nothing was stored`);
