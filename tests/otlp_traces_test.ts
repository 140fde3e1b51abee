// POST /v1/traces (issue 14): spans exported by the real OpenTelemetry JS SDK, over both OTLP/HTTP
// encodings, to a real server; server spans become request events, checked field by field.
import assert from "node:assert/strict";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { OTLPTraceExporter as ProtoExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { OTLPTraceExporter as JsonExporter } from "@opentelemetry/exporter-trace-otlp-http";
import protobuf from "protobufjs";
import { buildApp } from "../src/app.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { eventually } from "./helpers/wait.ts";

const db = await preparedDatabase();
const ENV_KEY = "env-admin-key-0123456789";
const app = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: ENV_KEY }) });
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
const base = `http://127.0.0.1:${server.addr.port}`;
const TRACES = `${base}/v1/traces`;

const created = await app.request("/keys", {
  method: "POST",
  headers: { "x-api-key": ENV_KEY, "content-type": "application/json" },
  body: JSON.stringify({ name: "otel", role: "writer" }),
});
assert.equal(created.status, 201);
const WRITER = (await created.json()).token as string;
const AUTH = { authorization: `Bearer ${WRITER}` };

const uniq = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

type Encoding = "protobuf" | "json";

function exporter(encoding: Encoding, opts: { gzip?: boolean; headers?: Record<string, string> }) {
  const config = {
    url: TRACES,
    headers: opts.headers ?? AUTH,
    // The SDK's CompressionAlgorithm enum, whose values are these strings.
    compression: (opts.gzip ? "gzip" : "none") as never,
  };
  return encoding === "protobuf" ? new ProtoExporter(config) : new JsonExporter(config);
}

/** Exports `spans` through the real OTLP exporter; resolves with the SDK's ExportResult. */
function send(
  exp: ProtoExporter | JsonExporter,
  spans: ReadableSpan[],
): Promise<{ code: number; error?: Error & { code?: number } }> {
  return new Promise((resolve) => exp.export(spans, resolve));
}

/** [seconds, nanoseconds] of a time `msAgo` before T0 plus `extraNs`: one clock for a test. */
const T0 = Date.now();
function hr(msAgo: number, extraNs = 0): [number, number] {
  const ms = T0 - msAgo;
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6 + extraNs];
}
const hrMs = (t: [number, number]) => t[0] * 1000 + t[1] / 1e6;

/** Spans of one service, finished and collected in memory (as an SDK processor hands them on). */
function record(service: string | null) {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes(service === null ? {} : { "service.name": service }),
    spanProcessors: [new SimpleSpanProcessor(memory)],
  });
  const tracer = provider.getTracer("otlp-test");
  return {
    span(
      name: string,
      kind: SpanKind,
      attributes: Record<string, string | number>,
      start: [number, number],
      end: [number, number],
      error = false,
    ) {
      const span = tracer.startSpan(name, { kind, attributes, startTime: start });
      if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: "boom" });
      span.end(end);
      return span.spanContext();
    },
    spans: () => memory.getFinishedSpans(),
  };
}

async function stored(service: string) {
  return await db.sql`
    select s.name, e."timestamp", e.status_code, e.event_type, e.latency_ms, e.message,
           e.attributes
    from log_events e join services s on s.id = e.service_id
    where s.name = ${service} order by e.event_type`;
}

for (const encoding of ["protobuf", "json"] as const) {
  for (const gzip of [false, true]) {
    dbTest(`[otlp] ${encoding}${gzip ? " gzip" : ""}: server spans become events`, async () => {
      const svc = uniq(`otel-${encoding}`);
      const rec = record(svc);
      const httpStart = hr(60_000, 0);
      const httpEnd = hr(60_000, 12_345_678);
      const http = rec.span(
        "GET /users/:id",
        SpanKind.SERVER,
        {
          "http.request.method": "GET",
          "http.route": "/users/{id}",
          "http.response.status_code": 201,
          "server.address": "api.example.com",
          "url.full": "https://api.example.com/users/7?secret=1",
        },
        httpStart,
        httpEnd,
      );
      const grpc = rec.span(
        "billing.Invoices/Get",
        SpanKind.SERVER,
        {
          "rpc.system": "grpc",
          "rpc.service": "billing.Invoices",
          "rpc.method": "Get",
          "rpc.grpc.status_code": 5,
        },
        hr(50_000),
        hr(50_000, 500_000),
      );
      const failed = rec.span("charge card", SpanKind.SERVER, {}, hr(40_000), hr(39_000), true);
      const consumer = rec.span("orders process", SpanKind.CONSUMER, {}, hr(30_000), hr(29_998));
      rec.span(
        "GET upstream",
        SpanKind.CLIENT,
        { "http.response.status_code": 500 },
        hr(20_000),
        hr(19_000),
      );

      const result = await send(exporter(encoding, { gzip }), rec.spans());
      assert.equal(result.code, 0, String(result.error));

      const rows = await stored(svc);
      assert.equal(rows.length, 4, "the client span is skipped");
      const byType = (t: string) => rows.find((r) => r.event_type === t)!;
      const http_ = byType("GET /users/{id}");
      const grpc_ = byType("billing.Invoices/Get");
      const charge = byType("charge card");
      const orders = byType("orders process");

      assert.equal(http_.name, svc);
      assert.equal(http_.event_type, "GET /users/{id}");
      assert.equal(http_.status_code, 201);
      assert.equal(http_.timestamp.getTime(), Math.floor(hrMs(httpStart)));
      assert.ok(Math.abs(http_.latency_ms - 12.345678) < 1e-9, String(http_.latency_ms));
      assert.equal(http_.message, null);
      assert.deepEqual(http_.attributes, {
        trace_id: http.traceId,
        span_id: http.spanId,
        "http.request.method": "GET",
        "http.route": "/users/{id}",
        "server.address": "api.example.com",
      });

      assert.equal(grpc_.event_type, "billing.Invoices/Get");
      assert.equal(grpc_.status_code, 404, "NOT_FOUND by the gRPC→HTTP table");
      assert.equal(grpc_.latency_ms, 0.5);
      assert.deepEqual(grpc_.attributes, {
        trace_id: grpc.traceId,
        span_id: grpc.spanId,
        "rpc.system": "grpc",
        "rpc.service": "billing.Invoices",
        "rpc.method": "Get",
        "rpc.grpc.status_code": 5,
      });

      assert.equal(charge.event_type, "charge card");
      assert.equal(charge.status_code, 500, "span status ERROR");
      assert.equal(charge.message, "boom");
      assert.equal(charge.latency_ms, 1000);
      assert.deepEqual(charge.attributes, { trace_id: failed.traceId, span_id: failed.spanId });

      assert.equal(orders.event_type, "orders process");
      assert.equal(orders.status_code, 200);
      assert.equal(orders.latency_ms, 2);
      assert.equal(orders.attributes.span_id, consumer.spanId);

      // An exporter's retry of the same spans stores nothing new.
      assert.equal((await send(exporter(encoding, { gzip }), rec.spans())).code, 0);
      assert.equal((await stored(svc)).length, 4);
    });
  }
}

dbTest("[otlp] a resource without service.name is unknown_service", async () => {
  const rec = record(null);
  const span = rec.span("GET /ping", SpanKind.SERVER, {}, hr(10_000), hr(9_000));
  assert.equal((await send(exporter("protobuf", {}), rec.spans())).code, 0);
  const rows = await db.sql`
    select e.attributes from log_events e join services s on s.id = e.service_id
    where s.name = 'unknown_service' and e.attributes->>'span_id' = ${span.spanId}`;
  assert.equal(rows.length, 1);
});

dbTest("[otlp] spans that cannot be stored are counted in partialSuccess", async () => {
  const svc = uniq("otel-partial");
  const ns = (ms: number) => `${BigInt(ms) * 1_000_000n}`;
  const now = Date.now();
  const span = (id: string, startMs: number, extra: Record<string, unknown> = {}) => ({
    traceId: "5b8efff798038103d269b633813fc60c",
    spanId: id,
    name: "GET /x",
    kind: 2,
    startTimeUnixNano: ns(startMs),
    endTimeUnixNano: ns(startMs + 5),
    ...extra,
  });
  const res = await fetch(TRACES, {
    method: "POST",
    headers: { ...AUTH, "content-type": "application/json" },
    body: JSON.stringify({
      resourceSpans: [{
        resource: { attributes: [{ key: "service.name", value: { stringValue: svc } }] },
        scopeSpans: [{
          spans: [
            span("eee19b7ec3c1b174", now - 1000),
            span("eee19b7ec3c1b175", Date.UTC(1990, 0, 1)),
            span("not-hex", now - 1000),
            span("eee19b7ec3c1b176", now - 1000, { startTimeUnixNano: "soon" }),
            span("eee19b7ec3c1b177", now - 1000, {
              attributes: [{ key: "http.response.status_code", value: { intValue: "999" } }],
            }),
            "not a span",
          ],
        }],
      }],
    }),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.partialSuccess.rejectedSpans, "5");
  assert.match(body.partialSuccess.errorMessage, /retention window/);
  assert.match(body.partialSuccess.errorMessage, /spanId/);
  assert.match(body.partialSuccess.errorMessage, /http\.response\.status_code/);
  const rows = await stored(svc);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].attributes.span_id, "eee19b7ec3c1b174");

  const clean = await fetch(TRACES, {
    method: "POST",
    headers: { ...AUTH, "content-type": "application/json" },
    body: JSON.stringify({ resourceSpans: [] }),
  });
  assert.equal(clean.status, 200);
  assert.deepEqual(await clean.json(), {});
});

dbTest("[otlp] an undecodable body is 400 with a google.rpc.Status", async () => {
  const post = (type: string, body: BodyInit, extra: Record<string, string> = {}) =>
    fetch(TRACES, { method: "POST", headers: { ...AUTH, "content-type": type, ...extra }, body });

  const json = await post("application/json", "{not json");
  assert.equal(json.status, 400);
  const status = await json.json();
  assert.equal(status.code, 3);
  assert.match(status.message, /not valid JSON/);

  const notRequest = await post("application/json", JSON.stringify({ resourceSpans: 7 }));
  assert.equal(notRequest.status, 400);
  assert.equal((await notRequest.json()).code, 3);

  // Field 1 (resourceSpans) declared 5 bytes long, cut off after one.
  const proto = await post("application/x-protobuf", new Uint8Array([0x0a, 0x05, 0x01]));
  assert.equal(proto.status, 400);
  assert.equal(proto.headers.get("content-type"), "application/x-protobuf");
  const Status = protobuf.Root.fromJSON({
    nested: {
      Status: { fields: { code: { type: "int32", id: 1 }, message: { type: "string", id: 2 } } },
    },
  }).lookupType("Status");
  const decoded = Status.toObject(Status.decode(new Uint8Array(await proto.arrayBuffer())));
  assert.equal(decoded.code, 3);
  assert.match(decoded.message, /ExportTraceServiceRequest/);

  const badGzip = await post("application/x-protobuf", new Uint8Array([1, 2, 3, 4]), {
    "content-encoding": "gzip",
  });
  assert.equal(badGzip.status, 400);
  await badGzip.body?.cancel();

  const text = await post("text/plain", "hello");
  assert.equal(text.status, 415);
  await text.body?.cancel();
});

dbTest("[otlp] a writer key is needed once keys exist, sent as Authorization: Bearer", async () => {
  const svc = uniq("otel-auth");
  const rec = record(svc);
  rec.span("GET /a", SpanKind.SERVER, {}, hr(5_000), hr(4_000));

  const anonymous = await send(exporter("protobuf", { headers: {} }), rec.spans());
  assert.equal(anonymous.code, 1);
  assert.equal(anonymous.error?.code, 401);
  const raw = await fetch(TRACES, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  assert.equal(raw.status, 401);
  await raw.body?.cancel();
  assert.equal((await stored(svc)).length, 0);

  assert.equal((await send(exporter("json", { headers: AUTH }), rec.spans())).code, 0);
  assert.equal((await stored(svc)).length, 1);
});

globalThis.addEventListener("unload", () => void server.shutdown());

dbTest("[otlp] at capacity: 503 with Retry-After, which exporters retry", async () => {
  const small = buildApp({
    sql: db.sql,
    config: testConfig({ API_KEYS: ENV_KEY, INGEST_MAX_INFLIGHT_BYTES: "1024" }),
  });
  const post = (body: BodyInit) =>
    small.request("/v1/traces", {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/json" },
      body,
    });
  // A body that arrives slowly holds 4 kB of the 1 kB (a lone request may always grow).
  let hold!: ReadableStreamDefaultController<Uint8Array>;
  const hog = post(
    new ReadableStream({
      start(c) {
        hold = c;
        c.enqueue(new TextEncoder().encode(" ".repeat(4096)));
      },
    }),
  );
  try {
    // Undecodable if admitted (400), so only the refusal can make this pass.
    await eventually("a 503 beside the held body", async () => {
      const res = await post("x".repeat(2048));
      await res.body?.cancel();
      if (res.status !== 503) return false;
      assert.equal(res.headers.get("retry-after"), "1");
      return true;
    });
  } finally {
    hold.close();
    await (await hog).body?.cancel();
  }
});
