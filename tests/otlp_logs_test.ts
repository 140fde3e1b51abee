// POST /v1/logs (issue 14): log records exported by the real OpenTelemetry JS SDK, over both
// OTLP/HTTP encodings, to a real server. Records that describe a request become events (checked
// field by field); the others are counted in partialSuccess and not stored.
import assert from "node:assert/strict";
import { context, trace, TraceFlags } from "@opentelemetry/api";
import { SeverityNumber } from "@opentelemetry/api-logs";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  InMemoryLogRecordExporter,
  LoggerProvider,
  type ReadableLogRecord,
  SimpleLogRecordProcessor,
} from "@opentelemetry/sdk-logs";
import { OTLPLogExporter as ProtoExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { OTLPLogExporter as JsonExporter } from "@opentelemetry/exporter-logs-otlp-http";
import protobuf from "protobufjs";
import { buildApp } from "../src/app.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const db = await preparedDatabase();
const ENV_KEY = "env-admin-key-0123456789";
const app = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: ENV_KEY }) });
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
const LOGS = `http://127.0.0.1:${server.addr.port}/v1/logs`;
globalThis.addEventListener("unload", () => void server.shutdown());

const created = await app.request("/keys", {
  method: "POST",
  headers: { "x-api-key": ENV_KEY, "content-type": "application/json" },
  body: JSON.stringify({ name: "otel-logs", role: "writer" }),
});
assert.equal(created.status, 201);
const AUTH = { authorization: `Bearer ${(await created.json()).token}` };

const uniq = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

type Encoding = "protobuf" | "json";

function exporter(encoding: Encoding, gzip: boolean) {
  const config = { url: LOGS, headers: AUTH, compression: (gzip ? "gzip" : "none") as never };
  return encoding === "protobuf" ? new ProtoExporter(config) : new JsonExporter(config);
}

function send(
  exp: ProtoExporter | JsonExporter,
  records: ReadableLogRecord[],
): Promise<{ code: number; error?: Error }> {
  return new Promise((resolve) => exp.export(records, resolve));
}

/** Records of one service, emitted through the SDK's logger and collected in memory. */
function logger(service: string) {
  const memory = new InMemoryLogRecordExporter();
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ "service.name": service }),
    processors: [new SimpleLogRecordProcessor({ exporter: memory })],
  });
  return {
    log: provider.getLogger("otlp-logs-test"),
    records: () => memory.getFinishedLogRecords(),
  };
}

async function stored(service: string) {
  return await db.sql`
    select e."timestamp", e.status_code, e.event_type, e.latency_ms, e.message, e.attributes
    from log_events e join services s on s.id = e.service_id
    where s.name = ${service} order by e.event_type`;
}

const T0 = Date.now() - 60_000;
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID = "00f067aa0ba902b7";

for (const encoding of ["protobuf", "json"] as const) {
  for (const gzip of [false, true]) {
    dbTest(
      `[otlp-logs] ${encoding}${gzip ? " gzip" : ""}: request records become events`,
      async () => {
        const svc = uniq(`otel-logs-${encoding}`);
        const { log, records } = logger(svc);
        const inSpan = trace.setSpanContext(context.active(), {
          traceId: TRACE_ID,
          spanId: SPAN_ID,
          traceFlags: TraceFlags.SAMPLED,
        });
        log.emit({
          timestamp: new Date(T0),
          severityNumber: SeverityNumber.ERROR,
          severityText: "ERROR",
          body: "upstream timed out",
          attributes: {
            "http.request.method": "POST",
            "http.route": "/checkout",
            "http.response.status_code": 503,
            "http.server.request.duration": 0.0125,
            "url.full": "https://shop.example.com/checkout?card=4111",
          },
          context: inSpan,
        });
        log.emit({
          timestamp: new Date(T0 + 1),
          eventName: "cache.refresh",
          body: "refreshed 12 keys",
          attributes: { "http.response.status_code": 200, duration_ms: 4.5 },
        });
        log.emit({
          timestamp: new Date(T0 + 2),
          body: "GET /missing\nstack: none",
          attributes: { "http.status_code": "404", duration_ms: 1 },
        });
        log.emit({ timestamp: new Date(T0 + 3), body: "user signed in" });
        log.emit({
          timestamp: new Date(T0 + 4),
          body: "no duration",
          attributes: { "http.response.status_code": 200 },
        });

        const result = await send(exporter(encoding, gzip), records());
        assert.equal(result.code, 0, String(result.error));

        const rows = await stored(svc);
        assert.equal(rows.length, 3, "the two records that are not requests are not stored");
        const byType = (t: string) => rows.find((r) => r.event_type === t)!;
        const checkout = byType("POST /checkout");
        const cache = byType("cache.refresh");
        const missing = byType("GET /missing");

        assert.equal(checkout.event_type, "POST /checkout");
        assert.equal(checkout.status_code, 503);
        assert.equal(checkout.latency_ms, 12.5, "seconds to milliseconds");
        assert.equal(checkout.timestamp.getTime(), T0);
        assert.equal(checkout.message, "upstream timed out");
        assert.deepEqual(checkout.attributes, {
          trace_id: TRACE_ID,
          span_id: SPAN_ID,
          severity: "ERROR",
          "http.request.method": "POST",
          "http.route": "/checkout",
        });

        assert.equal(cache.event_type, "cache.refresh", "eventName when there is no route");
        assert.equal(cache.status_code, 200);
        assert.equal(cache.latency_ms, 4.5);
        assert.equal(cache.message, "refreshed 12 keys");
        assert.deepEqual(cache.attributes, {});

        assert.equal(missing.event_type, "GET /missing", "the body's first line, without a name");
        assert.equal(missing.status_code, 404);
        assert.equal(missing.latency_ms, 1);

        // An exporter's retry of the same records stores nothing new.
        assert.equal((await send(exporter(encoding, gzip), records())).code, 0);
        assert.equal((await stored(svc)).length, 3);
      },
    );
  }
}

dbTest("[otlp-logs] what is not stored is counted in partialSuccess with the reason", async () => {
  const svc = uniq("otel-logs-partial");
  const ns = (ms: number) => `${BigInt(ms) * 1_000_000n}`;
  const attrs = (status: unknown, extra: unknown[] = []) => [
    { key: "http.response.status_code", value: status },
    ...extra,
  ];
  const dur = { key: "duration_ms", value: { doubleValue: 3 } };
  const res = await fetch(LOGS, {
    method: "POST",
    headers: { ...AUTH, "content-type": "application/json" },
    body: JSON.stringify({
      resourceLogs: [{
        resource: { attributes: [{ key: "service.name", value: { stringValue: svc } }] },
        scopeLogs: [{
          logRecords: [
            // No time of its own: the observed time stands in.
            {
              timeUnixNano: "0",
              observedTimeUnixNano: ns(T0),
              eventName: "observed",
              attributes: attrs({ intValue: "201" }, [dur]),
            },
            { timeUnixNano: ns(T0), body: { stringValue: "plain text" } },
            { timeUnixNano: ns(T0), attributes: attrs({ intValue: "200" }) },
            {
              timeUnixNano: ns(Date.UTC(1990, 0, 1)),
              attributes: attrs({ intValue: "200" }, [dur]),
            },
            { timeUnixNano: ns(T0), attributes: attrs({ intValue: "999" }, [dur]) },
            {
              timeUnixNano: ns(T0),
              attributes: attrs({ intValue: "200" }, [
                { key: "duration_ms", value: { doubleValue: -1 } },
              ]),
            },
            "not a record",
          ],
        }],
      }],
    }),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.partialSuccess.rejectedLogRecords, "6");
  const message: string = body.partialSuccess.errorMessage;
  assert.match(message, /^6 log record\(s\) not stored: /);
  assert.match(message, /logRecords\[1\]: not a request/);
  assert.match(message, /logRecords\[2\]: has a status code but no duration/);
  assert.match(message, /retention window/);
  assert.match(message, /http\.response\.status_code must be/);
  assert.match(message, /duration_ms must be a non-negative number/);
  const rows = await stored(svc);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].event_type, "observed");
  assert.equal(rows[0].status_code, 201);
  assert.equal(rows[0].timestamp.getTime(), T0);

  const empty = await fetch(LOGS, {
    method: "POST",
    headers: { ...AUTH, "content-type": "application/json" },
    body: JSON.stringify({ resourceLogs: [] }),
  });
  assert.deepEqual(await empty.json(), {});
});

dbTest("[otlp-logs] protobuf answers in protobuf; an undecodable body is 400", async () => {
  const svc = uniq("otel-logs-proto");
  const { log, records } = logger(svc);
  log.emit({ timestamp: new Date(T0), body: "just text" });
  // The exporter succeeds (a partial success is a success); the answer itself is read raw.
  assert.equal((await send(exporter("protobuf", false), records())).code, 0);

  const Root = protobuf.Root.fromJSON({
    nested: {
      Partial: {
        fields: {
          rejectedLogRecords: { type: "int64", id: 1 },
          errorMessage: { type: "string", id: 2 },
        },
      },
      Response: { fields: { partialSuccess: { type: "Partial", id: 1 } } },
      Status: { fields: { code: { type: "int32", id: 1 }, message: { type: "string", id: 2 } } },
    },
  });
  // ExportLogsServiceRequest{resourceLogs[{scopeLogs[{logRecords[{body "x"}]}]}]} by hand.
  const recordBytes = [0x2a, 0x03, 0x0a, 0x01, 0x78];
  const scope = [0x12, recordBytes.length, ...recordBytes];
  const resource = [0x12, scope.length, ...scope];
  const request = new Uint8Array([0x0a, resource.length, ...resource]);
  const res = await fetch(LOGS, {
    method: "POST",
    headers: { ...AUTH, "content-type": "application/x-protobuf" },
    body: request,
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/x-protobuf");
  const Response = Root.lookupType("Response");
  const answer = Response.toObject(Response.decode(new Uint8Array(await res.arrayBuffer())), {
    longs: String,
  });
  assert.equal(answer.partialSuccess.rejectedLogRecords, "1");
  assert.match(answer.partialSuccess.errorMessage, /not a request/);

  const bad = await fetch(LOGS, {
    method: "POST",
    headers: { ...AUTH, "content-type": "application/x-protobuf" },
    body: new Uint8Array([0x0a, 0x05, 0x01]),
  });
  assert.equal(bad.status, 400);
  const Status = Root.lookupType("Status");
  const status = Status.toObject(Status.decode(new Uint8Array(await bad.arrayBuffer())));
  assert.equal(status.code, 3);
  assert.match(status.message, /ExportLogsServiceRequest/);
});
